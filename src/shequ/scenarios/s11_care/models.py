"""S11's tables: care plans and their contacts, each home's signs of life, escalation steps, check-ins, alarm reviews."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shequ.core.iam.crypto import Encrypted
from shequ.db import Base, ChangeLogged, Placed, TenantScoped, Timestamped, utcnow
from shequ.scenarios.s11_care.rules import CALL_WAIT_MIN, COMMITTEE_WAIT_MIN, DEFAULT_THRESHOLDS


class CarePlan(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """关怀计划: one person's home watched by its sensors, the thresholds, and who to call."""

    __tablename__ = "s11_plan"
    __table_args__ = (UniqueConstraint("tenant_id", "person_id", name="uq_s11_plan_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    group: Mapped[str] = mapped_column(String(20), default="elderly_alone")
    no_motion_hours: Mapped[float] = mapped_column(Float, default=DEFAULT_THRESHOLDS["no_motion_hours"])
    day_start: Mapped[str] = mapped_column(String(5), default=DEFAULT_THRESHOLDS["day_start"])
    day_end: Mapped[str] = mapped_column(String(5), default=DEFAULT_THRESHOLDS["day_end"])
    no_door_hours: Mapped[float] = mapped_column(Float, default=DEFAULT_THRESHOLDS["no_door_hours"])
    away_hours: Mapped[float] = mapped_column(Float, default=DEFAULT_THRESHOLDS["away_hours"])
    water_hours: Mapped[float] = mapped_column(Float, default=DEFAULT_THRESHOLDS["water_hours"])
    water_min_m3: Mapped[float] = mapped_column(Float, default=DEFAULT_THRESHOLDS["water_min_m3"])
    call_wait_min: Mapped[int] = mapped_column(Integer, default=CALL_WAIT_MIN)
    committee_wait_min: Mapped[int] = mapped_column(Integer, default=COMMITTEE_WAIT_MIN)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | paused
    pause_reason: Mapped[str] = mapped_column(String(10), default="")  # away | hospital | other
    paused_until: Mapped[dt.datetime | None] = mapped_column()
    pause_note: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(500), default="")


class CareContact(Base, TenantScoped, Timestamped, ChangeLogged):
    """紧急联系人: called in order when the person does not answer."""

    __tablename__ = "s11_contact"
    __table_args__ = (Index("ix_s11_contact_plan", "plan_id", "order"),
                      Index("ix_s11_contact_phone_hash", "tenant_id", "phone_hash"))
    __pii__ = {"phone": "phone"}

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("s11_plan.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    relation: Mapped[str] = mapped_column(String(20), default="")
    phone: Mapped[str | None] = mapped_column(Encrypted())
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_mask: Mapped[str] = mapped_column(String(20), default="")
    order: Mapped[int] = mapped_column(Integer, default=1)


class Signs(Base, TenantScoped):
    """A home's signs of life as its devices report them (kept by the ingest handler)."""

    __tablename__ = "s11_signs"

    plan_id: Mapped[int] = mapped_column(ForeignKey("s11_plan.id", ondelete="CASCADE"), primary_key=True)
    place_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the home, to find it by device
    since_ms: Mapped[int] = mapped_column(BigInteger, default=0)  # watched since (or since resumed)
    last_motion_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_door_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_water_ms: Mapped[int | None] = mapped_column(BigInteger)
    water: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[ts_ms, total_m3], …]
    reset: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # alarm type → ms last cleared
    checked_day: Mapped[dt.date | None] = mapped_column(Date)  # the day of the last automatic check-in


class Escalation(Base, TenantScoped, Placed):
    """One step of an alarm's escalation chain: call the person, a contact, tell the committee, open a case."""

    __tablename__ = "s11_escalation"
    __table_args__ = (Index("ix_s11_escalation_alarm", "alarm_id", "step"),
                      Index("ix_s11_escalation_due", "tenant_id", "due_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarm.id", ondelete="CASCADE"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("s11_plan.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # call_person | call_contact | committee | case | stop
    target: Mapped[str] = mapped_column(String(100), default="")  # who, phone masked
    contact_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    due_at: Mapped[dt.datetime | None] = mapped_column()  # when the next step comes, unanswered
    outcome: Mapped[str] = mapped_column(String(20), default="")
    ref: Mapped[str] = mapped_column(String(100), default="")  # the gateway's reference, the case code
    actor: Mapped[str] = mapped_column(String(100), default="system")
    note: Mapped[str] = mapped_column(String(300), default="")


class Checkin(Base, TenantScoped, Placed):
    """每日签到: that a person was seen well today, and how (sensors, phone, visit)."""

    __tablename__ = "s11_checkin"
    __table_args__ = (UniqueConstraint("plan_id", "day", "how", name="uq_s11_checkin"),
                      Index("ix_s11_checkin_day", "tenant_id", "day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("s11_plan.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    how: Mapped[str] = mapped_column(String(10))  # sensors | phone | visit
    by: Mapped[str] = mapped_column(String(100), default="system")
    note: Mapped[str] = mapped_column(String(300), default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Review(Base, TenantScoped, Placed):
    """Staff's verdict on a care alarm: real or false (误报), with the reason."""

    __tablename__ = "s11_review"
    __table_args__ = (UniqueConstraint("alarm_id", name="uq_s11_review_alarm"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarm.id", ondelete="CASCADE"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("s11_plan.id", ondelete="CASCADE"), index=True)
    false_alarm: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(String(300), default="")
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
