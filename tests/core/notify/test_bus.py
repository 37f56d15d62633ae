"""The bus: on PostgreSQL a publish wakes a waiting stream when the writer commits, never for a
rolled-back write; on SQLite the streams poll the table."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine

from shequ.core.notify.bus import POLL_SECONDS, PgBus, PollingBus, get_bus
from tests.aio import run


def test_the_dialect_chooses_the_bus(engine: Engine, db_kind: str) -> None:
    bus = get_bus(engine)
    assert isinstance(bus, PgBus if db_kind == "postgresql" else PollingBus)
    assert get_bus(engine) is bus


def test_payloads_name_tenant_and_users() -> None:
    assert PgBus.parse("3:10,11") == [(3, 10), (3, 11)]
    assert PgBus.parse("junk") == [] and PgBus.parse("3:x") == []


def test_the_polling_bus_looks_every_half_second() -> None:
    async def go() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await PollingBus().wait(1, 1, timeout=10) is True
        return loop.time() - start

    assert run(go()) < POLL_SECONDS + 0.3


@pytest.mark.postgresql  # LISTEN/NOTIFY is PostgreSQL's: runs in the suite's PostgreSQL pass
def test_notify_wakes_on_commit_only(engine: Engine) -> None:
    bus = get_bus(engine)
    assert isinstance(bus, PgBus)

    async def go() -> None:
        with bus.subscribe(901, 7) as waiter, bus.subscribe(901, 8) as other:
            assert await asyncio.to_thread(bus.listening.wait, 10)
            await waiter.wait(0.2)  # the wake-up that follows LISTEN
            await other.wait(0.2)
            with engine.connect() as conn:
                with conn.begin() as tx:
                    bus.publish(conn, 901, [7])
                    tx.rollback()
                assert await waiter.wait(0.5) is False  # rolled back: no notice
                with conn.begin():
                    bus.publish(conn, 901, [7])
                    assert await waiter.wait(0.3) is False  # not before the commit
                assert await waiter.wait(2.0) is True
                assert await other.wait(0.3) is False  # another user's stream sleeps on

    run(go())
