"""三合一 judgement through the real pipeline: night presence in shops, smoke at the same time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from shequ.core import loop
from shequ.core.alarms.models import AlarmEvent
from shequ.core.iot.credentials import issue_token
from shequ.core.iot.models import Device
from shequ.core.iot.pipeline import Pipeline
from shequ.core.places.models import Place, Tenant
from shequ.core.places.service import create_place
from shequ.core.rules import service as rules
from shequ.db import session_scope
from shequ.scenarios.s05_shops import service
from shequ.scenarios.s05_shops.models import Inspection, NightPresence
from tests.iot_fixtures import IotWorld, alarms_of, build_world, send

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Shops:
    world: IotWorld
    open_shop: int  # not registered as a residence
    home_shop: int  # registered (商住登记)


def _at(day_offset: int, hh: int, mm: int) -> int:
    """Epoch ms of a local Shanghai time ``day_offset`` days from today (negative: past)."""
    day = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=day_offset)
    return int(dt.datetime.combine(day, dt.time(hh, mm), SHANGHAI).timestamp() * 1000)


def _every_5min(start_ms: int, n: int) -> list[int]:
    return [start_ms + k * 300_000 for k in range(n)]


def build_shops(engine: Engine, settings: dict[str, object] | None = None) -> Shops:
    world = build_world(engine)
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        if settings is not None:
            tenant = s.get(Tenant, world.tenant_id)
            assert tenant is not None
            tenant.settings = {**(tenant.settings or {}), "s05": settings}
        committee = s.get(Place, world.tree.committee.id)
        ids = []
        for code, name in (("SP1", "江川路1号小吃店"), ("SP2", "江川路3号五金店")):
            shop = create_place(session=s, kind="shop", code=code, name=name, parent=committee,
                                attrs={"industry": "住宿和餐饮业"})
            ids.append(shop.id)
            for dcode, dtype in ((f"{code}-PIR", "pir"), (f"{code}-SD", "smoke_detector")):
                dev = Device(code=dcode, name=dcode, type_code=dtype, place_id=shop.id)
                world.tokens[dcode] = issue_token(dev)
                s.add(dev)
                world.devices[dcode] = dev
        s.flush()
        service.update_registration(session=s, place_id=ids[1], registered_residence=True, risk_level="low",
                                    notes="商住两用", actor="test")
        rules.install_default_rules(session=s)
    return Shops(world, ids[0], ids[1])


@pytest.fixture
def shops(engine: Engine) -> Iterator[Shops]:
    loop.install()  # the rule engine, then the scenarios' handlers (S05's on_batch)
    yield build_shops(engine)


def _motion(pipe: Pipeline, world: IotWorld, code: str, times: list[int]) -> None:
    for ts in times:
        send(pipe, world, code, ts=ts, v={"motion": True, "motion_count": 7, "battery_pct": 80})


def _live_in(world: IotWorld) -> list:
    return [a for a in alarms_of(world) if a.type == "s05_live_in"]


def _inspections(world: IotWorld) -> list[Inspection]:
    with session_scope(tenant_id=world.tenant_id) as s:
        return list(s.scalars(select(Inspection).order_by(Inspection.id)))


def test_sustained_night_presence_in_an_unregistered_shop_raises_a_suspicion_and_plans_an_inspection(engine, shops):
    pipe, world = Pipeline(engine), shops.world
    readings = _every_5min(_at(-1, 1, 0), 7)  # 01:00 … 01:30 last night
    _motion(pipe, world, "SP1-PIR", readings[:6])  # 25 minutes: not yet
    assert _live_in(world) == []
    _motion(pipe, world, "SP1-PIR", readings[6:])  # 30 minutes of presence
    [alarm] = _live_in(world)
    assert (alarm.severity, alarm.scenario, alarm.status) == ("MINOR", "S05", "ACTIVE_UNACK")
    assert alarm.place_id == shops.open_shop and alarm.device_id == world.devices["SP1-PIR"].id
    assert alarm.committee_id == world.tree.committee.id
    assert alarm.context["first"] == "01:00" and alarm.context["last"] == "01:30"
    assert "江川路1号小吃店" in alarm.title

    [task] = _inspections(world)
    assert (task.place_id, task.reason, task.alarm_id, task.status) == (shops.open_shop, "alarm", alarm.id, "planned")
    assert task.planned_date == service.today() + dt.timedelta(days=3)

    # the same night goes on: no second alarm; the next night counts a repeat, still one task
    _motion(pipe, world, "SP1-PIR", _every_5min(_at(-1, 1, 35), 3))
    assert [a.count for a in _live_in(world)] == [1]
    _motion(pipe, world, "SP1-PIR", _every_5min(_at(-3, 1, 0), 7))  # another night
    [alarm] = _live_in(world)
    assert alarm.count == 2
    assert len(_inspections(world)) == 1


def test_presence_in_a_shop_registered_as_a_residence_raises_nothing(engine, shops):
    pipe, world = Pipeline(engine), shops.world
    _motion(pipe, world, "SP2-PIR", _every_5min(_at(-1, 23, 0), 12))  # an hour
    assert _live_in(world) == [] and _inspections(world) == []
    with session_scope(tenant_id=world.tenant_id) as s:  # still seen, for the shop's page
        [night] = s.scalars(select(NightPresence)).all()
        assert night.place_id == shops.home_shop and night.sustained and night.readings == 12


def test_presence_in_the_daytime_raises_nothing(engine, shops):
    pipe, world = Pipeline(engine), shops.world
    _motion(pipe, world, "SP1-PIR", _every_5min(_at(-1, 14, 0), 12))
    assert _live_in(world) == []
    with session_scope(tenant_id=world.tenant_id) as s:
        assert s.scalars(select(NightPresence)).all() == []


def test_a_long_silence_breaks_the_span(engine, shops):
    pipe, world = Pipeline(engine), shops.world
    _motion(pipe, world, "SP1-PIR", [_at(-1, 1, 0), _at(-1, 1, 10), _at(-1, 1, 45), _at(-1, 2, 10)])
    assert _live_in(world) == []  # 01:45–02:10 is 25 minutes after a 35-minute silence
    _motion(pipe, world, "SP1-PIR", [_at(-1, 2, 15)])
    assert len(_live_in(world)) == 1


def test_thresholds_come_from_the_tenant_settings(engine):
    loop.install()
    shops = build_shops(engine, {"sustain_min": 10, "night_start": "20:00", "severity": "WARNING"})
    pipe, world = Pipeline(engine), shops.world
    _motion(pipe, world, "SP1-PIR", _every_5min(_at(-1, 20, 30), 3))
    [alarm] = _live_in(world)
    assert alarm.severity == "WARNING"


def _smoke(pipe: Pipeline, world: IotWorld, code: str, ts: int) -> None:
    send(pipe, world, code, ts=ts, v={"smoke": True, "temperature_c": 41.0})


def test_smoke_with_night_presence_escalates_the_suspicion_and_notes_the_smoke_alarm(engine, shops):
    pipe, world = Pipeline(engine), shops.world
    _motion(pipe, world, "SP1-PIR", _every_5min(_at(-1, 2, 0), 3))  # ten minutes: no suspicion yet
    assert _live_in(world) == []
    _smoke(pipe, world, "SP1-SD", _at(-1, 2, 12))
    smoke = [a for a in alarms_of(world) if a.type == "smoke"]
    assert [(a.severity, a.place_id) for a in smoke] == [("CRITICAL", shops.open_shop)]  # the kernel's, once
    [live] = _live_in(world)
    assert live.severity == "MAJOR" and live.context["reason"] == "smoke"
    assert len(_inspections(world)) == 1
    with session_scope(tenant_id=world.tenant_id) as s:
        notes = [e.note for e in s.scalars(select(AlarmEvent).where(AlarmEvent.alarm_id == smoke[0].id))]
    assert sum("夜间有人在场" in n for n in notes) == 1

    # more smoke and more motion: still one smoke alarm, one note, one 三合一 alarm
    _smoke(pipe, world, "SP1-SD", _at(-1, 2, 14))
    _motion(pipe, world, "SP1-PIR", [_at(-1, 2, 15)])
    assert len([a for a in alarms_of(world) if a.type == "smoke"]) == 1
    assert len(_live_in(world)) == 1
    with session_scope(tenant_id=world.tenant_id) as s:
        notes = [e.note for e in s.scalars(select(AlarmEvent).where(AlarmEvent.alarm_id == smoke[0].id))]
    assert sum("夜间有人在场" in n for n in notes) == 1


def test_smoke_raises_an_active_suspicion_from_minor_to_major(engine, shops):
    pipe, world = Pipeline(engine), shops.world
    _motion(pipe, world, "SP1-PIR", _every_5min(_at(-1, 3, 0), 7))
    [live] = _live_in(world)
    assert live.severity == "MINOR"
    _smoke(pipe, world, "SP1-SD", _at(-1, 3, 31))
    [live] = _live_in(world)
    assert live.severity == "MAJOR"
    with session_scope(tenant_id=world.tenant_id) as s:
        actions = [e.action for e in s.scalars(select(AlarmEvent).where(AlarmEvent.alarm_id == live.id))]
    assert "severity" in actions


def test_smoke_in_a_registered_shop_at_night_notes_presence_but_raises_no_suspicion(engine, shops):
    pipe, world = Pipeline(engine), shops.world
    _motion(pipe, world, "SP2-PIR", _every_5min(_at(-1, 4, 0), 2))
    _smoke(pipe, world, "SP2-SD", _at(-1, 4, 6))
    [smoke] = [a for a in alarms_of(world) if a.type == "smoke"]
    assert smoke.severity == "CRITICAL" and _live_in(world) == []
    with session_scope(tenant_id=world.tenant_id) as s:
        notes = [e.note for e in s.scalars(select(AlarmEvent).where(AlarmEvent.alarm_id == smoke.id))]
    assert any("夜间有人在场" in n and "已登记商住" in n for n in notes)


def test_smoke_without_presence_or_in_the_daytime_is_left_to_the_kernel(engine, shops):
    pipe, world = Pipeline(engine), shops.world
    _motion(pipe, world, "SP1-PIR", _every_5min(_at(-1, 15, 0), 3))
    _smoke(pipe, world, "SP1-SD", _at(-1, 15, 12))
    [smoke] = alarms_of(world)
    assert smoke.type == "smoke" and smoke.severity == "CRITICAL"
    with session_scope(tenant_id=world.tenant_id) as s:
        assert s.scalar(select(AlarmEvent.id).where(AlarmEvent.actor == "S05")) is None


def test_the_inspection_result_closes_the_suspicion_and_the_sweep_marks_late_tasks(engine, shops):
    pipe, world = Pipeline(engine), shops.world
    _motion(pipe, world, "SP1-PIR", _every_5min(_at(-1, 1, 0), 7))
    [task] = _inspections(world)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)
    assert loop.sweep_all(engine, later)["s05_shops.sweep"] >= 1
    [task] = _inspections(world)
    assert task.status == "overdue"

    with session_scope(tenant_id=world.tenant_id, actor="inspector") as s:
        ins = service.get_inspection(session=s, inspection_id=task.id)
        assert ins is not None
        service.record_result(session=s, inspection=ins, result="rectify", findings="阁楼设置床铺",
                              actor="inspector")
    [live] = _live_in(world)
    assert live.status == "CLEARED_ACK" and live.cleared_by == "inspector"
    [task] = _inspections(world)
    assert (task.status, task.result, task.done_by) == ("done", "rectify", "inspector")
    assert task.rectify_by == service.today() + dt.timedelta(days=15)


def test_the_demo_anomaly_replays_a_night_of_presence_in_an_unregistered_shop(engine, shops):
    from shequ.core.iot.pipeline import Inbound
    from shequ.sim.simulate import Simulator

    world = shops.world
    sim = Simulator(world.tenant_code, engine=engine)
    sim.inject("s05_night_replay")
    messages = sim.step(dt.datetime.now(dt.UTC))
    [truth] = [x for x in sim.truth if x["kind"] == "s05_night_replay"]
    assert truth["device"] == "SP1-PIR" and truth["readings"] >= 7  # never the registered shop's sensor
    result = Pipeline(engine).process([Inbound(body, kind, world.tenant_code, code) for code, kind, body in messages])
    assert result.dead == 0
    [alarm] = _live_in(world)
    assert alarm.place_id == shops.open_shop
    assert service.in_night(alarm.source_ms, service.S05Settings.model_validate({}))
