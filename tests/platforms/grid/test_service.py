"""网格中台 service: the board groups open cases by stage with counts, newest first; the search
box finds people by name, ID number and phone, devices and cases by code, only within scope."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from shequ.core.cases import attachments
from shequ.core.cases import service as cases
from shequ.core.cases.models import Case
from shequ.core.iam import service as iam
from shequ.core.iam.scope import scope_of
from shequ.core.iot.models import Device
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from shequ.db import bind_context
from shequ.platforms.grid import service
from tests.factories import Tree, place_tree

T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Shanghai


@dataclass
class Area:
    tree: Tree
    person: Person
    id_number: str
    phone: str
    device: Device
    case: Case


@pytest.fixture
def areas(session: Session) -> dict[str, Area]:
    out = {}
    for seq, (tag, lon, name) in enumerate((("A", 121.40, "张建国"), ("B", 121.45, "李秀英")), start=1):
        tree = place_tree(session, tag=tag, lon=lon, committee_name=f"{tag}居委会", lane=str(200 + seq))
        birth = dt.date(1950 + seq, 3, 1)
        number, phone = make_id_number("310112", birth, 100 + seq), f"1391234{seq:04d}"
        person = Person(name=name, sex="M", birth_date=birth, residence_type="registered", id_number=number,
                        phone=phone, place_id=tree.room.id)
        device = Device(code=f"SMK-{tag}-0{seq}", name=f"{tag}区烟感", type_code="smoke_detector",
                        place_id=tree.building.id)
        session.add_all([person, device])
        session.flush()
        case = cases.open_case(session=session, title=f"{tag}区井盖缺失", class_code="C0101", source="patrol",
                               actor="test", place_id=tree.building.id, now=T0)
        out[tag] = Area(tree, person, number, phone, device, case)
    return out


def _case(session: Session, tree: Tree, title: str, *steps: str, now: dt.datetime = T0) -> Case:
    case = cases.open_case(session=session, title=title, class_code="C0101", source="patrol", actor="test",
                           place_id=tree.building.id, now=now)
    for step in steps:
        cases.act(session=session, case=case, action=step, actor="test", now=now)
    return case


def _as(session: Session, username: str, role: str, scope: dict) -> None:
    user = iam.create_user(session=session, username=username, password="jiangchuan2024", role=role, scope=scope)
    bind_context(session, tenant_id=session.info["tenant_id"], actor=username, scope=scope_of(session=session, user=user))


def test_the_board_groups_open_cases_by_stage_with_counts(session: Session, areas: dict[str, Area]) -> None:
    a = areas["A"].tree
    older = _case(session, a, "旧的待受理", now=T0 - dt.timedelta(hours=1))
    registered = _case(session, a, "已立案的", "register")
    dispatched = _case(session, a, "已派遣的", "register", "dispatch")
    handled = _case(session, a, "已处置的", "register", "dispatch", "handle")
    fed_back = _case(session, a, "已反馈的", "register", "dispatch", "handle", "feed_back")
    verified = _case(session, a, "已核实的", "register", "dispatch", "handle", "feed_back", "verify")
    closed = _case(session, a, "已结案的", "register", "dispatch", "handle", "feed_back", "verify", "close")

    found = service.board(session=session, filters=service.BoardFilters(), now=T0)
    by_key = {c.key: c for c in found.columns}
    assert [c.key for c in found.columns] == ["reported", "registered", "dispatched", "handled", "verified"]
    assert {k: c.total for k, c in by_key.items()} == {
        "reported": 3, "registered": 1, "dispatched": 1, "handled": 2, "verified": 1}
    assert [c.id for c in by_key["registered"].cases] == [registered.id]
    assert [c.id for c in by_key["dispatched"].cases] == [dispatched.id]
    assert {c.id for c in by_key["handled"].cases} == {handled.id, fed_back.id}
    assert [c.id for c in by_key["verified"].cases] == [verified.id]
    assert closed.id not in {c.id for col in found.columns for c in col.cases}
    assert found.total == 8
    # newest first; the oldest report comes last
    assert by_key["reported"].cases[-1].id == older.id

    # capped per column, the count stays whole; the focused case is shown all the same
    capped = service.board(session=session, filters=service.BoardFilters(), cap=1, focus_case_id=older.id, now=T0)
    reported = capped.columns[0]
    assert reported.total == 3 and len(reported.cases) == 2 and older.id in {c.id for c in reported.cases}
    assert capped.focus is not None and capped.focus.id == older.id

    # filter by grid: B's one report only
    only_b = service.board(session=session, filters=service.BoardFilters(grid_id=areas["B"].tree.grid.id), now=T0)
    assert [c.id for col in only_b.columns for c in col.cases] == [areas["B"].case.id]

    # overdue: a week later every open stage is past its deadline; by class prefix nothing of 'E'
    late = service.board(session=session, filters=service.BoardFilters(overdue=True),
                         now=T0 + dt.timedelta(days=7))
    assert late.total == 8
    assert service.board(session=session, filters=service.BoardFilters(class_code="E"), now=T0).total == 0
    assert service.board(session=session, filters=service.BoardFilters(overdue=True), now=T0).total == 0


def test_department_staff_see_their_department_on_the_board(session: Session, areas: dict[str, Area]) -> None:
    a = areas["A"].tree
    mine = _case(session, a, "城建的", "register", "dispatch")  # C0101 goes to 城建中心
    other = _case(session, a, "安监的", "register")
    cases.act(session=session, case=other, action="dispatch", actor="test", department="安监所", now=T0)
    found = service.board(session=session, filters=service.BoardFilters(), department="城建中心", now=T0)
    shown = {c.id for col in found.columns for c in col.cases}
    assert mine.id in shown and other.id not in shown
    assert areas["A"].case.id not in shown  # not dispatched: no department yet
    asked = service.board(session=session, filters=service.BoardFilters(), department="城建中心",
                          focus_case_id=other.id, now=T0)
    assert asked.focus is None and other.id not in {c.id for col in asked.columns for c in col.cases}


def test_quick_actions_follow_stage_and_permissions(session: Session, areas: dict[str, Area]) -> None:
    dispatcher = iam.create_user(session=session, username="disp", password="jiangchuan2024", role="dispatcher",
                                 scope={"department": "城运中心"})
    grid = iam.create_user(session=session, username="gw", password="jiangchuan2024", role="grid_worker",
                           scope={"grids": [areas["A"].tree.grid.id]})
    reported = areas["A"].case
    assert service.quick_actions(dispatcher, reported) == ["register"]
    assert service.quick_actions(grid, reported) == []  # a grid worker does not register
    fed_back = _case(session, areas["A"].tree, "已反馈的", "register", "dispatch", "handle", "feed_back")
    assert service.quick_actions(grid, fed_back) == ["verify"]
    dispatched = _case(session, areas["A"].tree, "已派遣的", "register", "dispatch")
    assert service.quick_actions(dispatcher, dispatched) == ["dispatch", "co_handle", "handle"]


def _kinds(groups: list[service.Group]) -> dict[str, list[str]]:
    return {g.kind: [h.url for h in g.hits] for g in groups if g.total}


def test_search_finds_people_devices_and_cases(session: Session, areas: dict[str, Area]) -> None:
    a = areas["A"]
    person_url = f"/registry/people/{a.person.id}"
    by_name = service.search(session=session, q="张建")
    assert _kinds(by_name)["person"] == [person_url]
    hit = next(g for g in by_name if g.kind == "person").hits[0]
    assert a.id_number not in hit.detail and a.phone not in hit.detail  # masked only
    assert a.person.id_number_mask in hit.detail
    assert _kinds(service.search(session=session, q=a.id_number)) == {"person": [person_url]}
    assert _kinds(service.search(session=session, q=a.phone)) == {"person": [person_url]}
    assert _kinds(service.search(session=session, q=a.device.code))["device"] == [f"/iot/devices/{a.device.id}"]
    assert _kinds(service.search(session=session, q=a.case.code))["case"] == [f"/cases/{a.case.id}"]
    # addresses find houses' places, buildings and compounds; the counts are whole
    places = next(g for g in service.search(session=session, q="鹤庆路201弄") if g.kind == "place")
    assert places.total >= 3 and places.hits[0].url.startswith("/registry/places/")
    assert service.search(session=session, q="   ") == []
    nothing = service.search(session=session, q="100%_不存在")
    assert sum(g.total for g in nothing) == 0  # LIKE wildcards are plain characters
    with pytest.raises(service.FieldError) as bad:
        service.search(session=session, q="x" * 101)
    assert bad.value.field == "q"


def test_a_grid_worker_of_a_finds_nothing_of_b(session: Session, areas: dict[str, Area]) -> None:
    a, b = areas["A"], areas["B"]
    _as(session, "gw_a", "grid_worker", {"grids": [a.tree.grid.id]})
    for q in ("李秀英", b.id_number, b.phone, b.device.code, b.case.code, "B区", "B居委会"):
        groups = service.search(session=session, q=q)
        assert sum(g.total for g in groups) == 0, (q, _kinds(groups))
    # their own area they do find
    assert _kinds(service.search(session=session, q=a.id_number)) == {"person": [f"/registry/people/{a.person.id}"]}
    assert _kinds(service.search(session=session, q=a.device.code))["device"] == [f"/iot/devices/{a.device.id}"]
    found = service.board(session=session, filters=service.BoardFilters(), now=T0)
    assert [c.id for col in found.columns for c in col.cases] == [a.case.id]
    # B's case is not shown even when asked for by id
    asked = service.board(session=session, filters=service.BoardFilters(), focus_case_id=b.case.id, now=T0)
    assert asked.focus is None and asked.total == 1


def test_patrol_report_is_placed_at_the_nearest_building(session: Session, areas: dict[str, Area]) -> None:
    from tests.factories import png

    a = areas["A"].tree
    user = iam.create_user(session=session, username="gw_p", password="jiangchuan2024", role="grid_worker",
                           scope={"grids": [a.grid.id]})
    bind_context(session, tenant_id=session.info["tenant_id"], actor="gw_p", scope=scope_of(session=session, user=user))
    assert a.building.lon is not None and a.building.lat is not None
    lon, lat = a.building.lon + 0.0003, a.building.lat  # about 30 m east of the building
    case = service.report_patrol(session=session, user=user, title="路面塌陷", class_code="C0101",
                                 lon=f"{lon:.6f}", lat=f"{lat:.6f}", photos=[service.Photo("现场.png", png())])
    assert case.source == "patrol" and case.place_id == a.building.id and case.grid_id == a.grid.id
    assert case.lon == pytest.approx(lon) and case.reporter_user_id == user.id
    assert [(f.name, f.content_type) for f in attachments.list_attachments(session=session, case_id=case.id)] == [
        ("现场.png", "image/png")]
    # a point in B's grid is outside this worker's areas; far away is outside the subdistrict
    b = areas["B"].tree
    with pytest.raises(service.PatrolRejected) as out_of_area:
        service.report_patrol(session=session, user=user, title="x", class_code="C0101",
                              lon=str(b.building.lon), lat=str(b.building.lat))
    assert set(out_of_area.value.errors) == {"point"}
    with pytest.raises(service.PatrolRejected) as far:
        service.report_patrol(session=session, user=user, title="", class_code="nope", lon="120.0", lat="30.0",
                              photos=[service.Photo("a.png", b"not an image")])
    assert set(far.value.errors) == {"title", "class_code", "point", "photos"}
    assert "subdistrict" in far.value.errors["point"]
