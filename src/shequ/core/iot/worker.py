"""`shequ worker`: consume device messages from MQTT and run them through the pipeline.

N workers share the load through one shared subscription (``$share/shequ/shequ/+/+/<kind>``):
the broker hands each message to one of them. A worker keeps a persistent session under a
stable client id, reads as many messages as have arrived (up to ``batch_max``, waiting at most
``batch_wait_ms`` for a batch to fill), processes the batch in one transaction and only then
acknowledges (PUBACK) every message of it. Killed at any point, it loses nothing that was
acknowledged; what was committed but not acknowledged is delivered again on reconnect and
dropped as a duplicate by message id. All state lives in the database, so any worker can take
any message. Between batches, a worker also runs the periodic sweeps (devices gone silent,
commands timed out, telemetry retention).
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from shequ.config import get_settings
from shequ.core.iot.mqtt import Message, MqttClient, MqttError
from shequ.core.iot.pipeline import KINDS, Inbound, Pipeline, now_ms, parse_topic

log = logging.getLogger(__name__)
SHARE_GROUP = "shequ"


def subscriptions(group: str = SHARE_GROUP) -> list[str]:
    return [f"$share/{group}/shequ/+/+/{kind}" for kind in KINDS]


def to_inbound(m: Message, received: int) -> Inbound:
    parsed = parse_topic(m.topic)
    if parsed is None:  # not one of ours: the pipeline dead-letters it as a bad message
        return Inbound(m.payload, "unknown", None, None, transport="mqtt", topic=m.topic,
                       received_ms=received, handle=m.packet_id)
    tenant, device, kind = parsed
    return Inbound(m.payload, kind, tenant, device, transport="mqtt", topic=m.topic, received_ms=received,
                   handle=m.packet_id)


@dataclass
class Periodic:
    every_s: float
    fn: Callable[[], Any]
    last: float = 0.0


@dataclass
class WorkerStats:
    """Publish-to-commit latencies (ms; from the message's ts) and totals, for benchmarks."""

    record_latency: bool = False
    latencies: list[int] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    dead: int = 0
    batches: int = 0
    first_commit_ms: int = 0
    last_commit_ms: int = 0
    batch_ms: list[float] = field(default_factory=list)  # processing time of each batch

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps({
            "accepted": self.accepted, "duplicates": self.duplicates, "dead": self.dead,
            "batches": self.batches, "first_commit_ms": self.first_commit_ms,
            "last_commit_ms": self.last_commit_ms, "latencies_ms": self.latencies,
            "batch_ms": self.batch_ms,
        }))


class Worker:
    def __init__(self, engine: Engine, url: str, client_id: str, *, batch_max: int | None = None,
                 batch_wait_ms: int | None = None, group: str = SHARE_GROUP, sweeps: bool = True,
                 stats: WorkerStats | None = None) -> None:
        settings = get_settings()
        self.engine = engine
        self.url = url
        self.client_id = client_id
        self.batch_max = batch_max or settings.ingest_batch_max
        self.batch_wait = (batch_wait_ms if batch_wait_ms is not None else settings.ingest_batch_wait_ms) / 1000
        self.group = group
        self.pipeline = Pipeline(engine, rollup_every_s=-1)  # rollups run in their own thread
        if engine.dialect.name == "sqlite":
            # checkpoints run in the rollup thread (PASSIVE: they never block the ingest)
            event.listen(engine, "connect", _no_autocheckpoint)
            engine.dispose()  # connections made before this point would still checkpoint
        self.stats = stats or WorkerStats()
        self.stop = threading.Event()
        self.periodic: list[Periodic] = []
        from shequ.core import loop

        loop.install()  # rules evaluate every batch; notifications follow the events
        if sweeps:
            self.periodic = [Periodic(30, self._sweep_offline), Periodic(5, self._sweep_commands),
                             Periodic(3600, self._prune)]
            self.periodic += [Periodic(p.every_s, functools.partial(p.fn, engine)) for p in loop.periodic_sweeps()]

    def _sweep_offline(self) -> None:
        from shequ.core.iot.twin import sweep_offline

        sweep_offline(self.engine, now_ms())

    def _sweep_commands(self) -> None:
        try:
            from shequ.core.iot.commands import sweep_commands
        except ImportError:  # pragma: no cover - commands land with the device web
            return
        with self.engine.begin() as conn:
            sweep_commands(conn, now_ms())

    def _prune(self) -> None:
        from shequ.core.iot.telemetry import prune

        prune(self.engine, now_ms=now_ms())

    def connect(self) -> MqttClient:
        client = MqttClient(self.url, self.client_id, clean=False, session_expiry=24 * 3600)
        client.connect()
        client.subscribe(subscriptions(self.group))
        return client

    def _rollups(self) -> None:
        """Keep the rollups up to date beside the ingest (its own connection and transactions),
        so that the ingest never waits for them."""
        from shequ.core.iot.telemetry import refresh_rollups

        sqlite = self.engine.dialect.name == "sqlite"
        last_round = time.monotonic()
        while not self.stop.is_set():
            moved = 0
            try:
                while (n := refresh_rollups(self.engine)) and not self.stop.is_set():
                    moved += n
                if sqlite:  # the WAL is copied back here, not in the middle of an ingest commit
                    with self.engine.connect() as conn:
                        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # noqa: BLE001 - retried on the next round
                log.exception("rollup refresh failed")
            # Often and small at ordinary rates: the merge holds SQLite's write lock, and a short
            # hold is a short wait for the ingest. Under a flood, wait longer so that each device
            # reports several times per round (fewer upserts per message).
            now = time.monotonic()
            rate = moved / max(now - last_round, 0.01)
            last_round = now
            self.stop.wait(1.0 if rate >= 10_000 else 0.25)

    def run(self) -> None:
        gc.freeze()  # what start-up built stays out of the collector's way (shorter GC pauses)
        threading.Thread(target=self._rollups, name="shequ-rollups", daemon=True).start()
        backoff = 0.5
        while not self.stop.is_set():
            try:
                client = self.connect()
                backoff = 0.5
                log.info("worker %s connected to %s", self.client_id, self.url)
                try:
                    self._loop(client)
                finally:
                    client.close()
            except Exception as exc:  # noqa: BLE001 - broker gone, database busy or down: nothing was acked
                if self.stop.is_set():
                    break
                # unacknowledged messages come again after the reconnect (persistent session)
                log.warning("worker %s: %s; reconnecting in %.1f s", self.client_id, exc, backoff,
                            exc_info=not isinstance(exc, MqttError | OSError))
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10)

    def _loop(self, client: MqttClient) -> None:
        pending: list[Message] = []
        started = 0.0
        while not self.stop.is_set():
            wait = 0.2 if not pending else max(0.0, self.batch_wait - (time.monotonic() - started))
            got = client.poll(wait, max_messages=self.batch_max - len(pending))
            if got:
                if not pending:
                    started = time.monotonic()
                pending.extend(got)
            if pending and (len(pending) >= self.batch_max or time.monotonic() - started >= self.batch_wait):
                self._process(client, pending)
                pending = []
            elif not pending:
                self._run_periodic()

    def _process(self, client: MqttClient, messages: list[Message]) -> None:
        received = now_ms()
        batch = [to_inbound(m, received) for m in messages]
        result = self.pipeline.process(batch)
        client.ack(m.packet_id for m in messages if m.qos)  # after the commit, never before
        s = self.stats
        s.batches += 1
        s.accepted += result.accepted
        s.duplicates += result.duplicates
        s.dead += result.dead
        s.first_commit_ms = s.first_commit_ms or result.committed_ms
        s.last_commit_ms = result.committed_ms
        if s.record_latency:
            s.batch_ms.append(round(result.seconds * 1000, 1))
            for inb, outcome in zip(batch, result.outcomes, strict=True):
                if outcome.status == "accepted":
                    ts = _sent_ms(inb.payload)
                    if ts:
                        s.latencies.append(result.committed_ms - ts)
        self._run_periodic()

    def _run_periodic(self) -> None:
        now = time.monotonic()
        for p in self.periodic:
            if now - p.last >= p.every_s:
                p.last = now
                try:
                    p.fn()
                except Exception:  # a sweep failing must not stop the ingest
                    log.exception("periodic task %s failed", p.fn.__name__)


def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


def _sent_ms(payload: bytes) -> int:
    try:
        return int(json.loads(payload).get("ts") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0


def run_worker(*, url: str, client_id: str, batch_max: int | None = None, batch_wait_ms: int | None = None,
               stats_path: Path | None = None, metrics_port: int | None = None, sweeps: bool = True,
               group: str = SHARE_GROUP) -> None:
    """The `shequ worker` command: runs until SIGTERM/SIGINT, then writes the stats file if asked."""
    from shequ.db import get_engine

    if metrics_port:
        from prometheus_client import start_http_server

        from shequ.core.iot.metrics import REGISTRY

        start_http_server(metrics_port, addr="127.0.0.1", registry=REGISTRY)
    stats = WorkerStats(record_latency=stats_path is not None)
    worker = Worker(get_engine(), url, client_id, batch_max=batch_max, batch_wait_ms=batch_wait_ms,
                    stats=stats, sweeps=sweeps, group=group)

    def stop(*_: Any) -> None:
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()
    if stats_path is not None:
        stats.dump(stats_path)
