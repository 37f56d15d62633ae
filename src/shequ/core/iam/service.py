"""Users and access: passwords, login with lockout, browser sessions, API tokens, the audit
log, permissions by role, and unmasking personal data for a stated purpose."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.config import get_settings
from shequ.core.iam.models import ApiToken, AuditLog, AuthSession, Role, User
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
    Role.API_CLIENT: ("接口调用方", "API client"),
}

# What each role may do. Data, so that the roles-and-scopes issue extends it in one place.
READ = "registry.read"
IMPORT = "registry.import"
EXPORT = "registry.export"
UNMASK = "pii.unmask"
MANAGE_USERS = "users.manage"
_STAFF = frozenset({READ, EXPORT})
PERMISSIONS: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset({READ, IMPORT, EXPORT, UNMASK, MANAGE_USERS}),
    Role.LEADER: frozenset({READ, EXPORT, UNMASK}),
    Role.DISPATCHER: frozenset({READ, IMPORT, EXPORT, UNMASK}),
    Role.DEPARTMENT: _STAFF | {IMPORT},
    Role.GRID_WORKER: _STAFF,
    Role.COMMITTEE: _STAFF | {IMPORT, UNMASK},
    Role.PROPERTY: frozenset({READ}),
    Role.RESIDENT: frozenset(),
    Role.API_CLIENT: frozenset({READ, IMPORT, EXPORT}),
}

_hasher = PasswordHasher()
# verified against when the user does not exist, so that both paths take the same time
_DUMMY_HASH = _hasher.hash("not-a-password-0")


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def can(user: User | None, permission: str) -> bool:
    """Whether the user's role grants a permission (inactive users may do nothing)."""
    if user is None or not user.active:
        return False
    return permission in PERMISSIONS.get(user.role, frozenset())


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
    return _hasher.hash(password)


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
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"用户名 {username} 已存在（username already taken）")
    user = User(username=username, password_hash=hash_password(password), role=role,
                display_name=display_name or username, scope=scope or {})
    session.add(user)
    session.flush()
    audit(session=session, actor=str(session.info.get("actor", "system")), action="user_create",
          target=f"user:{user.id}", detail={"username": username, "role": role})
    return user


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
        _verify(_DUMMY_HASH, password)
        reason = "unknown_user"
    elif not user.active:
        _verify(_DUMMY_HASH, password)
        reason = "inactive"
    elif user.locked_until is not None and user.locked_until > now:
        _verify(_DUMMY_HASH, password)
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
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit(session=session, actor=user.username, action="login", target=f"user:{user.id}", ip=ip)
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password or "")
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


def create_api_token(*, session: Session, user: User, name: str = "", days: int = 30) -> str:
    """A bearer token for the API, returned once; stored as a hash, expiring after ``days``."""
    if days < 1:
        raise ValueError("令牌有效期至少 1 天（days must be ≥ 1）")
    token = "shq_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=_sha256(token), user_id=user.id, name=name[:100],
                         expires_at=utcnow() + dt.timedelta(days=days)))
    session.flush()
    return token


def user_for_token(*, session: Session, token: str | None) -> User | None:
    """The active user behind a live bearer token of this tenant."""
    return _live_user(session, ApiToken, token)


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
    """Whether the user may see a record's personal data in full.

    Committee staff only within the committees of their scope; the roles issue refines this.
    """
    if not can(user, UNMASK):
        return False
    if user.role == Role.COMMITTEE:
        committees = set((user.scope or {}).get("committees") or [])
        return getattr(record, "committee_id", None) in committees
    return True


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
