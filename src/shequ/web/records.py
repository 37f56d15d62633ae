"""Registry records as the web sees them: URL names of kinds, list parameters read (and checked)
from a query string, one record by id within the tenant, and API items with personal data
masked. Shared by the API and the pages so that a filter means the same on both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.config import get_settings
from shequ.core.errors import FieldError
from shequ.core.places.models import Place
from shequ.core.registry.kinds import KINDS, LABELS, Kind
from shequ.core.registry.query import ListParams, present_rows

PLURALS: dict[str, str] = {
    "person": "people", "household": "households", "house": "houses",
    "organisation": "organisations", "facility": "facilities", "situation": "situations",
    "place": "places", "device": "devices",
}
BY_PLURAL: dict[str, str] = {v: k for k, v in PLURALS.items()}
AREA_FIELDS = ("place_id", "grid_id", "committee_id", "compound_id", "building_id")
# ids and page numbers beyond a 32-bit integer match nothing; refused before the database sees them
MAX_ID = 2**31 - 1
RecordId = Annotated[int, Path(ge=1, le=MAX_ID, description="record id")]


class BadParam(FieldError):
    """A query parameter that cannot be used; names the parameter and says why."""


def kind_for_plural(plural: str) -> Kind | None:
    key = BY_PLURAL.get(plural)
    return KINDS[key] if key else None


def sort_keys(kind: Kind) -> set[str]:
    keys = {c.key for c in kind.columns if c.sortable and hasattr(kind.model, c.key)}
    return keys | {"id", kind.default_sort.lstrip("-")}


def filter_group(kind: Kind, key: str) -> str | None:
    """The LABELS group of an enum filter, or None when the filter is free text."""
    try:
        group = kind.column(key).enum
    except KeyError:
        group = None
    if group is None and key == "status" and f"{kind.key}_status" in LABELS:
        group = f"{kind.key}_status"
    return group if group in LABELS else None


def filter_values(kind: Kind, key: str) -> list[str] | None:
    """The allowed values of an enum filter, or None when the filter is free text."""
    group = filter_group(kind, key)
    return [str(v) for v in LABELS[group]] if group else None


def filter_options(kind: Kind, key: str, lang: str) -> list[tuple[str, str]] | None:
    """(value, label) pairs of an enum filter for a select box."""
    group = filter_group(kind, key)
    if group is None:
        return None
    return [(str(v), pair[0] if lang.startswith("zh") else pair[1]) for v, pair in LABELS[group].items()]


def _int(field: str, raw: str | None, *, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadParam(field, f"应为整数，收到 {raw!r}（must be an integer）") from None
    if value < minimum:
        raise BadParam(field, f"应不小于 {minimum}（must be ≥ {minimum}）")
    if value > maximum:
        raise BadParam(field, f"应不大于 {maximum}（must be ≤ {maximum}）")
    return value


def params_from_query(*, session: Session, kind: Kind, query: Mapping[str, str],
                      default_size: int = 50) -> ListParams:
    """ListParams from a query string, each bad value refused with its parameter named."""
    place_id = _int("place", query.get("place"))
    if place_id is not None and session.scalar(select(Place.id).where(Place.id == place_id)) is None:
        raise BadParam("place", f"地点 {place_id} 不存在（unknown place）")
    sort = (query.get("sort") or "").strip() or None
    if sort and sort.lstrip("-") not in sort_keys(kind):
        allowed = ", ".join(sorted(sort_keys(kind)))
        raise BadParam("sort", f"不能按 {sort.lstrip('-')} 排序，可用：{allowed}（sortable: {allowed}）")
    size = _int("size", query.get("size")) or default_size
    max_size = get_settings().page_size_max
    if size > max_size:
        raise BadParam("size", f"每页最多 {max_size} 条（at most {max_size}）")
    filters: dict[str, str] = {}
    for key in kind.filters:
        value = (query.get(key) or "").strip()
        if not value:
            continue
        allowed_values = filter_values(kind, key)
        if allowed_values is not None and value not in allowed_values:
            raise BadParam(key, f"取值 {value!r} 无效，可用：{', '.join(allowed_values)}（invalid value）")
        filters[key] = value
    return ListParams(
        place_id=place_id, tag=(query.get("tag") or "").strip() or None,
        q=(query.get("q") or "").strip() or None, filters=filters, sort=sort,
        page=_int("page", query.get("page")) or 1, size=size,
    )


def get_record(*, session: Session, kind: Kind, record_id: int) -> Any | None:
    """One record of the session's tenant (a SELECT: the identity map would skip the filter)."""
    return session.scalar(select(kind.model).where(kind.model.id == record_id))


# --- API items ---------------------------------------------------------------------------

_TYPES: dict[str, Any] = {
    "int": int | None, "float": float | None, "date": dt.date | None,
    "datetime": dt.datetime | None,
}
_models: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {}


def raw_fields(kind: Kind) -> list[str]:
    """Model attributes an API item carries (virtual columns appear only among the labels)."""
    keys = [c.key for c in kind.columns if hasattr(kind.model, c.key) and c.key != "id"]
    keys += [f for f in AREA_FIELDS if hasattr(kind.model, f) and f not in keys]
    return keys


def item_models(kind: Kind) -> tuple[type[BaseModel], type[BaseModel]]:
    """The Pydantic item and page models of a kind (built once from its description)."""
    if kind.key not in _models:
        fields: dict[str, Any] = {"id": (int, ...)}
        for key in raw_fields(kind):
            col = next((c for c in kind.columns if c.key == key), None)
            typ = _TYPES.get(col.type, str | None) if col else int | None
            fields[key] = (typ, None)
        fields["labels"] = (dict[str, str], ...)
        name = kind.key.capitalize()
        item = create_model(f"{name}Item", __config__=ConfigDict(extra="forbid"), **fields)
        page = create_model(f"{name}Page", items=(list[item], ...), total=(int, ...),  # type: ignore[valid-type]
                            page=(int, ...), size=(int, ...))
        _models[kind.key] = (item, page)
    return _models[kind.key]


def api_items(*, session: Session, kind: Kind, items: list[Any], lang: str = "zh-CN") -> list[dict[str, Any]]:
    """Items for the API: raw values with personal data replaced by its mask, plus labels."""
    shown = present_rows(session=session, kind=kind, items=items, lang=lang)
    pii = {c.key for c in kind.columns if c.pii}
    out = []
    for obj, labels in zip(items, shown, strict=True):
        item: dict[str, Any] = {"id": obj.id}
        for key in raw_fields(kind):
            item[key] = labels.get(key, "") if key in pii else getattr(obj, key)
        item["labels"] = labels
        out.append(item)
    return out


def kind_counts(*, session: Session) -> dict[str, int]:
    """How many records of each kind the tenant has."""
    from sqlalchemy import func

    return {key: session.scalar(select(func.count(kind.model.id))) or 0
            for key, kind in KINDS.items()}


def tag_tree(*, session: Session, applies_to: str | None = None,
             lang: str = "zh-CN") -> list[dict[str, Any]]:
    """The tag taxonomy as a tree, each node with the number of distinct records carrying it
    or a tag beneath it (``count``); one tree per kind of record unless ``applies_to``."""
    from shequ.core.registry.tags import APPLIES_TO, tag_counts, tag_name

    if applies_to and applies_to not in KINDS and applies_to not in APPLIES_TO:
        raise BadParam("applies_to", f"未知类别 {applies_to}（known: {', '.join(KINDS)}）")
    entities = [applies_to] if applies_to else [k for k in KINDS if k in APPLIES_TO]
    roots: list[dict[str, Any]] = []
    for entity in entities:
        if entity not in APPLIES_TO:
            continue  # a kind that carries no tags (yet), e.g. devices
        nodes: dict[int, dict[str, Any]] = {}
        for tc in tag_counts(session=session, entity=entity):
            node = {"code": tc.tag.code, "name": tag_name(tc.tag, lang), "applies_to": entity,
                    "computed": bool(tc.tag.rule), "count": tc.count, "children": []}
            nodes[tc.tag.id] = node
            parent = nodes.get(tc.tag.parent_id) if tc.tag.parent_id else None
            (parent["children"] if parent else roots).append(node)
    return roots


def flat_tags(tree: list[dict[str, Any]], depth: int = 0) -> list[dict[str, Any]]:
    """The tree in display order with each node's depth (for a select box)."""
    out: list[dict[str, Any]] = []
    for node in tree:
        out.append({**node, "depth": depth})
        out.extend(flat_tags(node["children"], depth + 1))
    return out


def quality_view(*, report: Any, lang: str = "zh-CN") -> list[dict[str, Any]]:
    """The data-quality report per kind as plain data: its fields, one row per committee, the
    total. ``committee_id`` 0 stands for records without a committee (未落地)."""
    from shequ.core.registry.quality import KIND_LABELS, UNPLACED

    out = []
    for kind, specs in report.fields.items():
        fields = [{"key": s.key, "label": s.label(lang)} for s in specs]

        def row(r: Any) -> dict[str, Any]:
            return {"committee_id": UNPLACED if r.committee_id is None else r.committee_id,
                    "committee": r.committee if lang.startswith("zh") or r.committee_id else
                    ("not placed" if r.committee == "未落地" else r.committee),
                    "total": r.total, "missing": dict(r.missing), "conflicts": r.conflicts}

        total = row(report.total(kind))
        total["committee"] = "合计" if lang.startswith("zh") else "total"
        zh, en = KIND_LABELS.get(kind, (kind, kind))
        out.append({"kind": kind, "label": zh if lang.startswith("zh") else en, "fields": fields,
                    "rows": [row(r) for r in report.for_kind(kind)], "total": total})
    return out
