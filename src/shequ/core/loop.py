"""The closed loop wired together: the rule engine on the ingest pipeline, the notification
listeners on the domain events, and the sweeps that move things on with the clock.

Every process that ingests or serves calls ``install()`` once; the worker (or the demo) runs
``sweep_all`` every few seconds, which any number of processes may do at once (each sweep
works in its own transaction on rows it selects).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from shequ.core.places.service import forget_on_new_tenant

if TYPE_CHECKING:
    from shequ.core.iot.pipeline import Changes

log = logging.getLogger(__name__)


def install() -> None:
    """Hook rules into ingest and notifications into events (idempotent)."""
    from shequ.core.rules.engine import install as install_rules

    install_rules()
    install_scenarios()
    try:
        listeners = importlib.import_module("shequ.core.notify.listeners")
    except ModuleNotFoundError:  # pragma: no cover - the notify package always ships its listeners
        return
    listeners.install()


# tenant id -> (read at, the scenarios it has switched on); a switch reaches every process within
# SWITCH_CACHE_S without a query per batch
SWITCH_CACHE_S = 10.0
_switches: dict[int, tuple[float, frozenset[str]]] = {}
_wrapped: dict[tuple[str, Any], Callable[[Changes], None]] = {}


def switched_on(conn: Connection, tenant_id: int) -> frozenset[str]:
    """The scenarios a tenant has switched on (成熟一个、启动一个), as ``plugins.enabled_ids``."""
    from shequ.core.places.models import Tenant
    from shequ.core.plugins import enabled_ids

    got = _switches.get(tenant_id)
    if got is not None and time.monotonic() - got[0] < SWITCH_CACHE_S:
        return got[1]
    on = enabled_ids(conn.execute(select(Tenant.settings).where(Tenant.id == tenant_id)).scalar() or {})
    _switches[tenant_id] = (time.monotonic(), on)
    return on


def _forget_tenant(tenant_id: int) -> None:
    _switches.pop(tenant_id, None)


forget_on_new_tenant(_forget_tenant)


def forget_switches() -> None:
    """Read the tenants' switches again at the next batch (after a change in this process)."""
    _switches.clear()


def scenario_handler(scenario_id: str, ref: Any) -> Callable[[Changes], None]:
    """A scenario's handler, given only the changes of the tenants that have it switched on."""
    key = (scenario_id, ref)
    if key not in _wrapped:
        from shequ.core.plugins import resolve

        fn = resolve(ref)

        def handler(changes: Changes) -> None:
            tenants = {d.tenant_id for d in changes.devices.values()}
            on = {t for t in tenants if scenario_id in switched_on(changes.conn, t)}
            if on == tenants:
                fn(changes)
            elif on:
                fn(changes.only(on))

        handler.__name__ = f"{scenario_id}:{getattr(fn, '__name__', ref)}"
        _wrapped[key] = handler
    return _wrapped[key]


def install_scenarios() -> None:
    """Each installed scenario's change handlers, after the rule engine (idempotent); a handler
    sees only the changes of the tenants that have its scenario switched on."""
    from shequ.core.iot.pipeline import add_change_handler
    from shequ.core.plugins import load_scenarios

    for spec in load_scenarios().scenarios.values():
        for ref in spec.handlers:
            add_change_handler(scenario_handler(spec.id, ref))


def scenario_sweeps() -> list[Periodic]:
    from shequ.core.plugins import load_scenarios, resolve

    return [Periodic(sweep.every_s, resolve(sweep.fn)) for spec in load_scenarios().scenarios.values()
            for sweep in spec.sweeps]


def tenant_ids(engine: Engine, scenario: str | None = None) -> list[int]:
    """Every tenant's id (sweeps work tenant by tenant); with ``scenario``, only the tenants that
    have it switched on."""
    from shequ.core.places.models import Tenant

    with engine.connect() as conn:
        ids = list(conn.execute(select(Tenant.id).order_by(Tenant.id)).scalars())
        return [t for t in ids if scenario is None or scenario in switched_on(conn, t)]


def sweep_rules(engine: Engine, now: dt.datetime | None = None) -> int:
    from shequ.core.rules.engine import default_engine

    now = now or dt.datetime.now(dt.UTC)
    return default_engine().sweep(engine, int(now.timestamp() * 1000))


def _each_tenant(engine: Engine, fn: Callable[[Session], int]) -> int:
    """Run ``fn`` in a session of each tenant in turn (each its own transaction); sum the counts."""
    from shequ.db import session_scope

    n = 0
    for tenant_id in tenant_ids(engine):
        with session_scope(tenant_id=tenant_id, actor="system", engine=engine) as session:
            n += fn(session)
    return n


def sweep_alarms(engine: Engine, now: dt.datetime | None = None) -> int:
    from shequ.core.alarms import service as alarms

    return _each_tenant(engine, lambda session: len(alarms.sweep(session=session, now=now)))


def open_pending_cases(engine: Engine, now: dt.datetime | None = None) -> int:
    """Open the cases that rules asked for (alarms with pending actions), in every tenant."""
    from sqlalchemy import text

    from shequ.core.alarms import service as alarms
    from shequ.db import session_scope

    with engine.connect() as conn:
        tenants = list(conn.execute(text("SELECT DISTINCT tenant_id FROM alarm WHERE pending_since IS NOT NULL"))
                       .scalars())
    n = 0
    for tenant_id in tenants:
        with session_scope(tenant_id=tenant_id, actor="rules", engine=engine) as session:
            session.connection(execution_options={"sqlite_immediate": True})
            n += len(alarms.run_pending(session=session, now=now))
    return n


def sweep_cases(engine: Engine, now: dt.datetime | None = None) -> int:
    from shequ.core.cases import service as cases

    return _each_tenant(engine, lambda session: len(cases.sweep_overdue(session=session, now=now)))


def deliver_webhooks(engine: Engine, now: dt.datetime | None = None) -> int:
    try:
        webhooks = importlib.import_module("shequ.core.notify.webhooks")
    except ModuleNotFoundError:  # pragma: no cover
        return 0
    return int(webhooks.deliver_due(engine=engine, now=now) or 0)


@dataclass
class Periodic:
    every_s: float
    fn: Callable[..., int]  # fn(engine) or fn(engine, now)
    last: float = field(default=0.0)


def periodic_sweeps() -> list[Periodic]:
    """The loop's sweeps and how often each runs (seconds)."""
    return [Periodic(1, open_pending_cases), Periodic(5, sweep_rules), Periodic(15, sweep_alarms),
            Periodic(60, sweep_cases), Periodic(5, deliver_webhooks), *scenario_sweeps()]


def run_due(engine: Engine, tasks: list[Periodic]) -> None:
    """Run each sweep whose time has come; a failing sweep is logged and does not stop the others."""
    now = time.monotonic()
    for task in tasks:
        if now - task.last >= task.every_s:
            task.last = now
            try:
                task.fn(engine)
            except Exception:
                log.exception("sweep %s failed", task.fn.__name__)


def sweep_all(engine: Engine, now: dt.datetime | None = None) -> dict[str, int]:
    """Every sweep once (the CLI's ``shequ loop sweep``; tests pass a frozen ``now``)."""
    out = {"rules_fired": sweep_rules(engine, now), "cases_opened": open_pending_cases(engine, now),
           "alarms": sweep_alarms(engine, now),
           "cases": sweep_cases(engine, now), "webhooks": deliver_webhooks(engine, now)}
    for task in scenario_sweeps():
        out[task.fn.__module__.rsplit(".", 2)[-2] + "." + task.fn.__name__] = task.fn(engine, now)
    return out
