"""The twin's read side: a device or a place as it was at any moment, and the buildings map layer.

The pipeline keeps the present (``device_state``, ``place_state``) and the history of every
change (``twin_change``, ``place_state_change``); measures have their history in ``telemetry``
and its rollups. Replay reads the last change at or before the moment asked for, with one
indexed seek per (device, attribute) folded into a single statement, so a building of 500
devices costs a handful of queries, never one per device.

Scopes: places and devices are looked up through the ORM (so the session's scope applies);
the history tables are read with Core only for ids that lookup returned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Table,
    bindparam,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from shequ.core.iot.models import (
    CONDITIONS,
    Device,
    DeviceState,
    PlaceState,
    PlaceStateChange,
    Telemetry,
    TelemetryRollup,
    TwinChange,
)
from shequ.core.iot.types import get_type
from shequ.core.places.models import Place, PlaceKind

DAY_MS = 86_400_000
MEASURE_LOOKBACK_MS = DAY_MS  # a reading older than this is not "the value at" a moment
RECENT_MESSAGES = 4  # telemetry messages per device searched for partial value sets
DEVICE_CAP = 500  # devices listed with a place
FLOOR_HEIGHT_M = 3.0  # storey height when a building has no measured height
# the state attributes every device has besides those of its type
STATE_ATTRS = ("online", "condition")
# a place kind whose id is copied onto every device within it (Placed ancestry columns)
ANCESTRY_COLUMN = {
    PlaceKind.GRID: "grid_id",
    PlaceKind.COMMITTEE: "committee_id",
    PlaceKind.COMPOUND: "compound_id",
    PlaceKind.BUILDING: "building_id",
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _conn(source: Connection | Session) -> Connection:
    return source.connection() if isinstance(source, Session) else source


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def empty_counts() -> dict[str, int]:
    return {"devices": 0, **{c: 0 for c in CONDITIONS}}


def _counts(raw: dict[str, Any] | None) -> dict[str, int]:
    out = empty_counts()
    for key in CONDITIONS:
        out[key] = int((raw or {}).get(key) or 0)
    out["devices"] = int((raw or {}).get("devices") or sum(out[c] for c in CONDITIONS))
    return out


# --- devices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kinds:
    """Which of a device's attributes are states (history in twin_change) and which measures."""

    states: frozenset[str]
    measures: frozenset[str] | None  # None: the type is unknown, take any number reported


def _kinds(type_code: str, attrs: dict[str, Any]) -> _Kinds:
    dtype = get_type(type_code)
    if dtype is not None:
        states = {f.name for f in dtype.telemetry if not f.is_measure}
        measures = frozenset(f.name for f in dtype.telemetry if f.is_measure)
    else:  # a type no longer installed: judge by the latest values
        states = {k for k, v in attrs.items() if not _is_number(v)}
        measures = None
    return _Kinds(frozenset(states | set(STATE_ATTRS)), measures)


def device_twin_now(source: Connection | Session, device_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The present twin of each device (from ``device_state``); devices never heard of are left out."""
    ids = sorted(set(device_ids))
    if not ids:
        return {}
    ds = _table(DeviceState)
    rows = _conn(source).execute(
        select(ds.c.device_id, ds.c.attrs, ds.c.online, ds.c.condition, ds.c.reported_ms, ds.c.seen_ms)
        .where(ds.c.device_id.in_(bindparam("ids", expanding=True))), {"ids": ids})
    out: dict[int, dict[str, Any]] = {}
    for device_id, attrs, online, condition, reported_ms, seen_ms in rows:
        attrs = attrs if isinstance(attrs, dict) else _json(attrs) or {}
        out[device_id] = {"attrs": dict(attrs), "online": bool(online), "condition": condition,
                          "ts": max(reported_ms or 0, seen_ms or 0) or None}
    return out


def device_twin_at(source: Connection | Session, device_ids: Iterable[int],
                   at_ms: int) -> dict[int, dict[str, Any]]:
    """Each device as it was at ``at_ms``: its state attributes, online and condition (the last
    change at or before the moment), and its measures (the last reading at or before it, within
    a day; from the minute rollups when raw telemetry has been dropped).

    Returns ``{device_id: {"attrs", "online", "condition", "ts"}}`` for every id asked for;
    a device with no history yet at that moment has no attributes, ``online`` None and the
    condition "unknown". ``ts`` is the time of the latest change or reading found.
    """
    ids = sorted(set(device_ids))
    if not ids:
        return {}
    conn = _conn(source)
    dev, ds = _table(Device), _table(DeviceState)
    kinds: dict[int, _Kinds] = {}
    rows = conn.execute(
        select(dev.c.id, dev.c.type_code, ds.c.attrs).select_from(dev.outerjoin(ds, ds.c.device_id == dev.c.id))
        .where(dev.c.id.in_(bindparam("ids", expanding=True))), {"ids": ids})
    for device_id, type_code, attrs in rows:
        attrs = attrs if isinstance(attrs, dict) else _json(attrs) or {}
        kinds[device_id] = _kinds(type_code, attrs)
    out: dict[int, dict[str, Any]] = {
        i: {"attrs": {}, "online": None, "condition": "unknown", "ts": None} for i in ids}
    if not kinds:
        return out
    _states_at(conn, kinds, at_ms, out)
    _measures_at(conn, kinds, at_ms, out)
    return out


def _latest(out: dict[str, Any], ts: int) -> None:
    out["ts"] = ts if out["ts"] is None else max(out["ts"], ts)


def _states_at(conn: Connection, kinds: dict[int, _Kinds], at_ms: int, out: dict[int, dict[str, Any]]) -> None:
    """The last twin_change ≤ at of every (device, state attribute): one statement, in which each
    pair is an indexed seek on (device_id, attr, ts) — never a scan of a device's history."""
    names = sorted(set().union(*(k.states for k in kinds.values())))
    dev, tc = _table(Device), _table(TwinChange)
    attr_selects = [select(literal(n, String(60)).label("attr")) for n in names]
    attrs = (union_all(*attr_selects) if len(attr_selects) > 1 else attr_selects[0]).subquery("attrs")
    seek = tc.alias("seek")
    last_id = (select(seek.c.id)
               .where(seek.c.device_id == dev.c.id, seek.c.attr == attrs.c.attr, seek.c.ts <= at_ms)
               .order_by(seek.c.ts.desc(), seek.c.id.desc()).limit(1).correlate(dev, attrs)
               .scalar_subquery())
    last_ids = (select(last_id).select_from(dev.join(attrs, true()))
                .where(dev.c.id.in_(bindparam("ids", expanding=True))))
    rows = conn.execute(select(tc.c.device_id, tc.c.attr, tc.c.value, tc.c.ts).where(tc.c.id.in_(last_ids)),
                        {"ids": sorted(kinds)})
    for device_id, attr, value, ts in rows:
        if attr not in kinds[device_id].states:
            continue
        twin = out[device_id]
        value = _json(value)
        if attr == "online":
            twin["online"] = bool(value)
        elif attr == "condition":
            twin["condition"] = value
        else:
            twin["attrs"][attr] = value
        _latest(twin, ts)


def _measures_at(conn: Connection, kinds: dict[int, _Kinds], at_ms: int,
                 out: dict[int, dict[str, Any]]) -> None:
    """Measures from the last few telemetry messages ≤ at (seeks on (device_id, ts)); what they
    do not carry comes from the minute rollups (raw data past its retention)."""
    since = at_ms - MEASURE_LOOKBACK_MS
    dev, tel = _table(Device), _table(Telemetry)
    seek = tel.alias("seek")
    columns = [
        select(seek.c.id)
        .where(seek.c.device_id == dev.c.id, seek.c.kind == "t", seek.c.ts <= at_ms, seek.c.ts > since)
        .order_by(seek.c.ts.desc(), seek.c.id.desc()).limit(1).offset(k).correlate(dev)
        .scalar_subquery().label(f"m{k}")
        for k in range(RECENT_MESSAGES)
    ]
    ids = sorted(kinds)
    message_ids = [m for row in conn.execute(select(*columns).where(dev.c.id.in_(bindparam("ids", expanding=True))),
                                             {"ids": ids}) for m in row if m is not None]
    found: dict[int, set[str]] = {i: set() for i in ids}
    if message_ids:
        rows = conn.execute(select(tel.c.device_id, tel.c.ts, tel.c.body)
                            .where(tel.c.id.in_(bindparam("mids", expanding=True)))
                            .order_by(tel.c.ts.desc(), tel.c.id.desc()), {"mids": message_ids})
        for device_id, ts, body in rows:
            values = _json(body)
            if not isinstance(values, dict):
                continue
            wanted = kinds[device_id].measures
            for name, value in values.items():
                if name in found[device_id] or not _is_number(value):
                    continue
                if wanted is not None and name not in wanted:
                    continue
                found[device_id].add(name)
                out[device_id]["attrs"][name] = value
                _latest(out[device_id], ts)
    missing = [i for i in ids if _lacks(kinds[i].measures, found[i])]
    if missing:
        _rollups_at(conn, missing, kinds, found, since, at_ms, out)


def _lacks(wanted: frozenset[str] | None, found: set[str]) -> bool:
    return not found if wanted is None else bool(wanted - found)


def _rollups_at(conn: Connection, device_ids: Sequence[int], kinds: dict[int, _Kinds],
                found: dict[int, set[str]], since: int, at_ms: int, out: dict[int, dict[str, Any]]) -> None:
    ru = _table(TelemetryRollup)
    newest = (select(ru.c.device_id, ru.c.field, func.max(ru.c.start).label("start"))
              .where(ru.c.device_id.in_(bindparam("ids", expanding=True)), ru.c.grain == "m",
                     ru.c.start > since - 60_000, ru.c.start <= at_ms, ru.c.last_ts <= at_ms,
                     ru.c.last_ts > since)
              .group_by(ru.c.device_id, ru.c.field).subquery("newest"))
    rows = conn.execute(
        select(ru.c.device_id, ru.c.field, ru.c.last, ru.c.last_ts)
        .join(newest, (ru.c.device_id == newest.c.device_id) & (ru.c.field == newest.c.field)
              & (ru.c.start == newest.c.start))
        .where(ru.c.grain == "m"), {"ids": list(device_ids)})
    for device_id, name, last, last_ts in rows:
        wanted = kinds[device_id].measures
        if name in found[device_id] or (wanted is not None and name not in wanted):
            continue
        # rollups keep floats; an integer field reads back as an integer
        out[device_id]["attrs"][name] = int(last) if float(last).is_integer() else last
        _latest(out[device_id], last_ts)


# --- places ----------------------------------------------------------------------------------


def place_states(session: Session, place_ids: Sequence[int], at_ms: int | None) -> dict[int, dict[str, Any]]:
    """``{place_id: {"state", "counts", "ts"}}`` now (``at_ms`` None) or at a past moment; places
    that had no devices (yet) are "unknown" with zero counts."""
    ids = sorted(set(place_ids))
    out: dict[int, dict[str, Any]] = {i: {"state": "unknown", "counts": empty_counts(), "ts": None} for i in ids}
    if not ids:
        return out
    conn = session.connection()
    if at_ms is None:
        ps = _table(PlaceState)
        rows = conn.execute(select(ps).where(ps.c.place_id.in_(bindparam("ids", expanding=True))), {"ids": ids})
        for row in rows.mappings():
            out[row["place_id"]] = {"state": row["state"], "counts": _counts(dict(row)), "ts": row["ts"] or None}
        return out
    place, psc = _table(Place), _table(PlaceStateChange)
    seek = psc.alias("seek")
    last_id = (select(seek.c.id).where(seek.c.place_id == place.c.id, seek.c.ts <= at_ms)
               .order_by(seek.c.ts.desc(), seek.c.id.desc()).limit(1).correlate(place).scalar_subquery())
    last_ids = select(last_id).where(place.c.id.in_(bindparam("ids", expanding=True)))
    rows = conn.execute(select(psc.c.place_id, psc.c.state, psc.c.counts, psc.c.ts)
                        .where(psc.c.id.in_(last_ids)), {"ids": ids})
    for place_id, state, counts, ts in rows:
        out[place_id] = {"state": state, "counts": _counts(_json(counts)), "ts": ts}
    return out


def _subtree_ids(session: Session, place: Place) -> list[int]:
    """The place and every place below it, level by level (units, floors, rooms: a few queries)."""
    ids, level = [place.id], [place.id]
    while level:
        level = list(session.scalars(select(Place.id).where(Place.parent_id.in_(level))))
        ids += level
    return ids


def _devices_within(session: Session, place: Place, cap: int) -> tuple[list[Device], int]:
    column = ANCESTRY_COLUMN.get(PlaceKind(place.kind))
    if column is not None:  # areas and buildings: the ancestry column, one indexed comparison
        where = or_(getattr(Device, column) == place.id, Device.place_id == place.id)
    else:
        where = Device.place_id.in_(_subtree_ids(session, place))
    where = where & (Device.status != "retired")
    total = session.scalar(select(func.count()).select_from(Device).where(where)) or 0
    devices = list(session.scalars(select(Device).where(where).order_by(Device.id).limit(cap)))
    return devices, int(total)


def _place_brief(place: Place) -> dict[str, Any]:
    return {"id": place.id, "kind": place.kind, "code": place.code, "name": place.name,
            "floor_no": place.floor_no}


def place_twin_at(session: Session, place_id: int, at_ms: int | None = None, *,
                  device_cap: int = DEVICE_CAP) -> dict[str, Any] | None:
    """A place as it was at ``at_ms`` (None: now): its state and counts, its children with
    theirs, and the devices within it (up to ``device_cap``) with their twins.

    None when the place does not exist or is outside the session's scope.
    """
    place = session.scalar(select(Place).where(Place.id == place_id))
    if place is None:
        return None
    children = list(session.scalars(select(Place).where(Place.parent_id == place.id)
                                    .order_by(Place.floor_no, Place.code)))
    states = place_states(session, [place.id, *(c.id for c in children)], at_ms)
    devices, total = _devices_within(session, place, device_cap)
    ids = [d.id for d in devices]
    twins = device_twin_now(session, ids) if at_ms is None else device_twin_at(session, ids, at_ms)
    blank: dict[str, Any] = {"attrs": {}, "online": None, "condition": "unknown", "ts": None}
    return {
        **_place_brief(place),
        "parent_id": place.parent_id,
        "at": at_ms,
        **states[place.id],
        "children": [{**_place_brief(c), **states[c.id]} for c in children],
        "devices": [{"id": d.id, "code": d.code, "name": d.name, "type": d.type_code,
                     "place_id": d.place_id, "status": d.status, **twins.get(d.id, blank)}
                    for d in devices],
        "devices_total": total,
        "devices_truncated": total > len(devices),
    }


# --- the buildings layer ---------------------------------------------------------------------


def building_height(*, height_m: float | None, floors: int | None) -> float | None:
    """Measured height, else storeys × 3 m; None when neither is known."""
    if height_m:
        return float(height_m)
    if floors:
        return floors * FLOOR_HEIGHT_M
    return None


def buildings_geojson(session: Session, *, bbox: tuple[float, float, float, float] | None = None,
                      committee_id: int | None = None) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of the buildings in scope: footprint, floors, height and live
    state. One query (buildings, their committee and their place_state), whatever the count.

    ``bbox`` is (min lon, min lat, max lon, max lat) and selects by the building's point.
    """
    committee = aliased(Place)
    stmt = (select(Place, committee.name, PlaceState)
            .outerjoin(committee, committee.id == Place.committee_id)
            .outerjoin(PlaceState, PlaceState.place_id == Place.id)
            .where(Place.kind == PlaceKind.BUILDING)
            .order_by(Place.id))
    if committee_id is not None:
        stmt = stmt.where(Place.committee_id == committee_id)
    if bbox is not None:
        west, south, east, north = bbox
        stmt = stmt.where(Place.lon >= west, Place.lon <= east, Place.lat >= south, Place.lat <= north)
    features = []
    for building, committee_name, state in session.execute(stmt):
        if building.geometry:
            geometry: dict[str, Any] | None = building.geometry
        elif building.lon is not None and building.lat is not None:
            geometry = {"type": "Point", "coordinates": [building.lon, building.lat]}
        else:
            geometry = None
        counts = _counts({c: getattr(state, c) for c in ("devices", *CONDITIONS)}) if state else empty_counts()
        features.append({
            "type": "Feature",
            "id": building.id,
            "geometry": geometry,
            "properties": {
                "id": building.id, "name": building.name, "code": building.code,
                "address": building.address_text, "floors": building.floors,
                "height_m": building_height(height_m=building.height_m, floors=building.floors),
                "use": building.use, "built_year": building.built_year,
                "committee_id": building.committee_id, "committee": committee_name,
                "compound_id": building.compound_id,
                "state": state.state if state else "unknown", "counts": counts,
                "state_ts": (state.ts or None) if state else None,
            },
        })
    return {"type": "FeatureCollection", "features": features}


__all__ = [
    "DEVICE_CAP",
    "FLOOR_HEIGHT_M",
    "building_height",
    "buildings_geojson",
    "device_twin_at",
    "device_twin_now",
    "place_states",
    "place_twin_at",
]
