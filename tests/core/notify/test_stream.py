"""The stream's own rhythm (in process, with short times): it opens with the unread count,
sends a heartbeat comment when nothing happens, and ends after its lifetime so that the
browser reconnects (and a server being stopped is not held open)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine

from shequ.core.notify import routes
from tests.aio import run


def test_heartbeats_then_the_stream_ends(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "HEARTBEAT_S", 0.4)
    monkeypatch.setattr(routes, "STREAM_MAX_S", 1.5)

    async def collect() -> list[str]:
        return [chunk async for chunk in routes._events(999_999, 999_999, None)]

    started = time.monotonic()
    chunks = run(collect())
    took = time.monotonic() - started
    assert chunks[0].startswith("retry: 3000\n") and 'event: unread\ndata: {"unread": 0}' in chunks[0]
    assert chunks.count(": ping\n\n") >= 2
    assert 1.4 < took < 4
