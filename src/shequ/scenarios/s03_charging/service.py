"""S03 safe charging: the sessions ledger, the smoke linkage notes, flying-wire charging, site figures."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import Alarm, AlarmEvent
from shequ.core.iot.models import Device, DeviceCommand, DeviceState
from shequ.core.plugins import Tile
from shequ.core.registry.models import Facility
from shequ.core.rules.kinds import Window
from shequ.scenarios.s03_charging import rules
from shequ.scenarios.s03_charging.models import ChargingSession

if TYPE_CHECKING:
    from shequ.core.iot.pipeline import Changes, DeviceInfo

SCENARIO_ID = "S03"
SHANGHAI = ZoneInfo("Asia/Shanghai")
ACTOR = "scenario:S03"
STATION = "charging_station"
SITE_TYPES = ("charging_pile", "distribution_box", "smoke_detector", "sprinkler")
NIGHT = Window(start=rules.FLYING_WIRE_NIGHT[0], end=rules.FLYING_WIRE_NIGHT[1])
CACHE_S = 60.0
_watched: dict[int, tuple[float, bool]] = {}  # breaker id → (checked at, feeds no charger)


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


# --- the change handler ---------------------------------------------------------------------------

def on_batch(changes: Changes) -> None:
    """Ingest hook: charging sessions into the ledger, smoke-linkage notes, flying-wire charging."""
    devices = changes.devices
    sessions: list[tuple[int, int, str, dict[str, Any]]] = []
    smoke: dict[int, int] = {}  # smoke detector at a charging site → ts of its smoke reading
    breakers: dict[int, tuple[int, float]] = {}  # breaker → its latest (ts, current) of the batch
    for device_id, ts, etype, data in changes.events:
        dev = devices.get(device_id)
        if dev is not None and dev.type_code == "charging_pile" and etype in ("session_start", "session_stop"):
            sessions.append((device_id, ts, etype, data))
    for device_id, ts, values in changes.readings:
        dev = devices.get(device_id)
        if dev is None:
            continue
        if dev.type_code == "smoke_detector" and dev.facility_kind == STATION and values.get("smoke") is True:
            smoke[device_id] = min(ts, smoke.get(device_id, ts))
        elif dev.type_code == "smart_breaker" and isinstance(values.get("current_a"), int | float) \
                and (device_id not in breakers or ts >= breakers[device_id][0]):
            breakers[device_id] = (ts, float(values["current_a"]))
    if breakers:
        breakers = {d: v for d, v in breakers.items() if d in _watched_breakers(changes.conn, set(breakers))}
    if not sessions and not smoke and not breakers:
        return
    tenants = {devices[d].tenant_id for d in [*(s[0] for s in sessions), *smoke, *breakers]}
    for tenant_id in sorted(tenants):
        with changes.session(tenant_id, ACTOR) as session:
            mine = [s for s in sessions if devices[s[0]].tenant_id == tenant_id]
            if mine:
                _record_sessions(session, mine, devices)
            for device_id, ts in smoke.items():
                if devices[device_id].tenant_id == tenant_id:
                    _note_linkage(session, devices[device_id], ts, changes.now_ms)
            for device_id, (ts, current) in breakers.items():
                if devices[device_id].tenant_id == tenant_id:
                    _judge_flying_wire(session, changes, devices[device_id], ts, current)


def forget_caches() -> None:
    """Drop the cached breaker attributes (after a change to them)."""
    _watched.clear()


def _watched_breakers(conn: Connection, ids: set[int]) -> set[int]:
    """The breakers among ``ids`` whose attributes say they feed no charger (cached a minute)."""
    now = time.monotonic()
    unknown = [i for i in ids if i not in _watched or now - _watched[i][0] >= CACHE_S]
    if unknown:
        rows = conn.execute(text("SELECT id, attrs FROM device WHERE id IN :ids")
                            .bindparams(bindparam("ids", expanding=True)), {"ids": sorted(unknown)})
        for device_id, attrs in rows:
            attrs = json.loads(attrs) if isinstance(attrs, str) else (attrs or {})
            _watched[device_id] = (now, attrs.get("feeds_charger") is False)
    return {i for i in ids if _watched.get(i, (0.0, False))[1]}


# --- the sessions ledger --------------------------------------------------------------------------

def _port(data: dict[str, Any]) -> int:
    port = data.get("port")
    return port if isinstance(port, int) and not isinstance(port, bool) and 0 <= port < 1000 else 0


def _record_sessions(session: Session, items: list[tuple[int, int, str, dict[str, Any]]],
                     devices: dict[int, DeviceInfo]) -> None:
    """session_start opens a ledger row; session_stop closes the port's open one (or records a
    session whose start was not heard)."""
    for device_id, ts, etype, data in sorted(items, key=lambda x: x[1]):
        dev = devices[device_id]
        port = _port(data)
        at = _utc(ts)
        open_row = session.scalar(
            select(ChargingSession).where(ChargingSession.device_id == device_id, ChargingSession.port == port,
                                          ChargingSession.stopped_at.is_(None))
            .order_by(ChargingSession.id.desc()).limit(1))
        if etype == "session_start":
            if open_row is not None:  # a stop never came: the new start ends the old session
                open_row.stopped_at, open_row.ended_by = at, "unknown"
            session.add(ChargingSession(device_id=device_id, facility_id=dev.facility_id, port=port, started_at=at,
                                        place_id=dev.place_id))
            continue
        energy = data.get("energy_kwh")
        fee = data.get("fee_fen")
        row = open_row
        if row is None:
            row = ChargingSession(device_id=device_id, facility_id=dev.facility_id, port=port, started_at=None,
                                  place_id=dev.place_id)
            session.add(row)
        row.stopped_at = at
        row.energy_kwh = float(energy) if isinstance(energy, int | float) and not isinstance(energy, bool) else 0.0
        row.fee_fen = int(fee) if isinstance(fee, int) and not isinstance(fee, bool) else 0
        row.ended_by = _ended_by(session, dev, at)
        session.flush()


def _ended_by(session: Session, dev: DeviceInfo, at: dt.datetime) -> str:
    """Why a session ended: a stop command to its pile or a power cut at its site in the last
    minute, else the rider unplugged (or the battery was full)."""
    since = at - dt.timedelta(seconds=60)
    rows = session.execute(
        select(DeviceCommand.name).join(Device, Device.id == DeviceCommand.device_id)
        .where(DeviceCommand.created_at >= since,
               ((DeviceCommand.device_id == dev.id) & (DeviceCommand.name == "stop_charging"))
               | ((Device.facility_id == dev.facility_id) & (DeviceCommand.name == "cut_power")))
        .execution_options(all_scopes=True)).scalars().all()
    if "cut_power" in rows:
        return "power_cut"
    return "stopped" if rows else "normal"


# --- smoke at a charging site: the linkage on the alarm's timeline --------------------------------

@dataclass
class SprinklerState:
    code: str
    name: str
    state: str  # flowing | armed | not_armed | offline | unknown
    pressure_mpa: float | None = None


SPRINKLER_WORDS = {
    "flowing": ("喷淋中", "discharging"), "armed": ("待命", "armed, standing by"),
    "not_armed": ("未待命（故障）", "not armed (fault)"), "offline": ("离线", "offline"),
    "unknown": ("状态未知", "state unknown"), "none": ("本场所未设喷淋", "no sprinkler at the site"),
}


def sprinkler_states(*, session: Session, facility_id: int) -> list[SprinklerState]:
    """The sprinklers of a site as their twins report them."""
    rows = session.execute(
        select(Device.code, Device.name, DeviceState.attrs, DeviceState.online)
        .outerjoin(DeviceState, DeviceState.device_id == Device.id)
        .where(Device.facility_id == facility_id, Device.type_code == "sprinkler", Device.status == "active")
        .order_by(Device.code).execution_options(all_scopes=True)).all()
    return [SprinklerState(code, name, sprinkler_state(attrs or {}, online), _pressure(attrs or {}))
            for code, name, attrs, online in rows]


def sprinkler_state(attrs: dict[str, Any], online: bool | None) -> str:
    """flowing, armed, not_armed (a fault), offline or unknown, from a sprinkler's twin."""
    if attrs.get("flowing") is True:
        return "flowing"
    if online is False and attrs:
        return "offline"
    if attrs.get("armed") is True:
        return "armed"
    if attrs.get("armed") is False:
        return "not_armed"
    return "unknown"


def _pressure(attrs: dict[str, Any]) -> float | None:
    value = attrs.get("pressure_mpa")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _note_linkage(session: Session, dev: DeviceInfo, ts: int, now_ms: int) -> None:
    """On the smoke alarm of a charging site's detector: the power cut sent by the linkage rule
    and the sprinklers' state, once per alarm."""
    alarm = alarms.active_alarm(session=session, source=f"d:{dev.id}", type="smoke")
    if alarm is None or dev.facility_id is None:
        return
    noted = session.scalar(select(AlarmEvent.id).where(AlarmEvent.alarm_id == alarm.id, AlarmEvent.actor == ACTOR,
                                                       AlarmEvent.action == "linkage").limit(1))
    if noted is not None:
        return
    cut = session.execute(
        select(Device.code, DeviceCommand.id).join(Device, Device.id == DeviceCommand.device_id)
        .where(Device.facility_id == dev.facility_id, Device.type_code == "distribution_box",
               DeviceCommand.name == "cut_power", DeviceCommand.created_at >= _utc(now_ms - 1000))
        .order_by(DeviceCommand.id).execution_options(all_scopes=True)).all()
    sprinklers = sprinkler_states(session=session, facility_id=dev.facility_id)
    if cut:
        power_zh = "已向配电箱 " + "、".join(c for c, _ in cut) + " 下发切断电源"
        power_en = "cut_power sent to " + ", ".join(c for c, _ in cut)
    else:
        power_zh, power_en = "本场所无可切断的配电箱（未下发断电）", "no power box at the site to cut"
    if sprinklers:
        spr_zh = "；".join(f"{s.name}：{SPRINKLER_WORDS[s.state][0]}" for s in sprinklers)
        spr_en = "; ".join(f"{s.code}: {SPRINKLER_WORDS[s.state][1]}" for s in sprinklers)
    else:
        spr_zh, spr_en = SPRINKLER_WORDS["none"]
    note = f"充电场所联动：{power_zh}；喷淋：{spr_zh}。(charging-site linkage: {power_en}; sprinkler: {spr_en})"
    session.add(AlarmEvent(alarm_id=alarm.id, at=_utc(now_ms), actor=ACTOR, action="linkage", note=note[:1000],
                           data={"facility_id": dev.facility_id, "smoke_ms": ts,
                                 "cut_power": [{"device": c, "command_id": i} for c, i in cut],
                                 "sprinklers": [{"device": s.code, "state": s.state, "pressure_mpa": s.pressure_mpa}
                                                for s in sprinklers] or "none"}))


# --- flying-wire charging -------------------------------------------------------------------------

def _in_band(current: float) -> bool:
    return rules.FLYING_WIRE_MIN_A <= current <= rules.FLYING_WIRE_MAX_A


def steady_run(readings: Iterable[tuple[int, float]]) -> tuple[int, list[float]] | None:
    """The steady night draw that ends with the last reading: (its first ms, its currents), or
    None when the last reading is not part of one. Steady: every reading within 0.5–4 A and
    within 0.3 A of the others, no gap over 15 minutes, all between 22:00 and 06:00."""
    items = sorted(readings)
    if not items:
        return None
    run: list[tuple[int, float]] = []
    lo, hi = float("inf"), float("-inf")
    for ts, current in reversed(items):
        if not _in_band(current) or not NIGHT.contains(ts):
            break
        if run and run[-1][0] - ts > rules.FLYING_WIRE_GAP_S * 1000:
            break
        if max(hi, current) - min(lo, current) > rules.FLYING_WIRE_SPREAD_A:
            break
        lo, hi = min(lo, current), max(hi, current)
        run.append((ts, current))
    if not run:
        return None
    return run[-1][0], [c for _, c in reversed(run)]


def _breaker_readings(conn: Connection, device_id: int, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
    rows = conn.execute(text("SELECT ts, body FROM telemetry WHERE device_id = :d AND kind = 't' "
                             "AND ts >= :a AND ts <= :b ORDER BY ts"), {"d": device_id, "a": start_ms, "b": end_ms})
    out = []
    for ts, body in rows:
        try:
            value = json.loads(body).get("current_a")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append((int(ts), float(value)))
    return out


def _judge_flying_wire(session: Session, changes: Changes, dev: DeviceInfo, ts: int, current: float) -> None:
    """Raise (or escalate, or clear) the flying-wire alarm of a breaker that feeds no charger."""
    source = f"d:{dev.id}"
    active = alarms.active_alarm(session=session, source=source, type=rules.FLYING_WIRE_TYPE)
    if not _in_band(current):
        if active is not None and (active.context or {}).get("ts", 0) <= ts:
            alarms.clear(session=session, alarm=active, actor=ACTOR, now=_utc(changes.now_ms),
                         note=f"电流 {current:g} A，已不似充电 (current {current:g} A: no longer a charger's draw)")
        return
    if active is not None:
        since = int(active.source_ms or ts)
        if ts - since >= rules.FLYING_WIRE_MAJOR_S * 1000 and active.severity != "MAJOR" and NIGHT.contains(ts):
            alarms.raise_alarm(session=session, type=rules.FLYING_WIRE_TYPE, source=source, severity="MAJOR",
                               title=active.title, device_id=dev.id, scenario=SCENARIO_ID, actor=ACTOR,
                               now=_utc(changes.now_ms))
        return
    if not NIGHT.contains(ts):
        return
    span = (rules.FLYING_WIRE_FOR_S + rules.FLYING_WIRE_GAP_S) * 1000
    run = steady_run(_breaker_readings(changes.conn, dev.id, ts - span, ts))
    if run is None or ts - run[0] < rules.FLYING_WIRE_FOR_S * 1000:
        return
    since, currents = run
    device = session.get(Device, dev.id)
    if device is None:
        return
    place_id = device.place_id or device.building_id or device.compound_id
    mean = round(sum(currents) / len(currents), 2)
    minutes = (ts - since) // 60000
    severity = "MAJOR" if ts - since >= rules.FLYING_WIRE_MAJOR_S * 1000 else "MINOR"
    alarm, new = alarms.raise_alarm(
        session=session, type=rules.FLYING_WIRE_TYPE, source=source, severity=severity,
        title=f"疑似飞线充电 · {device.name}", device_id=dev.id, place_id=place_id, scenario=SCENARIO_ID,
        context={"ts": ts, "since_ms": since, "mean_a": mean, "minutes": minutes, "readings": len(currents),
                 "values": {"current_a": current}},
        source_ms=since, actor=ACTOR, now=_utc(changes.now_ms))
    if new:
        alarm.pending_actions = [{"do": "case", "class_code": "S03-02", "priority": "normal", "actor": ACTOR}]
        alarm.pending_since = _utc(changes.now_ms)
        from functools import partial

        changes.after_commit.append(partial(alarms.wake_pending, changes.conn.engine))


# --- per site: live state, utilisation, energy, fees, incidents ---------------------------------

@dataclass
class SiteDevice:
    id: int
    code: str
    name: str
    type_code: str
    attrs: dict[str, Any]
    online: bool | None
    condition: str
    ports: int = 0


@dataclass
class SiteFigures:
    facility: Facility
    devices: list[SiteDevice] = field(default_factory=list)
    ports: int = 0
    charging_piles: int = 0
    power_on: bool | None = None  # the box's supply (None: no box or not reported)
    sprinkler: str = "none"  # the worst sprinkler state (flowing > not_armed > offline > unknown > armed)
    sessions: int = 0
    energy_kwh: float = 0.0
    fee_fen: int = 0
    port_hours: float = 0.0
    utilisation: float = 0.0  # 0..1
    incidents: dict[str, int] = field(default_factory=dict)  # alarm type → count in the period
    active_alarms: int = 0

    @property
    def piles(self) -> list[SiteDevice]:
        return [d for d in self.devices if d.type_code == "charging_pile"]


SPRINKLER_ORDER = ("flowing", "not_armed", "offline", "unknown", "armed")


def period(days: float, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    end = now or dt.datetime.now(dt.UTC)
    return end - dt.timedelta(days=days), end


def sites(*, session: Session, start: dt.datetime, end: dt.datetime,
          facility_id: int | None = None) -> list[SiteFigures]:
    """The charging sites the session may see, with live state and the period's figures."""
    stmt = select(Facility).where(Facility.kind == STATION).order_by(Facility.name, Facility.id)
    if facility_id is not None:
        stmt = stmt.where(Facility.id == facility_id)
    out = {f.id: SiteFigures(f) for f in session.scalars(stmt)}
    if not out:
        return []
    ids = sorted(out)
    rows = session.execute(
        select(Device.id, Device.code, Device.name, Device.type_code, Device.attrs, Device.facility_id,
               DeviceState.attrs, DeviceState.online, DeviceState.condition)
        .outerjoin(DeviceState, DeviceState.device_id == Device.id)
        .where(Device.facility_id.in_(ids), Device.status != "retired")
        .order_by(Device.type_code, Device.code).execution_options(all_scopes=True)).all()
    device_site: dict[int, int] = {}
    for did, code, name, type_code, dattrs, fid, state, online, condition in rows:
        ports = int((dattrs or {}).get("ports") or 0) if type_code == "charging_pile" else 0
        d = SiteDevice(did, code, name, type_code, state or {}, online, condition or "unknown", ports)
        site = out[fid]
        site.devices.append(d)
        device_site[did] = fid
        if type_code == "charging_pile":
            site.ports += ports or 10
            site.charging_piles += bool(d.attrs.get("charging"))
        elif type_code == "distribution_box" and "power_on" in d.attrs:
            site.power_on = bool(d.attrs["power_on"]) if site.power_on is not False else False
    for site in out.values():
        if not site.ports:
            site.ports = site.facility.capacity or 0
        states = [s.state for s in sprinkler_states_of(site)]
        if states:
            site.sprinkler = min(states, key=SPRINKLER_ORDER.index)
    _session_figures(session, out, start, end)
    if device_site:
        for did, atype, n in session.execute(
                select(Alarm.device_id, Alarm.type, func.count()).where(
                    Alarm.device_id.in_(sorted(device_site)), Alarm.raised_at >= start, Alarm.raised_at < end)
                .group_by(Alarm.device_id, Alarm.type).execution_options(all_scopes=True)):
            if did is not None and did in device_site:
                incidents = out[device_site[did]].incidents
                incidents[atype] = incidents.get(atype, 0) + n
        for did, n in session.execute(
                select(Alarm.device_id, func.count()).where(Alarm.device_id.in_(sorted(device_site)),
                                                           Alarm.active_key.is_not(None))
                .group_by(Alarm.device_id).execution_options(all_scopes=True)):
            if did is not None and did in device_site:
                out[device_site[did]].active_alarms += n
    return list(out.values())


def sprinkler_states_of(site: SiteFigures) -> list[SprinklerState]:
    return [SprinklerState(d.code, d.name, sprinkler_state(d.attrs, d.online), _pressure(d.attrs))
            for d in site.devices if d.type_code == "sprinkler"]


def _session_figures(session: Session, out: dict[int, SiteFigures], start: dt.datetime, end: dt.datetime) -> None:
    """Sessions, energy and fees of the sessions that ended in the period; port-hours of
    charging within it (a running session counts up to now)."""
    now = dt.datetime.now(dt.UTC)
    rows = session.execute(
        select(ChargingSession.facility_id, ChargingSession.started_at, ChargingSession.stopped_at,
               ChargingSession.energy_kwh, ChargingSession.fee_fen)
        .where(ChargingSession.facility_id.in_(sorted(out)),
               (ChargingSession.stopped_at.is_(None)) | (ChargingSession.stopped_at >= start),
               (ChargingSession.started_at.is_(None)) | (ChargingSession.started_at < end))
        .execution_options(all_scopes=True)).all()
    for fid, started, stopped, energy, fee in rows:
        site = out.get(fid) if fid is not None else None
        if site is None:
            continue
        if stopped is not None and start <= stopped < end:
            site.sessions += 1
            site.energy_kwh += energy or 0.0
            site.fee_fen += fee or 0
        if started is not None:
            a, b = max(started, start), min(stopped or now, end)
            if b > a:
                site.port_hours += (b - a).total_seconds() / 3600
    hours = (end - start).total_seconds() / 3600
    for site in out.values():
        site.energy_kwh = round(site.energy_kwh, 3)
        site.utilisation = min(1.0, site.port_hours / (site.ports * hours)) if site.ports and hours > 0 else 0.0


def site_sessions(*, session: Session, facility_id: int, start: dt.datetime, end: dt.datetime,
                  limit: int = 200) -> list[tuple[ChargingSession, str]]:
    """The sessions of a site that overlap the period, running ones first, then newest first, with
    their pile's name."""
    stmt = (select(ChargingSession, Device.name).join(Device, Device.id == ChargingSession.device_id)
            .where(ChargingSession.facility_id == facility_id,
                   (ChargingSession.stopped_at.is_(None)) | (ChargingSession.stopped_at >= start),
                   (ChargingSession.started_at.is_(None)) | (ChargingSession.started_at < end))
            .order_by(ChargingSession.stopped_at.is_not(None),
                      func.coalesce(ChargingSession.stopped_at, ChargingSession.started_at).desc(),
                      ChargingSession.id.desc())
            .limit(limit).execution_options(all_scopes=True))
    return [(row, name) for row, name in session.execute(stmt).all()]


def daily_energy(*, session: Session, facility_id: int, start: dt.datetime, end: dt.datetime) -> list[tuple[str, float]]:
    """Energy of the sessions that ended each local day of the period (for the bars)."""
    rows = session.execute(select(ChargingSession.stopped_at, ChargingSession.energy_kwh).where(
        ChargingSession.facility_id == facility_id, ChargingSession.stopped_at >= start,
        ChargingSession.stopped_at < end).execution_options(all_scopes=True)).all()
    days: dict[str, float] = defaultdict(float)
    day = start.astimezone(SHANGHAI).date()
    while day <= end.astimezone(SHANGHAI).date():
        days[day.isoformat()] = 0.0
        day += dt.timedelta(days=1)
    for stopped, energy in rows:
        if stopped is not None:
            days[stopped.astimezone(SHANGHAI).date().isoformat()] += energy or 0.0
    return [(k, round(v, 2)) for k, v in sorted(days.items())]


def site_alarms(*, session: Session, facility_id: int, start: dt.datetime, limit: int = 50) -> list[Alarm]:
    """The alarms of a site's devices raised since ``start``, newest first."""
    ids = select(Device.id).where(Device.facility_id == facility_id)
    return list(session.scalars(select(Alarm).where(Alarm.device_id.in_(ids), Alarm.raised_at >= start)
                                .order_by(Alarm.raised_at.desc()).limit(limit)
                                .execution_options(all_scopes=True)))


def flying_wire_alarms(*, session: Session, start: dt.datetime, limit: int = 20) -> list[Alarm]:
    """Flying-wire suspicions raised since ``start`` (active first), in the session's scope."""
    return list(session.scalars(select(Alarm).where(Alarm.type == rules.FLYING_WIRE_TYPE,
                                                    (Alarm.raised_at >= start) | Alarm.active_key.is_not(None))
                                .order_by(Alarm.active_key.is_(None), Alarm.raised_at.desc()).limit(limit)))


# --- the brain tile ---------------------------------------------------------------------------

def tile(*, session: Session, lang: str) -> Tile:
    """Piles charging now, sites with an active incident, energy today."""
    zh = lang.startswith("zh")
    site_ids = select(Facility.id).where(Facility.kind == STATION)
    states = session.execute(
        select(DeviceState.attrs).join(Device, Device.id == DeviceState.device_id)
        .where(Device.type_code == "charging_pile", Device.facility_id.in_(site_ids))).scalars().all()
    charging = sum(1 for a in states if (a or {}).get("charging") is True)
    alerted = session.scalar(
        select(func.count(func.distinct(Device.facility_id))).select_from(Alarm)
        .join(Device, Device.id == Alarm.device_id)
        .where(Alarm.active_key.is_not(None), Device.facility_id.in_(site_ids))) or 0
    wires = session.scalar(select(func.count()).select_from(Alarm).where(
        Alarm.type == rules.FLYING_WIRE_TYPE, Alarm.active_key.is_not(None))) or 0
    midnight = dt.datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    energy = session.scalar(select(func.coalesce(func.sum(ChargingSession.energy_kwh), 0.0))
                            .where(ChargingSession.stopped_at >= midnight)) or 0.0
    figures = (
        ("正在充电的桩" if zh else "Piles charging", f"{charging}"),
        ("有告警的场所" if zh else "Sites with an incident", f"{alerted}"),
        ("疑似飞线充电" if zh else "Flying-wire suspicions", f"{wires}"),
        ("今日充电量" if zh else "Energy today", f"{float(energy):.1f} kWh"),
    )
    return Tile(title="放心充电" if zh else "Safe charging", figures=figures, link="/charging",
                alert=bool(alerted or wires))


# --- the demo's own data --------------------------------------------------------------------------

CORRIDOR_BREAKERS = 6


def seed_demo(*, session: Session) -> None:
    """A sprinkler at each charging site whose attributes say it has one, and a few corridor
    circuits (smart breakers feeding no charger) watched for flying-wire charging; idempotent."""
    from shequ.core.places.models import Place

    have = set(session.scalars(select(Device.code).where(Device.type_code.in_(("sprinkler", "smart_breaker")))))
    added = []
    for fac in session.scalars(select(Facility).where(Facility.kind == STATION).order_by(Facility.id)):
        code = f"SP-{fac.code}-1"
        if (fac.attrs or {}).get("sprinkler") and code not in have and fac.place_id is not None:
            added.append(Device(code=code, name=f"{fac.name}自动喷淋", type_code="sprinkler", place_id=fac.place_id,
                                facility_id=fac.id, lon=fac.lon, lat=fac.lat, vendor="申安消防",
                                attrs={"heads": max(2, (fac.capacity or 10) // 5)}))
    buildings = session.scalars(select(Place).where(Place.kind == "building", Place.floors >= 5)
                                .order_by(Place.id).limit(CORRIDOR_BREAKERS)).all()
    for b in buildings:
        code = f"BK-{b.code}-C1"
        if code not in have:
            added.append(Device(code=code, name=f"{b.address_text or b.name}楼道照明回路空开", type_code="smart_breaker",
                                place_id=b.id, lon=b.lon, lat=b.lat, vendor="申城电气",
                                # hours [0, 0]: the simulator's light night-time load all day long
                                attrs={"feeds_charger": False, "circuit": "corridor", "hours": [0, 0]}))
    session.add_all(added)
    session.flush()
    forget_caches()
