"""S04's one write path (incidents from object_fall events, verdicts) and its reads (lists, heat map, supervision)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from shequ.core.errors import FieldError
from shequ.core.plugins import Tile
from shequ.db import session_scope
from shequ.scenarios.s04_throwing.locate import Calibration, LocateError, locate, parse_points
from shequ.scenarios.s04_throwing.models import VERDICTS, Incident

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
ALARM_TYPE = "object_fall"
ACTOR = "s04:locate"
REPEAT_DAYS = 90  # repeat rooms and the supervision list look this far back
MAX_POINTS = 2000  # a trajectory longer than this is kept cut (80 s at 25 frames a second)


# --- the change handler: object_fall → incident with its estimate -------------------------------


def on_batch(changes: Any) -> None:
    """Locate every object_fall of the batch and record it as an incident on the rule's alarm."""
    falls = [(dev_id, ts, data) for dev_id, ts, kind, data in changes.events if kind == ALARM_TYPE
             and (info := changes.devices.get(dev_id)) is not None and info.type_code == "facade_camera"]
    if not falls:
        return
    by_tenant: dict[int, list[tuple[int, int, dict[str, Any]]]] = defaultdict(list)
    for dev_id, ts, data in falls:
        by_tenant[changes.devices[dev_id].tenant_id].append((dev_id, ts, data))
    for tenant_id, items in by_tenant.items():
        with changes.session(tenant_id, ACTOR) as session:
            for dev_id, ts, data in items:
                record_fall(session=session, device_id=dev_id, ts_ms=ts, data=data or {})


def record_fall(*, session: Session, device_id: int, ts_ms: int, data: dict[str, Any]) -> Incident:
    """One object_fall as an incident: locate it, attach the estimate to its alarm (flush only)."""
    from shequ.core.alarms import service as alarms
    from shequ.core.alarms.models import Alarm
    from shequ.core.iot.models import Device
    from shequ.core.places.models import Place

    device = session.get(Device, device_id)
    assert device is not None
    building = session.get(Place, device.building_id) if device.building_id else None
    raw = data.get("points")
    video = str(data.get("video") or "")[:300]
    incident = Incident(device_id=device.id, at=dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC), video=video,
                        points=raw[:MAX_POINTS] if isinstance(raw, list) else [],
                        place_id=device.building_id or device.place_id)
    try:
        calibration = Calibration.from_attrs(device.attrs or {})
        estimate = locate(parse_points(raw), calibration)
    except LocateError as exc:
        incident.located, incident.reason = False, exc.message[:300] if exc.reason != "points" else f"points: {exc.message}"[:300]
        incident.fit = {"reason": exc.reason}
        estimate = None
    if estimate is not None:
        code = building.code if building is not None else ""
        codes = [r.code(code) for r in estimate.rooms] if code else []
        found = dict(session.execute(select(Place.code, Place.id).where(Place.code.in_(codes)))
                     .all()) if codes else {}
        incident.floor, incident.column, incident.unit = estimate.floor, estimate.column + 1, estimate.unit
        incident.rooms = codes
        incident.room_numbers = [r.number for r in estimate.rooms]
        incident.room_place_ids = [found[c] for c in codes if c in found]
        incident.confidence = estimate.confidence
        incident.fit = {**estimate.fit, "release": {"t": estimate.release_t, "x": estimate.release_x,
                                                    "z": estimate.release_z},
                        "candidates": [{"room": r.number, "unit": r.unit, "floor": r.floor, "column": r.column + 1,
                                        "p": r.probability} for r in estimate.rooms]}
        if codes and codes[0] in found:
            incident.place_id = found[codes[0]]
    alarm = session.scalar(select(Alarm).where(Alarm.device_id == device.id, Alarm.type == ALARM_TYPE)
                           .order_by(Alarm.active_key.is_(None), Alarm.id.desc()).limit(1)
                           .execution_options(all_scopes=True))
    if alarm is not None:
        incident.alarm_id, incident.case_id = alarm.id, alarm.case_id
    session.add(incident)
    session.flush()
    if alarm is not None:
        if estimate is not None:
            note = estimate.note()
            alarm.context = {**(alarm.context or {}), "s04": {
                "incident_id": incident.id, "floor": incident.floor, "column": incident.column,
                "rooms": incident.rooms, "room_numbers": incident.room_numbers, "confidence": incident.confidence}}
        else:
            note = f"无法推算抛物位置 (cannot locate): {incident.reason}"
            alarm.context = {**(alarm.context or {}), "s04": {"incident_id": incident.id, "located": False,
                                                              "reason": incident.reason}}
        alarms.comment(session=session, alarm=alarm, actor=ACTOR, note=note,
                       now=dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC))
    return incident


def sweep(engine: Engine, now: dt.datetime | None = None) -> int:
    """Give incidents the case their alarm got once the batch committed (cases open after it)."""
    from shequ.core.alarms.models import Alarm

    with engine.connect() as conn:
        tenants = list(conn.execute(select(Incident.tenant_id).join(Alarm, Alarm.id == Incident.alarm_id)
                                    .where(Incident.case_id.is_(None), Alarm.case_id.is_not(None)).distinct())
                       .scalars())
    done = 0
    for tenant_id in tenants:
        with session_scope(tenant_id=tenant_id, engine=engine, actor="s04:sweep") as s:
            rows = s.execute(select(Incident, Alarm.case_id).join(Alarm, Alarm.id == Incident.alarm_id)
                             .where(Incident.case_id.is_(None), Alarm.case_id.is_not(None))).all()
            for incident, case_id in rows:
                incident.case_id = case_id
            done += len(rows)
    return done


def set_verdict(*, session: Session, incident_id: int, verdict: str, actor: str, note: str = "") -> Incident:
    """核实: confirm an incident or mark it a false alarm (a bird, a leaf, rain)."""
    if verdict not in VERDICTS:
        raise FieldError("verdict", f"{verdict!r} is not one of {', '.join(VERDICTS)}")
    incident = get_incident(session=session, incident_id=incident_id)
    if incident is None:
        raise FieldError("incident_id", f"incident {incident_id} does not exist")
    incident.verdict, incident.verdict_by, incident.verdict_note = verdict, actor, note.strip()[:500]
    session.flush()
    return incident


# --- reads ----------------------------------------------------------------------------------------


@dataclass
class IncidentFilter:
    device_id: int | None = None
    building_id: int | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    limit: int = 100


def get_incident(*, session: Session, incident_id: int) -> Incident | None:
    """An incident in the session's tenant and scope."""
    return session.scalar(select(Incident).where(Incident.id == incident_id))


def list_incidents(*, session: Session, filters: IncidentFilter) -> tuple[list[Incident], int]:
    """Incidents newest first, filtered by device, building and period; with the total."""
    stmt = select(Incident)
    if filters.device_id is not None:
        stmt = stmt.where(Incident.device_id == filters.device_id)
    if filters.building_id is not None:
        stmt = stmt.where(Incident.building_id == filters.building_id)
    if filters.start is not None:
        stmt = stmt.where(Incident.at >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(Incident.at < filters.end)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(session.scalars(stmt.order_by(Incident.at.desc(), Incident.id.desc()).limit(filters.limit)))
    return rows, int(total)


def resolve_device(*, session: Session, ref: str) -> int | None:
    """A facade camera by id or code (None when there is none in scope)."""
    from shequ.core.iot.models import Device

    cond = Device.id == int(ref) if ref.isdigit() else Device.code == ref
    return session.scalar(select(Device.id).where(cond, Device.type_code == "facade_camera"))


def resolve_building(*, session: Session, ref: str) -> int | None:
    """A building by id or place code."""
    from shequ.core.places.models import Place

    cond = Place.id == int(ref) if ref.isdigit() else Place.code == ref
    return session.scalar(select(Place.id).where(cond, Place.kind == "building"))


def labels(*, session: Session, incidents: list[Incident]) -> dict[str, dict[int, str]]:
    """Names of the devices and buildings of some incidents (one query each)."""
    from shequ.core.iot.models import Device
    from shequ.core.places.models import Place

    dev_ids = {i.device_id for i in incidents if i.device_id}
    b_ids = {i.building_id for i in incidents if i.building_id}
    devices = dict(session.execute(select(Device.id, Device.code).where(Device.id.in_(dev_ids))).all()) if dev_ids else {}
    buildings = {pid: (addr or name) for pid, name, addr in session.execute(
        select(Place.id, Place.name, Place.address_text).where(Place.id.in_(b_ids)))} if b_ids else {}
    return {"devices": devices, "buildings": buildings}


@dataclass
class HeatMap:
    building_id: int
    name: str
    floors: int
    cells: dict[tuple[int, int], int]  # (floor, hour) → incidents
    by_floor: dict[int, int]
    by_hour: dict[int, int]
    total: int
    peak: int


def heat_map(*, session: Session, building_id: int, start: dt.datetime, end: dt.datetime) -> HeatMap | None:
    """楼层 × 时段热力图: located incidents (not false alarms) by floor and local hour of day."""
    from shequ.core.places.models import Place

    building = session.scalar(select(Place).where(Place.id == building_id, Place.kind == "building"))
    if building is None:
        return None
    rows = session.execute(select(Incident.floor, Incident.at).where(
        Incident.building_id == building_id, Incident.located.is_(True), Incident.verdict != "false_alarm",
        Incident.at >= start, Incident.at < end)).all()
    cells: Counter[tuple[int, int]] = Counter()
    for floor, at in rows:
        if floor is not None:
            cells[(floor, at.astimezone(SHANGHAI).hour)] += 1
    floors = max([1, int(building.floors or 0), *(f for f, _h in cells)])
    by_floor: Counter[int] = Counter()
    by_hour: Counter[int] = Counter()
    for (f, h), n in cells.items():
        by_floor[f] += n
        by_hour[h] += n
    return HeatMap(building.id, building.address_text or building.name, floors, dict(cells), dict(by_floor),
                   dict(by_hour), sum(cells.values()), max(cells.values(), default=0))


@dataclass
class WatchRoom:
    """重点关注: a room that incidents keep pointing at."""

    room: str  # place code
    number: int | None
    building_id: int | None
    place_id: int | None
    incidents: int
    confirmed: int
    last_at: dt.datetime
    hours: list[int] = field(default_factory=list)  # local hours of its incidents
    advice: str = ""


def supervision(*, session: Session, now: dt.datetime | None = None, days: int = REPEAT_DAYS,
                min_incidents: int = 2) -> list[WatchRoom]:
    """Repeat rooms (≥ ``min_incidents`` located, not false, in ``days``) and rooms of confirmed
    incidents, the most incidents first, each with the advice for targeted supervision."""
    now = now or dt.datetime.now(dt.UTC)
    rows = session.execute(select(Incident.rooms, Incident.room_numbers, Incident.room_place_ids,
                                  Incident.building_id, Incident.at, Incident.verdict, Incident.place_id).where(
        Incident.located.is_(True), Incident.verdict != "false_alarm",
        Incident.at >= now - dt.timedelta(days=days))).all()
    rooms: dict[str, WatchRoom] = {}
    for codes, numbers, _ids, building_id, at, verdict, place_id in rows:
        if not codes:
            continue
        code = codes[0]
        w = rooms.get(code)
        if w is None:
            w = rooms[code] = WatchRoom(code, (numbers or [None])[0], building_id, None, 0, 0, at)
        w.incidents += 1
        w.confirmed += verdict == "confirmed"
        w.last_at = max(w.last_at, at)
        w.hours.append(at.astimezone(SHANGHAI).hour)
        if place_id is not None and w.place_id is None and code:
            w.place_id = place_id
    out = [w for w in rooms.values() if w.incidents >= min_incidents or w.confirmed]
    for w in out:
        if w.confirmed >= 2:
            w.advice = "refer"  # 移交公安
        elif w.incidents >= 3 or w.confirmed:
            w.advice = "visit"  # 入户约谈
        else:
            w.advice = "watch"  # 宣传提醒、重点监控
        w.hours.sort()
    out.sort(key=lambda w: (-w.confirmed, -w.incidents, -w.last_at.timestamp()))
    return out


def tile(*, session: Session, lang: str) -> Tile:
    """The brain tile: today's and this month's incidents, those not yet checked, rooms watched."""
    now = dt.datetime.now(dt.UTC)
    midnight = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    today, month, pending = session.execute(select(
        func.count().filter(Incident.at >= midnight),
        func.count().filter(Incident.at >= now - dt.timedelta(days=30)),
        func.count().filter(Incident.verdict == "pending", Incident.at >= now - dt.timedelta(days=30)),
    ).select_from(Incident)).one()
    recent = session.scalar(select(func.count()).select_from(Incident).where(
        Incident.verdict == "pending", Incident.at >= now - dt.timedelta(hours=1))) or 0
    zh = lang != "en"
    return Tile(title="高空抛物" if zh else "High-altitude throwing",
                figures=(("今日" if zh else "Today", str(today)), ("近30天" if zh else "30 days", str(month)),
                         ("待核实" if zh else "To check", str(pending))),
                link="/throwing", alert=recent > 0)
