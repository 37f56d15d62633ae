"""数据质量 the data-quality report: missing fields, conflicts between sources and records not
placed, per kind and per residents' committee (plus an 未落地 bucket), with drill-down lists.

Stock data comes from many business lines that disagree; this report shows where. Every
figure is one GROUP BY query per kind (never a Python loop over the rows). Which fields count
as "missing" for each kind is declared once, in ``MISSING_FIELDS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, String, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from shequ.core.places.models import Place, PlaceKind
from shequ.core.registry.models import (
    Facility,
    House,
    Household,
    Organisation,
    OrgKind,
    Person,
    Situation,
    SourceFact,
)

UNPLACED = 0  # the committee_id that stands for "no committee" (未落地) in filters


@dataclass(frozen=True)
class MissingField:
    """A field whose absence the report counts; ``applies`` narrows the records it counts on."""

    key: str
    zh: str
    en: str
    columns: tuple[str, ...]  # missing when any of them is null or empty
    applies: Any = None  # callable(model) -> SQL condition, or None for every record

    def label(self, lang: str = "zh-CN") -> str:
        return self.zh if lang.startswith("zh") else self.en

    def missing(self, model: type[Any]) -> Any:
        parts = []
        for name in self.columns:
            col = getattr(model, name)
            # plain text columns may hold "" for nothing; encrypted ones are None when empty
            is_text = isinstance(col.type, String)
            parts.append(or_(col.is_(None), col == "") if is_text else col.is_(None))
        cond = or_(*parts)
        return and_(self.applies(model), cond) if self.applies is not None else cond


PLACE = MissingField("place", "未落地（无地址）", "not placed (no address)", ("place_id",))
MODELS: dict[str, type[Any]] = {
    "person": Person, "household": Household, "house": House, "organisation": Organisation,
    "facility": Facility, "situation": Situation,
}
KIND_LABELS: dict[str, tuple[str, str]] = {
    "person": ("人口", "people"), "household": ("户", "households"), "house": ("房屋", "houses"),
    "organisation": ("组织", "organisations"), "facility": ("设施", "facilities"),
    "situation": ("社情民意", "situations"),
}


def _enterprise(model: type[Any]) -> Any:
    return model.kind == OrgKind.ENTERPRISE.value


# The one declaration of what "missing" means per kind. "place" is the 未落地 figure.
MISSING_FIELDS: dict[str, tuple[MissingField, ...]] = {
    "person": (
        MissingField("phone", "联系电话", "phone", ("phone",)),
        MissingField("birth_date", "出生日期", "birth date", ("birth_date",)),
        MissingField("id_number", "身份证号", "ID number", ("id_number",)),
        PLACE,
    ),
    "household": (
        MissingField("house", "房屋", "house", ("house_id",)),
        PLACE,
    ),
    "house": (
        MissingField("area_m2", "建筑面积", "area", ("area_m2",)),
        PLACE,
    ),
    "organisation": (
        MissingField("credit_code", "统一社会信用代码（企业）", "credit code (enterprises)",
                     ("credit_code",), applies=_enterprise),
        MissingField("legal_person", "法定代表人/负责人", "legal representative", ("legal_person",)),
        MissingField("contact_phone", "联系电话", "phone", ("contact_phone",)),
        PLACE,
    ),
    "facility": (
        MissingField("coordinates", "经纬度", "coordinates", ("lon", "lat")),
        MissingField("operator", "运营单位", "operator", ("operator_id",)),
        PLACE,
    ),
    "situation": (
        MissingField("coordinates", "经纬度", "coordinates", ("lon", "lat")),
        PLACE,
    ),
}


@dataclass
class QualityRow:
    """The figures of one kind in one committee (committee_id None: 未落地/no committee)."""

    kind: str
    committee_id: int | None
    committee: str
    total: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0  # records where sources disagree on at least one field

    @property
    def unplaced(self) -> int:
        return self.missing.get("place", 0)


@dataclass
class QualityReport:
    rows: list[QualityRow]
    fields: dict[str, tuple[MissingField, ...]]

    def for_kind(self, kind: str) -> list[QualityRow]:
        return [r for r in self.rows if r.kind == kind]

    def row(self, kind: str, committee_id: int | None) -> QualityRow | None:
        return next((r for r in self.rows if r.kind == kind and r.committee_id == committee_id), None)

    def total(self, kind: str) -> QualityRow:
        """The kind's figures over every committee."""
        out = QualityRow(kind, None, "合计")
        for r in self.for_kind(kind):
            out.total += r.total
            out.conflicts += r.conflicts
            for k, v in r.missing.items():
                out.missing[k] = out.missing.get(k, 0) + v
        return out


def _model(kind: str) -> type[Any]:
    try:
        return MODELS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(MODELS)}") from None


def _tenant_filter(session: Session, model: type[Any]) -> Any:
    tenant_id = session.info.get("tenant_id")
    return literal(True) if tenant_id is None else model.tenant_id == tenant_id


def _conflicted(session: Session, kind: str) -> Any:
    """Subquery of (entity_id, field) pairs where more than one source gave different values."""
    return (select(SourceFact.entity_id.label("entity_id"), SourceFact.field.label("field"))
            .where(SourceFact.entity == kind, _tenant_filter(session, SourceFact))
            .group_by(SourceFact.entity_id, SourceFact.field)
            .having(func.count(func.distinct(SourceFact.digest)) > 1,
                    func.count(func.distinct(SourceFact.source)) > 1)
            .subquery())


def _committee_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Place.id, Place.name).where(
        Place.kind == PlaceKind.COMMITTEE.value, _tenant_filter(session, Place))).all())


def report(*, session: Session) -> QualityReport:
    """Per kind and committee: totals, missing fields, conflicting sources, records not placed.

    Committees with no records of a kind are left out; the 未落地 bucket (committee_id None)
    holds records without a committee, unplaced ones included."""
    names = _committee_names(session)
    out: list[QualityRow] = []
    for kind, model in MODELS.items():
        specs = MISSING_FIELDS[kind]
        counts = [func.sum(case((spec.missing(model), 1), else_=0)).label(spec.key) for spec in specs]
        stmt = (select(model.committee_id, func.count().label("total"), *counts)
                .where(_tenant_filter(session, model)).group_by(model.committee_id))
        rows: dict[int | None, QualityRow] = {}
        for r in session.execute(stmt):
            row = QualityRow(kind, r.committee_id, names.get(r.committee_id, "未落地") if r.committee_id
                             else "未落地", total=int(r.total),
                             missing={spec.key: int(getattr(r, spec.key) or 0) for spec in specs})
            rows[r.committee_id] = row
        conflicted = _conflicted(session, kind)
        conflict_stmt = (select(model.committee_id, func.count(func.distinct(conflicted.c.entity_id)))
                         .join(conflicted, conflicted.c.entity_id == model.id)
                         .where(_tenant_filter(session, model)).group_by(model.committee_id))
        for committee_id, n in session.execute(conflict_stmt):
            if committee_id in rows:
                rows[committee_id].conflicts = int(n)
        out += sorted(rows.values(), key=lambda r: (r.committee_id is None, r.committee, r.committee_id or 0))
    return QualityReport(out, MISSING_FIELDS)


def _in_committee(model: type[Any], stmt: Select[Any], committee_id: int | None) -> Select[Any]:
    if committee_id is None:
        return stmt
    if committee_id == UNPLACED:
        return stmt.where(model.committee_id.is_(None))
    return stmt.where(model.committee_id == committee_id)


def missing(*, session: Session, kind: str, field: str, committee_id: int | None = None,
            limit: int = 500, offset: int = 0) -> list[Any]:
    """The records behind a "missing" figure (committee_id UNPLACED for the 未落地 bucket)."""
    model = _model(kind)
    spec = next((s for s in MISSING_FIELDS[kind] if s.key == field), None)
    if spec is None:
        known = ", ".join(s.key for s in MISSING_FIELDS[kind])
        raise ValueError(f"「{kind}」没有质量字段 {field!r} (unknown field; known: {known})")
    stmt = select(model).where(spec.missing(model), _tenant_filter(session, model))
    stmt = _in_committee(model, stmt, committee_id).order_by(model.id).offset(offset).limit(limit)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Conflict:
    """One field of one record on which sources disagree, with what each source said."""

    entity_id: int
    record: Any
    field: str
    values: list[tuple[str, str]]  # (source, shown value — masked for personal data)


def conflicts(*, session: Session, kind: str, committee_id: int | None = None,
              limit: int = 200) -> list[Conflict]:
    """The records behind a "conflicts" figure, each disagreeing field with every source's value."""
    model = _model(kind)
    conflicted = _conflicted(session, kind)
    stmt = (select(model, conflicted.c.field).join(conflicted, conflicted.c.entity_id == model.id)
            .where(_tenant_filter(session, model)))
    stmt = _in_committee(model, stmt, committee_id).order_by(model.id, conflicted.c.field).limit(limit)
    pairs = session.execute(stmt).all()
    if not pairs:
        return []
    ids = {obj.id for obj, _ in pairs}
    facts: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for eid, fld, source, shown in session.execute(
            select(SourceFact.entity_id, SourceFact.field, SourceFact.source, SourceFact.shown)
            .where(SourceFact.entity == kind, SourceFact.entity_id.in_(ids),
                   _tenant_filter(session, SourceFact))
            .order_by(SourceFact.source)):
        facts.setdefault((eid, fld), []).append((source, shown))
    return [Conflict(obj.id, obj, fld, facts.get((obj.id, fld), [])) for obj, fld in pairs]
