"""Places: the tree, standard addresses, point resolution and tenant isolation."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.places.address import normalise_address, parse_address
from shequ.core.places.models import Place
from shequ.core.places.service import create_place, create_tenant, find_by_address, locate, path
from shequ.core.registry.models import Person
from shequ.db import bind_context
from tests.factories import place_tree


def test_room_inherits_its_area_and_address(session: Session) -> None:
    tree = place_tree(session)
    assert tree.room.address_text == "鹤庆路258弄12号301室"
    assert (tree.room.grid_id, tree.room.committee_id, tree.room.building_id) == (
        tree.grid.id, tree.committee.id, tree.building.id)
    assert [p.name for p in path(session=session, place=tree.room)] == [
        "第A网格", "北街居委会", "鹤庆新村", "12号", "1单元", "3层", "301室"]


def test_a_kind_cannot_hang_anywhere(session: Session) -> None:
    tree = place_tree(session)
    with pytest.raises(ValueError, match="cannot be placed"):
        create_place(session=session, kind="room", code="bad", name="x", parent=tree.compound)


def test_a_point_resolves_to_its_grid_and_committee(session: Session) -> None:
    tree = place_tree(session)
    inside = locate(session=session, lon=121.405, lat=31.005)
    assert (inside.grid_id, inside.committee_id) == (tree.grid.id, tree.committee.id)
    in_grid_only = locate(session=session, lon=121.415, lat=31.015)
    assert (in_grid_only.grid_id, in_grid_only.committee_id) == (tree.grid.id, None)
    assert locate(session=session, lon=120.0, lat=30.0).grid_id is None


@pytest.mark.parametrize("written", ["鹤庆路258弄12号301室", "鹤庆路 258弄 12号 301室",
                                     "上海市闵行区江川路街道鹤庆路258弄12号301室", "鹤庆路258弄12幢301室"])
def test_addresses_written_differently_find_the_same_room(session: Session, written: str) -> None:
    tree = place_tree(session)
    assert find_by_address(session=session, text=written).id == tree.room.id


def test_parse_address_gives_the_parts() -> None:
    assert parse_address("江川路88弄3号2单元502室") == {
        "road": "江川路", "lane": "88", "number": "3", "unit": "2", "room": "502"}
    assert normalise_address("鹤庆路２５８号") == "鹤庆路258号"


def test_one_tenant_never_sees_another(session: Session) -> None:
    tree = place_tree(session)
    session.add(Person(name="王五", place_id=tree.room.id))
    session.flush()
    mine = session.info["tenant_id"]
    other = create_tenant(session=session, code="310112002", name="另一个街道")
    bind_context(session, tenant_id=other.id, actor="test")
    assert session.scalars(select(Person)).all() == []
    assert session.scalars(select(Place)).all() == []
    bind_context(session, tenant_id=mine, actor="test")
    assert [p.name for p in session.scalars(select(Person))] == ["王五"]
