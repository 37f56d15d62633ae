"""S09 噪音管理: minutes judged by the GB 3096 class where each monitor stands, alarms, reports, zones."""

from __future__ import annotations

import datetime as dt
import functools
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import LineString, Point, shape
from shapely.prepared import prep
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from shequ.core.errors import FieldError
from shequ.core.iot.models import Device
from shequ.core.iot.pipeline import Changes
from shequ.core.places.models import Place, Tenant
from shequ.core.plugins import Tile, enabled_ids
from shequ.scenarios.s09_noise import rules
from shequ.scenarios.s09_noise.models import NoiseMinute, NoiseZone

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCENARIO_ID = "S09"
ACTOR = "scenario:S09"
MONITOR = "noise_monitor"
AREA_KINDS = ("compound", "committee", "grid")  # smallest first: the first that has a zone decides
ZONE_KINDS = (*AREA_KINDS, "street")
ZONE_CACHE_S = 300.0
MAX_REPORT_DAYS = 366
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0


# --- noise arithmetic (pure) ------------------------------------------------------------------

def energy_mean(levels: Iterable[float]) -> float | None:
    """LAeq of equal-duration levels: 10·log10(mean(10^(L/10))); None for no level."""
    values = list(levels)
    if not values:
        return None
    return 10 * math.log10(sum(10 ** (v / 10) for v in values) / len(values))


def level_exceeded(levels: Sequence[float], percent: float) -> float | None:
    """L_N: the level exceeded N % of the time. With the n levels sorted ascending L(0)…L(n-1),
    h = (n-1)·(100-N)/100 and L_N = L(⌊h⌋) + (h-⌊h⌋)·(L(⌊h⌋+1) - L(⌊h⌋))."""
    if not levels:
        return None
    ordered = sorted(levels)
    h = (len(ordered) - 1) * (100 - percent) / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def period_of(when: dt.datetime) -> str:
    """day (06:00–22:00) or night (22:00–06:00), Asia/Shanghai."""
    hour = when.astimezone(SHANGHAI).hour
    return "day" if rules.DAY_START_H <= hour < rules.NIGHT_START_H else "night"


def limit_of(noise_class: str, period: str) -> float:
    day, night = rules.LIMITS[noise_class]
    return day if period == "day" else night


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# --- settings ---------------------------------------------------------------------------------

def settings_of(tenant_settings: dict[str, Any] | None) -> dict[str, Any]:
    """The tenant's ``s09`` settings over the defaults."""
    own = (tenant_settings or {}).get("s09") or {}
    out = {**rules.DEFAULT_SETTINGS, **{k: v for k, v in own.items() if k in rules.DEFAULT_SETTINGS}}
    if out["default_class"] not in rules.LIMITS:
        out["default_class"] = rules.DEFAULT_SETTINGS["default_class"]
    out["window_min"] = max(1, int(out["window_min"]))
    if out["min_minutes"] is None:
        out["min_minutes"] = max(1, math.ceil(out["window_min"] / 2))
    return out


def tenant_settings(*, session: Session) -> dict[str, Any]:
    """The session tenant's S09 settings (defaults where not set)."""
    raw = session.scalar(select(Tenant.settings).where(Tenant.id == session.info["tenant_id"]))
    return settings_of(raw)


def update_settings(*, session: Session, window_min: int, default_class: str, night_burst_db: float,
                    case_after: int, complaint_radius_m: int) -> dict[str, Any]:
    """Change the tenant's S09 settings (window, default class, night margin, case, complaint radius)."""
    if not 1 <= window_min <= 120:
        raise FieldError("window_min", "must be between 1 and 120 minutes")
    if default_class not in rules.LIMITS:
        raise FieldError("default_class", f"{default_class!r} is not one of {', '.join(rules.CLASSES)}")
    if not 0 <= night_burst_db <= 40:
        raise FieldError("night_burst_db", "must be between 0 and 40 dB")
    if not 0 <= case_after <= 100:
        raise FieldError("case_after", "must be between 0 and 100")
    if not 10 <= complaint_radius_m <= 5000:
        raise FieldError("complaint_radius_m", "must be between 10 and 5000 m")
    tenant = session.get(Tenant, session.info["tenant_id"])
    assert tenant is not None
    own = dict((tenant.settings or {}).get("s09") or {})
    own.update(window_min=window_min, default_class=default_class, night_burst_db=night_burst_db,
               case_after=case_after, complaint_radius_m=complaint_radius_m)
    tenant.settings = {**(tenant.settings or {}), "s09": own}
    session.flush()
    _zone_cache.pop(tenant.id, None)
    return settings_of(tenant.settings)


# --- where a monitor stands: zones --------------------------------------------------------------

@dataclass(frozen=True)
class Judged:
    noise_class: str
    zone_id: int | None  # the zone that decided; None: the tenant's default class
    area_id: int | None  # the smallest area place (compound, committee, grid) at the point


@dataclass
class ZoneMap:
    """The tenant's areas and road bands, to find the class at a point."""

    default_class: str
    lon0: float = 0.0
    lat0: float = 0.0
    areas: list[tuple[int, str, Any]] = field(default_factory=list)  # place id, kind, prepared polygon
    area_zone: dict[int, tuple[int, str]] = field(default_factory=dict)  # place id → zone id, class
    bands: list[tuple[int, str, float, LineString]] = field(default_factory=list)  # zone, class, buffer, line (m)

    def metres(self, lon: float, lat: float) -> tuple[float, float]:
        kx = M_PER_DEG_LON_EQ * math.cos(math.radians(self.lat0))
        return (lon - self.lon0) * kx, (lat - self.lat0) * M_PER_DEG_LAT

    def classify(self, lon: float | None, lat: float | None) -> Judged:
        """A road band within its buffer first (GB/T 15190 carves 4a out of the area behind),
        then the smallest area with a class, else the tenant's default class."""
        if lon is None or lat is None:
            return Judged(self.default_class, None, None)
        point = Point(lon, lat)
        area_id = None
        chosen: tuple[int, str] | None = None
        for place_id, _kind, polygon in self.areas:
            if polygon.contains(point):
                if area_id is None:
                    area_id = place_id
                if place_id in self.area_zone:
                    chosen = self.area_zone[place_id]
                    break
        if self.bands:
            here = Point(*self.metres(lon, lat))
            near = [(line.distance(here), zone_id, cls) for zone_id, cls, buffer_m, line in self.bands
                    if line.distance(here) <= buffer_m]
            if near:
                _d, zone_id, cls = min(near)
                return Judged(cls, zone_id, area_id)
        if chosen is not None:
            return Judged(chosen[1], chosen[0], area_id)
        return Judged(self.default_class, None, area_id)


_zone_cache: dict[int, tuple[float, tuple[Any, ...], ZoneMap]] = {}


def zone_map(*, session: Session, default_class: str) -> ZoneMap:
    """The session tenant's zone map, cached until a zone changes (or a few minutes pass)."""
    tenant_id = int(session.info["tenant_id"])
    count, latest = session.execute(select(func.count(NoiseZone.id), func.max(NoiseZone.updated_at))).one()
    stamp = (count, latest, default_class)
    cached = _zone_cache.get(tenant_id)
    if cached is not None and cached[1] == stamp and time.monotonic() - cached[0] < ZONE_CACHE_S:
        return cached[2]
    zones = {z.place_id: z for z in session.scalars(select(NoiseZone))}
    rows = session.execute(select(Place.id, Place.kind, Place.geometry, Place.lon, Place.lat)
                           .where(Place.kind.in_(ZONE_KINDS), Place.geometry.is_not(None))
                           .execution_options(all_scopes=True)).all()
    zm = ZoneMap(default_class)
    ref = session.execute(select(Tenant.centre_lon, Tenant.centre_lat).where(Tenant.id == tenant_id)).one()
    if ref[0] is not None and ref[1] is not None:
        zm.lon0, zm.lat0 = float(ref[0]), float(ref[1])
    elif rows:
        zm.lon0, zm.lat0 = float(rows[0][3] or 0.0), float(rows[0][4] or 0.0)
    order = {k: i for i, k in enumerate(AREA_KINDS)}
    areas = []
    for pid, kind, geometry, _lon, _lat in rows:
        zone = zones.get(pid)
        try:
            geom = shape(geometry)
        except (ValueError, AttributeError, KeyError, TypeError):
            continue
        if kind == "street":
            if zone is not None and zone.buffer_m:
                coords = list(geom.coords) if geom.geom_type == "LineString" else []
                if len(coords) >= 2:
                    line = LineString([zm.metres(x, y) for x, y in coords])
                    zm.bands.append((zone.id, zone.noise_class, float(zone.buffer_m), line))
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        areas.append((order[kind], geom.area, pid, kind, prep(geom)))
        if zone is not None:
            zm.area_zone[pid] = (zone.id, zone.noise_class)
    areas.sort(key=lambda a: (a[0], a[1]))
    zm.areas = [(pid, kind, g) for _o, _a, pid, kind, g in areas]
    _zone_cache[tenant_id] = (time.monotonic(), stamp, zm)
    return zm


def zone_place(*, session: Session, place_id: int) -> Place | None:
    """A place that may carry a class, in the session's scope (None when missing or out of scope)."""
    return session.scalar(select(Place).where(Place.id == place_id))


def set_zone(*, session: Session, place_id: int, noise_class: str, buffer_m: float | None = None,
             note: str = "") -> NoiseZone:
    """Give an area (grid, committee, compound) or a street's band its GB 3096 class."""
    place = session.get(Place, place_id)
    if place is None:
        raise FieldError("place_id", f"place {place_id} does not exist")
    if place.kind not in ZONE_KINDS:
        raise FieldError("place_id", f"a {place.kind} cannot carry a noise class (grid, committee, compound or street)")
    if noise_class not in rules.LIMITS:
        raise FieldError("noise_class", f"{noise_class!r} is not one of {', '.join(rules.CLASSES)}")
    if place.kind == "street":
        if buffer_m is None or not 1 <= buffer_m <= 500:
            raise FieldError("buffer_m", "a street's band needs a buffer of 1 to 500 m from its centre line")
    else:
        buffer_m = None
    zone = session.scalar(select(NoiseZone).where(NoiseZone.place_id == place_id))
    if zone is None:
        zone = NoiseZone(place_id=place_id, noise_class=noise_class, buffer_m=buffer_m, note=note[:200])
        session.add(zone)
    else:
        zone.noise_class, zone.buffer_m, zone.note = noise_class, buffer_m, note[:200]
    session.flush()
    _zone_cache.pop(int(session.info["tenant_id"]), None)
    return zone


def remove_zone(*, session: Session, place_id: int) -> bool:
    """Take an area's own class away (it falls back to its parent's or the default); False if none."""
    zone = session.scalar(select(NoiseZone).where(NoiseZone.place_id == place_id))
    if zone is None:
        return False
    session.delete(zone)
    session.flush()
    _zone_cache.pop(int(session.info["tenant_id"]), None)
    return True


def zones(*, session: Session, kind: str | None = None) -> list[dict[str, Any]]:
    """The places that may carry a class, with their own class (or None) and the limits."""
    stmt = select(Place, NoiseZone).outerjoin(NoiseZone, NoiseZone.place_id == Place.id) \
        .where(Place.kind.in_([kind] if kind else ZONE_KINDS)).order_by(Place.kind, Place.code)
    out = []
    for place, zone in session.execute(stmt):
        if place.kind == "street" and zone is None and not (place.attrs or {}).get("main"):
            continue  # minor roads are listed once they have a band
        cls = zone.noise_class if zone else None
        out.append({"place_id": place.id, "kind": place.kind, "code": place.code, "name": place.name,
                    "noise_class": cls, "buffer_m": zone.buffer_m if zone else None,
                    "limit_day": rules.LIMITS[cls][0] if cls else None,
                    "limit_night": rules.LIMITS[cls][1] if cls else None,
                    "main_road": bool((place.attrs or {}).get("main")),
                    "width_m": (place.attrs or {}).get("width_m")})
    return out


# --- the change handler: judge minutes, raise and clear alarms ----------------------------------

def on_batch(changes: Changes) -> None:
    """Judge each noise reading of the batch and raise or clear the S09 alarms (inside the batch)."""
    mine: dict[int, list[tuple[int, int, dict[str, Any]]]] = {}
    for device_id, ts, values in changes.readings:
        info = changes.devices.get(device_id)
        if info is None or info.type_code != MONITOR or not isinstance(values.get("laeq_db"), int | float):
            continue
        mine.setdefault(info.tenant_id, []).append((device_id, ts, values))
    if not mine:
        return
    for tenant_id, readings in mine.items():
        with changes.session(tenant_id, ACTOR) as session:
            raw = session.scalar(select(Tenant.settings).where(Tenant.id == tenant_id))
            judge(session=session, readings=readings, settings=settings_of(raw),
                  now=dt.datetime.fromtimestamp(changes.now_ms / 1000, dt.UTC))


def _minute_of(ts_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ms // 60_000 * 60, dt.UTC)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def judge(*, session: Session, readings: list[tuple[int, int, dict[str, Any]]], settings: dict[str, Any],
          now: dt.datetime) -> list[NoiseMinute]:
    """Store each reading's judged minute and evaluate the window and night-burst alarms."""
    readings = sorted(readings, key=lambda r: (r[0], r[1]))
    device_ids = sorted({r[0] for r in readings})
    devices = {d.id: d for d in session.scalars(select(Device).where(Device.id.in_(device_ids))
                                                .execution_options(all_scopes=True))}
    minutes_wanted = {_minute_of(ts) for _d, ts, _v in readings}
    stored = {(m.device_id, m.ts): m for m in session.scalars(
        select(NoiseMinute).where(NoiseMinute.device_id.in_(device_ids), NoiseMinute.ts.in_(sorted(minutes_wanted)))
        .execution_options(all_scopes=True))}
    zm = zone_map(session=session, default_class=settings["default_class"])
    last_pos: dict[int, tuple[float | None, float | None]] = {}
    bursts: dict[int, list[tuple[int, float, float, NoiseMinute]]] = {}
    latest: dict[int, NoiseMinute] = {}
    out = []
    for device_id, ts, values in readings:
        device = devices.get(device_id)
        if device is None:
            continue
        lon, lat = _num(values.get("lon")), _num(values.get("lat"))
        if lon is None or lat is None:
            lon, lat = last_pos.get(device_id) or _last_position(session, device)
        last_pos[device_id] = (lon, lat)
        laeq = float(values["laeq_db"])
        lamax = _num(values.get("lamax_db"))
        minute = _minute_of(ts)
        where = zm.classify(lon, lat)
        period = period_of(minute)
        limit = limit_of(where.noise_class, period)
        row = stored.get((device_id, minute))
        if row is None:
            row = NoiseMinute(device_id=device_id, ts=minute, laeq=laeq, lamax=lamax, readings=1)
            session.add(row)
            stored[(device_id, minute)] = row
        else:  # a second reading in the same minute: energy-average it in
            n = row.readings
            row.laeq = 10 * math.log10((n * 10 ** (row.laeq / 10) + 10 ** (laeq / 10)) / (n + 1))
            row.lamax = max((x for x in (row.lamax, lamax) if x is not None), default=None)
            row.readings = n + 1
        row.lon, row.lat = lon, lat
        row.noise_class, row.zone_id, row.period, row.limit_db = where.noise_class, where.zone_id, period, limit
        row.place_id = where.area_id if where.area_id is not None else device.place_id
        row.over = row.laeq > limit
        if period == "night" and laeq > limit + float(settings["night_burst_db"]):
            bursts.setdefault(device_id, []).append((ts, laeq, limit, row))
        if device_id not in latest or latest[device_id].ts <= minute:
            latest[device_id] = row
        out.append(row)
    session.flush()
    for device_id, row in latest.items():
        _alarms(session, devices[device_id], row, bursts.get(device_id, []), settings, now)
    return out


def _last_position(session: Session, device: Device) -> tuple[float | None, float | None]:
    """Where the monitor was last judged, else where it is registered, else its place's point."""
    last = session.execute(select(NoiseMinute.lon, NoiseMinute.lat)
                           .where(NoiseMinute.device_id == device.id, NoiseMinute.lon.is_not(None))
                           .order_by(NoiseMinute.ts.desc()).limit(1).execution_options(all_scopes=True)).first()
    if last is not None:
        return last[0], last[1]
    if device.lon is not None and device.lat is not None:
        return device.lon, device.lat
    place = session.get(Place, device.place_id) if device.place_id else None
    return (place.lon, place.lat) if place else (None, None)


def _where(session: Session, device: Device, row: NoiseMinute) -> str:
    place = session.get(Place, row.place_id) if row.place_id else None
    return f"{device.name} · {place.name}" if place is not None and place.id != device.place_id else device.name


def _alarms(session: Session, device: Device, row: NoiseMinute, bursts: list[tuple[int, float, float, NoiseMinute]],
            settings: dict[str, Any], now: dt.datetime) -> None:
    from shequ.core.alarms import service as alarms

    source = f"d:{device.id}"
    for ts, laeq, limit, burst_row in bursts:
        alarm, _new = alarms.raise_alarm(
            session=session, type=rules.ALARM_NIGHT, source=source, severity="MAJOR",
            title=f"夜间突发噪声 {laeq:.1f} dB(A)（限值 {limit:.0f}+{settings['night_burst_db']:.0f}）· "
                  f"{_where(session, device, burst_row)}",
            device_id=device.id, place_id=burst_row.place_id, scenario=SCENARIO_ID, source_ms=ts, actor=ACTOR, now=now,
            context={"ts": ts, "laeq": laeq, "limit": limit, "class": burst_row.noise_class,
                     "margin_db": settings["night_burst_db"], "lon": burst_row.lon, "lat": burst_row.lat})
        _maybe_case(session, alarm, settings, now)
    window = int(settings["window_min"])
    start = row.ts - dt.timedelta(minutes=window)
    levels = session.execute(select(NoiseMinute.ts, NoiseMinute.laeq)
                             .where(NoiseMinute.device_id == device.id, NoiseMinute.ts > start)
                             .execution_options(all_scopes=True)).all()
    if any(ts > row.ts for ts, _l in levels):
        return  # a late reading: the newer minutes have judged the window already
    if len(levels) < int(settings["min_minutes"]):
        return
    mean = energy_mean(level for _ts, level in levels)
    assert mean is not None
    active = alarms.active_alarm(session=session, source=source, type=rules.ALARM_WINDOW)
    if mean > row.limit_db:
        if active is None:
            alarms.raise_alarm(
                session=session, type=rules.ALARM_WINDOW, source=source, severity="MINOR",
                title=f"噪声持续超标 {window} 分钟等效声级 {mean:.1f} dB(A) > {row.limit_db:.0f} · "
                      f"{_where(session, device, row)}",
                device_id=device.id, place_id=row.place_id, scenario=SCENARIO_ID,
                source_ms=int(row.ts.timestamp() * 1000), actor=ACTOR, now=now,
                context={"laeq_window": round(mean, 1), "window_min": window, "minutes": len(levels),
                         "limit": row.limit_db, "class": row.noise_class, "period": row.period,
                         "lon": row.lon, "lat": row.lat})
        return
    if active is not None:
        alarms.clear(session=session, alarm=active, actor=ACTOR, now=now,
                     note=f"{window} 分钟等效声级 {mean:.1f} dB(A) ≤ {row.limit_db:.0f}")
    burst = alarms.active_alarm(session=session, source=source, type=rules.ALARM_NIGHT)
    if burst is not None and not any(b[3] is row for b in bursts):
        alarms.clear(session=session, alarm=burst, actor=ACTOR, now=now,
                     note=f"{window} 分钟等效声级回落至 {mean:.1f} dB(A)")


def _maybe_case(session: Session, alarm: Any, settings: dict[str, Any], now: dt.datetime) -> None:
    """Repeated night bursts on one alarm open a 噪声扰民 case (once), just after the batch commits."""
    after = int(settings["case_after"])
    if not after or alarm.count < after or alarm.case_id is not None or alarm.pending_actions:
        return
    alarm.pending_actions = [{"do": "case", "class_code": rules.CASE_CLASS, "actor": ACTOR, "dispatch": True}]
    alarm.pending_since = now
    after_commit = session.info.get("after_commit")
    engine = session.info.get("engine")
    if after_commit is not None and engine is not None:
        from shequ.core.alarms.service import wake_pending

        after_commit.append(functools.partial(wake_pending, engine))


# --- the sweep --------------------------------------------------------------------------------

def sweep(engine: Engine, now: dt.datetime | None = None) -> int:
    """Clear S09 alarms of monitors silent for two windows (no data, nothing to judge); returns how many."""
    from shequ.core.alarms import service as alarms
    from shequ.core.alarms.models import Alarm
    from shequ.db import session_scope

    now = now or dt.datetime.now(dt.UTC)
    done = 0
    with session_scope(engine=engine) as s:
        tenants = [(t.id, t.settings) for t in s.scalars(select(Tenant))]
    for tenant_id, raw in tenants:
        if SCENARIO_ID not in enabled_ids(raw or {}):
            continue
        cfg = settings_of(raw)
        with session_scope(tenant_id=tenant_id, actor=ACTOR, engine=engine) as s:
            active = s.scalars(select(Alarm).where(Alarm.scenario == SCENARIO_ID, Alarm.active_key.is_not(None))
                               .execution_options(all_scopes=True)).all()
            for alarm in active:
                if alarm.device_id is None:
                    continue
                last = s.scalar(select(func.max(NoiseMinute.ts)).where(NoiseMinute.device_id == alarm.device_id)
                                .execution_options(all_scopes=True))
                if last is None or now - last > dt.timedelta(minutes=2 * int(cfg["window_min"])):
                    alarms.clear(session=s, alarm=alarm, actor=ACTOR, now=now,
                                 note="监测仪无数据，无法判定 (no data from the monitor)")
                    done += 1
    return done


# --- reading: monitors, report, complaints, chart -----------------------------------------------

def find_monitor(*, session: Session, ref: str) -> Device | None:
    """A noise monitor by its code, or by its id, in the session's scope."""
    base = select(Device).where(Device.type_code == MONITOR)
    found = session.scalar(base.where(Device.code == ref))
    if found is None and ref.isdigit() and len(ref) < 12:
        found = session.scalar(base.where(Device.id == int(ref)))
    return found


def monitors(*, session: Session) -> list[dict[str, Any]]:
    """Each monitor in scope: its latest judged minute and its active S09 alarms."""
    from shequ.core.alarms.models import Alarm

    devices = list(session.scalars(select(Device).where(Device.type_code == MONITOR).order_by(Device.code)))
    ids = [d.id for d in devices]
    if not ids:
        return []
    newest = select(NoiseMinute.device_id, func.max(NoiseMinute.ts).label("ts")) \
        .where(NoiseMinute.device_id.in_(ids)).group_by(NoiseMinute.device_id).subquery()
    latest = {m.device_id: m for m in session.scalars(
        select(NoiseMinute).join(newest, (NoiseMinute.device_id == newest.c.device_id) & (NoiseMinute.ts == newest.c.ts))
        .execution_options(all_scopes=True))}
    active: dict[int, list[Alarm]] = {}
    for alarm in session.scalars(select(Alarm).where(Alarm.scenario == SCENARIO_ID, Alarm.active_key.is_not(None),
                                                     Alarm.device_id.in_(ids)).order_by(Alarm.id)
                                 .execution_options(all_scopes=True)):
        active.setdefault(alarm.device_id or 0, []).append(alarm)
    area_ids = {m.place_id for m in latest.values() if m.place_id}
    names = dict(session.execute(select(Place.id, Place.name).where(Place.id.in_(area_ids))
                                 .execution_options(all_scopes=True)).all()) if area_ids else {}
    out = []
    for d in devices:
        m = latest.get(d.id)
        out.append({"device": d, "minute": m, "area": names.get(m.place_id) if m and m.place_id else None,
                    "alarms": active.get(d.id, [])})
    return out


def minutes_of(*, session: Session, device_id: int, start: dt.datetime, end: dt.datetime) -> list[NoiseMinute]:
    """The judged minutes of one monitor in [start, end), oldest first (in the session's scope)."""
    return list(session.scalars(select(NoiseMinute).where(NoiseMinute.device_id == device_id,
                                                          NoiseMinute.ts >= start, NoiseMinute.ts < end)
                                .order_by(NoiseMinute.ts)))


def check_period(start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """The report's period, refused with the field named when missing, without offset or reversed."""
    if start is None:
        raise FieldError("start", "is required (ISO 8601 with an offset, e.g. 2026-12-01T00:00:00+08:00)")
    if end is None:
        raise FieldError("end", "is required (ISO 8601 with an offset, e.g. 2026-12-02T00:00:00+08:00)")
    if start.tzinfo is None:
        raise FieldError("start", "has no UTC offset")
    if end.tzinfo is None:
        raise FieldError("end", "has no UTC offset")
    if end <= start:
        raise FieldError("end", "must be after start")
    if end - start > dt.timedelta(days=MAX_REPORT_DAYS):
        raise FieldError("end", f"the period may span at most {MAX_REPORT_DAYS} days")
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _predominant(classes: Iterable[str]) -> str | None:
    """The class with most minutes; a tie goes to the stricter (lower day limit)."""
    counts = Counter(classes)
    if not counts:
        return None
    return min(counts, key=lambda c: (-counts[c], rules.LIMITS[c][0], rules.LIMITS[c][1]))


def summarise(minutes: Sequence[NoiseMinute]) -> dict[str, Any]:
    """The report figures of judged minutes (pure; see docs/scenarios/s09.md for each formula)."""
    levels = [m.laeq for m in minutes]
    day = [m for m in minutes if m.period == "day"]
    night = [m for m in minutes if m.period == "night"]
    main = _predominant(m.noise_class for m in minutes)
    day_class = _predominant(m.noise_class for m in day) or main
    night_class = _predominant(m.noise_class for m in night) or main
    by_class = []
    for cls in sorted({m.noise_class for m in minutes}, key=lambda c: rules.CLASSES.index(c)):
        mine = [m for m in minutes if m.noise_class == cls]
        by_class.append({
            "noise_class": cls, "minutes": len(mine), "laeq": _r(energy_mean(m.laeq for m in mine)),
            "ld": _r(energy_mean(m.laeq for m in mine if m.period == "day")),
            "ln": _r(energy_mean(m.laeq for m in mine if m.period == "night")),
            "limit_day": rules.LIMITS[cls][0], "limit_night": rules.LIMITS[cls][1],
            "minutes_over": sum(1 for m in mine if m.over)})
    return {
        "laeq": _r(energy_mean(levels)),
        "lamax": _r(max((m.lamax if m.lamax is not None else m.laeq for m in minutes), default=None)),
        "l10": _r(level_exceeded(levels, 10)), "l50": _r(level_exceeded(levels, 50)),
        "l90": _r(level_exceeded(levels, 90)),
        "ld": _r(energy_mean(m.laeq for m in day)), "ln": _r(energy_mean(m.laeq for m in night)),
        "limit_day": rules.LIMITS[day_class][0] if day_class else None,
        "limit_night": rules.LIMITS[night_class][1] if night_class else None,
        "minutes_over": sum(1 for m in minutes if m.over),
        "readings": len(minutes), "day_minutes": len(day), "night_minutes": len(night),
        "noise_class": main, "class_day": day_class, "class_night": night_class, "by_class": by_class,
    }


def report(*, session: Session, device: Device, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """The report of one monitor over [start, end): levels, limits, minutes over, per class."""
    start, end = check_period(start, end)
    minutes = minutes_of(session=session, device_id=device.id, start=start, end=end)
    return {"device": device.code, "device_id": device.id, "start": start.isoformat(), "end": end.isoformat(),
            **summarise(minutes)}


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    kx = M_PER_DEG_LON_EQ * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lon1 - lon2) * kx, (lat1 - lat2) * M_PER_DEG_LAT)


def complaints_near(*, session: Session, positions: Iterable[tuple[float, float]], start: dt.datetime,
                    end: dt.datetime, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Residents' noise complaints (cases of the noise classes) reported in [start, end) within the
    complaint radius of any of the monitor's positions, nearest first."""
    from shequ.core.cases.models import Case

    points = sorted({(round(lon, 4), round(lat, 4)) for lon, lat in positions})
    if not points:
        return []
    radius = float(settings["complaint_radius_m"])
    stmt = (select(Case, Place.lon, Place.lat).outerjoin(Place, Place.id == Case.place_id)
            .where(Case.class_code.in_(list(settings["complaint_classes"])), Case.reported_at >= start,
                   Case.reported_at < end).order_by(Case.reported_at).limit(500))
    out: list[tuple[dt.datetime, int, Case]] = []
    for case, plon, plat in session.execute(stmt):
        lon, lat = (case.lon, case.lat) if case.lon is not None and case.lat is not None else (plon, plat)
        if lon is None or lat is None:
            continue
        d = min(distance_m(lon, lat, x, y) for x, y in points)
        if d <= radius:
            out.append((case.reported_at, round(d), case))
    out.sort(key=lambda c: (c[0], c[1]))
    return [{"case": case, "distance_m": d} for _at, d, case in out]


def chart(minutes: Sequence[NoiseMinute], *, width: int = 720, height: int = 220, max_points: int = 720) -> dict[str, Any]:
    """An SVG line of LAeq per minute (energy-averaged into at most ``max_points`` buckets) and the
    limit as a step line, in the coordinates of a ``width``×``height`` box."""
    if not minutes:
        return {}
    size = max(1, math.ceil(len(minutes) / max_points))
    buckets = [minutes[i:i + size] for i in range(0, len(minutes), size)]
    levels = [energy_mean(m.laeq for m in b) or 0.0 for b in buckets]
    limits = [min(m.limit_db for m in b) for b in buckets]
    lo = math.floor(min(min(levels), min(limits)) / 10) * 10
    hi = math.ceil(max(max(levels), max(limits)) / 10) * 10
    hi = hi if hi > lo else lo + 10
    pad_l, pad_b = 40, 20
    t0, t1 = minutes[0].ts.timestamp(), minutes[-1].ts.timestamp()
    span = max(60.0, t1 - t0)

    def x(b: Sequence[NoiseMinute]) -> float:
        return round(pad_l + (b[0].ts.timestamp() - t0) / span * (width - pad_l - 5), 1)

    def y(v: float) -> float:
        return round((height - pad_b) - (v - lo) / (hi - lo) * (height - pad_b - 5), 1)

    line = " ".join(f"{x(b)},{y(v)}" for b, v in zip(buckets, levels, strict=True))
    steps = []
    for i, (b, v) in enumerate(zip(buckets, limits, strict=True)):
        if i and v != limits[i - 1]:
            steps.append(f"{x(b)},{y(limits[i - 1])}")
        steps.append(f"{x(b)},{y(v)}")
    steps.append(f"{width - 5},{y(limits[-1])}")
    ticks = [{"y": y(v), "label": str(v)} for v in range(lo, hi + 1, 10)]
    start_local = minutes[0].ts.astimezone(SHANGHAI).strftime("%m-%d %H:%M")
    end_local = minutes[-1].ts.astimezone(SHANGHAI).strftime("%m-%d %H:%M")
    return {"width": width, "height": height, "line": line, "limit": " ".join(steps), "ticks": ticks,
            "left": pad_l, "bottom": height - pad_b, "start": start_local, "end": end_local,
            "bucket_min": size}


def monitor_view(*, session: Session, device: Device, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """What the monitor page shows: the report figures, the chart and the complaints nearby."""
    minutes = minutes_of(session=session, device_id=device.id, start=start, end=end)
    positions = [(m.lon, m.lat) for m in minutes if m.lon is not None and m.lat is not None]
    return {"r": summarise(minutes), "chart": chart(minutes),
            "complaints": complaints_near(session=session, positions=positions, start=start, end=end,
                                          settings=tenant_settings(session=session))}


# --- the brain tile ---------------------------------------------------------------------------

def tile(*, session: Session, lang: str = "zh-CN") -> Tile:
    """噪音管理 on the brain: monitors, active noise alarms, minutes over today, the loudest minute now."""
    from shequ.core.alarms.models import Alarm

    zh = lang.startswith("zh")
    count = session.scalar(select(func.count()).select_from(Device).where(Device.type_code == MONITOR)) or 0
    alarms_by_sev = dict(session.execute(
        select(Alarm.severity, func.count()).where(Alarm.scenario == SCENARIO_ID, Alarm.active_key.is_not(None))
        .group_by(Alarm.severity)).all())
    local_midnight = dt.datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    over_today = session.scalar(select(func.count()).select_from(NoiseMinute).where(
        NoiseMinute.ts >= local_midnight.astimezone(dt.UTC), NoiseMinute.over.is_(True))) or 0
    loudest = session.scalar(select(func.max(NoiseMinute.laeq)).where(
        NoiseMinute.ts >= dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)))
    active = sum(alarms_by_sev.values())
    figures = (
        ("监测仪" if zh else "Monitors", str(count)),
        ("噪声告警" if zh else "Noise alarms", str(active)),
        ("夜间突发" if zh else "Night bursts", str(alarms_by_sev.get("MAJOR", 0))),
        ("今日超标分钟" if zh else "Minutes over today", str(over_today)),
        ("当前最高 LAeq" if zh else "Loudest LAeq now", f"{loudest:.1f} dB(A)" if loudest is not None else "—"),
    )
    return Tile(title="噪音管理" if zh else "Noise", figures=figures, link="/noise", alert=active > 0)


# --- the demo ---------------------------------------------------------------------------------

def seed_demo(*, session: Session) -> None:
    """Classes for the demo tenant, where none is set yet: residential compounds 1, main roads' bands 4a
    (half the road's width plus 35 m, GB/T 15190 next to class 2), the rest the default class 2."""
    have = set(session.scalars(select(NoiseZone.place_id)))
    places = session.scalars(select(Place).where(Place.kind.in_(("compound", "street")))
                             .execution_options(all_scopes=True)).all()
    added = False
    for place in places:
        if place.id in have:
            continue
        if place.kind == "compound" and (place.use or "residential") == "residential":
            session.add(NoiseZone(place_id=place.id, noise_class="1", note="seed: 居住区"))
            added = True
        elif place.kind == "street" and (place.attrs or {}).get("main"):
            half = float((place.attrs or {}).get("width_m") or 30) / 2
            session.add(NoiseZone(place_id=place.id, noise_class="4a", buffer_m=half + rules.BUFFER_BY_NEIGHBOUR_M["2"],
                                  note="seed: 交通干线两侧"))
            added = True
    if added:
        session.flush()
        _zone_cache.pop(int(session.info["tenant_id"]), None)
