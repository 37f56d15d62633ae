"""居民端: what a resident reads and does — their home, the classes they may report, reporting a
problem with photos, their own requests with the progress they may see, and rating the result.

Scopes. A resident's session carries the ``person`` scope (``shequ.core.iam.scope``): they see
their own person, household and house and the places up their tree, and no ``Case`` row at all
(cases are placed records). Three reads here leave the scope on purpose, each for one thing:

- ``_own``: the resident's own cases, read explicitly by ``Case.reporter_user_id == user.id``
  with ``execution_options(all_scopes=True)``; every case a page shows comes through it, so
  another resident's case is never found (the page answers 404, as for one that does not exist);
- ``_place_at``: the place a resident reports at when it is not on their own tree (a point picked
  on the map or their position): the grid, committee and compound containing the point are
  located over the whole tenant and only the one place the case is opened at is loaded, into
  the session's identity map, so that ``open_case`` and the ancestry listener find it;
- ``map_footprints``: the outlines of the subdistrict's buildings for the location map —
  geometry only, no name, id or anything about who lives there (what any street map shows).

Everything else (the resident's home, the case timeline, attachments, classes, notices) goes
through the scoped session like any other request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.cases import attachments as files
from shequ.core.cases import policy
from shequ.core.cases import service as cases
from shequ.core.cases.attachments import Photo
from shequ.core.cases.models import (
    CLOSED,
    DISPATCHED,
    EVALUATED,
    FED_BACK,
    HANDLED,
    OPEN_STAGES,
    REGISTERED,
    REPORTED,
    VERIFIED,
    VOID,
    Case,
    CaseAttachment,
    CaseClass,
    CaseStep,
)
from shequ.core.errors import FieldError
from shequ.core.iam.models import Role, User
from shequ.core.paging import Page
from shequ.core.places.models import Place, PlaceKind, Tenant
from shequ.core.places.service import build_locator
from shequ.core.registry.models import Household, Person

UNSCOPED = {"all_scopes": True}
PAGE_SIZE = 20
MAX_PHOTOS, PHOTO_TYPES = files.MAX_PHOTOS, files.PHOTO_TYPES
LOCATIONS = ("home", "map", "gps")

# a stage in the words a resident understands (keys of the i18n catalogue, see routes.py)
STAGE_WORDS: dict[str, str] = {
    REPORTED: "submitted", REGISTERED: "accepted", DISPATCHED: "in_progress", HANDLED: "in_progress",
    FED_BACK: "in_progress", VERIFIED: "in_progress", CLOSED: "resolved", EVALUATED: "rated",
    VOID: "not_accepted",
}
# the steps of the timeline a resident sees (stage changes and comments); the internal ones —
# extensions, suspensions, supervision, co-handling, assignment, escalation — stay with staff
VISIBLE_STEPS = frozenset({"report", "register", "void", "dispatch", "rework", "handle", "feed_back",
                           "verify", "close", "evaluate", "comment"})
# whose note a resident reads: what was done and why; the report's note is their own description
STEPS_WITH_NOTE = frozenset({"void", "handle", "feed_back", "close", "evaluate", "comment"})


class ReportRefused(FieldError):
    """A report or a rating refused; ``errors`` holds every field's message (``field`` the first)."""

    def __init__(self, errors: dict[str, str]):
        first = next(iter(errors))
        super().__init__(first, errors[first])
        self.errors = dict(errors)


# --- home and classes ----------------------------------------------------------------------


def person_id_of(user: User) -> int | None:
    value = (user.scope or {}).get("person_id") if user.role == Role.RESIDENT else None
    return value if isinstance(value, int) else None


def home_place(*, session: Session, user: User) -> Place | None:
    """The building the resident lives in (their person's place, else their household's), read
    in their scope; None for a user who is not a resident bound to a person with a place."""
    person_id = person_id_of(user)
    if person_id is None:
        return None
    person = session.scalar(select(Person).where(Person.id == person_id))
    if person is None:
        return None
    place_id = person.place_id
    if place_id is None and person.household_id is not None:
        place_id = session.scalar(select(Household.place_id).where(Household.id == person.household_id))
    if place_id is None:
        return None
    place = session.scalar(select(Place).where(Place.id == place_id))
    if place is None:
        return None
    building_id = place.ancestry()["building_id"]
    if building_id is None or building_id == place.id:
        return place
    return session.scalar(select(Place).where(Place.id == building_id)) or place


def place_label(place: Place) -> str:
    return place.address_text or place.name


@dataclass(frozen=True)
class ClassChoice:
    code: str
    name: str


@dataclass(frozen=True)
class ClassGroup:
    major: str
    classes: tuple[ClassChoice, ...]


def class_name(klass: CaseClass | None, lang: str, code: str = "") -> str:
    if klass is None:
        return code
    return klass.name if lang.startswith("zh") or not klass.name_en else klass.name_en


def class_groups(*, session: Session, lang: str) -> list[ClassGroup]:
    """The classes offered to residents, grouped by their major class, names in ``lang``."""
    groups: dict[str, list[ClassChoice]] = {}
    for klass in cases.list_classes(session=session, public_only=True):
        groups.setdefault(klass.major or "", []).append(ClassChoice(klass.code, class_name(klass, lang)))
    return [ClassGroup(major, tuple(items)) for major, items in groups.items()]


# --- reporting -----------------------------------------------------------------------------



@dataclass
class ReportIn:
    """The report form as typed (strings), checked by ``report``."""

    class_code: str = ""
    title: str = ""
    description: str = ""
    location: str = "home"
    lon: str = ""
    lat: str = ""
    address_detail: str = ""
    photos: list[Photo] = field(default_factory=list)


def _text(errors: dict[str, str], key: str, value: str, limit: int, *, required: str = "") -> str:
    value = (value or "").strip()
    if "\x00" in value:
        errors[key] = "不能包含 NUL 字符（must not contain a NUL character）"
    elif required and not value:
        errors[key] = required
    elif len(value) > limit:
        errors[key] = f"不超过 {limit} 字（at most {limit} characters）"
    return value


def _coordinate(raw: str, low: float, high: float) -> float | None:
    try:
        value = float((raw or "").strip())
    except ValueError:
        return None
    return value if low <= value <= high else None


def _check_photos(errors: dict[str, str], photos: Sequence[Photo]) -> None:
    problem = files.check_photos(photos)[1]
    if problem:
        errors["photos"] = problem


def _place_at(session: Session, lon: float, lat: float) -> Place | None:
    """The most specific area (compound, else committee, else grid) containing a point, over
    the whole tenant (see the module's docstring); None outside the subdistrict."""
    found = build_locator(session=session, whole_tenant=True).locate(lon, lat)
    place_id = found.compound_id or found.committee_id or found.grid_id
    if place_id is None:
        return None
    return session.scalar(select(Place).where(Place.id == place_id), execution_options=UNSCOPED)


def report(*, session: Session, user: User, form: ReportIn, now: dt.datetime | None = None) -> Case:
    """Open a resident's case (source ``resident``) with its photos. Every field is checked
    before anything is written: ``ReportRefused`` names each bad one and nothing is created."""
    errors: dict[str, str] = {}
    code = _text(errors, "class_code", form.class_code, 20, required="请选择问题类别（choose a category）")
    klass = cases.get_class(session=session, code=code) if code and "class_code" not in errors else None
    if code and "class_code" not in errors and (klass is None or not klass.active or not klass.public):
        errors["class_code"] = "请从列表中选择问题类别（choose a category from the list）"
    title = _text(errors, "title", form.title, 200)
    description = _text(errors, "description", form.description, 4000,
                        required="请描述一下问题（describe the problem）")
    detail = _text(errors, "address_detail", form.address_detail, 100)
    _check_photos(errors, form.photos)
    place: Place | None = None
    lon = lat = None
    if form.location == "home":
        place = home_place(session=session, user=user)
        if place is None:
            errors["location"] = "没有登记您的住址，请在地图上选点或使用我的位置（no home address: pick a point）"
    elif form.location in ("map", "gps"):
        lon = _coordinate(form.lon, -180, 180)
        lat = _coordinate(form.lat, -90, 90)
        if lon is None or lat is None:
            errors["location"] = ("请在地图上点选位置（tap the map to choose the place）" if form.location == "map"
                                  else "未能取得您的位置，请允许定位或在地图上选点（no position: allow location or pick a point）")
        else:
            place = _place_at(session, lon, lat)
            if place is None:
                errors["location"] = "所选位置不在本街道范围内（the place is outside the subdistrict）"
    else:
        errors["location"] = "请选择位置（choose where the problem is）"
    if errors:
        raise ReportRefused(errors)
    assert klass is not None and place is not None
    address = place_label(place)
    if detail:
        address = f"{address}（{detail}）"
    # one savepoint: a refusal after the case is opened (it should not happen: all is checked
    # above) takes the case back with it, so that a re-rendered form never leaves a case behind
    with session.begin_nested():
        case = cases.open_case(session=session, title=title or klass.name, class_code=klass.code,
                               source="resident", actor=user.username, description=description,
                               place_id=place.id, lon=lon, lat=lat, address_text=address,
                               reporter_name=user.display_name or user.username,
                               reporter_user_id=user.id, now=now)
        for photo in form.photos:
            files.add_attachment(session=session, case=case, name=photo.name, data=photo.data,
                                 uploaded_by=user.username)
    return case


# --- my requests ---------------------------------------------------------------------------


def _own(stmt: Any, user: User) -> Any:
    """The one unscoped read of cases: ``stmt`` limited to the user's own (see the module's
    docstring); the tenant limit stays."""
    return stmt.where(Case.reporter_user_id == user.id).execution_options(**UNSCOPED)


def my_cases(*, session: Session, user: User, page: int = 1, size: int = PAGE_SIZE) -> Page:
    """The user's own requests, newest first."""
    total = session.scalar(_own(select(func.count(Case.id)), user)) or 0
    items = list(session.scalars(_own(select(Case), user).order_by(Case.reported_at.desc(), Case.id.desc())
                                 .offset((page - 1) * size).limit(size)))
    return Page(items=items, total=total, page=page, size=size)


def open_count(*, session: Session, user: User) -> int:
    """How many of the user's requests are still being dealt with."""
    return session.scalar(_own(select(func.count(Case.id)), user).where(Case.stage.in_(OPEN_STAGES))) or 0


def my_case(*, session: Session, user: User, case_id: int) -> Case | None:
    """One of the user's own requests (None for another's, as for one that does not exist)."""
    return session.scalar(_own(select(Case), user).where(Case.id == case_id))


@dataclass(frozen=True)
class Progress:
    """One step of a request's progress as the resident sees it."""

    at: dt.datetime
    action: str
    stage: str | None
    department: str | None
    note: str
    satisfaction: int | None = None


def progress(*, session: Session, case: Case) -> list[Progress]:
    """The steps a resident may see, oldest first: stage changes and comments, with the notes
    that say what was done (see VISIBLE_STEPS)."""
    out = []
    for step in cases.timeline(session=session, case_id=case.id):
        if step.action not in VISIBLE_STEPS:
            continue
        out.append(Progress(at=step.at, action=step.action, stage=step.to_stage,
                            department=_department(step), note=step.note if step.action in STEPS_WITH_NOTE else "",
                            satisfaction=case.satisfaction if step.action == "evaluate" else None))
    return out


def _department(step: CaseStep) -> str | None:
    return step.department if step.action == "dispatch" else None


def photos(*, session: Session, case: Case) -> list[CaseAttachment]:
    """The photos of a request (the resident's and those staff added), oldest first."""
    return [a for a in files.list_attachments(session=session, case_id=case.id) if a.content_type in PHOTO_TYPES]


def photo(*, session: Session, user: User, case_id: int, attachment_id: int) -> tuple[CaseAttachment, bytes] | None:
    """A photo of one of the user's requests and its bytes; None when any of it is not there."""
    case = my_case(session=session, user=user, case_id=case_id)
    if case is None:
        return None
    row = files.get_attachment(session=session, case_id=case.id, attachment_id=attachment_id)
    if row is None or row.content_type not in PHOTO_TYPES:
        return None
    data = files.read_attachment(row)
    return (row, data) if data is not None else None


# --- rating --------------------------------------------------------------------------------


def may_rate(user: User, case: Case) -> bool:
    return case.stage == CLOSED and policy.permitted(user, case, "evaluate")


def rate(*, session: Session, user: User, case: Case, satisfaction: str, comment: str = "",
         now: dt.datetime | None = None) -> Case:
    """The reporter rates a resolved request, 1–5 stars and a comment (``evaluate``). Refused
    (``ReportRefused``) before the request is resolved, after it was rated, or without stars."""
    errors: dict[str, str] = {}
    if case.stage == EVALUATED:
        errors["satisfaction"] = "您已经评价过了（already rated）"
    elif case.stage != CLOSED:
        errors["satisfaction"] = "办结后才能评价（you can rate once the request is resolved）"
    elif not policy.permitted(user, case, "evaluate"):
        errors["satisfaction"] = "只有提出诉求的人可以评价（only the reporter rates）"
    raw = (satisfaction or "").strip()
    stars = int(raw) if raw.isdigit() and len(raw) == 1 else 0
    if not errors and not 1 <= stars <= 5:
        errors["satisfaction"] = "请选择 1 到 5 颗星（choose 1 to 5 stars）"
    note = _text(errors, "comment", comment, 500)
    if errors:
        raise ReportRefused(errors)
    return cases.act(session=session, case=case, action="evaluate", actor=user.username,
                     satisfaction=stars, note=note, now=now)


# --- the location map ----------------------------------------------------------------------


def map_footprints(*, session: Session, user: User) -> dict[str, Any]:
    """What the location map draws: the subdistrict's building outlines (geometry only, over
    the whole tenant — see the module's docstring), the resident's home and the map's centre."""
    outlines = session.scalars(select(Place.geometry).where(
        Place.kind == PlaceKind.BUILDING, Place.geometry.is_not(None)).order_by(Place.id),
        execution_options=UNSCOPED)
    features = [{"type": "Feature", "properties": {}, "geometry": g} for g in outlines if g]
    home = home_place(session=session, user=user)
    centre: list[float] | None = None
    if home is not None and home.lon is not None and home.lat is not None:
        centre = [home.lon, home.lat]
    if centre is None:
        tenant = session.get(Tenant, session.info.get("tenant_id"))
        if tenant is not None and tenant.centre_lon is not None and tenant.centre_lat is not None:
            centre = [tenant.centre_lon, tenant.centre_lat]
    if centre is None and features:
        first = features[0]["geometry"]["coordinates"]
        while first and isinstance(first[0], list):
            first = first[0]
        centre = [float(first[0]), float(first[1])] if first else None
    return {
        "centre": centre,
        "buildings": {"type": "FeatureCollection", "features": features},
        "home": ({"type": "Feature", "properties": {}, "geometry": home.geometry}
                 if home is not None and home.geometry else None),
    }
