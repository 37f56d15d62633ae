"""The brain's numbers equal the hand counts of a small subdistrict (see ``world``), for the
whole subdistrict and for a grid worker of the north grid, who sees the north only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.scope import scope_of
from shequ.core.iot import twin_read
from shequ.db import bind_context
from shequ.platforms.brain import service
from tests.platforms.brain.world import NOW, T_STATE, World, build
from tests.web.conftest import Registry, registry  # noqa: F401 - the registry fixture


@pytest.fixture
def world(session: Session, registry: Registry) -> World:  # noqa: F811 - the fixture above
    return build(session, registry.north, registry.south, registry.people)


@pytest.fixture
def north_only(session: Session, world: World) -> Iterator[None]:
    """The session as a grid worker of the north grid sees it."""
    worker = iam.create_user(session=session, username="brain_gw", password="jiangchuan2024", role="grid_worker",
                             scope={"grids": [world.north.grid.id]})
    bind_context(session, tenant_id=session.info["tenant_id"], actor="brain_gw",
                 scope=scope_of(session=session, user=worker))
    yield
    bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=None)


def by_key(rows: list[dict]) -> dict:
    return {r["key"]: r for r in rows}


def test_population_by_age_sex_residence_and_special_group(session: Session, world: World) -> None:
    p = service.population(session=session, now=NOW)
    assert p["total"] == 4
    bands = p["age_sex"]["bands"]
    assert bands == ["0-17", "18-34", "35-59", "60-79", "80+"]
    assert dict(zip(bands, p["age_sex"]["M"], strict=True)) == {"0-17": 0, "18-34": 0, "35-59": 1, "60-79": 0, "80+": 1}
    assert dict(zip(bands, p["age_sex"]["F"], strict=True)) == {"0-17": 0, "18-34": 0, "35-59": 1, "60-79": 1, "80+": 0}
    assert {k: r["n"] for k, r in by_key(p["residence"]).items()} == {
        "registered": 2, "registered_away": 0, "resident": 2}
    assert by_key(p["residence"])["resident"]["label"] == "来沪人员"
    special = by_key(p["special"])
    assert special["disabled"]["n"] == 3 and special["low_income"]["n"] == 1 and special["minor"]["n"] == 0
    assert special["disabled"]["label"] == "残疾"
    assert by_key(service.population(session=session, now=NOW, lang="en")["special"])["disabled"]["label"] == "disabled"


def test_devices_online_and_offline_by_type(session: Session, world: World) -> None:
    d = service.devices(session=session)
    assert (d["total"], d["online"], d["offline"]) == (4, 2, 2)  # the retired one is not counted
    types = {k: (r["online"], r["offline"]) for k, r in by_key(d["by_type"]).items()}
    assert types == {"smoke_detector": (1, 1), "pir": (1, 0), "camera": (0, 1)}
    assert by_key(d["by_type"])["smoke_detector"]["label"] == "独立式烟感报警器"
    assert d["by_condition"] == {"alarm": 1, "fault": 0, "offline": 1, "maintenance": 0, "ok": 1, "unknown": 1}


def test_alarms_active_and_today_by_scenario_and_severity(session: Session, world: World) -> None:
    a = service.alarms(session=session, now=NOW)
    assert (a["active"], a["unacknowledged"], a["today"]) == (2, 1, 2)
    assert {k: r["n"] for k, r in by_key(a["today_by_severity"]).items()} == {
        "CRITICAL": 1, "MAJOR": 0, "MINOR": 0, "WARNING": 1, "INDETERMINATE": 0}
    assert {k: r["n"] for k, r in by_key(a["today_by_scenario"]).items()} == {"": 1, "S05": 1}
    assert {k: r["n"] for k, r in by_key(a["active_by_severity"]).items()}["MAJOR"] == 1


def test_cases_by_stage_and_overdue(session: Session, world: World) -> None:
    c = service.cases(session=session, now=NOW)
    stages = {k: r["n"] for k, r in by_key(c["by_stage"]).items()}
    assert stages["handled"] == 2 and stages["registered"] == 1 and stages["reported"] == 1
    assert sum(stages.values()) == 4
    assert (c["open"], c["overdue"]) == (4, 3)


def test_on_time_rates_by_department_and_grid(session: Session, world: World) -> None:
    o = service.on_time(session=session, now=NOW)
    department = world.cases["c1"].department
    assert department == world.cases["c2"].department
    assert by_key(o["by_department"])[department]["rate"] == 0.5
    assert by_key(o["by_department"])[department]["handled"] == 2
    grids = by_key(o["by_grid"])
    assert grids[str(world.north.grid.id)]["rate"] == 1.0 and grids[str(world.north.grid.id)]["label"] == "第N网格"
    assert grids[str(world.south.grid.id)]["rate"] == 0.0
    assert o["rate"] == 0.5


def test_trends_per_day_over_fourteen_days(session: Session, world: World) -> None:
    tr = service.trends(session=session, now=NOW)
    assert len(tr["days"]) == 14 and tr["days"][-1] == "2026-06-01" and tr["days"][0] == "2026-05-19"
    assert tr["alarms"][-1] == 2 and tr["alarms"][-3] == 1 and sum(tr["alarms"]) == 3
    # c2 (7 May) is older than the fortnight
    assert tr["cases"][-1] == 1 and tr["cases"][-2] == 1 and tr["cases"][-4] == 1 and sum(tr["cases"]) == 3


def test_a_grid_worker_gets_only_their_grids_numbers(session: Session, world: World, north_only: None) -> None:
    s = service.summary(session=session, now=NOW)
    assert s["population"]["total"] == 3
    assert by_key(s["population"]["special"])["disabled"]["n"] == 2
    assert (s["devices"]["total"], s["devices"]["online"]) == (2, 2)
    assert (s["alarms"]["active"], s["alarms"]["unacknowledged"], s["alarms"]["today"]) == (1, 1, 2)
    assert (s["cases"]["open"], s["cases"]["overdue"]) == (2, 1)
    assert [r["key"] for r in s["on_time"]["by_grid"]] == [str(world.north.grid.id)]
    assert s["on_time"]["rate"] == 1.0
    assert sum(s["trends"]["cases"]) == 2
    assert [a["id"] for a in service.active_alarms(session=session)] == [world.alarms["a1"].id]
    assert service.place_panel(session=session, place_id=world.south.building.id) is None
    assert [f["id"] for f in service.buildings(session=session)["features"]] == [world.north.building.id]


def test_active_alarms_most_severe_first_with_a_point(session: Session, world: World) -> None:
    rows = service.active_alarms(session=session)
    assert [r["id"] for r in rows] == [world.alarms["a1"].id, world.alarms["a2"].id]
    first = rows[0]
    assert (first["lon"], first["lat"]) == (121.4021, 31.0021)  # the device's own point
    assert first["where"] and first["severity_label"] == "紧急"
    assert rows[1]["lon"] is not None  # the place's point when there is no device


def test_buildings_now_and_at_a_past_moment(session: Session, world: World) -> None:
    now = {f["id"]: f["properties"] for f in service.buildings(session=session)["features"]}
    assert now[world.north.building.id]["state"] == "alarm"
    assert now[world.north.building.id]["height_m"] == twin_read.building_height(height_m=None, floors=6)
    assert now[world.south.building.id]["state"] == "offline"
    before = {f["id"]: f["properties"] for f in service.buildings(session=session, at_ms=T_STATE - 1)["features"]}
    assert before[world.north.building.id]["state"] == "ok"
    assert before[world.south.building.id]["state"] == "unknown"  # no history of it then
    assert service.twin_mark(session=session) == T_STATE


def test_the_drill_panel_of_a_building_lists_its_floors_and_devices(session: Session, world: World) -> None:
    panel = service.place_panel(session=session, place_id=world.north.building.id)
    assert panel is not None
    assert [c["id"] for c in panel["children"]] == [world.north.floor.id]
    assert panel["children"][0]["state"] == "alarm"
    assert [b["kind"] for b in panel["breadcrumbs"]] == ["grid", "committee", "compound"]
    codes = {d["code"]: d for d in panel["devices"]}
    assert set(codes) == {"BR-NS", "BR-NP"}
    assert codes["BR-NS"]["condition"] == "alarm" and codes["BR-NS"]["attrs"] == {"smoke": True}
    assert (codes["BR-NS"]["lon"], codes["BR-NS"]["lat"]) == (121.4021, 31.0021)
    assert [a["id"] for a in panel["alarms"]] == [world.alarms["a1"].id]
    room = service.place_panel(session=session, place_id=world.north.room.id)
    assert room is not None and [d["code"] for d in room["devices"]] == ["BR-NS"]
    assert [b["kind"] for b in room["breadcrumbs"]] == ["grid", "committee", "compound", "building", "unit", "floor"]
    assert [a["id"] for a in room["alarms"]] == [world.alarms["a1"].id]
