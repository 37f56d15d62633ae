"""The telemetry store: append-only messages by (device, time), rollups, history and retention.

Appending: one multi-row insert per batch; the unique (device, msg_id) index drops duplicates
(a redelivered MQTT message, a device that sends twice). The fast path assumes no duplicate;
when the insert hits one, the batch's existing ids are looked up and only the rest inserted.

Rollups per minute, hour and day (``telemetry_rollup``: n, sum, min, max, last) are brought up
to date from the raw rows after each batch, at most once per ``rollup_every_s``, in their own
transaction, up to a watermark (``ingest_mark`` 'rollup' = the last telemetry id rolled up).
Raw rows are read once more, but in bulk, so a device that reports many times a second costs
one upsert per field and bucket, not one per message. On PostgreSQL, ids are handed out
before commit, so the step first takes a SHARE lock on the table for an instant: every
transaction that holds an id below the horizon has then committed. Day buckets are local
(Asia/Shanghai) days; minute and hour buckets are the same in UTC and in China time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from shequ.config import get_settings

if TYPE_CHECKING:
    from shequ.core.iot.pipeline import Accepted

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
GRAINS = {"m": MINUTE, "h": HOUR, "d": DAY}
LOCAL_OFFSET_MS = 8 * HOUR  # Asia/Shanghai: UTC+8 all year (no daylight saving since 1991)
ROLLUP_MARK = "rollup"
RAW_POINTS_MAX = 10_000
_KIND_CODE = {"telemetry": "t", "event": "e", "status": "s", "reply": "r"}
_json = msgspec.json.Decoder()


def _ph(dialect: str) -> str:
    return "?" if dialect == "sqlite" else "%s"


def append(conn: Connection, items: Sequence[Accepted], dialect: str) -> tuple[list[Accepted], list[int]]:
    """Insert the messages; returns (the ones stored, positions of those already stored before)."""
    if not items:
        return [], []
    rows = [_row(a) for a in items]
    try:
        with conn.begin_nested():
            _insert(conn, rows, dialect)
        return list(items), []
    except Exception as exc:  # a duplicate (SQLAlchemy's IntegrityError, or psycopg's from COPY)
        if not (isinstance(exc, IntegrityError) or getattr(exc, "sqlstate", None) == "23505"):
            raise
    existing = _existing(conn, items)
    keep = [i for i, a in enumerate(items) if (a.device.id, a.msg_id) not in existing]
    dups = [i for i, a in enumerate(items) if (a.device.id, a.msg_id) in existing]
    if keep:
        _insert(conn, [rows[i] for i in keep], dialect)
    return [items[i] for i in keep], dups


def _row(a: Accepted) -> tuple[Any, ...]:
    kind = a.inbound.kind
    msg = a.msg
    name = (msg.type or "") if kind == "event" else (str(msg.cmd) if kind == "reply" else "")
    return (a.device.tenant_id, a.device.id, a.ts, a.msg_id, _KIND_CODE[kind], name, a.body.decode())


def _insert(conn: Connection, rows: list[tuple[Any, ...]], dialect: str) -> None:
    if dialect == "postgresql":  # COPY: several times faster than row inserts
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cur.copy("COPY telemetry (tenant_id, device_id, ts, msg_id, kind, name, body) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cur.close()
        return
    p = _ph(dialect)
    conn.exec_driver_sql(
        f"INSERT INTO telemetry (tenant_id, device_id, ts, msg_id, kind, name, body) "
        f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})", rows)


def _existing(conn: Connection, items: Sequence[Accepted]) -> set[tuple[int, str]]:
    from sqlalchemy import bindparam

    found: set[tuple[int, str]] = set()
    by_device: dict[int, list[str]] = {}
    for a in items:
        by_device.setdefault(a.device.id, []).append(a.msg_id)
    stmt = text("SELECT device_id, msg_id FROM telemetry WHERE device_id = :d AND msg_id IN :ids").bindparams(
        bindparam("ids", expanding=True))
    for device_id, ids in by_device.items():
        for i in range(0, len(ids), 500):
            found.update((d, m) for d, m in conn.execute(stmt, {"d": device_id, "ids": ids[i:i + 500]}))
    return found


# --- rollups ------------------------------------------------------------------------------------

def bucket(ts: int, grain: str) -> int:
    if grain == "d":
        return (ts + LOCAL_OFFSET_MS) // DAY * DAY - LOCAL_OFFSET_MS
    size = GRAINS[grain]
    return ts // size * size


def refresh_rollups(engine: Engine, limit: int | None = None) -> int:
    """Roll up the telemetry committed since the watermark; returns how far the watermark moved.

    A call takes at most ``limit`` rows (default 200,000), so that a long backlog (after an
    outage) is worked off in transactions of bounded size."""
    dialect = engine.dialect.name
    with engine.connect() as conn, conn.begin():
        if dialect == "postgresql":
            conn.exec_driver_sql("LOCK TABLE telemetry IN SHARE MODE")
        horizon = conn.exec_driver_sql("SELECT max(id) FROM telemetry").scalar() or 0
    with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
        last = _claim_mark(conn, ROLLUP_MARK, dialect)
        if last is None or last >= horizon:
            return 0
        step = limit if limit is not None else 200_000
        upto = min(horizon, last + step)
        from shequ.core.iot.twin import raw_rows

        p = _ph(dialect)
        rows = raw_rows(conn, "SELECT tenant_id, device_id, ts, body FROM telemetry "
                              f"WHERE id > {p} AND id <= {p} AND kind = 't'", (last, upto))
        aggregates = aggregate(rows)
        upsert_rollups(conn, aggregates, dialect)
        conn.execute(text("UPDATE ingest_mark SET value = :v, updated_ms = :t WHERE name = :n"),
                     {"v": upto, "t": int(time.time() * 1000), "n": ROLLUP_MARK})
        return upto - last


def catch_up_rollups(engine: Engine) -> int:
    """Refresh until the rollups hold everything committed so far."""
    total = 0
    while n := refresh_rollups(engine):
        total += n
    return total


def _claim_mark(conn: Connection, name: str, dialect: str) -> int | None:
    """The watermark, locked for this transaction (None: another worker holds it right now)."""
    if dialect == "postgresql":
        conn.exec_driver_sql("INSERT INTO ingest_mark (name, value, updated_ms) VALUES (%s, 0, 0) "
                             "ON CONFLICT (name) DO NOTHING", (name,))
        return conn.exec_driver_sql(
            "SELECT value FROM ingest_mark WHERE name = %s FOR UPDATE SKIP LOCKED", (name,)).scalar()
    conn.exec_driver_sql("INSERT OR IGNORE INTO ingest_mark (name, value, updated_ms) VALUES (?, 0, 0)", (name,))
    value = conn.exec_driver_sql("SELECT value FROM ingest_mark WHERE name = ?", (name,)).scalar()
    return int(value or 0)


Agg = dict[tuple[int, str, str, int], list[Any]]  # (device, field, grain, start) → [tenant, n, sum, min, max, last, last_ts]


def aggregate(rows: Sequence[Any]) -> Agg:
    """Minute aggregates from the raw rows, then hours and days from the minutes."""
    minutes: Agg = {}
    get = minutes.get
    decode = _json.decode
    for tenant_id, device_id, ts, body in rows:
        values = decode(body)
        if values.__class__ is not dict:
            continue
        m = ts - ts % MINUTE
        for field, v in values.items():
            cls = v.__class__
            if cls is not float and cls is not int:
                if cls is bool:
                    v = int(v)  # a boolean rolls up as the share of time it was true
                else:
                    continue
            key = (device_id, field, "m", m)
            a = get(key)
            if a is None:
                minutes[key] = [tenant_id, 1, v, v, v, v, ts]
            else:
                a[1] += 1
                a[2] += v
                if v < a[3]:
                    a[3] = v
                if v > a[4]:
                    a[4] = v
                if ts >= a[6]:
                    a[5] = v
                    a[6] = ts
    out: Agg = dict(minutes)
    for (device_id, field, _g, m), a in minutes.items():
        for key in ((device_id, field, "h", m - m % HOUR),
                    (device_id, field, "d", (m + LOCAL_OFFSET_MS) // DAY * DAY - LOCAL_OFFSET_MS)):
            b = out.get(key)
            if b is None:
                out[key] = list(a)
            else:
                b[1] += a[1]
                b[2] += a[2]
                if a[3] < b[3]:
                    b[3] = a[3]
                if a[4] > b[4]:
                    b[4] = a[4]
                if a[6] >= b[6]:
                    b[5] = a[5]
                    b[6] = a[6]
    return out


def upsert_rollups(conn: Connection, aggregates: Agg, dialect: str) -> None:
    if not aggregates:
        return
    p = _ph(dialect)
    least, greatest = ("min", "max") if dialect == "sqlite" else ("LEAST", "GREATEST")
    sql = (
        "INSERT INTO telemetry_rollup (device_id, field, grain, start, tenant_id, n, sum, min, max, last, last_ts) "
        f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) "
        "ON CONFLICT (device_id, field, grain, start) DO UPDATE SET "
        "n = telemetry_rollup.n + excluded.n, sum = telemetry_rollup.sum + excluded.sum, "
        f"min = {least}(telemetry_rollup.min, excluded.min), max = {greatest}(telemetry_rollup.max, excluded.max), "
        "last = CASE WHEN excluded.last_ts >= telemetry_rollup.last_ts THEN excluded.last ELSE telemetry_rollup.last END, "
        f"last_ts = {greatest}(telemetry_rollup.last_ts, excluded.last_ts)"
    )
    items = aggregates.items()
    if dialect == "postgresql":  # concurrent workers lock rollup rows in the same order: no deadlocks
        items = sorted(items, key=lambda kv: kv[0])  # type: ignore[assignment]
    rows = [(*k, *a) for k, a in items]
    if dialect == "postgresql":  # one statement over arrays instead of a statement per row
        cols = [list(c) for c in zip(*rows, strict=True)]
        for i in (6, 7, 8, 9):  # sum, min, max, last: one element type per array
            cols[i] = [float(x) for x in cols[i]]
        conn.exec_driver_sql(_pg_rollup_sql(sql), tuple(cols))
        return
    conn.exec_driver_sql(sql, rows)


def _pg_rollup_sql(sql: str) -> str:
    head, tail = sql.split(" VALUES ", 1)
    conflict = tail[tail.index(" ON CONFLICT"):]
    return (head + " SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::bigint[], %s::int[], %s::int[], "
            "%s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::bigint[])" + conflict)


# --- reading ------------------------------------------------------------------------------------

def choose_grain(start_ms: int, end_ms: int) -> str:
    span = end_ms - start_ms
    if span <= 6 * HOUR:
        return "raw"
    if span <= 3 * DAY:
        return "m"
    if span <= 90 * DAY:
        return "h"
    return "d"


def history(conn: Connection, device_id: int, field: str, start_ms: int, end_ms: int,
            grain: str = "auto") -> dict[str, Any]:
    """A measure's history: raw points for short ranges, rollups (avg/min/max/last) for long ones."""
    if grain == "auto":
        grain = choose_grain(start_ms, end_ms)
    if grain == "raw":
        rows = conn.execute(text(
            "SELECT ts, body FROM telemetry WHERE device_id = :d AND kind = 't' AND ts >= :a AND ts <= :b "
            "ORDER BY ts LIMIT :n"), {"d": device_id, "a": start_ms, "b": end_ms, "n": RAW_POINTS_MAX}).all()
        points = []
        for ts, body in rows:
            values = _json.decode(body)
            if isinstance(values, dict) and values.get(field) is not None:
                points.append({"t": ts, "v": values[field]})
        return {"grain": "raw", "field": field, "points": points}
    if grain not in GRAINS:
        raise ValueError(f"grain: {grain!r} is not auto, raw, m, h or d")
    rows = conn.execute(text(
        "SELECT start, n, sum, min, max, last FROM telemetry_rollup WHERE device_id = :d AND field = :f "
        "AND grain = :g AND start >= :a AND start <= :b ORDER BY start"),
        {"d": device_id, "f": field, "g": grain, "a": bucket(start_ms, grain), "b": end_ms}).all()
    return {"grain": grain, "field": field, "points": [
        {"t": s, "n": n, "avg": total / n if n else None, "min": lo, "max": hi, "last": last}
        for s, n, total, lo, hi, last in rows]}


# --- retention ------------------------------------------------------------------------------------

def prune(engine: Engine, *, now_ms: int, retention_days: int | None = None,
          minute_days: int = 400, chunk: int = 50_000) -> dict[str, int]:
    """Delete raw telemetry older than the retention (only rows already rolled up) and old minute rollups."""
    days = retention_days if retention_days is not None else get_settings().telemetry_retention_days
    cutoff = now_ms - days * DAY
    removed = {"telemetry": 0, "rollup_minutes": 0}
    with engine.begin() as conn:
        mark = conn.execute(text("SELECT value FROM ingest_mark WHERE name = :n"), {"n": ROLLUP_MARK}).scalar() or 0
        while True:
            ids = [r[0] for r in conn.execute(text(
                "SELECT id FROM telemetry WHERE ts < :c AND id <= :m LIMIT :k"), {"c": cutoff, "m": mark, "k": chunk})]
            if not ids:
                break
            from sqlalchemy import bindparam

            conn.execute(text("DELETE FROM telemetry WHERE id IN :ids").bindparams(bindparam("ids", expanding=True)),
                         {"ids": ids})
            removed["telemetry"] += len(ids)
        result = conn.execute(text("DELETE FROM telemetry_rollup WHERE grain = 'm' AND start < :c"),
                              {"c": now_ms - minute_days * DAY})
        removed["rollup_minutes"] = result.rowcount or 0
    return removed
