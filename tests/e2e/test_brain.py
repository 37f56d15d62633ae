"""The brain's big screen in a real browser at 1920×1080: the 3D map draws with WebGL and loads the
buildings, the charts render, nothing is refused by the CSP; then a smoke reading goes through
the ingest pipeline and, without a reload, the active-alarm counter goes up by one and a pulsing
marker appears for the new alarm; the alarm leads down to its room; the time slider replays."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.e2e.conftest import PASSWORD, TENANT, Site, browser_page, log_in

pytestmark = pytest.mark.e2e

LEADER = "e2e_brain_leader"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "brain.png"


@pytest.fixture(scope="module")
def leader(site: Site) -> str:
    """The demo devices and rules, and a subdistrict leader to open the screen."""
    from shequ.core.iam.models import User
    from shequ.core.iam.service import create_user
    from shequ.db import session_scope
    from shequ.sim.demo import prepare_devices

    prepare_devices(tenant_id=site.tenant_id, scale="small", seed=7)
    with session_scope(tenant_id=site.tenant_id, actor="e2e") as session:
        if session.scalar(select(User.id).where(User.username == LEADER)) is None:
            create_user(session=session, username=LEADER, password=PASSWORD, role="leader", display_name="街道书记")
    return LEADER


def smoke_reading(site: Site) -> int:
    """The third smoke detector reports smoke through the pipeline; the new alarm's id."""
    from shequ.core.alarms.models import Alarm
    from shequ.core.iot.models import Device
    from shequ.core.iot.pipeline import Inbound, default_pipeline, now_ms
    from shequ.db import get_engine, session_scope

    with session_scope(tenant_id=site.tenant_id) as session:
        device = session.scalars(select(Device).where(Device.type_code == "smoke_detector").order_by(Device.id)
                                 .offset(2)).first()
        assert device is not None
        device_id, code = device.id, device.code
    result = default_pipeline(get_engine()).process([Inbound(
        json.dumps({"id": "e2e-brain-smoke", "ts": now_ms(), "v": {"smoke": True}}).encode(), "telemetry",
        TENANT, code)])
    assert result.accepted == 1
    with session_scope(tenant_id=site.tenant_id) as session:
        return session.scalars(select(Alarm.id).where(Alarm.device_id == device_id)).one()


def test_the_big_screen_shows_a_new_alarm_live(chromium: Any, site: Site, leader: str) -> None:
    with browser_page(chromium, timeout_ms=20000, viewport={"width": 1920, "height": 1080}) as page:
        errors = page.console_errors
        log_in(page, site, leader)
        page.goto(f"{site.url}/brain")

        # the map: a WebGL canvas, and the buildings loaded and drawn
        page.wait_for_selector("#brain-map:not([data-buildings=''])", state="attached")
        assert int(page.get_attribute("#brain-map", "data-buildings") or 0) > 10
        assert page.locator("#brain-map canvas.maplibregl-canvas").count() == 1
        assert page.evaluate("""() => {
            const canvas = document.querySelector('#brain-map canvas.maplibregl-canvas');
            const gl = canvas.getContext('webgl2') || canvas.getContext('webgl');
            return !!gl && !gl.isContextLost() && gl.drawingBufferWidth > 0;
        }""")
        # the charts: each container holds the canvas ECharts drew
        charts = page.locator("[data-chart]")
        assert charts.count() == 10
        page.wait_for_selector("#chart-trends canvas", state="attached")
        for i in range(charts.count()):
            assert charts.nth(i).locator("canvas").count() >= 1, charts.nth(i).get_attribute("id")
        # a tile for each switched-on scenario package that has one (all, in this tenant)
        from shequ.core.plugins import load_scenarios

        tiles = page.locator("#scenario-tiles .tile")
        assert sorted(tiles.nth(i).get_attribute("data-scenario") or "" for i in range(tiles.count())) == sorted(
            s.id for s in load_scenarios().scenarios.values() if s.tile)
        assert tiles.count() >= 6 and all(tiles.nth(i).locator(".tile-fig").count() >= 1 for i in range(tiles.count()))
        population = page.get_attribute('[data-counter="population"]', "data-value")
        assert population is not None and int(population) > 1000

        # live: a smoke reading through the pipeline, then the counter and a marker, no reload
        page.wait_for_selector('[data-counter="active"][data-value]', state="attached")
        before = int(page.get_attribute('[data-counter="active"]', "data-value") or 0)
        alarm_id = smoke_reading(site)
        page.wait_for_selector(f'[data-counter="active"][data-value="{before + 1}"]', state="attached")
        marker = page.locator(f'.brain-alarm[data-alarm-id="{alarm_id}"]')
        marker.wait_for(state="visible")
        assert "sev-CRITICAL" in (marker.get_attribute("class") or "")
        box, frame = marker.bounding_box(), page.locator("#brain-map").bounding_box()
        assert box is not None and frame is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        # placed on the map at its building (not left at the map's corner)
        assert frame["x"] + 40 < x < frame["x"] + frame["width"] and frame["y"] + 40 < y < frame["y"] + frame["height"]
        assert page.evaluate("""(id) => getComputedStyle(
            document.querySelector('.brain-alarm[data-alarm-id="' + id + '"]'), '::before').animationName""",
                             alarm_id) == "pulse"
        assert page.locator(f'#alarm-list li[data-alarm-id="{alarm_id}"]').count() == 1
        page.wait_for_timeout(1200)  # the map settles around the new marker
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))

        # drill down from the alarm to its place: the breadcrumbs reach the room, its devices show
        page.click(f'#alarm-list li[data-alarm-id="{alarm_id}"]')
        page.wait_for_selector(f'#drill-body[data-alarm-id="{alarm_id}"]', state="attached")
        page.click("#drill [data-locate]")
        page.wait_for_selector("#drill [data-device-id]")
        crumbs = page.locator("#crumbs button")
        assert crumbs.count() >= 5 and crumbs.first.inner_text() == "全街道"
        assert page.locator("#drill .state-alarm").count() >= 1

        # replay: an hour ago the buildings are read at that moment; "back to live" returns
        with page.expect_response(lambda r: "/brain/data/buildings.geojson?at=" in r.url and r.ok):
            page.eval_on_selector("#time-slider", """(slider) => {
                slider.value = '-60';
                slider.dispatchEvent(new Event('input', {bubbles: true}));
            }""")
        assert page.get_attribute("#brain-mode", "data-mode") == "replay"
        with page.expect_response(lambda r: r.url.endswith("/brain/data/buildings.geojson") and r.ok):
            page.click("#time-live")
        assert page.get_attribute("#brain-mode", "data-mode") == "live"

        assert errors == []
