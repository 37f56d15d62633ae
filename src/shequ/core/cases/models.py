"""Cases (事, work orders), their immutable timeline, attachments, classes and routing rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequ.core.iam.crypto import Encrypted
from shequ.db import Base, ChangeLogged, Placed, TenantScoped, Timestamped, utcnow

# Stages after GB/T 30428's seven steps; "void" ends a report that is not registered.
REPORTED, REGISTERED, VOID, DISPATCHED, HANDLED, FED_BACK, VERIFIED, CLOSED, EVALUATED = (
    "reported", "registered", "void", "dispatched", "handled", "fed_back", "verified", "closed", "evaluated")
STAGES = (REPORTED, REGISTERED, VOID, DISPATCHED, HANDLED, FED_BACK, VERIFIED, CLOSED, EVALUATED)
OPEN_STAGES = (REPORTED, REGISTERED, DISPATCHED, HANDLED, FED_BACK, VERIFIED)
SOURCES = ("alarm", "resident", "patrol", "hotline", "department", "open311")
PRIORITIES = ("urgent", "normal")


class Case(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """One case from report to evaluation. Times are UTC; deadlines were computed in working
    hours (``shequ.core.cases.calendar``) when the stage began."""

    __tablename__ = "work_order"  # "case" is an SQL keyword
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", name="uq_case_code"),
        UniqueConstraint("tenant_id", "source", "source_ref", name="uq_case_source_ref"),
        Index("ix_case_stage", "tenant_id", "stage"),
        Index("ix_case_reported", "tenant_id", "reported_at"),
        Index("ix_case_due", "tenant_id", "stage_due_at"),
        Index("ix_case_service", "tenant_id", "service_code", "reported_at"),
    )
    __pii__ = {"reporter_phone": "phone"}
    __changelog_skip__ = frozenset({"updated_at", "created_at", "open311_token"})

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(30))  # e.g. 20261128-000123
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(12))  # alarm | resident | patrol | hotline | department | open311
    source_ref: Mapped[str | None] = mapped_column(String(60))  # alarm id, 12345 order number …
    class_code: Mapped[str] = mapped_column(String(20))
    scenario: Mapped[str] = mapped_column(String(3), default="")
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    stage: Mapped[str] = mapped_column(String(12), default=REPORTED)
    department: Mapped[str | None] = mapped_column(String(40))  # the main handling department
    co_departments: Mapped[list[str]] = mapped_column(JSON, default=list)  # 联动处置
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    lon: Mapped[float | None] = mapped_column()
    lat: Mapped[float | None] = mapped_column()
    address_text: Mapped[str] = mapped_column(String(300), default="")
    reporter_name: Mapped[str | None] = mapped_column(String(60))
    reporter_phone: Mapped[str | None] = mapped_column(Encrypted())
    reporter_phone_mask: Mapped[str] = mapped_column(String(20), default="")
    reporter_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    alarm_id: Mapped[int | None] = mapped_column(Integer, index=True)
    service_code: Mapped[str | None] = mapped_column(String(40))  # Open311 service
    public: Mapped[bool] = mapped_column(Boolean, default=False)  # shown through Open311 GET requests
    open311_token: Mapped[str | None] = mapped_column(String(40), unique=True)
    media_url: Mapped[str | None] = mapped_column(String(500))
    reported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    registered_at: Mapped[dt.datetime | None] = mapped_column()
    dispatched_at: Mapped[dt.datetime | None] = mapped_column()
    handled_at: Mapped[dt.datetime | None] = mapped_column()
    fed_back_at: Mapped[dt.datetime | None] = mapped_column()
    verified_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    evaluated_at: Mapped[dt.datetime | None] = mapped_column()
    voided_at: Mapped[dt.datetime | None] = mapped_column()
    due_at: Mapped[dt.datetime | None] = mapped_column()  # handling deadline (set at dispatch)
    stage_due_at: Mapped[dt.datetime | None] = mapped_column()  # deadline of the current stage
    suspended_at: Mapped[dt.datetime | None] = mapped_column()  # 挂账: the clock stands still
    suspended_minutes: Mapped[int] = mapped_column(Integer, default=0)
    overdue_at: Mapped[dt.datetime | None] = mapped_column()  # when the sweep first found it overdue
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)  # 督查
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    handled_on_time: Mapped[bool | None] = mapped_column(Boolean)
    closed_on_time: Mapped[bool | None] = mapped_column(Boolean)
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # 1–5 from the reporter
    satisfaction_note: Mapped[str | None] = mapped_column(String(500))
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # Open311 attributes, 12345 fields


class CaseStep(Base, TenantScoped):
    """One step of a case's timeline: who did what, when, from which stage to which. Append-only
    (database triggers refuse UPDATE and DELETE)."""

    __tablename__ = "case_step"
    __table_args__ = (Index("ix_case_step_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("work_order.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))  # report, register, dispatch, handle, … escalate
    from_stage: Mapped[str | None] = mapped_column(String(12))
    to_stage: Mapped[str | None] = mapped_column(String(12))
    department: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(2000), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CaseAttachment(Base, TenantScoped):
    """A photo or file attached to a case (stored under var/files, addressed by its SHA-256)."""

    __tablename__ = "case_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("work_order.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CaseClass(Base, TenantScoped):
    """A class of case (部件/事件 major and minor, or a scenario's category): who handles it and in
    how many working hours. A tenant gets the shipped catalog on first use and may edit it."""

    __tablename__ = "case_class"
    __table_args__ = (UniqueConstraint("tenant_id", "code", name="uq_case_class_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20))  # e.g. 0101 (部件 公用设施 上水井盖), 0301, S03-01
    kind: Mapped[str] = mapped_column(String(10))  # component | event | scenario
    major: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    department: Mapped[str] = mapped_column(String(40))
    handle_hours: Mapped[float] = mapped_column(default=16.0)  # working hours from dispatch
    urgent_hours: Mapped[float] = mapped_column(default=2.0)  # for urgent cases
    scenario: Mapped[str] = mapped_column(String(3), default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False)  # offered to residents (Open311 service)
    description: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RoutingRule(Base, TenantScoped, Timestamped, ChangeLogged):
    """Overrides the class's department: the first matching rule (lowest ``position``) wins.
    Matches on class code prefix, scenario, source and area (grid or committee place ids)."""

    __tablename__ = "routing_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=100)
    class_prefix: Mapped[str] = mapped_column(String(20), default="")
    scenario: Mapped[str] = mapped_column(String(3), default="")
    source: Mapped[str] = mapped_column(String(12), default="")
    area_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    department: Mapped[str] = mapped_column(String(40))
    co_departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str] = mapped_column(String(300), default="")
