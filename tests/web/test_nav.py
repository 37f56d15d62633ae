"""The menu: each role sees its own levels; a scenario's pages show while the tenant has it on."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shequ.core import plugins
from shequ.core.iam import service as iam
from shequ.core.places.models import Tenant
from shequ.core.plugins import NavEntry, Scenario
from shequ.core.registry.models import Person
from tests.factories import place_tree
from tests.web.conftest import PASSWORD, login


def _menu(client: TestClient, path: str = "/") -> list[str]:
    page = client.get(path)
    assert page.status_code == 200, page.text
    nav = re.search(r'<nav class="mainnav".*?</nav>', page.text, re.S)
    assert nav, "no main menu on the page"
    return re.findall(r'href="([^"]+)"', nav.group(0))


@pytest.mark.parametrize(("role", "shown", "hidden"), [
    ("leader", ["/brain", "/grid", "/kpi", "/rules"], ["/committee", "/m/report", "/grid/patrol", "/import"]),
    ("dispatcher", ["/brain", "/grid", "/grid/patrol", "/alarms", "/rules"], ["/committee", "/m/report"]),
    ("grid_worker", ["/grid", "/grid/patrol", "/committee"], ["/brain", "/rules", "/kpi", "/audit"]),
    ("committee", ["/committee", "/registry/people"], ["/brain", "/grid", "/rules", "/audit"]),
])
def test_each_role_sees_the_levels_it_works_at(client: TestClient, session: Session, role: str,
                                               shown: list[str], hidden: list[str]) -> None:
    tree = place_tree(session)
    scope = {"grid_worker": {"grids": [tree.grid.id]}, "committee": {"committees": [tree.committee.id]}}
    iam.create_user(session=session, username=f"u_{role}", password=PASSWORD, role=role,
                    scope=scope.get(role, {}))
    login(client, f"u_{role}")
    menu = _menu(client)
    assert set(shown) <= set(menu), menu
    assert not set(hidden) & set(menu), menu


def test_a_resident_lands_on_the_resident_pages(client: TestClient, session: Session) -> None:
    tree = place_tree(session)
    person = Person(name="居民甲", place_id=tree.room.id)
    session.add(person)
    session.flush()
    iam.create_user(session=session, username="res1", password=PASSWORD, role="resident",
                    scope={"person_id": person.id})
    login(client, "res1")
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/m"


@pytest.fixture
def scenario_s99() -> Iterator[Scenario]:
    """A scenario package as a vendor would ship it: its own page and menu entry."""
    router = APIRouter()

    @router.get("/s99/ledger")
    def ledger() -> dict[str, str]:
        return {"ok": "yes"}

    spec = Scenario(id="S99", name="测试场景", owner="城运中心", router=router,
                    nav=(NavEntry("测试台账", "/s99/ledger", "grid", "Test ledger", iam.CASE_READ),
                         NavEntry("测试台账", "/s99/ledger", "committee", "Test ledger", iam.CASE_READ)))
    registry = plugins.load_scenarios()
    registry.add(spec)
    yield spec
    registry.scenarios.pop("S99")


def test_a_scenario_adds_its_page_and_menu_entry_only_while_switched_on(
        scenario_s99: Scenario, client: TestClient, session: Session, admin: object) -> None:
    login(client)
    assert _menu(client).count("/s99/ledger") == 1  # on (unchosen means all), once though at two levels
    assert client.get("/s99/ledger").json() == {"ok": "yes"}
    tenant = session.get(Tenant, session.info["tenant_id"])
    assert tenant is not None
    tenant.settings = {**tenant.settings, "scenarios": ["S01"]}  # S99 switched off
    session.flush()
    assert "/s99/ledger" not in _menu(client)
    assert client.get("/s99/ledger").status_code == 404  # its pages go with it
    tenant.settings = {**tenant.settings, "scenarios": ["S99"]}
    session.flush()
    assert "/s99/ledger" in _menu(client)
    assert client.get("/s99/ledger").json() == {"ok": "yes"}


def test_a_bad_nav_level_stops_the_scenario() -> None:
    spec = Scenario(id="S98", name="坏场景", owner="城运中心", nav=(NavEntry("x", "/x", "nowhere"),))
    with pytest.raises(ValueError, match="level 'nowhere'"):
        spec.validate()
