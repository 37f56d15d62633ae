"""Profiles (画像): what a person, household, house, building and organisation page shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from shequ.core.places.service import create_tenant
from shequ.core.registry.models import (
    Facility,
    House,
    Household,
    Membership,
    Organisation,
    Person,
    Situation,
)
from shequ.core.registry.profiles import Profile, Section, profile, register_section
from shequ.core.registry.tags import add_tag, install_default_tags
from shequ.core.registry.validators import make_id_number, make_uscc
from shequ.db import bind_context
from tests.core.registry.test_tags import born
from tests.factories import Tree, place_tree


@dataclass
class Family:
    tree: Tree
    house: House
    household: Household
    grandma: Person
    son: Person
    branch: Organisation
    firm: Organisation
    lift: Facility


@pytest.fixture
def family(session: Session) -> Family:
    install_default_tags(session=session)
    tree = place_tree(session)
    house = House(place_id=tree.room.id, use="owner_occupied", area_m2=58.5, rooms=2, owner_name="王秀英")
    session.add(house)
    session.flush()
    hh = Household(number="310112-0001", house_id=house.id, place_id=tree.room.id)
    session.add(hh)
    session.flush()
    grandma = Person(name="王秀英", birth_date=born(82), sex="F", household_id=hh.id, relation="head",
                     house_id=house.id, place_id=tree.room.id,
                     id_number=make_id_number("310112", born(82), 2), phone="13812345678")
    son = Person(name="李建国", birth_date=born(50), sex="M", household_id=hh.id, relation="child",
                 house_id=house.id, place_id=tree.room.id)
    session.add_all([grandma, son])
    session.flush()
    hh.head_person_id = grandma.id
    branch = Organisation(kind="party_branch", name="鹤庆新村党支部", place_id=tree.compound.id)
    firm = Organisation(kind="enterprise", name="江川科技有限公司", legal_person="赵强",
                        credit_code=make_uscc("9", "1", "310112", "MA1K2345"),
                        contact_phone="13987654321", place_id=tree.building.id, employees=12)
    session.add_all([branch, firm])
    session.flush()
    session.add(Membership(person_id=grandma.id, organisation_id=branch.id, role="party_member",
                           since=dt.date(1975, 7, 1)))
    lift = Facility(kind="elevator", code="EL-12-1", name="12号1单元电梯", place_id=tree.building.id,
                    operator_id=firm.id, lon=121.4021, lat=31.0021)
    session.add(lift)
    session.add(Situation(source="hotline_12345", category="加装电梯", title="希望加装电梯",
                          reporter_id=grandma.id, place_id=tree.room.id,
                          occurred_at=dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)))
    session.flush()
    add_tag(session=session, code="party_member", entity="person", entity_id=grandma.id, by="居委")
    return Family(tree, house, hh, grandma, son, branch, firm, lift)


def rows(p: Profile, key: str) -> dict[str, str]:
    sec = p.section(key)
    assert sec is not None, key
    return dict(sec.rows)


def test_person_profile_gathers_household_home_organisations_and_requests(session: Session,
                                                                        family: Family) -> None:
    p = profile(session=session, entity="person", entity_id=family.grandma.id)
    assert p is not None
    assert p.title == "王秀英"
    assert "82岁" in p.subtitle and "北街居委会" in p.subtitle
    assert {(t.name, t.origin) for t in p.tags} == {("党员", "manual"), ("高龄", "rule"), ("老年人", "rule")}
    basic = rows(p, "basic")
    assert basic["身份证号"].startswith("3101") and "*" in basic["身份证号"]
    assert basic["联系电话"] == "138****5678"
    assert "13812345678" not in repr(p)
    household = p.section("household")
    assert household is not None and household.table is not None
    assert [r[0] for r in household.table.rows] == ["王秀英", "李建国"]
    assert household.table.rows[1][1] == "子女"
    assert household.table.links[1] == household.table.links[1].__class__("李建国", "person", family.son.id)
    home = rows(p, "home")
    assert home["地址"] == "鹤庆路258弄12号301室" and home["房屋用途"] == "自住"
    assert home["居委会"] == "北街居委会" and home["网格"] == "第A网格"
    orgs = p.section("organisations")
    assert orgs is not None and orgs.table is not None and orgs.table.rows[0][0] == "鹤庆新村党支部"
    requests = p.section("situations")
    assert requests is not None and requests.table is not None
    assert requests.table.rows[0][:3] == ["2026-03-01 10:00", "12345热线", "加装电梯"]
    assert any(h.action == "update" and h.changes[0][0] == "tag:party_member" for h in p.history)
    assert any(h.action == "create" for h in p.history)
    english = profile(session=session, entity="person", entity_id=family.grandma.id, lang="en")
    assert english is not None and english.section("basic").title == "Basic facts"  # type: ignore[union-attr]
    assert "aged 80 and over" in {t.name for t in english.tags}


def test_household_house_and_organisation_profiles(session: Session, family: Family) -> None:
    hh = profile(session=session, entity="household", entity_id=family.household.id)
    assert hh is not None and hh.subtitle.startswith("王秀英")
    assert rows(hh, "basic")["在册人数"] == "2"
    members = hh.section("members")
    assert members is not None and members.table is not None
    tags = dict((r[0], r[-1]) for r in members.table.rows)
    assert set(tags["王秀英"].split("、")) == {"党员", "高龄", "老年人"} and tags["李建国"] == ""

    house = profile(session=session, entity="house", entity_id=family.house.id)
    assert house is not None and house.title == "鹤庆路258弄12号301室"
    assert rows(house, "basic")["建筑面积(㎡)"] == "58.5"
    assert rows(house, "residents")["在册居住人数"] == "2"

    firm = profile(session=session, entity="organisation", entity_id=family.firm.id)
    assert firm is not None
    basic = rows(firm, "basic")
    assert basic["联系电话"] == "139****4321" and basic["法定代表人/负责人"] == "赵强"
    assert basic["统一社会信用代码"] == family.firm.credit_code
    operated = firm.section("facilities")
    assert operated is not None and operated.table is not None and operated.table.rows[0][0] == "EL-12-1"
    branch = profile(session=session, entity="organisation", entity_id=family.branch.id)
    assert branch is not None and rows(branch, "members")["成员总数"] == "1"


def test_building_profile_counts_and_age_structure(session: Session, family: Family) -> None:
    b = profile(session=session, entity="building", entity_id=family.tree.building.id)
    assert b is not None
    assert b.title == "鹤庆路258弄12号"
    basic = rows(b, "basic")
    assert (basic["单元数"], basic["房间数"], basic["户数"], basic["在册居住人数"]) == ("1", "2", "1", "2")
    ages = b.section("ages")
    assert ages is not None and ages.table is not None
    assert {r[0]: r[1] for r in ages.table.rows} == {"0–17岁": "0", "18–59岁": "1", "60–79岁": "0",
                                                     "80岁及以上": "1"}
    groups = {r[0]: r[1] for r in b.section("tags").table.rows}  # type: ignore[union-attr]
    assert groups == {"高龄": "1", "老年人": "1", "党员": "1"}
    located = b.section("located")
    assert located is not None and located.table is not None
    assert {r[0] for r in located.table.rows} == {"江川科技有限公司", "12号1单元电梯"}
    # the list pages call it by the kind key "place"; a room is a plain place profile
    assert profile(session=session, entity="place", entity_id=family.tree.building.id).entity == "building"  # type: ignore[union-attr]
    assert profile(session=session, entity="place", entity_id=family.tree.room.id).entity == "place"  # type: ignore[union-attr]
    assert profile(session=session, entity="building", entity_id=family.tree.room.id) is None


def test_unknown_ids_and_other_tenants_give_none(session: Session, family: Family) -> None:
    assert profile(session=session, entity="person", entity_id=family.grandma.id + 10_000) is None
    other = create_tenant(session=session, code="T-other-profile", name="另一街道")
    own = session.info["tenant_id"]
    bind_context(session, tenant_id=other.id, actor="test")
    for entity, obj in (("person", family.grandma), ("household", family.household),
                        ("building", family.tree.building), ("organisation", family.firm)):
        assert profile(session=session, entity=entity, entity_id=obj.id) is None
    bind_context(session, tenant_id=own, actor="test")
    with pytest.raises(ValueError, match="unknown profile entity"):
        profile(session=session, entity="spaceship", entity_id=1)


def test_a_scenario_adds_a_section_without_touching_profiles(session: Session, family: Family) -> None:
    from shequ.core.registry import profiles

    def health(ctx: profiles.ProfileContext) -> Section:
        return Section("health", ctx.t("健康档案", "Health"), rows=[("血压", "正常")])

    register_section("person", health, order=15)
    try:
        p = profile(session=session, entity="person", entity_id=family.grandma.id)
        assert p is not None
        assert [s.key for s in p.sections][:3] == ["basic", "health", "household"]
    finally:
        profiles._SECTIONS["person"].remove((15, health))


def test_a_profile_takes_a_bounded_number_of_queries(session: Session, family: Family) -> None:
    for i in range(20):
        session.add(Person(name=f"成员{i}", household_id=family.household.id, birth_date=born(30 + i),
                           place_id=family.tree.room.id, house_id=family.house.id))
    session.flush()
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        for entity, obj in (("household", family.household), ("house", family.house),
                            ("building", family.tree.building)):
            statements.clear()
            assert profile(session=session, entity=entity, entity_id=obj.id) is not None
            assert len(statements) <= 16, (entity, len(statements))
    finally:
        event.remove(engine, "before_cursor_execute", count)
