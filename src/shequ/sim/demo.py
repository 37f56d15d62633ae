"""The demo subdistrict: seeded once, with one account per kind of user, printed by `shequ demo`."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from shequ.config import get_settings
from shequ.core.iam.models import User
from shequ.core.places.models import Place, PlaceKind
from shequ.core.places.service import get_tenant
from shequ.core.plugins import load_scenarios, resolve
from shequ.core.registry.models import Person
from shequ.db import session_scope

DEMO_PASSWORD = "Jiangchuan2026"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    note: str


def _accounts(grid: Place | None, committee: Place | None, compound: Place | None,
              resident: Person | None = None) -> list[tuple[str, str, str, dict, str]]:
    residents = [("resident", "resident", f"居民 · {resident.name}", {"person_id": resident.id},
                  "居民端 resident pages (phone)")] if resident else []
    return [*residents,
        ("admin", "admin", "系统管理员", {}, "all settings and data"),
        ("leader", "leader", "街道领导", {}, "社区大脑 brain"),
        ("dispatcher", "dispatcher", "城运中心调度员", {"department": "城运中心"}, "城运中心 dispatch"),
        ("department", "department", "社区服务办", {"department": "社区服务办"}, "部门 department staff"),
        ("grid", "grid_worker", f"网格员 · {grid.name if grid else ''}",
         {"grids": [grid.id] if grid else []}, "网格中台 grid platform"),
        ("committee", "committee", f"居委 · {committee.name if committee else ''}",
         {"committees": [committee.id] if committee else []}, "居委微平台 committee"),
        ("property", "property", f"物业 · {compound.name if compound else ''}",
         {"compounds": [compound.id] if compound else []}, "物业 property desk"),
    ]


def prepare_devices(*, tenant_id: int, scale: str, seed: int) -> int:
    """Place the demo devices (once) and count them into the twin's places; returns how many."""
    from shequ.core.iot.models import Device
    from shequ.core.iot.pipeline import now_ms
    from shequ.core.iot.twin import rebuild_place_states
    from shequ.db import get_engine
    from shequ.sim.devices import seed_devices

    with session_scope(tenant_id=tenant_id) as session:
        count = session.scalar(select(func.count()).select_from(Device)) or 0
    if not count:
        count = seed_devices(tenant_id=tenant_id, seed=seed, scale=scale)["devices"]
        with get_engine().begin() as conn:
            rebuild_place_states(conn, tenant_id, now_ms())
    prepare_loop(tenant_id=tenant_id)
    return count


def prepare_loop(*, tenant_id: int) -> None:
    """The tenant's default rules (kernel and scenarios) and case classes, where missing."""
    from shequ.core.cases.service import ensure_classes
    from shequ.core.places.models import Tenant
    from shequ.core.rules.service import install_default_rules

    with session_scope(tenant_id=tenant_id, actor="seed") as session:
        install_default_rules(session=session, actor="seed")
        ensure_classes(session=session)
        for spec in load_scenarios().scenarios.values():  # each scenario's own demo data (idempotent)
            if spec.seed is not None:
                resolve(spec.seed)(session=session)
        tenant = session.get(Tenant, tenant_id)
        if tenant is not None and "department_calendars" not in (tenant.settings or {}):
            # Jiangchuan Road's 城运中心 keeps a 24-hour duty: its deadlines run round the clock
            tenant.settings = {**(tenant.settings or {}), "department_calendars": {
                "城运中心": {"periods": [["00:00", "24:00"]], "every_day": True}}}


def prepare_demo(*, scale: str = "full", seed: int = 1, progress: bool = False) -> list[DemoAccount]:
    """Seed the demo tenant unless it already has people, then make sure the demo users exist."""
    from shequ.core.iam.service import create_user
    from shequ.sim.seed import seed as run_seed

    code = get_settings().default_tenant
    with session_scope() as session:
        tenant = get_tenant(session=session, code=code)
        tenant_id = tenant.id if tenant else None
    populated = False
    if tenant_id is not None:
        with session_scope(tenant_id=tenant_id) as session:
            populated = (session.scalar(select(func.count()).select_from(Person)) or 0) > 0
    if not populated:
        tenant_id = run_seed(scale=scale, seed=seed, tenant_code=code, progress=progress).tenant_id
    assert tenant_id is not None
    prepare_devices(tenant_id=tenant_id, scale=scale, seed=seed)

    accounts = []
    with session_scope(tenant_id=tenant_id, actor="demo") as session:
        def first(kind: PlaceKind) -> Place | None:
            return session.scalars(select(Place).where(Place.kind == kind).order_by(Place.id).limit(1)).first()

        committee = first(PlaceKind.COMMITTEE)
        grid = session.get(Place, committee.grid_id) if committee and committee.grid_id else first(PlaceKind.GRID)
        compound = session.scalars(select(Place).where(
            Place.kind == PlaceKind.COMPOUND, Place.committee_id == (committee.id if committee else None)
        ).limit(1)).first() or first(PlaceKind.COMPOUND)
        resident = session.scalars(select(Person).where(
            Person.committee_id == (committee.id if committee else None), Person.place_id.is_not(None))
            .order_by(Person.id).limit(1)).first()
        for username, role, display, scope, note in _accounts(grid, committee, compound, resident):
            exists = session.scalar(select(User).where(User.username == username))
            if exists is None:
                create_user(session=session, username=username, password=DEMO_PASSWORD, role=role,
                            display_name=display, scope=scope)
            accounts.append(DemoAccount(username, DEMO_PASSWORD, role, f"{display} — {note}"))
    return accounts


def start_live(tenant_code: str, *, speed: float = 1.0) -> threading.Event:
    """The demo's devices come alive: the simulator in a background thread feeds the pipeline
    in-process, or — with SHEQU_MQTT_URL set — publishes to the broker, where a worker thread
    of this process consumes. Returns the event that stops them."""
    from shequ.core import loop
    from shequ.core.iot.worker import Worker
    from shequ.db import get_engine
    from shequ.sim.simulate import Simulator

    loop.install()
    stop = threading.Event()
    url = get_settings().mqtt_url
    if url:
        worker = Worker(get_engine(), url, f"shequ-demo-worker-{tenant_code}")
        worker.stop = stop
        threading.Thread(target=worker.run, name="shequ-worker", daemon=True).start()
        sim = Simulator(tenant_code, transport="mqtt", url=url, speed=speed)
    else:
        sim = Simulator(tenant_code, transport="inproc", speed=speed, engine=get_engine())

    incidents = Incidents(sim)

    def run() -> None:
        try:
            sim.run(None, stop, on_tick=incidents.tick)
        except Exception:  # the server stays up; the log says why the devices went quiet
            logging.getLogger(__name__).exception("the simulator stopped")

    threading.Thread(target=run, name="shequ-simulator", daemon=True).start()
    if not url:  # the worker runs the loop's sweeps when there is one
        threading.Thread(target=_sweeps, args=(stop,), name="shequ-sweeps", daemon=True).start()
    return stop


# What the demo stages so that the loop shows: an incident a little after start, then one every
# few minutes (scenario packages add theirs to the simulator's anomalies).
DEMO_INCIDENTS = ("smoke", "gas_leak", "smoke", "over_temperature", "offline")
FIRST_INCIDENT_S = 20.0
INCIDENT_EVERY_S = 180.0


def demo_incidents() -> tuple[str, ...]:
    """The kernel's incidents interleaved with each installed scenario's, first of each first."""
    lists = [list(DEMO_INCIDENTS)] + [list(s.demo_incidents) for s in load_scenarios().scenarios.values()
                                      if s.demo_incidents]
    out: list[str] = []
    while any(lists):
        for items in lists:
            if items:
                out.append(items.pop(0))
    return tuple(out)


class Incidents:
    """Injects the demo's incidents in turn while the simulator runs."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.started = time.monotonic()
        self.count = 0
        self.kinds = demo_incidents()
        # every scenario shows within a few minutes of start, however many are installed
        self.every_s = min(INCIDENT_EVERY_S, max(15.0, 180.0 / len(self.kinds)))

    def tick(self, _sim_t: float, _sent: int) -> None:
        due = FIRST_INCIDENT_S + self.count * self.every_s
        if time.monotonic() - self.started >= due:
            kind = self.kinds[self.count % len(self.kinds)]
            self.count += 1
            try:
                self.sim.inject(kind)
            except ValueError:  # a kind the simulator does not know (any more)
                logging.getLogger(__name__).warning("demo incident %s is not a simulator anomaly", kind)


def _sweeps(stop: threading.Event) -> None:
    """The loop's sweeps (rules on the clock, alarm escalation, overdue cases, webhooks)."""
    from shequ.core import loop
    from shequ.db import get_engine

    tasks = loop.periodic_sweeps()
    while not stop.wait(1.0):
        loop.run_due(get_engine(), tasks)
