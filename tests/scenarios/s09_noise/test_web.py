"""S09's pages and zone/settings API as staff see them (the minutes judged by the handler's own
``service.judge``, as the pipeline tests drive it; here in the test's rolled-back tenant)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from shequ.core.cases import service as cases
from shequ.core.iam import service as iam
from shequ.core.iot.models import Device
from shequ.core.places.service import create_place
from shequ.scenarios.s09_noise import service
from shequ.scenarios.s09_noise.models import NoiseZone
from tests.factories import place_tree
from tests.web.conftest import PASSWORD, csrf_of, login

from .conftest import IN_COMPOUND, ON_ROAD, ROAD, SHANGHAI


@pytest.fixture
def world(session):
    tree = place_tree(session)
    road = create_place(session=session, kind="street", code="RD001", name="江川路", geometry=ROAD,
                        attrs={"main": True, "width_m": 30})
    device = Device(code="NM-7", name="江川路移动噪声监测仪7", type_code="noise_monitor", place_id=road.id)
    session.add(device)
    session.flush()
    service.seed_demo(session=session)
    return tree, road, device


def judge(session, device, at: dt.datetime, laeq: float, where: tuple[float, float]) -> None:
    service.judge(session=session, readings=[(device.id, int(at.timestamp() * 1000),
                                              {"laeq_db": laeq, "lon": where[0], "lat": where[1]})],
                  settings=service.tenant_settings(session=session), now=dt.datetime.now(dt.UTC))


def test_seed_demo_gives_compounds_class_1_and_main_roads_a_4a_band_once(session, world):
    tree, road, _device = world
    zones = {z.place_id: z for z in session.scalars(select(NoiseZone))}
    assert zones[tree.compound.id].noise_class == "1"
    assert (zones[road.id].noise_class, zones[road.id].buffer_m) == ("4a", 50.0)  # 15 m half width + 35 m
    service.set_zone(session=session, place_id=tree.compound.id, noise_class="2")
    service.seed_demo(session=session)  # idempotent: keeps what staff changed
    assert session.scalar(select(NoiseZone.noise_class).where(NoiseZone.place_id == tree.compound.id)) == "2"
    assert len(session.scalars(select(NoiseZone)).all()) == 2


def test_the_monitor_list_and_report_page_with_chart_and_nearby_complaints(session, world, browser):
    tree, _road, device = world
    t0 = (dt.datetime.now(SHANGHAI) - dt.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    for k in range(6):
        judge(session, device, t0 + dt.timedelta(minutes=k), 58.0 + k, IN_COMPOUND if k < 3 else ON_ROAD)
    near = cases.open_case(session=session, title="楼下夜里很吵", class_code="E0503", source="resident", actor="r1",
                           lon=IN_COMPOUND[0] + 0.001, lat=IN_COMPOUND[1], now=t0 + dt.timedelta(minutes=2))
    cases.open_case(session=session, title="远处施工噪声", class_code="E0503", source="resident", actor="r1",
                    lon=121.45, lat=31.05, now=t0 + dt.timedelta(minutes=2))
    cases.open_case(session=session, title="占道", class_code="E0501", source="resident", actor="r1",
                    lon=IN_COMPOUND[0], lat=IN_COMPOUND[1], now=t0 + dt.timedelta(minutes=2))

    page = browser.get("/noise")
    assert page.status_code == 200
    row = re.search(r'<tr data-device="NM-7" data-class="([^"]+)" data-limit="([^"]+)"', page.text)
    assert row and row.groups() == ("4a", "70.0")  # the latest minute stood on the road by day
    assert "63.0" in page.text

    start = (t0 - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    end = (t0 + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    page = browser.get("/noise/monitors/NM-7", params={"start": start, "end": end})
    assert page.status_code == 200
    assert 'data-readings="6"' in page.text and 'data-minutes-over="3"' in page.text  # 58…60 > 55 in class 1
    assert re.search(r'<polyline class="laeq" points="[\d., ]+"', page.text)
    assert re.search(r'<polyline class="limit" points="[\d., ]+"', page.text)
    assert 'data-count="1"' in page.text and near.code in page.text and "远处施工噪声" not in page.text
    by_id = browser.get(f"/noise/monitors/{device.id}", params={"start": start, "end": end})
    assert by_id.status_code == 200 and 'data-readings="6"' in by_id.text
    bad = browser.get("/noise/monitors/NM-7", params={"start": end, "end": start})
    assert bad.status_code == 422 and "end" in bad.text


def test_staff_set_an_area_class_on_the_zones_page(session, world, client, admin):
    tree, road, _device = world
    login(client)
    page = client.get("/noise/zones")
    assert page.status_code == 200 and f'data-place="{tree.compound.id}" data-class="1"' in page.text
    csrf = csrf_of(client, "/noise/zones")
    done = client.post(f"/noise/zones/{tree.committee.id}", data={"csrf_token": csrf, "noise_class": "3"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert session.scalar(select(NoiseZone.noise_class).where(NoiseZone.place_id == tree.committee.id)) == "3"
    bad = client.post(f"/noise/zones/{road.id}", data={"csrf_token": csrf, "noise_class": "4a", "buffer_m": "0"})
    assert bad.status_code == 422 and 'data-error="buffer_m"' in bad.text
    bad = client.post(f"/noise/zones/{tree.building.id}", data={"csrf_token": csrf, "noise_class": "1"})
    assert bad.status_code == 422 and 'data-error="place_id"' in bad.text
    saved = client.post("/noise/settings", data={"csrf_token": csrf, "window_min": "15", "default_class": "1",
                                                 "night_burst_db": "15", "case_after": "2",
                                                 "complaint_radius_m": "200"}, follow_redirects=False)
    assert saved.status_code == 303 and service.tenant_settings(session=session)["window_min"] == 15
    bad = client.post("/noise/settings", data={"csrf_token": csrf, "window_min": "0"})
    assert bad.status_code == 422 and 'data-error="window_min"' in bad.text


def test_a_committee_worker_may_read_but_not_set_classes(session, world, client):
    tree, _road, _device = world
    iam.create_user(session=session, username="jw1", password=PASSWORD, role="committee",
                    scope={"committees": [tree.committee.id]})
    login(client, "jw1")
    assert client.get("/noise/zones").status_code == 200
    csrf = csrf_of(client, "/noise/zones")
    denied = client.post(f"/noise/zones/{tree.committee.id}", data={"csrf_token": csrf, "noise_class": "3"})
    assert denied.status_code == 403


def test_the_zone_and_settings_api(session, world, client, auth):
    tree, road, _device = world
    got = client.put(f"/api/v1/noise/zones/{road.id}", json={"noise_class": "4b", "buffer_m": 40}, headers=auth)
    assert got.status_code == 200 and got.json()["limit_night"] == 60.0
    bad = client.put(f"/api/v1/noise/zones/{road.id}", json={"noise_class": "4a"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "buffer_m"
    bad = client.put(f"/api/v1/noise/zones/{tree.grid.id}", json={"noise_class": "5"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "noise_class"
    assert client.delete(f"/api/v1/noise/zones/{tree.compound.id}", headers=auth).status_code == 204
    assert client.delete(f"/api/v1/noise/zones/{tree.compound.id}", headers=auth).status_code == 404
    listed = {z["place_id"]: z for z in client.get("/api/v1/noise/zones", headers=auth).json()}
    assert listed[tree.compound.id]["noise_class"] is None and listed[road.id]["noise_class"] == "4b"
    assert client.get("/api/v1/noise/settings", headers=auth).json()["window_min"] == 10
    bad = client.put("/api/v1/noise/settings", json={"window_min": 0}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "window_min"


def test_the_brain_tile_counts_monitors_and_highlights_active_alarms(session, world):
    _tree, _road, device = world
    tile = service.tile(session=session, lang="zh-CN")
    assert tile.link == "/noise" and not tile.alert and dict(tile.figures)["监测仪"] == "1"
    night = dt.datetime.now(SHANGHAI).replace(hour=23, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    judge(session, device, night, 75.0, ON_ROAD)  # 4a by night: 55 + 15 < 75
    tile = service.tile(session=session, lang="en")
    assert tile.alert and dict(tile.figures)["Night bursts"] == "1"
