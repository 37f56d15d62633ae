"""物 things: devices placed in the community (extended by the IoT issue)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, ChangeLogged, Placed, TenantScoped, Timestamped


class Device(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """A sensor, camera, gate or terminal placed at a place (or a facility)."""

    __tablename__ = "device"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", name="uq_device_code"),
        Index("ix_device_type", "tenant_id", "type_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    type_code: Mapped[str] = mapped_column(String(40))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id", ondelete="SET NULL"))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    vendor: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="active")
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
