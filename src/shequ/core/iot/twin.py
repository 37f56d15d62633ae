"""The live twin, written side: device states, their changes, and the derived state of places.

Each batch merges the latest values into ``device_state`` (one row per device), logs every
change of a *state* attribute, of ``online`` and of ``condition`` to ``twin_change`` (a value
reported again is a report, not a change; measures' history is the telemetry store), and
moves the device's condition between the counts of every place above it (room → floor →
unit → building → compound → committee → grid), logging each place's new counts to
``place_state_change``. Reading (replay at a past moment, GeoJSON, CityJSON) is in
``twin_read``.

Conditions, worst first: alarm, fault, offline, maintenance, ok, unknown (never reported).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import Connection, Engine, bindparam, text

from shequ.core.iot.models import CONDITIONS
from shequ.core.iot.telemetry import placeholder
from shequ.core.iot.types import DeviceType

if TYPE_CHECKING:
    from shequ.core.iot.pipeline import Accepted, Changes, DeviceInfo, PlaceTree

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


def _dumps(value: Any) -> str:
    return _enc.encode(value).decode()


COUNT_COLUMNS = ("alarm", "fault", "offline", "maintenance", "ok", "unknown")
_RANK = {c: i for i, c in enumerate(CONDITIONS)}


def worst(counts: dict[str, int]) -> str:
    for c in CONDITIONS:
        if counts.get(c, 0) > 0:
            return c
    return "unknown"


def condition_for(status: str, dtype: DeviceType | None, attrs: dict[str, Any], online: bool) -> str:
    if status == "maintenance":
        return "maintenance"
    if not online:
        return "offline"
    return dtype.condition_of(attrs) if dtype else "ok"


@dataclass(slots=True)
class _Pending:
    dev: DeviceInfo
    max_ts: int
    seen: int
    values: dict[str, tuple[int, Any]]
    online: tuple[int, bool] | None


def raw_rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a query on the driver's own cursor: the hot path skips SQLAlchemy's result machinery."""
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql, tuple(params))
        return list(cur.fetchall())
    finally:
        cur.close()


def _load_states(conn: Connection, ids: list[int], dialect: str) -> dict[int, tuple[Any, ...]]:
    out: dict[int, tuple[Any, ...]] = {}
    p = placeholder(dialect)
    lock = " FOR UPDATE" if dialect == "postgresql" else ""
    ids = sorted(ids)
    for i in range(0, len(ids), 900):
        part = ids[i:i + 900]
        sql = ("SELECT device_id, attrs, reported_ms, seen_ms, online, condition, changed_ms FROM device_state "
               f"WHERE device_id IN ({', '.join([p] * len(part))}) ORDER BY device_id{lock}")
        for row in raw_rows(conn, sql, part):
            out[row[0]] = row
    return out


def _attrs(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        decoded = _dec.decode(value)
        return decoded if isinstance(decoded, dict) else {}
    return dict(value)


def _same(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b) or (isinstance(a, int | float) and isinstance(b, int | float)
                                              and a.__class__ is not bool and b.__class__ is not bool and a == b)


def apply_batch(conn: Connection, stored: Sequence[Accepted], changes: Changes, places: PlaceTree,
                dialect: str) -> None:
    pending: dict[int, _Pending] = {}
    replies: list[tuple[int, int, int, bool, Any, Any]] = []
    for a in stored:
        dev = a.device
        p = pending.get(dev.id)
        ts = a.ts
        if p is None:
            p = pending[dev.id] = _Pending(dev, ts, a.inbound.received_ms, {}, None)
            changes.devices[dev.id] = dev
        elif ts > p.max_ts:
            p.max_ts = ts
        kind = a.inbound.kind
        msg = a.msg
        if kind == "telemetry" or kind == "status":
            values = msg.v
            if values:
                if kind == "telemetry":
                    changes.readings.append((dev.id, ts, values))
                vals = p.values
                for k, v in values.items():
                    cur = vals.get(k)
                    if cur is None or ts >= cur[0]:
                        vals[k] = (ts, v)
            if kind == "status" and msg.online is not None and (p.online is None or ts >= p.online[0]):
                p.online = (ts, msg.online)
        elif kind == "event":
            changes.events.append((dev.id, ts, msg.type or "", msg.data or {}))
        else:
            changes.replies.append((dev.id, ts, int(msg.cmd or 0), bool(msg.ok)))
            replies.append((dev.id, ts, int(msg.cmd or 0), bool(msg.ok), msg.result, msg.error))
    if replies:
        from shequ.core.iot.commands import apply_replies

        apply_replies(conn, replies)

    states = _load_states(conn, list(pending), dialect)
    upserts: list[tuple[Any, ...]] = []
    logs: list[tuple[Any, ...]] = []
    transitions: list[tuple[DeviceInfo, int, str | None, str]] = []
    for device_id, p in pending.items():
        dev = p.dev
        row = states.get(device_id)
        if row is None:
            old_attrs: dict[str, Any] = {}
            reported, seen, was_online, old_cond, changed = 0, 0, False, None, 0
        else:
            old_attrs = _attrs(row[1])
            reported, seen, was_online, old_cond, changed = row[2], row[3], bool(row[4]), row[5], row[6]
        attrs = dict(old_attrs)
        states_of_type = dev.type.state_fields if dev.type else frozenset()
        for k, (ts, v) in p.values.items():
            if ts < reported and k in old_attrs:
                continue  # an older message arriving late does not roll the twin back
            old = old_attrs.get(k)
            if old is not None and old == v and (old.__class__ is v.__class__ or _same(old, v)):
                continue  # reported again: not a change
            attrs[k] = v
            if k in states_of_type:
                logs.append((dev.tenant_id, device_id, ts, k, _dumps(v),
                             None if old is None else _dumps(old)))
                changes.state_changes.append((device_id, ts, k, v, old))
        online = True
        if p.online is not None and p.online[0] >= p.max_ts:
            online = p.online[1]
        ts_now = max(p.max_ts, reported)
        if online != was_online:
            logs.append((dev.tenant_id, device_id, p.max_ts, "online", _dumps(online),
                         None if row is None else _dumps(was_online)))
        cond = condition_for(dev.status, dev.type, attrs, online)
        if cond != old_cond:
            logs.append((dev.tenant_id, device_id, p.max_ts, "condition", _dumps(cond),
                         None if old_cond is None else _dumps(old_cond)))
            changes.conditions.append((device_id, p.max_ts, cond, old_cond or "unknown"))
            transitions.append((dev, p.max_ts, old_cond, cond))
            changed = p.max_ts
        upserts.append((device_id, dev.tenant_id, dev.place_id, _dumps(attrs),
                        ts_now, max(seen, p.seen), online, cond, changed))
    _write_states(conn, upserts, states, dialect)
    _log_changes(conn, logs, dialect)
    if transitions:
        apply_transitions(conn, transitions, places, dialect)


def _write_states(conn: Connection, rows: list[tuple[Any, ...]], existing: dict[int, Any] | set[int],
                  dialect: str) -> None:
    """UPDATE the rows that exist (by primary key: cheaper than an upsert), INSERT the others."""
    if not rows:
        return
    old = [r for r in rows if r[0] in existing]
    if len(old) < len(rows):
        _upsert_states(conn, [r for r in rows if r[0] not in existing], dialect)
    if old and dialect == "postgresql":  # one statement over arrays instead of a statement per row
        cols = [list(c) for c in zip(*old, strict=True)]
        conn.exec_driver_sql(
            "UPDATE device_state AS s SET tenant_id = v.tenant_id, place_id = v.place_id, attrs = v.attrs::json, "
            "reported_ms = v.reported_ms, seen_ms = v.seen_ms, online = v.online, condition = v.condition, "
            "changed_ms = v.changed_ms FROM unnest(%s::int[], %s::int[], %s::int[], %s::text[], %s::bigint[], "
            "%s::bigint[], %s::bool[], %s::text[], %s::bigint[]) AS v(device_id, tenant_id, place_id, attrs, "
            "reported_ms, seen_ms, online, condition, changed_ms) WHERE s.device_id = v.device_id", tuple(cols))
    elif old:
        p = placeholder(dialect)
        attrs = p
        conn.exec_driver_sql(
            f"UPDATE device_state SET tenant_id = {p}, place_id = {p}, attrs = {attrs}, reported_ms = {p}, "
            f"seen_ms = {p}, online = {p}, condition = {p}, changed_ms = {p} WHERE device_id = {p}",
            [(*r[1:], r[0]) for r in old])


def _upsert_states(conn: Connection, rows: list[tuple[Any, ...]], dialect: str) -> None:
    if not rows:
        return
    p = placeholder(dialect)
    attrs = p if dialect == "sqlite" else f"CAST({p} AS JSON)"
    conn.exec_driver_sql(
        "INSERT INTO device_state (device_id, tenant_id, place_id, attrs, reported_ms, seen_ms, online, condition, "
        f"changed_ms) VALUES ({p}, {p}, {p}, {attrs}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (device_id) DO UPDATE SET "
        "tenant_id = excluded.tenant_id, place_id = excluded.place_id, attrs = excluded.attrs, "
        "reported_ms = excluded.reported_ms, seen_ms = excluded.seen_ms, online = excluded.online, "
        "condition = excluded.condition, changed_ms = excluded.changed_ms", rows)


def _log_changes(conn: Connection, rows: list[tuple[Any, ...]], dialect: str) -> None:
    if rows:
        p = placeholder(dialect)
        conn.exec_driver_sql(
            f"INSERT INTO twin_change (tenant_id, device_id, ts, attr, value, previous) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
            rows)


def apply_transitions(conn: Connection, transitions: Iterable[tuple[DeviceInfo, int, str | None, str]],
                      places: PlaceTree, dialect: str) -> None:
    """Move devices between the condition counts of every place above them; log each place's change."""
    deltas: dict[int, Counter[str]] = {}
    when: dict[int, int] = {}
    tenant_of: dict[int, int] = {}
    for dev, ts, old, new in transitions:
        for place_id in places.ancestors_of(dev):
            c = deltas.setdefault(place_id, Counter())
            if old is None:
                c["devices"] += 1
            else:
                c[old] -= 1
            c[new] += 1
            when[place_id] = max(ts, when.get(place_id, 0))
            tenant_of[place_id] = dev.tenant_id
    if not deltas:
        return
    lock = " FOR UPDATE" if dialect == "postgresql" else ""
    cols = ", ".join(COUNT_COLUMNS)
    stmt = text(f"SELECT place_id, devices, {cols} FROM place_state WHERE place_id IN :ids ORDER BY place_id{lock}"
                ).bindparams(bindparam("ids", expanding=True))
    ids = sorted(deltas)
    current: dict[int, dict[str, int]] = {}
    for i in range(0, len(ids), 500):
        for row in conn.execute(stmt, {"ids": ids[i:i + 500]}):
            current[row[0]] = dict(zip(("devices", *COUNT_COLUMNS), row[1:], strict=True))
    upserts: list[tuple[Any, ...]] = []
    logs: list[tuple[Any, ...]] = []
    for place_id in ids:
        counts = current.get(place_id) or dict.fromkeys(("devices", *COUNT_COLUMNS), 0)
        for key, delta in deltas[place_id].items():
            counts[key] = max(0, counts.get(key, 0) + delta)
        state = worst(counts)
        upserts.append((place_id, tenant_of[place_id], places.kind.get(place_id, ""), counts["devices"],
                        *(counts[c] for c in COUNT_COLUMNS), state, when[place_id]))
        logs.append((tenant_of[place_id], place_id, when[place_id], state,
                     _dumps({k: counts[k] for k in ("devices", *COUNT_COLUMNS)})))
    _write_places(conn, upserts, logs, dialect)


def _write_places(conn: Connection, upserts: list[tuple[Any, ...]], logs: list[tuple[Any, ...]], dialect: str) -> None:
    p = placeholder(dialect)
    cols = ", ".join(COUNT_COLUMNS)
    marks = ", ".join([p] * (len(COUNT_COLUMNS) + 6))
    sets = ", ".join(f"{c} = excluded.{c}" for c in ("kind", "devices", *COUNT_COLUMNS, "state", "ts"))
    if upserts:
        conn.exec_driver_sql(
            f"INSERT INTO place_state (place_id, tenant_id, kind, devices, {cols}, state, ts) VALUES ({marks}) "
            f"ON CONFLICT (place_id) DO UPDATE SET {sets}", upserts)
    if logs:
        conn.exec_driver_sql(
            f"INSERT INTO place_state_change (tenant_id, place_id, ts, state, counts) VALUES ({p}, {p}, {p}, {p}, {p})",
            logs)


# --- conditions that change without a message -------------------------------------------------------

def refresh_conditions(conn: Connection, device_ids: Sequence[int], now_ms: int, *,
                       offline: Iterable[int] = ()) -> int:
    """Recompute the condition of these devices from their state and status (maintenance on/off,
    ``offline``: devices found silent), writing changes like a batch does. Returns how many changed."""
    from shequ.core.iot.pipeline import DeviceCache, PlaceTree

    dialect = conn.dialect.name
    if not device_ids:
        return 0
    cache = DeviceCache(conn.engine, ttl=0)
    cache.ensure(conn, (), ids=device_ids)
    places = PlaceTree(ttl=0)
    places.ensure(conn, {d.tenant_id for d in cache.by_id.values()})
    states = _load_states(conn, list(device_ids), dialect)
    silent = set(offline)
    upserts: list[tuple[Any, ...]] = []
    logs: list[tuple[Any, ...]] = []
    transitions: list[tuple[DeviceInfo, int, str | None, str]] = []
    for device_id in device_ids:
        dev = cache.by_id.get(device_id)
        if dev is None:
            continue
        row = states.get(device_id)
        attrs = _attrs(row[1]) if row else {}
        was_online = bool(row[4]) if row else False
        online = was_online and device_id not in silent
        old_cond = row[5] if row else None
        cond = condition_for(dev.status, dev.type, attrs, online) if row else (
            "maintenance" if dev.status == "maintenance" else "unknown")
        if online != was_online:
            logs.append((dev.tenant_id, device_id, now_ms, "online", _dumps(online), _dumps(was_online)))
        if cond == old_cond and online == was_online:
            continue
        if cond != old_cond:
            logs.append((dev.tenant_id, device_id, now_ms, "condition", _dumps(cond),
                         None if old_cond is None else _dumps(old_cond)))
            transitions.append((dev, now_ms, old_cond, cond))
        upserts.append((device_id, dev.tenant_id, dev.place_id, _dumps(attrs),
                        row[2] if row else 0, row[3] if row else 0, online, cond,
                        now_ms if cond != old_cond else (row[6] if row else 0)))
    _upsert_states(conn, upserts, dialect)
    _log_changes(conn, logs, dialect)
    if transitions:
        apply_transitions(conn, transitions, places, dialect)
    return len(transitions)


def sweep_offline(engine: Engine, now_ms: int) -> int:
    """Mark devices offline that have been silent longer than their timeout; returns how many."""
    from shequ.core.iot.pipeline import DeviceCache

    with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
        rows = conn.execute(text(
            "SELECT device_id, seen_ms FROM device_state WHERE online = :t AND seen_ms < :c"),
            {"t": True, "c": now_ms - 30_000}).all()
        if not rows:
            return 0
        cache = DeviceCache(engine, ttl=0)
        cache.ensure(conn, (), ids=[r[0] for r in rows])
        silent = [device_id for device_id, seen in rows
                  if (d := cache.by_id.get(device_id)) is not None and seen < now_ms - d.offline_after_s * 1000]
        if not silent:
            return 0
        refresh_conditions(conn, silent, now_ms, offline=silent)
        return len(silent)


def rebuild_place_states(conn: Connection, tenant_id: int, now_ms: int) -> int:
    """Count every device of a tenant into the places above it, from scratch (after seeding, or when
    devices moved or were deleted); gives unreported devices a state row ("unknown"). Logs the places
    whose counts changed. Returns the number of places with devices."""
    from shequ.core.iot.pipeline import DeviceCache, PlaceTree

    dialect = conn.dialect.name
    empty = "'{}'" if dialect == "sqlite" else "CAST('{}' AS JSON)"
    conn.execute(text(
        "INSERT INTO device_state (device_id, tenant_id, place_id, attrs, reported_ms, seen_ms, online, condition, changed_ms) "
        f"SELECT d.id, d.tenant_id, d.place_id, {empty}, 0, 0, :f, "
        "CASE WHEN d.status = 'maintenance' THEN 'maintenance' ELSE 'unknown' END, :now FROM device d "
        "WHERE d.tenant_id = :t AND d.status <> 'retired' AND NOT EXISTS "
        "(SELECT 1 FROM device_state s WHERE s.device_id = d.id)"),
        {"t": tenant_id, "now": now_ms, "f": False})
    places = PlaceTree(ttl=0)
    places.ensure(conn, [tenant_id])
    cache = DeviceCache(conn.engine, ttl=0)
    rows = conn.execute(text(
        "SELECT s.device_id, s.condition, d.status FROM device_state s JOIN device d ON d.id = s.device_id "
        "WHERE d.tenant_id = :t AND d.status <> 'retired'"), {"t": tenant_id}).all()
    cache.ensure(conn, (), ids=[r[0] for r in rows])
    counts: dict[int, Counter[str]] = {}
    for device_id, cond, _status in rows:
        dev = cache.by_id.get(device_id)
        if dev is None:
            continue
        for place_id in places.ancestors_of(dev):
            c = counts.setdefault(place_id, Counter())
            c["devices"] += 1
            c[cond if cond in _RANK else "unknown"] += 1
    cols = ", ".join(COUNT_COLUMNS)
    existing = {r[0]: tuple(r[1:]) for r in conn.execute(text(
        f"SELECT place_id, devices, {cols} FROM place_state WHERE tenant_id = :t"), {"t": tenant_id})}
    upserts: list[tuple[Any, ...]] = []
    logs: list[tuple[Any, ...]] = []
    for place_id, c in counts.items():
        values = (c["devices"], *(c[k] for k in COUNT_COLUMNS))
        if existing.get(place_id) == values:
            continue
        state = worst(dict(c))
        upserts.append((place_id, tenant_id, places.kind.get(place_id, ""), *values, state, now_ms))
        logs.append((tenant_id, place_id, now_ms, state,
                     _dumps({k: c[k] for k in ("devices", *COUNT_COLUMNS)})))
    gone = [pid for pid in existing if pid not in counts]
    for pid in gone:
        logs.append((tenant_id, pid, now_ms, "unknown", _dumps(dict.fromkeys(("devices", *COUNT_COLUMNS), 0))))
    if gone:
        conn.execute(text("DELETE FROM place_state WHERE place_id IN :ids").bindparams(
            bindparam("ids", expanding=True)), {"ids": gone})
    _write_places(conn, upserts, logs, dialect)
    return len(counts)
