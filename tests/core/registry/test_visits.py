"""Visits (走访): who of the special groups is due, by the shortest interval of their groups
and the tenant's own intervals; recording a visit and its refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from shequ.core.iam.scope import Scope
from shequ.core.places.models import Tenant
from shequ.core.registry import visits
from shequ.core.registry.models import Person, Visit
from shequ.core.registry.tags import add_tag, install_default_tags
from shequ.core.registry.validators import make_id_number
from shequ.db import bind_context
from tests.factories import Tree, place_tree

NOW = dt.datetime.now(dt.UTC)


def days_ago(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


@pytest.fixture
def trees(session: Session) -> tuple[Tree, Tree]:
    install_default_tags(session=session)
    return (place_tree(session, tag="N", committee_name="北街居委会"),
            place_tree(session, tag="S", lon=121.45, committee_name="南街居委会", lane="300"))


_seq = iter(range(100, 10_000))


def person(session: Session, tree: Tree, name: str, *groups: str, birth: dt.date = dt.date(1970, 1, 1),
           status: str = "active") -> Person:
    p = Person(name=name, birth_date=birth, sex="F", residence_type="registered", status=status,
               id_number=make_id_number("310112", birth, next(_seq)), place_id=tree.room.id)
    session.add(p)
    session.flush()
    for code in groups:
        add_tag(session=session, code=code, entity="person", entity_id=p.id, by="test")
    return p


def visit(session: Session, p: Person, at: dt.datetime, result: str = "well") -> Visit:
    return visits.record_visit(session=session, person_id=p.id, visitor="juwei", way="home", result=result,
                               at=at)


def due_names(session: Session, **kw: object) -> dict[str, visits.DueVisit]:
    return {d.person.name: d for d in visits.due_visits(session=session, now=NOW, **kw)}  # type: ignore[arg-type]


def test_never_visited_overdue_and_recent(session: Session, trees: tuple[Tree, Tree]) -> None:
    north, _ = trees
    person(session, north, "从未走访", "disabled")
    overdue = person(session, north, "逾期", "disabled")
    recent = person(session, north, "刚走访", "disabled")
    person(session, north, "无特殊人群")
    visit(session, overdue, days_ago(45))
    visit(session, overdue, days_ago(31))  # the last visit counts, not the first
    visit(session, recent, days_ago(3))
    due = due_names(session)
    assert set(due) == {"从未走访", "逾期"}
    assert due["从未走访"].last_visit is None and due["从未走访"].overdue_days(NOW) is None
    assert due["逾期"].interval_days == 30 and due["逾期"].groups == ("disabled",)
    assert due["逾期"].last_visit is not None and abs(due["逾期"].last_visit - days_ago(31)) < dt.timedelta(seconds=1)
    assert due["逾期"].overdue_days(NOW) == 1
    # never visited comes first
    assert [d.person.name for d in visits.due_visits(session=session, now=NOW)] == ["从未走访", "逾期"]


def test_the_shortest_interval_of_a_persons_groups_wins(session: Session, trees: tuple[Tree, Tree]) -> None:
    north, _ = trees
    both = person(session, north, "低保重病", "low_income", "serious_illness")  # 30 and 14 days
    only = person(session, north, "低保", "low_income")
    alone = person(session, north, "孤老", "solitary_elderly", "disabled")  # 7 and 30 days
    for p in (both, only, alone):
        visit(session, p, days_ago(20))
    due = due_names(session)
    assert set(due) == {"低保重病", "孤老"}
    assert due["低保重病"].interval_days == 14 and due["低保重病"].groups == ("serious_illness", "low_income")
    assert due["孤老"].interval_days == 7 and due["孤老"].overdue_days(NOW) == 13


def test_a_rule_tag_counts_and_only_active_people_are_due(session: Session, trees: tuple[Tree, Tree]) -> None:
    north, _ = trees
    person(session, north, "九十老人", birth=dt.date(NOW.year - 90, 1, 1))  # 高龄 by the tag rule
    person(session, north, "已迁出", "disabled", status="moved_out")
    due = due_names(session)
    assert "九十老人" in due and due["九十老人"].groups == ("very_old",) and due["九十老人"].interval_days == 30
    assert "已迁出" not in due


def test_the_tenants_own_intervals(session: Session, trees: tuple[Tree, Tree]) -> None:
    north, _ = trees
    poor = person(session, north, "低保", "low_income")
    disabled = person(session, north, "残疾", "disabled")
    ill = person(session, north, "重病", "serious_illness")
    for p in (poor, disabled, ill):
        visit(session, p, days_ago(12))
    assert set(due_names(session)) == set()
    assert visits.visit_days(session)["low_income"] == 30
    tenant = session.get(Tenant, session.info["tenant_id"])
    assert tenant is not None
    tenant.settings = {**(tenant.settings or {}), "visit_days": {"low_income": 10, "disabled": 0}}
    session.flush()
    days = visits.visit_days(session)
    assert days["low_income"] == 10 and "disabled" not in days and days["serious_illness"] == 14
    assert set(due_names(session)) == {"低保"}
    # the caller may pass the intervals too
    assert set(due_names(session, days={"serious_illness": 5})) == {"重病"}


def test_due_visits_of_one_committee_and_of_a_scope(session: Session, trees: tuple[Tree, Tree]) -> None:
    north, south = trees
    person(session, north, "北街残疾", "disabled")
    southern = person(session, south, "南街残疾", "disabled")
    assert set(due_names(session)) == {"北街残疾", "南街残疾"}
    assert set(due_names(session, committee_id=north.committee.id)) == {"北街残疾"}
    bind_context(session, tenant_id=session.info["tenant_id"], actor="juwei",
                 scope=Scope.areas(committees=[north.committee.id], ancestors=[north.grid.id]))
    try:
        assert set(due_names(session)) == {"北街残疾"}
        with pytest.raises(visits.VisitError) as refused:
            visit(session, southern, days_ago(1))
        assert refused.value.field == "person_id"
    finally:
        bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=None)


def test_due_visits_read_in_one_query_however_many_people(session: Session, trees: tuple[Tree, Tree]) -> None:
    north, _ = trees
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    people = [person(session, north, f"居民{i}", "disabled", "low_income") for i in range(12)]
    for p in people[::2]:
        visit(session, p, days_ago(40))
    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        found = visits.due_visits(session=session, now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(found) == 12
    assert len(statements) == 1, statements


def test_a_visit_is_placed_with_its_person(session: Session, trees: tuple[Tree, Tree]) -> None:
    north, _ = trees
    p = person(session, north, "张阿婆", "solitary_elderly")
    v = visits.record_visit(session=session, person_id=p.id, visitor="juwei", way="phone",
                            result="needs_help", note="  腿脚不便，需要送餐  ")
    stored = session.scalar(select(Visit).where(Visit.id == v.id))
    assert stored is not None
    assert stored.committee_id == north.committee.id and stored.place_id == north.room.id
    assert stored.note == "腿脚不便，需要送餐" and stored.result == "needs_help" and stored.way == "phone"
    assert abs(stored.visited_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert visits.last_visits(session=session, person_ids=[p.id]).keys() == {p.id}


@pytest.mark.parametrize(("change", "field"), [
    ({"way": "letter"}, "way"),
    ({"result": "fine"}, "result"),
    ({"note": "很" * 501}, "note"),
    ({"visitor": " "}, "visitor"),
    ({"at": NOW + dt.timedelta(days=1)}, "at"),
    ({"at": dt.datetime(2026, 1, 1)}, "at"),
    ({"person_id": 2_000_000_000}, "person_id"),
])
def test_record_visit_names_the_bad_field(session: Session, trees: tuple[Tree, Tree], change: dict[str, object],
                                          field: str) -> None:
    north, _ = trees
    p = person(session, north, "李阿姨", "disabled")
    values: dict[str, object] = {"person_id": p.id, "visitor": "juwei", "way": "home", "result": "well",
                                 "note": "", **change}
    with pytest.raises(visits.VisitError) as refused:
        visits.record_visit(session=session, **values)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert session.scalar(select(Visit.id).where(Visit.person_id == p.id)) is None
