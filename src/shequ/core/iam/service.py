"""Users and access: passwords, login with lockout, browser sessions, API tokens, the audit
log, permissions by role, and unmasking personal data for a stated purpose."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from shequ.config import get_settings
from shequ.core.iam.models import ApiToken, AuditLog, AuthSession, Role, RolePermission, User
from shequ.core.places.service import forget_on_new_tenant
from shequ.db import utcnow

MAX_FAILURES = 5
LOCK_MINUTES = 15
# failed logins from one address within LOCK_MINUTES before that address is refused too
MAX_FAILURES_PER_IP = 30
MIN_PASSWORD = 10

ROLE_LABELS: dict[str, tuple[str, str]] = {
    Role.ADMIN: ("系统管理员", "administrator"),
    Role.LEADER: ("街道领导", "subdistrict leader"),
    Role.DISPATCHER: ("城运中心调度员", "dispatcher"),
    Role.DEPARTMENT: ("部门工作人员", "department staff"),
    Role.GRID_WORKER: ("网格员", "grid worker"),
    Role.COMMITTEE: ("居委工作人员", "committee staff"),
    Role.PROPERTY: ("物业人员", "property staff"),
    Role.RESIDENT: ("居民", "resident"),
    Role.DEVICE: ("设备", "device"),
    Role.API_CLIENT: ("接口调用方", "API client"),
}

# What each role may do by default. A tenant gets these rows in role_permission on first use;
# an administrator edits them there (PUT /api/v1/roles/{role}/permissions).
READ = "registry.read"
IMPORT = "registry.import"
EXPORT = "registry.export"
UNMASK = "pii.unmask"
MANAGE_USERS = "users.manage"
AUDIT_READ = "audit.read"
DEVICE_READ = "device.read"
DEVICE_MANAGE = "device.manage"
DEVICE_COMMAND = "device.command"
DEAD_LETTERS = "iot.dead_letters"
ALARM_READ = "alarm.read"
ALARM_HANDLE = "alarm.handle"
RULE_READ = "rule.read"
RULE_MANAGE = "rule.manage"
CASE_READ = "case.read"
CASE_REPORT = "case.report"
CASE_DISPATCH = "case.dispatch"
CASE_HANDLE = "case.handle"
CASE_VERIFY = "case.verify"
KPI_READ = "kpi.read"
NOTIFY_MANAGE = "notify.manage"
NOTICE_PUBLISH = "notice.publish"
_LOOP_READ = frozenset({ALARM_READ, CASE_READ, CASE_REPORT})
_STAFF = frozenset({READ, EXPORT})
PERMISSIONS: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset({READ, IMPORT, EXPORT, UNMASK, MANAGE_USERS, AUDIT_READ,
                           DEVICE_READ, DEVICE_MANAGE, DEVICE_COMMAND, DEAD_LETTERS,
                           ALARM_READ, ALARM_HANDLE, RULE_READ, RULE_MANAGE, CASE_READ, CASE_REPORT,
                           CASE_DISPATCH, CASE_HANDLE, CASE_VERIFY, KPI_READ, NOTIFY_MANAGE, NOTICE_PUBLISH}),
    Role.LEADER: frozenset({READ, EXPORT, UNMASK, AUDIT_READ, DEVICE_READ, ALARM_READ, RULE_READ,
                            CASE_READ, CASE_DISPATCH, KPI_READ, NOTICE_PUBLISH}),
    Role.DISPATCHER: frozenset({READ, IMPORT, EXPORT, UNMASK, DEVICE_READ, DEVICE_COMMAND, DEAD_LETTERS,
                                ALARM_READ, ALARM_HANDLE, RULE_READ, RULE_MANAGE, CASE_READ,
                                CASE_REPORT, CASE_DISPATCH, CASE_HANDLE, CASE_VERIFY, KPI_READ,
                                NOTICE_PUBLISH}),
    Role.DEPARTMENT: _STAFF | _LOOP_READ | {IMPORT, DEVICE_READ, ALARM_HANDLE, CASE_HANDLE, KPI_READ},
    Role.GRID_WORKER: _STAFF | _LOOP_READ | {DEVICE_READ, ALARM_HANDLE, CASE_HANDLE, CASE_VERIFY},
    Role.COMMITTEE: _STAFF | _LOOP_READ | {IMPORT, UNMASK, DEVICE_READ, ALARM_HANDLE, CASE_HANDLE,
                                           CASE_VERIFY, NOTICE_PUBLISH},
    Role.PROPERTY: frozenset({READ, DEVICE_READ, ALARM_READ, ALARM_HANDLE, CASE_READ, CASE_REPORT,
                              CASE_HANDLE}),
    Role.RESIDENT: frozenset({CASE_REPORT}),
    Role.DEVICE: frozenset(),
    Role.API_CLIENT: frozenset({READ, IMPORT, EXPORT, CASE_REPORT}),  # e.g. an Open311 client
}
PERMISSION_LABELS: dict[str, tuple[str, str]] = {
    READ: ("查看台账", "read the registry"),
    IMPORT: ("导入台账", "import into the registry"),
    EXPORT: ("导出台账", "export the registry"),
    UNMASK: ("查看完整个人信息", "unmask personal data"),
    MANAGE_USERS: ("管理用户与权限", "manage users and permissions"),
    AUDIT_READ: ("查看审计日志", "read the audit log"),
    DEVICE_READ: ("查看物联设备", "read devices and their state"),
    DEVICE_MANAGE: ("管理设备凭证与维护状态", "manage device credentials and maintenance"),
    DEVICE_COMMAND: ("向设备下发命令", "send commands to devices"),
    DEAD_LETTERS: ("查看死信报文", "read dead-lettered device messages"),
    ALARM_READ: ("查看告警", "read alarms"),
    ALARM_HANDLE: ("确认、指派、清除告警", "acknowledge, assign and clear alarms"),
    RULE_READ: ("查看规则", "read rules"),
    RULE_MANAGE: ("编辑规则", "edit rules"),
    CASE_READ: ("查看事件工单", "read cases"),
    CASE_REPORT: ("上报事件", "report cases"),
    CASE_DISPATCH: ("立案、派遣、结案、督办", "register, dispatch, close and supervise cases"),
    CASE_HANDLE: ("处置并反馈工单", "handle cases and feed back"),
    CASE_VERIFY: ("核查工单", "verify handled cases"),
    KPI_READ: ("查看考核指标", "read the indicators"),
    NOTIFY_MANAGE: ("管理 Webhook 与通知渠道", "manage webhooks and notification channels"),
    NOTICE_PUBLISH: ("发布通知公告", "publish notices"),
}
# Codes added after tenants already existed (issue 4). A tenant whose role_permission table
# predates a code gets that code's defaults once, on first use; a marker row (role
# ``SEEN_MARKER``) remembers it, so an administrator's later removal sticks.
ADDED_CODES: tuple[str, ...] = (DEVICE_READ, DEVICE_MANAGE, DEVICE_COMMAND, DEAD_LETTERS,
                                ALARM_READ, ALARM_HANDLE, RULE_READ, RULE_MANAGE, CASE_READ,
                                CASE_REPORT, CASE_DISPATCH, CASE_HANDLE, CASE_VERIFY, KPI_READ,
                                NOTIFY_MANAGE, NOTICE_PUBLISH)
SEEN_MARKER = "_defaults"



@lru_cache
def _hasher() -> PasswordHasher:
    """argon2id with the cost in the settings (RFC 9106's second choice by default)."""
    settings = get_settings()
    return PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)


@lru_cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that both paths take the same time."""
    return _hasher().hash("not-a-password-0")


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- permissions as data -------------------------------------------------------------------

# tenant id -> role -> permission codes; filled from role_permission, dropped when it changes
_permission_cache: dict[int, dict[str, frozenset[str]]] = {}


def _forget_tenant(tenant_id: int) -> None:
    _permission_cache.pop(tenant_id, None)


forget_on_new_tenant(_forget_tenant)


def known_permissions() -> list[str]:
    """Every permission code (the core's; scenarios may add theirs to PERMISSION_LABELS)."""
    return sorted(PERMISSION_LABELS)


def _install_defaults(session: Session, tenant_id: int, codes: frozenset[str] | None = None) -> None:
    """The default grants of every code (or only of ``codes``), with their markers."""
    rows = [{"tenant_id": tenant_id, "role": role.value, "permission": code}
            for role in Role for code in sorted(PERMISSIONS.get(role, frozenset()))
            if codes is None or code in codes]
    rows += [{"tenant_id": tenant_id, "role": SEEN_MARKER, "permission": code}
             for code in ADDED_CODES if codes is None or code in codes]
    try:
        with session.begin_nested():
            session.execute(insert(RolePermission), rows)
    except IntegrityError:
        pass  # another request installed them first


def role_permissions(*, session: Session, tenant_id: int | None = None) -> dict[str, frozenset[str]]:
    """What each role may do in the session's tenant (its defaults installed on first use)."""
    tenant_id = tenant_id if tenant_id is not None else session.info.get("tenant_id")
    if tenant_id is None:
        return dict(PERMISSIONS)
    cached = _permission_cache.get(tenant_id)
    if cached is not None:
        return cached
    stmt = select(RolePermission.role, RolePermission.permission).where(
        RolePermission.tenant_id == tenant_id)
    rows = session.execute(stmt, execution_options={"all_tenants": True}).all()
    if not rows:
        _install_defaults(session, tenant_id)
        rows = session.execute(stmt, execution_options={"all_tenants": True}).all()
    else:
        seen = {code for role, code in rows if role == SEEN_MARKER}
        missing = frozenset(ADDED_CODES) - seen
        if missing:  # a tenant older than these codes: their defaults, once
            _install_defaults(session, tenant_id, missing)
            rows = session.execute(stmt, execution_options={"all_tenants": True}).all()
    table: dict[str, set[str]] = {role.value: set() for role in Role}
    for role, code in rows:
        if role != SEEN_MARKER:
            table.setdefault(role, set()).add(code)
    out = {role: frozenset(codes) for role, codes in table.items()}
    _permission_cache[tenant_id] = out
    return out


def set_role_permissions(*, session: Session, role: str, permissions: list[str]) -> frozenset[str]:
    """Replace what a role may do in the session's tenant; audited. Unknown codes are refused."""
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise ValueError("no tenant bound to the session")
    try:
        role = Role(role).value
    except ValueError:
        raise LookupError(f"未知角色 {role!r}（unknown role）") from None
    wanted = {p.strip() for p in permissions}
    unknown = sorted(wanted - set(known_permissions()))
    if unknown:
        raise ValueError(f"未知权限 {', '.join(unknown)}（unknown permission; known: "
                         f"{', '.join(known_permissions())}）")
    _permission_cache.pop(tenant_id, None)  # read the table itself, installing it if need be
    before = role_permissions(session=session, tenant_id=tenant_id).get(role, frozenset())
    session.execute(delete(RolePermission).where(RolePermission.role == role))
    session.add_all(RolePermission(role=role, permission=code) for code in sorted(wanted))
    session.flush()
    _permission_cache.pop(tenant_id, None)
    # a rolled-back change must not survive in the cache either
    session.info.setdefault("permission_tenants", set()).add(tenant_id)
    audit(session=session, actor=str(session.info.get("actor", "system")), action="permissions",
          target=f"role:{role}", detail={"before": sorted(before), "after": sorted(wanted)})
    return frozenset(wanted)


@event.listens_for(Session, "after_transaction_end")
def _forget_permissions(session: Session, transaction: Any) -> None:
    tenants = session.info.get("permission_tenants")
    if not tenants:
        return
    for tenant_id in tenants:
        _permission_cache.pop(tenant_id, None)
    if transaction.parent is None:
        session.info.pop("permission_tenants", None)


def token_permissions(user: User) -> frozenset[str] | None:
    """The permissions the API token in use grants (None: no token limit, e.g. a page session)."""
    session = object_session(user)
    if session is None:
        return None
    bound = session.info.get("token_permissions")
    if bound is None or bound[0] != user.id:
        return None
    return bound[1]


def can(user: User | None, permission: str) -> bool:
    """Whether the user may: their role grants it in their tenant and, when they act through an
    API token limited to some permissions, the token too. Inactive users may do nothing."""
    if user is None or not user.active:
        return False
    session = object_session(user)
    table = role_permissions(session=session, tenant_id=user.tenant_id) if session else PERMISSIONS
    if permission not in table.get(user.role, frozenset()):
        return False
    limit = token_permissions(user)
    return limit is None or permission in limit


def role_label(role: str, lang: str = "zh-CN") -> str:
    pair = ROLE_LABELS.get(role)
    if pair is None:
        return role
    return pair[0] if lang.startswith("zh") else pair[1]


# --- users -------------------------------------------------------------------------------


def check_password_policy(password: str) -> None:
    """Raise ValueError naming the rule a password breaks."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"密码至少 {MIN_PASSWORD} 个字符（password: at least {MIN_PASSWORD} characters）")
    if not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        raise ValueError("密码须同时包含字母和数字（password: must contain letters and digits）")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def create_user(*, session: Session, username: str, password: str, role: str,
                display_name: str = "", scope: dict[str, Any] | None = None) -> User:
    """Add a user of the session's tenant; the password must meet the policy."""
    username = username.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{2,60}", username):
        raise ValueError("用户名须为 2–60 个字母、数字、下划线、点或连字符（username）")
    try:
        role = Role(role).value
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"未知角色 {role!r}（role must be one of: {known}）") from None
    check_password_policy(password)
    scope = check_binding(session=session, role=role, scope=scope or {})
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"用户名 {username} 已存在（username already taken）")
    user = User(username=username, password_hash=hash_password(password), role=role,
                display_name=display_name or username, scope=scope)
    session.add(user)
    session.flush()
    audit(session=session, actor=str(session.info.get("actor", "system")), action="user_create",
          target=f"user:{user.id}", detail={"username": username, "role": role})
    return user


# what each role must be bound to: scope key, kind of place (None: not a place)
_BINDINGS: dict[str, tuple[str, str | None, str]] = {
    Role.GRID_WORKER: ("grids", "grid", "网格员须绑定网格"),
    Role.COMMITTEE: ("committees", "committee", "居委工作人员须绑定居委"),
    Role.PROPERTY: ("compounds", "compound", "物业人员须绑定小区"),
}


def check_binding(*, session: Session, role: str, scope: dict[str, Any]) -> dict[str, Any]:
    """The scope record a role needs, checked against the tenant's data; ValueError naming the
    missing or wrong binding (e.g. committee staff without committees)."""
    from shequ.core.places.models import Place
    from shequ.core.plugins import DEPARTMENTS
    from shequ.core.registry.models import Person

    out = dict(scope)
    unscoped = {"all_scopes": True}
    if role in _BINDINGS:
        key, kind, message = _BINDINGS[role]
        raw = out.get(key)
        if not isinstance(raw, list | tuple) or not raw:
            raise ValueError(f"{message}（scope.{key}: role {role} needs at least one {kind} id）")
        try:
            ids = sorted({int(v) for v in raw})
        except (TypeError, ValueError):
            raise ValueError(f"{message}：编号须为整数（scope.{key}: ids must be integers）") from None
        found = set(session.scalars(select(Place.id).where(Place.id.in_(ids), Place.kind == kind),
                                    execution_options=unscoped))
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValueError(f"scope.{key}: 不存在的{kind}编号 {missing}（no {kind} with id {missing}）")
        out[key] = ids
    if role == Role.DEPARTMENT:
        dept = out.get("department")
        if dept not in DEPARTMENTS:
            raise ValueError(f"部门工作人员须绑定部门（scope.department must be one of: "
                             f"{', '.join(DEPARTMENTS)}）")
    if role == Role.RESIDENT:
        person_id = out.get("person_id")
        if not isinstance(person_id, int) or session.scalar(
                select(Person.id).where(Person.id == person_id), execution_options=unscoped) is None:
            raise ValueError("居民账号须绑定本人（scope.person_id: an existing person id is required）")
    if role == Role.DEVICE:
        from shequ.core.iot.models import Device

        device_id = out.get("device_id")
        if not isinstance(device_id, int) or session.scalar(
                select(Device.id).where(Device.id == device_id), execution_options=unscoped) is None:
            raise ValueError("设备账号须绑定设备（scope.device_id: an existing device id is required）")
    return out


def set_password(*, session: Session, user: User, password: str) -> None:
    """Replace a user's password (policy checked) and clear any lockout."""
    check_password_policy(password)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    session.flush()


# --- login -------------------------------------------------------------------------------


def _recent_failures_from(session: Session, ip: str, now: dt.datetime) -> int:
    if not ip:
        return 0
    since = now - dt.timedelta(minutes=LOCK_MINUTES)
    return session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "login_failed", AuditLog.ip == ip, AuditLog.at >= since)) or 0


def authenticate(*, session: Session, username: str, password: str, ip: str = "") -> User | None:
    """The user when the password is right and the account not locked; otherwise None.

    Five failures in a row lock the account for 15 minutes. The caller shows one message for
    every failure, so a stranger cannot tell whether a username exists.
    """
    now = utcnow()
    username = (username or "").strip()
    user = session.scalar(select(User).where(User.username == username)) if username else None
    reason = ""
    if _recent_failures_from(session, ip, now) >= MAX_FAILURES_PER_IP:
        reason = "ip_throttled"
    elif user is None:
        _verify(_dummy_hash(), password)
        reason = "unknown_user"
    elif not user.active:
        _verify(_dummy_hash(), password)
        reason = "inactive"
    elif user.locked_until is not None and user.locked_until > now:
        _verify(_dummy_hash(), password)
        reason = "locked"
    elif not _verify(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        reason = "bad_password"
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
            user.failed_logins = 0
            reason = "bad_password_locked"
    if reason:
        audit(session=session, actor=username[:100] or "-", action="login_failed",
              target=f"user:{user.id}" if user else "", ip=ip, detail={"reason": reason})
        return None
    assert user is not None
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit(session=session, actor=user.username, action="login", target=f"user:{user.id}", ip=ip)
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


# --- browser sessions --------------------------------------------------------------------


def start_session(*, session: Session, user: User, ip: str = "", user_agent: str = "") -> str:
    """A new browser session; returns the random token for the cookie (only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    hours = get_settings().session_hours
    session.add(AuthSession(token_hash=_sha256(token), user_id=user.id,
                            expires_at=utcnow() + dt.timedelta(hours=hours),
                            ip=ip[:64], user_agent=user_agent[:300]))
    session.flush()
    return token


def _live_user(session: Session, credential: type[AuthSession] | type[ApiToken],
               token: str | None) -> User | None:
    """The active user behind a live, unrevoked credential (browser session or API token)."""
    if not token:
        return None
    row = session.execute(
        select(User, credential.expires_at, credential.revoked_at)
        .join(credential, credential.user_id == User.id)
        .where(credential.token_hash == _sha256(token))
    ).first()
    if row is None:
        return None
    user, expires_at, revoked_at = row
    if revoked_at is not None or expires_at <= utcnow() or not user.active:
        return None
    return user


def user_for_session(*, session: Session, token: str | None) -> User | None:
    """The active user behind a live, unrevoked session token of this tenant."""
    return _live_user(session, AuthSession, token)


def end_session(*, session: Session, token: str | None) -> None:
    """Revoke a browser session (logout)."""
    if not token:
        return
    auth = session.scalar(select(AuthSession).where(AuthSession.token_hash == _sha256(token)))
    if auth is not None and auth.revoked_at is None:
        auth.revoked_at = utcnow()
        session.flush()


# --- API tokens --------------------------------------------------------------------------


def create_api_token(*, session: Session, user: User, name: str = "", days: int = 30,
                     permissions: list[str] | None = None) -> str:
    """A bearer token for the API, returned once; stored as a hash, expiring after ``days``.

    ``permissions`` limits the token to some of its user's permissions (None: all of them);
    the token may do what both its user's role and this list allow."""
    if days < 1:
        raise ValueError("令牌有效期至少 1 天（days must be ≥ 1）")
    if permissions is not None:
        unknown = sorted(set(permissions) - set(known_permissions()))
        if unknown:
            raise ValueError(f"未知权限 {', '.join(unknown)}（unknown permission）")
        permissions = sorted(set(permissions))
    token = "shq_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=_sha256(token), user_id=user.id, name=name[:100],
                         expires_at=utcnow() + dt.timedelta(days=days), permissions=permissions))
    session.flush()
    return token


def user_for_token(*, session: Session, token: str | None) -> User | None:
    """The active user behind a live bearer token of this tenant; the token's permission limit
    is noted on the session, so that ``can()`` applies it."""
    user = _live_user(session, ApiToken, token)
    if user is not None:
        limit = session.scalar(select(ApiToken.permissions).where(ApiToken.token_hash == _sha256(token or "")))
        session.info["token_permissions"] = (user.id, None if limit is None else frozenset(limit))
    return user


def revoke_api_token(*, session: Session, token: str) -> bool:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    session.flush()
    return True


# --- audit and unmasking -----------------------------------------------------------------


def audit(*, session: Session, actor: str, action: str, target: str = "", purpose: str = "",
          ip: str = "", detail: dict[str, Any] | None = None) -> AuditLog:
    """Append one row to the audit log of the session's tenant."""
    row = AuditLog(actor=actor[:100], action=action[:40], target=target[:200],
                   purpose=purpose[:300], ip=ip[:64], detail=detail or {})
    session.add(row)
    session.flush()
    return row


def may_unmask(*, user: User, record: Any) -> bool:
    """Whether the user may see a record's personal data in full: the permission ``pii.unmask``;
    the record itself is in scope, or the scoped session would not have found it."""
    return record is not None and can(user, UNMASK)


def unmask(*, session: Session, user: User, entity: str, entity_id: int, field: str,
           purpose: str, ip: str = "") -> str:
    """The plaintext of one personal-data field, for a stated purpose; audited.

    Raises ValueError for an empty purpose or a field that is not personal data,
    LookupError for an unknown record, PermissionError when the user may not.
    """
    from shequ.core.registry.kinds import get_kind

    purpose = (purpose or "").strip()
    if not purpose:
        raise ValueError("查看完整信息须填写用途（purpose is required）")
    kind = get_kind(entity)
    try:
        column = kind.column(field)
    except KeyError:
        raise ValueError(f"字段 {field} 不存在（unknown field）") from None
    if not column.pii:
        raise ValueError(f"字段 {column.zh} 不是个人敏感信息（field {field} is not personal data）")
    # a SELECT, not session.get: the identity map would skip the tenant filter
    record = session.scalar(select(kind.model).where(kind.model.id == entity_id))
    if record is None:
        raise LookupError(f"{kind.zh} {entity_id} 不存在（not found）")
    if not may_unmask(user=user, record=record):
        raise PermissionError("无权查看完整信息（not allowed to unmask）")
    value = getattr(record, field) or ""
    audit(session=session, actor=user.username, action="unmask", target=f"{entity}:{entity_id}",
          purpose=purpose, ip=ip, detail={"field": field})
    return value
