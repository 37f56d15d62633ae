"""The throwing ledger: one incident per object_fall a facade camera reported, with its estimate."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, Placed, TenantScoped, Timestamped, utcnow

VERDICTS = ("pending", "confirmed", "false_alarm")  # 待核实, 已查实, 误报


class Incident(Base, TenantScoped, Timestamped, Placed):
    """高空抛物事件: where the object came from (floor, column, rooms), how sure, and the evidence.

    The place is the most likely room when the place tree has it, else the camera's building;
    ``located`` is false when the trajectory could not be located (``reason`` says why): the
    camera's report and its alarm stand, people look at the video.
    """

    __tablename__ = "s04_incident"
    __table_args__ = (
        Index("ix_s04_incident_at", "tenant_id", "at"),
        Index("ix_s04_incident_building", "tenant_id", "building_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # device time of the event
    located: Mapped[bool] = mapped_column(default=True)
    reason: Mapped[str] = mapped_column(String(300), default="")
    floor: Mapped[int | None] = mapped_column(Integer)
    column: Mapped[int | None] = mapped_column(Integer)  # 1-based, from the facade's left edge
    unit: Mapped[int | None] = mapped_column(Integer)
    rooms: Mapped[list[Any]] = mapped_column(JSON, default=list)  # room place codes, most likely first
    room_numbers: Mapped[list[Any]] = mapped_column(JSON, default=list)  # 1203, 1204 …
    room_place_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)  # those the place tree has
    confidence: Mapped[float | None] = mapped_column(Float)
    video: Mapped[str] = mapped_column(String(300), default="")
    points: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the trajectory as reported
    fit: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # release, residuals, probabilities
    alarm_id: Mapped[int | None] = mapped_column(Integer, index=True)
    case_id: Mapped[int | None] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(12), default="pending")
    verdict_by: Mapped[str | None] = mapped_column(String(100))
    verdict_note: Mapped[str] = mapped_column(String(500), default="")
