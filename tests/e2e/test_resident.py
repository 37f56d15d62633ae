"""A resident reports a problem from a phone-sized screen: large type on, a category, a few
words and a photo, at home; the success page shows the request's number and 我的诉求 lists it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.e2e.conftest import PASSWORD, Site, log_in
from tests.factories import png

pytestmark = pytest.mark.e2e

RESIDENT = "e2e_resident_d"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "resident.png"


@pytest.fixture(scope="module")
def resident(site: Site) -> str:
    """A resident account bound to a person of the e2e tenant who lives in a building."""
    from shequ.core.iam.models import User
    from shequ.core.iam.service import create_user
    from shequ.core.registry.models import Person
    from shequ.db import session_scope

    with session_scope(tenant_id=site.tenant_id, actor="e2e") as session:
        if session.scalar(select(User.id).where(User.username == RESIDENT)) is None:
            person = session.scalars(select(Person).where(Person.building_id.is_not(None))
                                     .order_by(Person.id)).first()
            assert person is not None
            create_user(session=session, username=RESIDENT, password=PASSWORD, role="resident",
                        display_name=person.name, scope={"person_id": person.id})
    return RESIDENT


def test_a_resident_reports_a_problem_from_a_phone(phone: Any, site: Site, resident: str) -> None:
    page = phone
    log_in(page, site, resident, lands_on="/m")

    # 适老化: large type for every text and button
    page.click("button[data-large-font]")
    page.wait_for_selector("body.resident.large-font")
    assert float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")) >= 20

    page.click("a[data-home=report]")
    page.wait_for_url(f"{site.url}/m/report")
    page.select_option("#class_code", label="路灯损坏")
    page.fill("#description", "小区门口的路灯坏了，晚上很黑")
    page.set_input_files("#photos", files=[{"name": "路灯.png", "mimeType": "image/png", "buffer": png(40, 30)}])
    page.wait_for_selector("img[data-preview]")
    assert page.is_checked("input[name=location][value=home]")
    submit = page.locator("button.m-submit").bounding_box()
    assert submit is not None and submit["height"] >= 48
    # the whole form on one picture: a phone as tall as the page (a full-page capture would leave
    # the tab bar, which sticks to the screen's bottom, in the middle of it)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 390, "height": int(page.evaluate("document.documentElement.scrollHeight"))})
    page.screenshot(path=str(SCREENSHOT))
    page.set_viewport_size({"width": 390, "height": 844})

    page.click("button.m-submit")
    page.wait_for_url(re.compile(r".*/m/requests/\d+/submitted$"))
    code = page.inner_text("[data-case-code]").strip()
    assert re.fullmatch(r"\d{8}-\d{6}", code), code

    page.click(".m-tabs a[href='/m/requests']")
    page.wait_for_url(f"{site.url}/m/requests")
    first = page.locator("[data-requests] a").first
    assert code in first.inner_text() and "已提交" in first.inner_text()
    assert page.console_errors == []



def test_the_place_picked_on_the_map_or_the_phones_position(phone: Any, site: Site, resident: str) -> None:
    from shequ.core.cases.models import Case
    from shequ.db import session_scope

    page = phone
    page.context.grant_permissions(["geolocation"], origin=site.url)
    log_in(page, site, resident, lands_on="/m")
    page.goto(f"{site.url}/m/report")
    home = page.evaluate("fetch('/m/report/map.json').then(r => r.json())")["centre"]
    # the phone's position: the resident's own building
    page.context.set_geolocation({"longitude": home[0], "latitude": home[1], "accuracy": 10})
    page.check("input[name=location][value=gps]")
    expect(page.locator("[data-lon]").first).not_to_have_value("", timeout=30_000)
    assert abs(float(page.input_value("[data-lon]")) - home[0]) < 1e-5
    assert "已定位" in page.inner_text("[data-where]")
    # a point tapped on the map (MapLibre, no outside tiles) a little east of home
    page.check("input[name=location][value=map]")
    page.wait_for_selector("#pick-map canvas")
    page.locator("#pick-map .m-home-label").first.wait_for(state="attached")
    page.locator("#pick-map").scroll_into_view_if_needed()
    box = page.locator("#pick-map").bounding_box()
    assert box is not None
    page.tap("#pick-map", position={"x": box["width"] / 2 + 30, "y": box["height"] / 2 + 40})
    expect(page.locator("[data-lat]").first).not_to_have_value("", timeout=30_000)
    lon, lat = float(page.input_value("[data-lon]")), float(page.input_value("[data-lat]"))
    assert lon > home[0] and lat < home[1]  # east and south of the centre, as tapped
    assert "已选位置" in page.inner_text("[data-where]")
    page.select_option("#class_code", label="乱堆物堆料")
    page.fill("#description", "楼道口堆了很多纸箱")
    page.click("button.m-submit")
    page.wait_for_url(re.compile(r".*/m/requests/\d+/submitted$"))
    case_id = int(page.url.rsplit("/", 2)[-2])
    with session_scope(tenant_id=site.tenant_id) as session:
        case = session.get(Case, case_id)
        assert case is not None and case.place_id is not None and case.committee_id is not None
        assert (round(case.lon, 5), round(case.lat, 5)) == (round(lon, 5), round(lat, 5))
    assert page.console_errors == []
