"""S02 through the real pipeline: an elevator camera's e-bike events → doors held, voice warning,
alarm and texts; released when it leaves; a case after three in a day; the ledger and verdicts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from shequ.core import loop
from shequ.core.alarms.models import AlarmEvent
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot.models import Device
from shequ.core.iot.pipeline import Pipeline, now_ms
from shequ.core.notify.models import Notification, OutboundMessage
from shequ.core.registry.models import Facility
from shequ.core.rules import service as rules
from shequ.core.rules.engine import default_engine
from shequ.db import session_scope
from shequ.scenarios.s02_elevator import service
from shequ.scenarios.s02_elevator.models import Detection
from tests.iot_fixtures import IotWorld, alarms_of, build_world, cases_of, commands_of, send

CAM = "EC-21"
PASSWORD = "jiangchuan2024"


@pytest.fixture
def world(engine: Engine) -> Iterator[IotWorld]:
    """A committed tenant with an elevator (facility) and its camera at unit 1, the default rules,
    and a property and a committee worker of that compound/committee with phones."""
    loop.install()  # the rule engine, the scenarios' handlers (S02's on_batch) and the listeners
    w = build_world(engine)
    with session_scope(tenant_id=w.tenant_id, actor="test") as s:
        lift = Facility(kind="elevator", code="DT00001", name="12号1单元1号电梯", place_id=w.tree.unit.id)
        s.add(lift)
        s.flush()
        cam = Device(code=CAM, name="1号电梯摄像机", type_code="elevator_camera", place_id=w.tree.unit.id,
                     facility_id=lift.id)
        s.add(cam)
        s.flush()
        w.devices[CAM] = cam
        iam.create_user(session=s, username="wuye", password=PASSWORD, role="property",
                        scope={"compounds": [w.tree.compound.id], "phone": "13912340001"})
        iam.create_user(session=s, username="juwei", password=PASSWORD, role="committee",
                        scope={"committees": [w.tree.committee.id], "phone": "13912340002"})
        rules.install_default_rules(session=s)
    yield w


def _detected(pipe: Pipeline, w: IotWorld, ts: int, confidence: float = 0.92) -> None:
    send(pipe, w, CAM, "event", ts=ts, type="ebike_detected",
         data={"confidence": confidence, "snapshot": f"oss://snap/{ts}.jpg"})


def _left(pipe: Pipeline, w: IotWorld, ts: int) -> None:
    send(pipe, w, CAM, "event", ts=ts, type="ebike_left", data={})


def _ledger(w: IotWorld) -> list[Detection]:
    with session_scope(tenant_id=w.tenant_id) as s:
        return list(s.scalars(select(Detection).order_by(Detection.id)))


def _mine(w: IotWorld, type_: str) -> list:
    return [a for a in alarms_of(w) if a.type == type_]


def test_a_detection_holds_the_doors_warns_alarms_and_tells_property_and_committee(engine, world):
    pipe = Pipeline(engine)
    t0 = now_ms() - 60_000
    _detected(pipe, world, t0)

    cam_id = world.devices[CAM].id
    cmds = [(c.device_id, c.name, c.status) for c in commands_of(world)]
    # both commands went to this camera in the batch's linkage and down the wire right after commit
    assert cmds == [(cam_id, "hold_doors", "sent"), (cam_id, "voice_warning", "sent")]
    assert commands_of(world)[0].args == {"seconds": 300}
    [alarm] = _mine(world, "s02_ebike")
    assert (alarm.severity, alarm.status, alarm.scenario) == ("MAJOR", "ACTIVE_UNACK", "S02")
    assert alarm.device_id == cam_id and alarm.building_id == world.tree.building.id

    with session_scope(tenant_id=world.tenant_id) as s:
        users = {u.username: u.id for u in s.scalars(select(User))}
        told = {n.user_id for n in s.scalars(select(Notification).where(Notification.ref == f"alarm:{alarm.id}"))}
        texts = {(m.user_id, m.channel) for m in s.scalars(select(OutboundMessage))}
    assert {users["wuye"], users["juwei"]} <= told  # in-app, as staff of the alarm's area
    assert (users["wuye"], "sms") in texts and (users["juwei"], "sms") in texts  # the rule's notify

    [row] = _ledger(world)
    assert row.blocked and row.alarm_id == alarm.id and row.confidence == 0.92
    assert row.doors_held_at is not None and row.released_at is None and row.left_at is None
    assert row.facility_id is not None and row.building_id == world.tree.building.id
    assert row.detected_at == dt.datetime.fromtimestamp(t0 / 1000, dt.UTC)
    assert row.snapshot == f"oss://snap/{t0}.jpg" and row.verdict == "pending"


def test_the_ebike_leaving_releases_the_doors_and_clears_the_alarm(engine, world):
    pipe = Pipeline(engine)
    t0 = now_ms() - 60_000
    _detected(pipe, world, t0)
    _left(pipe, world, t0 + 40_000)

    assert [c.name for c in commands_of(world)] == ["hold_doors", "voice_warning", "release_doors"]
    [alarm] = _mine(world, "s02_ebike")
    assert alarm.status == "CLEARED_UNACK" and alarm.cleared_by == "rule:s02_ebike"
    [row] = _ledger(world)
    assert row.left_at == dt.datetime.fromtimestamp((t0 + 40_000) / 1000, dt.UTC)
    assert row.released_at is not None and row.released_by == "rule:s02_ebike"
    with session_scope(tenant_id=world.tenant_id) as s:
        assert service.held_now(session=s) == 0


def test_three_detections_in_a_day_at_one_elevator_open_a_case(engine, world):
    pipe = Pipeline(engine)
    t0 = now_ms() - 3_000_000
    for k in range(2):
        _detected(pipe, world, t0 + k * 600_000)
        _left(pipe, world, t0 + k * 600_000 + 30_000)
    assert _mine(world, "s02_ebike_repeat") == []
    _detected(pipe, world, t0 + 1_200_000)
    [repeat] = _mine(world, "s02_ebike_repeat")
    assert repeat.severity == "MAJOR"
    loop.open_pending_cases(engine)  # (other tests' tenants may have cases pending too)
    [case] = cases_of(world)
    assert (case.class_code, case.alarm_id, case.department) == ("S02-01", repeat.id, "城运中心")
    assert len(_ledger(world)) == 3
    # each of the three held the doors again: the rule went quiet after each departure
    assert [c.name for c in commands_of(world)].count("hold_doors") == 3


def test_a_low_confidence_detection_blocks_nothing_but_is_kept_for_review(engine, world):
    pipe = Pipeline(engine)
    for k in range(3):  # three unsure detections (a pram?) within the day
        _detected(pipe, world, now_ms() - 90_000 + k * 30_000, confidence=0.41)
    assert commands_of(world) == []
    assert _mine(world, "s02_ebike") == [] and _mine(world, "s02_ebike_repeat") == []  # nor a repeat
    rows = _ledger(world)
    assert len(rows) == 3
    assert all(not r.blocked and r.alarm_id is None and r.doors_held_at is None for r in rows)


def test_marking_a_detection_false_clears_its_alarm_releases_the_doors_and_lowers_precision(engine, world):
    pipe = Pipeline(engine)
    t0 = now_ms() - 600_000
    _detected(pipe, world, t0)
    _left(pipe, world, t0 + 30_000)
    _detected(pipe, world, t0 + 120_000, confidence=0.68)  # a pram, still in the car
    first, second = _ledger(world)
    start, end = service.period(start=None, end=None)
    with session_scope(tenant_id=world.tenant_id, actor="wuye") as s:
        service.set_verdict(session=s, detection=s.get(Detection, first.id), verdict="confirmed", actor="wuye")
    with session_scope(tenant_id=world.tenant_id, actor="wuye") as s:
        [cam] = service.stats(session=s, start=start, end=end).cameras
        assert (cam.confirmed, cam.false, cam.pending, cam.precision) == (1, 0, 1, 1.0)
        service.set_verdict(session=s, detection=s.get(Detection, second.id), verdict="false", reason="pram",
                            note="推婴儿车的住户", actor="wuye")
    with session_scope(tenant_id=world.tenant_id) as s:
        st = service.stats(session=s, start=start, end=end)
        [cam] = st.cameras
        assert (cam.confirmed, cam.false, cam.precision) == (1, 1, 0.5)
        assert st.total == 1 and st.false_reasons == {"pram": 1}
        row = s.get(Detection, second.id)
        assert row is not None and (row.verdict, row.reason, row.verdict_by) == ("false", "pram", "wuye")
        assert row.released_by == "wuye"
        notes = [e.note for e in s.scalars(select(AlarmEvent).where(AlarmEvent.alarm_id == row.alarm_id,
                                                                     AlarmEvent.action == "cleared"))]
    alarm = _mine(world, "s02_ebike")[-1]
    assert alarm.status == "CLEARED_UNACK" and alarm.cleared_by == "wuye"
    assert notes and "婴儿车" in notes[0]
    last = commands_of(world)[-1]
    assert (last.name, last.actor, last.status) == ("release_doors", "wuye", "sent")

    # the rule is quiet again: the next e-bike holds the doors as the first did
    _detected(pipe, world, t0 + 300_000)
    assert commands_of(world)[-2].name == "hold_doors"
    assert _mine(world, "s02_ebike")[-1].status == "ACTIVE_UNACK"


def test_without_a_departure_the_rule_releases_the_doors_after_its_quiet_time(engine, world):
    pipe = Pipeline(engine)
    t0 = now_ms() - 10_000
    _detected(pipe, world, t0)
    with session_scope(tenant_id=world.tenant_id) as s:
        assert service.held_now(session=s) == 1
    default_engine().sweep(engine, t0 + 301_000, [world.tenant_id])
    assert commands_of(world)[-1].name == "release_doors"
    assert _mine(world, "s02_ebike")[0].status == "CLEARED_UNACK"
    assert service.sweep(engine) >= 1  # the ledger learns of the release made outside a batch
    [row] = _ledger(world)
    assert row.released_by == "rule:s02_ebike" and row.left_at is None
    with session_scope(tenant_id=world.tenant_id) as s:
        assert service.held_now(session=s) == 0


def test_remote_clearing_releases_the_doors_and_clears_the_alarm(engine, world):
    pipe = Pipeline(engine)
    _detected(pipe, world, now_ms() - 20_000)
    with session_scope(tenant_id=world.tenant_id, actor="ddy") as s:
        cam = service.get_camera(session=s, device_id=world.devices[CAM].id)
        assert cam is not None
        said = service.intercom(session=s, device=cam, text="请把电动车推出去", actor="ddy")
        done = service.remote_clear(session=s, device=cam, actor="ddy", note="现场已处置")
    assert (said.name, said.args, said.status) == ("intercom", {"text": "请把电动车推出去"}, "sent")
    assert done.released == 1 and done.command.name == "release_doors" and done.command.status == "sent"
    [alarm] = _mine(world, "s02_ebike")
    assert alarm.status == "CLEARED_UNACK" and alarm.cleared_by == "ddy"
    [row] = _ledger(world)
    assert row.released_by == "ddy"
