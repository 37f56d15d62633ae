"""The data-quality report: missing fields, conflicting sources and unplaced records per committee."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from shequ.core.places.service import create_tenant
from shequ.core.registry.models import Facility, House, Organisation, Person, SourceFact
from shequ.core.registry.quality import UNPLACED, conflicts, missing, report
from shequ.core.registry.validators import make_id_number
from shequ.db import bind_context
from tests.factories import Tree, place_tree


def facts(session: Session, person: Person, field: str, said: dict[str, str]) -> None:
    for source, value in said.items():
        session.add(SourceFact(entity="person", entity_id=person.id, field=field, source=source,
                               digest=f"digest-{value}", shown=value))


@pytest.fixture
def data(session: Session) -> tuple[Tree, Tree, list[Person]]:
    north = place_tree(session, tag="N", committee_name="北街居委会")
    south = place_tree(session, lon=121.42, tag="S", committee_name="南街居委会")
    birth = dt.date(1950, 5, 1)
    a = Person(name="有电话", phone="13800000001", birth_date=birth,
               id_number=make_id_number("310112", birth, 11), place_id=north.room.id)
    b = Person(name="没电话", birth_date=birth, id_number=make_id_number("310112", birth, 13),
               place_id=north.room2.id)
    c = Person(name="没地址", phone="13800000003", birth_date=birth,
               id_number=make_id_number("310112", birth, 15))
    d = Person(name="南街人", phone="13800000004", place_id=south.room.id,
               id_number=make_id_number("310112", birth, 17))
    session.add_all([a, b, c, d])
    session.flush()
    # a: 公安 and 民政 disagree on the phone; birth date agreed by two sources
    facts(session, a, "phone", {"公安实有人口": "138****0001", "民政": "139****0009"})
    facts(session, a, "birth_date", {"公安实有人口": "1950-05-01", "民政": "1950-05-01"})
    # d: only one source: no conflict however many fields
    facts(session, d, "phone", {"卫健": "138****0004"})
    session.add_all([
        House(place_id=north.room.id, use="rented", area_m2=50),
        House(place_id=north.room2.id, use="vacant"),
        Organisation(kind="enterprise", name="无代码企业", legal_person="张", place_id=north.building.id),
        Organisation(kind="social_org", name="志愿者协会", legal_person="李", place_id=north.compound.id),
        Facility(kind="elevator", code="E1", name="电梯", place_id=south.building.id, lon=121.4, lat=31.0),
        Facility(kind="garbage_point", code="G1", name="垃圾点", lat=31.0),
    ])
    session.flush()
    return north, south, [a, b, c, d]


def test_report_counts_per_committee(session: Session, data: tuple[Tree, Tree, list[Person]]) -> None:
    north, south, (a, b, c, d) = data
    r = report(session=session)
    n = r.row("person", north.committee.id)
    assert n is not None
    assert n.committee == "北街居委会"
    assert (n.total, n.missing["phone"], n.missing["birth_date"], n.missing["id_number"], n.conflicts,
            n.unplaced) == (2, 1, 0, 0, 1, 0)
    s = r.row("person", south.committee.id)
    assert s is not None and (s.total, s.missing["phone"], s.missing["birth_date"], s.conflicts) == (1, 0, 1, 0)
    none = r.row("person", None)
    assert none is not None and none.committee == "未落地"
    assert (none.total, none.unplaced, none.missing["phone"]) == (1, 1, 0)
    total = r.total("person")
    assert (total.total, total.missing["phone"], total.unplaced, total.conflicts) == (4, 1, 1, 1)

    house = r.row("house", north.committee.id)
    assert house is not None and (house.total, house.missing["area_m2"]) == (2, 1)
    orgs = r.row("organisation", north.committee.id)
    # the credit code only counts for enterprises; no org has a phone
    assert orgs is not None and (orgs.total, orgs.missing["credit_code"], orgs.missing["contact_phone"],
                                 orgs.missing["legal_person"]) == (2, 1, 2, 0)
    fac_south = r.row("facility", south.committee.id)
    assert fac_south is not None and fac_south.missing["coordinates"] == 0
    fac_none = r.row("facility", None)
    assert fac_none is not None and (fac_none.missing["coordinates"], fac_none.unplaced) == (1, 1)
    assert r.for_kind("situation") == []


def test_drill_down_lists_the_records_behind_the_numbers(session: Session,
                                                         data: tuple[Tree, Tree, list[Person]]) -> None:
    north, south, (a, b, c, d) = data
    assert [p.name for p in missing(session=session, kind="person", field="phone")] == ["没电话"]
    assert [p.name for p in missing(session=session, kind="person", field="phone",
                                    committee_id=south.committee.id)] == []
    assert [p.name for p in missing(session=session, kind="person", field="place",
                                    committee_id=UNPLACED)] == ["没地址"]
    assert [p.name for p in missing(session=session, kind="person", field="birth_date")] == ["南街人"]
    found = conflicts(session=session, kind="person")
    assert [(x.record.name, x.field) for x in found] == [("有电话", "phone")]
    assert sorted(found[0].values) == [("公安实有人口", "138****0001"), ("民政", "139****0009")]
    assert conflicts(session=session, kind="person", committee_id=south.committee.id) == []
    with pytest.raises(ValueError, match="unknown field"):
        missing(session=session, kind="person", field="shoe_size")


def test_report_sees_only_its_tenant(session: Session, data: tuple[Tree, Tree, list[Person]]) -> None:
    own = session.info["tenant_id"]
    other = create_tenant(session=session, code="T-other-quality", name="另一街道")
    bind_context(session, tenant_id=other.id, actor="test")
    assert report(session=session).rows == []
    assert conflicts(session=session, kind="person") == []
    bind_context(session, tenant_id=own, actor="test")
    assert report(session=session).total("person").total == 4
