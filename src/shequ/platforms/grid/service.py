"""网格中台 queries and reports: the case board by stage, the alarm console, a patrol report with
photos and a point on the map, and one search over the thematic database (一网一库).

Every read goes through the caller's scoped session, so a grid worker sees only their grids and
department staff only their department's cases; data changes go through the cases and alarms
services."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import shape
from sqlalchemy import case as sql_case
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shequ.core.alarms.models import ACTIVE_UNACK, Alarm
from shequ.core.alarms.query import Filters, find_alarms, place_names
from shequ.core.cases import attachments, policy
from shequ.core.cases import service as cases
from shequ.core.cases.attachments import Photo
from shequ.core.cases.models import (
    DISPATCHED,
    FED_BACK,
    HANDLED,
    REGISTERED,
    REPORTED,
    VERIFIED,
    Case,
)
from shequ.core.cases.query import CaseFilters, list_cases
from shequ.core.errors import FieldError
from shequ.core.iam import service as iam
from shequ.core.iam.crypto import blind_index
from shequ.core.iam.models import User
from shequ.core.iam.scope import AREAS, Scope
from shequ.core.iot.models import Device
from shequ.core.places.models import Place, PlaceKind
from shequ.core.places.service import labels, locate
from shequ.core.registry.kinds import label
from shequ.core.registry.models import Facility, House, Organisation, Person
from shequ.core.registry.validators import validate_id_number

# --- the case board ---------------------------------------------------------------------------

# one column per open stage; a department's handling and its feedback share a column
COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reported", (REPORTED,)),
    ("registered", (REGISTERED,)),
    ("dispatched", (DISPATCHED,)),
    ("handled", (HANDLED, FED_BACK)),
    ("verified", (VERIFIED,)),
)
BOARD_CAP = 20  # cards per column; the column links to the full list
# the actions a card offers (the case page has every other one)
QUICK_ACTIONS = ("register", "dispatch", "co_handle", "handle", "feed_back", "verify", "close")


@dataclass(frozen=True)
class BoardFilters:
    grid_id: int | None = None
    class_code: str | None = None
    overdue: bool = False


@dataclass
class Column:
    key: str
    stages: tuple[str, ...]
    total: int
    cases: list[Case]


@dataclass
class Board:
    columns: list[Column]
    focus: Case | None = None  # the case the page was asked to show (after an action)

    @property
    def total(self) -> int:
        return sum(c.total for c in self.columns)


def board(*, session: Session, filters: BoardFilters, department: str | None = None,
          cap: int = BOARD_CAP, focus_case_id: int | None = None, now: dt.datetime | None = None) -> Board:
    """The open cases in the session's scope by stage, newest first, at most ``cap`` per column;
    ``department`` limits them to those a department handles or co-handles (department staff).
    The case ``focus_case_id`` is shown in its column even when the cap or a filter leaves it out."""
    now = now or dt.datetime.now(dt.UTC)
    columns = []
    for key, stages in COLUMNS:
        found: list[Case] = []
        total = 0
        for stage in stages:
            page = list_cases(session=session, department=department, size=cap, now=now, filters=CaseFilters(
                stage=stage, grid_id=filters.grid_id, class_code=filters.class_code, overdue=filters.overdue))
            found += page.items
            total += page.total
        found.sort(key=lambda c: (c.reported_at, c.id), reverse=True)
        columns.append(Column(key, stages, total, found[:cap]))
    focus = cases.get_case(session=session, case_id=focus_case_id) if focus_case_id else None
    if focus is not None and department is not None and department not in (focus.department,
                                                                           *(focus.co_departments or [])):
        focus = None  # department staff see their department's cases only, as in the list
    if focus is not None:
        for column in columns:
            if focus.stage in column.stages and all(c.id != focus.id for c in column.cases):
                column.cases.insert(0, focus)
    return Board(columns, focus)


def quick_actions(user: User, case: Case) -> list[str]:
    """The card's buttons: the quick actions the stage allows and the user may take."""
    allowed = policy.user_actions(user, case)
    return [a for a in QUICK_ACTIONS if a in allowed]


def class_names(*, session: Session, lang: str) -> dict[str, str]:
    """Case class code → its name in the language (for cards and the class filter)."""
    zh = lang.startswith("zh")
    return {k.code: k.name if zh or not k.name_en else k.name_en for k in cases.list_classes(session=session)}


def grids(*, session: Session) -> list[Place]:
    """The grids the user may filter by (those in their scope)."""
    return list(session.scalars(select(Place).where(Place.kind == PlaceKind.GRID).order_by(Place.code)))


# --- the alarm console ------------------------------------------------------------------------

CONSOLE_CAP = 15


@dataclass
class Console:
    alarms: list[Alarm]
    total: int  # active alarms in scope
    unacknowledged: int
    places: dict[int, str]


def alarm_console(*, session: Session, cap: int = CONSOLE_CAP) -> Console:
    """The active alarms in the session's scope, the most severe first, then the newest."""
    page = find_alarms(session=session, filters=Filters(statuses=[], severities=[], active=True, sort="severity"),
                       size=cap)
    unacked = session.scalar(select(func.count(Alarm.id)).where(Alarm.status == ACTIVE_UNACK)) or 0
    return Console(page.items, page.total, unacked, place_names(session, page.items))


# --- patrol reports ---------------------------------------------------------------------------

NEAREST_BUILDING_M = 150.0  # a point farther than this from every building is placed by its area


class PatrolRejected(FieldError):
    """A patrol report refused; ``errors`` maps every bad field of the form to why."""

    def __init__(self, errors: dict[str, str]):
        first = next(iter(errors))
        super().__init__(first, errors[first])
        self.errors = errors



def subdistrict_bounds(*, session: Session) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of the subdistrict: the extent of its grids (or, without grid
    outlines, its committees). Only coordinates leave this function, so it reads every area."""
    for kind in (PlaceKind.GRID, PlaceKind.COMMITTEE):
        shapes = [shape(g) for g in session.scalars(
            select(Place.geometry).where(Place.kind == kind, Place.geometry.is_not(None))
            .execution_options(all_scopes=True)) if g]
        if shapes:
            west = min(s.bounds[0] for s in shapes)
            south = min(s.bounds[1] for s in shapes)
            east = max(s.bounds[2] for s in shapes)
            north = max(s.bounds[3] for s in shapes)
            return west, south, east, north
    return None


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance on the ground, equirectangular (good to a few metres inside a subdistrict)."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6_371_000 * math.hypot(x, y)


def nearest_building(*, session: Session, lon: float, lat: float,
                     within_m: float = NEAREST_BUILDING_M) -> Place | None:
    """The building in scope whose point is nearest to (lon, lat), if one is within ``within_m``."""
    pad = within_m / 90_000  # degrees, generous at Shanghai's latitude
    rows = session.execute(select(Place.id, Place.lon, Place.lat).where(
        Place.kind == PlaceKind.BUILDING, Place.lon.between(lon - pad * 1.3, lon + pad * 1.3),
        Place.lat.between(lat - pad, lat + pad)))
    best: tuple[float, int] | None = None
    for pid, blon, blat in rows:
        if blon is None or blat is None:
            continue
        d = _metres(lon, lat, blon, blat)
        if d <= within_m and (best is None or d < best[0]):
            best = (d, pid)
    return session.get(Place, best[1]) if best else None


def _number(raw: str | None) -> float | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    value = float(raw)  # ValueError for text
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _check_text(errors: dict[str, str], key: str, value: str, limit: int, *, required: bool = False) -> str:
    value = (value or "").strip()
    if "\x00" in value:
        errors[key] = "不能包含 NUL 字符（must not contain a NUL character）"
    elif required and not value:
        errors[key] = "必填（required）"
    elif len(value) > limit:
        errors[key] = f"最多 {limit} 字（at most {limit} characters）"
    return value


def _check_photos(errors: dict[str, str], photos: Sequence[Photo]) -> list[Photo]:
    chosen, problem = attachments.check_photos(photos)
    if problem:
        errors["photos"] = problem
    return chosen


def _area_of(session: Session, place: Place | None, lon: float | None, lat: float | None) -> dict[str, int | None]:
    if place is not None:
        return place.ancestry()
    if lon is not None and lat is not None:
        found = locate(session=session, lon=lon, lat=lat)
        return {"grid_id": found.grid_id, "committee_id": found.committee_id, "compound_id": found.compound_id}
    return {}


def report_patrol(*, session: Session, user: User, title: str, class_code: str, description: str = "",
                  lon: str = "", lat: str = "", place: str = "", photos: Sequence[Photo] = (),
                  now: dt.datetime | None = None) -> Case:
    """巡查上报: a case with ``source="patrol"`` at a point picked on the map (placed at the nearest
    building, or the area around it) or at a chosen place, with its photos attached. Every bad
    field is checked before anything is written; ``PatrolRejected`` names them all."""
    errors: dict[str, str] = {}
    title = _check_text(errors, "title", title, 200, required=True)
    description = _check_text(errors, "description", description, 4000)
    class_code = (class_code or "").strip()
    public_only = not iam.can(user, iam.CASE_READ)
    if class_code not in {k.code for k in cases.list_classes(session=session, public_only=public_only)}:
        errors["class_code"] = "请选择事件类别（choose a case class）" if not class_code else \
            f"{class_code[:20]!r} 不是可选的事件类别（not a case class you may report）"
    point_lon = point_lat = None
    try:
        point_lon, point_lat = _number(lon), _number(lat)
    except ValueError:
        errors["point"] = "经纬度应为数字（lon and lat must be numbers）"
    if "point" not in errors and (point_lon is None) != (point_lat is None):
        errors["point"] = "经纬度须同时给出（give both lon and lat）"
    if point_lon is not None and point_lat is not None and "point" not in errors:
        bounds = subdistrict_bounds(session=session)
        west, south, east, north = bounds or (-180.0, -90.0, 180.0, 90.0)
        if not (west <= point_lon <= east and south <= point_lat <= north):
            errors["point"] = (f"({point_lon:.6f}, {point_lat:.6f}) 不在本街道范围内（the point is outside "
                               f"the subdistrict）")
    chosen_place: Place | None = None
    raw_place = (place or "").strip()
    if raw_place:
        if not raw_place.isdigit() or not 1 <= int(raw_place) <= 2**31 - 1:
            errors["place"] = "应为地点编号（a place id）"
        else:
            chosen_place = session.scalar(select(Place).where(Place.id == int(raw_place)))
            if chosen_place is None:
                errors["place"] = f"地点 {raw_place} 不存在（unknown place）"
    if point_lon is None and chosen_place is None and not {"point", "place"} & set(errors):
        errors["point"] = "请在地图上点选位置或选择地点（pick a point on the map or choose a place）"
    chosen_photos = _check_photos(errors, photos)
    if not {"point", "place"} & set(errors):
        if chosen_place is None and point_lon is not None and point_lat is not None:
            chosen_place = nearest_building(session=session, lon=point_lon, lat=point_lat)
        area = _area_of(session, chosen_place, point_lon, point_lat)
        scope = session.info.get("scope")
        if isinstance(scope, Scope) and scope.kind == AREAS and not scope.covers_area(
                grid_id=area.get("grid_id"), committee_id=area.get("committee_id"),
                compound_id=area.get("compound_id")):
            errors["place" if raw_place else "point"] = "位置不在您的管辖范围内（the place is outside your areas）"
        elif chosen_place is None:
            chosen_place = next((session.get(Place, area[k]) for k in ("compound_id", "committee_id", "grid_id")
                                 if area.get(k)), None)
    if errors:
        raise PatrolRejected(errors)
    found = cases.open_case(session=session, title=title, class_code=class_code, source="patrol", actor=user.username,
                            description=description, place_id=chosen_place.id if chosen_place else None,
                            lon=point_lon, lat=point_lat, reporter_name=user.display_name or user.username,
                            reporter_user_id=user.id, now=now)
    for photo in chosen_photos:
        attachments.add_attachment(session=session, case=found, name=photo.name or "photo", data=photo.data,
                                   uploaded_by=user.username)
    return found


# --- one search box (一网一库) ------------------------------------------------------------------

SEARCH_KINDS = ("person", "house", "place", "organisation", "facility", "device", "case", "alarm")
SEARCH_LIMIT = 10
_ID_NUMBER = re.compile(r"\d{17}[\dXx]")
_PHONE = re.compile(r"1\d{10}")
# the place kinds most worth finding first (a road's name also matches every room on it)
_PLACE_RANK = {k: i for i, k in enumerate((PlaceKind.GRID, PlaceKind.COMMITTEE, PlaceKind.COMPOUND,
                                           PlaceKind.BUILDING, PlaceKind.STREET, PlaceKind.SHOP,
                                           PlaceKind.OTHER, PlaceKind.UNIT, PlaceKind.FLOOR, PlaceKind.ROOM))}


@dataclass
class Hit:
    title: str
    url: str
    detail: str = ""
    badges: tuple[str, ...] = ()  # i18n keys (a case's stage, an alarm's severity and status)


@dataclass
class Group:
    kind: str
    total: int
    hits: list[Hit] = field(default_factory=list)


def _like(column: Any, q: str) -> Any:
    return column.icontains(q, autoescape=True)


def _person_clause(q: str) -> Any:
    """A full ID number or mobile number is looked up by its blind index (the stored values are
    encrypted); anything else matches the name."""
    if _ID_NUMBER.fullmatch(q):
        try:
            return Person.id_number_hash == blind_index(validate_id_number(q))
        except ValueError:
            pass
    if _PHONE.fullmatch(q):
        return Person.phone_hash == blind_index(q)
    return _like(Person.name, q)


def _group(session: Session, stmt: Any, where: Any, order: Sequence[Any], limit: int) -> tuple[int, list[Any]]:
    total = session.scalar(select(func.count()).select_from(stmt.where(where).order_by(None).subquery())) or 0
    rows = list(session.execute(stmt.where(where).order_by(*order).limit(limit))) if total else []
    return total, rows


def _names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    return labels(session=session, ids=ids)


def check_query(q: str | None) -> str:
    """The search text, stripped; FieldError ``q`` when it cannot be searched for."""
    q = (q or "").strip()
    if "\x00" in q:
        raise FieldError("q", "不能包含 NUL 字符（must not contain a NUL character）")
    if len(q) > 100:
        raise FieldError("q", "最多 100 字（at most 100 characters）")
    return q


def search(*, session: Session, q: str, kinds: Iterable[str] = SEARCH_KINDS, department: str | None = None,
           lang: str = "zh-CN", limit: int = SEARCH_LIMIT) -> list[Group]:
    """Records of each kind matching ``q`` in the session's scope: a count and the first ``limit``
    of each, linking to their pages; personal data only masked. Cases match on number, title,
    address and description, as in the case list; ``department`` limits them to a department's
    (department staff)."""
    q = check_query(q)
    if not q:
        return []
    groups = []
    for kind in (k for k in SEARCH_KINDS if k in set(kinds)):
        hits: list[Hit] = []
        if kind == "person":
            total, rows = _group(session, select(Person), _person_clause(q), [Person.name, Person.id], limit)
            names = _names(session, (r[0].place_id for r in rows))
            for (p,) in rows:
                detail = " · ".join(x for x in (label("sex", p.sex, lang), p.id_number_mask, p.phone_mask,
                                                 names.get(p.place_id or 0, "")) if x)
                hits.append(Hit(p.name, f"/registry/people/{p.id}", detail))
        elif kind == "house":
            stmt = select(House, Place.address_text).join(Place, Place.id == House.place_id)
            total, rows = _group(session, stmt, or_(_like(Place.address_text, q), _like(Place.name, q)),
                                 [Place.address_text, House.id], limit)
            hits = [Hit(addr or f"#{h.id}", f"/registry/houses/{h.id}", label("house_use", h.use, lang))
                    for h, addr in rows]
        elif kind == "place":
            rank = sql_case(_PLACE_RANK, value=Place.kind, else_=len(_PLACE_RANK))
            total, rows = _group(session, select(Place),
                                 or_(_like(Place.name, q), _like(Place.address_text, q), _like(Place.code, q)),
                                 [rank, Place.code], limit)
            hits = [Hit(p.address_text or p.name, f"/registry/places/{p.id}",
                        " · ".join(x for x in (label("place_kind", p.kind, lang), p.name, p.code) if x))
                    for (p,) in rows]
        elif kind == "organisation":
            total, rows = _group(session, select(Organisation),
                                 or_(_like(Organisation.name, q), _like(Organisation.credit_code, q)),
                                 [Organisation.name, Organisation.id], limit)
            hits = [Hit(o.name, f"/registry/organisations/{o.id}",
                        " · ".join(x for x in (label("org_kind", o.kind, lang), o.credit_code or "") if x))
                    for (o,) in rows]
        elif kind == "facility":
            total, rows = _group(session, select(Facility), or_(_like(Facility.name, q), _like(Facility.code, q)),
                                 [Facility.code, Facility.id], limit)
            hits = [Hit(f.name, f"/registry/facilities/{f.id}",
                        " · ".join(x for x in (f.code, label("facility_kind", f.kind, lang)) if x)) for (f,) in rows]
        elif kind == "device":
            total, rows = _group(session, select(Device), or_(_like(Device.code, q), _like(Device.name, q)),
                                 [Device.code, Device.id], limit)
            names = _names(session, (r[0].place_id for r in rows))
            hits = [Hit(d.name, f"/iot/devices/{d.id}",
                        " · ".join(x for x in (d.code, d.type_code, names.get(d.place_id or 0, "")) if x))
                    for (d,) in rows]
        elif kind == "case":
            found = list_cases(session=session, filters=CaseFilters(q=q), department=department, size=limit)
            total = found.total
            hits = [Hit(f"{c.code} {c.title}", f"/cases/{c.id}", c.department or "", (f"cases.stage.{c.stage}",))
                    for c in found.items]
        else:  # alarm
            total, rows = _group(session, select(Alarm), or_(_like(Alarm.title, q), _like(Alarm.type, q)),
                                 [Alarm.raised_at.desc(), Alarm.id.desc()], limit)
            hits = [Hit(a.title, f"/alarms/{a.id}", a.type, (f"alarms.sev.{a.severity}", f"alarms.st.{a.status}"))
                    for (a,) in rows]
        groups.append(Group(kind, total, hits))
    return groups
