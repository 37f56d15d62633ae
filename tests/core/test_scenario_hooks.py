"""The points where a scenario package plugs into the kernel, seen from outside: its change
handler sees each ingest batch, its sweep runs with the loop, its tile shows on the brain, its
simulator anomaly can be injected, its incidents are staged by the demo; and rules may target
the devices of a kind of facility and command the devices of the same facility."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shequ.core import loop, plugins
from shequ.core.iot.credentials import issue_token
from shequ.core.iot.models import Device
from shequ.core.iot.pipeline import Changes, Inbound, Pipeline, now_ms, remove_change_handler
from shequ.core.places.models import Tenant
from shequ.core.plugins import Scenario, Sweep, Tile
from shequ.core.registry.models import Facility
from shequ.core.rules import service as rules
from shequ.core.rules.engine import default_engine
from shequ.core.rules.engine import install as install_rules
from shequ.db import session_scope
from shequ.platforms.brain import service as brain
from shequ.sim.demo import DEMO_INCIDENTS, demo_incidents
from tests.iot_fixtures import IotWorld, alarms_of, build_world, commands_of, send

SEEN: list[tuple[str, str]] = []
SWEPT: list[dt.datetime | None] = []


def on_batch(changes: Changes) -> None:
    for device_id, _ts, values in changes.readings:
        info = changes.devices[device_id]
        SEEN.extend((info.code, k) for k in values)
        SEEN.append(("tenant", info.tenant_code))


def sweep(engine: Engine, now: dt.datetime | None = None) -> int:
    SWEPT.append(now)
    return 7


def tile(*, session: Session, lang: str) -> Tile:
    return Tile(title="测试场景" if lang == "zh-CN" else "Test", figures=(("今日", "3"),), link="/s98", alert=True)


def broken_tile(*, session: Session, lang: str) -> Tile:
    raise RuntimeError("a tile that fails")


def inject_blip(sim: Any, t: float, code: str | None, params: dict[str, Any]) -> None:
    SEEN.append(("blip", str(params.get("n"))))


@pytest.fixture
def scenario_s98() -> Iterator[Scenario]:
    here = __name__
    spec = Scenario(id="S98", name="测试场景", owner="城运中心", handlers=(f"{here}:on_batch",),
                    sweeps=(Sweep(f"{here}:sweep", every_s=1),), tile=f"{here}:tile",
                    anomalies=(("blip", f"{here}:inject_blip"),), demo_incidents=("blip",))
    broken = Scenario(id="S97", name="坏瓦片", owner="城运中心", tile=f"{here}:broken_tile")
    registry = plugins.load_scenarios()
    registry.add(spec)
    registry.add(broken)
    SEEN.clear()
    SWEPT.clear()
    yield spec
    registry.scenarios.pop("S98")
    registry.scenarios.pop("S97")
    for ref in spec.handlers:
        remove_change_handler(loop.scenario_handler(spec.id, ref))


def test_a_scenario_handler_sees_each_batch_and_its_sweep_runs_with_the_loop(engine: Engine,
                                                                               scenario_s98: Scenario) -> None:
    world = build_world(engine)
    loop.install()
    send(Pipeline(engine), world, "WM-301", v={"flow_lpm": 1.5})
    assert ("WM-301", "flow_lpm") in SEEN
    now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    result = loop.sweep_all(engine, now)
    assert [now] == SWEPT and 7 in result.values()
    assert any(task.fn is sweep and task.every_s == 1 for task in loop.periodic_sweeps())


def test_a_scenario_handler_sees_only_the_tenants_that_switched_it_on(engine: Engine,
                                                                     scenario_s98: Scenario) -> None:
    on, off = build_world(engine), build_world(engine)
    with session_scope(tenant_id=off.tenant_id, actor="test") as s:
        tenant = s.get(Tenant, off.tenant_id)
        tenant.settings = {**tenant.settings, "scenarios": []}  # 成熟一个、启动一个: none yet
    loop.forget_switches()
    loop.install()
    batch = [Inbound(json.dumps({"id": f"sw{n}", "ts": now_ms(), "v": {"flow_lpm": 1.0}}).encode(), "telemetry",
                     world.tenant_code, "WM-301") for n, world in enumerate((on, off))]
    result = Pipeline(engine).process(batch)  # one batch, two tenants
    assert [o.status for o in result.outcomes] == ["accepted", "accepted"]
    assert ("tenant", on.tenant_code) in SEEN and ("tenant", off.tenant_code) not in SEEN
    SEEN.clear()
    send(Pipeline(engine), off, "WM-301", v={"flow_lpm": 2.0})  # a batch of the switched-off tenant only
    assert SEEN == []
    assert off.tenant_id not in loop.tenant_ids(engine, "S98") and on.tenant_id in loop.tenant_ids(engine, "S98")


def test_a_scenario_tile_shows_on_the_brain_and_a_failing_one_is_left_out(session: Session,
                                                                            scenario_s98: Scenario) -> None:
    tiles = brain.summary(session=session)["scenarios"]
    mine = [t for t in tiles if t["id"] in ("S98", "S97")]
    assert mine == [{"id": "S98", "title": "测试场景", "link": "/s98", "alert": True,
                     "figures": [{"label": "今日", "value": "3"}]}]
    tenant = session.info["tenant"]
    tenant.settings = {**tenant.settings, "scenarios": []}  # every scenario switched off
    session.flush()
    assert brain.summary(session=session)["scenarios"] == []


def test_the_demo_stages_each_scenarios_incidents_and_the_simulator_knows_them(scenario_s98: Scenario) -> None:
    from shequ.sim.simulate import Simulator

    kinds = demo_incidents()
    first_round = kinds[: 1 + len([s for s in plugins.load_scenarios().scenarios.values() if s.demo_incidents])]
    assert "blip" in first_round and kinds[0] == DEMO_INCIDENTS[0]
    staged = Counter(DEMO_INCIDENTS)  # every incident of the kernel and of each scenario, once each
    for spec in plugins.load_scenarios().scenarios.values():
        staged.update(spec.demo_incidents)
    assert Counter(kinds) == staged
    sim = Simulator("T", devices=[])
    sim.inject("blip", n=2)
    sim.step(1_800_000_000.0)  # the next step applies what was queued
    assert ("blip", "2") in SEEN
    with pytest.raises(ValueError, match="unknown anomaly 'nothing'"):
        sim.inject("nothing")


@pytest.fixture
def sites(engine: Engine) -> Iterator[IotWorld]:
    """Two charging sites in one compound, each with a smoke detector and a distribution box,
    and a smoke detector in a flat."""
    install_rules()
    world = build_world(engine)
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        for n in (1, 2):
            fac = Facility(kind="charging_station", code=f"CS-{n}", name=f"{n}号充电棚",
                           place_id=world.tree.compound.id)
            s.add(fac)
            s.flush()
            for code, type_code in ((f"SD-CS{n}", "smoke_detector"), (f"DB-CS{n}", "distribution_box")):
                dev = Device(code=code, name=code, type_code=type_code, place_id=world.tree.compound.id,
                             facility_id=fac.id)
                issue_token(dev)
                s.add(dev)
        rules.save_rule(session=s, actor="test", body={
            "code": "site_smoke_cut", "name": "充电棚烟感断电", "kind": "threshold",
            "target": {"device_types": ["smoke_detector"], "facility_kinds": ["charging_station"]},
            "spec": {"field": "smoke", "op": "==", "value": True},
            "actions": [{"do": "command", "name": "cut_power",
                         "target": {"device_type": "distribution_box", "at": "facility"}}]})
    default_engine().invalidate()
    yield world


def test_a_rule_targets_a_kind_of_facility_and_commands_the_devices_of_that_facility(
        engine: Engine, sites: IotWorld) -> None:
    pipe = Pipeline(engine)
    send(pipe, sites, "SD-301", v={"smoke": True})  # a flat's detector: not at a charging site
    assert commands_of(sites) == []
    send(pipe, sites, "SD-CS2", v={"smoke": True})
    [cmd] = commands_of(sites)
    with session_scope(tenant_id=sites.tenant_id) as s:
        target = s.get(Device, cmd.device_id)
        assert target is not None and (target.code, cmd.name) == ("DB-CS2", "cut_power")
    assert alarms_of(sites) == []  # the rule carries the linkage only: no action "alarm", no alarm


def test_a_bad_facility_kind_target_is_refused_naming_the_field(session: Session) -> None:
    with pytest.raises(rules.RuleError) as err:
        rules.save_rule(session=session, actor="test", body={
            "code": "x1", "name": "x", "kind": "threshold",
            "target": {"device_types": ["smoke_detector"], "facility_kinds": [7]},
            "spec": {"field": "smoke", "op": "==", "value": True}})
    assert err.value.field == "target.facility_kinds"
