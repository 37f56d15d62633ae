"""S11 through the real pipeline and sweeps: inactivity alarms, the escalation chain, pauses, smoke, check-ins."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, select

from shequ.core import loop
from shequ.core.alarms.models import Alarm
from shequ.core.iam import service as iam
from shequ.core.iot.models import Device
from shequ.core.iot.pipeline import Inbound, Pipeline
from shequ.core.notify.models import Notification, OutboundMessage
from shequ.core.registry.models import Person
from shequ.core.rules import service as rules
from shequ.core.rules.engine import install as install_rules
from shequ.db import session_scope
from shequ.scenarios.s11_care import service
from shequ.scenarios.s11_care.models import CarePlan, Checkin, Escalation
from tests.iot_fixtures import IotWorld, alarms_of, build_world, cases_of, send

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
PHONE = "13912345678"
_seq = itertools.count(1)


@dataclass
class Home:
    world: IotWorld
    plan_id: int
    committee_user_id: int
    t0: dt.datetime  # 08:00 local, two days ago: the person was last seen moving then

    def ms(self, at: dt.datetime) -> int:
        return int(at.timestamp() * 1000)


@pytest.fixture
def home(engine: Engine) -> Iterator[Home]:
    install_rules()
    loop.install()
    world = build_world(engine)
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        rules.install_default_rules(session=s)
        s.add(Device(code="PIR-301", name="PIR-301", type_code="pir", place_id=world.tree.room.id))
        person = Person(name="张阿婆", phone=PHONE, birth_date=dt.date(1938, 5, 1), place_id=world.tree.room.id)
        s.add(person)
        s.flush()
        plan = service.create_plan(session=s, person_id=person.id, group="elderly_alone")
        service.add_contact(session=s, plan=plan, name="李明", relation="子女", phone="13800001111")
        user = iam.create_user(session=s, username=f"jw{world.tenant_id}", password="jiangchuan2024",
                               role="committee", scope={"committees": [world.tree.committee.id]})
        plan_id, user_id = plan.id, user.id
    world.devices["PIR-301"] = None  # type: ignore[assignment]
    today = dt.datetime.now(SHANGHAI).replace(hour=8, minute=0, second=0, microsecond=0)
    yield Home(world, plan_id, user_id, (today - dt.timedelta(days=2)).astimezone(dt.UTC))


def _pir(pipe: Pipeline, home: Home, at: dt.datetime, motion: bool) -> None:
    send(pipe, home.world, "PIR-301", ts=home.ms(at), v={"motion": motion, "motion_count": 3 if motion else 0})


def _batch(pipe: Pipeline, home: Home, device: str, values: list[tuple[dt.datetime, dict[str, object]]]) -> None:
    """Many telemetry messages of one device in one batch (as a gateway's backlog arrives)."""
    result = pipe.process([Inbound(json.dumps({"id": f"b{next(_seq)}", "ts": home.ms(at), "v": v}).encode(),
                                   "telemetry", home.world.tenant_code, device) for at, v in values])
    assert all(o.status == "accepted" for o in result.outcomes)


def _quiet_since_t0(pipe: Pipeline, home: Home, hours: float) -> None:
    """Came home at 07:00, moved at 08:00, then the PIR saw nobody for ``hours``."""
    send(pipe, home.world, "DM-301", "event", ts=home.ms(home.t0 - dt.timedelta(hours=1)), type="door_opened",
         data={"duration_s": 10})
    _pir(pipe, home, home.t0, True)
    _batch(pipe, home, "PIR-301", [(home.t0 + dt.timedelta(minutes=15 * k), {"motion": False, "motion_count": 0})
                                   for k in range(1, int(hours * 4) + 1)])


def _chain(home: Home) -> list[Escalation]:
    with session_scope(tenant_id=home.world.tenant_id) as s:
        return list(s.scalars(select(Escalation).order_by(Escalation.step, Escalation.id)))


def _care_alarms(home: Home) -> list[Alarm]:
    return [a for a in alarms_of(home.world) if a.scenario == "S11"]


def test_no_motion_alarm_and_the_whole_escalation_chain(engine, home):
    pipe = Pipeline(engine)
    _quiet_since_t0(pipe, home, 7)
    loop.sweep_all(engine, home.t0 + dt.timedelta(hours=5))
    assert _care_alarms(home) == []  # five quiet daytime hours: under the six of the plan

    at = home.t0 + dt.timedelta(hours=6, minutes=5)
    loop.sweep_all(engine, at)
    [alarm] = _care_alarms(home)
    assert (alarm.type, alarm.severity, alarm.status) == ("s11_no_motion", "MAJOR", "ACTIVE_UNACK")
    assert alarm.place_id == home.world.tree.room.id and alarm.committee_id == home.world.tree.committee.id
    [step] = _chain(home)
    assert (step.action, step.outcome) == ("call_person", "calling")
    assert step.target == "张阿婆 139****5678"  # shown masked
    with session_scope(tenant_id=home.world.tenant_id) as s:
        [call] = s.scalars(select(OutboundMessage)).all()
        assert (call.channel, call.to, call.status) == ("voice", PHONE, "sent")

    loop.sweep_all(engine, at + dt.timedelta(minutes=4))
    assert len(_chain(home)) == 1  # five minutes for an answer
    loop.sweep_all(engine, at + dt.timedelta(minutes=5))
    steps = _chain(home)
    assert [(s.action, s.outcome) for s in steps] == [("call_person", "no_answer"), ("call_contact", "calling")]
    assert steps[1].target == "李明 138****1111"

    loop.sweep_all(engine, at + dt.timedelta(minutes=10))
    assert _chain(home)[-1].action == "committee"
    with session_scope(tenant_id=home.world.tenant_id) as s:
        notes = s.scalars(select(Notification).where(Notification.user_id == home.committee_user_id,
                                                     Notification.kind == "escalation")).all()
        assert len(notes) == 1 and "无人应答" in notes[0].title

    assert cases_of(home.world) == []
    loop.sweep_all(engine, at + dt.timedelta(minutes=25))  # the committee's 15 minutes passed
    [case] = cases_of(home.world)
    assert (case.class_code, case.department, case.priority, case.alarm_id) == ("S11-01", "社区服务办", "urgent",
                                                                               alarm.id)
    assert _chain(home)[-1].action == "case" and _chain(home)[-1].ref == case.code
    loop.sweep_all(engine, at + dt.timedelta(hours=2))
    assert len(_chain(home)) == 4  # the chain ends with the case


def test_motion_through_the_pipeline_clears_the_alarm_and_stops_the_chain(engine, home):
    pipe = Pipeline(engine)
    _quiet_since_t0(pipe, home, 7)
    loop.sweep_all(engine, home.t0 + dt.timedelta(hours=7))
    [alarm] = _care_alarms(home)
    _pir(pipe, home, home.t0 + dt.timedelta(hours=7, minutes=2), True)  # the person gets up
    [alarm] = _care_alarms(home)
    assert alarm.status == "CLEARED_UNACK" and alarm.cleared_by == "s11"
    assert [(s.action, s.outcome) for s in _chain(home)] == [("call_person", "calling"), ("stop", "cleared")] or \
        _chain(home)[-1].outcome == "cleared"
    loop.sweep_all(engine, home.t0 + dt.timedelta(hours=8))
    assert not any(s.due_at for s in _chain(home))  # nobody else is called
    assert len(_care_alarms(home)) == 1


def test_an_answer_stops_the_chain_and_all_well_clears(engine, home):
    pipe = Pipeline(engine)
    _quiet_since_t0(pipe, home, 7)
    at = home.t0 + dt.timedelta(hours=7)
    loop.sweep_all(engine, at)
    with session_scope(tenant_id=home.world.tenant_id, actor="jw") as s:
        [alarm] = s.scalars(select(Alarm).where(Alarm.scenario == "S11")).all()
        with pytest.raises(service.CareError) as bad:
            service.record_answer(session=s, alarm=alarm, outcome="maybe", actor="jw")
        assert bad.value.field == "outcome"
        service.record_answer(session=s, alarm=alarm, outcome="all_well", actor="jw", note="电话里说在看书",
                              now=at + dt.timedelta(minutes=2))
    [alarm] = _care_alarms(home)
    assert alarm.status == "CLEARED_UNACK"
    assert [(s.action, s.outcome) for s in _chain(home)] == [("call_person", "all_well"), ("stop", "all_well")]
    loop.sweep_all(engine, at + dt.timedelta(minutes=30))
    assert len(_chain(home)) == 2 and len(_care_alarms(home)) == 1  # not raised again at once


def test_voice_adapter_outcome_moves_the_chain(engine, home):
    pipe = Pipeline(engine)
    _quiet_since_t0(pipe, home, 7)
    at = home.t0 + dt.timedelta(hours=7)
    loop.sweep_all(engine, at)
    ref = _chain(home)[0].ref
    with session_scope(tenant_id=home.world.tenant_id) as s:
        service.voice_outcome(session=s, provider_ref=ref, answered=False, now=at + dt.timedelta(minutes=1))
    assert [s.action for s in _chain(home)] == ["call_person", "call_contact"]
    with session_scope(tenant_id=home.world.tenant_id) as s:
        service.voice_outcome(session=s, provider_ref=_chain(home)[1].ref, answered=True,
                              now=at + dt.timedelta(minutes=2))
    assert [(s.action, s.outcome) for s in _chain(home)][-1] == ("stop", "answered")
    [alarm] = _care_alarms(home)
    assert alarm.status == "ACTIVE_UNACK"  # answered, but not yet "all well": staff follow up


def test_a_reported_absence_pauses_the_checks(engine, home):
    pipe = Pipeline(engine)
    with session_scope(tenant_id=home.world.tenant_id, actor="jw") as s:
        plan = s.get(CarePlan, home.plan_id)
        service.pause_plan(session=s, plan=plan, reason="hospital", actor="jw", until=None, note="住院三天")
    _quiet_since_t0(pipe, home, 10)
    loop.sweep_all(engine, home.t0 + dt.timedelta(hours=10))
    assert _care_alarms(home) == []
    with session_scope(tenant_id=home.world.tenant_id, actor="jw") as s:
        plan = s.get(CarePlan, home.plan_id)
        with pytest.raises(service.CareError) as bad:
            service.pause_plan(session=s, plan=plan, reason="holiday", actor="jw", until=None)
        assert bad.value.field == "reason"
        service.resume_plan(session=s, plan=plan, actor="jw", now=home.t0 + dt.timedelta(hours=10))
    loop.sweep_all(engine, home.t0 + dt.timedelta(hours=12))
    assert _care_alarms(home) == []  # watched again from the resume (18:00), not from the last motion
    loop.sweep_all(engine, home.t0 + dt.timedelta(hours=26))  # 3 + 3 daytime hours after the resume
    assert [a.type for a in _care_alarms(home)] == ["s11_no_motion"]


def test_going_out_is_not_inactivity(engine, home):
    pipe = Pipeline(engine)
    _pir(pipe, home, home.t0, True)
    send(pipe, home.world, "DM-301", "event", ts=home.ms(home.t0 + dt.timedelta(minutes=5)), type="door_opened",
         data={"duration_s": 10})  # out of the door, and the PIR sees nobody after
    _batch(pipe, home, "PIR-301", [(home.t0 + dt.timedelta(minutes=15 * k), {"motion": False})
                                   for k in range(1, 40)])
    loop.sweep_all(engine, home.t0 + dt.timedelta(hours=10))
    assert _care_alarms(home) == []


def test_smoke_in_a_care_home_is_critical_and_calls_the_person(engine, home):
    pipe = Pipeline(engine)
    send(pipe, home.world, "SD-301", v={"smoke": True})
    alarms = alarms_of(home.world)
    smoke = next(a for a in alarms if a.type == "smoke")
    assert smoke.severity == "CRITICAL"
    [step] = _chain(home)
    assert (step.alarm_id, step.action, step.outcome) == (smoke.id, "call_person", "calling")
    send(pipe, home.world, "SD-301", v={"smoke": True})
    assert len(_chain(home)) == 1  # the repeat starts no second chain


def test_activity_today_checks_the_person_in_automatically(engine, home):
    pipe = Pipeline(engine)
    _pir(pipe, home, dt.datetime.now(dt.UTC), True)
    with session_scope(tenant_id=home.world.tenant_id) as s:
        [checkin] = s.scalars(select(Checkin)).all()
        assert (checkin.how, checkin.by, checkin.plan_id) == ("sensors", "s11", home.plan_id)
    _pir(pipe, home, dt.datetime.now(dt.UTC), True)
    with session_scope(tenant_id=home.world.tenant_id) as s:
        assert len(s.scalars(select(Checkin)).all()) == 1  # once a day


def test_low_water_over_the_daytime_window(engine, home):
    pipe = Pipeline(engine)
    send(pipe, home.world, "DM-301", "event", ts=home.ms(home.t0 - dt.timedelta(hours=15)), type="door_opened",
         data={"duration_s": 10})  # home at 17:00 the day before
    start = home.t0 - dt.timedelta(hours=14)
    # the meter's total stands still from 18:00 the day before
    _batch(pipe, home, "WM-301", [(start + dt.timedelta(minutes=5 * k), {"flow_lpm": 0.0, "total_m3": 101.234})
                                  for k in range(0, 22 * 12)])
    # the person moves about (the PIR sees them), but draws no water
    _batch(pipe, home, "PIR-301", [(start + dt.timedelta(minutes=15 * k), {"motion": True, "motion_count": 2})
                                   for k in range(0, 22 * 4)])
    loop.sweep_all(engine, home.t0 + dt.timedelta(hours=7))
    assert _care_alarms(home) == []  # 12 daytime hours reach back to 17:00: the readings do not yet
    loop.sweep_all(engine, home.t0 + dt.timedelta(hours=8, minutes=30))
    assert [a.type for a in _care_alarms(home)] == ["s11_low_water"]
    send(pipe, home.world, "WM-301", ts=home.ms(home.t0 + dt.timedelta(hours=8, minutes=35)),
         v={"flow_lpm": 6.0, "total_m3": 101.25})
    assert _care_alarms(home)[0].status == "CLEARED_UNACK"


def test_the_demo_anomaly_raises_an_alarm_and_calls_within_a_sweep(engine, home):
    from shequ.core.iot.types import get_type
    from shequ.sim.simulate import SimDevice, Simulator

    devices = [SimDevice(i, code, get_type(kind), "room", home.world.tree.room.id,
                         attrs={"room": "R1", "care": "elderly_alone"})
               for i, (code, kind) in enumerate((("PIR-301", "pir"), ("DM-301", "door_magnet"),
                                                 ("WM-301", "water_meter")))]
    sim = Simulator(home.world.tenant_code, devices=devices, engine=engine)
    pipe = Pipeline(engine)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)

    def deliver(msgs):
        if msgs:
            pipe.process([Inbound(body, kind, home.world.tenant_code, code) for code, kind, body in msgs])

    deliver(sim.step(start))
    sim.devices[0].state["motion"] = False  # the home chosen is one whose PIR saw nobody since the start
    sim.inject("care_inactivity", "PIR-301")
    now = start + dt.timedelta(minutes=1)
    deliver(sim.step(now))
    loop.sweep_all(engine, now + dt.timedelta(seconds=15))
    [alarm] = _care_alarms(home)
    assert alarm.type == "s11_no_motion"
    assert [s.action for s in _chain(home)] == ["call_person"]
    loop.sweep_all(engine, now + dt.timedelta(minutes=6))
    assert [s.action for s in _chain(home)] == ["call_person", "call_contact"]


def test_seed_demo_makes_plans_once(engine, home):
    with session_scope(tenant_id=home.world.tenant_id, actor="seed") as s:
        from shequ.core.registry import tags

        tags.install_default_tags(session=s)
        person = Person(name="赵大爷", birth_date=dt.date(1941, 2, 3), place_id=home.world.tree.room2.id)
        s.add(person)
        s.add(Device(code="PIR-302", name="PIR-302", type_code="pir", place_id=home.world.tree.room2.id))
        s.flush()
        tags.add_tag(session=s, code="solitary_elderly", entity="person", entity_id=person.id, by="seed")
        assert service.seed_demo(session=s) == 1
        assert service.seed_demo(session=s) == 0
        plan = service.plan_for_person(session=s, person_id=person.id)
        assert plan is not None and plan.group == "solitary_elderly" and plan.place_id == home.world.tree.room2.id
        assert len(service.contacts_of(session=s, plan_id=plan.id)) == 2
