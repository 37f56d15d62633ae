"""The brain's numbers and layers: SQL aggregates over the session's scope (population, devices,
alarms, cases, on-time rates, 14-day trends), the map's layers (areas, buildings now or at a
past moment, active alarms), the drill-down panel of a place, and the command actions
(dispatch, escalate, supervise a case; broadcast a notice).

Every query goes through the ORM of the caller's session, so a grid worker sees their grid's
numbers only; the twin's present-state tables (``device_state``, ``place_state``), which carry no
scope of their own, are only ever read joined to their scoped device or place. Each aggregate
is one ``GROUP BY`` statement, whatever the number of rows behind it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session, aliased

# the kernel's words for severities and stages (alarms.sev.*, cases.stage.*) come with its routes
from shequ.core.alarms import query as alarm_query
from shequ.core.alarms import routes as _alarm_words  # noqa: F401
from shequ.core.alarms.models import SEVERITIES, SEVERITY_RANK, Alarm
from shequ.core.cases import kpi, policy
from shequ.core.cases import routes as _case_words  # noqa: F401
from shequ.core.cases.calendar import SHANGHAI
from shequ.core.cases.models import OPEN_STAGES, REPORTED, STAGES, Case
from shequ.core.cases.schemas import CaseActionIn
from shequ.core.cases.service import get_case
from shequ.core.errors import FieldError
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot import twin_read
from shequ.core.iot.models import CONDITIONS, Device, DeviceState, PlaceState
from shequ.core.iot.types import get_type
from shequ.core.notify import notices
from shequ.core.notify.models import Notice
from shequ.core.places.models import Place, PlaceKind, Tenant
from shequ.core.plugins import load_scenarios
from shequ.core.registry import kinds
from shequ.core.registry.models import Person, PersonStatus, ResidenceType, Tag, Tagging
from shequ.web.i18n import t

TREND_DAYS = 14
ON_TIME_DAYS = 30  # the on-time rates cover the cases reported in the last 30 days
ALARM_LIMIT = 300  # active alarms on the map, most severe first
CASE_LIMIT = 60  # open cases in the command list
DEVICE_CAP = 500  # devices listed with a place
# age bands of the population pyramid: (key, lowest age); a band runs to the next one's age
AGE_BANDS: tuple[tuple[str, int], ...] = (("0-17", 0), ("18-34", 18), ("35-59", 35), ("60-79", 60), ("80+", 80))
SEXES = ("M", "F")
AREA_KINDS = (PlaceKind.GRID, PlaceKind.COMMITTEE, PlaceKind.COMPOUND)
# the command actions the screen offers on a case
CASE_ACTIONS = ("dispatch", "escalate", "supervise")
SPECIAL_GROUPS = "special_groups"

log = logging.getLogger(__name__)


class BrainError(FieldError):
    """A command the screen sent with a value that cannot be used; names the field."""


def _zh(lang: str) -> bool:
    return lang.startswith("zh")


def _today(now: dt.datetime) -> dt.date:
    return now.astimezone(SHANGHAI).date()


def _years_before(day: dt.date, years: int) -> dt.date:
    """The same day ``years`` earlier (28 February for a 29th of February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


# --- population --------------------------------------------------------------------------


def population(*, session: Session, now: dt.datetime | None = None, lang: str = "zh-CN") -> dict[str, Any]:
    """People in the register (active only): age bands × sex, residence type, special groups."""
    today = _today(now or dt.datetime.now(dt.UTC))
    # the first matching branch wins: the youngest band first (born after the 18-years cutoff)
    band = sql_case(
        (Person.birth_date.is_(None), "unknown"),
        *[(Person.birth_date > _years_before(today, AGE_BANDS[i + 1][1]), AGE_BANDS[i][0])
          for i in range(len(AGE_BANDS) - 1)],
        else_=AGE_BANDS[-1][0],
    )
    active = Person.status == PersonStatus.ACTIVE
    keys = [key for key, _ in AGE_BANDS]
    pyramid = {sex: dict.fromkeys(keys, 0) for sex in (*SEXES, "other")}
    unknown_age = 0
    total = 0
    for key, sex, n in session.execute(select(band.label("band"), Person.sex, func.count(Person.id))
                                       .where(active).group_by(band, Person.sex)):
        total += n
        if key == "unknown":
            unknown_age += n
            continue
        pyramid[sex if sex in SEXES else "other"][key] += n
    residence = dict.fromkeys([r.value for r in ResidenceType], 0)
    for value, n in session.execute(select(Person.residence_type, func.count(Person.id)).where(active)
                                    .group_by(Person.residence_type)):
        residence[value] = residence.get(value, 0) + n
    return {
        "total": total,
        "age_sex": {"bands": keys, **{sex: [pyramid[sex][k] for k in keys] for sex in pyramid},
                    "unknown_age": unknown_age},
        "residence": [{"key": k, "label": kinds.label("residence_type", k, lang), "n": n}
                      for k, n in residence.items()],
        "special": special_groups(session=session, lang=lang),
    }


def special_groups(*, session: Session, lang: str = "zh-CN") -> list[dict[str, Any]]:
    """Active people carrying each tag under 特殊人群 (special groups), in one statement."""
    from shequ.core.registry.tags import DEFAULT_TAGS

    english = {d.code: d.en for d in DEFAULT_TAGS}
    parent = aliased(Tag)
    rows = session.execute(
        select(Tag.code, Tag.name, func.count(Person.id))
        .join(parent, parent.id == Tag.parent_id)
        .outerjoin(Tagging, and_(Tagging.tag_id == Tag.id, Tagging.entity == "person"))
        .outerjoin(Person, and_(Person.id == Tagging.entity_id, Person.status == PersonStatus.ACTIVE))
        .where(parent.code == SPECIAL_GROUPS)
        .group_by(Tag.code, Tag.name)
        .order_by(func.count(Person.id).desc(), Tag.code))
    return [{"key": code, "label": name if _zh(lang) else english.get(code, name), "n": n}
            for code, name, n in rows]


# --- devices -----------------------------------------------------------------------------


def devices(*, session: Session, lang: str = "zh-CN") -> dict[str, Any]:
    """Devices in service by type, online and offline, and by condition (the twin's present)."""
    online = func.coalesce(DeviceState.online, False).is_(True)
    in_service = Device.status != "retired"
    by_type = []
    total = up = 0
    for code, n, n_online in session.execute(
            select(Device.type_code, func.count(Device.id), func.sum(sql_case((online, 1), else_=0)))
            .outerjoin(DeviceState, DeviceState.device_id == Device.id)
            .where(in_service).group_by(Device.type_code).order_by(func.count(Device.id).desc(), Device.type_code)):
        n_online = int(n_online or 0)
        dtype = get_type(code)
        name = (dtype.name if _zh(lang) or not dtype.name_en else dtype.name_en) if dtype else code
        by_type.append({"key": code, "label": name, "online": n_online, "offline": n - n_online})
        total += n
        up += n_online
    by_condition = dict.fromkeys(CONDITIONS, 0)
    condition = func.coalesce(DeviceState.condition, "unknown")
    for value, n in session.execute(select(condition, func.count(Device.id))
                                    .outerjoin(DeviceState, DeviceState.device_id == Device.id)
                                    .where(in_service).group_by(condition)):
        by_condition[value if value in by_condition else "unknown"] += n
    return {"total": total, "online": up, "offline": total - up, "by_type": by_type, "by_condition": by_condition}


# --- alarms and cases --------------------------------------------------------------------


def _scenario_label(code: str, lang: str) -> str:
    if not code:
        return "通用" if _zh(lang) else "general"
    spec = load_scenarios().scenarios.get(code)
    if spec is None:
        return code
    return spec.name if _zh(lang) or not spec.name_en else spec.name_en


def alarms(*, session: Session, now: dt.datetime | None = None, lang: str = "zh-CN") -> dict[str, Any]:
    """Active and unacknowledged alarms, active ones by severity, today's by scenario and severity."""
    now = now or dt.datetime.now(dt.UTC)
    counts = alarm_query.summary(session=session, now=now)
    midnight = kpi.local_midnight(_today(now))
    by_scenario: dict[str, int] = {}
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for scenario, severity, n in session.execute(
            select(Alarm.scenario, Alarm.severity, func.count(Alarm.id)).where(Alarm.raised_at >= midnight)
            .group_by(Alarm.scenario, Alarm.severity)):
        by_scenario[scenario or ""] = by_scenario.get(scenario or "", 0) + n
        by_severity[severity] = by_severity.get(severity, 0) + n
    return {
        "active": counts.active,
        "unacknowledged": counts.unacknowledged,
        "today": sum(by_severity.values()),
        "active_by_severity": [{"key": s, "label": t(f"alarms.sev.{s}", lang), "n": counts.by_severity.get(s, 0)}
                               for s in SEVERITIES],
        "today_by_severity": [{"key": s, "label": t(f"alarms.sev.{s}", lang), "n": by_severity[s]}
                              for s in SEVERITIES],
        "today_by_scenario": [{"key": k, "label": _scenario_label(k, lang), "n": n}
                              for k, n in sorted(by_scenario.items(), key=lambda kv: (-kv[1], kv[0]))],
    }


def cases(*, session: Session, now: dt.datetime | None = None, lang: str = "zh-CN") -> dict[str, Any]:
    """Cases by stage, how many are open and how many of those are past their stage's deadline."""
    now = now or dt.datetime.now(dt.UTC)
    overdue = and_(Case.stage.in_(OPEN_STAGES), Case.suspended_at.is_(None), Case.stage_due_at < now)
    by_stage = dict.fromkeys(STAGES, 0)
    late = 0
    for stage, n, n_late in session.execute(
            select(Case.stage, func.count(Case.id), func.sum(sql_case((overdue, 1), else_=0)))
            .group_by(Case.stage)):
        by_stage[stage] = n
        late += int(n_late or 0)
    return {"open": sum(by_stage[s] for s in OPEN_STAGES), "overdue": late,
            "by_stage": [{"key": s, "label": t(f"cases.stage.{s}", lang), "n": by_stage[s]} for s in STAGES]}


def on_time(*, session: Session, now: dt.datetime | None = None, lang: str = "zh-CN") -> dict[str, Any]:
    """按期处置率 by department and by grid over the cases reported in the last ON_TIME_DAYS days
    (the indicator of ``cases.kpi``; a group with nothing handled yet has no rate)."""
    now = now or dt.datetime.now(dt.UTC)
    end = _today(now) + dt.timedelta(days=1)
    start = end - dt.timedelta(days=ON_TIME_DAYS)
    out: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat()}
    for by in ("department", "grid"):
        report = kpi.indicators(session=session, start=start, end=end, by=by, now=now, lang=lang)
        out[f"by_{by}"] = [
            {"key": row.key, "label": row.label, "handled": row.current["handled"],
             "on_time": row.current["handled_on_time"],
             "rate": None if row.current["on_time_handling_rate"] is None
             else round(float(row.current["on_time_handling_rate"]), 4)}
            for row in report.rows if row.key is not None]
        if by == "department":
            total = report.total.current
            out["rate"] = (None if total["on_time_handling_rate"] is None
                           else round(float(total["on_time_handling_rate"]), 4))
    return out


def _per_day(session: Session, column: Any, bounds: Sequence[dt.datetime]) -> list[int]:
    """How many rows fall in each day of ``bounds`` (consecutive local midnights): one statement."""
    buckets = [func.sum(sql_case((and_(column >= bounds[i], column < bounds[i + 1]), 1), else_=0))
               for i in range(len(bounds) - 1)]
    row = session.execute(select(*buckets).where(column >= bounds[0], column < bounds[-1])).one()
    return [int(v or 0) for v in row]


def trends(*, session: Session, now: dt.datetime | None = None, days: int = TREND_DAYS) -> dict[str, Any]:
    """Alarms raised and cases reported on each of the last ``days`` days (Asia/Shanghai)."""
    today = _today(now or dt.datetime.now(dt.UTC))
    dates = [today - dt.timedelta(days=days - 1 - i) for i in range(days)]
    bounds = [kpi.local_midnight(d) for d in (*dates, today + dt.timedelta(days=1))]
    return {"days": [d.isoformat() for d in dates],
            "alarms": _per_day(session, Alarm.raised_at, bounds),
            "cases": _per_day(session, Case.reported_at, bounds)}


def twin_mark(*, session: Session) -> int:
    """The time of the latest change of any building's state in scope (0: none yet); the screen
    reloads its buildings when it moves."""
    return int(session.scalar(select(func.max(PlaceState.ts)).select_from(Place)
                              .join(PlaceState, PlaceState.place_id == Place.id)
                              .where(Place.kind == PlaceKind.BUILDING)) or 0)


def scenario_tiles(*, session: Session, lang: str = "zh-CN") -> list[dict[str, Any]]:
    """The tile of each scenario the tenant has switched on (in the session's scope); a tile
    that fails is left out and logged, so one scenario cannot blank the screen."""
    from shequ.core.plugins import enabled_ids, resolve

    settings = session.scalar(select(Tenant.settings).where(Tenant.id == session.info.get("tenant_id"))) or {}
    on = enabled_ids(settings)
    out = []
    for spec in sorted(load_scenarios().scenarios.values(), key=lambda s: s.id):
        if spec.tile is None or spec.id not in on:
            continue
        try:
            with session.begin_nested():
                tile = resolve(spec.tile)(session=session, lang=lang)
        except Exception:
            log.exception("the brain tile of %s failed", spec.id)
            continue
        out.append({"id": spec.id, "title": tile.title, "link": tile.link, "alert": tile.alert,
                    "figures": [{"label": k, "value": v} for k, v in tile.figures[:6]]})
    return out


def summary(*, session: Session, now: dt.datetime | None = None, lang: str = "zh-CN") -> dict[str, Any]:
    """Every number of the screen, in the session's scope."""
    now = now or dt.datetime.now(dt.UTC)
    return {
        "population": population(session=session, now=now, lang=lang),
        "devices": devices(session=session, lang=lang),
        "alarms": alarms(session=session, now=now, lang=lang),
        "cases": cases(session=session, now=now, lang=lang),
        "on_time": on_time(session=session, now=now, lang=lang),
        "trends": trends(session=session, now=now),
        "twin": twin_mark(session=session),
        "scenarios": scenario_tiles(session=session, lang=lang),
    }


# --- the map's layers --------------------------------------------------------------------


def centre(*, session: Session) -> tuple[float, float] | None:
    """The tenant's centre, else the middle of its buildings in scope; None when nothing is placed."""
    tenant = session.get(Tenant, session.info["tenant_id"])
    if tenant is not None and tenant.centre_lon is not None and tenant.centre_lat is not None:
        return float(tenant.centre_lon), float(tenant.centre_lat)
    west, east, south, north = session.execute(
        select(func.min(Place.lon), func.max(Place.lon), func.min(Place.lat), func.max(Place.lat))
        .where(Place.kind == PlaceKind.BUILDING, Place.lon.is_not(None), Place.lat.is_not(None))).one()
    if west is None or east is None or south is None or north is None:
        return None
    return (float(west) + float(east)) / 2, (float(south) + float(north)) / 2


def buildings(*, session: Session, at_ms: int | None = None) -> dict[str, Any]:
    """The buildings layer (footprint, height from floors, state) now or at ``at_ms``."""
    layer = twin_read.buildings_geojson(session)
    if at_ms is not None:
        ids = [f["id"] for f in layer["features"]]
        states = twin_read.place_states(session, ids, at_ms)
        for feature in layer["features"]:
            state = states[feature["id"]]
            feature["properties"].update(state=state["state"], counts=state["counts"], state_ts=state["ts"])
    layer["features"] = [f for f in layer["features"] if f["geometry"] is not None]
    return layer


def areas(*, session: Session, at_ms: int | None = None, lang: str = "zh-CN") -> dict[str, Any]:
    """Grids, committees and compounds in scope with their outline (when they have one), label
    point and state: a GeoJSON FeatureCollection."""
    places = list(session.scalars(select(Place).where(Place.kind.in_(AREA_KINDS)).order_by(Place.kind, Place.code)))
    states = twin_read.place_states(session, [p.id for p in places], at_ms)
    features = []
    for place in places:
        geometry = place.geometry if place.geometry else (
            {"type": "Point", "coordinates": [place.lon, place.lat]} if place.lon is not None else None)
        features.append({"type": "Feature", "id": place.id, "geometry": geometry, "properties": {
            "id": place.id, "kind": place.kind, "kind_label": kinds.label("place_kind", place.kind, lang),
            "name": place.name, "parent_id": place.parent_id, "lon": place.lon, "lat": place.lat,
            **states[place.id]}})
    return {"type": "FeatureCollection", "features": features}


def _alarm_row(alarm: Alarm, lon: float | None, lat: float | None, where: str, lang: str) -> dict[str, Any]:
    return {"id": alarm.id, "type": alarm.type, "severity": alarm.severity,
            "severity_label": t(f"alarms.sev.{alarm.severity}", lang), "status": alarm.status,
            "title": alarm.title, "scenario": alarm.scenario, "place_id": alarm.place_id,
            "building_id": alarm.building_id, "device_id": alarm.device_id, "count": alarm.count,
            "case_id": alarm.case_id, "raised_at": alarm.raised_at.isoformat(),
            "raised_local": alarm.raised_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M"),
            "lon": lon, "lat": lat, "where": where}


def active_alarms(*, session: Session, limit: int = ALARM_LIMIT, lang: str = "zh-CN",
                  where: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Active alarms in scope, most severe and newest first, each with a point to show it at
    (its device's, else its place's, else its building's) and a place to name: one statement."""
    rank = sql_case(SEVERITY_RANK, value=Alarm.severity, else_=len(SEVERITIES))
    # no aliased Place here: a scope's criteria name the place table itself
    stmt = (select(Alarm, Device.lon, Device.lat, Place.lon, Place.lat, Place.address_text, Place.name)
            .outerjoin(Device, Device.id == Alarm.device_id)
            .outerjoin(Place, Place.id == Alarm.place_id)
            .where(Alarm.status.in_(alarm_query.ACTIVE), *where)
            .order_by(rank, Alarm.raised_at.desc(), Alarm.id.desc()).limit(limit))
    rows = session.execute(stmt).all()
    building_ids = {row[0].building_id for row in rows if row[0].building_id is not None}
    buildings = {i: (lon, lat, name) for i, lon, lat, name in session.execute(
        select(Place.id, Place.lon, Place.lat, Place.name).where(Place.id.in_(building_ids)))} if building_ids else {}
    out = []
    for alarm, d_lon, d_lat, p_lon, p_lat, address, p_name in rows:
        b_lon, b_lat, b_name = buildings.get(alarm.building_id or 0, (None, None, None))
        lon, lat = next(((x, y) for x, y in ((d_lon, d_lat), (p_lon, p_lat), (b_lon, b_lat))
                         if x is not None and y is not None), (None, None))
        out.append(_alarm_row(alarm, lon, lat, address or p_name or b_name or "", lang))
    return out


def open_cases(*, session: Session, user: User, now: dt.datetime | None = None, limit: int = CASE_LIMIT,
               lang: str = "zh-CN") -> list[dict[str, Any]]:
    """Open cases that want a command: overdue first, then by escalation, urgency and age; each
    with the command actions the user may take on it now."""
    now = now or dt.datetime.now(dt.UTC)
    late = and_(Case.suspended_at.is_(None), Case.stage_due_at.is_not(None), Case.stage_due_at < now)
    stmt = (select(Case).where(Case.stage.in_(OPEN_STAGES))
            .order_by(sql_case((late, 0), else_=1), Case.escalation_level.desc(),
                      sql_case((Case.priority == "urgent", 0), else_=1), Case.reported_at.desc(), Case.id.desc())
            .limit(limit))
    out = []
    for case in session.scalars(stmt):
        out.append(case_row(case, user=user, now=now, lang=lang))
    return out


def case_row(case: Case, *, user: User, now: dt.datetime | None = None, lang: str = "zh-CN") -> dict[str, Any]:
    """A case as the command list and panel show it, with the commands the user may give now."""
    now = now or dt.datetime.now(dt.UTC)
    due = case.stage_due_at
    allowed = policy.user_actions(user, case)
    if case.stage == REPORTED and "register" in allowed:
        allowed.append("dispatch")  # 立案并派遣: command_case registers it first
    return {"id": case.id, "code": case.code, "title": case.title, "stage": case.stage,
            "stage_label": t(f"cases.stage.{case.stage}", lang), "priority": case.priority,
            "department": case.department, "escalation_level": case.escalation_level,
            "supervised": bool(case.supervised), "alarm_id": case.alarm_id, "place_id": case.place_id,
            "lon": case.lon, "lat": case.lat, "address": case.address_text or "",
            "overdue": bool(case.suspended_at is None and due is not None and due < now
                            and case.stage in OPEN_STAGES),
            "due_local": due.astimezone(SHANGHAI).strftime("%m-%d %H:%M") if due else "",
            "actions": [a for a in allowed if a in CASE_ACTIONS]}


# --- drill-down --------------------------------------------------------------------------


def _breadcrumbs(session: Session, place: Place) -> list[dict[str, Any]]:
    """The places above ``place`` (grid first), as far as the scope shows them."""
    chain: list[Place] = []
    parent_id = place.parent_id
    seen = {place.id}
    while parent_id is not None and parent_id not in seen and len(chain) < 10:
        seen.add(parent_id)
        parent = session.scalar(select(Place).where(Place.id == parent_id))
        if parent is None:
            break
        chain.append(parent)
        parent_id = parent.parent_id
    return [{"id": p.id, "kind": p.kind, "name": p.name} for p in reversed(chain)]


def _floors(session: Session, building: Place, at_ms: int | None) -> list[dict[str, Any]]:
    """A building's floors (whichever unit they are in), lowest first, with their state."""
    floors = list(session.scalars(select(Place).where(Place.building_id == building.id,
                                                      Place.kind == PlaceKind.FLOOR)
                                  .order_by(Place.floor_no, Place.code)))
    parents = {f.parent_id for f in floors if f.parent_id is not None}
    units = dict(session.execute(select(Place.id, Place.name).where(Place.id.in_(parents),
                                                                    Place.kind == PlaceKind.UNIT)).all())
    states = twin_read.place_states(session, [f.id for f in floors], at_ms)
    named = len(set(units.values())) > 1  # the unit's name only where there are several
    return [{"id": f.id, "kind": f.kind, "code": f.code,
             "name": f"{units[f.parent_id]} {f.name}" if named and f.parent_id in units else f.name,
             "floor_no": f.floor_no, **states[f.id]} for f in floors]


def _alarms_within(place: Place) -> list[Any]:
    column = twin_read.ANCESTRY_COLUMN.get(PlaceKind(place.kind))
    if column is not None:
        return [or_(getattr(Alarm, column) == place.id, Alarm.place_id == place.id)]
    return [Alarm.place_id.in_(select(Place.id).where(or_(Place.id == place.id, Place.parent_id == place.id)))]


def place_panel(*, session: Session, place_id: int, at_ms: int | None = None, lang: str = "zh-CN",
                device_cap: int = DEVICE_CAP) -> dict[str, Any] | None:
    """What the drill panel shows of a place: its state at ``at_ms`` (None: now), the places one
    level down (a building: its floors), the devices within with their twins and points, the
    active alarms within, and the way back up. None when the place is not in scope."""
    twin = twin_read.place_twin_at(session, place_id, at_ms, device_cap=device_cap)
    if twin is None:
        return None
    place = session.scalar(select(Place).where(Place.id == place_id))
    assert place is not None
    if place.kind == PlaceKind.BUILDING:
        twin["children"] = _floors(session, place, at_ms)
    points = {i: (lon, lat) for i, lon, lat in session.execute(
        select(Device.id, Device.lon, Device.lat).where(Device.id.in_([d["id"] for d in twin["devices"]])))}
    for device in twin["devices"]:
        device["lon"], device["lat"] = points.get(device["id"], (None, None))
        dtype = get_type(device["type"])
        device["type_label"] = ((dtype.name if _zh(lang) or not dtype.name_en else dtype.name_en)
                                if dtype else device["type"])
    for child in twin["children"]:
        child["kind_label"] = kinds.label("place_kind", child["kind"], lang)
    twin.update({
        "kind_label": kinds.label("place_kind", place.kind, lang),
        "lon": place.lon, "lat": place.lat, "geometry": place.geometry,
        "address": place.address_text, "floors": place.floors,
        "breadcrumbs": _breadcrumbs(session, place),
        "alarms": active_alarms(session=session, lang=lang, limit=50, where=_alarms_within(place)),
    })
    return twin


# --- command actions ---------------------------------------------------------------------


class CaseNotFound(Exception):
    """The case does not exist or is outside the user's scope."""


def _text(values: Mapping[str, Any], key: str, limit: int) -> str:
    raw = values.get(key)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise BrainError(key, "应为文本（must be text）")
    if "\x00" in raw:
        raise BrainError(key, "不能包含 NUL 字符（must not contain a NUL character）")
    if len(raw) > limit:
        raise BrainError(key, f"不超过 {limit} 字（at most {limit} characters）")
    return raw.strip()


def command_case(*, session: Session, user: User, case_id: int, action: str,
                 values: Mapping[str, Any]) -> Case:
    """Dispatch (choose a department), escalate or supervise a case from the screen.

    Raises CaseNotFound (out of scope or missing), ``policy.CaseForbidden`` when the user may not,
    and a FieldError naming the field when a value or the case's stage does not allow it."""
    if action not in CASE_ACTIONS:
        raise BrainError("action", f"应为 {' / '.join(CASE_ACTIONS)}（one of these）")
    case = get_case(session=session, case_id=case_id)
    if case is None:
        raise CaseNotFound(case_id)
    if not policy.permitted(user, case, action):
        raise policy.CaseForbidden(action)
    note = _text(values, "note", 2000)
    department = _text(values, "department", 40) or None
    if action == "dispatch" and department is None:
        raise BrainError("department", "请选择派遣部门（choose a department）")
    try:
        body = CaseActionIn(note=note, department=department if action == "dispatch" else None)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BrainError(".".join(str(p) for p in first.get("loc", ())) or "note", first.get("msg", "")) from None
    if action == "dispatch" and case.stage == REPORTED:  # 立案并派遣: a report is registered first
        policy.take_action(session=session, user=user, case=case, action="register", body=CaseActionIn())
    return policy.take_action(session=session, user=user, case=case, action=action, body=body)


def broadcast(*, session: Session, user: User, values: Mapping[str, Any]) -> Notice:
    """Publish a notice to the whole subdistrict or one committee (the caller checks
    ``notice.publish``); raises a FieldError naming the field."""
    title = _text(values, "title", 200)
    body = _text(values, "body", 2000)
    audience = _text(values, "audience", 20) or "all"
    raw = _text(values, "committee_id", 20)
    committee_id: int | None = None
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
            raise BrainError("committee_id", f"应为居委编号，收到 {raw!r}（must be a committee id）")
        committee_id = int(raw)
    return notices.publish(session=session, user=user, title=title, body=body, audience=audience,
                           committee_id=committee_id)


def committees(*, session: Session) -> list[tuple[int, str]]:
    """The committees in scope, to choose a notice's addressees."""
    return [(i, n) for i, n in session.execute(select(Place.id, Place.name)
                                               .where(Place.kind == PlaceKind.COMMITTEE).order_by(Place.code))]


def permissions(user: User) -> dict[str, bool]:
    return {"dispatch": iam.can(user, iam.CASE_DISPATCH), "notice": iam.can(user, iam.NOTICE_PUBLISH)}
