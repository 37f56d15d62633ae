"""Residents' requests through Open311 GeoReport v2, mapped onto cases.

Services are the public case classes; a request is a case with source ``open311``. JSON only
(``.json`` suffix or none); every error is Open311's list ``[{"code": 400, "description": …}]``.
The door is public: reading needs no key and sees only published (``public``) cases of the
whole subdistrict; posting needs an API token with ``case.report`` (``api_key`` or a bearer
token) unless the tenant allows anonymous requests (``tenant.settings["open311_anonymous"]``).
See docs/open311.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from shequ.core.cases import service as cases
from shequ.core.cases.calendar import SHANGHAI
from shequ.core.cases.duplicates import DAYS, RADIUS_M, Candidate, find_duplicates
from shequ.core.cases.models import (
    CLOSED,
    DISPATCHED,
    EVALUATED,
    FED_BACK,
    HANDLED,
    REGISTERED,
    REPORTED,
    VERIFIED,
    VOID,
    Case,
    CaseClass,
    CaseStep,
)
from shequ.core.iam import service as iam
from shequ.core.iam.crypto import mask_id_number, mask_phone
from shequ.core.iam.models import User
from shequ.core.places.models import Place, Tenant
from shequ.core.places.service import find_by_address, locate
from shequ.db import bind_context
from shequ.web.deps import SessionDep, bearer_token, lang_of

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-28T00:00:00+08:00"
MAX_RESULTS = 1000
DEFAULT_DAYS = 90
MAX_ID = 2**31 - 1
CLOSED_STAGES = (CLOSED, EVALUATED, VOID)
# what a step may tell the public in status_notes (comments, escalations, assignments and the
# reporter's own evaluation stay inside)
PUBLIC_ACTIONS = ("register", "void", "dispatch", "handle", "feed_back", "verify", "rework", "close",
                  "extend", "suspend", "resume")
STAGE_NOTICES: dict[str, tuple[str, str]] = {
    REPORTED: ("已受理，待立案", "received, awaiting registration"),
    REGISTERED: ("已立案，待派遣", "registered, awaiting dispatch"),
    VOID: ("不予立案（作废）", "not registered (void)"),
    DISPATCHED: ("已派遣至责任部门处置", "dispatched to the responsible department"),
    HANDLED: ("已处置，待反馈", "handled, awaiting feedback"),
    FED_BACK: ("已反馈，待核查", "fed back, awaiting verification"),
    VERIFIED: ("已核查，待结案", "verified, awaiting closure"),
    CLOSED: ("已结案", "closed"),
    EVALUATED: ("已结案并评价", "closed and evaluated"),
}


# --- errors ----------------------------------------------------------------------------------

class Open311Error(Exception):
    """An answer in Open311's error format; the description names the field."""

    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


def _errors(code: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": code, "description": description}], status_code=code)


class Open311Route(APIRoute):
    """Answers every error of an Open311 route in Open311's format, including FastAPI's own
    validation errors and HTTP exceptions of dependencies (the app's handlers would render
    an HTML page outside /api/v1)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except Open311Error as exc:
                return _errors(exc.code, exc.description)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('query', 'path', 'body'))}: "
                    f"{e.get('msg', '')}" for e in exc.errors())
                return _errors(400, problems or "invalid request")
            except HTTPException as exc:
                return _errors(exc.status_code, str(exc.detail))

        return handler


router = APIRouter(tags=["open311"], route_class=Open311Route)
ERRORS: dict[int | str, dict[str, Any]] = {}  # filled below, once the schema exists


# --- schemas ---------------------------------------------------------------------------------

class ErrorOut(BaseModel):
    code: int
    description: str


class ServiceOut(BaseModel):
    service_code: str = Field(description="the case class code, e.g. E0503")
    service_name: str
    description: str
    metadata: bool = Field(description="true: GET services/{service_code} lists attributes")
    type: str = Field(description="always realtime: a request becomes a case at once")
    keywords: str
    group: str = Field(description="the major class (大类), e.g. 街面秩序")


class AttributeValue(BaseModel):
    key: str
    name: str


class AttributeOut(BaseModel):
    variable: bool
    code: str
    datatype: str = Field(description="string | number | datetime | text | singlevaluelist | multivaluelist")
    required: bool
    datatype_description: str
    order: int
    description: str
    values: list[AttributeValue] = Field(default_factory=list)


class ServiceDefinitionOut(BaseModel):
    service_code: str
    attributes: list[AttributeOut]


class CreatedOut(BaseModel):
    service_request_id: str
    token: str
    service_notice: str
    account_id: str | None


class RequestOut(BaseModel):
    service_request_id: str = Field(description="the case code, e.g. 20261128-000123")
    status: str = Field(description="open | closed")
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    service_notice: str
    requested_datetime: str
    updated_datetime: str | None
    expected_datetime: str | None = Field(description="the handling deadline (set at dispatch)")
    address: str
    address_id: str | None = Field(description="the place id")
    lat: float | None
    long: float | None
    media_url: str | None
    stage: str = Field(description="extension: the case's stage (reported … evaluated, void)")


class TokenOut(BaseModel):
    service_request_id: str | None
    token: str


class DuplicateOut(BaseModel):
    service_request_id: str
    service_code: str
    service_name: str
    status: str
    description: str
    requested_datetime: str
    address: str
    lat: float | None
    long: float | None
    distance_m: float = Field(description="metres from the given point (haversine)")


ERRORS.update({
    400: {"model": list[ErrorOut], "description": "a bad or missing field, named in the description"},
    403: {"model": list[ErrorOut], "description": "no valid api_key with case.report"},
    404: {"model": list[ErrorOut], "description": "no such service, request or token"},
})


# --- attributes ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attribute:
    code: str
    datatype: str
    zh: str
    en: str
    values: tuple[tuple[str, str, str], ...] = ()  # key, zh, en
    kinds: tuple[str, ...] = ()  # class kinds it applies to (empty: every class)
    minimum: float | None = None
    maximum: float | None = None

    def applies(self, klass: CaseClass) -> bool:
        return not self.kinds or klass.kind in self.kinds


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("floor", "number", "所在楼层（地下为负数）", "floor (negative below ground)",
              kinds=("component",), minimum=-10, maximum=200),
    Attribute("contact_time", "singlevaluelist", "方便联系的时间", "when to contact the reporter",
              values=(("any", "随时", "any time"), ("morning", "上午", "morning"),
                      ("afternoon", "下午", "afternoon"), ("evening", "晚上", "evening"))),
    Attribute("confirm_new", "singlevaluelist", "已看过附近的相似问题，确认是新问题",
              "I have seen the similar requests nearby; this one is new",
              values=(("false", "否", "no"), ("true", "是", "yes"))),
)


def attributes_of(klass: CaseClass) -> list[Attribute]:
    """The standard attributes a service offers (every one is optional)."""
    return [a for a in ATTRIBUTES if a.applies(klass)]


def _attribute_out(attribute: Attribute, order: int, lang: str) -> AttributeOut:
    zh = lang.startswith("zh")
    return AttributeOut(variable=True, code=attribute.code, datatype=attribute.datatype, required=False,
                        datatype_description=(attribute.zh if zh else attribute.en), order=order,
                        description=f"{attribute.zh} ({attribute.en})",
                        values=[AttributeValue(key=k, name=(z if zh else e)) for k, z, e in attribute.values])


# --- reading input ---------------------------------------------------------------------------

def _clean(name: str, value: Any, *, max_length: int) -> str:
    """A text field: refused when too long or not storable (NUL, lone surrogates)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise Open311Error(400, f"{name}: must be a single value")
    if "\x00" in text:
        raise Open311Error(400, f"{name}: contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Open311Error(400, f"{name}: is not valid text") from None
    text = text.strip()
    if len(text) > max_length:
        raise Open311Error(400, f"{name}: at most {max_length} characters")
    return text


def _number(name: str, raw: str, low: float, high: float) -> float | None:
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Open311Error(400, f"{name}: must be a number, got {raw[:40]!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise Open311Error(400, f"{name}: must be between {low:g} and {high:g}")
    return value


def _point(lat_raw: str, long_raw: str) -> tuple[float | None, float | None]:
    """(lon, lat) from the lat and long fields: both or neither."""
    lat = _number("lat", lat_raw, -90, 90)
    lon = _number("long", long_raw, -180, 180)
    if (lat is None) != (lon is None):
        raise Open311Error(400, f"{'long' if lon is None else 'lat'}: lat and long go together")
    return lon, lat


def _when(name: str, raw: str) -> dt.datetime | None:
    if raw == "":
        return None
    try:
        # an unescaped "+" of an offset arrives in a query string as a space
        value = dt.datetime.fromisoformat(re.sub(r" (\d{2}:?\d{2})$", r"+\1", raw).replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name}: must be an ISO 8601 date-time, got {raw[:40]!r}") from None
    if not 2000 <= value.year <= 2100:
        raise Open311Error(400, f"{name}: must be within the years 2000–2100")
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(SHANGHAI).isoformat(timespec="seconds") if value else None


_PHONE = re.compile(r"(?<!\d)1\d{10}(?!\d)")
_ID_NUMBER = re.compile(r"(?<![\dXx])\d{17}[\dXx](?![\dXx])|(?<!\d)\d{15}(?!\d)")


def scrub(text: str) -> str:
    """A note as the public may read it: mobile numbers and ID numbers masked."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group()), text or "")
    return _PHONE.sub(lambda m: mask_phone(m.group()), text)


async def _fields(request: Request) -> dict[str, Any]:
    """The POSTed fields, form-encoded (the spec) or JSON; ``attribute`` may be an object in JSON."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except ValueError:
            raise Open311Error(400, "body: malformed JSON") from None
        if not isinstance(data, dict):
            raise Open311Error(400, "body: must be an object of fields")
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key == "attribute" and isinstance(value, dict):
                out.update({f"attribute[{k}]": v for k, v in value.items()})
            else:
                out[str(key)] = value
        return out
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - any unreadable body is the client's error
        raise Open311Error(400, "body: cannot be read as a form") from None
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


# --- the service -----------------------------------------------------------------------------

@contextlib.contextmanager
def whole_tenant(session: Session) -> Iterator[None]:
    """Look past the session's scope for a while: Open311 serves the public over the whole
    subdistrict (an anonymous session sees no placed record at all)."""
    saved = session.info.get("scope")
    session.info["scope"] = None
    try:
        yield
    finally:
        session.info["scope"] = saved


def tenant_settings(session: Session) -> dict[str, Any]:
    tenant = session.get(Tenant, session.info["tenant_id"])
    return dict(tenant.settings or {}) if tenant else {}


def get_service(*, session: Session, code: str) -> CaseClass | None:
    """A public, active case class (an Open311 service)."""
    klass = cases.get_class(session=session, code=code)
    return klass if klass is not None and klass.public and klass.active else None


@dataclass
class NewRequest:
    """A POSTed request, its fields read and checked."""

    service_code: str
    lon: float | None = None
    lat: float | None = None
    address_string: str = ""
    address_id: int | None = None
    description: str = ""
    media_url: str | None = None
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    device_id: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def confirmed_new(self) -> bool:
        return self.attributes.get("confirm_new") == "true"


def read_request(fields: dict[str, Any]) -> NewRequest:
    """Check the fields of a POST requests; Open311Error names the first bad one."""
    code = _clean("service_code", fields.get("service_code"), max_length=20)
    if not code:
        raise Open311Error(400, "service_code: required")
    lon, lat = _point(_clean("lat", fields.get("lat"), max_length=40),
                      _clean("long", fields.get("long"), max_length=40))
    address = _clean("address_string", fields.get("address_string"), max_length=300)
    raw_id = _clean("address_id", fields.get("address_id"), max_length=12)
    address_id = None
    if raw_id:
        if not raw_id.isdigit() or not 1 <= int(raw_id) <= MAX_ID:
            raise Open311Error(400, f"address_id: must be a place id, got {raw_id!r}")
        address_id = int(raw_id)
    if lon is None and not address and address_id is None:
        raise Open311Error(400, "location: required — give lat and long, address_string or address_id")
    media = _clean("media_url", fields.get("media_url"), max_length=500) or None
    if media and not re.match(r"https?://[^\s]+$", media):
        raise Open311Error(400, "media_url: must be an http(s) URL")
    first = _clean("first_name", fields.get("first_name"), max_length=30)
    last = _clean("last_name", fields.get("last_name"), max_length=30)
    phone = _clean("phone", fields.get("phone"), max_length=30)
    if phone and not re.fullmatch(r"\+?[\d\- ]{3,30}", phone):
        raise Open311Error(400, "phone: digits, spaces, + and - only")
    _clean("email", fields.get("email"), max_length=254)  # accepted, never stored
    new = NewRequest(service_code=code, lon=lon, lat=lat, address_string=address, address_id=address_id,
                     description=_clean("description", fields.get("description"), max_length=4000),
                     media_url=media, first_name=first, last_name=last, phone=phone,
                     device_id=_clean("device_id", fields.get("device_id"), max_length=100))
    for key, value in fields.items():
        match = re.fullmatch(r"attribute\[([^\]]{1,40})\](\[\])?", key)
        if match is None:
            continue
        new.attributes[match.group(1)] = _clean(key, value, max_length=100)
    return new


def _attribute_values(klass: CaseClass, raw: dict[str, Any]) -> dict[str, Any]:
    offered = {a.code: a for a in attributes_of(klass)}
    out: dict[str, Any] = {}
    for code, text in raw.items():
        attribute = offered.get(code)
        if attribute is None:
            raise Open311Error(400, f"attribute[{code}]: not an attribute of service {klass.code}")
        if text == "":
            continue
        if attribute.datatype == "number":
            number = _number(f"attribute[{code}]", text, attribute.minimum or -1e9, attribute.maximum or 1e9)
            out[code] = int(number) if number is not None and number.is_integer() else number
        elif attribute.values:
            keys = [k for k, _z, _e in attribute.values]
            if text not in keys:
                raise Open311Error(400, f"attribute[{code}]: must be one of {', '.join(keys)}")
            out[code] = text
        else:
            out[code] = text
    return out


@dataclass
class Submitted:
    case: Case
    suggestions: list[Candidate]
    notice: str


def _notice(case: Case, suggestions: list[Candidate], confirmed: bool, lang: str) -> str:
    zh = lang.startswith("zh")
    if suggestions and not confirmed:
        named = "、".join(f"{c.case.code}（约 {c.distance_m:.0f} 米）" for c in suggestions[:5]) if zh else \
            ", ".join(f"{c.case.code} ({c.distance_m:.0f} m)" for c in suggestions[:5])
        return (f"已受理，编号 {case.code}。附近 {RADIUS_M:.0f} 米内近 {DAYS:.0f} 天已有相同问题：{named}；"
                "如为同一问题，可关注原编号，无需重复上报。") if zh else \
            (f"Received as {case.code}. Similar open requests within {RADIUS_M:.0f} m in the last "
             f"{DAYS:.0f} days: {named}; if it is the same problem, follow that request instead.")
    return f"已受理，编号 {case.code}。" if zh else f"Received as {case.code}."


def submit_request(*, session: Session, new: NewRequest, user: User | None, lang: str = "zh-CN",
                   now: dt.datetime | None = None) -> Submitted:
    """Open a case from an Open311 request: the place located from the point or address, the
    reporter kept (phone encrypted), nearby open requests of the same service suggested."""
    now = now or dt.datetime.now(dt.UTC)
    klass = get_service(session=session, code=new.service_code)
    if klass is None:
        raise Open311Error(400, f"service_code: {new.service_code!r} is not a service (GET services)")
    attrs = _attribute_values(klass, new.attributes)
    settings = tenant_settings(session)
    with whole_tenant(session):
        place_id: int | None = None
        lon, lat = new.lon, new.lat
        if new.address_id is not None:
            place = session.get(Place, new.address_id)
            if place is None:
                raise Open311Error(400, f"address_id: no place {new.address_id}")
            place_id = place.id
            if lon is None and place.lon is not None:
                lon, lat = place.lon, place.lat
        elif new.address_string:
            place = find_by_address(session=session, text=new.address_string)
            if place is not None:
                place_id = place.id
                if lon is None and place.lon is not None:
                    lon, lat = place.lon, place.lat
        if place_id is None and lon is not None and lat is not None:
            found = locate(session=session, lon=lon, lat=lat)
            place_id = found.compound_id or found.committee_id or found.grid_id
        suggestions = [] if lon is None or lat is None else find_duplicates(
            session=session, class_code=klass.code, lon=lon, lat=lat, now=now, public_only=True)
        reporter = (new.last_name + new.first_name) if lang.startswith("zh") else \
            " ".join(p for p in (new.first_name, new.last_name) if p)
        info: dict[str, Any] = {**attrs}
        if new.device_id:
            info["device_id"] = new.device_id
        if suggestions:
            info["possible_duplicates"] = [{"id": c.case.id, "code": c.case.code,
                                            "distance_m": round(c.distance_m, 1)} for c in suggestions]
        first_line = new.description.splitlines()[0].strip() if new.description.strip() else ""
        try:
            case = cases.open_case(
                session=session, title=f"{klass.name}：{first_line[:60]}" if first_line else klass.name,
                class_code=klass.code, source="open311", actor=user.username if user else "open311:anonymous",
                description=new.description, place_id=place_id, lon=lon, lat=lat,
                address_text=new.address_string, reporter_name=reporter[:60] or None,
                reporter_phone=new.phone or None, reporter_user_id=user.id if user else None,
                service_code=klass.code, public=settings.get("open311_public", True) is not False,
                attrs={"open311": info}, now=now)
        except cases.CaseError as exc:
            raise Open311Error(400, f"{exc.field}: {exc.message}") from None
        case.media_url = new.media_url
        session.flush()
    return Submitted(case, suggestions, _notice(case, suggestions, new.confirmed_new, lang))


def reporter(*, session: Session, request: Request, fields: dict[str, Any]) -> User | None:
    """Who posts: the user of ``api_key`` or the bearer token (who must have case.report), or
    nobody when the tenant accepts anonymous requests."""
    key = _clean("api_key", fields.get("api_key"), max_length=200) or bearer_token(request)
    if key:
        user = iam.user_for_token(session=session, token=key)
        if user is None:
            raise Open311Error(403, "api_key: not a valid key")
        if not iam.can(user, iam.CASE_REPORT):
            raise Open311Error(403, "api_key: this key may not report requests (case.report)")
        bind_context(session, tenant_id=user.tenant_id, actor=user.username)
        return user
    if tenant_settings(session).get("open311_anonymous") is not True:
        raise Open311Error(403, "api_key: required (this platform does not accept anonymous requests)")
    bind_context(session, tenant_id=session.info["tenant_id"], actor="open311:anonymous")
    return None


def _public() -> Any:
    return select(Case).where(Case.public.is_(True)).execution_options(all_scopes=True)


def _status(case: Case) -> str:
    return "closed" if case.stage in CLOSED_STAGES else "open"


def _latest_notes(session: Session, case_ids: list[int]) -> dict[int, str]:
    """The note of each case's latest public step (scrubbed of phone and ID numbers)."""
    if not case_ids:
        return {}
    latest = (select(func.max(CaseStep.id)).where(CaseStep.case_id.in_(case_ids),
                                                  CaseStep.action.in_(PUBLIC_ACTIONS))
              .group_by(CaseStep.case_id))
    rows = session.execute(select(CaseStep.case_id, CaseStep.note).where(CaseStep.id.in_(latest))).all()
    return {case_id: scrub(note) for case_id, note in rows}


def request_views(*, session: Session, found: list[Case], lang: str) -> list[RequestOut]:
    """Cases as Open311 requests: never the reporter's name, phone or account."""
    names = cases.class_names(session=session, codes={c.service_code or c.class_code for c in found}, lang=lang)
    notes = _latest_notes(session, [c.id for c in found])
    out = []
    for c in found:
        code = c.service_code or c.class_code
        notice = STAGE_NOTICES.get(c.stage, (c.stage, c.stage))
        out.append(RequestOut(
            service_request_id=c.code, status=_status(c), status_notes=notes.get(c.id, ""),
            service_name=names.get(code, code), service_code=code, description=scrub(c.description or ""),
            agency_responsible=c.department or "", service_notice=notice[0] if lang.startswith("zh") else notice[1],
            requested_datetime=_iso(c.reported_at) or "", updated_datetime=_iso(c.updated_at),
            expected_datetime=_iso(c.due_at), address=c.address_text or "",
            address_id=str(c.place_id) if c.place_id else None, lat=c.lat, long=c.lon, media_url=c.media_url,
            stage=c.stage))
    return out


def find_requests(*, session: Session, ids: list[str] | None = None, service_codes: list[str] | None = None,
                  start: dt.datetime | None = None, end: dt.datetime | None = None,
                  statuses: list[str] | None = None, now: dt.datetime | None = None) -> list[Case]:
    """Public cases, newest first, at most MAX_RESULTS: by code (other filters then ignored, as
    the spec says) or by service, period (default the last 90 days, at most 90) and status."""
    stmt = _public()
    if ids:
        stmt = stmt.where(Case.code.in_(ids))
    else:
        now = now or dt.datetime.now(dt.UTC)
        if start is None and end is None:
            end, start = now, now - dt.timedelta(days=DEFAULT_DAYS)
        elif start is None:
            assert end is not None
            start = end - dt.timedelta(days=DEFAULT_DAYS)
        elif end is None:
            end = start + dt.timedelta(days=DEFAULT_DAYS)
        if end <= start:
            raise Open311Error(400, "end_date: must be after start_date")
        if end - start > dt.timedelta(days=DEFAULT_DAYS):
            raise Open311Error(400, f"end_date: the range may span at most {DEFAULT_DAYS} days")
        stmt = stmt.where(Case.reported_at >= start, Case.reported_at < end)
        if service_codes:
            stmt = stmt.where(func.coalesce(Case.service_code, Case.class_code).in_(service_codes))
        if statuses and set(statuses) != {"open", "closed"}:
            closed = Case.stage.in_(CLOSED_STAGES)
            stmt = stmt.where(closed if set(statuses) == {"closed"} else ~closed)
    return list(session.scalars(stmt.order_by(Case.reported_at.desc(), Case.id.desc()).limit(MAX_RESULTS)))


def _list(raw: str | None, name: str, *, max_items: int = 100) -> list[str]:
    text = _clean(name, raw, max_length=4000)
    items = [p.strip() for p in text.split(",") if p.strip()]
    if len(items) > max_items:
        raise Open311Error(400, f"{name}: at most {max_items} values")
    for item in items:
        if len(item) > 40:
            raise Open311Error(400, f"{name}: {item[:40]!r}… is too long")
    return items


def _suffix(value: str) -> str:
    """A path value without its format suffix (.json); .xml is refused."""
    if value.endswith(".xml"):
        raise Open311Error(400, "format: XML is not supported; use JSON (.json or no suffix)")
    return value.removesuffix(".json")


# --- routes ----------------------------------------------------------------------------------

@router.get("/discovery", summary="Open311 discovery: the endpoint, its specification and formats")
@router.get("/discovery.json", include_in_schema=False)
def discovery(request: Request) -> Any:
    base = str(request.base_url).rstrip("/") + "/open311/v2"
    return {"changeset": CHANGESET, "contact": "城运中心 (the subdistrict's city-operations centre)",
            "key_service": "API tokens are issued by the platform's administrators",
            "endpoints": [{"specification": SPEC, "url": base, "changeset": CHANGESET, "type": "production",
                           "formats": ["application/json"]}]}


@router.get("/services", response_model=list[ServiceOut], responses=ERRORS,
            summary="Open311 services: the case classes residents may report")
@router.get("/services.json", response_model=list[ServiceOut], include_in_schema=False)
def services(request: Request, session: SessionDep) -> Any:
    lang = lang_of(request)
    zh = lang.startswith("zh")
    return [ServiceOut(service_code=k.code, service_name=k.name if zh or not k.name_en else k.name_en,
                       description=k.description or (k.name_en if zh else k.name) or k.name,
                       metadata=bool(attributes_of(k)), type="realtime",
                       keywords=",".join(x for x in (k.major, k.name, k.name_en) if x), group=k.major)
            for k in cases.list_classes(session=session, public_only=True)]


@router.get("/services/{service_code}", response_model=ServiceDefinitionOut, responses=ERRORS,
            summary="One service's definition: its attributes (all optional)")
def service_definition(request: Request, service_code: str, session: SessionDep) -> Any:
    code = _suffix(_clean("service_code", service_code, max_length=60))
    klass = get_service(session=session, code=code)
    if klass is None:
        raise Open311Error(404, f"service_code: no service {code!r}")
    lang = lang_of(request)
    return ServiceDefinitionOut(service_code=klass.code, attributes=[
        _attribute_out(a, order, lang) for order, a in enumerate(attributes_of(klass), start=1)])


POST_BODY = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "object", "required": ["service_code"], "properties": {
        "service_code": {"type": "string", "maxLength": 20}, "api_key": {"type": "string", "maxLength": 200},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "long": {"type": "number", "minimum": -180, "maximum": 180},
        "address_string": {"type": "string", "maxLength": 300}, "address_id": {"type": "string", "maxLength": 12},
        "description": {"type": "string", "maxLength": 4000}, "media_url": {"type": "string", "maxLength": 500},
        "first_name": {"type": "string", "maxLength": 30}, "last_name": {"type": "string", "maxLength": 30},
        "phone": {"type": "string", "maxLength": 30}, "email": {"type": "string", "maxLength": 254},
        "device_id": {"type": "string", "maxLength": 100},
        "attribute[floor]": {"type": "number"}, "attribute[contact_time]": {"type": "string"},
        "attribute[confirm_new]": {"type": "string", "enum": ["true", "false"]}}}}
    for media in ("application/x-www-form-urlencoded", "application/json")}}}


@router.post("/requests", response_model=list[CreatedOut], responses=ERRORS, openapi_extra=POST_BODY,
             summary="Report a request: becomes a case at once (source open311)",
             description="A location is required: lat and long, address_string or address_id (a place id). "
                         "Nearby open requests of the same service (50 m, 3 days) are named in "
                         "service_notice; the request is created anyway.")
@router.post("/requests.json", response_model=list[CreatedOut], include_in_schema=False)
async def post_request(request: Request, session: SessionDep) -> Any:
    fields = await _fields(request)
    user = reporter(session=session, request=request, fields=fields)
    new = read_request(fields)
    done = submit_request(session=session, new=new, user=user, lang=lang_of(request))
    return [CreatedOut(service_request_id=done.case.code, token=done.case.open311_token or "",
                       service_notice=done.notice, account_id=str(user.id) if user else None)]


@router.get("/requests", response_model=list[RequestOut], responses=ERRORS,
            summary="Published requests, newest first (at most 1000; by default the last 90 days)",
            description="service_request_id: comma-separated codes (then the other filters are ignored); "
                        "service_code: comma-separated; start_date, end_date: ISO 8601 (at most 90 days "
                        "apart); status: open, closed or both.")
@router.get("/requests.json", response_model=list[RequestOut], include_in_schema=False)
def get_requests(request: Request, session: SessionDep, service_request_id: str | None = None,
                 service_code: str | None = None, start_date: str | None = None, end_date: str | None = None,
                 status: str | None = None) -> Any:
    statuses = _list(status, "status")
    for value in statuses:
        if value not in ("open", "closed"):
            raise Open311Error(400, f"status: {value!r} is not open or closed")
    found = find_requests(
        session=session, ids=_list(service_request_id, "service_request_id"),
        service_codes=_list(service_code, "service_code"),
        start=_when("start_date", _clean("start_date", start_date, max_length=40)),
        end=_when("end_date", _clean("end_date", end_date, max_length=40)), statuses=statuses)
    return request_views(session=session, found=found, lang=lang_of(request))


@router.get("/requests/duplicates", response_model=list[DuplicateOut], responses=ERRORS,
            summary="Before posting: open requests of the same service within 50 m in the last 3 days")
@router.get("/requests/duplicates.json", response_model=list[DuplicateOut], include_in_schema=False)
def get_duplicates(request: Request, session: SessionDep, service_code: str | None = None,
                   lat: str | None = None, long: str | None = None) -> Any:
    code = _clean("service_code", service_code, max_length=20)
    if not code:
        raise Open311Error(400, "service_code: required")
    lon_value, lat_value = _point(_clean("lat", lat, max_length=40), _clean("long", long, max_length=40))
    if lon_value is None or lat_value is None:
        raise Open311Error(400, "lat: lat and long are required")
    klass = get_service(session=session, code=code)
    if klass is None:
        raise Open311Error(400, f"service_code: {code!r} is not a service")
    lang = lang_of(request)
    name = klass.name if lang.startswith("zh") or not klass.name_en else klass.name_en
    found = find_duplicates(session=session, class_code=klass.code, lon=lon_value, lat=lat_value,
                            public_only=True, all_scopes=True)
    return [DuplicateOut(service_request_id=c.case.code, service_code=klass.code, service_name=name,
                         status=_status(c.case), description=scrub(c.case.description or ""),
                         requested_datetime=_iso(c.case.reported_at) or "", address=c.case.address_text or "",
                         lat=c.case.lat, long=c.case.lon, distance_m=round(c.distance_m, 1)) for c in found]


@router.get("/requests/{service_request_id}", response_model=list[RequestOut], responses=ERRORS,
            summary="One published request")
def get_request(request: Request, service_request_id: str, session: SessionDep) -> Any:
    code = _suffix(_clean("service_request_id", service_request_id, max_length=60))
    case = session.scalar(_public().where(Case.code == code))
    if case is None:
        raise Open311Error(404, f"service_request_id: no request {code!r}")
    return request_views(session=session, found=[case], lang=lang_of(request))


@router.get("/tokens/{token}", response_model=list[TokenOut], responses=ERRORS,
            summary="The request id behind the token a POST answered")
def get_token(token: str, session: SessionDep) -> Any:
    value = _suffix(_clean("token", token, max_length=60))
    code = session.scalar(select(Case.code).where(Case.open311_token == value)
                          .execution_options(all_scopes=True)) if value else None
    if code is None:
        raise Open311Error(404, f"token: no request for token {value!r}")
    return [TokenOut(service_request_id=code, token=value)]


@router.get("/discovery.xml", include_in_schema=False)
@router.get("/services.xml", include_in_schema=False)
@router.get("/requests.xml", include_in_schema=False)
@router.post("/requests.xml", include_in_schema=False)
def xml_refused() -> Any:
    raise Open311Error(400, "format: XML is not supported; use JSON (.json or no suffix)")
