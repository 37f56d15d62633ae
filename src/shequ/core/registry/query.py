"""Filtered, sorted, paginated lists of any kind, and their rows as people see them.

List pages, the API and XLSX exports (台账) all come through here, so a filter means the same
thing everywhere (and the access layer has one place to add scopes).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, literal, or_, select
from sqlalchemy.orm import Session

from shequ.core.iam.crypto import MASKS, blind_index
from shequ.core.paging import Page
from shequ.core.places.models import Place, PlaceKind
from shequ.core.registry.kinds import Kind, label
from shequ.core.registry.models import Household, Person, Tag, Tagging
from shequ.core.registry.validators import validate_id_number

SHANGHAI = ZoneInfo("Asia/Shanghai")
AREA_COLUMN = {
    PlaceKind.GRID: "grid_id",
    PlaceKind.COMMITTEE: "committee_id",
    PlaceKind.COMPOUND: "compound_id",
    PlaceKind.BUILDING: "building_id",
}


@dataclass
class ListParams:
    place_id: int | None = None
    tag: str | None = None
    q: str | None = None
    filters: dict[str, str] = field(default_factory=dict)
    sort: str | None = None
    page: int = 1
    size: int = 50


def descendants(session: Session, place_id: int) -> Any:
    """A subquery of the ids of a place and everything under it (recursive)."""
    tree = select(Place.id).where(Place.id == place_id).cte("tree", recursive=True)
    child = select(Place.id).where(Place.parent_id == tree.c.id)
    tree = tree.union_all(child)
    return select(tree.c.id)


def tag_subtree(tag_code: str) -> Any:
    """Ids of a tag and all tags under it."""
    tree = select(Tag.id).where(Tag.code == tag_code).cte("tags", recursive=True)
    tree = tree.union_all(select(Tag.id).where(Tag.parent_id == tree.c.id))
    return select(tree.c.id)


def _place_filter(session: Session, kind: Kind, stmt: Select[Any], place_id: int) -> Select[Any]:
    place = session.get(Place, place_id)
    if place is None:
        return stmt.where(literal(False))
    model = kind.model
    column = AREA_COLUMN.get(PlaceKind(place.kind))
    if model is Place:
        if column:
            return stmt.where(or_(getattr(Place, column) == place.id, Place.id == place.id))
        return stmt.where(Place.id.in_(descendants(session, place.id)))
    if column and hasattr(model, column):
        return stmt.where(getattr(model, column) == place.id)
    return stmt.where(model.place_id.in_(descendants(session, place.id)))


def _text_filter(kind: Kind, stmt: Select[Any], q: str) -> Select[Any]:
    model = kind.model
    q = q.strip()
    if "id_number" in kind.search and re.fullmatch(r"\d{17}[\dXx]", q):
        try:
            return stmt.where(model.id_number_hash == blind_index(validate_id_number(q)))
        except ValueError:
            pass
    if "phone" in kind.search and re.fullmatch(r"1\d{10}", q):
        return stmt.where(model.phone_hash == blind_index(q))
    plain = [getattr(model, f) for f in kind.search if not kind_is_pii(kind, f)]
    pattern = f"%{q}%"
    return stmt.where(or_(*(col.ilike(pattern) for col in plain)))


def kind_is_pii(kind: Kind, key: str) -> bool:
    try:
        return kind.column(key).pii is not None
    except KeyError:
        return False


def list_stmt(session: Session, kind: Kind, params: ListParams) -> Select[Any]:
    """The SELECT for a filtered list of a kind, without sort and paging."""
    model = kind.model
    stmt = select(model)
    if params.place_id:
        stmt = _place_filter(session, kind, stmt, params.place_id)
    if params.tag:
        tagged = select(Tagging.entity_id).where(
            Tagging.entity == kind.key, Tagging.tag_id.in_(tag_subtree(params.tag))
        )
        stmt = stmt.where(model.id.in_(tagged))
    if params.q:
        stmt = _text_filter(kind, stmt, params.q)
    for key, value in params.filters.items():
        if key in kind.filters and value not in (None, ""):
            stmt = stmt.where(getattr(model, key) == value)
    return stmt


def _order(kind: Kind, sort: str | None) -> list[Any]:
    sort = sort or kind.default_sort
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    allowed = {c.key for c in kind.columns if c.sortable} | {"id", kind.default_sort.lstrip("-")}
    if key not in allowed or not hasattr(kind.model, key):
        key, desc = "id", False
    col = getattr(kind.model, key)
    return [col.desc() if desc else col.asc(), kind.model.id.asc()]


def list_records(*, session: Session, kind: Kind, params: ListParams, max_size: int = 500) -> Page:
    """One page of a filtered, sorted list and the total count."""
    size = max(1, min(params.size, max_size))
    page = max(1, params.page)
    stmt = list_stmt(session, kind, params)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(stmt.order_by(*_order(kind, params.sort)).offset((page - 1) * size).limit(size))
    return Page(items=list(rows), total=total, page=page, size=size)


def iter_records(*, session: Session, kind: Kind, params: ListParams,
                 chunk: int = 2000) -> Iterator[list[Any]]:
    """Every record of a filtered list, in sort order, fetched in chunks (for exports)."""
    stmt = list_stmt(session, kind, params).order_by(*_order(kind, params.sort))
    offset = 0
    while True:
        batch = list(session.scalars(stmt.offset(offset).limit(chunk)))
        if not batch:
            return
        yield batch
        offset += chunk


# --- presentation: the values a person sees in a list row -------------------------------


def _names(session: Session, ids: set[int]) -> dict[int, Place]:
    ids.discard(None)  # type: ignore[arg-type]
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Place).where(Place.id.in_(ids)))}


def fmt_value(value: Any, lang: str = "zh-CN") -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.7f}".rstrip("0").rstrip(".")
    return str(value)


def present_rows(*, session: Session, kind: Kind, items: list[Any], lang: str = "zh-CN",
                 unmasked: bool = False) -> list[dict[str, str]]:
    """Rows of display strings keyed by column; personal data masked unless ``unmasked``.

    Related names (committee, grid, address, household) are fetched in one query each.
    """
    place_ids: set[int] = set()
    for obj in items:
        for attr in ("place_id", "committee_id", "grid_id"):
            if hasattr(obj, attr) and getattr(obj, attr):
                place_ids.add(getattr(obj, attr))
        if kind.model is Place and obj.parent_id:
            place_ids.add(obj.parent_id)
    places = _names(session, place_ids)
    households: dict[int, Household] = {}
    heads: dict[int, Person] = {}
    sizes: dict[int, int] = {}
    if kind.key == "person":
        hids = {o.household_id for o in items if o.household_id}
        if hids:
            households = {h.id: h for h in session.scalars(select(Household).where(Household.id.in_(hids)))}
    if kind.key == "household":
        ids = [o.id for o in items]
        if ids:
            counted = session.execute(
                select(Person.household_id, func.count()).where(Person.household_id.in_(ids))
                .group_by(Person.household_id))
            sizes = {hid: n for hid, n in counted if hid is not None}
            head_ids = [o.head_person_id for o in items if o.head_person_id]
            heads = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(head_ids)))}

    rows = []
    for obj in items:
        row: dict[str, str] = {"id": str(obj.id)}
        for col in kind.columns:
            key = col.key
            if key == "address":
                place = places.get(getattr(obj, "place_id", None) or -1)
                row[key] = place.address_text or place.name if place else ""
            elif key in ("committee", "grid"):
                pid = getattr(obj, f"{key}_id", None)
                if kind.model is Place and getattr(obj, "kind", None) == key:
                    pid = obj.id
                row[key] = places[pid].name if pid in places else ""
            elif key == "household_number":
                hh = households.get(getattr(obj, "household_id", None) or -1)
                row[key] = hh.number if hh else ""
            elif key == "head":
                head = heads.get(obj.head_person_id or -1)
                row[key] = head.name if head else ""
            elif key == "size":
                row[key] = str(sizes.get(obj.id, 0))
            elif key == "parent_code":
                parent = places.get(getattr(obj, "parent_id", None) or -1)
                row[key] = parent.code if parent else ""
            elif col.pii:
                value = getattr(obj, key)
                if unmasked:
                    row[key] = value or ""
                else:
                    masked = getattr(obj, f"{key}_mask", None)
                    row[key] = masked if masked is not None else MASKS[col.pii](value)
            elif col.enum:
                row[key] = label(col.enum, getattr(obj, key, None), lang)
            else:
                row[key] = fmt_value(getattr(obj, key, None), lang)
        rows.append(row)
    return rows
