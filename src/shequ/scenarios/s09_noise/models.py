"""S09's tables: the noise class of areas and road buffers, and every judged minute of every monitor."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, ChangeLogged, Placed, TenantScoped, Timestamped


class NoiseZone(Base, TenantScoped, Timestamped, ChangeLogged):
    """声环境功能区: the GB 3096 class of an area place (grid, committee, compound), or of the band
    within ``buffer_m`` of a street's centre line (4a along main roads)."""

    __tablename__ = "s09_zone"
    __table_args__ = (UniqueConstraint("tenant_id", "place_id", name="uq_s09_zone_place"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("place.id", ondelete="CASCADE"), index=True)
    noise_class: Mapped[str] = mapped_column(String(2))  # 0 | 1 | 2 | 3 | 4a | 4b
    buffer_m: Mapped[float | None] = mapped_column(Float)  # streets only: the band's half width
    note: Mapped[str] = mapped_column(String(200), default="")


class NoiseMinute(Base, TenantScoped, Placed):
    """One minute of one monitor, judged by the class of the area where it stood (the place is
    that area, so area scopes apply); two readings in one minute are energy-averaged into it."""

    __tablename__ = "s09_minute"
    __table_args__ = (
        UniqueConstraint("device_id", "ts", name="uq_s09_minute"),
        Index("ix_s09_minute_tenant_ts", "tenant_id", "ts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    ts: Mapped[dt.datetime] = mapped_column()  # the minute's start (UTC)
    laeq: Mapped[float] = mapped_column(Float)
    lamax: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    noise_class: Mapped[str] = mapped_column(String(2))
    zone_id: Mapped[int | None] = mapped_column(Integer)  # the s09_zone that decided (None: the default)
    period: Mapped[str] = mapped_column(String(5))  # day | night
    limit_db: Mapped[float] = mapped_column(Float)
    over: Mapped[bool] = mapped_column(Boolean)
    readings: Mapped[int] = mapped_column(Integer, default=1)
