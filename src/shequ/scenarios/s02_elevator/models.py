"""S02's ledger: one row per e-bike detection by an elevator camera (电动车进电梯台账)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, ChangeLogged, Placed, TenantScoped, Timestamped


class Detection(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """One ``ebike_detected`` event of one camera, what it set off, and the operator's verdict.

    The place is the camera's (unit or building), so scopes apply as to the camera; the elevator
    is the camera's facility. ``blocked`` says whether the detection reached the rule's confidence
    threshold (and so held the doors and raised the alarm); one below it is kept for review.
    """

    __tablename__ = "s02_detection"
    __table_args__ = (
        Index("ix_s02_detection_at", "tenant_id", "detected_at"),
        Index("ix_s02_detection_device", "device_id", "detected_at"),
        Index("ix_s02_detection_open", "tenant_id", "left_at", "released_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id", ondelete="SET NULL"))
    detected_at: Mapped[dt.datetime] = mapped_column()
    ts_ms: Mapped[int] = mapped_column(BigInteger)  # the device's time of the event
    confidence: Mapped[float] = mapped_column(Float)
    snapshot: Mapped[str] = mapped_column(String(500), default="")
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    left_at: Mapped[dt.datetime | None] = mapped_column()
    doors_held_at: Mapped[dt.datetime | None] = mapped_column()
    hold_command_id: Mapped[int | None] = mapped_column(Integer)
    released_at: Mapped[dt.datetime | None] = mapped_column()
    released_by: Mapped[str | None] = mapped_column(String(100))
    alarm_id: Mapped[int | None] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(10), default="pending")  # pending | confirmed | false
    reason: Mapped[str | None] = mapped_column(String(20))  # pram | wheelchair | mobility_scooter | …
    verdict_note: Mapped[str] = mapped_column(String(300), default="")
    verdict_by: Mapped[str | None] = mapped_column(String(100))
    verdict_at: Mapped[dt.datetime | None] = mapped_column()
