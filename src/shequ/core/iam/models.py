"""Users, roles, sessions, API tokens and the audit log."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, TenantScoped, Timestamped, utcnow


class Role(StrEnum):
    ADMIN = "admin"  # 系统管理员
    LEADER = "leader"  # 街道领导
    DISPATCHER = "dispatcher"  # 城运中心调度员
    DEPARTMENT = "department"  # 部门工作人员
    GRID_WORKER = "grid_worker"  # 网格员
    COMMITTEE = "committee"  # 居委工作人员
    PROPERTY = "property"  # 物业人员
    RESIDENT = "resident"  # 居民
    DEVICE = "device"  # 设备 (a device's own account; sees nothing of the registry)
    API_CLIENT = "api_client"


class User(Base, TenantScoped, Timestamped):
    __tablename__ = "app_user"
    __table_args__ = (UniqueConstraint("tenant_id", "username", name="uq_user_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(60))
    display_name: Mapped[str] = mapped_column(String(60), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    # what the user is bound to: {"grids": [ids], "committees": [ids], "compounds": [ids],
    # "department": "城运中心", "person_id": id, "device_id": id}; API clients may carry
    # areas or {"tenant": true} (see core.iam.scope)
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str] = mapped_column(String(10), default="zh-CN")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    last_login_at: Mapped[dt.datetime | None] = mapped_column()


class AuthSession(Base):
    """A browser session (cookie); the cookie holds a random token, the table its hash."""

    __tablename__ = "auth_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class ApiToken(Base):
    """A bearer token for the API; shown once, stored as a hash, expiring."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    # a subset of the role's permission codes, or None for all of them; the token may do
    # what both its role and this list allow
    permissions: Mapped[list[str] | None] = mapped_column(JSON)


class RolePermission(Base, TenantScoped):
    """One permission code granted to one role in one tenant (editable by an administrator)."""

    __tablename__ = "role_permission"
    __table_args__ = (UniqueConstraint("tenant_id", "role", "permission", name="uq_role_permission"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    permission: Mapped[str] = mapped_column(String(60))


class AuditLog(Base, TenantScoped):
    """Append-only: logins, exports, unmasking (with the stated purpose), imports."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "tenant_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))  # login, login_failed, export, unmask, import…
    target: Mapped[str] = mapped_column(String(200), default="")
    purpose: Mapped[str] = mapped_column(String(300), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
