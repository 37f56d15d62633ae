"""S02's pages and API: the ledger with statistics and precision, verdicts, intercom and remote
clearing; bad input answered 422 naming the field; roles and scopes; a switched-off scenario 404."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iot.models import Device, DeviceCommand
from shequ.core.registry.models import Facility, Person
from shequ.core.registry.validators import make_id_number
from shequ.core.rules import service as rules
from shequ.scenarios.s02_elevator import service
from shequ.scenarios.s02_elevator.models import Detection
from tests.factories import Tree, place_tree
from tests.web.conftest import PASSWORD, login

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@dataclass
class Lift:
    tree: Tree
    camera: Device
    other: Tree
    other_camera: Device
    detections: list[Detection]


def _camera(session: Session, tree: Tree, code: str, name: str) -> Device:
    lift = Facility(kind="elevator", code=f"DT{code}", name=name, place_id=tree.unit.id)
    session.add(lift)
    session.flush()
    cam = Device(code=code, name=f"{name}摄像机", type_code="elevator_camera", place_id=tree.unit.id,
                 facility_id=lift.id)
    session.add(cam)
    session.flush()
    return cam


@pytest.fixture
def lift(session: Session) -> Lift:
    """Two compounds with an elevator camera each; detections recorded as the change handler does."""
    rules.install_default_rules(session=session)
    tree = place_tree(session)
    other = place_tree(session, tag="Z", lon=121.45, committee_name="南街居委会")
    cam = _camera(session, tree, "EC-1", "12号1号电梯")
    far = _camera(session, other, "EC-9", "南街9号电梯")
    today = dt.datetime.now(SHANGHAI).replace(hour=19, minute=5, second=0, microsecond=0)
    if today > dt.datetime.now(SHANGHAI):
        today -= dt.timedelta(days=1)
    ms = int(today.timestamp() * 1000)
    events = [(cam.id, ms, "ebike_detected", {"confidence": 0.9, "snapshot": "oss://a.jpg"}),
              (cam.id, ms + 30_000, "ebike_left", {}),
              (cam.id, ms + 600_000, "ebike_detected", {"confidence": 0.8}),
              (cam.id, ms + 700_000, "ebike_detected", {"confidence": 0.3}),
              (far.id, ms, "ebike_detected", {"confidence": 0.95})]
    rows = service.record_events(session=session, events=events)
    session.flush()
    return Lift(tree, cam, other, far, rows)


def _user(session: Session, client: TestClient, role: str, **scope: object) -> dict[str, str]:
    user = iam.create_user(session=session, username=f"u_{role}", password=PASSWORD, role=role, scope=dict(scope))
    token = iam.create_api_token(session=session, user=user, name="t", days=1)
    return {"Authorization": f"Bearer {token}"}


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_the_ledger_page_shows_detections_statistics_and_precision(client, admin, lift):
    login(client)
    page = client.get("/elevator")
    assert page.status_code == 200
    html = page.text
    for d in lift.detections:
        assert f'data-detection="{d.id}"' in html
    assert '<g data-hour="19" data-count="3">' in html  # two blocked here, one in the south; low one aside
    assert 'data-total="3"' in html and "低于阈值 1" in html
    assert "12号1号电梯" in html and "南街9号电梯" in html
    english = client.get("/elevator?lang=en")
    assert "Detection ledger" in english.text and "Precision" in english.text
    only = client.get(f"/elevator?device_id={lift.other_camera.id}")
    assert f'data-detection="{lift.detections[0].id}"' not in only.text


def test_a_verdict_from_the_detail_page_changes_the_precision_shown(client, admin, lift, session):
    login(client)
    first = lift.detections[0]
    page = client.get(f"/elevator/detections/{first.id}")
    assert page.status_code == 200 and "12号1号电梯" in page.text
    csrf = _csrf(page.text)
    done = client.post(f"/elevator/detections/{first.id}/verdict", data={"csrf_token": csrf, "verdict": "false",
                                                                       "reason": "wheelchair"},
                       follow_redirects=False)
    assert done.status_code == 303
    shown = client.get(done.headers["location"])
    assert 'data-verdict="false"' in shown.text and "轮椅" in shown.text
    second = lift.detections[1]
    client.post(f"/elevator/detections/{second.id}/verdict", data={"csrf_token": csrf, "verdict": "confirmed"})
    ledger = client.get("/elevator").text
    assert f'data-camera="{lift.camera.id}" data-precision="50%"' in ledger
    refused = client.post(f"/elevator/detections/{second.id}/verdict", data={"csrf_token": csrf, "verdict": "false"})
    assert refused.status_code == 422 and 'data-error="reason"' in refused.text


def test_api_lists_filters_and_counts(client, admin, lift, session):
    auth = _user(session, client, "dispatcher")
    got = client.get("/api/v1/elevator/detections", headers=auth).json()
    assert got["total"] == 4
    blocked = client.get("/api/v1/elevator/detections?blocked=false", headers=auth).json()
    assert [d["confidence"] for d in blocked["items"]] == [0.3]
    one = client.get(f"/api/v1/elevator/detections?device_id={lift.camera.id}&verdict=pending", headers=auth).json()
    assert one["total"] == 3 and {d["elevator"] for d in one["items"]} == {"12号1号电梯"}
    stats = client.get("/api/v1/elevator/stats", headers=auth).json()
    assert stats["total"] == 3 and stats["below_threshold"] == 1 and stats["by_hour"][19] == 3
    assert sum(stats["by_hour"]) == 3 and len(stats["by_hour"]) == 24
    assert {b["building_id"]: b["count"] for b in stats["by_building"]} == {lift.tree.building.id: 2,
                                                                             lift.other.building.id: 1}
    assert all(c["precision"] is None for c in stats["cameras"])
    first = lift.detections[0]
    marked = client.post(f"/api/v1/elevator/detections/{first.id}/verdict", headers=auth,
                         json={"verdict": "confirmed"})
    assert marked.status_code == 200 and marked.json()["verdict_by"] == "u_dispatcher"
    cams = {c["device_id"]: c for c in client.get("/api/v1/elevator/stats", headers=auth).json()["cameras"]}
    assert cams[lift.camera.id]["precision"] == 1.0


@pytest.mark.parametrize(("path", "body", "field"), [
    ("verdict", {"verdict": "false"}, "reason"),
    ("verdict", {"verdict": "maybe"}, "verdict"),
    ("verdict", {"verdict": "confirmed", "reason": "pram"}, "reason"),
    ("verdict", {"verdict": "false", "reason": "pram", "note": "x" * 301}, "note"),
])
def test_bad_verdicts_are_refused_naming_the_field(client, admin, lift, session, path, body, field):
    auth = _user(session, client, "dispatcher")
    got = client.post(f"/api/v1/elevator/detections/{lift.detections[0].id}/{path}", headers=auth, json=body)
    assert got.status_code == 422
    assert field in {e["field"].split(".")[-1] for e in got.json()["errors"]}


def test_bad_filters_and_commands_are_refused_naming_the_field(client, admin, lift, session):
    auth = _user(session, client, "dispatcher")
    for query, field in (("start=2026-13-01", "start"), ("start=2026-03-01&end=2026-02-01", "start"),
                         ("verdict=odd", "verdict")):
        got = client.get(f"/api/v1/elevator/detections?{query}", headers=auth)
        assert got.status_code == 422 and got.json()["errors"][0]["field"].endswith(field), query
    assert client.get("/api/v1/elevator/stats?end=tomorrow", headers=auth).status_code == 422
    empty = client.post(f"/api/v1/elevator/cameras/{lift.camera.id}/intercom", headers=auth, json={"text": ""})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"].endswith("text")
    login(client)
    page = client.get("/elevator?start=yesterday")
    assert page.status_code == 422 and 'data-error="start"' in page.text


def test_intercom_and_remote_clearing_by_an_operator(client, admin, lift, session):
    auth = _user(session, client, "dispatcher")
    said = client.post(f"/api/v1/elevator/cameras/{lift.camera.id}/intercom", headers=auth,
                       json={"text": "请将电动车推出电梯"})
    assert said.status_code == 200
    assert (said.json()["name"], said.json()["args"], said.json()["status"]) == (
        "intercom", {"text": "请将电动车推出电梯"}, "sent")
    cleared = client.post(f"/api/v1/elevator/cameras/{lift.camera.id}/clear", headers=auth, json={"note": "已处置"})
    assert cleared.status_code == 200 and cleared.json()["command"]["name"] == "release_doors"
    names = [c.name for c in session.scalars(select(DeviceCommand).where(DeviceCommand.device_id == lift.camera.id)
                                             .order_by(DeviceCommand.id))]
    assert names == ["intercom", "release_doors"]
    smoke = Device(code="SD-1", name="烟感", type_code="smoke_detector", place_id=lift.tree.room.id)
    session.add(smoke)
    session.flush()
    assert client.post(f"/api/v1/elevator/cameras/{smoke.id}/intercom", headers=auth,
                       json={"text": "x"}).status_code == 404


def test_roles_and_scopes(client, admin, lift, session):
    person = Person(name="住户甲", sex="F", birth_date=dt.date(1980, 1, 2), residence_type="registered",
                    id_number=make_id_number("310112", dt.date(1980, 1, 2), 201), place_id=lift.tree.room.id)
    session.add(person)
    session.flush()
    resident = _user(session, client, "resident", person_id=person.id)
    assert client.get("/api/v1/elevator/detections", headers=resident).status_code == 403
    leader = _user(session, client, "leader")
    assert client.get("/api/v1/elevator/stats", headers=leader).status_code == 200
    first = lift.detections[0]
    assert client.post(f"/api/v1/elevator/detections/{first.id}/verdict", headers=leader,
                       json={"verdict": "confirmed"}).status_code == 403
    prop = _user(session, client, "property", compounds=[lift.tree.compound.id])
    mine = client.get("/api/v1/elevator/detections", headers=prop).json()
    assert mine["total"] == 3  # not the south compound's
    far = next(d for d in lift.detections if d.device_id == lift.other_camera.id)
    assert client.get(f"/api/v1/elevator/detections/{far.id}", headers=prop).status_code == 404
    assert client.post(f"/api/v1/elevator/detections/{first.id}/verdict", headers=prop,
                       json={"verdict": "false", "reason": "mobility_scooter"}).status_code == 200
    assert client.post(f"/api/v1/elevator/cameras/{lift.camera.id}/intercom", headers=prop,
                       json={"text": "请推出电梯"}).status_code == 403
    login(client, "u_resident")
    assert client.get("/elevator").status_code == 403


def test_a_switched_off_scenario_answers_404(client, admin, lift, session):
    tenant = session.info["tenant"]
    tenant.settings = {**(tenant.settings or {}), "scenarios": ["S01"]}
    session.flush()
    auth = _user(session, client, "dispatcher")
    assert client.get("/api/v1/elevator/detections", headers=auth).status_code == 404
    login(client)
    assert client.get("/elevator").status_code == 404
    assert "/elevator" not in client.get("/alarms").text


def test_the_brain_tile(session, lift):
    tile = service.tile(session=session, lang="zh-CN")
    figures = dict(tile.figures)
    assert tile.link == "/elevator" and figures["30日准确率"] == "—"
    assert int(figures["今日识别"]) in (0, 3)  # the fixture's detections are today's or yesterday's at 19:05
    service.set_verdict(session=session, detection=lift.detections[0], verdict="confirmed", actor="t")
    service.set_verdict(session=session, detection=lift.detections[1], verdict="false", reason="other", actor="t")
    assert dict(service.tile(session=session, lang="en").figures)["Precision (30 d)"] == "50%"
