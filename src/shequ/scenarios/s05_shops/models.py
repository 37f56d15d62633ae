"""S05's tables: the shop registry, inspection tasks and the nights with presence seen in shops."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, ChangeLogged, Placed, TenantScoped, Timestamped

RISK_LEVELS = ("low", "medium", "high")
PLANNED, DONE, OVERDUE = "planned", "done", "overdue"
STATUSES = (PLANNED, DONE, OVERDUE)
RESULTS = ("pass", "rectify", "fail")


class Shop(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """One shop (a place of kind ``shop``) as 安监所 keeps it: 商住登记 and the base risk level.

    A shop without a row is treated as not registered as a residence, at the base level "low".
    """

    __tablename__ = "s05_shop"
    __table_args__ = (UniqueConstraint("tenant_id", "place_id", name="uq_s05_shop_place"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    registered_residence: Mapped[bool] = mapped_column(Boolean, default=False)  # 商住登记
    risk_level: Mapped[str] = mapped_column(String(10), default="low")  # 基础风险: low | medium | high
    notes: Mapped[str] = mapped_column(String(500), default="")
    updated_by: Mapped[str] = mapped_column(String(100), default="system")


class Inspection(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """An inspection task of 安监所 at a shop, its result and the rectification (整改) it asks for."""

    __tablename__ = "s05_inspection"
    __table_args__ = (Index("ix_s05_inspection_status", "tenant_id", "status", "planned_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    planned_date: Mapped[dt.date] = mapped_column(Date)
    inspector_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default=PLANNED)  # planned | done | overdue
    reason: Mapped[str] = mapped_column(String(10), default="manual")  # manual | alarm
    alarm_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    result: Mapped[str | None] = mapped_column(String(10))  # pass | rectify | fail
    findings: Mapped[str] = mapped_column(String(1000), default="")
    done_at: Mapped[dt.datetime | None] = mapped_column()
    done_by: Mapped[str | None] = mapped_column(String(100))
    rectify_by: Mapped[dt.date | None] = mapped_column(Date)
    rectified_at: Mapped[dt.datetime | None] = mapped_column()
    rectified_by: Mapped[str | None] = mapped_column(String(100))
    rectify_note: Mapped[str] = mapped_column(String(500), default="")


class NightPresence(Base, TenantScoped, Placed):
    """Motion seen at night in one shop during one night (the local date the night began)."""

    __tablename__ = "s05_presence"
    __table_args__ = (UniqueConstraint("tenant_id", "place_id", "night", name="uq_s05_presence_night"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    night: Mapped[dt.date] = mapped_column(Date)
    device_id: Mapped[int | None] = mapped_column(Integer)
    first_ms: Mapped[int] = mapped_column(BigInteger)  # the first motion of the night
    span_ms: Mapped[int] = mapped_column(BigInteger)  # the start of the current unbroken span
    last_ms: Mapped[int] = mapped_column(BigInteger)  # the latest motion
    readings: Mapped[int] = mapped_column(Integer, default=0)  # readings with motion
    sustained: Mapped[bool] = mapped_column(Boolean, default=False)  # a span reached sustain_min
    smoke_ms: Mapped[int | None] = mapped_column(BigInteger)  # smoke while someone was there
    alarm_id: Mapped[int | None] = mapped_column(Integer)
