"""S03 pages and API: the sites with their figures, a site's sessions, scope and bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iot.models import Device, DeviceState
from shequ.core.registry.models import Facility
from shequ.scenarios.s03_charging.models import ChargingSession
from tests.factories import place_tree
from tests.web.conftest import PASSWORD, login


@pytest.fixture
def site(session: Session) -> Facility:
    tree = place_tree(session)
    fac = Facility(kind="charging_station", code="CS-W1", name="鹤庆新村非机动车充电棚1", place_id=tree.compound.id,
                   capacity=10, attrs={"sprinkler": True})
    session.add(fac)
    session.flush()
    pile = Device(code="CP-W1", name="1号充电桩", type_code="charging_pile", place_id=tree.compound.id,
                  facility_id=fac.id, attrs={"ports": 10})
    box = Device(code="DB-W1", name="配电箱", type_code="distribution_box", place_id=tree.compound.id,
                 facility_id=fac.id)
    sprinkler = Device(code="SP-W1", name="自动喷淋", type_code="sprinkler", place_id=tree.compound.id,
                       facility_id=fac.id)
    session.add_all([pile, box, sprinkler])
    session.flush()
    session.add_all([
        DeviceState(device_id=pile.id, tenant_id=fac.tenant_id, attrs={"charging": True}, online=True, condition="ok"),
        DeviceState(device_id=box.id, tenant_id=fac.tenant_id, attrs={"power_on": True}, online=True, condition="ok"),
        DeviceState(device_id=sprinkler.id, tenant_id=fac.tenant_id, attrs={"armed": True, "flowing": False},
                    online=True, condition="ok"),
    ])
    now = dt.datetime.now(dt.UTC)
    session.add_all([
        ChargingSession(device_id=pile.id, facility_id=fac.id, port=1, started_at=now - dt.timedelta(hours=5),
                        stopped_at=now - dt.timedelta(hours=1), energy_kwh=1.2, fee_fen=120, ended_by="normal",
                        place_id=tree.compound.id),
        ChargingSession(device_id=pile.id, facility_id=fac.id, port=2, started_at=now - dt.timedelta(hours=2),
                        place_id=tree.compound.id),
    ])
    session.flush()
    return fac


def test_the_sites_page_shows_live_state_and_figures(client, admin, site):
    login(client)
    page = client.get("/charging?days=1")
    assert page.status_code == 200
    assert site.name in page.text and 'data-charging="1"' in page.text
    assert 'data-power="on"' in page.text and 'data-sprinkler="armed"' in page.text
    assert "1.20" in page.text  # ¥1.20 of fees
    en = client.get("/charging?days=1&lang=en")
    assert "Safe charging" in en.text


def test_the_site_page_lists_sessions_and_devices(client, admin, site):
    login(client)
    page = client.get(f"/charging/sites/{site.id}?days=7")
    assert page.status_code == 200
    assert 'data-fee-fen="120"' in page.text and "CP-W1" in page.text and "SP-W1" in page.text
    assert client.get("/charging/sites/999999").status_code == 404


def test_the_api_answers_sites_and_sessions(client, auth, site):
    got = client.get("/api/v1/charging/sites", params={"days": 1}, headers=auth)
    assert got.status_code == 200
    [item] = got.json()["items"]
    assert (item["id"], item["piles_charging"], item["power_on"], item["sprinkler"]) == (site.id, 1, True, "armed")
    assert (item["sessions"], item["fee_fen"], item["energy_kwh"]) == (1, 120, 1.2)
    # port 1: 4 h, port 2: 2 h (running) of 10 ports × 24 h
    assert item["utilisation"] == pytest.approx(6 / 240, abs=1e-3)

    sessions = client.get(f"/api/v1/charging/sites/{site.id}/sessions", headers=auth).json()
    assert [(s["port"], s["fee_fen"], s["stopped_at"] is None) for s in sessions["items"]] == [
        (2, 0, True), (1, 120, False)]


def test_bad_input_names_the_field(client, auth, site):
    got = client.get("/api/v1/charging/sites", params={"days": 0}, headers=auth)
    assert got.status_code == 422 and "days" in got.text
    got = client.get(f"/api/v1/charging/sites/{site.id}/sessions", params={"limit": "x"}, headers=auth)
    assert got.status_code == 422 and "limit" in got.text
    assert client.get("/api/v1/charging/sites/0/sessions", headers=auth).status_code == 422


def test_a_user_of_another_area_sees_no_site(client, session, site):
    other = place_tree(session, tag="Z", lon=121.5)
    iam.create_user(session=session, username="gw_z", password=PASSWORD, role="grid_worker",
                    scope={"grids": [other.grid.id]})
    login(client, "gw_z")
    assert client.get(f"/charging/sites/{site.id}").status_code == 404
    page = client.get("/charging")
    assert page.status_code == 200 and site.name not in page.text


def test_the_committee_level_may_not_open_the_grid_page(client, session, site):
    committee = session.get(Facility, site.id).committee_id
    iam.create_user(session=session, username="jw1", password=PASSWORD, role="committee",
                    scope={"committees": [committee]})
    login(client, "jw1")
    assert client.get(f"/charging/sites/{site.id}").status_code == 403
    assert client.get("/charging").status_code == 403
