"""Alarms, their timeline, and who wants which alarms on which channel."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, Placed, TenantScoped, utcnow

SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # 0 is the worst
ACTIVE_UNACK, ACTIVE_ACK, CLEARED_UNACK, CLEARED_ACK = "ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK"
STATUSES = (ACTIVE_UNACK, ACTIVE_ACK, CLEARED_UNACK, CLEARED_ACK)
CHANNELS = ("inapp", "sms", "voice", "webhook")


class Alarm(Base, TenantScoped, Placed):
    """One alarm of one type from one source; while active, repeats count up on it.

    ``active_key`` is ``"<source>|<type>"`` while the alarm is active and NULL once cleared: the
    unique index on it keeps one active alarm per (source, type) on every database.
    """

    __tablename__ = "alarm"
    __table_args__ = (
        UniqueConstraint("tenant_id", "active_key", name="uq_alarm_active"),
        Index("ix_alarm_status", "tenant_id", "status", "raised_at"),
        Index("ix_alarm_escalate", "tenant_id", "next_check_at"),
        Index("ix_alarm_pending", "pending_since"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(60))  # smoke, gas, no_activity, ebike_in_elevator …
    source: Mapped[str] = mapped_column(String(40))  # "d:<device id>" | "p:<place id>" | "u:<user>" …
    active_key: Mapped[str | None] = mapped_column(String(110))
    severity: Mapped[str] = mapped_column(String(14))
    status: Mapped[str] = mapped_column(String(14), default=ACTIVE_UNACK)
    title: Mapped[str] = mapped_column(String(200))
    scenario: Mapped[str] = mapped_column(String(3), default="")
    device_id: Mapped[int | None] = mapped_column(Integer, index=True)
    rule_id: Mapped[int | None] = mapped_column(Integer)
    rule_version: Mapped[int | None] = mapped_column(Integer)
    # what caused it: {"message": msg id, "ts": ms, "values": {...}, "event": ...}
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    count: Mapped[int] = mapped_column(Integer, default=1)
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source_ms: Mapped[int] = mapped_column(BigInteger, default=0)  # device time of the first message
    last_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    acked_at: Mapped[dt.datetime | None] = mapped_column()
    acked_by: Mapped[str | None] = mapped_column(String(100))
    cleared_at: Mapped[dt.datetime | None] = mapped_column()
    cleared_by: Mapped[str | None] = mapped_column(String(100))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    # when the escalation sweep next looks at it (unacknowledged alarms only)
    next_check_at: Mapped[dt.datetime | None] = mapped_column()
    case_id: Mapped[int | None] = mapped_column(Integer)
    # follow-up actions of its rule that run outside the ingest batch (opening the case):
    # [{"do": "case", …}], taken by ``service.run_pending`` soon after the alarm committed
    pending_actions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    pending_since: Mapped[dt.datetime | None] = mapped_column()


class AlarmEvent(Base, TenantScoped):
    """The alarm's timeline, append-only: raised, repeated, acknowledged, commented, escalated…"""

    __tablename__ = "alarm_event"
    __table_args__ = (Index("ix_alarm_event_alarm", "alarm_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarm.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    action: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(String(1000), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AlarmSubscription(Base, TenantScoped):
    """Which alarms reach one user on which channels (a user without one gets the defaults)."""

    __tablename__ = "alarm_subscription"
    __table_args__ = (UniqueConstraint("user_id", name="uq_alarm_subscription_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    min_severity: Mapped[str] = mapped_column(String(14), default="WARNING")
    types: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every type
    scenarios: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every scenario
    channels: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["inapp"])
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
