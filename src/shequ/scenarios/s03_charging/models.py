"""S03 tables: the charging sessions ledger (one row per port session of a pile)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, Placed, TenantScoped


class ChargingSession(Base, TenantScoped, Placed):
    """充电记录: one session on one port of a pile, from its session_start/session_stop events.

    ``started_at`` is None for a session whose start was not heard (it was running when the
    pile came online); ``stopped_at`` is None while it runs. Energy in kWh, the fee in fen.
    """

    __tablename__ = "s03_session"
    __table_args__ = (
        Index("ix_s03_session_site", "tenant_id", "facility_id", "started_at"),
        Index("ix_s03_session_open", "device_id", "port", "stopped_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    facility_id: Mapped[int | None] = mapped_column(Integer)
    port: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    stopped_at: Mapped[dt.datetime | None] = mapped_column()
    energy_kwh: Mapped[float] = mapped_column(Float, default=0.0)
    fee_fen: Mapped[int] = mapped_column(Integer, default=0)
    # how it ended: normal (unplugged, full), stopped (a stop command: over-temperature,
    # over-current) or power_cut (the site's box was cut); "" while running
    ended_by: Mapped[str] = mapped_column(String(12), default="")
