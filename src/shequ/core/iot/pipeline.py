"""The ingest pipeline: every device message, from any transport, goes through ``Pipeline.process``.

One call takes a batch and, in one transaction: decodes each message (msgspec), finds and
authenticates its device, checks it against the device type and the clock, drops duplicate
message ids, appends what is left to the telemetry store, updates the twin, applies command
replies, stores the bad messages as dead letters with their reason, and hands the batch's
changes to the registered change handlers (the rule engine). Only then does it commit; the
transport acknowledges the batch after ``process`` returns, so nothing acknowledged is lost.
A bad message never sinks its batch.

Message shapes (JSON objects; ``ts`` is epoch milliseconds or ISO 8601 with an offset):
  telemetry  {"id", "ts", "v": {field: value}, "tk"?}
  event      {"id", "ts", "type", "data"?: {...}, "tk"?}
  status     {"id", "ts", "online"?: bool, "v"?: {field: value}, "tk"?}
  reply      {"id", "ts", "cmd": command id, "ok": bool, "result"?: {...}, "error"?: str, "tk"?}
MQTT topics: ``shequ/{tenant code}/{device code}/{telemetry|event|status|reply}``; over MQTT
the device token travels in ``tk``; over HTTP in the Authorization header.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.orm import Session

from shequ.config import get_settings
from shequ.core.iot import metrics
from shequ.core.iot.credentials import token_digest
from shequ.core.iot.models import DEAD_REASONS
from shequ.core.iot.types import DeviceType, get_type

log = logging.getLogger(__name__)
KINDS = {"telemetry": "t", "event": "e", "status": "s", "reply": "r"}
DEVICE_CACHE_S = 10.0
PLACE_CACHE_S = 60.0
CHUNK = 500  # ids per IN (...) list


class Msg(msgspec.Struct):
    id: str | int
    ts: int | float | str
    tk: str | None = None
    v: dict[str, Any] | None = None
    type: str | None = None
    data: dict[str, Any] | None = None
    online: bool | None = None
    cmd: int | None = None
    ok: bool | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


_decode = msgspec.json.Decoder(Msg).decode
_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class Inbound:
    """One message as a transport received it."""

    payload: bytes
    kind: str  # telemetry | event | status | reply
    tenant: str | None = None  # tenant code (from the topic)
    device: str | None = None  # device code (from the topic)
    token: str | None = None  # from the transport (HTTP Authorization); else the message's "tk"
    transport: str = "inproc"  # inproc messages come from inside the server and need no token
    topic: str = ""
    received_ms: int = 0
    handle: Any = None  # what the transport needs to acknowledge it (MQTT packet id)
    device_id: int | None = None  # already resolved (HTTP: the token named the device)


@dataclass(slots=True)
class Outcome:
    status: str  # accepted | duplicate | dead
    reason: str = ""
    detail: str = ""


@dataclass
class BatchResult:
    outcomes: list[Outcome]
    accepted: int = 0
    duplicates: int = 0
    dead: int = 0
    committed_ms: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class DeviceInfo:
    id: int
    tenant_id: int
    tenant_code: str
    code: str
    type: DeviceType | None
    type_code: str
    token_hash: str | None
    revoked: bool
    status: str
    place_id: int | None
    area_ids: tuple[int, ...]  # building, compound, committee, grid (fallback chain)
    offline_after_s: int
    loaded: float
    facility_id: int | None = None
    facility_kind: str | None = None  # charging_station, elevator … (rules may target these)


@dataclass(slots=True)
class Accepted:
    inbound: Inbound
    msg: Msg
    device: DeviceInfo
    ts: int
    msg_id: str
    body: bytes


@dataclass
class Changes:
    """What one batch changed, for the change handlers (rules) — all within its transaction."""

    conn: Connection
    now_ms: int
    readings: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # device, ts, values
    events: list[tuple[int, int, str, dict[str, Any]]] = field(default_factory=list)  # device, ts, type, data
    state_changes: list[tuple[int, int, str, Any, Any]] = field(default_factory=list)  # device, ts, attr, new, old
    conditions: list[tuple[int, int, str, str]] = field(default_factory=list)  # device, ts, new, old
    replies: list[tuple[int, int, int, bool]] = field(default_factory=list)  # device, ts, command id, ok
    devices: dict[int, DeviceInfo] = field(default_factory=dict)
    # what must happen once the batch committed (commands to devices that the rules queued)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


    def only(self, tenant_ids: set[int]) -> Changes:
        """The part of this batch's changes that belongs to some tenants (same transaction, same
        after-commit steps)."""
        mine = {d: info for d, info in self.devices.items() if info.tenant_id in tenant_ids}
        return Changes(conn=self.conn, now_ms=self.now_ms,
                       readings=[r for r in self.readings if r[0] in mine],
                       events=[e for e in self.events if e[0] in mine],
                       state_changes=[c for c in self.state_changes if c[0] in mine],
                       conditions=[c for c in self.conditions if c[0] in mine],
                       replies=[r for r in self.replies if r[0] in mine],
                       devices=mine, after_commit=self.after_commit)

    def session(self, tenant_id: int, actor: str) -> contextlib.AbstractContextManager[Session]:
        """An ORM session inside this batch's transaction, for one tenant (see ``batch_session``)."""
        return batch_session(self.conn, tenant_id=tenant_id, actor=actor, after=self.after_commit)


@contextlib.contextmanager
def batch_session(conn: Connection, *, tenant_id: int, actor: str,
                  after: list[Callable[[], None]]) -> Iterator[Session]:
    """An ORM session on a batch's own connection, bound to one tenant with no scope (the
    pipeline's handlers see every device of the tenant); flushed on leaving, never committed —
    the batch commits. What must wait for the commit goes to ``after`` (``session.info``)."""
    from shequ.db import bind_context

    session = Session(bind=conn, join_transaction_mode="conditional_savepoint", expire_on_commit=False)
    bind_context(session, tenant_id=tenant_id, actor=actor, scope=None)
    session.info["after_commit"] = after
    session.info["engine"] = conn.engine
    try:
        yield session
        session.flush()
    finally:
        session.close()


ChangeHandler = Callable[[Changes], None]
_handlers: list[ChangeHandler] = []


def add_change_handler(fn: ChangeHandler) -> None:
    """Register a handler called with every batch's ``Changes`` before the commit."""
    if fn not in _handlers:
        _handlers.append(fn)


def remove_change_handler(fn: ChangeHandler) -> None:
    if fn in _handlers:
        _handlers.remove(fn)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_ts(value: int | float | str) -> int:
    """Epoch milliseconds (or seconds, when small) or ISO 8601 with an offset → epoch ms."""
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"ts: {value!r} is not ISO 8601") from exc
        if when.tzinfo is None:
            raise ValueError("ts: the time has no UTC offset")
        return int(when.timestamp() * 1000)
    if value < 100_000_000_000:  # seconds
        value *= 1000
    return int(value)


def parse_topic(topic: str) -> tuple[str, str, str] | None:
    """``shequ/{tenant}/{device}/{kind}`` → (tenant, device, kind), None when it is not one."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "shequ" or parts[3] not in KINDS:
        return None
    return parts[1], parts[2], parts[3]


# --- caches of what rarely changes ------------------------------------------------------------

class DeviceCache:
    """Device records by (tenant code, device code), by id and by token digest, for a few seconds."""

    def __init__(self, engine: Engine, ttl: float = DEVICE_CACHE_S) -> None:
        self.engine = engine
        self.ttl = ttl
        self.by_code: dict[tuple[str, str], DeviceInfo | None] = {}
        self.by_id: dict[int, DeviceInfo] = {}
        self.missing_at: dict[tuple[str, str], float] = {}

    _SELECT = (
        "SELECT d.id, d.tenant_id, t.code, d.code, d.type_code, d.token_hash, d.token_revoked_at, "
        "d.status, d.place_id, d.building_id, d.compound_id, d.committee_id, d.grid_id, d.offline_after_s, "
        "d.facility_id, f.kind "
        "FROM device d JOIN tenant t ON t.id = d.tenant_id LEFT JOIN facility f ON f.id = d.facility_id "
    )

    def _info(self, row: Sequence[Any], now: float) -> DeviceInfo:
        # spread the expiry, so that devices loaded together are not all reloaded in one batch
        now -= random.uniform(0, self.ttl / 2)
        dtype = get_type(row[4])
        areas = tuple(x for x in (row[9], row[10], row[11], row[12]) if x is not None)
        return DeviceInfo(
            id=row[0], tenant_id=row[1], tenant_code=row[2], code=row[3], type=dtype, type_code=row[4],
            token_hash=row[5], revoked=row[6] is not None, status=row[7], place_id=row[8], area_ids=areas,
            offline_after_s=row[13] or (dtype.offline_after if dtype else 900), loaded=now,
            facility_id=row[14], facility_kind=row[15],
        )

    def _store(self, info: DeviceInfo) -> None:
        self.by_code[(info.tenant_code, info.code)] = info
        self.by_id[info.id] = info

    def ensure(self, conn: Connection, keys: Iterable[tuple[str, str]], ids: Iterable[int] = ()) -> None:
        """Load (in bulk) every key or id not cached or cached too long ago."""
        now = time.monotonic()
        stale = now - self.ttl
        want: dict[str, list[str]] = {}
        for key in keys:
            info = self.by_code.get(key)
            if info is None:
                if self.missing_at.get(key, 0.0) < stale:
                    want.setdefault(key[0], []).append(key[1])
            elif info.loaded < stale:
                want.setdefault(key[0], []).append(key[1])
        want_ids = [i for i in ids if (d := self.by_id.get(i)) is None or d.loaded < stale]
        for tenant, codes in want.items():
            codes = sorted(set(codes))
            for i in range(0, len(codes), CHUNK):
                part = codes[i:i + CHUNK]
                rows = conn.execute(
                    text(self._SELECT + "WHERE t.code = :t AND d.code IN :codes").bindparams(
                        bindparam("codes", expanding=True)), {"t": tenant, "codes": part}).all()
                found = set()
                for row in rows:
                    self._store(self._info(row, now))
                    found.add(row[3])
                for code in part:
                    if code not in found:
                        self.by_code.pop((tenant, code), None)
                        self.missing_at[(tenant, code)] = now
        for i in range(0, len(want_ids), CHUNK):
            rows = conn.execute(text(self._SELECT + "WHERE d.id IN :ids").bindparams(bindparam("ids", expanding=True)),
                                {"ids": want_ids[i:i + CHUNK]}).all()
            for row in rows:
                self._store(self._info(row, now))

    def by_token(self, conn: Connection, token: str) -> DeviceInfo | None:
        digest = token_digest(token)
        row = conn.execute(text(self._SELECT + "WHERE d.token_hash = :h"), {"h": digest}).first()
        if row is None:
            return None
        info = self._info(row, time.monotonic())
        self._store(info)
        return info

    def invalidate(self, device_id: int | None = None) -> None:
        if device_id is None:
            self.by_code.clear()
            self.by_id.clear()
            self.missing_at.clear()
        elif (info := self.by_id.pop(device_id, None)) is not None:
            self.by_code.pop((info.tenant_code, info.code), None)


class PlaceTree:
    """Parent and kind of every place (per tenant), to find the ancestors of a device."""

    def __init__(self, ttl: float = PLACE_CACHE_S) -> None:
        self.ttl = ttl
        self.parent: dict[int, int | None] = {}
        self.kind: dict[int, str] = {}
        self.loaded: dict[int, float] = {}

    def ensure(self, conn: Connection, tenant_ids: Iterable[int]) -> None:
        now = time.monotonic()
        for tid in tenant_ids:
            if self.loaded.get(tid, -1e9) >= now - self.ttl:
                continue
            for pid, parent, kind in conn.execute(
                    text("SELECT id, parent_id, kind FROM place WHERE tenant_id = :t"), {"t": tid}):
                self.parent[pid] = parent
                self.kind[pid] = kind
            self.loaded[tid] = now

    def chain(self, place_id: int | None) -> list[int]:
        out: list[int] = []
        seen = set()
        while place_id is not None and place_id not in seen:
            seen.add(place_id)
            out.append(place_id)
            place_id = self.parent.get(place_id)
        return out

    def ancestors_of(self, device: DeviceInfo) -> list[int]:
        chain = self.chain(device.place_id)
        if not chain:  # not at a place: its area columns, smallest first
            for area in device.area_ids:
                chain = self.chain(area)
                if chain:
                    break
        return chain


# --- the pipeline -----------------------------------------------------------------------------

class Pipeline:
    """Stateless but for caches: any process (web, worker, demo) can run one over the same database."""

    def __init__(self, engine: Engine, *, max_age_s: int | None = None, max_skew_s: int | None = None,
                 rollup_every_s: float = 1.0) -> None:
        settings = get_settings()
        self.engine = engine
        self.dialect = engine.dialect.name
        self.devices = DeviceCache(engine)
        self.places = PlaceTree()
        self.max_age_ms = 1000 * (max_age_s if max_age_s is not None else settings.ingest_max_age_s)
        self.max_skew_ms = 1000 * (max_skew_s if max_skew_s is not None else settings.ingest_max_skew_s)
        self.rollup_every_s = rollup_every_s
        self._last_rollup = 0.0
        self._verified: dict[tuple[int, str], str] = {}  # (device id, token) → token hash it matched
        self._lock = threading.Lock()
        self._rate_window: list[tuple[float, int]] = []

    # The one entry point ----------------------------------------------------------------------
    def process(self, batch: Sequence[Inbound]) -> BatchResult:
        with self._lock:  # one batch at a time per pipeline object (the web shares one)
            return self._process(batch)

    def _process(self, batch: Sequence[Inbound]) -> BatchResult:
        from shequ.core.iot import telemetry, twin

        started = time.perf_counter()
        now = now_ms()
        outcomes: list[Outcome] = [Outcome("accepted")] * len(batch)
        dead: list[tuple[int, Inbound, str, str, DeviceInfo | None]] = []
        good: list[tuple[int, Accepted]] = []
        # IMMEDIATE on SQLite: this transaction reads before it writes, and another process may write
        with self.engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
            self.devices.ensure(conn, {(i.tenant, i.device) for i in batch
                                       if i.device_id is None and i.tenant and i.device},
                                ids={i.device_id for i in batch if i.device_id is not None})
            seen: set[tuple[int, str]] = set()
            duplicates = 0
            for n, inb in enumerate(batch):
                if not inb.received_ms:
                    inb.received_ms = now
                result = self._check(inb, now)
                if isinstance(result, Accepted):
                    key = (result.device.id, result.msg_id)
                    if key in seen:
                        outcomes[n] = Outcome("duplicate")
                        duplicates += 1
                        continue
                    seen.add(key)
                    good.append((n, result))
                else:
                    reason, detail, dev = result
                    outcomes[n] = Outcome("dead", reason, detail)
                    dead.append((n, inb, reason, detail, dev))

            stored, dup_positions = telemetry.append(conn, [a for _, a in good], self.dialect)
            for pos in dup_positions:
                outcomes[good[pos][0]] = Outcome("duplicate")
            duplicates += len(dup_positions)
            changes = Changes(conn=conn, now_ms=now)
            if stored:
                self.places.ensure(conn, {a.device.tenant_id for a in stored})
                twin.apply_batch(conn, stored, changes, self.places, self.dialect)
            if dead:
                _store_dead(conn, dead)
            for handler in _handlers:
                handler(changes)
        committed = now_ms()
        for fn in changes.after_commit:
            try:
                fn()
            except Exception:  # the batch is committed; a failed follow-up must not undo it
                log.exception("after-commit step failed")
        seconds = time.perf_counter() - started
        accepted = len(stored)
        self._count(batch, outcomes, accepted, duplicates, dead, seconds, committed)
        if self.rollup_every_s >= 0 and time.monotonic() - self._last_rollup >= self.rollup_every_s:
            self._last_rollup = time.monotonic()
            telemetry.refresh_rollups(self.engine)
        return BatchResult(outcomes, accepted, duplicates, len(dead), committed, seconds)

    def _check(self, inb: Inbound, now: int) -> Accepted | tuple[str, str, DeviceInfo | None]:
        kind = inb.kind
        if kind not in KINDS:
            return "bad_message", f"kind: {kind!r} is not telemetry, event, status or reply", None
        try:
            msg = _decode(inb.payload)
        except msgspec.ValidationError as exc:
            return "bad_message", str(exc)[:400], None
        except msgspec.DecodeError as exc:
            return "bad_json", str(exc)[:400], None
        if inb.device_id is not None:
            dev = self.devices.by_id.get(inb.device_id)
        else:
            dev = self.devices.by_code.get((inb.tenant or "", inb.device or ""))
        if dev is None:
            return "unknown_device", f"device {inb.device!r} is not registered in {inb.tenant!r}", None
        if inb.transport != "inproc":
            token = inb.token or msg.tk
            if dev.token_hash is None:
                return ("revoked" if dev.revoked else "bad_token"), "the device has no valid credential", dev
            if not token:
                return "bad_token", "no device token", dev
            if self._verified.get((dev.id, token)) != dev.token_hash:
                if token_digest(token) != dev.token_hash:
                    return "bad_token", "the device token does not match", dev
                if len(self._verified) > 200_000:
                    self._verified.clear()
                self._verified[(dev.id, token)] = dev.token_hash
        if dev.status == "retired":
            return "retired", "the device is retired", dev
        try:
            ts = parse_ts(msg.ts)
        except (ValueError, OverflowError) as exc:
            return "bad_message", str(exc), dev
        if ts < now - self.max_age_ms or ts > now + self.max_skew_ms:
            return "time_range", f"ts {_iso(ts)} is outside [{_iso(now - self.max_age_ms)}, {_iso(now + self.max_skew_ms)}]", dev
        dtype = dev.type
        if dtype is None:
            return "schema", f"device type {dev.type_code} is not known", dev
        if kind == "telemetry":
            if not msg.v:
                return "schema", "telemetry without values (v)", dev
            problem = dtype.check_values(msg.v)
            body = _encode(msg.v)
        elif kind == "event":
            spec = dtype.events_by_name.get(msg.type or "")
            if spec is None:
                return "schema", f"type: {msg.type!r} is not an event of {dtype.code}", dev
            problem = spec.check(msg.data or {})
            body = _encode(msg.data or {})
        elif kind == "status":
            problem = dtype.check_values(msg.v) if msg.v else None
            body = _encode({"online": msg.online, "v": msg.v} if msg.v else {"online": msg.online})
        else:  # reply
            if msg.cmd is None or msg.ok is None:
                return "bad_message", "a reply needs cmd and ok", dev
            problem = None
            body = _encode({"ok": msg.ok, "result": msg.result, "error": msg.error})
        if problem:
            return "schema", problem, dev
        return Accepted(inb, msg, dev, ts, str(msg.id)[:64], body)

    def _count(self, batch: Sequence[Inbound], outcomes: list[Outcome], accepted: int, duplicates: int,
               dead: list[Any], seconds: float, committed: int) -> None:
        transport = batch[0].transport if batch else "inproc"
        metrics.BATCHES.inc()
        metrics.BATCH_SECONDS.observe(seconds)
        metrics.BATCH_SIZE.observe(len(batch))
        if accepted:
            metrics.MESSAGES.labels(transport, "accepted").inc(accepted)
        if duplicates:
            metrics.MESSAGES.labels(transport, "duplicate").inc(duplicates)
        if dead:
            metrics.MESSAGES.labels(transport, "dead").inc(len(dead))
            for _n, _inb, reason, _detail, _dev in dead:
                metrics.DEAD.labels(reason).inc()
        if batch:
            metrics.LAG.set(max(0, committed - min(i.received_ms for i in batch)) / 1000)
        t = time.monotonic()
        self._rate_window.append((t, accepted))
        while self._rate_window and self._rate_window[0][0] < t - 10:
            self._rate_window.pop(0)
        span = max(1.0, t - self._rate_window[0][0]) if self._rate_window else 1.0
        metrics.RATE.set(sum(n for _, n in self._rate_window) / span)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _store_dead(conn: Connection, dead: list[tuple[int, Inbound, str, str, DeviceInfo | None]]) -> None:
    from shequ.core.iot.models import DeadLetter

    now = dt.datetime.now(dt.UTC)
    rows = []
    for _n, inb, reason, detail, dev in dead:
        assert reason in DEAD_REASONS, reason
        rows.append({
            "tenant_id": dev.tenant_id if dev else _tenant_id(conn, inb.tenant),
            "received_at": now, "transport": inb.transport, "topic": inb.topic[:300],
            "device_code": (inb.device or (dev.code if dev else None) or "")[:64] or None,
            "device_id": dev.id if dev else inb.device_id, "reason": reason, "detail": detail[:500],
            "payload": bytes(inb.payload[:65536]),
        })
    from sqlalchemy import insert

    conn.execute(insert(DeadLetter), rows)


_tenant_ids: dict[str, int | None] = {}


def _tenant_id(conn: Connection, code: str | None) -> int | None:
    if not code:
        return None
    if code not in _tenant_ids:
        _tenant_ids[code] = conn.execute(text("SELECT id FROM tenant WHERE code = :c"), {"c": code}).scalar()
    return _tenant_ids[code]


_default: dict[str, Pipeline] = {}


def default_pipeline(engine: Engine) -> Pipeline:
    """One pipeline per engine per process (the web's HTTP ingest and the in-process simulator)."""
    key = str(engine.url)
    if key not in _default:
        _default[key] = Pipeline(engine)
    return _default[key]
