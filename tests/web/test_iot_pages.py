"""The device and dead-letter pages: what staff see and do in the browser (zh-CN and English)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from shequ.core.iam import service as iam
from shequ.db import session_scope
from shequ.web.app import create_app
from tests.iot_fixtures import IotWorld, build_world
from tests.web.conftest import PASSWORD, csrf_of, login
from tests.web.test_iot_api import _drop_tenant


@pytest.fixture
def world(engine: Engine) -> Iterator[IotWorld]:
    built = build_world(engine)
    with session_scope(tenant_id=built.tenant_id, actor="test") as s:
        iam.create_user(session=s, username="admin_p", password=PASSWORD, role="admin")
        iam.create_user(session=s, username="leader_p", password=PASSWORD, role="leader")
    yield built
    _drop_tenant(built.tenant_id)


@pytest.fixture
def browser(world: IotWorld) -> Iterator[TestClient]:
    with TestClient(create_app(tenant_code=world.tenant_code)) as client:
        login(client, "admin_p")
        yield client


def _ingest(client: TestClient, token: str, *messages: dict[str, object]) -> dict[str, object]:
    r = client.post("/api/v1/ingest", json={"messages": list(messages)}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_device_list_filters_by_condition(browser: TestClient, world: IotWorld) -> None:
    now = int(time.time() * 1000)
    _ingest(browser, world.tokens["SD-301"], {"kind": "telemetry", "id": "a", "ts": now, "v": {"smoke": True}})
    page = browser.get("/iot/devices")
    assert page.status_code == 200 and "SD-301" in page.text and "EC-12" in page.text
    alarm = browser.get("/iot/devices", params={"condition": "alarm"}, headers={"HX-Request": "true"})
    assert "SD-301" in alarm.text and "SD-302" not in alarm.text and "<html" not in alarm.text
    assert "告警" in alarm.text
    online = browser.get("/iot/devices", params={"online": "no", "lang": "en"})
    assert "SD-302" in online.text and "SD-301" not in online.text.split("<tbody>")[1]
    assert "Devices" in online.text


def test_detail_shows_state_history_and_rotates_the_token_once(browser: TestClient, world: IotWorld) -> None:
    dev = world.devices["SD-301"].id
    now = int(time.time() * 1000)
    _ingest(browser, world.tokens["SD-301"],
            {"kind": "telemetry", "id": "h1", "ts": now - 60_000, "v": {"temperature_c": 19.5, "smoke": False}},
            {"kind": "event", "id": "e1", "ts": now, "type": "smoke_alarm", "data": {"density_db_m": 0.3}})
    page = browser.get(f"/iot/devices/{dev}")
    assert page.status_code == 200
    assert "温度" in page.text and "℃" in page.text and "19.5" in page.text
    assert "烟雾报警" in page.text  # the event, by its label
    csrf = csrf_of(browser, f"/iot/devices/{dev}")
    rotated = browser.post(f"/iot/devices/{dev}/token", data={"csrf_token": csrf})
    match = re.search(r"data-new-token>([^<]+)<", rotated.text)
    assert match, rotated.text
    token = match.group(1)
    assert token not in browser.get(f"/iot/devices/{dev}").text  # shown once
    assert _ingest(browser, token, {"kind": "telemetry", "id": "h2", "ts": now, "v": {"smoke": False}})["accepted"] == 1
    # without the CSRF token nothing happens
    assert browser.post(f"/iot/devices/{dev}/token/revoke").status_code == 403


def test_maintenance_toggle_and_leader_sees_no_controls(browser: TestClient, world: IotWorld) -> None:
    dev = world.devices["SD-302"].id
    csrf = csrf_of(browser, f"/iot/devices/{dev}")
    r = browser.post(f"/iot/devices/{dev}/maintenance", data={"csrf_token": csrf, "on": "1", "note": "检修"},
                     follow_redirects=True)
    assert 'data-condition="maintenance"' in r.text and "检修" in r.text
    with TestClient(browser.app) as leader:
        login(leader, "leader_p")
        page = leader.get(f"/iot/devices/{dev}")
        assert page.status_code == 200 and "/token" not in page.text and "/maintenance" not in page.text
        assert leader.get("/iot/dead-letters").status_code == 403


def test_dead_letter_page_escapes_the_payload(browser: TestClient, world: IotWorld) -> None:
    now = int(time.time() * 1000)
    _ingest(browser, world.tokens["DM-301"],
            {"kind": "telemetry", "id": "<script>x</script>", "ts": now, "v": {"bogus": 1}})
    listing = browser.get("/iot/dead-letters", params={"reason": "schema"})
    assert listing.status_code == 200 and "DM-301" in listing.text and 'data-reason="schema"' in listing.text
    letter = re.search(r'href="/iot/dead-letters/(\d+)"', listing.text)
    assert letter
    page = browser.get(f"/iot/dead-letters/{letter.group(1)}")
    assert "&lt;script&gt;" in page.text and "<script>x" not in page.text
