"""Scopes at the data layer: a session bound to a committee, a grid, a resident or nothing sees
only that part of its tenant, through any ORM statement (lists, counts, subqueries, updates)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shequ.core.changelog import ChangeLog
from shequ.core.iam import service as iam
from shequ.core.iam.scope import Scope, scope_of
from shequ.core.places.models import Place
from shequ.core.registry.models import Household, Membership, Organisation, Person, Tagging
from shequ.core.registry.validators import make_id_number
from shequ.db import bind_context
from tests.factories import Tree, place_tree

PASSWORD = "jiangchuan2024"


@dataclass
class World:
    a: Tree
    b: Tree
    a_people: list[Person]
    b_people: list[Person]
    household: Household


@pytest.fixture
def world(session: Session) -> World:
    from shequ.core.registry.tags import add_tag, install_default_tags

    a = place_tree(session, tag="A", committee_name="甲区居委会")
    b = place_tree(session, tag="B", lon=121.45, committee_name="乙区居委会")
    install_default_tags(session=session)
    household = Household(number="H-A-1", place_id=a.room.id)
    session.add(household)
    session.flush()
    people: dict[str, list[Person]] = {"a": [], "b": []}
    for n, (area, tree) in enumerate([("a", a), ("a", a), ("b", b), ("b", b)]):
        birth = dt.date(1950 + n, 1, 1)
        person = Person(name=f"{'甲' if area == 'a' else '乙区'}{n}", birth_date=birth,
                        id_number=make_id_number("310112", birth, 200 + n), place_id=tree.room.id,
                        household_id=household.id if n == 0 else None)
        session.add(person)
        people[area].append(person)
    org_b = Organisation(kind="enterprise", name="乙区公司", place_id=b.building.id)
    session.add(org_b)
    session.flush()
    session.add(Membership(person_id=people["a"][1].id, organisation_id=org_b.id, role="employee"))
    for person in people["a"] + people["b"]:
        add_tag(session=session, code="party_member", entity="person", entity_id=person.id, by="t")
    session.flush()
    session.expunge_all()  # nothing in the identity map: every read below goes to the database
    return World(a, b, people["a"], people["b"], household)


def _bind(session: Session, scope: Scope | None) -> None:
    bind_context(session, tenant_id=session.info["tenant_id"], actor="t", scope=scope)


def test_committee_scope_limits_lists_counts_and_subqueries(session: Session, world: World) -> None:
    _bind(session, Scope.areas(committees=[world.a.committee.id], ancestors=[world.a.grid.id]))
    names = set(session.scalars(select(Person.name)))
    assert names == {"甲0", "甲1"}
    assert session.scalar(select(func.count()).select_from(Person)) == 2
    inner = select(Person.id).where(Person.name.like("乙区%")).scalar_subquery()
    assert session.scalar(select(func.count(Person.id)).where(Person.id.in_(inner))) == 0
    # b's record by id: not found, whether by select or by session.get
    b_id = world.b_people[0].id
    assert session.scalar(select(Person).where(Person.id == b_id)) is None
    assert session.get(Person, b_id) is None
    # places: a's subtree and its grid, none of b's
    places = set(session.scalars(select(Place.id)))
    assert world.a.grid.id in places and world.a.room.id in places
    assert not places & {world.b.grid.id, world.b.committee.id, world.b.room.id}
    # tags, memberships (b's organisation), change log: nothing about b
    tagged = set(session.scalars(select(Tagging.entity_id).where(Tagging.entity == "person")))
    assert tagged == {p.id for p in world.a_people}
    assert session.scalars(select(Membership)).all() == []
    assert session.scalars(select(Organisation)).all() == []
    logged = set(session.scalars(select(ChangeLog.entity_id).where(ChangeLog.entity == "person")))
    assert logged == {p.id for p in world.a_people}
    # an UPDATE of "everyone" touches only the scope
    session.execute(update(Person).values(ethnicity="汉族"))
    _bind(session, None)
    by_name = {n: e for n, e in session.execute(select(Person.name, Person.ethnicity))}
    assert by_name["甲0"] == "汉族" and by_name["乙区2"] is None


def test_reports_and_tag_counts_honour_the_scope(session: Session, world: World) -> None:
    from shequ.core.registry.quality import report
    from shequ.core.registry.tags import tag_counts

    _bind(session, Scope.areas(committees=[world.a.committee.id]))
    party = next(tc for tc in tag_counts(session=session, entity="person") if tc.tag.code == "party_member")
    assert party.count == 2
    rows = report(session=session).for_kind("person")
    assert [(r.committee_id, r.total) for r in rows] == [(world.a.committee.id, 2)]


def test_grid_worker_and_resident_and_nothing(session: Session, world: World) -> None:
    grid = iam.create_user(session=session, username="g1", password=PASSWORD, role="grid_worker",
                           scope={"grids": [world.b.grid.id]})
    _bind(session, scope_of(session=session, user=grid))
    assert set(session.scalars(select(Person.name))) == {"乙区2", "乙区3"}
    assert set(session.scalars(select(Organisation.name))) == {"乙区公司"}

    _bind(session, None)
    me = world.a_people[0]
    resident = iam.create_user(session=session, username="r1", password=PASSWORD, role="resident",
                               scope={"person_id": me.id})
    _bind(session, scope_of(session=session, user=resident))
    assert set(session.scalars(select(Person.id))) == {me.id}
    assert set(session.scalars(select(Household.id))) == {world.household.id}
    places = set(session.scalars(select(Place.id)))
    assert world.a.room.id in places and world.a.grid.id in places and world.a.room2.id not in places
    assert session.scalars(select(Organisation)).all() == []

    _bind(session, Scope.nothing())
    assert session.scalar(select(func.count()).select_from(Person)) == 0
    assert session.scalar(select(func.count()).select_from(Place)) == 0
    assert session.scalar(select(func.count()).select_from(Tagging)) == 0


def test_roles_map_to_scopes(session: Session, world: World) -> None:
    def make(name: str, role: str, scope: dict | None = None) -> Scope:
        user = iam.create_user(session=session, username=name, password=PASSWORD, role=role, scope=scope)
        return scope_of(session=session, user=user)

    assert make("ad", "admin").whole_tenant and make("le", "leader").whole_tenant
    assert make("de", "department", {"department": "城运中心"}).whole_tenant
    committee = make("cm", "committee", {"committees": [world.a.committee.id]})
    assert committee.committees == {world.a.committee.id} and world.a.grid.id in committee.ancestors
    assert make("pr", "property", {"compounds": [world.a.compound.id]}).compounds == {world.a.compound.id}
    assert make("api", "api_client").kind == "nothing"
    assert make("api2", "api_client", {"tenant": True}).whole_tenant
    assert make("api3", "api_client", {"committees": [world.b.committee.id]}).committees == {
        world.b.committee.id}


@pytest.mark.parametrize(("role", "scope", "message"), [
    ("committee", {}, "scope.committees"),
    ("committee", {"committees": [999999]}, "scope.committees"),
    ("committee", {"committees": "x"}, "scope.committees"),
    ("grid_worker", {"grids": []}, "scope.grids"),
    ("property", None, "scope.compounds"),
    ("department", {"department": "财务科"}, "scope.department"),
    ("resident", {}, "scope.person_id"),
    ("device", {}, "scope.device_id"),
])
def test_create_user_checks_the_binding(session: Session, role: str, scope: dict | None,
                                        message: str) -> None:
    with pytest.raises(ValueError, match=message):
        iam.create_user(session=session, username="u1", password=PASSWORD, role=role, scope=scope)


def test_committee_binding_must_name_a_committee(session: Session, world: World) -> None:
    # a grid id is not a committee id
    with pytest.raises(ValueError, match="scope.committees"):
        iam.create_user(session=session, username="u2", password=PASSWORD, role="committee",
                        scope={"committees": [world.a.grid.id]})
