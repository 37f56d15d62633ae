"""The telemetry store: append-only messages by (device, time), rollups, history and retention.

Appending: one multi-row insert per batch; the unique (device, msg_id) index drops duplicates
(a redelivered MQTT message, a device that sends twice). The fast path assumes no duplicate;
when the insert hits one, the batch's existing ids are looked up and only the rest inserted.

Rollups per minute, hour and day (``telemetry_rollup``: n, sum, min, max, last) are brought up
to date from the raw rows, in their own transaction, up to a watermark (``ingest_mark``
'rollup' = the last telemetry id rolled up): by workers in a thread beside the ingest, by an
in-process pipeline after a batch at most once a second. The aggregation runs inside the
database (SQLite's json_each, PostgreSQL's jsonb_each, GROUP BY), so a device that reports many
times between two refreshes costs one upsert per field and bucket, and no Python per message.
On PostgreSQL, ids are handed out before commit, so the step first takes a SHARE lock on the
table for an instant: every transaction that holds an id below the horizon has then committed.
Day buckets are local
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


def placeholder(dialect: str) -> str:
    """The DB-API parameter marker of the dialect's driver (qmark for sqlite3, format for psycopg)."""
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
    p = placeholder(dialect)
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
    step = limit if limit is not None else 200_000
    if dialect == "sqlite":
        return _refresh_sqlite(engine, step)
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("LOCK TABLE telemetry IN SHARE MODE")
        horizon = conn.exec_driver_sql("SELECT max(id) FROM telemetry").scalar() or 0
    with engine.connect() as conn, conn.begin():
        last = _claim_mark(conn, ROLLUP_MARK, dialect)
        if last is None or last >= horizon:
            return 0
        upto = min(horizon, last + step)
        _stage_minutes(conn, last, upto, dialect)
        _merge_grains(conn, dialect)
        _set_mark(conn, upto)
        return upto - last


def _refresh_sqlite(engine: Engine, step: int) -> int:
    """SQLite has one writer at a time: the scan and the per-minute grouping run in a read
    transaction (into a temporary table, which needs no write lock on the database), and only the
    merge into the rollups holds the write lock — the ingest waits for that part only."""
    with engine.connect() as conn:
        with conn.begin():
            horizon = conn.exec_driver_sql("SELECT max(id) FROM telemetry").scalar() or 0
            last = conn.exec_driver_sql("SELECT value FROM ingest_mark WHERE name = ?", (ROLLUP_MARK,)).scalar() or 0
            if last >= horizon:
                return 0
            upto = min(horizon, last + step)
            _stage_minutes(conn, last, upto, "sqlite")
        conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if _claim_mark(conn, ROLLUP_MARK, "sqlite") != last:
                return 0  # another process rolled this range up meanwhile
            _merge_grains(conn, "sqlite")
            _set_mark(conn, upto)
        return upto - last


def _set_mark(conn: Connection, upto: int) -> None:
    conn.execute(text("UPDATE ingest_mark SET value = :v, updated_ms = :t WHERE name = :n"),
                 {"v": upto, "t": int(time.time() * 1000), "n": ROLLUP_MARK})


# The rollup runs inside the database (JSON functions, GROUP BY): no Python per message, and in a
# worker no contention with the ingest thread for the interpreter. Step one aggregates the raw
# range per minute into a temporary table; step two merges minutes, hours and days from it.
# "last" is the value at the latest ts: SQLite packs ts and value into one sortable string,
# PostgreSQL orders an array.
_SQLITE_MINUTES = """
INSERT INTO temp.rollup_batch
SELECT device_id, key, ts / 60000 * 60000, min(tenant_id), count(*), sum(v), min(v), max(v),
       CAST(substr(max(printf('%015d %.17g', ts, v)), 17) AS REAL), max(ts)
FROM (SELECT t.device_id, t.tenant_id, t.ts, j.key,
             CASE j.type WHEN 'true' THEN 1 WHEN 'false' THEN 0 ELSE j.value END AS v
      FROM telemetry t, json_each(t.body) j
      WHERE t.id > ? AND t.id <= ? AND t.kind = 't' AND j.type IN ('integer', 'real', 'true', 'false'))
GROUP BY device_id, key, ts / 60000 * 60000
"""
_PG_MINUTES = """
INSERT INTO rollup_batch
SELECT device_id, key, ts / 60000 * 60000, min(tenant_id), count(*), sum(v), min(v), max(v),
       (array_agg(v ORDER BY ts DESC))[1], max(ts)
FROM (SELECT t.device_id, t.tenant_id, t.ts, j.key,
             CASE jsonb_typeof(j.value) WHEN 'boolean' THEN (CASE WHEN j.value = 'true'::jsonb THEN 1 ELSE 0 END)::float8
                  ELSE (j.value #>> '{}')::float8 END AS v
      FROM telemetry t, jsonb_each(t.body::jsonb) j
      WHERE t.id > %s AND t.id <= %s AND t.kind = 't' AND jsonb_typeof(j.value) IN ('number', 'boolean')) x
GROUP BY device_id, key, ts / 60000 * 60000
"""
_BUCKETS = {"m": "start", "h": "start / 3600000 * 3600000",
            "d": f"(start + {LOCAL_OFFSET_MS}) / {DAY} * {DAY} - {LOCAL_OFFSET_MS}"}


def _stage_minutes(conn: Connection, after_id: int, upto_id: int, dialect: str) -> None:
    sqlite = dialect == "sqlite"
    conn.exec_driver_sql(
        f"CREATE {'TEMP ' if sqlite else 'TEMPORARY '}TABLE IF NOT EXISTS rollup_batch (device_id INTEGER, "
        "field TEXT, start BIGINT, tenant_id INTEGER, n INTEGER, sum DOUBLE PRECISION, min DOUBLE PRECISION, "
        "max DOUBLE PRECISION, last DOUBLE PRECISION, last_ts BIGINT)")
    conn.exec_driver_sql("DELETE FROM temp.rollup_batch" if sqlite else "DELETE FROM rollup_batch")
    conn.exec_driver_sql(_SQLITE_MINUTES if sqlite else _PG_MINUTES, (after_id, upto_id))


def _merge_grains(conn: Connection, dialect: str) -> None:
    sqlite = dialect == "sqlite"
    table = "temp.rollup_batch" if sqlite else "rollup_batch"
    least, greatest = ("min", "max") if sqlite else ("LEAST", "GREATEST")
    last = ("CAST(substr(max(printf('%015d %.17g', last_ts, last)), 17) AS REAL)" if sqlite
            else "(array_agg(last ORDER BY last_ts DESC))[1]")
    for grain, bucket_sql in _BUCKETS.items():
        order = "" if sqlite else " ORDER BY 1, 2, 4"  # the same lock order in every worker
        conn.exec_driver_sql(
            "INSERT INTO telemetry_rollup (device_id, field, grain, start, tenant_id, n, sum, min, max, last, last_ts) "
            f"SELECT device_id, field, '{grain}', {bucket_sql} AS b, min(tenant_id), sum(n), sum(sum), min(min), "
            f"max(max), {last}, max(last_ts) FROM {table} WHERE true GROUP BY device_id, field, b{order} "
            "ON CONFLICT (device_id, field, grain, start) DO UPDATE SET "
            "n = telemetry_rollup.n + excluded.n, sum = telemetry_rollup.sum + excluded.sum, "
            f"min = {least}(telemetry_rollup.min, excluded.min), max = {greatest}(telemetry_rollup.max, excluded.max), "
            "last = CASE WHEN excluded.last_ts >= telemetry_rollup.last_ts THEN excluded.last "
            "ELSE telemetry_rollup.last END, "
            f"last_ts = {greatest}(telemetry_rollup.last_ts, excluded.last_ts)")


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
