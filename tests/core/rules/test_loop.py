"""The closed loop through the real pipeline: a device message → rule → alarm → routed case."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from shequ.core import loop
from shequ.core.alarms import service as alarm_service
from shequ.core.alarms.models import Alarm, AlarmEvent
from shequ.core.cases.calendar import WorkCalendar
from shequ.core.cases.models import CaseStep
from shequ.core.iot.models import Device, DeviceCommand
from shequ.core.iot.pipeline import Pipeline, now_ms
from shequ.core.rules import service as rules
from shequ.core.rules.engine import default_engine
from shequ.core.rules.engine import install as install_rules
from shequ.core.rules.models import RuleState
from shequ.db import session_scope
from tests.iot_fixtures import IotWorld, alarms_of, build_world, cases_of, send


@pytest.fixture
def world(engine: Engine) -> Iterator[IotWorld]:
    """A committed tenant with the default rules; cases are opened by the test's own call of
    ``open_pending_cases`` (the worker's background thread is off), except where a test turns
    the thread on to see the real timing."""
    install_rules()
    w = build_world(engine)
    with session_scope(tenant_id=w.tenant_id, actor="test") as s:
        rules.install_default_rules(session=s)
    yield w


def test_smoke_reading_raises_a_critical_alarm_and_a_case_routed_by_class_and_place(engine, world, monkeypatch):
    # as in a worker: the case is opened by a background thread right after the batch commits
    monkeypatch.setattr(alarm_service, "background_cases", True)
    pipe = Pipeline(engine)
    sent = dt.datetime.now(dt.UTC)
    send(pipe, world, "SD-301", v={"smoke": True, "temperature_c": 31.5})
    done = dt.datetime.now(dt.UTC)

    [alarm] = alarms_of(world)  # committed with the batch
    assert (alarm.severity, alarm.type, alarm.status) == ("CRITICAL", "smoke", "ACTIVE_UNACK")
    assert alarm.device_id == world.devices["SD-301"].id
    assert alarm.building_id == world.tree.building.id and alarm.committee_id == world.tree.committee.id
    assert alarm.raised_at - sent < dt.timedelta(seconds=1) and alarm.raised_at <= done

    deadline = time.monotonic() + 1.0  # the done-when: the case within one second of the reading
    while not cases_of(world) and time.monotonic() < deadline:
        time.sleep(0.02)
    [case] = cases_of(world)
    assert case.alarm_id == alarm.id and case.source == "alarm" and case.class_code == "E0401"
    assert case.stage == "dispatched" and case.department == "城运中心" and case.priority == "urgent"
    assert (case.grid_id, case.committee_id, case.building_id) == (
        world.tree.grid.id, world.tree.committee.id, world.tree.building.id)
    # the handling deadline is half a working hour (E0401's urgent hours) on the holiday calendar
    assert case.due_at == WorkCalendar.of().add(case.dispatched_at, 0.5)
    assert case.dispatched_at - sent < dt.timedelta(seconds=1)

    # the same smoke again counts on the same alarm and opens no second case
    send(pipe, world, "SD-301", v={"smoke": True})
    send(pipe, world, "SD-301", "event", type="smoke_alarm", data={"density_db_m": 0.4})
    [alarm] = alarms_of(world)
    assert alarm.count == 2  # the threshold stays active on a repeated value; the event counts
    assert len(cases_of(world)) == 1

    # the smoke is gone: the threshold rule clears the alarm (the case stays for the people)
    send(pipe, world, "SD-301", v={"smoke": False})
    [alarm] = alarms_of(world)
    assert alarm.status == "CLEARED_UNACK" and alarm.cleared_by == "rule:smoke"
    assert cases_of(world)[0].stage == "dispatched"


def test_a_case_from_an_alarm_goes_through_every_stage(engine, world):
    from shequ.core.cases import service as cases

    pipe = Pipeline(engine)
    send(pipe, world, "SD-302", v={"smoke": True})
    assert cases_of(world) == []  # opened just after the batch, not inside it
    loop.open_pending_cases(engine)
    [case] = cases_of(world)
    with session_scope(tenant_id=world.tenant_id, actor="d1") as s:
        case = cases.get_case(session=s, case_id=case.id)
        for action in ("handle", "feed_back", "verify", "close"):
            cases.act(session=s, case=case, action=action, actor="d1")
        cases.act(session=s, case=case, action="evaluate", actor="d1", satisfaction=4)
        steps = [st.action for st in s.scalars(select(CaseStep).where(CaseStep.case_id == case.id).order_by(CaseStep.id))]
    assert steps == ["report", "register", "dispatch", "handle", "feed_back", "verify", "close", "evaluate"]


def _rule(world: IotWorld, body: dict) -> int:
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        return rules.save_rule(session=s, body=body, actor="test").id


def test_threshold_with_minimum_duration_and_hysteresis(engine, world):
    _rule(world, {"code": "hot", "name": "温度过高", "kind": "threshold", "severity": "MAJOR",
                  "target": {"device_types": ["smoke_detector"]},
                  "spec": {"field": "temperature_c", "op": ">", "value": 60, "clear_value": 50, "for_s": 60}})
    pipe = Pipeline(engine)
    t0 = now_ms() - 200_000
    send(pipe, world, "SD-301", ts=t0, v={"temperature_c": 65})
    send(pipe, world, "SD-301", ts=t0 + 30_000, v={"temperature_c": 66})
    assert [a for a in alarms_of(world) if a.type == "hot"] == []  # held only 30 s
    send(pipe, world, "SD-301", ts=t0 + 61_000, v={"temperature_c": 64})
    [hot] = [a for a in alarms_of(world) if a.type == "hot"]
    assert hot.status == "ACTIVE_UNACK" and hot.context["value"] == 64
    send(pipe, world, "SD-301", ts=t0 + 90_000, v={"temperature_c": 55})  # below 60 but above 50: stays
    assert alarms_of(world)[-1].status == "ACTIVE_UNACK"
    send(pipe, world, "SD-301", ts=t0 + 120_000, v={"temperature_c": 49})
    assert alarms_of(world)[-1].status == "CLEARED_UNACK"


def test_minimum_duration_fires_from_the_sweep_when_no_message_comes(engine, world):
    _rule(world, {"code": "hot2", "name": "温度过高", "kind": "threshold",
                  "target": {"device_types": ["smoke_detector"]},
                  "spec": {"field": "temperature_c", "op": ">", "value": 60, "for_s": 120}})
    pipe = Pipeline(engine)
    t0 = now_ms() - 60_000
    send(pipe, world, "SD-301", ts=t0, v={"temperature_c": 70})
    default_engine().sweep(engine, t0 + 100_000, [world.tenant_id])
    assert [a for a in alarms_of(world) if a.type == "hot2"] == []
    default_engine().sweep(engine, t0 + 121_000, [world.tenant_id])
    assert [a.type for a in alarms_of(world)] == ["hot2"]


def test_absence_no_door_opening_for_24_hours_then_cleared_by_an_opening(engine, world):
    _rule(world, {"code": "no_door", "name": "24小时无开门", "kind": "absence", "severity": "MAJOR",
                  "target": {"devices": [world.devices["DM-301"].id]},
                  "spec": {"match": {"event": "door_opened"}, "period_s": 86400}})
    t0 = now_ms()
    default_engine().sweep(engine, t0, [world.tenant_id])  # starts the clock
    default_engine().sweep(engine, t0 + 86_000_000, [world.tenant_id])
    assert alarms_of(world) == []
    default_engine().sweep(engine, t0 + 86_401_000, [world.tenant_id])
    [alarm] = alarms_of(world)
    assert alarm.type == "no_door" and alarm.device_id == world.devices["DM-301"].id
    send(Pipeline(engine), world, "DM-301", "event", type="door_opened", data={"duration_s": 5})
    assert alarms_of(world)[0].status == "CLEARED_UNACK"


def test_rate_three_events_in_ten_minutes(engine, world):
    _rule(world, {"code": "door_busy", "name": "频繁开门", "kind": "rate", "severity": "MINOR",
                  "target": {"device_types": ["door_magnet"]},
                  "spec": {"match": {"event": "door_opened"}, "count": 3, "window_s": 600}})
    pipe = Pipeline(engine)
    t0 = now_ms() - 3_000_000
    for k, dt_s in enumerate((0, 700, 800)):  # the first falls out of the window of the third
        send(pipe, world, "DM-301", "event", ts=t0 + dt_s * 1000, type="door_opened", data={"duration_s": k})
    assert alarms_of(world) == []
    send(pipe, world, "DM-301", "event", ts=t0 + 900_000, type="door_opened", data={"duration_s": 1})
    assert [a.type for a in alarms_of(world)] == ["door_busy"]


def test_rate_counts_only_events_whose_data_matches(engine, world):
    _rule(world, {"code": "long_open", "name": "多次长时间开门", "kind": "rate", "severity": "MINOR",
                  "target": {"device_types": ["door_magnet"]},
                  "spec": {"match": {"event": "door_opened", "where": {"field": "duration_s", "op": ">=", "value": 60}},
                           "count": 2, "window_s": 600}})
    pipe = Pipeline(engine)
    t0 = now_ms() - 400_000
    for k, seconds in enumerate((90, 5, 10)):  # one long opening and two short ones
        send(pipe, world, "DM-301", "event", ts=t0 + k * 60_000, type="door_opened", data={"duration_s": seconds})
    assert alarms_of(world) == []
    send(pipe, world, "DM-301", "event", ts=t0 + 240_000, type="door_opened", data={"duration_s": 120})
    assert [a.type for a in alarms_of(world)] == ["long_open"]


def test_a_data_condition_on_a_reading_match_is_refused(engine, world):
    with pytest.raises(rules.RuleError) as err:
        _rule(world, {"code": "bad_where", "name": "x", "kind": "rate", "target": {"device_types": ["pir"]},
                      "spec": {"match": {"field": "motion", "where": {"field": "x", "op": "==", "value": 1}},
                               "count": 2, "window_s": 60}})
    assert err.value.field.startswith("spec")


def test_composite_smoke_and_door_open_at_the_same_place(engine, world):
    _rule(world, {"code": "smoke_door", "name": "烟感且门开", "kind": "composite", "severity": "CRITICAL",
                  "spec": {"when": {"all": [{"rule": "smoke"},
                                            {"state": {"field": "open", "op": "==", "value": True},
                                             "device_type": "door_magnet"}]}}})
    pipe = Pipeline(engine)
    send(pipe, world, "DM-301", v={"open": True})
    assert alarms_of(world) == []
    send(pipe, world, "SD-302", v={"smoke": True})  # another room: no composite there
    assert {a.type for a in alarms_of(world)} == {"smoke"}
    send(pipe, world, "SD-301", v={"smoke": True})  # the door's room
    composite = [a for a in alarms_of(world) if a.type == "smoke_door"]
    assert len(composite) == 1 and composite[0].place_id == world.tree.room.id
    assert composite[0].source == f"p:{world.tree.room.id}"
    send(pipe, world, "DM-301", v={"open": False})
    assert [a.status for a in alarms_of(world) if a.type == "smoke_door"] == ["CLEARED_UNACK"]


def test_linkage_one_reading_drives_a_command_an_alarm_and_a_case(engine, world):
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        s.add(Device(code="GD-1", name="厨房燃气", type_code="gas_detector", place_id=world.tree.room.id))
    pipe = Pipeline(engine)
    send(pipe, world, "GD-1", v={"alarm": True, "gas_lel": 30.0})
    loop.open_pending_cases(engine)
    with session_scope(tenant_id=world.tenant_id) as s:
        [cmd] = s.scalars(select(DeviceCommand)).all()
        alarm = s.scalars(select(Alarm)).one()
        linkage = s.scalars(select(AlarmEvent).where(AlarmEvent.action == "linkage")).one()
    assert cmd.name == "close_valve" and cmd.source.startswith("rule:") and cmd.status in ("sent", "acked")
    assert alarm.type == "gas" and alarm.case_id is not None
    assert linkage.data["commands"][0]["command_id"] == cmd.id


def test_a_hand_cleared_alarm_lets_the_next_occurrence_alarm_and_link_again(engine, world):
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        s.add(Device(code="GD-2", name="厨房燃气", type_code="gas_detector", place_id=world.tree.room.id))
    pipe = Pipeline(engine)
    t0 = now_ms() - 60_000
    send(pipe, world, "GD-2", ts=t0, v={"alarm": True, "gas_lel": 30.0})
    [first] = alarms_of(world)
    # the dispatcher has the valve checked and clears the alarm while the detector still says gas
    with session_scope(tenant_id=world.tenant_id, actor="d1") as s:
        alarm_service.clear(session=s, alarm=s.get(Alarm, first.id), actor="d1", note="已到场处置")
    send(pipe, world, "GD-2", ts=t0 + 10_000, v={"alarm": True, "gas_lel": 32.0})
    alarms = alarms_of(world)
    assert [(a.type, a.status) for a in alarms] == [("gas", "CLEARED_UNACK"), ("gas", "ACTIVE_UNACK")]
    with session_scope(tenant_id=world.tenant_id) as s:
        names = [c.name for c in s.scalars(select(DeviceCommand).order_by(DeviceCommand.id))]
    assert names == ["close_valve", "close_valve"]  # the linkage ran again for the new alarm
    # the gas still reported: the new alarm stays the one alarm, with no third valve command
    send(pipe, world, "GD-2", ts=t0 + 20_000, v={"alarm": True, "gas_lel": 33.0})
    assert [a.status for a in alarms_of(world)] == ["CLEARED_UNACK", "ACTIVE_UNACK"]
    with session_scope(tenant_id=world.tenant_id) as s:
        assert s.scalar(select(func.count()).select_from(DeviceCommand)) == 2


def test_a_hand_cleared_absence_alarm_counts_its_period_again_from_the_clearing(engine, world):
    _rule(world, {"code": "no_door2", "name": "24小时无开门", "kind": "absence", "severity": "MAJOR",
                  "target": {"devices": [world.devices["DM-301"].id]},
                  "spec": {"match": {"event": "door_opened"}, "period_s": 86400}})
    t0 = now_ms() - 2 * 86_400_000
    default_engine().sweep(engine, t0, [world.tenant_id])
    default_engine().sweep(engine, t0 + 86_401_000, [world.tenant_id])
    [alarm] = alarms_of(world)
    cleared_at = t0 + 90_000_000  # a visit: the resident is well, the door magnet's battery is flat
    with session_scope(tenant_id=world.tenant_id, actor="c1") as s:
        alarm_service.clear(session=s, alarm=s.get(Alarm, alarm.id), actor="c1", note="上门探视，老人安好",
                            now=dt.datetime.fromtimestamp(cleared_at / 1000, dt.UTC))
    default_engine().sweep(engine, cleared_at + 60_000, [world.tenant_id])
    assert len(alarms_of(world)) == 1  # not again at the next sweep
    default_engine().sweep(engine, cleared_at + 86_401_000, [world.tenant_id])
    assert [a.status for a in alarms_of(world)] == ["CLEARED_UNACK", "ACTIVE_UNACK"]


def test_rule_state_lives_in_the_database_so_another_worker_continues(engine, world):
    _rule(world, {"code": "hot3", "name": "温度过高", "kind": "threshold",
                  "target": {"device_types": ["smoke_detector"]},
                  "spec": {"field": "temperature_c", "op": ">", "value": 60, "for_s": 30}})
    t0 = now_ms() - 100_000
    send(Pipeline(engine), world, "SD-301", ts=t0, v={"temperature_c": 70})
    with session_scope(tenant_id=world.tenant_id) as s:
        state = s.scalars(select(RuleState).where(RuleState.holding.is_(True))).one()
    assert state.since_ms == t0
    send(Pipeline(engine), world, "SD-301", ts=t0 + 31_000, v={"temperature_c": 71})  # a fresh "worker"
    assert [a.type for a in alarms_of(world)] == ["hot3"]


def test_dry_run_counts_what_a_rule_would_have_fired(engine, world):
    pipe = Pipeline(engine)
    base = now_ms() - 3 * 86_400_000
    temps = [40, 65, 70, 45, 80, 30]  # above 60 three times, in two separate spells
    for k, temp in enumerate(temps):
        send(pipe, world, "SD-301", ts=base + k * 600_000, v={"temperature_c": temp})
    with session_scope(tenant_id=world.tenant_id) as s:
        result = rules.dry_run(session=s, body={"kind": "threshold", "target": {"device_types": ["smoke_detector"]},
                                                "spec": {"field": "temperature_c", "op": ">", "value": 60}})
    assert (result.fired, result.cleared) == (2, 2)
    assert result.messages == len(temps) and result.devices == 2
    assert [e["what"] for e in result.events] == ["fire", "clear", "fire", "clear"]


@pytest.mark.parametrize(("body", "field"), [
    ({"spec": {"field": "x", "op": "=~", "value": 1}}, "spec.op"),
    ({"spec": {"field": "x", "op": ">", "value": 1, "bogus": 2}}, "spec.bogus"),
    ({"actions": [{"do": "format_disk"}]}, "actions"),
    ({"target": {"device_types": ["toaster"]}}, "target.device_types"),
    ({"severity": "APOCALYPTIC"}, "severity"),
    ({"window": {"start": "25:00", "end": "06:00"}}, "window.start"),
])
def test_a_bad_rule_is_refused_naming_the_field(session, body, field):
    base = {"code": "bad", "name": "坏规则", "kind": "threshold", "target": {"device_types": ["smoke_detector"]},
            "spec": {"field": "x", "op": ">", "value": 1}}
    with pytest.raises(rules.RuleError) as err:
        rules.save_rule(session=session, body={**base, **body}, actor="t")
    assert err.value.field == field


def test_every_save_is_a_new_version_kept_whole(session):
    rule = rules.save_rule(session=session, actor="a", body={
        "code": "hot", "name": "温度过高", "kind": "threshold", "target": {"device_types": ["smoke_detector"]},
        "spec": {"field": "temperature_c", "op": ">", "value": 60}})
    rules.save_rule(session=session, rule=rule, actor="b", body={"spec": {"field": "temperature_c", "op": ">", "value": 55}})
    rules.save_rule(session=session, rule=rule, actor="c", body={"spec": {"field": "temperature_c", "op": ">", "value": 55}})
    history = rules.versions(session=session, rule_id=rule.id)
    assert [(v.version, v.saved_by, v.body["spec"]["value"]) for v in history] == [(2, "b", 55), (1, "a", 60)]


def test_a_pending_case_with_a_bad_class_is_noted_and_does_not_block_the_others(engine, world):
    _rule(world, {"code": "hot4", "name": "温度过高", "kind": "threshold", "target": {"devices": [world.devices["SD-301"].id]},
                  "spec": {"field": "temperature_c", "op": ">", "value": 60},
                  "actions": [{"do": "alarm"}, {"do": "case", "class_code": "NOPE"}]})
    pipe = Pipeline(engine)
    send(pipe, world, "SD-301", v={"temperature_c": 70})
    send(pipe, world, "SD-302", v={"smoke": True})
    assert loop.open_pending_cases(engine) >= 2  # (other tests' tenants may have some pending too)
    with session_scope(tenant_id=world.tenant_id) as s:
        failed = s.scalars(select(AlarmEvent).where(AlarmEvent.action == "case_failed")).one()
        assert "class_code" in failed.note
        assert s.scalars(select(Alarm).where(Alarm.pending_since.is_not(None))).all() == []
    assert [c.class_code for c in cases_of(world)] == ["E0401"]


def test_a_new_tenant_never_inherits_what_was_cached_for_a_deleted_one(engine):
    """SQLite gives a new tenant the id of a deleted one when that was the highest: the rules the
    engine cached for the old tenant must not be applied to (nor stored for) the new one."""
    from tests.web.test_iot_api import _drop_tenant

    install_rules()
    old = build_world(engine)
    with session_scope(tenant_id=old.tenant_id, actor="test") as s:
        rules.install_default_rules(session=s)
    send(Pipeline(engine), old, "SD-301", v={"smoke": False})  # the engine now caches old's rules
    _drop_tenant(old.tenant_id)
    new = build_world(engine)  # with no rules of its own yet
    send(Pipeline(engine), new, "SD-301", v={"smoke": True})
    assert alarms_of(new) == []
    with session_scope(tenant_id=new.tenant_id) as s:
        assert s.scalar(select(func.count()).select_from(RuleState).where(RuleState.tenant_id == new.tenant_id)) == 0
