"""Visits (走访) to people of special groups: recording one, and who is due for the next.

A person of a special group (tag codes of ``core/registry/tags.py``) is due for a visit when
the last one is at least the group's interval old, or when nobody has visited yet; a person
in several groups takes the shortest interval. The intervals in days are the tenant's
setting ``visit_days`` (``Tenant.settings``), merged over ``DEFAULT_VISIT_DAYS``: a tenant
lists only what differs, and a group given ``0`` or ``null`` is not visited on a schedule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.errors import FieldError
from shequ.core.places.models import Tenant
from shequ.core.registry.models import Person, PersonStatus, Tag, Tagging, Visit

DEFAULT_VISIT_DAYS: dict[str, int] = {
    "elderly_alone": 7, "solitary_elderly": 7, "very_old": 30, "serious_illness": 14,
    "disabled": 30, "low_income": 30, "bereaved_parents": 30,
}
WAYS = ("home", "phone", "video")  # 上门, 电话, 视频
RESULTS = ("well", "needs_help", "absent")  # 良好, 需要帮助, 未遇
MAX_NOTE = 500
MAX_DAYS = 3650


class VisitError(FieldError):
    """A visit refused; names the field."""


@dataclass(frozen=True)
class DueVisit:
    """A person who should be visited now: why (the groups), how often, and since when."""

    person: Person
    groups: tuple[str, ...]  # tag codes, those with the shortest interval first
    interval_days: int
    last_visit: dt.datetime | None  # None: never visited
    due_since: dt.datetime | None  # last visit + interval (None: never visited)

    def overdue_days(self, now: dt.datetime) -> int | None:
        """Whole days past the due time (None when never visited)."""
        return None if self.due_since is None else max(0, (now - self.due_since).days)


def _tenant_settings(session: Session) -> dict[str, Any]:
    tenant = session.get(Tenant, session.info["tenant_id"])
    return dict(tenant.settings or {}) if tenant is not None else {}


def visit_days(session: Session) -> dict[str, int]:
    """The visit interval in days of each special group for the session's tenant."""
    custom = _tenant_settings(session).get("visit_days") or {}
    merged: dict[str, Any] = {**DEFAULT_VISIT_DAYS, **(custom if isinstance(custom, dict) else {})}
    out: dict[str, int] = {}
    for code, days in merged.items():
        if isinstance(days, bool) or not isinstance(days, int | float) or days <= 0:
            continue  # 0 or null: the group is not visited on a schedule
        out[str(code)] = int(min(days, MAX_DAYS))
    return out


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be zone-aware")
    return now


def record_visit(*, session: Session, person_id: int, visitor: str, way: str, result: str, note: str = "",
                 at: dt.datetime | None = None) -> Visit:
    """Record one visit to a person visible in the session's scope (the visit takes the person's
    place, so whoever may see the person sees it). VisitError names a bad field."""
    if way not in WAYS:
        raise VisitError("way", f"应为 {' / '.join(WAYS)}，收到 {str(way)[:20]!r}（one of these）")
    if result not in RESULTS:
        raise VisitError("result", f"应为 {' / '.join(RESULTS)}，收到 {str(result)[:20]!r}（one of these）")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise VisitError("note", f"不超过 {MAX_NOTE} 字（at most {MAX_NOTE} characters）")
    if "\x00" in note:
        raise VisitError("note", "不能包含 NUL 字符（must not contain a NUL character）")
    if not (visitor or "").strip():
        raise VisitError("visitor", "请填写走访人（the visitor is required）")
    now = dt.datetime.now(dt.UTC)
    if at is not None:
        if at.tzinfo is None:
            raise VisitError("at", "须带时区（a zone-aware time is required）")
        if at > now + dt.timedelta(minutes=5):
            raise VisitError("at", "不能晚于现在（cannot be in the future）")
    # a SELECT (not session.get): the scope's criteria apply, so another area's person is "missing"
    person = session.scalar(select(Person).where(Person.id == person_id))
    if person is None:
        raise VisitError("person_id", f"人员 {person_id} 不存在（no such person）")
    visit = Visit(person_id=person.id, visited_at=at or now, visitor=visitor.strip()[:100], way=way,
                  result=result, note=note, place_id=person.place_id)
    session.add(visit)
    session.flush()
    return visit


def last_visits(*, session: Session, person_ids: list[int]) -> dict[int, dt.datetime]:
    """The time of the last visit of each person that has one, in one query."""
    if not person_ids:
        return {}
    rows = session.execute(select(Visit.person_id, func.max(Visit.visited_at))
                           .where(Visit.person_id.in_(sorted(set(person_ids)))).group_by(Visit.person_id))
    return {pid: at for pid, at in rows if at is not None}


def due_visits(*, session: Session, committee_id: int | None = None, now: dt.datetime | None = None,
               days: dict[str, int] | None = None) -> list[DueVisit]:
    """The active people of special groups in the session's scope (and ``committee_id``, when
    given) who are due for a visit: never visited first, then the longest overdue.

    One query: each person's groups and their last visit (a grouped subquery) together.
    """
    now = _now(now)
    intervals = visit_days(session) if days is None else {k: v for k, v in days.items() if v and v > 0}
    if not intervals:
        return []
    last = (select(Visit.person_id.label("person_id"), func.max(Visit.visited_at).label("last_at"))
            .group_by(Visit.person_id).subquery("last_visit"))
    stmt = (select(Person, Tag.code, last.c.last_at)
            .join(Tagging, (Tagging.entity == "person") & (Tagging.entity_id == Person.id))
            .join(Tag, Tag.id == Tagging.tag_id)
            .outerjoin(last, last.c.person_id == Person.id)
            .where(Tag.code.in_(sorted(intervals)), Person.status == PersonStatus.ACTIVE.value))
    if committee_id is not None:
        stmt = stmt.where(Person.committee_id == committee_id)
    people: dict[int, Person] = {}
    groups: dict[int, list[str]] = {}
    last_at: dict[int, dt.datetime | None] = {}
    for person, code, at in session.execute(stmt):
        people[person.id] = person
        groups.setdefault(person.id, []).append(code)
        last_at[person.id] = at
    due: list[DueVisit] = []
    for pid, person in people.items():
        codes = tuple(sorted(set(groups[pid]), key=lambda c: (intervals[c], c)))
        interval = intervals[codes[0]]
        at = last_at[pid]
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        if at is None:
            due.append(DueVisit(person, codes, interval, None, None))
            continue
        due_since = at + dt.timedelta(days=interval)
        if due_since <= now:
            due.append(DueVisit(person, codes, interval, at, due_since))
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    due.sort(key=lambda d: (d.due_since or never, d.person.name, d.person.id))
    return due
