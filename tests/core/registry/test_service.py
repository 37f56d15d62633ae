"""Registry write services: validation, ID-derived fields, the merge policy and source facts."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.changelog import history
from shequ.core.iam.crypto import blind_index
from shequ.core.registry import service
from shequ.core.registry.models import House, Household, Person, SourceFact
from shequ.core.registry.service import RecordInvalid
from shequ.core.registry.validators import make_id_number, make_uscc
from tests.factories import place_tree

ID = make_id_number("310112", dt.date(1950, 3, 1), 123)  # odd sequence: male


def facts(session: Session, entity: str, entity_id: int, field: str) -> dict[str, SourceFact]:
    rows = session.scalars(select(SourceFact).where(
        SourceFact.entity == entity, SourceFact.entity_id == entity_id, SourceFact.field == field)
        .execution_options(populate_existing=True))  # facts are written with Core
    return {f.source: f for f in rows}


def test_a_person_gets_birth_date_and_sex_from_the_id_number(session: Session) -> None:
    tree = place_tree(session)
    person = service.create_person(session=session, values={
        "name": "张建国", "id_number": ID.lower()[:-1] + ID[-1].lower(), "phone": "138 1234 5678",
        "address": "鹤庆路258弄12号301室"}, source="公安实有人口")
    assert (person.birth_date, person.sex) == (dt.date(1950, 3, 1), "M")
    assert person.id_number == ID and person.phone == "13812345678"
    assert person.id_number_mask == ID[:4] + "**********" + ID[-4:]
    assert (person.place_id, person.committee_id) == (tree.room.id, tree.committee.id)
    said = facts(session, "person", person.id, "id_number")["公安实有人口"]
    assert said.digest == blind_index(ID) and "*" in said.shown
    assert facts(session, "person", person.id, "name")["公安实有人口"].shown == "张建国"
    # derived values are not facts of the source
    assert facts(session, "person", person.id, "birth_date") == {}
    assert history(session, "person", person.id)[0].action == "create"


def test_a_bad_id_number_is_refused_with_the_reason(session: Session) -> None:
    bad = ID[:-1] + ("0" if ID[-1] != "0" else "1")
    with pytest.raises(RecordInvalid, match="校验位") as info:
        service.create_person(session=session, values={"name": "李四", "id_number": bad})
    assert info.value.field == "id_number"
    with pytest.raises(RecordInvalid, match="已存在"):
        service.create_person(session=session, values={"name": "张三", "id_number": ID})
        service.create_person(session=session, values={"name": "张三", "id_number": ID})


def test_a_birth_date_that_disagrees_with_the_id_is_kept_as_a_conflict(session: Session) -> None:
    person, created = service.upsert_person(session=session, source="民政", values={
        "name": "王芳", "id_number": ID, "birth_date": dt.date(1951, 3, 1), "sex": "F"})
    assert created and person.birth_date == dt.date(1950, 3, 1) and person.sex == "M"
    said = facts(session, "person", person.id, "birth_date")
    assert said["民政"].shown == "1951-03-01" and said[service.DERIVED_SOURCE].shown == "1950-03-01"
    assert facts(session, "person", person.id, "sex")["民政"].shown == "F"


def test_merge_policy_keeps_the_first_source_and_records_the_other(session: Session) -> None:
    values = {"name": "赵敏", "id_number": ID, "phone": "13800000001"}
    person, _ = service.upsert_person(session=session, values=values, source="公安")
    again, created = service.upsert_person(session=session, source="卫健",
                                           values={**values, "phone": "13900000002", "ethnicity": "回族"})
    assert again.id == person.id and not created
    assert person.phone == "13800000001"  # another source's value is not overwritten
    assert person.ethnicity == "回族"  # an empty field is filled
    phone = facts(session, "person", person.id, "phone")
    assert phone["公安"].digest == blind_index("13800000001")
    assert phone["卫健"].digest == blind_index("13900000002")
    # the first source corrects its own value: it is overwritten
    service.upsert_person(session=session, values={**values, "phone": "13700000003"}, source="公安")
    assert person.phone == "13700000003"
    assert facts(session, "person", person.id, "phone")["公安"].digest == blind_index("13700000003")
    # a blank value erases nothing
    service.upsert_person(session=session, values={"id_number": ID, "phone": "", "name": "赵敏"}, source="公安")
    assert person.phone == "13700000003"
    # a person editing by hand overwrites
    service.update_person(session=session, person=person, values={"phone": "13600000004"})
    assert person.phone == "13600000004"
    count = session.scalar(select(func.count()).select_from(Person).where(Person.id_number_hash == blind_index(ID)))
    assert count == 1


def test_a_default_nobody_stated_yields_to_a_source(session: Session) -> None:
    person = service.create_person(session=session, values={"name": "钱七", "id_number": ID})
    assert person.residence_type == "registered"
    service.upsert_person(session=session, source="来沪人员登记",
                          values={"id_number": ID, "name": "钱七", "residence_type": "resident"})
    assert person.residence_type == "resident"


def test_persons_with_a_household_number_build_the_household(session: Session) -> None:
    tree = place_tree(session)
    service.create_house(session=session, values={"address": "鹤庆路258弄12号301室", "use": "owner_occupied"})
    child = service.create_person(session=session, values={
        "name": "孙小明", "id_number": make_id_number("310112", dt.date(2010, 5, 5), 22),
        "household_number": "H001", "relation": "child"})
    head = service.create_person(session=session, values={
        "name": "孙大明", "id_number": ID, "household_number": "H001", "relation": "head",
        "address": "鹤庆路258弄12号301室"})
    household = session.scalar(select(Household).where(Household.number == "H001"))
    assert household.head_person_id == head.id
    assert household.place_id == tree.room.id and household.house_id is not None
    assert child.household_id == head.household_id == household.id
    assert head.house_id == household.house_id


def test_an_unknown_address_leaves_the_record_unplaced_until_the_place_exists(session: Session) -> None:
    person = service.create_person(session=session, values={
        "name": "周八", "id_number": ID, "address": "鹤庆路258弄12号301室"})
    assert person.place_id is None and person.attrs["address"] == "鹤庆路258弄12号301室"
    tree = place_tree(session)
    assert service.place_unplaced(session=session, kind="person") == 1
    assert person.place_id == tree.room.id


def test_a_facility_with_coordinates_only_is_placed_in_its_area(session: Session) -> None:
    tree = place_tree(session)
    facility = service.create_facility(session=session, values={
        "code": "EV-1", "name": "充电棚", "kind": "charging_station", "lon": 121.4025, "lat": 31.0025})
    assert facility.place_id == tree.compound.id and facility.committee_id == tree.committee.id


def test_organisations_are_checked_and_deduplicated_by_credit_code(session: Session) -> None:
    code = make_uscc("9", "1", "310112", "MA1FL0Q5")
    with pytest.raises(RecordInvalid, match="校验位"):
        service.create_organisation(session=session, values={
            "name": "甲公司", "kind": "enterprise", "credit_code": code[:-1] + ("0" if code[-1] != "0" else "1")})
    org = service.create_organisation(session=session, values={"name": "甲公司", "kind": "enterprise",
                                                               "credit_code": code.lower()})
    same, created = service.upsert_organisation(session=session, source="市场监管",
                                                values={"name": "甲公司（新名）", "kind": "enterprise",
                                                        "credit_code": code, "employees": 12})
    assert same.id == org.id and not created
    assert org.name == "甲公司" and org.employees == 12
    assert facts(session, "organisation", org.id, "name")["市场监管"].shown == "甲公司（新名）"


def test_places_are_created_under_their_parent_code(session: Session) -> None:
    tree = place_tree(session)
    place, created = service.upsert_place(session=session, source="房管", values={
        "code": "B-NEW", "name": "14号", "kind": "building", "parent_code": tree.compound.code,
        "address_text": "鹤庆路258弄14号", "floors": 6})
    assert created and place.parent_id == tree.compound.id and place.compound_id == tree.compound.id
    assert place.address_text == "鹤庆路258弄14号"
    house = service.create_house(session=session, values={"address": "鹤庆路258弄14号", "use": "rented"})
    assert session.get(House, house.id).place_id == place.id
    with pytest.raises(RecordInvalid, match="上级"):
        service.upsert_place(session=session, source="房管", values={
            "code": "R-LOST", "name": "101室", "kind": "room", "parent_code": "NOPE"})
