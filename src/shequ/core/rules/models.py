"""Rules as data: each rule a versioned row per tenant, and its evaluation state in the database
(so that any worker can evaluate any message)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, ChangeLogged, TenantScoped, Timestamped, utcnow

SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE")


class Rule(Base, TenantScoped, Timestamped, ChangeLogged):
    """One rule: which devices it watches, its condition (by kind), and what it does when it
    fires and clears. ``spec`` is validated by the kind's schema (``shequ.core.rules.kinds``)."""

    __tablename__ = "rule"
    __table_args__ = (UniqueConstraint("tenant_id", "code", name="uq_rule_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    scenario: Mapped[str] = mapped_column(String(3), default="")  # S01…S20 or "" for the kernel
    origin: Mapped[str] = mapped_column(String(20), default="tenant")  # tenant | default
    kind: Mapped[str] = mapped_column(String(20))  # threshold | absence | rate | composite | geofence | stale
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # which devices: {"device_types": [...], "devices": [ids], "places": [ids]} (empty: all)
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the kind's condition
    # only fire within: {"start": "22:00", "end": "06:00", "days": "all|workdays|offdays"}
    window: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(14), default="MAJOR")
    alarm_type: Mapped[str] = mapped_column(String(60))  # the alarm this rule raises
    # what happens: [{"do": "alarm"}, {"do": "command", ...}, {"do": "case", ...}, ...]
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class RuleVersion(Base, TenantScoped):
    """Every saved version of a rule, whole, with who saved it: the rule's history."""

    __tablename__ = "rule_version"
    __table_args__ = (UniqueConstraint("rule_id", "version", name="uq_rule_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rule.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    saved_by: Mapped[str] = mapped_column(String(100), default="system")
    note: Mapped[str] = mapped_column(String(300), default="")


class RuleState(Base):
    """The evaluation state of one rule for one subject (a device, or a place for composites).

    ``active`` is whether the rule has fired and not cleared; ``since_ms`` when its condition
    became true (for minimum durations); ``last_ms`` the last matching message (absence,
    staleness); ``marks`` recent match times (rates). Times are epoch ms.
    """

    __tablename__ = "rule_state"
    __table_args__ = (
        Index("ix_rule_state_active", "tenant_id", "active"),
        Index("ix_rule_state_place", "rule_id", "place_id"),
    )

    rule_id: Mapped[int] = mapped_column(ForeignKey("rule.id", ondelete="CASCADE"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(30), primary_key=True)  # "d:<device id>" | "p:<place id>"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(Integer)
    place_id: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    holding: Mapped[bool] = mapped_column(Boolean, default=False)  # condition true, duration not yet met
    since_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    last_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    fired_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    cleared_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    value: Mapped[Any] = mapped_column(JSON)  # the value that decided the latest evaluation
    marks: Mapped[list[int]] = mapped_column(JSON, default=list)
    alarm_id: Mapped[int | None] = mapped_column(Integer)
