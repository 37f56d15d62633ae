"""S04 through the real pipeline: an object_fall → incident with floor and room, alarm, case, API."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from shequ.core import loop
from shequ.core.alarms.models import AlarmEvent
from shequ.core.iam import service as iam
from shequ.core.iot.models import Device
from shequ.core.iot.pipeline import Inbound, Pipeline, now_ms
from shequ.core.places.service import create_place
from shequ.core.rules import service as rules
from shequ.core.rules.engine import install as install_rules
from shequ.db import session_scope
from shequ.scenarios.s04_throwing.locate import G
from shequ.scenarios.s04_throwing.models import Incident
from shequ.web.app import create_app
from tests.iot_fixtures import IotWorld, alarms_of, build_world, cases_of, send
from tests.scenarios.s04_throwing.test_locate import CAL

PASSWORD = "jiangchuan2024"


@pytest.fixture
def world(engine: Engine) -> Iterator[IotWorld]:
    """The test world plus an 18-floor tower 7号 (code BT, two units) with rooms 1201/1202 of
    each unit, and its facade camera FC-1 calibrated to four columns."""
    install_rules()
    loop.install()
    w = build_world(engine)
    with session_scope(tenant_id=w.tenant_id, actor="test") as s:
        rules.install_default_rules(session=s)
        compound = w.tree.compound
        tower = create_place(session=s, kind="building", code="BT", name="7号", parent=s.merge(compound), floors=18)
        w.tower_id = tower.id  # type: ignore[attr-defined]
        for u in (1, 2):
            unit = create_place(session=s, kind="unit", code=f"BTU{u}", name=f"{u}单元", parent=tower)
            floor = create_place(session=s, kind="floor", code=f"BTU{u}F12", name="12层", parent=unit, floor_no=12)
            for n in (1201, 1202):
                create_place(session=s, kind="room", code=f"BTU{u}R{n}", name=f"{n}室", parent=floor, floor_no=12)
        cam = Device(code="FC-1", name="7号楼高空抛物摄像机", type_code="facade_camera", place_id=tower.id, attrs=CAL)
        s.add(cam)
        s.flush()
        w.devices["FC-1"] = cam
    yield w


def throw(z0: float, x0: float, late: float = 0.3) -> list[dict[str, float]]:
    out, k = [], 0
    while (z := z0 - 0.5 * G * (t := late + k * 0.04) ** 2) > 0:
        out.append({"t": round(k * 0.04, 3), "x": round(x0 + 0.2 * t + (0.06 if k % 2 else -0.06), 2),
                    "z": round(z + (0.05 if k % 3 else -0.08), 2)})
        k += 1
    return out


def incidents(world: IotWorld) -> list[Incident]:
    with session_scope(tenant_id=world.tenant_id) as s:
        return list(s.scalars(select(Incident).order_by(Incident.id)))


def test_a_throw_from_floor_12_gives_the_room_an_alarm_a_case_and_an_api_listing(engine, world):
    pipe = Pipeline(engine)
    send(pipe, world, "FC-1", "event", type="object_fall",
         data={"points": throw(34.2, 14.0), "video": "rtsp-clip://FC-1/0001.mp4"})

    [incident] = incidents(world)
    assert incident.located and (incident.floor, incident.column, incident.unit) == (12, 3, 2)
    assert incident.rooms[0] == "BTU2R1201" and incident.room_numbers[0] == 1201
    assert incident.confidence is not None and incident.confidence >= 0.8
    assert incident.building_id == world.tower_id and incident.video == "rtsp-clip://FC-1/0001.mp4"
    with session_scope(tenant_id=world.tenant_id) as s:
        room_id = s.scalar(select(Incident.place_id).where(Incident.id == incident.id))
        assert incident.room_place_ids[0] == room_id  # filed at the room itself

    [alarm] = alarms_of(world)
    assert (alarm.severity, alarm.type, alarm.scenario) == ("MAJOR", "object_fall", "S04")
    assert alarm.context["s04"]["floor"] == 12 and alarm.context["s04"]["rooms"][0] == "BTU2R1201"
    assert incident.alarm_id == alarm.id
    with session_scope(tenant_id=world.tenant_id) as s:
        notes = list(s.scalars(select(AlarmEvent.note).where(AlarmEvent.alarm_id == alarm.id)))
    assert any(re.fullmatch(r"推算 12 层 3 列 2 单元 1201 室 置信度 (0\.[89]\d|1\.00)", n) for n in notes), notes

    loop.open_pending_cases(engine)
    [case] = cases_of(world)
    assert (case.class_code, case.department, case.alarm_id) == ("S04-01", "城运中心", alarm.id)
    loop.sweep_all(engine, dt.datetime.now(dt.UTC))
    assert incidents(world)[0].case_id == case.id

    # the API: floor, column, rooms, confidence; filters by device, building and period
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        user = iam.create_user(session=s, username="ops1", password=PASSWORD, role="dispatcher")
        token = iam.create_api_token(session=s, user=user, name="t", days=1)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app()) as client:
        body = client.get("/api/v1/throwing/incidents", headers=auth).json()
        assert body["total"] == 1
        [item] = body["items"]
        assert (item["floor"], item["column"], item["rooms"][0], item["device"]) == (12, 3, "BTU2R1201", "FC-1")
        assert item["building"] == world.tower_id and 0.8 <= item["confidence"] <= 1
        hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
        for query, total in [({"device": "FC-1"}, 1), ({"building": str(world.tower_id)}, 1),
                             ({"building": "BT", "start": hour_ago}, 1), ({"end": hour_ago}, 0),
                             ({"building": str(world.tree.building.id)}, 0)]:
            assert client.get("/api/v1/throwing/incidents", params=query, headers=auth).json()["total"] == total, query
        for query, field in [({"start": "yesterday"}, "start"), ({"device": "NOPE"}, "device"),
                             ({"building": "999999"}, "building"),
                             ({"start": hour_ago, "end": "2000-01-01T00:00:00+08:00"}, "end")]:
            response = client.get("/api/v1/throwing/incidents", params=query, headers=auth)
            assert response.status_code == 422 and response.json()["errors"][0]["field"] == field, query


def test_a_bad_point_list_does_not_sink_the_batch_and_is_recorded_as_not_located(engine, world):
    pipe = Pipeline(engine)
    good = {"id": "ok-1", "ts": now_ms(), "type": "object_fall", "data": {"points": throw(25.0, 3.0)}}
    bad = {"id": "bad-1", "ts": now_ms(), "type": "object_fall",
           "data": {"points": [{"t": 0, "x": 1}, "junk"], "video": "clip"}}
    not_array = {"id": "bad-2", "ts": now_ms(), "type": "object_fall", "data": {"points": "many"}}
    result = pipe.process([Inbound(json.dumps(m).encode(), "event", world.tenant_code, "FC-1")
                           for m in (good, bad, not_array)])
    # the message schema checks only that points is an array: a string is a dead letter
    assert [o.status for o in result.outcomes] == ["accepted", "accepted", "dead"]
    assert result.outcomes[2].reason == "schema"
    located, refused = incidents(world)
    assert located.located and located.floor == 9  # 25 m: floor 9 spans 24–27 m
    assert not refused.located and refused.floor is None and refused.reason == "points: points[0].z is missing"
    # the camera's report stands: one alarm (counted twice) and the refusal on its timeline
    [alarm] = alarms_of(world)
    assert alarm.count == 2 and refused.alarm_id == alarm.id
    with session_scope(tenant_id=world.tenant_id) as s:
        notes = list(s.scalars(select(AlarmEvent.note).where(AlarmEvent.alarm_id == alarm.id)))
    assert any("无法推算抛物位置" in n and "points[0].z is missing" in n for n in notes)
