"""S02's one write path and its reads: the detection ledger, verdicts, remote intercom and clearing, statistics."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, func, select, text
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import Alarm
from shequ.core.errors import FieldError
from shequ.core.iot import commands
from shequ.core.iot.models import Device, DeviceCommand
from shequ.core.paging import Page
from shequ.core.places.models import Place, Tenant
from shequ.core.plugins import Tile
from shequ.core.registry.models import Facility
from shequ.core.rules.models import Rule
from shequ.db import session_scope, utcnow
from shequ.scenarios.s02_elevator.models import Detection
from shequ.scenarios.s02_elevator.rules import EBIKE_RULE, FALSE_REASONS, THRESHOLD, VERDICTS

if TYPE_CHECKING:
    from shequ.core.iot.pipeline import Changes

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAMERA = "elevator_camera"
DETECTED, LEFT = "ebike_detected", "ebike_left"
HOLD, RELEASE = "hold_doors", "release_doors"
REASONS = {code: (zh, en) for code, zh, en in FALSE_REASONS}
MAX_TEXT = 200
MAX_NOTE = 300
MAX_PERIOD_DAYS = 366
HELD_AT_MOST = dt.timedelta(hours=2)  # a hold older than this without release is not "held now"


class ElevatorError(FieldError):
    """Input S02 refuses; names the field."""


def _at(ts_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)


# --- the ledger, written from the ingest batches -----------------------------------------------

def on_batch(changes: Changes) -> None:
    """Change handler: each e-bike event of an elevator camera goes into the ledger (in the batch)."""
    mine: dict[int, list[tuple[int, int, str, dict[str, Any]]]] = defaultdict(list)
    for device_id, ts, etype, data in changes.events:
        if etype != DETECTED and etype != LEFT:
            continue
        info = changes.devices.get(device_id)
        if info is not None and info.type_code == CAMERA:
            mine[info.tenant_id].append((device_id, ts, etype, data))
    if not mine:
        return
    for tenant_id, items in mine.items():
        with changes.session(tenant_id, "s02") as session:
            record_events(session=session, events=sorted(items, key=lambda e: e[1]))


def threshold_of(*, session: Session) -> float | None:
    """The confidence from which the tenant's e-bike rule blocks the elevator (None: rule off)."""
    rule = session.scalar(select(Rule).where(Rule.code == EBIKE_RULE))
    if rule is None or not rule.enabled:
        return None
    where = (rule.spec or {}).get("where") or {}
    value = where.get("value", THRESHOLD)
    return float(value) if isinstance(value, (int, float)) else THRESHOLD


def _door_command(session: Session, device_id: int) -> DeviceCommand | None:
    """The device's latest hold or release command (the doors' state as we last asked it)."""
    return session.scalar(select(DeviceCommand).where(DeviceCommand.device_id == device_id,
                                                      DeviceCommand.name.in_((HOLD, RELEASE)))
                          .order_by(DeviceCommand.id.desc()).limit(1))


def record_events(*, session: Session, events: list[tuple[int, int, str, dict[str, Any]]]) -> list[Detection]:
    """Write detections and departures of elevator cameras into the ledger, after the rules ran."""
    threshold = threshold_of(session=session)
    written = []
    for device_id, ts, etype, data in events:
        device = session.get(Device, device_id)
        if device is None:
            continue
        if etype == DETECTED:
            written.append(_detected(session, device, ts, data, threshold))
        else:
            _left(session, device, ts)
        session.flush()
    return written


def _detected(session: Session, device: Device, ts: int, data: dict[str, Any], threshold: float | None) -> Detection:
    raw = data.get("confidence")
    confidence = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else 0.0
    blocked = threshold is not None and confidence >= threshold
    alarm = alarms.active_alarm(session=session, source=f"d:{device.id}", type=EBIKE_RULE) if blocked else None
    hold = _door_command(session, device.id) if blocked else None
    held = hold is not None and hold.name == HOLD
    place_id = device.place_id
    if place_id is None and device.facility_id is not None:
        place_id = session.scalar(select(Facility.place_id).where(Facility.id == device.facility_id))
    row = Detection(device_id=device.id, facility_id=device.facility_id, place_id=place_id, detected_at=_at(ts),
                    ts_ms=ts, confidence=round(confidence, 4), snapshot=str(data.get("snapshot") or "")[:500],
                    blocked=blocked, alarm_id=alarm.id if alarm else None,
                    doors_held_at=hold.created_at if held and hold else None,
                    hold_command_id=hold.id if held and hold else None)
    session.add(row)
    return row


def _left(session: Session, device: Device, ts: int) -> None:
    rows = session.scalars(select(Detection).where(Detection.device_id == device.id, Detection.left_at.is_(None),
                                                   Detection.ts_ms <= ts)).all()
    if not rows:
        return
    last = _door_command(session, device.id)
    for row in rows:
        row.left_at = _at(ts)
        if row.doors_held_at is not None and row.released_at is None and last is not None and last.name == RELEASE \
                and last.id > (row.hold_command_id or 0):
            row.released_at, row.released_by = last.created_at, last.actor


def sweep(engine: Engine, now: dt.datetime | None = None) -> int:
    """Mark held detections released when a release went out outside an ingest batch (the
    rule's quiet-time clear, run by the rule sweep); returns how many were marked."""
    with engine.connect() as conn:
        tenants = list(conn.execute(text("SELECT DISTINCT tenant_id FROM s02_detection WHERE doors_held_at IS NOT "
                                         "NULL AND released_at IS NULL")).scalars())
    n = 0
    for tenant_id in tenants:
        with session_scope(tenant_id=tenant_id, actor="s02", engine=engine) as session:
            rows = session.scalars(select(Detection).where(Detection.doors_held_at.is_not(None),
                                                           Detection.released_at.is_(None))).all()
            for row in rows:
                last = _door_command(session, row.device_id)
                if last is not None and last.name == RELEASE and last.id > (row.hold_command_id or 0):
                    row.released_at, row.released_by = last.created_at, last.actor
                    n += 1
    return n


# --- operators' actions -----------------------------------------------------------------------

def get_detection(*, session: Session, detection_id: int) -> Detection | None:
    """One detection in the session's tenant and scope."""
    return session.scalar(select(Detection).where(Detection.id == detection_id))


def get_camera(*, session: Session, device_id: int) -> Device | None:
    """An elevator camera in the session's scope (None for another type or one out of scope)."""
    return session.scalar(select(Device).where(Device.id == device_id, Device.type_code == CAMERA))


def _clear_alarm(session: Session, device_id: int, actor: str, note: str, now: dt.datetime,
                 alarm_id: int | None = None) -> Alarm | None:
    alarm = session.scalar(select(Alarm).where(Alarm.id == alarm_id)) if alarm_id else None
    if alarm is None or alarm.active_key is None:
        alarm = alarms.active_alarm(session=session, source=f"d:{device_id}", type=EBIKE_RULE)
    if alarm is None or alarm.active_key is None:
        return None
    return alarms.clear(session=session, alarm=alarm, actor=actor, note=note, now=now)


def _send(session: Session, stored: list[tuple[DeviceCommand, Device]]) -> None:
    """Commit, then put the stored commands on the wire (a device that answers at once finds them)."""
    code = session.scalar(select(Tenant.code).where(Tenant.id == session.info["tenant_id"]))
    wire = [(c.id, d.code, c.name, dict(c.args)) for c, d in stored]
    session.commit()
    for cmd_id, device_code, name, args in wire:
        commands.send_stored(execute=session.execute, command_id=cmd_id, tenant_code=str(code),
                             device_code=device_code, name=name, args=args)
    session.commit()


def _open_held(session: Session, device_id: int) -> list[Detection]:
    return list(session.scalars(select(Detection).where(Detection.device_id == device_id,
                                                        Detection.doors_held_at.is_not(None),
                                                        Detection.released_at.is_(None))))


def set_verdict(*, session: Session, detection: Detection, verdict: str, actor: str, reason: str | None = None,
                note: str = "", now: dt.datetime | None = None) -> Detection:
    """研判: mark a detection confirmed or false (with the reason); a false one clears its
    alarm (with a note) and releases doors still held for it."""
    now = now or utcnow()
    if verdict not in VERDICTS or verdict == "pending":
        raise ElevatorError("verdict", f"应为 confirmed 或 false，收到 {str(verdict)[:20]!r}（confirmed or false）")
    reason = (reason or "").strip() or None
    if verdict == "false":
        if reason not in REASONS:
            raise ElevatorError("reason", f"误报须选择原因：{', '.join(REASONS)}（a false detection needs a reason）")
    elif reason is not None:
        raise ElevatorError("reason", "确认为电动车时不填误报原因（no reason for a confirmed detection）")
    note = note.strip()
    if len(note) > MAX_NOTE or "\x00" in note:
        raise ElevatorError("note", f"最多 {MAX_NOTE} 字（at most {MAX_NOTE} characters）")
    detection.verdict, detection.reason, detection.verdict_note = verdict, reason, note
    detection.verdict_by, detection.verdict_at = actor[:100], now
    if verdict != "false":
        session.flush()
        return detection
    zh, en = REASONS[reason or "other"]
    text_ = f"误报：{zh}（false detection: {en}）" + (f" {note}" if note else "")
    _clear_alarm(session, detection.device_id, actor, text_, now, detection.alarm_id)
    stored = []
    if detection.doors_held_at is not None and detection.released_at is None and detection.left_at is None:
        device = session.get(Device, detection.device_id)
        if device is not None:
            cmd = commands.store_command(session=session, device=device, name=RELEASE, actor=actor,
                                         source="s02:verdict")
            stored.append((cmd, device))
            for row in _open_held(session, device.id):
                row.released_at, row.released_by = now, actor[:100]
    session.flush()
    if stored:
        _send(session, stored)
    return detection


def intercom(*, session: Session, device: Device, text: str, actor: str) -> DeviceCommand:
    """远程喊话: an operator's words, played in the car by the camera's speaker."""
    text = (text or "").strip()
    if not text:
        raise ElevatorError("text", "请输入喊话内容（say something）")
    if len(text) > MAX_TEXT or "\x00" in text:
        raise ElevatorError("text", f"最多 {MAX_TEXT} 字（at most {MAX_TEXT} characters）")
    return commands.send_command(session=session, device=device, name="intercom", args={"text": text},
                                 actor=actor, source="s02:intercom")


@dataclass
class Cleared:
    command: DeviceCommand
    alarm: Alarm | None
    released: int  # ledger rows marked released


def remote_clear(*, session: Session, device: Device, actor: str, note: str = "",
                 now: dt.datetime | None = None) -> Cleared:
    """远程解除: release the doors, clear the camera's e-bike alarm, mark held detections released."""
    now = now or utcnow()
    note = (note or "").strip()
    if len(note) > MAX_NOTE or "\x00" in note:
        raise ElevatorError("note", f"最多 {MAX_NOTE} 字（at most {MAX_NOTE} characters）")
    cmd = commands.store_command(session=session, device=device, name=RELEASE, actor=actor, source="s02:clear")
    alarm = _clear_alarm(session, device.id, actor, f"远程解除（remote clearing）{(' ' + note) if note else ''}", now)
    rows = _open_held(session, device.id)
    for row in rows:
        row.released_at, row.released_by = now, actor[:100]
    session.flush()
    cmd_id = cmd.id
    _send(session, [(cmd, device)])
    found = session.scalar(select(DeviceCommand).where(DeviceCommand.id == cmd_id)
                           .execution_options(populate_existing=True))
    assert found is not None
    return Cleared(found, alarm, len(rows))


# --- reads ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    building_id: int | None = None
    device_id: int | None = None
    verdict: str | None = None
    blocked: bool | None = None


def parse_day(value: str | None, field: str) -> dt.date | None:
    """A date (YYYY-MM-DD) from a filter, or ElevatorError naming the field."""
    if not value or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ElevatorError(field, f"应为日期 YYYY-MM-DD，收到 {value[:20]!r}（a date YYYY-MM-DD）") from None


def period(*, start: dt.date | None, end: dt.date | None, today: dt.date | None = None,
           default_days: int = 30) -> tuple[dt.datetime, dt.datetime]:
    """A period of whole local days (Asia/Shanghai), ``end`` included, as UTC bounds."""
    today = today or dt.datetime.now(SHANGHAI).date()
    end = end or today
    start = start or end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise ElevatorError("start", "开始日期晚于结束日期（start is after end）")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise ElevatorError("start", f"时间段最长 {MAX_PERIOD_DAYS} 天（at most {MAX_PERIOD_DAYS} days）")
    a = dt.datetime.combine(start, dt.time(), SHANGHAI).astimezone(dt.UTC)
    b = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), SHANGHAI).astimezone(dt.UTC)
    return a, b


def _where(filters: Filters) -> list[Any]:
    out: list[Any] = []
    if filters.start is not None:
        out.append(Detection.detected_at >= filters.start)
    if filters.end is not None:
        out.append(Detection.detected_at < filters.end)
    if filters.building_id is not None:
        out.append(Detection.building_id == filters.building_id)
    if filters.device_id is not None:
        out.append(Detection.device_id == filters.device_id)
    if filters.verdict is not None:
        out.append(Detection.verdict == filters.verdict)
    if filters.blocked is not None:
        out.append(Detection.blocked.is_(filters.blocked))
    return out


def list_detections(*, session: Session, filters: Filters, page: int = 1, size: int = 50) -> Page:
    """The ledger in the session's scope, newest first."""
    where = _where(filters)
    total = session.scalar(select(func.count(Detection.id)).where(*where)) or 0
    items = list(session.scalars(select(Detection).where(*where).order_by(Detection.detected_at.desc(),
                                                                          Detection.id.desc())
                                 .offset((page - 1) * size).limit(size)))
    return Page(items=items, total=int(total), page=page, size=size)


@dataclass
class Names:
    """Readable names of the cameras, elevators and buildings some detections refer to."""

    devices: dict[int, str] = field(default_factory=dict)
    facilities: dict[int, str] = field(default_factory=dict)
    places: dict[int, str] = field(default_factory=dict)

    def elevator(self, d: Detection) -> str:
        return self.facilities.get(d.facility_id or 0) or self.devices.get(d.device_id, f"#{d.device_id}")

    def building(self, d: Detection) -> str:
        return self.places.get(d.building_id or 0, "")


def names(*, session: Session, device_ids: set[int], facility_ids: set[int], place_ids: set[int]) -> Names:
    """Names of some cameras, elevators and buildings, in three queries at most."""
    out = Names()
    if device_ids:
        out.devices = {i: n for i, n in session.execute(select(Device.id, Device.name)
                                                          .where(Device.id.in_(device_ids)))}
    if facility_ids:
        out.facilities = {i: n for i, n in session.execute(select(Facility.id, Facility.name)
                                                             .where(Facility.id.in_(facility_ids)))}
    if place_ids:
        rows = session.execute(select(Place.id, Place.address_text, Place.name).where(Place.id.in_(place_ids)))
        out.places = {pid: addr or name for pid, addr, name in rows}
    return out


def names_of(*, session: Session, rows: list[Detection]) -> Names:
    """Names for a page of detections."""
    return names(session=session, device_ids={r.device_id for r in rows},
                 facility_ids={r.facility_id for r in rows if r.facility_id},
                 place_ids={r.building_id for r in rows if r.building_id})


@dataclass
class Camera:
    device_id: int
    elevator: str
    building: str
    detections: int  # blocked ones not marked false
    confirmed: int
    false: int
    pending: int

    @property
    def precision(self) -> float | None:
        """confirmed / (confirmed + false); None until one was reviewed."""
        reviewed = self.confirmed + self.false
        return self.confirmed / reviewed if reviewed else None


@dataclass
class Stats:
    start: dt.datetime
    end: dt.datetime
    total: int  # blocked detections not marked false
    below_threshold: int  # detections under the confidence threshold (kept for review)
    confirmed: int
    false: int
    pending: int
    by_hour: list[int]  # 24 bins, Asia/Shanghai
    by_building: list[tuple[int | None, str, int]]  # (building id, label, count), most first
    cameras: list[Camera]  # by elevator, most first
    false_reasons: dict[str, int]

    @property
    def precision(self) -> float | None:
        reviewed = self.confirmed + self.false
        return self.confirmed / reviewed if reviewed else None


def stats(*, session: Session, start: dt.datetime, end: dt.datetime, building_id: int | None = None) -> Stats:
    """Counts over a period: by hour of day, building and elevator; precision per camera.

    A blocked detection counts unless an operator marked it false; precision counts the
    reviewed ones (pending excluded)."""
    where = _where(Filters(start=start, end=end, building_id=building_id))
    rows = session.execute(select(Detection.device_id, Detection.facility_id, Detection.building_id,
                                  Detection.detected_at, Detection.blocked, Detection.verdict, Detection.reason)
                           .where(*where)).all()
    by_hour = [0] * 24
    per_building: dict[int | None, int] = defaultdict(int)
    per_camera: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # counted, confirmed, false, pending
    camera_place: dict[int, tuple[int | None, int | None]] = {}
    reasons: dict[str, int] = defaultdict(int)
    below = confirmed = false = pending = 0
    for device_id, facility_id, b_id, at, blocked, verdict, reason in rows:
        if not blocked:
            below += 1
            continue
        camera_place[device_id] = (facility_id, b_id)
        c = per_camera[device_id]
        if verdict == "false":
            false += 1
            c[2] += 1
            reasons[reason or "other"] += 1
            continue
        if verdict == "confirmed":
            confirmed += 1
            c[1] += 1
        else:
            pending += 1
            c[3] += 1
        c[0] += 1
        by_hour[at.astimezone(SHANGHAI).hour] += 1
        per_building[b_id] += 1
    label = names(session=session, device_ids=set(camera_place),
                  facility_ids={f for f, _b in camera_place.values() if f},
                  place_ids={b for b in per_building if b} | {b for _f, b in camera_place.values() if b})
    cameras = []
    for device_id, (facility_id, b_id) in camera_place.items():
        c = per_camera[device_id]
        elevator = label.facilities.get(facility_id or 0) or label.devices.get(device_id, f"#{device_id}")
        cameras.append(Camera(device_id=device_id, elevator=elevator, building=label.places.get(b_id or 0, ""),
                              detections=c[0], confirmed=c[1], false=c[2], pending=c[3]))
    cameras.sort(key=lambda c: (-c.detections, c.elevator))
    buildings = sorted(((b, label.places.get(b or 0, "—"), n) for b, n in per_building.items()),
                       key=lambda x: (-x[2], x[1]))
    return Stats(start=start, end=end, total=sum(per_building.values()), below_threshold=below,
                 confirmed=confirmed, false=false, pending=pending, by_hour=by_hour, by_building=buildings,
                 cameras=cameras, false_reasons=dict(reasons))


def commands_for(*, session: Session, detection: Detection, now: dt.datetime | None = None) -> list[DeviceCommand]:
    """The commands the camera got around one detection (linkage and operators'), oldest first."""
    now = now or utcnow()
    until = detection.released_at or detection.left_at or min(now, detection.detected_at + HELD_AT_MOST)
    return list(session.scalars(select(DeviceCommand).where(
        DeviceCommand.device_id == detection.device_id,
        DeviceCommand.created_at >= detection.detected_at - dt.timedelta(seconds=30),
        DeviceCommand.created_at <= until + dt.timedelta(seconds=30)).order_by(DeviceCommand.id).limit(50)))


def held_now(*, session: Session, now: dt.datetime | None = None) -> int:
    """Elevators whose doors are held for an e-bike now (held, not released, the e-bike not gone)."""
    now = now or utcnow()
    return int(session.scalar(select(func.count(func.distinct(Detection.device_id))).where(
        Detection.doors_held_at.is_not(None), Detection.released_at.is_(None), Detection.left_at.is_(None),
        Detection.detected_at >= now - HELD_AT_MOST)) or 0)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def tile(*, session: Session, lang: str = "zh-CN") -> Tile:
    """The brain's tile: detections today, doors held now, precision over 30 days."""
    zh = lang.startswith("zh")
    now = utcnow()
    today = now.astimezone(SHANGHAI).date()
    a, b = period(start=today, end=today, today=today)
    counted = and_(Detection.blocked.is_(True), Detection.verdict != "false")
    today_n = session.scalar(select(func.count(Detection.id)).where(Detection.detected_at >= a,
                                                                    Detection.detected_at < b, counted)) or 0
    since = now - dt.timedelta(days=30)
    reviewed: dict[str, int] = {v: n for v, n in session.execute(
        select(Detection.verdict, func.count(Detection.id))
        .where(Detection.detected_at >= since, Detection.blocked.is_(True), Detection.verdict.in_(("confirmed", "false")))
        .group_by(Detection.verdict))}
    ok, bad = reviewed.get("confirmed", 0), reviewed.get("false", 0)
    held = held_now(session=session, now=now)
    figures = (("今日识别" if zh else "Detections today", str(today_n)),
               ("当前阻梯" if zh else "Doors held now", str(held)),
               ("30日准确率" if zh else "Precision (30 d)", _pct(ok / (ok + bad) if ok + bad else None)))
    return Tile(title="安全梯控" if zh else "Elevator e-bikes", figures=figures, link="/elevator", alert=held > 0)


# --- demo -------------------------------------------------------------------------------------

def seed_demo(*, session: Session) -> None:
    """A fortnight of past detections at the demo's elevators, some reviewed, so that the
    statistics and precision show at once (only while the ledger is empty)."""
    if session.scalar(select(Detection.id).limit(1)) is not None:
        return
    cameras = list(session.scalars(select(Device).where(Device.type_code == CAMERA).order_by(Device.id).limit(60)))
    now = utcnow().replace(microsecond=0)
    reasons = [code for code, _zh, _en in FALSE_REASONS]
    for device in cameras:
        rng = random.Random(f"s02/{device.code}")
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 5))):
            hour = rng.choices(range(24), weights=[1] * 7 + [3, 2] + [1] * 8 + [4, 6, 6, 5, 3, 2, 1])[0]
            local = (now.astimezone(SHANGHAI) - dt.timedelta(days=rng.randint(1, 14))).replace(
                hour=hour, minute=rng.randint(0, 59), second=rng.randint(0, 59))
            at = local.astimezone(dt.UTC)
            draw = rng.random()
            verdict = "confirmed" if draw < 0.65 else "false" if draw < 0.78 else "pending"
            stay = dt.timedelta(seconds=rng.randint(20, 90))
            session.add(Detection(
                device_id=device.id, facility_id=device.facility_id, place_id=device.place_id, detected_at=at,
                ts_ms=int(at.timestamp() * 1000), confidence=round(rng.uniform(0.62, 0.98), 2),
                snapshot=f"sim://snapshot/{device.code}/{int(at.timestamp())}.jpg", blocked=True,
                doors_held_at=at, left_at=at + stay, released_at=at + stay, released_by=f"rule:{EBIKE_RULE}",
                verdict=verdict, reason=rng.choice(reasons) if verdict == "false" else None,
                verdict_by="demo" if verdict != "pending" else None,
                verdict_at=at + dt.timedelta(hours=1) if verdict != "pending" else None))
    session.flush()
