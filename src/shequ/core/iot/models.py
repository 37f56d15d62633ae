"""物 things: devices, their credentials and commands, the telemetry store and the twin.

The hot tables (telemetry, rollups, twin, state changes) are written by the ingest pipeline
through Core statements in batches and keep time as integer epoch milliseconds (UTC by
definition); everything people edit goes through the ORM with zone-aware datetimes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, ChangeLogged, Placed, TenantScoped, Timestamped, utcnow

# Device.status
ACTIVE, MAINTENANCE, RETIRED = "active", "maintenance", "retired"
DEVICE_STATUSES = (ACTIVE, MAINTENANCE, RETIRED)
# DeviceState.condition, worst first
CONDITIONS = ("alarm", "fault", "offline", "maintenance", "ok", "unknown")


class Device(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """A sensor, camera, gate or terminal placed at a place (or a facility)."""

    __tablename__ = "device"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", name="uq_device_code"),
        Index("ix_device_type", "tenant_id", "type_code"),
    )
    __changelog_skip__ = frozenset({"updated_at", "created_at", "token_hash"})

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    type_code: Mapped[str] = mapped_column(String(40))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id", ondelete="SET NULL"))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    vendor: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=ACTIVE)  # active | maintenance | retired
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # credentials: HMAC-SHA256 of the device token (never the token itself)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    token_hint: Mapped[str | None] = mapped_column(String(12))  # last characters, to tell tokens apart
    token_issued_at: Mapped[dt.datetime | None] = mapped_column()
    token_revoked_at: Mapped[dt.datetime | None] = mapped_column()
    offline_after_s: Mapped[int | None] = mapped_column(Integer)  # overrides the type's timeout
    maintenance_note: Mapped[str | None] = mapped_column(String(300))


class DeviceState(Base):
    """The twin of one device: the latest value of every attribute and its derived condition."""

    __tablename__ = "device_state"

    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer, index=True)  # goes with its device
    place_id: Mapped[int | None] = mapped_column(Integer, index=True)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # attribute → latest value
    reported_ms: Mapped[int] = mapped_column(BigInteger, default=0)  # device time of the latest message
    seen_ms: Mapped[int] = mapped_column(BigInteger, default=0)  # when we last heard from it
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    condition: Mapped[str] = mapped_column(String(12), default="unknown")
    changed_ms: Mapped[int] = mapped_column(BigInteger, default=0)  # last change of condition


class TwinChange(Base):
    """A change of a device's state attribute or condition (a repeated value is not a change)."""

    __tablename__ = "twin_change"
    __table_args__ = (Index("ix_twin_change_device", "device_id", "attr", "ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[int] = mapped_column(BigInteger)
    attr: Mapped[str] = mapped_column(String(60))  # a state field, or "condition"
    value: Mapped[str] = mapped_column(Text)  # JSON
    previous: Mapped[str | None] = mapped_column(Text)  # JSON


class PlaceState(Base):
    """The derived state of a place from the devices within it (room up to grid)."""

    __tablename__ = "place_state"

    place_id: Mapped[int] = mapped_column(ForeignKey("place.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer, index=True)  # goes with its place
    kind: Mapped[str] = mapped_column(String(20))
    devices: Mapped[int] = mapped_column(Integer, default=0)
    alarm: Mapped[int] = mapped_column(Integer, default=0)
    fault: Mapped[int] = mapped_column(Integer, default=0)
    offline: Mapped[int] = mapped_column(Integer, default=0)
    maintenance: Mapped[int] = mapped_column(Integer, default=0)
    ok: Mapped[int] = mapped_column(Integer, default=0)
    unknown: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(12), default="unknown")  # the worst condition present
    ts: Mapped[int] = mapped_column(BigInteger, default=0)


class PlaceStateChange(Base):
    """Each change of a place's counts, so the twin of a past moment can be read back."""

    __tablename__ = "place_state_change"
    __table_args__ = (Index("ix_place_state_change_place", "place_id", "ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    place_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12))
    counts: Mapped[str] = mapped_column(Text)  # JSON {"alarm": n, "offline": n, …}


class Telemetry(Base):
    """Every accepted message, append-only: telemetry, events, status reports and replies."""

    __tablename__ = "telemetry"
    __table_args__ = (
        UniqueConstraint("device_id", "msg_id", name="uq_telemetry_msg"),
        Index("ix_telemetry_device_ts", "device_id", "ts"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[int] = mapped_column(BigInteger)  # device time, epoch ms
    msg_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(1))  # t telemetry | e event | s status | r reply
    name: Mapped[str] = mapped_column(String(60), default="")  # event type or command id
    body: Mapped[str] = mapped_column(Text)  # JSON: values, event data or reply


class TelemetryRollup(Base):
    """Aggregates of each numeric field per minute (m), hour (h) and day (d)."""

    __tablename__ = "telemetry_rollup"
    __table_args__ = {"sqlite_with_rowid": False}  # the key is the row: upserts touch one b-tree

    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    field: Mapped[str] = mapped_column(String(60), primary_key=True)
    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch ms of the bucket start (UTC)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    n: Mapped[int] = mapped_column(Integer)
    sum: Mapped[float] = mapped_column(Float)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)
    last_ts: Mapped[int] = mapped_column(BigInteger)


class IngestMark(Base):
    """Watermarks of background steps over the telemetry table (e.g. rollups: last id done)."""

    __tablename__ = "ingest_mark"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class DeadLetter(Base):
    """A message that could not be accepted, kept with its reason (and its bytes) for review."""

    __tablename__ = "dead_letter"
    __table_args__ = (Index("ix_dead_letter_tenant_time", "tenant_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))  # None: unknown tenant
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    transport: Mapped[str] = mapped_column(String(10))  # mqtt | http | inproc
    topic: Mapped[str] = mapped_column(String(300), default="")
    device_code: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(20))  # bad_json | unknown_device | bad_token | …
    detail: Mapped[str] = mapped_column(String(500), default="")
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the first 64 KiB as received


class DeviceCommand(Base, TenantScoped):
    """A command sent down to a device and what became of it."""

    __tablename__ = "device_command"
    __table_args__ = (Index("ix_device_command_device", "device_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|sent|acked|failed|timed_out
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    replied_at: Mapped[dt.datetime | None] = mapped_column()
    deadline: Mapped[dt.datetime] = mapped_column()
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    source: Mapped[str] = mapped_column(String(40), default="api")  # api | rule:<id> | …


DEAD_REASONS = {
    "bad_json": "报文不是合法 JSON / malformed JSON",
    "bad_message": "报文结构不符 / message shape wrong",
    "unknown_tenant": "未知街道 / unknown tenant",
    "unknown_device": "未登记设备 / unknown device",
    "bad_token": "设备凭证错误 / bad device token",
    "revoked": "设备凭证已吊销 / device credential revoked",
    "retired": "设备已报废 / device retired",
    "schema": "数据不符设备类型 / does not match the device type",
    "time_range": "时间过早或过晚 / time far in the past or future",
    "unknown_command": "未知命令回执 / reply to an unknown command",
}
