"""Tags: the default taxonomy, rule validation, rule tags following their inputs, manual tags."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.changelog import history
from shequ.core.registry.models import House, Household, Organisation, Person, Tag, Tagging
from shequ.core.registry.tag_rules import RuleError, validate_rule
from shequ.core.registry.tags import (
    TagError,
    add_tag,
    create_tag,
    install_default_tags,
    recompute_all,
    remove_tag,
    tag_counts,
    tags_of,
    today_shanghai,
    update_tag,
)
from shequ.db import bind_context
from tests.factories import place_tree


def born(years: int, days: int = 0) -> dt.date:
    """A birth date making someone exactly ``years`` old today (Shanghai), minus ``days``."""
    today = today_shanghai()
    try:
        date = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        date = today.replace(year=today.year - years, day=28)
    return date + dt.timedelta(days=days)


def codes(session: Session, entity: str, entity_id: int) -> set[str]:
    return {t.code for t in tags_of(session=session, entity=entity, ids=[entity_id]).get(entity_id, [])}


def person(session: Session, name: str, *, birth: dt.date | None = None, household: Household | None = None,
           house: House | None = None, status: str = "active") -> Person:
    p = Person(name=name, birth_date=birth, household_id=household.id if household else None,
               house_id=house.id if house else None, status=status,
               place_id=house.place_id if house else None)
    session.add(p)
    session.flush()
    return p


@pytest.fixture
def tagged(session: Session) -> Session:
    install_default_tags(session=session)
    return session


# --- taxonomy --------------------------------------------------------------------------


def test_default_tags_install_once_with_hierarchy_and_fixed_codes(session: Session) -> None:
    created = install_default_tags(session=session)
    assert created >= 20
    assert install_default_tags(session=session) == 0
    tags = {t.code: t for t in session.scalars(select(Tag))}
    for code in ("low_income", "disabled", "party_member", "volunteer"):
        assert tags[code].rule is None, code
    assert tags["very_old"].name == "高龄"
    assert tags["very_old"].parent_id == tags["special_groups"].id
    assert tags["elderly_alone"].parent_id == tags["special_groups"].id
    assert tags["party_member"].parent_id == tags["political_status"].id
    assert tags["overcrowded_rental"].applies_to == "house"
    assert tags["major_taxpayer"].parent_id == tags["key_enterprises"].id


def test_default_tags_are_per_tenant(session: Session) -> None:
    from shequ.core.places.service import create_tenant

    install_default_tags(session=session)
    own = session.info["tenant_id"]
    other = create_tenant(session=session, code="T-other-tags", name="另一街道")
    bind_context(session, tenant_id=other.id, actor="test")
    assert session.scalars(select(Tag)).all() == []
    assert install_default_tags(session=session) > 0
    bind_context(session, tenant_id=own, actor="test")
    assert len(session.scalars(select(Tag).where(Tag.code == "very_old")).all()) == 1


# --- rule validation ---------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "message"), [
    ({"field": "height", "op": "ge", "value": 1}, "未知字段 'height'"),
    ({"field": "age", "op": "gte", "value": 80}, "不支持的运算符 'gte'"),
    ({"field": "age", "op": "ge", "value": "80"}, "rule.value"),
    ({"field": "age", "op": "has_tag", "value": "x"}, "不能用运算符 has_tag"),
    ({"field": "sex", "op": "eq", "value": "X"}, "M, F"),
    ({"field": "lives_alone", "op": "eq", "value": 1}, "true/false"),
    ({"field": "age", "op": "between", "value": [90, 80]}, "between"),
    ({"field": "age", "op": "in", "value": []}, "非空列表"),
    ({"all": []}, "rule.all"),
    ({"all": [{"field": "age", "op": "ge", "value": 60}, {"not": {"field": "zz", "op": "eq", "value": 1}}]},
     "rule.all[1].not.field"),
    ({"field": "age", "op": "ge", "value": 60, "extra": 1}, "多余的键"),
    ({"field": "tags", "op": "has_tag", "value": "no_such_tag"}, "未知标签"),
    ("age >= 80", "必须是对象"),
])
def test_invalid_rules_are_refused_naming_the_problem(tagged: Session, rule: object, message: str) -> None:
    with pytest.raises(RuleError) as exc:
        create_tag(session=tagged, code="bad_rule", name="坏规则", rule=rule)  # type: ignore[arg-type]
    assert message in str(exc.value)
    assert tagged.scalar(select(Tag).where(Tag.code == "bad_rule")) is None


def test_rules_are_refused_for_fields_of_another_entity() -> None:
    with pytest.raises(RuleError, match="未知字段 'use'"):
        validate_rule({"field": "use", "op": "eq", "value": "rented"}, "person")
    with pytest.raises(RuleError, match="rules are available"):
        validate_rule({"field": "age", "op": "ge", "value": 1}, "facility")


def test_a_rule_cycle_is_refused(tagged: Session) -> None:
    create_tag(session=tagged, code="a_tag", name="甲", rule={"field": "age", "op": "ge", "value": 1})
    create_tag(session=tagged, code="b_tag", name="乙",
               rule={"field": "tags", "op": "has_tag", "value": "a_tag"})
    with pytest.raises(RuleError, match="循环"):
        update_tag(session=tagged, code="a_tag", rule={"field": "tags", "op": "has_tag", "value": "b_tag"})
    with pytest.raises(RuleError, match="它自己"):
        update_tag(session=tagged, code="a_tag", rule={"field": "tags", "op": "has_tag", "value": "a_tag"})


# --- default rules -------------------------------------------------------------------------


def test_age_rules_follow_birth_dates(tagged: Session) -> None:
    tree = place_tree(tagged)
    house = House(place_id=tree.room.id, use="owner_occupied")
    tagged.add(house)
    tagged.flush()
    hh = Household(number="H1", house_id=house.id, place_id=tree.room.id)
    tagged.add(hh)
    tagged.flush()
    old = person(tagged, "老甲", birth=born(80), household=hh, house=house)
    almost = person(tagged, "老乙", birth=born(80, days=1), household=hh, house=house)
    sixty = person(tagged, "中丙", birth=born(60), household=hh, house=house)
    child = person(tagged, "小丁", birth=born(10), household=hh, house=house)
    unknown = person(tagged, "无生日", household=hh, house=house)
    assert codes(tagged, "person", old.id) == {"very_old", "elderly"}
    assert codes(tagged, "person", almost.id) == {"elderly"}
    assert codes(tagged, "person", sixty.id) == {"elderly"}
    assert codes(tagged, "person", child.id) == {"minor"}
    assert codes(tagged, "person", unknown.id) == set()


def test_elderly_alone_and_moving_out_of_a_two_person_household(tagged: Session) -> None:
    tree = place_tree(tagged)
    house = House(place_id=tree.room.id, use="owner_occupied")
    tagged.add(house)
    tagged.flush()
    hh = Household(number="H2", house_id=house.id)
    tagged.add(hh)
    tagged.flush()
    grandma = person(tagged, "王奶奶", birth=born(75), household=hh, house=house)
    son = person(tagged, "王儿子", birth=born(45), household=hh, house=house)
    assert "elderly_alone" not in codes(tagged, "person", grandma.id)
    # the son moves out: his household changes; nobody calls a tag function
    son.household_id = None
    son.house_id = None
    tagged.flush()
    assert "elderly_alone" in codes(tagged, "person", grandma.id)
    # he comes back: the tag goes
    son.household_id = hh.id
    tagged.flush()
    assert "elderly_alone" not in codes(tagged, "person", grandma.id)
    # he is recorded as moved out (status): she lives alone again
    son.status = "moved_out"
    tagged.flush()
    assert "elderly_alone" in codes(tagged, "person", grandma.id)
    # a 59-year-old living alone is not 独居老人
    hh2 = Household(number="H3")
    tagged.add(hh2)
    tagged.flush()
    younger = person(tagged, "李阿姨", birth=born(59), household=hh2)
    assert codes(tagged, "person", younger.id) == set()
    # a deceased person keeps no age tags
    grandma.status = "deceased"
    tagged.flush()
    assert codes(tagged, "person", grandma.id) == set()


def test_birth_date_change_tags_before_commit(tagged: Session) -> None:
    p = person(tagged, "张三", birth=born(79))
    assert codes(tagged, "person", p.id) == {"elderly"}
    p.birth_date = born(81)
    # the query autoflushes; the tag is there within the same transaction
    assert codes(tagged, "person", p.id) == {"elderly", "very_old"}
    rows = tagged.execute(select(Tagging.origin, Tagging.by).join(Tag).where(
        Tagging.entity_id == p.id, Tag.code == "very_old")).all()
    assert rows == [("rule", "rule")]


def test_house_rules_rented_and_overcrowding(tagged: Session) -> None:
    tree = place_tree(tagged)
    flat = House(place_id=tree.room.id, use="rented", area_m2=60)
    empty = House(place_id=tree.room2.id, use="vacant")
    tagged.add_all([flat, empty])
    tagged.flush()
    assert codes(tagged, "house", flat.id) == {"rented_house"}
    assert codes(tagged, "house", empty.id) == {"vacant_house"}
    tenants = [person(tagged, f"租客{i}", birth=born(30), house=flat) for i in range(5)]
    assert "overcrowded_rental" not in codes(tagged, "house", flat.id)
    sixth = person(tagged, "租客6", birth=born(30), house=flat)
    assert codes(tagged, "house", flat.id) == {"rented_house", "overcrowded_rental"}
    sixth.house_id = empty.id
    tagged.flush()
    assert codes(tagged, "house", flat.id) == {"rented_house"}
    flat.use = "owner_occupied"
    tagged.flush()
    assert codes(tagged, "house", flat.id) == set()
    assert len(tenants) == 5


def test_organisation_rule(tagged: Session) -> None:
    org = Organisation(kind="enterprise", name="江川制造", employees=80)
    tagged.add(org)
    tagged.flush()
    assert codes(tagged, "organisation", org.id) == set()
    org.employees = 150
    tagged.flush()
    assert codes(tagged, "organisation", org.id) == {"labour_intensive"}


def test_a_custom_rule_on_manual_tags_and_editing_rules(tagged: Session) -> None:
    p = person(tagged, "赵六", birth=born(70))
    create_tag(session=tagged, code="poor_elderly", name="困难老人", parent_code="special_groups",
               rule={"all": [{"field": "tags", "op": "has_tag", "value": "elderly"},
                             {"any": [{"field": "tags", "op": "has_tag", "value": "low_income"},
                                      {"field": "tags", "op": "has_tag", "value": "disabled"}]}]})
    assert "poor_elderly" not in codes(tagged, "person", p.id)
    add_tag(session=tagged, code="low_income", entity="person", entity_id=p.id, by="社工小王")
    assert "poor_elderly" in codes(tagged, "person", p.id)
    remove_tag(session=tagged, code="low_income", entity="person", entity_id=p.id, by="社工小王")
    assert "poor_elderly" not in codes(tagged, "person", p.id)
    # editing a default threshold takes effect at once
    update_tag(session=tagged, code="elderly", rule={"field": "age", "op": "ge", "value": 75})
    assert "elderly" not in codes(tagged, "person", p.id)
    # a rule tag made manual keeps its taggings, now manual
    update_tag(session=tagged, code="elderly", rule={"field": "age", "op": "ge", "value": 65})
    update_tag(session=tagged, code="elderly", rule=None)
    origin = tagged.scalar(select(Tagging.origin).join(Tag).where(Tag.code == "elderly",
                                                                 Tagging.entity_id == p.id))
    assert origin == "manual"


def test_recompute_all_catches_up_with_time_and_bulk_writes(tagged: Session) -> None:
    from sqlalchemy import insert

    tenant_id = tagged.info["tenant_id"]
    tagged.execute(insert(Person), [
        {"tenant_id": tenant_id, "name": f"批量{i}", "birth_date": born(79, days=-200),
         "status": "active"} for i in range(3)])  # 79 and a half: bypassed the ORM events
    ids = list(tagged.scalars(select(Person.id).where(Person.name.like("批量%"))))
    assert all(codes(tagged, "person", i) == set() for i in ids)
    assert recompute_all(session=tagged) == 3  # elderly ×3
    assert all(codes(tagged, "person", i) == {"elderly"} for i in ids)
    assert recompute_all(session=tagged) == 0
    in_a_year = today_shanghai() + dt.timedelta(days=366)
    assert recompute_all(session=tagged, today=in_a_year) == 3  # very_old ×3
    assert all(codes(tagged, "person", i) == {"elderly", "very_old"} for i in ids)


# --- manual tags ----------------------------------------------------------------------------


def test_manual_tags_are_set_by_people_and_logged(tagged: Session) -> None:
    p = person(tagged, "钱七", birth=born(40))
    add_tag(session=tagged, code="party_member", entity="person", entity_id=p.id, by="居委王书记")
    add_tag(session=tagged, code="party_member", entity="person", entity_id=p.id, by="居委王书记")
    row = tagged.execute(select(Tagging.origin, Tagging.by).join(Tag).where(
        Tag.code == "party_member", Tagging.entity_id == p.id)).all()
    assert row == [("manual", "居委王书记")]
    logged = [c for c in history(tagged, "person", p.id) if c.after and "tag:party_member" in c.after]
    assert logged and logged[0].actor == "居委王书记" and logged[0].after == {"tag:party_member": "党员"}
    # recompute never touches manual tags
    recompute_all(session=tagged)
    assert codes(tagged, "person", p.id) == {"party_member"}
    assert remove_tag(session=tagged, code="party_member", entity="person", entity_id=p.id, by="居委王书记")
    assert codes(tagged, "person", p.id) == set()
    assert history(tagged, "person", p.id)[0].before == {"tag:party_member": "党员"}


def test_rule_tags_and_mismatched_tags_cannot_be_set_by_hand(tagged: Session) -> None:
    p = person(tagged, "孙八", birth=born(50))
    with pytest.raises(TagError, match="规则标签"):
        add_tag(session=tagged, code="very_old", entity="person", entity_id=p.id, by="x")
    with pytest.raises(TagError, match="规则标签"):
        remove_tag(session=tagged, code="elderly", entity="person", entity_id=p.id, by="x")
    with pytest.raises(TagError, match="适用于"):
        add_tag(session=tagged, code="major_taxpayer", entity="person", entity_id=p.id, by="x")
    with pytest.raises(TagError, match="没有 person"):
        add_tag(session=tagged, code="volunteer", entity="person", entity_id=p.id + 999, by="x")
    with pytest.raises(TagError, match="没有标签"):
        add_tag(session=tagged, code="nope", entity="person", entity_id=p.id, by="x")


def test_building_tags_and_counts(tagged: Session) -> None:
    tree = place_tree(tagged)
    add_tag(session=tagged, code="elevator_retrofit", entity="building", entity_id=tree.building.id, by="x")
    with pytest.raises(TagError, match="楼栋"):
        add_tag(session=tagged, code="elevator_retrofit", entity="place", entity_id=tree.room.id, by="x")
    assert codes(tagged, "building", tree.building.id) == {"elevator_retrofit"}
    people = [person(tagged, f"人{i}", birth=born(age)) for i, age in enumerate((85, 82, 65, 30))]
    add_tag(session=tagged, code="disabled", entity="person", entity_id=people[0].id, by="x")
    counts = {c.tag.code: c for c in tag_counts(session=tagged, entity="person")}
    assert counts["very_old"].count == 2
    assert counts["elderly"].count == 3
    assert counts["disabled"].count == 1
    assert counts["special_groups"].count == 3  # distinct people, not taggings
    assert counts["special_groups"].depth == 0 and counts["very_old"].depth == 1
    assert "rented_house" not in counts


def test_tags_of_other_tenants_are_invisible(tagged: Session) -> None:
    from shequ.core.places.service import create_tenant

    p = person(tagged, "周九", birth=born(85))
    own = tagged.info["tenant_id"]
    other = create_tenant(session=tagged, code="T-other-tags2", name="另一街道")
    bind_context(tagged, tenant_id=other.id, actor="test")
    assert tags_of(session=tagged, entity="person", ids=[p.id]) == {}
    install_default_tags(session=tagged)
    with pytest.raises(TagError, match="没有 person"):
        add_tag(session=tagged, code="volunteer", entity="person", entity_id=p.id, by="x")
    bind_context(tagged, tenant_id=own, actor="test")
    assert codes(tagged, "person", p.id) == {"very_old", "elderly"}


def test_a_deleted_record_keeps_no_tags(tagged: Session) -> None:
    p = person(tagged, "吴十", birth=born(90))
    add_tag(session=tagged, code="volunteer", entity="person", entity_id=p.id, by="x")
    pid = p.id
    tagged.delete(p)
    tagged.flush()
    assert tagged.scalars(select(Tagging).where(Tagging.entity == "person",
                                                Tagging.entity_id == pid)).all() == []


def test_residents_counted_through_their_household_and_a_household_moving(tagged: Session) -> None:
    tree = place_tree(tagged)
    flat = House(place_id=tree.room.id, use="rented")
    other = House(place_id=tree.room2.id, use="rented")
    tagged.add_all([flat, other])
    tagged.flush()
    hh = Household(number="H-big", house_id=flat.id)
    tagged.add(hh)
    tagged.flush()
    for i in range(6):  # no house of their own: they live where their household lives
        person(tagged, f"合租{i}", birth=born(25), household=hh)
    assert "overcrowded_rental" in codes(tagged, "house", flat.id)
    hh.house_id = other.id
    tagged.flush()
    assert "overcrowded_rental" not in codes(tagged, "house", flat.id)
    assert "overcrowded_rental" in codes(tagged, "house", other.id)


def test_column_and_record_evaluation_agree() -> None:
    """The bulk evaluator (a set per leaf) means exactly what the per-record closure means."""
    import random

    from shequ.core.registry.tag_rules import compile_condition, matching_ids

    rnd = random.Random(7)
    records = {i: {"age": rnd.choice([None, *range(0, 100, 7)]), "sex": rnd.choice(["M", "F", None]),
                   "lives_alone": rnd.choice([True, False, None]), "tags": set()} for i in range(300)}
    for i in range(0, 300, 5):
        records[i]["tags"] = {"low_income"}
    rules = [
        {"all": [{"field": "age", "op": "ge", "value": 60}, {"field": "lives_alone", "op": "eq", "value": True}]},
        {"any": [{"field": "age", "op": "between", "value": [10, 20]}, {"field": "sex", "op": "is_null"}]},
        {"not": {"field": "age", "op": "in", "value": [7, 14, 21]}},
        {"all": [{"field": "sex", "op": "ne", "value": "M"}, {"field": "age", "op": "lt", "value": 50},
                 {"not": {"field": "tags", "op": "has_tag", "value": "special_groups"}}]},
        {"field": "age", "op": "not_in", "value": [0, 98]},
    ]
    subtrees = {"special_groups": frozenset({"special_groups", "low_income"}), "low_income": frozenset({"low_income"})}
    universe = set(records)

    def column(key: str) -> list[tuple[int, object]]:
        return [(i, f.get(key)) for i, f in records.items()]

    def tagged(code: str) -> set[int]:
        return {i for i, f in records.items() if f["tags"] & subtrees.get(code, frozenset({code}))}

    for rule in rules:
        cond = validate_rule(rule, "person")
        one_by_one = {i for i, f in records.items() if compile_condition(cond, subtrees)(f)}
        assert matching_ids(cond, column, universe, tagged) == one_by_one, rule
        assert 0 < len(one_by_one) < 300, rule


def test_a_member_registered_here_but_living_elsewhere_leaves_the_others_alone(tagged: Session) -> None:
    """人户分离: the son's household registration is here, he is not; his mother lives alone."""
    tree = place_tree(tagged)
    house = House(place_id=tree.room.id, use="rented")
    tagged.add(house)
    tagged.flush()
    hh = Household(number="H-away", house_id=house.id)
    tagged.add(hh)
    tagged.flush()
    mother = person(tagged, "陈阿姨", birth=born(72), household=hh, house=house)
    son = person(tagged, "陈儿子", birth=born(44), household=hh, house=house)
    assert "elderly_alone" not in codes(tagged, "person", mother.id)
    son.residence_type = "registered_away"
    tagged.flush()
    assert "elderly_alone" in codes(tagged, "person", mother.id)
    # an elderly person registered here but living elsewhere is not 独居老人 here
    away = person(tagged, "陈老伯", birth=born(81), household=Household(number="H-away2"))
    away.residence_type = "registered_away"
    tagged.flush()
    assert "elderly_alone" not in codes(tagged, "person", away.id)
    # nor does anyone registered but away count as living in a rented flat
    for n in range(6):
        lodger = person(tagged, f"租客{n}", birth=born(30), house=house)
        lodger.residence_type = "registered_away" if n == 0 else "resident"
    tagged.flush()
    # mother + five lodgers living there = 6 (the son and one lodger are away)
    assert "overcrowded_rental" in codes(tagged, "house", house.id)
    tagged.get(Person, mother.id).status = "deceased"  # type: ignore[union-attr]
    tagged.flush()
    assert "overcrowded_rental" not in codes(tagged, "house", house.id)
