"""网格中台 in a real browser: a dispatcher takes a smoke alarm to a closed case from the board —
acknowledges it in the alarm console, opens its case card and moves it through every stage with
the card's buttons — and a patrol is reported with a map click and a photo."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.e2e.conftest import TENANT, Site, log_in
from tests.factories import png

pytestmark = pytest.mark.e2e

DISPATCHER, PASSWORD = "e2e_grid_dispatcher", "jiangchuan2024"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "grid.png"
# cards for the board beside the alarm's case: (title, class, actions taken)
BOARD = (
    ("三号楼楼道堆物", "E0103", ()),
    ("小区门口暴露垃圾", "E0101", ()),
    ("路灯不亮", "C0102", ("register",)),
    ("非机动车乱停放", "E0502", ("register",)),
    ("井盖破损", "C0101", ("register", "dispatch")),
    ("电动自行车楼道充电", "E0504", ("register", "dispatch")),
    ("施工扰民", "E0302", ("register", "dispatch", "handle")),
    ("积水内涝", "E0403", ("register", "dispatch", "handle", "feed_back")),
    ("违规张贴小广告", "E0201", ("register", "dispatch", "handle", "feed_back", "verify")),
)


@dataclass
class Smoke:
    alarm_id: int
    case_id: int


@pytest.fixture(scope="module")
def smoke(site: Site) -> Iterator[Smoke]:
    """A dispatcher of 城运中心, a few cases at several stages, and a smoke reading from a fourth
    smoke detector whose alarm opens its case as the worker would right after the batch."""
    from shequ.core import loop
    from shequ.core.alarms.models import Alarm
    from shequ.core.cases import service as cases
    from shequ.core.iam.service import create_user
    from shequ.core.iot.models import Device
    from shequ.core.iot.pipeline import Inbound, default_pipeline, now_ms
    from shequ.core.places.models import Place, PlaceKind
    from shequ.db import get_engine, session_scope
    from shequ.sim.demo import prepare_devices

    prepare_devices(tenant_id=site.tenant_id, scale="small", seed=7)
    with session_scope(tenant_id=site.tenant_id, actor="e2e") as s:
        create_user(session=s, username=DISPATCHER, password=PASSWORD, role="dispatcher",
                    display_name="网格调度员", scope={"department": "城运中心"})
        buildings = list(s.scalars(select(Place.id).where(Place.kind == PlaceKind.BUILDING)
                                   .order_by(Place.id).limit(len(BOARD))))
        for (title, class_code, steps), building in zip(BOARD, buildings, strict=False):
            case = cases.open_case(session=s, title=title, class_code=class_code, source="patrol", actor="e2e",
                                   place_id=building)
            for step in steps:
                cases.act(session=s, case=case, action=step, actor="e2e")
        dev = s.scalars(select(Device).where(Device.type_code == "smoke_detector").order_by(Device.id)
                        .offset(3)).first()
        assert dev is not None
        device_id, code = dev.id, dev.code
    result = default_pipeline(get_engine()).process([Inbound(
        json.dumps({"id": "e2e-grid-smoke", "ts": now_ms(), "v": {"smoke": True}}).encode(), "telemetry",
        TENANT, code)])
    assert result.accepted == 1
    loop.open_pending_cases(get_engine())
    with session_scope(tenant_id=site.tenant_id) as s:
        alarm = s.scalars(select(Alarm).where(Alarm.device_id == device_id)).one()
        assert alarm.case_id is not None, "the smoke rule opens a case"
        yield Smoke(alarm.id, alarm.case_id)


def _card(page: Any, case_id: int) -> Any:
    return page.locator(f"article#case-{case_id}")


def _column_of(page: Any, case_id: int) -> str:
    return str(page.locator(f"section.board-col:has(article#case-{case_id})").get_attribute("data-column"))


def _press(page: Any, case_id: int, action: str) -> None:
    """Press a card's button and wait for the board to come back after it."""
    _card(page, case_id).locator(f"form[data-action={action}] button").click()
    page.wait_for_url(re.compile(rf".*/grid\?.*done={action}.*"))


def test_a_dispatcher_takes_an_alarm_to_a_closed_case(page: Any, site: Site, smoke: Smoke) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, site, DISPATCHER, PASSWORD)
    page.goto(f"{site.url}/grid")
    item = page.locator(f"#alarm-console li[data-alarm='{smoke.alarm_id}']")
    assert item.get_attribute("data-severity") == "CRITICAL"
    assert item.get_attribute("data-status") == "ACTIVE_UNACK"
    assert page.locator("article.case-card").count() >= len(BOARD)

    # acknowledge in the console
    item.locator("form[data-action=ack] button").click()
    page.wait_for_url(re.compile(r".*/grid\?.*done=ack.*"))
    item = page.locator(f"#alarm-console li[data-alarm='{smoke.alarm_id}']")
    assert item.get_attribute("data-status") == "ACTIVE_ACK"
    assert "已确认" in item.inner_text()

    # open its case: the board shows its card, marked
    item.locator(f"a[data-case-link='{smoke.case_id}']").click()
    page.wait_for_url(re.compile(rf".*/grid\?case={smoke.case_id}#case-{smoke.case_id}"))
    card = _card(page, smoke.case_id)
    assert "focus" in str(card.get_attribute("class"))
    assert card.get_attribute("data-stage") == "dispatched" and _column_of(page, smoke.case_id) == "dispatched"
    assert "城运中心" in card.locator("[data-department]").inner_text()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the header and the filters too
    page.screenshot(path=str(SCREENSHOT), full_page=False)

    # co-handling: 安监所 joins
    card.locator("details[data-quick=co_handle] summary").click()
    card.locator("form[data-action=co_handle] select[name=departments]").select_option(["安监所"])
    card.locator("form[data-action=co_handle] button").click()
    page.wait_for_url(re.compile(r".*/grid\?.*done=co_handle.*"))
    card = _card(page, smoke.case_id)
    assert card.get_attribute("data-stage") == "dispatched"
    assert "安监所" in card.locator("[data-department]").inner_text()

    # handle → feed back → verify: the card moves along the board
    for action, stage, column in (("handle", "handled", "handled"), ("feed_back", "fed_back", "handled"),
                                  ("verify", "verified", "verified")):
        _press(page, smoke.case_id, action)
        card = _card(page, smoke.case_id)
        assert card.get_attribute("data-stage") == stage, action
        assert _column_of(page, smoke.case_id) == column, action
        assert page.locator(f"[data-done='{action}']").get_attribute("data-done-stage") == stage

    # close: the case leaves the board; the message says so and leads to it
    _press(page, smoke.case_id, "close")
    assert _card(page, smoke.case_id).count() == 0
    done = page.locator("[data-done='close']")
    assert done.get_attribute("data-done-stage") == "closed" and "已结案" in done.inner_text()
    done.locator(f"a[href='/cases/{smoke.case_id}']").click()
    page.wait_for_url(f"{site.url}/cases/{smoke.case_id}")
    assert page.locator("[data-stage]").first.get_attribute("data-stage") == "closed"
    steps = [page.locator("tr[data-step]").nth(i).get_attribute("data-step")
             for i in range(page.locator("tr[data-step]").count())]
    assert steps[-5:] == ["co_handle", "handle", "feed_back", "verify", "close"]
    assert page.console_errors == []


def test_the_search_box_finds_a_case_and_a_device(page: Any, site: Site, smoke: Smoke) -> None:
    from shequ.core.cases.models import Case
    from shequ.core.iot.models import Device
    from shequ.db import session_scope

    with session_scope(tenant_id=site.tenant_id) as s:
        case = s.get(Case, smoke.case_id)
        assert case is not None
        code = case.code
        device = s.scalars(select(Device).order_by(Device.id)).first()
        assert device is not None
        device_code, device_id = device.code, device.id
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, site, DISPATCHER, PASSWORD)
    page.goto(f"{site.url}/grid")
    page.fill(".grid-head input[name=q]", code)
    page.click(".grid-head form[role=search] button")
    page.wait_for_url(re.compile(r".*/grid/search\?q=.*"))
    assert page.locator(f"section[data-kind=case] a[href='/cases/{smoke.case_id}']").count() == 1
    page.fill("input[name=q]", device_code)
    page.click("form[role=search] button")
    page.wait_for_url(re.compile(r".*/grid/search\?q=.*"))
    assert page.locator(f"section[data-kind=device] a[href='/iot/devices/{device_id}']").count() == 1
    page.screenshot(path="/tmp/shequ-grid-search.png", full_page=True)
    assert page.console_errors == []


def test_a_patrol_report_with_a_map_click_and_a_photo(page: Any, site: Site, smoke: Smoke) -> None:
    page.set_viewport_size({"width": 420, "height": 900})  # a phone
    log_in(page, site, DISPATCHER, PASSWORD)
    page.goto(f"{site.url}/grid/patrol")
    page.wait_for_selector("#patrol-map[data-ready]")
    assert int(page.get_attribute("#patrol-map", "data-ready") or 0) > 0  # the buildings are drawn
    page.locator("#patrol-map canvas").click()
    lon, lat = page.input_value("#patrol-lon"), page.input_value("#patrol-lat")
    assert lon and lat and page.locator(".map-marker").count() == 1
    page.screenshot(path="/tmp/shequ-grid-patrol.png", full_page=True)
    page.fill("input[name=title]", "巡查发现楼道堆物")
    page.select_option("select[name=class_code]", "E0103")
    page.fill("textarea[name=description]", "一楼楼道堆放纸箱，影响通行")
    page.set_input_files("input[name=photos]", files=[{"name": "现场.png", "mimeType": "image/png", "buffer": png()}])
    page.click("#patrol-form button[type=submit]")
    page.wait_for_url(re.compile(rf"{re.escape(site.url)}/cases/\d+"))
    assert "巡查发现楼道堆物" in page.inner_text("h1")
    assert "巡查" in page.inner_text("dl.facts")
    assert page.locator("ul.attachments a", has_text="现场.png").count() == 1
    assert page.console_errors == []
