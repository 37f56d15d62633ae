"""The brain's pages through the app: who may open the screen, its JSON data, its live stream and
its command actions (dispatch, escalate, supervise, broadcast a notice) with their refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.notify.models import Notice
from shequ.platforms.brain import routes as brain_routes
from tests.platforms.brain.world import World, build
from tests.web.conftest import PASSWORD, Registry, login


@pytest.fixture
def world(session: Session, registry: Registry) -> World:
    return build(session, registry.north, registry.south, registry.people)


def user(session: Session, role: str, **scope: Any) -> str:
    name = f"brain_{role}"
    iam.create_user(session=session, username=name, password=PASSWORD, role=role, scope=scope or None)
    return name


def csrf(client: TestClient) -> dict[str, str]:
    token = client.cookies.get("shequ_csrf")
    assert token, "no CSRF cookie yet"
    return {"X-CSRF-Token": token}


def errors(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


# --- the page --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["leader", "dispatcher", "admin"])
def test_the_screen_opens_for_the_command_roles(client: TestClient, session: Session, world: World,
                                                 role: str) -> None:
    login(client, user(session, role, **({"department": "城运中心"} if role == "dispatcher" else {})))
    page = client.get("/brain")
    assert page.status_code == 200
    text = page.text
    assert "<title>社区大脑" in text and 'id="brain-map"' in text
    assert 'data-counter="active">2<' in text  # a1 and a2 are active
    assert 'data-counter="population">4<' in text
    assert "/static/brain/brain.js" in text and "/static/vendor/maplibre-gl-csp.js" in text
    assert "<script>" not in text and "style=" not in text  # the CSP refuses inline code and styles
    assert 'class="topbar"' not in text  # a screen of its own, without the desk's menu


def test_the_screen_speaks_english_on_request(browser: TestClient, world: World) -> None:
    page = browser.get("/brain?lang=en")
    assert page.status_code == 200
    assert "Community brain" in page.text and "Unacked" in page.text and "社区大脑" not in page.text


def test_a_resident_may_not_open_the_screen(client: TestClient, session: Session, world: World,
                                            registry: Registry) -> None:
    login(client, user(session, "resident", person_id=registry.people["赵敏"].id))
    assert client.get("/brain").status_code == 403
    assert client.get("/brain/data/summary").status_code == 403


def test_the_screen_needs_a_signed_in_user(client: TestClient) -> None:
    answer = client.get("/brain", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


# --- data ------------------------------------------------------------------------------------


def test_the_summary_and_the_layers(browser: TestClient, world: World) -> None:
    summary = browser.get("/brain/data/summary").json()
    assert summary["alarms"]["active"] == 2 and summary["population"]["total"] == 4
    assert summary["devices"]["online"] == 2 and summary["cases"]["open"] == 4
    layer = browser.get("/brain/data/buildings.geojson")
    assert layer.headers["content-type"].startswith("application/geo+json")
    states = {f["id"]: f["properties"]["state"] for f in layer.json()["features"]}
    assert states == {world.north.building.id: "alarm", world.south.building.id: "offline"}
    areas = browser.get("/brain/data/areas.geojson").json()
    kinds = sorted(f["properties"]["kind"] for f in areas["features"])
    assert kinds == ["committee", "committee", "compound", "compound", "grid", "grid"]
    bad = browser.get("/brain/data/buildings.geojson", params={"at": "yesterday"})
    assert bad.status_code == 422 and errors(bad) == ["at"]
    alarms = browser.get("/brain/data/alarms").json()["items"]
    assert [a["id"] for a in alarms] == [world.alarms["a1"].id, world.alarms["a2"].id]
    cases = browser.get("/brain/data/cases").json()["items"]
    assert {c["id"] for c in cases} == {c.id for c in world.cases.values()}
    c3 = next(c for c in cases if c["id"] == world.cases["c3"].id)
    assert "dispatch" in c3["actions"] and "escalate" in c3["actions"]
    c4 = next(c for c in cases if c["id"] == world.cases["c4"].id)
    assert c4["stage"] == "reported" and "dispatch" in c4["actions"]  # registered and dispatched at once
    c1 = next(c for c in cases if c["id"] == world.cases["c1"].id)
    assert c1["stage"] == "handled" and "dispatch" not in c1["actions"]


def test_a_place_replayed_and_one_out_of_scope(client: TestClient, session: Session, world: World) -> None:
    login(client, user(session, "committee", committees=[world.north.committee.id]))
    panel = client.get(f"/brain/data/places/{world.north.building.id}")
    assert panel.status_code == 200
    body = panel.json()
    assert body["state"] == "alarm" and [c["id"] for c in body["children"]] == [world.north.floor.id]
    past = client.get(f"/brain/data/places/{world.north.building.id}",
                      params={"at": "2026-06-01T08:30:00+08:00"}).json()
    assert past["state"] == "ok"
    assert client.get(f"/brain/data/places/{world.south.building.id}").status_code == 404
    assert client.get("/brain/data/places/2147483000").status_code == 404
    assert client.get(f"/brain/data/cases/{world.cases['c4'].id}").status_code == 404
    assert client.get("/brain/data/summary").json()["alarms"]["active"] == 1


# --- the stream ------------------------------------------------------------------------------


def test_the_stream_sends_a_summary_and_the_alarms(browser: TestClient, world: World,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert browser.get("/brain/stream").status_code == 406
    monkeypatch.setattr(brain_routes, "STREAM_MAX_S", 0.0)  # the first frames, then the end
    answer = browser.get("/brain/stream", headers={"Accept": "text/event-stream"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    frames = {}
    for block in answer.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            frames[lines["event"]] = json.loads(lines["data"])
    assert set(frames) == {"summary", "alarms"}
    # the stream reads committed data through sessions of its own (this test's data is not)
    assert isinstance(frames["summary"]["alarms"]["active"], int)
    assert {"population", "devices", "alarms", "cases", "on_time", "trends", "twin"} <= set(frames["summary"])
    assert isinstance(frames["alarms"]["items"], list)


# --- command actions -------------------------------------------------------------------------


def test_dispatch_escalate_and_supervise(browser: TestClient, world: World) -> None:
    c3, c4 = world.cases["c3"], world.cases["c4"]
    done = browser.post(f"/brain/actions/cases/{c3.id}/dispatch", json={"department": "城建中心"},
                        headers=csrf(browser))
    assert done.status_code == 200, done.text
    assert done.json()["case"]["stage"] == "dispatched" and done.json()["case"]["department"] == "城建中心"
    reported = browser.post(f"/brain/actions/cases/{c4.id}/dispatch", json={"department": "城运中心"},
                            headers=csrf(browser))
    assert reported.status_code == 200 and reported.json()["case"]["stage"] == "dispatched"  # registered first
    up = browser.post(f"/brain/actions/cases/{c3.id}/escalate", json={"note": "领导关注"}, headers=csrf(browser))
    assert up.status_code == 200 and up.json()["case"]["escalation_level"] == 1
    watched = browser.post(f"/brain/actions/cases/{c3.id}/supervise", data={"csrf_token": csrf(browser)["X-CSRF-Token"]})
    assert watched.status_code == 200 and watched.json()["case"]["supervised"] is True


def test_a_bad_command_names_its_field(browser: TestClient, world: World) -> None:
    c3 = world.cases["c3"]
    for body, field in (({}, "department"), ({"department": "不存在的部门"}, "department"),
                        ({"department": "城运中心", "note": 5}, "note")):
        answer = browser.post(f"/brain/actions/cases/{c3.id}/dispatch", json=body, headers=csrf(browser))
        assert answer.status_code == 422 and errors(answer) == [field], answer.text
    closed = world.cases["c1"]  # handled: no dispatch from that stage
    answer = browser.post(f"/brain/actions/cases/{closed.id}/dispatch", json={"department": "城运中心"},
                          headers=csrf(browser))
    assert answer.status_code == 422 and errors(answer) == ["action"]
    assert browser.post(f"/brain/actions/cases/{c3.id}/dispatch", json={"department": "城运中心"}).status_code == 403


def test_a_committee_user_cannot_dispatch(client: TestClient, session: Session, world: World) -> None:
    login(client, user(session, "committee", committees=[world.north.committee.id]))
    own = client.post(f"/brain/actions/cases/{world.cases['c3'].id}/dispatch", json={"department": "城运中心"},
                      headers=csrf(client))
    assert own.status_code == 403
    foreign = client.post(f"/brain/actions/cases/{world.cases['c4'].id}/dispatch",
                          json={"department": "城运中心"}, headers=csrf(client))
    assert foreign.status_code == 404  # out of scope: "not found", like a missing case
    assert world.cases["c3"].stage == "registered"


def test_a_notice_is_broadcast(browser: TestClient, session: Session, world: World) -> None:
    sent = browser.post("/brain/actions/notices", headers=csrf(browser),
                        json={"title": "防汛通知", "body": "今晚暴雨，请关好门窗。", "audience": "staff",
                              "committee_id": str(world.north.committee.id)})
    assert sent.status_code == 200, sent.text
    notice = session.get(Notice, sent.json()["notice"]["id"])
    assert notice is not None and notice.title == "防汛通知" and notice.committee_id == world.north.committee.id
    assert sent.json()["notice"]["recipients"] >= 1  # the admin at least
    whole = browser.post("/brain/actions/notices", headers=csrf(browser), json={"title": "全街道演练"})
    assert whole.status_code == 200 and whole.json()["notice"]["committee_id"] is None
    for body, field in (({"title": ""}, "title"), ({"title": "x", "audience": "pets"}, "audience"),
                        ({"title": "x", "committee_id": "abc"}, "committee_id"),
                        ({"title": "x", "committee_id": str(world.north.building.id)}, "committee_id")):
        answer = browser.post("/brain/actions/notices", headers=csrf(browser), json=body)
        assert answer.status_code == 422 and errors(answer) == [field], answer.text


def test_a_notice_needs_the_permission(client: TestClient, session: Session, world: World) -> None:
    login(client, user(session, "grid_worker", grids=[world.north.grid.id]))
    answer = client.post("/brain/actions/notices", headers=csrf(client), json={"title": "网格员的通知"})
    assert answer.status_code == 403
