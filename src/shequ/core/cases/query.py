"""Reading cases: the filtered, paged list in the session's scope, and what counts as overdue."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from shequ.core.cases.models import OPEN_STAGES, Case
from shequ.core.paging import Page

PAGE_SIZE = 50


@dataclass(frozen=True)
class CaseFilters:
    stage: str | None = None
    source: str | None = None
    class_code: str | None = None
    department: str | None = None
    grid_id: int | None = None
    committee_id: int | None = None
    overdue: bool = False
    q: str | None = None
    reported_from: dt.datetime | None = None
    reported_to: dt.datetime | None = None


def _department_clause(dept: str) -> Any:
    # co_departments is a JSON list; its text holds the name quoted (escaped or not, as written)
    as_text = cast(Case.co_departments, String)
    return or_(Case.department == dept,
               as_text.contains(json.dumps(dept), autoescape=True),
               as_text.contains(json.dumps(dept, ensure_ascii=False), autoescape=True))


def list_cases(*, session: Session, filters: CaseFilters, department: str | None = None, page: int = 1,
               size: int = PAGE_SIZE, now: dt.datetime | None = None) -> Page:
    """Cases in the session's scope, newest first; ``department`` limits them to those the
    department handles or co-handles (how department staff see the list)."""
    now = now or dt.datetime.now(dt.UTC)
    where: list[Any] = []
    f = filters
    if department is not None:
        where.append(_department_clause(department) if department else Case.id.is_(None))
    if f.stage:
        where.append(Case.stage == f.stage)
    if f.source:
        where.append(Case.source == f.source)
    if f.class_code:
        where.append(Case.class_code.startswith(f.class_code, autoescape=True))
    if f.department:
        where.append(_department_clause(f.department))
    if f.grid_id:
        where.append(Case.grid_id == f.grid_id)
    if f.committee_id:
        where.append(Case.committee_id == f.committee_id)
    if f.overdue:
        where += [Case.stage.in_(OPEN_STAGES), Case.suspended_at.is_(None), Case.stage_due_at < now]
    if f.q:
        where.append(or_(Case.title.icontains(f.q, autoescape=True), Case.code.icontains(f.q, autoescape=True),
                         Case.address_text.icontains(f.q, autoescape=True),
                         Case.description.icontains(f.q, autoescape=True)))
    if f.reported_from:
        where.append(Case.reported_at >= f.reported_from)
    if f.reported_to:
        where.append(Case.reported_at < f.reported_to)
    total = session.scalar(select(func.count(Case.id)).where(*where)) or 0
    items = list(session.scalars(select(Case).where(*where).order_by(Case.reported_at.desc(), Case.id.desc())
                                 .offset((page - 1) * size).limit(size)))
    return Page(items=items, total=total, page=page, size=size)


def is_overdue(case: Case, now: dt.datetime | None = None) -> bool:
    now = now or dt.datetime.now(dt.UTC)
    return (case.stage in OPEN_STAGES and case.suspended_at is None and case.stage_due_at is not None
            and case.stage_due_at < now)
