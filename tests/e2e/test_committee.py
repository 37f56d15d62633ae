"""A committee worker on a phone sees only their own committee: the to-dos (a case waiting for
them, an alarm, the visits due), the special-groups ledger of their people; another committee's
person is "not found"; they record a visit with a few taps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.e2e.conftest import PASSWORD, Site, log_in

pytestmark = pytest.mark.e2e

WORKER = "e2e_committee_c"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "committee.png"


@dataclass(frozen=True)
class Setting:
    committee_id: int
    case_title: str
    alarm_title: str
    stranger_id: int  # a person of another committee, in a special group
    stranger_name: str  # a name nobody of our committee has


@pytest.fixture(scope="module")
def setting(site: Site) -> Setting:
    """The committee user of ``site.committee``, a case and an alarm there, and a stranger."""
    from shequ.core.alarms import service as alarms
    from shequ.core.cases import service as cases
    from shequ.core.iam.models import User
    from shequ.core.iam.service import create_user
    from shequ.core.places.models import Place
    from shequ.core.registry.models import Person, Tag, Tagging
    from shequ.db import session_scope

    with session_scope(tenant_id=site.tenant_id, actor="e2e") as session:
        committee_id = session.scalar(select(Place.id).where(Place.kind == "committee", Place.name == site.committee))
        assert committee_id is not None
        if session.scalar(select(User.id).where(User.username == WORKER)) is None:
            create_user(session=session, username=WORKER, password=PASSWORD, role="committee",
                        display_name="居委小陈", scope={"committees": [committee_id]})
        building = session.scalar(select(Place).where(Place.kind == "building", Place.committee_id == committee_id)
                                  .order_by(Place.id).limit(1))
        assert building is not None
        case_title = "居委待办：楼道堆物清理"
        cases.open_case(session=session, title=case_title, class_code="E0103", source="patrol", actor="e2e",
                        place_id=building.id, dispatch=True)
        alarm_title = "居委待办：烟感报警"
        alarms.raise_alarm(session=session, type="e2e_committee_smoke", source=f"p:{building.id}",
                           severity="MAJOR", title=alarm_title, place_id=building.id)
        ours = set(session.scalars(select(Person.name).where(Person.committee_id == committee_id)))
        special = (select(Tagging.entity_id).join(Tag, Tag.id == Tagging.tag_id)
                   .where(Tagging.entity == "person", Tag.code.in_(("disabled", "low_income", "very_old"))))
        stranger = next(p for p in session.scalars(
            select(Person).where(Person.committee_id.is_not(None), Person.committee_id != committee_id,
                                 Person.id.in_(special)).order_by(Person.id).limit(200))
            if p.name not in ours)
        return Setting(committee_id, case_title, alarm_title, stranger.id, stranger.name)


def test_a_committee_worker_sees_only_their_committee(phone: Any, site: Site, setting: Setting) -> None:
    from shequ.core.registry.models import Visit
    from shequ.db import session_scope

    page = phone
    log_in(page, site, WORKER)
    page.goto(f"{site.url}/committee")

    # today's to-dos of their committee, with the counts at the top
    assert page.inner_text(".cm-name") == site.committee
    total = int(page.get_attribute("[data-todo-total]", "data-todo-total") or "0")
    visits_due = page.locator("#visits article[data-person]").count()
    assert visits_due > 0 and total >= visits_due + 2
    assert f"待办 {total}" in page.inner_text("h1.cm-total")
    case = page.locator("#cases article", has_text=setting.case_title)
    assert case.count() == 1 and case.locator("form[data-action=handle] button").is_visible()
    alarm = page.locator("#alarms article", has_text=setting.alarm_title)
    assert alarm.count() == 1 and alarm.locator("form[data-action=ack] button").is_visible()
    assert setting.stranger_name not in page.inner_text("main")
    # large touch targets on a phone
    box = case.locator("form[data-action=handle] button").bounding_box()
    assert box is not None and box["height"] >= 44
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)

    # acknowledging the alarm keeps the worker on the to-dos
    alarm.locator("form[data-action=ack] button").tap()
    page.wait_for_selector(f"#alarms article:has-text('{setting.alarm_title}') >> text=已确认")
    assert page.url.startswith(f"{site.url}/committee")

    # record a visit: a few taps on the first person due
    first = page.locator("#visits article[data-person]").first
    person_id = int(first.get_attribute("data-person") or "0")
    name = first.locator("h3 a").inner_text()
    first.locator("summary").tap()
    first.locator("label", has_text="电话").tap()
    first.locator("label", has_text="情况良好").tap()
    first.locator("textarea[name=note]").fill("电话问候，身体尚好")
    first.locator("button[type=submit]").tap()
    page.wait_for_url(re.compile(rf".*/committee\?committee={setting.committee_id}&visited={person_id}.*"))
    assert f"已记录对 {name} 的走访" in page.inner_text("[role=status]")
    assert page.locator(f"#visits article[data-person='{person_id}']").count() == 0
    with session_scope(tenant_id=site.tenant_id, actor="e2e") as session:
        visit = session.scalars(select(Visit).where(Visit.person_id == person_id)
                                .order_by(Visit.id.desc())).first()
        assert visit is not None and visit.visitor == WORKER and visit.way == "phone" and visit.result == "well"
        assert session.scalar(select(func.count(Visit.id)).where(Visit.person_id == person_id)) >= 1

    # the special-groups ledger: people of this committee only
    page.locator(".cm-tabs a", has_text="台账").tap()
    page.wait_for_url(re.compile(r".*/committee/ledgers/special\?committee=\d+$"))
    assert int(page.get_attribute("[data-total]", "data-total") or "0") > 0
    assert page.locator("ul[data-ledger=special] li.cm-item").count() > 0
    assert setting.stranger_name not in page.inner_text("main")
    shown = page.inner_text("main")
    assert re.search(r"\d{4}\*{10}\d{3}[\dX]", shown)  # ID numbers masked
    assert not re.search(r"\d{17}[\dX]", shown)
    page.fill("input[name=q]", setting.stranger_name)
    page.locator(".cm-filter button[type=submit]").tap()
    page.wait_for_url(re.compile(r".*q=.*"))
    assert page.get_attribute("[data-total]", "data-total") == "0"

    assert page.console_errors == []

    # another committee's person, by a direct URL: the not-found page (the browser logs the 404)
    response = page.goto(f"{site.url}/registry/people/{setting.stranger_id}")
    assert response is not None and response.status == 404
    assert "找不到该记录" in page.inner_text("main") and setting.stranger_name not in page.content()
    assert all("status of 404" in e for e in page.console_errors), page.console_errors
