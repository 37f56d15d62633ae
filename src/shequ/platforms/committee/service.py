"""What the committee's pages read: the committees a user works for, today's to-dos (cases
waiting for the committee, active alarms, visits due), the ledgers (台账) of its neighbourhood
and the residents' requests. Every query goes through the request's scoped session, so a user
never reads beyond their areas; changes go through the kernel's services.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.alarms.models import SEVERITY_RANK, Alarm
from shequ.core.alarms.query import ACTIVE, place_names
from shequ.core.cases import policy
from shequ.core.cases import service as cases
from shequ.core.cases.models import DISPATCHED, FED_BACK, HANDLED, Case
from shequ.core.cases.schemas import CaseReportIn
from shequ.core.iam.models import User
from shequ.core.paging import Page
from shequ.core.places.models import Place, PlaceKind
from shequ.core.places.service import labels
from shequ.core.registry import visits
from shequ.core.registry.kinds import HOUSE, ORGANISATION, PERSON, Kind
from shequ.core.registry.models import OrgKind, Person, Tag
from shequ.core.registry.query import ListParams, list_records, present_rows
from shequ.core.registry.tags import tag_name, tags_of

# the actions by which a case waits for the committee (the others wait for the dispatcher)
WAITING_ACTIONS = ("handle", "feed_back", "verify")
WAITING_STAGES = (DISPATCHED, HANDLED, FED_BACK)
REQUEST_SOURCES = ("resident", "open311")  # residents' own requests
# a case opened from a visit is the committee's own finding in the field: its source follows
# the role like any staff report (``policy.default_source``: "patrol"), so the area's staff
# are told of its progress; only a dispatcher may choose another source
VISIT_CASE_CLASS = "E0699"  # 其他事件; the worker may choose another class on the form
TODO_LIMIT = 100
LEDGER_PAGE = 20


# --- the committees of a user ----------------------------------------------------------------

def committees(*, session: Session) -> list[Place]:
    """The committees in the session's scope, by code: a committee user's own, a grid worker's
    within their grids, every committee for a whole-tenant role."""
    return list(session.scalars(select(Place).where(Place.kind == PlaceKind.COMMITTEE).order_by(Place.code)))


# --- today's to-dos --------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseTodo:
    case: Case
    actions: list[str]  # the waiting actions the user may take now
    class_name: str


@dataclass(frozen=True)
class AlarmTodo:
    alarm: Alarm
    place: str


@dataclass(frozen=True)
class VisitTodo:
    due: visits.DueVisit
    address: str
    overdue_days: int | None


@dataclass
class Todos:
    cases: list[CaseTodo] = field(default_factory=list)
    alarms: list[AlarmTodo] = field(default_factory=list)
    visits: list[VisitTodo] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.cases) + len(self.alarms) + len(self.visits)


def addresses(session: Session, place_ids: set[int]) -> dict[int, str]:
    """The address (or name) of some places, in one query."""
    return labels(session=session, ids=place_ids)


def waiting_cases(*, session: Session, user: User, committee_id: int, lang: str = "zh-CN") -> list[CaseTodo]:
    """Open cases placed in the committee that wait for something the user may do now
    (handle, feed back, verify), the earliest deadline first."""
    stmt = (select(Case).where(Case.committee_id == committee_id, Case.stage.in_(WAITING_STAGES),
                               Case.suspended_at.is_(None))
            .order_by(Case.stage_due_at.is_(None), Case.stage_due_at, Case.id).limit(TODO_LIMIT))
    found = list(session.scalars(stmt))
    names = cases.class_names(session=session, codes={c.class_code for c in found}, lang=lang)
    out = []
    for case in found:
        actions = [a for a in policy.user_actions(user, case) if a in WAITING_ACTIONS]
        if actions:
            out.append(CaseTodo(case, actions, names.get(case.class_code, case.class_code)))
    return out


def active_alarms(*, session: Session, committee_id: int) -> list[AlarmTodo]:
    """Active alarms in the committee, the most severe and then the newest first."""
    found = list(session.scalars(select(Alarm).where(Alarm.committee_id == committee_id,
                                                     Alarm.status.in_(ACTIVE))
                                 .order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(TODO_LIMIT)))
    found.sort(key=lambda a: SEVERITY_RANK.get(a.severity, len(SEVERITY_RANK)))
    names = place_names(session, found)
    return [AlarmTodo(a, names.get(a.place_id or 0, "")) for a in found]


def visits_due(*, session: Session, committee_id: int, now: dt.datetime | None = None) -> list[VisitTodo]:
    now = now or dt.datetime.now(dt.UTC)
    due = visits.due_visits(session=session, committee_id=committee_id, now=now)
    where = addresses(session, {d.person.place_id for d in due if d.person.place_id})
    return [VisitTodo(d, where.get(d.person.place_id or 0, ""), d.overdue_days(now)) for d in due]


def todos(*, session: Session, user: User, committee_id: int, lang: str = "zh-CN",
          now: dt.datetime | None = None) -> Todos:
    """Everything waiting for the committee today."""
    return Todos(cases=waiting_cases(session=session, user=user, committee_id=committee_id, lang=lang),
                 alarms=active_alarms(session=session, committee_id=committee_id),
                 visits=visits_due(session=session, committee_id=committee_id, now=now))


# --- ledgers (台账) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Ledger:
    key: str  # the URL's segment
    kind: Kind
    zh: str
    en: str
    filters: Mapping[str, str] = field(default_factory=dict)  # fixed filters of the kind
    tag_root: str | None = None  # the ledger is the people under this tag

    def label(self, lang: str) -> str:
        return self.zh if lang.startswith("zh") else self.en


LEDGERS: dict[str, Ledger] = {
    "special": Ledger("special", PERSON, "特殊人群", "Special groups", tag_root="special_groups"),
    "houses": Ledger("houses", HOUSE, "房屋", "Houses"),
    "shops": Ledger("shops", ORGANISATION, "沿街商户", "Shops", filters={"kind": OrgKind.SHOP_OPERATOR.value}),
}


def special_groups(*, session: Session, lang: str = "zh-CN") -> list[tuple[str, str]]:
    """The groups under 特殊人群 (code, name), for the special ledger's filter."""
    root = select(Tag.id).where(Tag.code == "special_groups").scalar_subquery()
    rows = session.scalars(select(Tag).where(Tag.parent_id == root).order_by(Tag.id))
    return [(t.code, tag_name(t, lang)) for t in rows]


def ledger_params(*, ledger: Ledger, committee_id: int, group: str | None = None, q: str | None = None,
                  page: int = 1, size: int = LEDGER_PAGE) -> ListParams:
    """The registry's list parameters of a ledger of one committee."""
    tag = ledger.tag_root
    if ledger.tag_root and group:
        tag = group
    return ListParams(place_id=committee_id, tag=tag, q=q or None, filters=dict(ledger.filters),
                      page=page, size=size)


@dataclass
class LedgerPage:
    page: Page
    rows: list[dict[str, str]]
    tags: dict[int, list[str]]  # person id → group names (special ledger)
    last_visits: dict[int, dt.datetime]


def ledger_page(*, session: Session, ledger: Ledger, params: ListParams, lang: str = "zh-CN") -> LedgerPage:
    """One page of a ledger as the list shows it: personal data masked; for people, their
    special groups and last visit (one query each)."""
    found = list_records(session=session, kind=ledger.kind, params=params, max_size=params.size)
    rows = present_rows(session=session, kind=ledger.kind, items=found.items, lang=lang)
    groups: dict[int, list[str]] = {}
    last: dict[int, dt.datetime] = {}
    if ledger.kind is PERSON and found.items:
        ids = [p.id for p in found.items]
        special = {code for code, _ in special_groups(session=session, lang=lang)}
        for pid, tags in tags_of(session=session, entity="person", ids=ids).items():
            groups[pid] = [tag_name(t, lang) for t in tags if t.code in special]
        last = visits.last_visits(session=session, person_ids=ids)
    return LedgerPage(found, rows, groups, last)


# --- residents' requests ---------------------------------------------------------------------

@dataclass(frozen=True)
class ResidentRequest:
    case: Case
    actions: list[str]  # handle / feed_back when the stage allows and the user may
    class_name: str
    may_answer: bool


def resident_requests(*, session: Session, user: User, committee_id: int, page: int = 1,
                      size: int = LEDGER_PAGE, lang: str = "zh-CN") -> tuple[Page, list[ResidentRequest]]:
    """Cases residents reported (in person or through Open311) in the committee, newest first."""
    where = [Case.committee_id == committee_id, Case.source.in_(REQUEST_SOURCES)]
    total = session.scalar(select(func.count(Case.id)).where(*where)) or 0
    items = list(session.scalars(select(Case).where(*where).order_by(Case.reported_at.desc(), Case.id.desc())
                                 .offset((page - 1) * size).limit(size)))
    names = cases.class_names(session=session, codes={c.class_code for c in items}, lang=lang)
    out = []
    for case in items:
        allowed = policy.user_actions(user, case)
        out.append(ResidentRequest(case, [a for a in allowed if a in ("handle", "feed_back")],
                           names.get(case.class_code, case.class_code), "comment" in allowed))
    return Page(items=items, total=total, page=page, size=size), out


def answer_request(*, session: Session, user: User, case: Case, note: str) -> Case:
    """Answer a resident: a comment on the case's timeline, which its reporter is told of."""
    if not policy.permitted(user, case, "comment"):
        raise policy.CaseForbidden("comment")
    if case.source not in REQUEST_SOURCES:
        raise cases.CaseError("case_id", "不是居民诉求（not a resident's request）")
    if "\x00" in note:
        raise cases.CaseError("note", "不能包含 NUL 字符（must not contain a NUL character）")
    return cases.act(session=session, case=case, action="comment", actor=user.username, note=note.strip()[:2000],
                     data={"answer": True})


# --- a case from a visit ---------------------------------------------------------------------

def visible_person(*, session: Session, person_id: int) -> Person | None:
    return session.scalar(select(Person).where(Person.id == person_id))


def report_from_visit(*, session: Session, user: User, person: Person, title: str, class_code: str,
                      description: str = "") -> Case:
    """Open a case at the person's place for what a visit found (source: the role's own,
    ``patrol`` for committee staff and grid workers)."""
    body = CaseReportIn.model_validate({"title": title, "class_code": class_code, "description": description,
                                        "place_id": person.place_id})
    return policy.report_case(session=session, user=user, body=body)
