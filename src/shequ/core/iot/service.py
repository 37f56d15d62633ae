"""Device operations for the web and the CLI: credentials, maintenance, the twin and history of
one device, dead letters, and the figures /metrics reads from the database."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, event, func, insert, select, text
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iot import credentials
from shequ.core.iot.models import (
    ACTIVE,
    CONDITIONS,
    DEAD_REASONS,
    MAINTENANCE,
    DeadLetter,
    Device,
    DeviceState,
    Telemetry,
)
from shequ.core.iot.types import DeviceType, get_type
from shequ.core.paging import Page
from shequ.core.places.models import Tenant
from shequ.db import utcnow

MAX_PAGE = 100_000


def get_device(*, session: Session, device_id: int) -> Device | None:
    """One device the session may see (a SELECT, so the tenant and the scope apply)."""
    return session.scalar(select(Device).where(Device.id == device_id))


def _after_commit(session: Session, fn: Callable[[], None]) -> None:
    event.listen(session, "after_commit", lambda _s: fn(), once=True)


def _forget_cached(session: Session, device_id: int) -> None:
    """Pipelines of this process drop the cached device now and again once the change is
    committed (a worker elsewhere reloads it within DEVICE_CACHE_S)."""
    from shequ.core.iot.pipeline import _default

    def forget() -> None:
        for pipeline in list(_default.values()):
            pipeline.devices.invalidate(device_id)

    forget()
    _after_commit(session, forget)


# --- credentials -----------------------------------------------------------------------------

def rotate_token(*, session: Session, device: Device, actor: str, ip: str = "") -> str:
    """Issue the device a new token (the old one stops working) and return it, once; audited."""
    rotated = device.token_hash is not None
    token = credentials.issue_token(device)
    iam.audit(session=session, actor=actor, action="device_token", target=f"device:{device.id}", ip=ip,
              detail={"op": "rotate" if rotated else "issue", "hint": device.token_hint})
    _forget_cached(session, device.id)
    return token


def revoke_token(*, session: Session, device: Device, actor: str, ip: str = "") -> None:
    """Take the device's token away: its messages are refused from the next batch on; audited."""
    credentials.revoke_token(device)
    iam.audit(session=session, actor=actor, action="device_token", target=f"device:{device.id}", ip=ip,
              detail={"op": "revoke"})
    _forget_cached(session, device.id)


# --- maintenance -----------------------------------------------------------------------------

def set_maintenance(*, session: Session, device: Device, on: bool, note: str = "") -> Device:
    """Put a device into maintenance (its alarms no longer count as alarms) or back to active;
    the twin's condition follows in the same transaction."""
    from shequ.core.iot import twin
    from shequ.core.iot.pipeline import now_ms

    if device.status == "retired":
        raise ValueError("设备已报废 (the device is retired)")
    device.status = MAINTENANCE if on else ACTIVE
    device.maintenance_note = (note or "").strip()[:300] or None if on else None
    session.flush()
    twin.refresh_conditions(session.connection(), [device.id], now_ms())
    _forget_cached(session, device.id)
    return device


# --- the twin and history of one device ------------------------------------------------------

def ms_to_datetime(ms: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC) if ms else None


def label_of(spec_label: str, name: str, lang: str) -> str:
    """Type labels are written "中文 / English" or just one of them."""
    if not spec_label:
        return name
    zh, _, en = spec_label.partition(" / ")
    return zh if lang.startswith("zh") or not en else en


def type_name(dtype: DeviceType | None, code: str, lang: str) -> str:
    if dtype is None:
        return code
    return dtype.name if lang.startswith("zh") or not dtype.name_en else dtype.name_en


def device_state(*, session: Session, device: Device, lang: str = "zh-CN") -> dict[str, Any]:
    """The twin of one device: condition, online, times, and each attribute with unit and label."""
    state = session.scalar(select(DeviceState).where(DeviceState.device_id == device.id))
    dtype = get_type(device.type_code)
    values: dict[str, Any] = dict(state.attrs or {}) if state else {}
    attrs = []
    specs = list(dtype.telemetry) if dtype else []
    for spec in specs:
        attrs.append({"name": spec.name, "label": label_of(spec.label, spec.name, lang), "unit": spec.unit,
                      "type": spec.type, "value": values.get(spec.name)})
    known = {s.name for s in specs}
    for name, value in sorted(values.items()):
        if name not in known:
            attrs.append({"name": name, "label": name, "unit": "", "type": "", "value": value})
    condition = state.condition if state else ("maintenance" if device.status == MAINTENANCE else "unknown")
    return {
        "device_id": device.id, "code": device.code, "type_code": device.type_code,
        "type_name": type_name(dtype, device.type_code, lang), "status": device.status,
        "condition": condition, "online": bool(state.online) if state else False,
        "seen_at": ms_to_datetime(state.seen_ms if state else None),
        "reported_at": ms_to_datetime(state.reported_ms if state else None),
        "changed_at": ms_to_datetime(state.changed_ms if state else None),
        "attrs": attrs,
    }


def measures(device: Device) -> list[str]:
    dtype = get_type(device.type_code)
    return [f.name for f in dtype.telemetry if f.is_measure] if dtype else []


GRAINS = ("auto", "raw", "m", "h", "d")


def history(*, session: Session, device: Device, field: str, start: dt.datetime, end: dt.datetime,
            grain: str = "auto") -> dict[str, Any]:
    """Points of one numeric field between two times: {grain, field, points}; raw points {t, v}
    for short ranges, rollups {t, n, avg, min, max, last} for long ones (see telemetry)."""
    from shequ.core.iot import telemetry

    if field not in measures(device):
        raise ValueError(f"field: {field!r} 不是该设备的数值测点 (not a numeric field of "
                         f"{device.type_code}; known: {', '.join(measures(device)) or '—'})")
    if grain not in GRAINS:
        raise ValueError(f"grain: 应为 {', '.join(GRAINS)} 之一 (must be one of {', '.join(GRAINS)})")
    if end <= start:
        raise ValueError("end: 结束时间须晚于开始时间 (end must be after start)")
    return telemetry.history(session.connection(), device.id, field, int(start.timestamp() * 1000),
                             int(end.timestamp() * 1000), grain)


def events(*, session: Session, device: Device, limit: int = 50) -> list[dict[str, Any]]:
    """The device's latest events (newest first), each with its type label and payload."""
    rows = session.connection().execute(
        select(Telemetry.ts, Telemetry.name, Telemetry.body)
        .where(Telemetry.device_id == device.id, Telemetry.kind == "e")
        .order_by(Telemetry.ts.desc()).limit(limit)).all()
    dtype = get_type(device.type_code)
    out = []
    for ts, name, body in rows:
        spec = dtype.events_by_name.get(name) if dtype else None
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = {}
        out.append({"at": ms_to_datetime(ts), "ts": ts, "type": name, "label": spec.label if spec else name,
                    "alarm": bool(spec.alarm) if spec else False, "data": data})
    return out


# --- listing devices with their twin ---------------------------------------------------------

def list_devices(*, session: Session, type_code: str | None = None, condition: str | None = None,
                 online: bool | None = None, q: str | None = None, place_id: int | None = None,
                 page: int = 1, size: int = 50) -> Page:
    """Devices with their state row (or None), filtered; scopes apply to the devices."""
    stmt = select(Device, DeviceState).outerjoin(DeviceState, DeviceState.device_id == Device.id)
    if type_code:
        stmt = stmt.where(Device.type_code == type_code)
    if condition:
        if condition not in CONDITIONS:
            raise ValueError(f"condition: 应为 {', '.join(CONDITIONS)} 之一")
        stmt = stmt.where(func.coalesce(DeviceState.condition, "unknown") == condition)
    if online is True:
        stmt = stmt.where(DeviceState.online.is_(True))
    elif online is False:  # a device never heard from is offline too
        stmt = stmt.where(DeviceState.online.is_(False) | DeviceState.device_id.is_(None))
    if q:
        like = f"%{q.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(Device.name.like(like) | Device.code.like(like))
    if place_id:
        from shequ.core.places.models import Place

        kind = session.scalar(select(Place.kind).where(Place.id == place_id))
        column = {"grid": Device.grid_id, "committee": Device.committee_id, "compound": Device.compound_id,
                  "building": Device.building_id}.get(kind or "", Device.place_id)
        stmt = stmt.where(column == place_id)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page = max(1, min(page, MAX_PAGE))
    rows = session.execute(stmt.order_by(Device.code, Device.id).offset((page - 1) * size).limit(size)).all()
    return Page(items=[(d, s) for d, s in rows], total=total, page=page, size=size)


# --- dead letters ----------------------------------------------------------------------------

def _tenant(session: Session) -> int:
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise ValueError("no tenant bound to the session")
    return int(tenant_id)


def dead_letters(*, session: Session, reason: str | None = None, device: str | None = None,
                 since: dt.datetime | None = None, page: int = 1, size: int = 50) -> Page:
    """The tenant's dead letters, newest first; ``device`` is a device code (or part of one)."""
    if reason and reason not in DEAD_REASONS:
        raise ValueError(f"reason: 应为 {', '.join(DEAD_REASONS)} 之一")
    stmt = select(DeadLetter).where(DeadLetter.tenant_id == _tenant(session))
    if reason:
        stmt = stmt.where(DeadLetter.reason == reason)
    if device:
        stmt = stmt.where(DeadLetter.device_code.like(f"%{device.replace('%', '').replace('_', '')}%"))
    if since is not None:
        stmt = stmt.where(DeadLetter.received_at >= since)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = max(1, min(page, MAX_PAGE))
    items = list(session.scalars(stmt.order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc())
                                 .offset((page - 1) * size).limit(size)))
    return Page(items=items, total=total, page=page, size=size)


def dead_letter(*, session: Session, letter_id: int) -> DeadLetter | None:
    return session.scalar(select(DeadLetter).where(DeadLetter.id == letter_id,
                                                   DeadLetter.tenant_id == _tenant(session)))


def dead_letter_counts(*, session: Session, since: dt.datetime | None = None) -> dict[str, int]:
    """How many dead letters of each reason the tenant has (since a time)."""
    stmt = select(DeadLetter.reason, func.count()).where(DeadLetter.tenant_id == _tenant(session))
    if since is not None:
        stmt = stmt.where(DeadLetter.received_at >= since)
    return {reason: n for reason, n in session.execute(stmt.group_by(DeadLetter.reason))}


def payload_text(payload: bytes) -> str:
    """A dead letter's bytes as text to show (undecodable bytes replaced)."""
    return bytes(payload or b"").decode("utf-8", errors="replace")


BAD_TOKEN_KEEP_PER_MINUTE = 30


class _Window:
    """How many refused requests each address had in the current minute (per process)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.minute = 0
        self.counts: dict[str, int] = {}

    def allow(self, address: str, limit: int) -> bool:
        minute = int(self.clock() // 60)
        if minute != self.minute:
            self.minute, self.counts = minute, {}
        n = self.counts.get(address, 0) + 1
        self.counts[address] = n
        return n <= limit


_bad_token_window = _Window()


def store_bad_token(conn: Connection, *, tenant_id: int | None, payload: bytes, detail: str,
                    transport: str = "http", address: str = "") -> bool:
    """A message whose token names no device: kept as a dead letter of the tenant it came to —
    at most ``BAD_TOKEN_KEEP_PER_MINUTE`` a minute from one address, so that anyone able to reach
    the endpoint cannot fill the store; the rest are only counted. Returns whether it was kept."""
    from shequ.core.iot import metrics

    metrics.MESSAGES.labels(transport, "dead").inc()
    metrics.DEAD.labels("bad_token").inc()
    if not _bad_token_window.allow(address, BAD_TOKEN_KEEP_PER_MINUTE):
        return False
    conn.execute(insert(DeadLetter), [{
        "tenant_id": tenant_id, "received_at": utcnow(), "transport": transport, "topic": "",
        "device_code": None, "device_id": None, "reason": "bad_token", "detail": detail[:500],
        "payload": bytes(payload[:65536]),
    }])
    return True


# --- figures for /metrics --------------------------------------------------------------------

def scrape_figures(engine: Engine) -> dict[str, Any]:
    """Devices total and online per tenant code, dead letters of the last hour per tenant and reason."""
    since = utcnow() - dt.timedelta(hours=1)
    with engine.connect() as conn:
        devices = conn.execute(text(
            "SELECT t.code, COUNT(d.id), SUM(CASE WHEN s.online THEN 1 ELSE 0 END) "
            "FROM tenant t LEFT JOIN device d ON d.tenant_id = t.id "
            "LEFT JOIN device_state s ON s.device_id = d.id GROUP BY t.code")).all()
        dead = conn.execute(
            select(Tenant.code, DeadLetter.reason, func.count())
            .select_from(DeadLetter).outerjoin(Tenant, Tenant.id == DeadLetter.tenant_id)
            .where(DeadLetter.received_at >= since)
            .group_by(Tenant.code, DeadLetter.reason)).all()
    return {
        "devices": {code: (int(total or 0), int(online or 0)) for code, total, online in devices},
        "dead_last_hour": {(code or "", reason): int(n) for code, reason, n in dead},
    }
