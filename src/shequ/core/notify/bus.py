"""The bus that wakes live streams when notifications are written, across web processes.

The notification table is the truth: a stream always reads its user's new rows from it. The
bus only says *when* to look:

- PostgreSQL: the writer calls ``publish``, which issues ``pg_notify('shequ_notify',
  '<tenant>:<user ids…>')`` in the writer's transaction, so the notice goes out on commit and
  never for a rolled-back write. Each web process keeps one LISTEN connection (a daemon
  thread, psycopg) and wakes the streams of the users named.
- SQLite (one host): ``publish`` does nothing; a stream looks at the table every 0.5 s.

The bus is chosen by the database's dialect (``get_bus``). A stream registers before it first
reads (``subscribe``), so a notice that arrives between its read and its wait is not lost; a
stream also reads at every heartbeat, so a dropped LISTEN connection delays, never loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("shequ.notify.bus")
CHANNEL = "shequ_notify"
POLL_SECONDS = 0.5
MAX_PAYLOAD = 7900  # PostgreSQL refuses notification payloads of 8000 bytes and more


class Waiter:
    """One stream's registration: ``wait`` returns True when woken, False on timeout."""

    def __init__(self, bus: Bus, key: tuple[int, int]):
        self.bus = bus
        self.key = key
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def wake(self) -> None:
        """Wake the stream (callable from any thread)."""
        with contextlib.suppress(RuntimeError):  # the stream's loop has closed: nothing to wake
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._event.wait(), timeout=max(0.0, timeout))
        except TimeoutError:
            return False
        self._event.clear()
        return True

    def close(self) -> None:
        self.bus._remove(self)

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus:
    """Wakes the streams of users who have new notifications."""

    def publish(self, conn: Connection, tenant_id: int, user_ids: Iterable[int]) -> None:
        """Announce, in the connection's transaction, that these users have new notifications."""

    def subscribe(self, tenant_id: int, user_id: int) -> Waiter:
        """Register a stream of one user (call from its event loop); close it when done."""
        return Waiter(self, (tenant_id, user_id))

    def _remove(self, waiter: Waiter) -> None:
        pass

    async def wait(self, tenant_id: int, user_id: int, timeout: float) -> bool:
        """Wait until the user may have new notifications, at most ``timeout`` seconds."""
        with self.subscribe(tenant_id, user_id) as waiter:
            return await waiter.wait(timeout)


class _PollingWaiter(Waiter):
    async def wait(self, timeout: float) -> bool:
        await asyncio.sleep(max(0.0, min(POLL_SECONDS, timeout)))
        return True


class PollingBus(Bus):
    """SQLite: nothing to publish; streams look at the table every POLL_SECONDS."""

    def subscribe(self, tenant_id: int, user_id: int) -> Waiter:
        return _PollingWaiter(self, (tenant_id, user_id))


class PgBus(Bus):
    """PostgreSQL: NOTIFY in the writer's transaction, one LISTEN thread per process."""

    def __init__(self, url: str):
        self.url = url
        self._waiters: dict[tuple[int, int], set[Waiter]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.listening = threading.Event()

    def publish(self, conn: Connection, tenant_id: int, user_ids: Iterable[int]) -> None:
        ids = sorted({int(u) for u in user_ids})
        chunk: list[str] = []
        size = len(str(tenant_id)) + 1
        for uid in ids:
            piece = str(uid)
            if chunk and size + len(piece) + 1 > MAX_PAYLOAD:
                self._notify(conn, tenant_id, chunk)
                chunk, size = [], len(str(tenant_id)) + 1
            chunk.append(piece)
            size += len(piece) + 1
        if chunk:
            self._notify(conn, tenant_id, chunk)

    @staticmethod
    def _notify(conn: Connection, tenant_id: int, ids: list[str]) -> None:
        conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                     {"channel": CHANNEL, "payload": f"{tenant_id}:{','.join(ids)}"})

    def subscribe(self, tenant_id: int, user_id: int) -> Waiter:
        self._start()
        waiter = Waiter(self, (tenant_id, user_id))
        with self._lock:
            self._waiters.setdefault(waiter.key, set()).add(waiter)
        return waiter

    def _remove(self, waiter: Waiter) -> None:
        with self._lock:
            found = self._waiters.get(waiter.key)
            if found is not None:
                found.discard(waiter)
                if not found:
                    del self._waiters[waiter.key]

    def _wake(self, keys: Iterable[tuple[int, int]] | None) -> None:
        with self._lock:
            if keys is None:
                waiters = [w for group in self._waiters.values() for w in group]
            else:
                waiters = [w for key in keys for w in self._waiters.get(key, ())]
        for waiter in waiters:
            waiter.wake()

    @staticmethod
    def parse(payload: str) -> list[tuple[int, int]]:
        """``"<tenant>:<id>,<id>…"`` → the (tenant, user) keys it names (nothing if malformed)."""
        tenant, _, ids = payload.partition(":")
        try:
            tenant_id = int(tenant)
            return [(tenant_id, int(u)) for u in ids.split(",") if u]
        except ValueError:
            return []

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._listen, name="shequ-notify-listen", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    # notices sent before LISTEN took effect are lost: every stream looks again
                    self._wake(None)
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=1.0):
                            self._wake(self.parse(notice.payload))
            except Exception as exc:  # noqa: BLE001 - a dropped connection: retry, streams poll meanwhile
                self.listening.clear()
                log.warning("notification LISTEN connection failed (%s); retrying in 1 s", exc)
                time.sleep(1.0)
        self.listening.clear()


_buses: dict[str, Bus] = {}
_buses_lock = threading.Lock()


def stop_all() -> None:
    """Stop every LISTEN thread of this process (before its database goes away)."""
    with _buses_lock:
        for bus in _buses.values():
            if isinstance(bus, PgBus):
                bus.stop()
        _buses.clear()


def get_bus(bind: Engine | Connection | Any) -> Bus:
    """The bus of a database (one per process and database URL), by its dialect."""
    engine: Engine = bind.engine
    key = engine.url.render_as_string(hide_password=False)
    with _buses_lock:
        bus = _buses.get(key)
        if bus is None:
            if engine.dialect.name == "postgresql":
                bus = PgBus(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
            else:
                bus = PollingBus()
            _buses[key] = bus
    return bus
