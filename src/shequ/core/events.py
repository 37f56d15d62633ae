"""Domain events: what a service did (``alarm.raised``, ``case.dispatched`` …), handed to the
listeners inside the same transaction.

A service calls ``emit(session, name, payload)`` after it changed data; every listener whose
pattern matches runs at once, in the caller's transaction (notifications and webhook deliveries
are rows written with the change, so they are committed or rolled back with it; the live
stream is woken when the transaction commits). The kernel never imports a listener: the
notify package and scenario packages register theirs with ``listen``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Event:
    name: str  # "<entity>.<verb>": alarm.raised, alarm.acked, case.dispatched, case.overdue …
    tenant_id: int
    payload: dict[str, Any]
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    actor: str = "system"


Listener = Callable[[Session, Event], None]
_listeners: list[tuple[str, Listener]] = []


def listen(pattern: str, fn: Listener) -> None:
    """Call ``fn(session, event)`` for every event whose name matches ``pattern`` (fnmatch)."""
    if (pattern, fn) not in _listeners:
        _listeners.append((pattern, fn))


def unlisten(pattern: str, fn: Listener) -> None:
    if (pattern, fn) in _listeners:
        _listeners.remove((pattern, fn))


def emit(session: Session, name: str, payload: dict[str, Any], *, at: dt.datetime | None = None) -> Event:
    """Hand an event to its listeners within the session's transaction."""
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise ValueError(f"event {name}: the session has no tenant")
    event = Event(name=name, tenant_id=int(tenant_id), payload=payload,
                  at=at or dt.datetime.now(dt.UTC), actor=str(session.info.get("actor", "system")))
    for pattern, fn in list(_listeners):
        if fnmatch.fnmatchcase(name, pattern):
            fn(session, event)
    return event
