"""S05's pages (/shops: risk ledger, one shop, inspection tasks) and API (/api/v1/shops…).

Thin: each route reads its parameters, finds records through the request's scoped session (out
of scope answers 404 like missing), checks who may act, and calls ``service``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from shequ.core.alarms.routes import SEVERITY_CLASS
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.paging import Page
from shequ.core.places.models import Place
from shequ.scenarios.s05_shops import service
from shequ.scenarios.s05_shops.models import RESULTS, RISK_LEVELS, Inspection
from shequ.scenarios.s05_shops.schemas import (
    AssignIn,
    InspectionIn,
    InspectionOut,
    InspectionPage,
    ReasonOut,
    RectificationIn,
    RegistrationIn,
    ResultIn,
    ShopOut,
    ShopPage,
)
from shequ.scenarios.s05_shops.service import LedgerFilters, Risk, ShopError
from shequ.web import i18n, nav
from shequ.web.deps import ApiUser, PageUser, SessionDep, ensure_can, found, lang_of, render
from shequ.web.records import MAX_ID
from shequ.web.security import csrf_protect

pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api/v1/shops", tags=["shops (S05)"])

ShopId = Annotated[int, Path(ge=1, le=MAX_ID, description="the shop (its place id)")]
InspectionId = Annotated[int, Path(ge=1, le=MAX_ID, description="inspection id")]
PAGE_SIZE = 50
RECTIFICATION = ("none", "pending", "overdue", "done")
LEVELS = ("grid", "committee")

i18n.extend({
    "shops.title": ("场所监管", "Shop safety"),
    "shops.ledger": ("商铺风险台账", "Shop risk ledger"),
    "shops.total": ("共 {n} 家", "{n} shops"),
    "shops.inspections": ("场所检查任务", "Shop inspections"),
    "shops.committee": ("居委", "Committee"),
    "shops.level": ("风险等级", "Risk level"),
    "shops.level.low": ("低", "low"),
    "shops.level.medium": ("中", "medium"),
    "shops.level.high": ("高", "high"),
    "shops.base_level": ("基础风险", "Base risk"),
    "shops.registered": ("商住登记", "Registered as residence"),
    "shops.yes": ("是", "yes"),
    "shops.no": ("否", "no"),
    "shops.search": ("名称或地址", "Name or address"),
    "shops.name": ("商铺", "Shop"),
    "shops.industry": ("行业", "Industry"),
    "shops.incidents": ("近 {days} 天事件", "Incidents, {days} days"),
    "shops.last_inspection": ("最近检查", "Last inspection"),
    "shops.rectification": ("整改", "Rectification"),
    "shops.rect.none": ("无", "none"),
    "shops.rect.pending": ("整改中", "pending"),
    "shops.rect.overdue": ("整改逾期", "overdue"),
    "shops.rect.done": ("已整改", "done"),
    "shops.score": ("风险分", "Score"),
    "shops.why": ("构成", "Made of"),
    "shops.explain": ("风险分 = 基础风险 + 近期事件 + 检查与整改情况；≥50 为高，≥25 为中。",
                      "Score = base risk + recent incidents + inspections and rectification; ≥50 high, ≥25 medium."),
    "shops.reason.base_low": ("基础风险低", "base risk low"),
    "shops.reason.base_medium": ("基础风险中", "base risk medium"),
    "shops.reason.base_high": ("基础风险高", "base risk high"),
    "shops.reason.fire": ("烟感/燃气告警", "smoke or gas alarms"),
    "shops.reason.live_in": ("三合一嫌疑（夜数）", "live-in suspicion (nights)"),
    "shops.reason.other": ("其他告警", "other alarms"),
    "shops.reason.residence": ("商住（夜间有人居住）", "registered residence (people sleep there)"),
    "shops.reason.last_pass": ("最近检查合格", "last inspection passed"),
    "shops.reason.last_rectify": ("最近检查须整改", "last inspection: rectify"),
    "shops.reason.last_fail": ("最近检查不合格", "last inspection failed"),
    "shops.reason.rectify_overdue": ("整改逾期", "rectification overdue"),
    "shops.reason.inspection_overdue": ("检查逾期", "inspection overdue"),
    "shops.reason.never_inspected": ("一年内未检查", "not inspected within a year"),
    "shops.devices": ("设备实时状态", "Devices, live"),
    "shops.alarms": ("事件（告警）", "Incidents (alarms)"),
    "shops.nights": ("夜间有人记录", "Nights with presence"),
    "shops.night": ("夜晚", "Night"),
    "shops.span": ("时段", "From – to"),
    "shops.readings": ("有人读数", "Readings with motion"),
    "shops.sustained": ("持续", "Sustained"),
    "shops.smoke": ("同时烟感", "Smoke at the time"),
    "shops.registration": ("登记信息", "Registration"),
    "shops.notes": ("备注", "Notes"),
    "shops.save": ("保存", "Save"),
    "shops.saved": ("已保存。", "Saved."),
    "shops.new_inspection": ("新建检查任务", "New inspection"),
    "shops.planned_date": ("计划日期", "Planned date"),
    "shops.inspector": ("检查人", "Inspector"),
    "shops.unassigned": ("未指派", "unassigned"),
    "shops.create": ("创建", "Create"),
    "shops.status": ("状态", "Status"),
    "shops.st.planned": ("待检查", "planned"),
    "shops.st.done": ("已完成", "done"),
    "shops.st.overdue": ("逾期", "overdue"),
    "shops.st.open": ("未完成", "open"),
    "shops.result": ("结果", "Result"),
    "shops.res.pass": ("合格", "pass"),
    "shops.res.rectify": ("限期整改", "rectify"),
    "shops.res.fail": ("不合格", "fail"),
    "shops.findings": ("发现问题", "Findings"),
    "shops.rectify_by": ("整改期限", "Rectify by"),
    "shops.record": ("记录结果", "Record result"),
    "shops.rectified": ("整改完成", "Rectified"),
    "shops.record_rectification": ("记录整改完成", "Record rectification"),
    "shops.assign": ("指派", "Assign"),
    "shops.reason": ("来源", "Source"),
    "shops.src.manual": ("人工", "manual"),
    "shops.src.alarm": ("三合一告警", "live-in alarm"),
    "shops.by": ("记录人", "By"),
    "shops.none": ("没有记录。", "None."),
    "shops.shop": ("场所", "Shop"),
    "shops.all": ("全部", "All"),
    "shops.apply": ("查询", "Apply"),
    "shops.reset": ("重置", "Reset"),
    "shops.fix": ("请修改：{fields}", "Please correct: {fields}"),
    "shops.done": ("已完成：{what}", "Done: {what}"),
    "shops.night_rule": ("夜间 {start}–{end} 连续 {sustain} 分钟有人，且未登记商住 → 三合一嫌疑告警",
                         "Presence at night {start}–{end} for {sustain} min in a shop not registered as a residence → live-in alarm"),
    "shops.value": ("值", "Value"),
    "shops.condition": ("状态", "Condition"),
    "shops.seen": ("最近上报", "Last report"),
})


# --- who may use the pages ---------------------------------------------------------------------

def _page_reader(user: PageUser) -> User:
    if not any(user.role in nav.LEVEL_ROLES[level] for level in LEVELS):
        raise HTTPException(status_code=403, detail=f"无权限 (the shop pages are not for role {user.role})")
    return ensure_can(user, iam.ALARM_READ)


def _api_reader(user: ApiUser) -> User:
    return ensure_can(user, iam.ALARM_READ)


PageReader = Annotated[User, Depends(_page_reader)]
ApiReader = Annotated[User, Depends(_api_reader)]


def _forbid(allowed: bool, what: str) -> None:
    if not allowed:
        raise HTTPException(status_code=403, detail=f"无权限 (not allowed: {what})")


def _inspection_or_404(session: Session, inspection_id: int) -> Inspection:
    return found(service.get_inspection(session=session, inspection_id=inspection_id), "检查任务", inspection_id)


# --- filters -----------------------------------------------------------------------------------

def _bad(field: str, message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=f"{field}: {message}")


def _filters(q: Mapping[str, str]) -> LedgerFilters:
    f = LedgerFilters()
    committee = (q.get("committee") or "").strip()
    if committee:
        if not committee.isdigit() or not 1 <= int(committee) <= MAX_ID:
            raise _bad("committee", "应为居委编号（a committee id）")
        f.committee_id = int(committee)
    level = (q.get("level") or "").strip()
    if level:
        if level not in RISK_LEVELS:
            raise _bad("level", f"应为 {', '.join(RISK_LEVELS)} 之一（one of these）")
        f.level = level
    registered = (q.get("registered") or "").strip()
    if registered:
        if registered not in ("yes", "no"):
            raise _bad("registered", "应为 yes 或 no（yes or no）")
        f.registered = registered == "yes"
    rect = (q.get("rectification") or "").strip()
    if rect:
        if rect not in RECTIFICATION:
            raise _bad("rectification", f"应为 {', '.join(RECTIFICATION)} 之一（one of these）")
        f.rectification = rect
    text = (q.get("q") or "").strip()
    if text:
        if len(text) > 60 or "\x00" in text:
            raise _bad("q", "最多 60 个字符（at most 60 characters）")
        f.q = text
    return f


def _page_no(raw: str | None) -> int:
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise _bad("page", "应为正整数（a positive whole number）")
    return int(raw)


# --- outputs -----------------------------------------------------------------------------------

def _shop_out(r: Risk, lang: str) -> ShopOut:
    return ShopOut(
        place_id=r.place.id, name=r.place.name, address=r.place.address_text or "",
        committee_id=r.place.committee_id, industry=str((r.place.attrs or {}).get("industry") or ""),
        registered_residence=r.registered, base_level=r.base_level, incidents=r.incidents,
        last_inspection=r.last_done.planned_date if r.last_done else None,
        last_result=r.last_done.result if r.last_done else None, rectification=r.rectification,
        open_inspection_id=r.open_task.id if r.open_task else None, score=r.score, level=r.level,
        reasons=[ReasonOut(key=k, points=p, label=i18n.t(f"shops.reason.{k}", lang)) for k, p in r.reasons])


def _inspection_out(ins: Inspection, shops: Mapping[int, str], users: Mapping[int, str]) -> InspectionOut:
    on = service.today()
    return InspectionOut(
        id=ins.id, place_id=ins.place_id, shop=shops.get(ins.place_id or 0, ""), planned_date=ins.planned_date,
        inspector_id=ins.inspector_id, inspector=users.get(ins.inspector_id or 0, ""), status=ins.status,
        overdue=service.is_overdue(ins, on), reason=ins.reason, alarm_id=ins.alarm_id, result=ins.result,
        findings=ins.findings, done_at=ins.done_at, done_by=ins.done_by, rectify_by=ins.rectify_by,
        rectified_at=ins.rectified_at, rectified_by=ins.rectified_by,
        rectification=service.rectification(ins, on))


def _one_out(session: Session, ins: Inspection) -> InspectionOut:
    shops, users = service.names(session=session, place_ids={ins.place_id or 0},
                                 user_ids={ins.inspector_id} if ins.inspector_id else set())
    return _inspection_out(ins, shops, users)


# --- pages -------------------------------------------------------------------------------------

def _committees(session: Session) -> list[Place]:
    return list(session.scalars(select(Place).where(Place.kind == "committee").order_by(Place.name)))


@pages.get("/shops")
def ledger_page(request: Request, session: SessionDep, user: PageReader) -> Response:
    q = request.query_params
    filters = _filters(q)
    page_no = _page_no(q.get("page"))
    rows = service.ledger(session=session, filters=filters)
    page = Page(rows[(page_no - 1) * PAGE_SIZE:page_no * PAGE_SIZE], len(rows), page_no, PAGE_SIZE)
    committees = _committees(session)
    counts = {level: sum(1 for r in rows if r.level == level) for level in RISK_LEVELS}
    kept = [(k, v) for k, v in q.multi_items() if k != "page"]

    def href(n: int) -> str:
        from urllib.parse import urlencode

        return "/shops?" + urlencode([*kept, ("page", str(n))])

    return render(request, "s05_shops/ledger.html", page=page, committees=committees,
                  committee_names={c.id: c.name for c in committees}, f=dict(q), counts=counts,
                  prev_href=href(page_no - 1), next_href=href(page_no + 1), levels=RISK_LEVELS,
                  rectifications=RECTIFICATION, cfg=service.settings_of(session=session))


def _shop_page(request: Request, session: Session, user: User, place_id: int, *, status_code: int = 200,
               errors: Mapping[str, str] | None = None, values: Mapping[str, str] | None = None,
               message: str = "") -> Response:
    detail = service.shop_detail(session=session, place_id=place_id)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"商铺 {place_id} 不存在 (not found)")
    return render(request, "s05_shops/shop.html", status_code=status_code, **detail, errors=errors or {},
                  v=values or {}, message=message, today=service.today().isoformat(),
                  inspectors=service.inspectors(session=session), user_names=_user_names(session, detail),
                  may_plan=service.may_plan(user), may_record=service.may_record(user),
                  may_register=service.may_register(user), severity_class=SEVERITY_CLASS,
                  results=RESULTS, levels=RISK_LEVELS, on=service.today(),
                  local_ms=lambda ms: service.local(ms).strftime("%m-%d %H:%M"))


def _user_names(session: Session, detail: Mapping[str, Any]) -> dict[int, str]:
    ids = {i.inspector_id for i in detail["inspections"] if i.inspector_id}
    return service.names(session=session, place_ids=set(), user_ids=ids)[1]


@pages.get("/shops/{shop_id:int}")
def shop_page(request: Request, shop_id: ShopId, session: SessionDep, user: PageReader) -> Response:
    done = request.query_params.get("done", "")
    message = i18n.t("shops.done", lang_of(request), what=i18n.t(f"shops.{done}", lang_of(request))) \
        if done in ("saved", "create", "record", "record_rectification", "assign") else ""
    return _shop_page(request, session, user, shop_id, message=message)


def _form(form: Mapping[str, Any], *names: str) -> dict[str, str]:
    return {n: str(form.get(n) or "").strip()[:1000] for n in names}


def _errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in exc.errors():
        out[".".join(str(p) for p in e.get("loc", ())) or "request"] = str(e.get("msg", ""))
    return out


def _fail(request: Request, session: Session, user: User, back: str, errors: Mapping[str, str],
          values: Mapping[str, str]) -> Response:
    """The page the form came from, again, with the refused fields named (422)."""
    message = i18n.t("shops.fix", lang_of(request), fields="; ".join(f"{k}: {v}" for k, v in errors.items()))
    if back.startswith("/shops/") and back[7:].split("?")[0].isdigit():
        return _shop_page(request, session, user, int(back[7:].split("?")[0]), status_code=422, errors=errors,
                          values=values, message=message)
    return _inspections_page(request, session, user, status_code=422, errors=errors, values=values,
                             message=message)


def _next(raw: Any, default: str) -> str:
    value = str(raw or "")
    return value if value.startswith("/shops") and "//" not in value and "\\" not in value else default


def _done(back: str, what: str) -> RedirectResponse:
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}done={what}", status_code=303)


@pages.post("/shops/{shop_id:int}/registration")
async def registration_post(request: Request, shop_id: ShopId, session: SessionDep, user: PageReader) -> Response:
    if session.scalar(select(Place.id).where(Place.id == shop_id, Place.kind == "shop")) is None:
        raise HTTPException(status_code=404, detail=f"商铺 {shop_id} 不存在 (not found)")
    _forbid(service.may_register(user), "shop registry")
    form = await request.form()
    values = _form(form, "registered_residence", "risk_level", "notes")
    back = f"/shops/{shop_id}"
    try:
        body = RegistrationIn.model_validate({"registered_residence": values["registered_residence"] in ("1", "on", "true", "yes"),
                                              "risk_level": values["risk_level"] or "low", "notes": values["notes"]})
        with session.begin_nested():
            service.update_registration(session=session, place_id=shop_id, actor=user.username, **body.model_dump())
    except ValidationError as exc:
        return _fail(request, session, user, back, _errors(exc), values)
    except ShopError as exc:
        return _fail(request, session, user, back, {exc.field: exc.message}, values)
    return _done(back, "saved")


def _inspections_page(request: Request, session: Session, user: User, *, status_code: int = 200,
                      errors: Mapping[str, str] | None = None, values: Mapping[str, str] | None = None,
                      message: str = "") -> Response:
    q = request.query_params
    status = (q.get("status") or "").strip() or None
    if status is not None and status not in ("open", "planned", "done", "overdue"):
        raise _bad("status", "应为 open、planned、done、overdue 之一（one of these）")
    mine = q.get("mine") in ("1", "on", "true")
    page_no = _page_no(q.get("page"))
    rows, total = service.list_inspections(session=session, status=status, page=page_no, size=PAGE_SIZE,
                                           inspector_id=user.id if mine else None)
    shops_in_scope = [(pid, name) for pid, name in session.execute(
        select(Place.id, Place.name).where(Place.kind == "shop").order_by(Place.name))]
    shop_names, users = service.names(session=session, place_ids={r.place_id for r in rows if r.place_id},
                                      user_ids={r.inspector_id for r in rows if r.inspector_id})
    return render(request, "s05_shops/inspections.html", status_code=status_code, rows=rows,
                  page=Page(rows, total, page_no, PAGE_SIZE), shop_names=shop_names, user_names=users,
                  shops=shops_in_scope, inspectors=service.inspectors(session=session), status=status or "",
                  mine=mine, errors=errors or {}, v=values or {}, message=message,
                  today=service.today().isoformat(), on=service.today(), may_plan=service.may_plan(user),
                  may_record=service.may_record(user), results=RESULTS)


@pages.get("/shops/inspections")
def inspections_page(request: Request, session: SessionDep, user: PageReader) -> Response:
    done = request.query_params.get("done", "")
    message = i18n.t("shops.done", lang_of(request), what=i18n.t(f"shops.{done}", lang_of(request))) \
        if done in ("create", "record", "record_rectification", "assign") else ""
    return _inspections_page(request, session, user, message=message)


def _optional_int(raw: str) -> int | str | None:
    return None if raw == "" else raw


@pages.post("/shops/inspections")
async def inspection_post(request: Request, session: SessionDep, user: PageReader) -> Response:
    _forbid(service.may_plan(user), "plan inspections")
    form = await request.form()
    values = _form(form, "place_id", "planned_date", "inspector_id")
    back = _next(form.get("next"), "/shops/inspections")
    try:
        body = InspectionIn.model_validate({"place_id": values["place_id"] or None,
                                            "planned_date": values["planned_date"] or None,
                                            "inspector_id": _optional_int(values["inspector_id"])})
        with session.begin_nested():
            service.create_inspection(session=session, actor=user.username, **body.model_dump())
    except ValidationError as exc:
        return _fail(request, session, user, back, _errors(exc), values)
    except ShopError as exc:
        return _fail(request, session, user, back, {exc.field: exc.message}, values)
    return _done(back, "create")


@pages.post("/shops/inspections/{inspection_id:int}/result")
async def result_post(request: Request, inspection_id: InspectionId, session: SessionDep,
                      user: PageReader) -> Response:
    ins = _inspection_or_404(session, inspection_id)
    _forbid(service.may_record(user), "record inspection results")
    form = await request.form()
    values = _form(form, "result", "findings", "rectify_by")
    back = _next(form.get("next"), "/shops/inspections")
    try:
        body = ResultIn.model_validate({"result": values["result"] or None, "findings": values["findings"],
                                        "rectify_by": values["rectify_by"] or None})
        with session.begin_nested():
            service.record_result(session=session, inspection=ins, actor=user.username, **body.model_dump())
    except ValidationError as exc:
        return _fail(request, session, user, back, _errors(exc), {**values, "inspection": str(inspection_id)})
    except ShopError as exc:
        return _fail(request, session, user, back, {exc.field: exc.message},
                     {**values, "inspection": str(inspection_id)})
    return _done(back, "record")


@pages.post("/shops/inspections/{inspection_id:int}/rectification")
async def rectification_post(request: Request, inspection_id: InspectionId, session: SessionDep,
                             user: PageReader) -> Response:
    ins = _inspection_or_404(session, inspection_id)
    _forbid(service.may_record(user), "record rectifications")
    form = await request.form()
    values = _form(form, "note")
    back = _next(form.get("next"), "/shops/inspections")
    try:
        body = RectificationIn.model_validate(values)
        with session.begin_nested():
            service.record_rectification(session=session, inspection=ins, actor=user.username, note=body.note)
    except ValidationError as exc:
        return _fail(request, session, user, back, _errors(exc), values)
    except ShopError as exc:
        return _fail(request, session, user, back, {exc.field: exc.message}, values)
    return _done(back, "record_rectification")


@pages.post("/shops/inspections/{inspection_id:int}/assign")
async def assign_post(request: Request, inspection_id: InspectionId, session: SessionDep,
                      user: PageReader) -> Response:
    ins = _inspection_or_404(session, inspection_id)
    _forbid(service.may_plan(user), "assign inspections")
    form = await request.form()
    values = _form(form, "inspector_id", "planned_date")
    back = _next(form.get("next"), "/shops/inspections")
    try:
        body = AssignIn.model_validate({"inspector_id": values["inspector_id"] or None,
                                        "planned_date": values["planned_date"] or None})
        with session.begin_nested():
            service.assign_inspection(session=session, inspection=ins, **body.model_dump())
    except ValidationError as exc:
        return _fail(request, session, user, back, _errors(exc), values)
    except ShopError as exc:
        return _fail(request, session, user, back, {exc.field: exc.message}, values)
    return _done(back, "assign")


# --- API ---------------------------------------------------------------------------------------

@api.get("", response_model=ShopPage, summary="Shops in the user's scope with their risk, highest first",
         description="level: low|medium|high; registered: yes|no; rectification: none|pending|overdue|done.")
def list_shops(request: Request, session: SessionDep, user: ApiReader,
               committee: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               level: Annotated[str | None, Query(pattern="^(low|medium|high)$")] = None,
               registered: Annotated[str | None, Query(pattern="^(yes|no)$")] = None,
               rectification: Annotated[str | None, Query(pattern="^(none|pending|overdue|done)$")] = None,
               q: Annotated[str | None, Query(max_length=60)] = None,
               page: Annotated[int, Query(ge=1, le=100_000)] = 1,
               size: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE) -> Any:
    filters = _filters({"committee": str(committee or ""), "level": level or "", "registered": registered or "",
                        "rectification": rectification or "", "q": q or ""})
    rows = service.ledger(session=session, filters=filters)
    lang = lang_of(request)
    return ShopPage(items=[_shop_out(r, lang) for r in rows[(page - 1) * size:page * size]], total=len(rows),
                    page=page, size=size)


@api.get("/inspections", response_model=InspectionPage, summary="Inspection tasks in the user's scope")
def list_inspections(session: SessionDep, user: ApiReader,
                     status: Annotated[str | None, Query(pattern="^(open|planned|done|overdue)$")] = None,
                     place_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                     inspector_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                     page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                     size: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE) -> Any:
    rows, total = service.list_inspections(session=session, status=status, place_id=place_id,
                                           inspector_id=inspector_id, page=page, size=size)
    shops, users = service.names(session=session, place_ids={r.place_id for r in rows if r.place_id},
                                 user_ids={r.inspector_id for r in rows if r.inspector_id})
    return InspectionPage(items=[_inspection_out(r, shops, users) for r in rows], total=total, page=page,
                          size=size)


@api.post("/inspections", response_model=InspectionOut, status_code=201,
          summary="Plan an inspection of a shop (case.dispatch holders and 安监所's staff)")
def create_inspection(body: InspectionIn, session: SessionDep, user: ApiReader) -> Any:
    _forbid(service.may_plan(user), "plan inspections")
    ins = service.create_inspection(session=session, actor=user.username, **body.model_dump())
    return _one_out(session, ins)


@api.post("/inspections/{inspection_id:int}/assign", response_model=InspectionOut,
          summary="Give an open inspection to an inspector")
def assign_inspection(inspection_id: InspectionId, body: AssignIn, session: SessionDep, user: ApiReader) -> Any:
    ins = _inspection_or_404(session, inspection_id)
    _forbid(service.may_plan(user), "assign inspections")
    service.assign_inspection(session=session, inspection=ins, **body.model_dump())
    return _one_out(session, ins)


@api.post("/inspections/{inspection_id:int}/result", response_model=InspectionOut,
          summary="Record an inspection's result (安监所's staff and case.handle holders)")
def record_result(inspection_id: InspectionId, body: ResultIn, session: SessionDep, user: ApiReader) -> Any:
    ins = _inspection_or_404(session, inspection_id)
    _forbid(service.may_record(user), "record inspection results")
    service.record_result(session=session, inspection=ins, actor=user.username, **body.model_dump())
    return _one_out(session, ins)


@api.post("/inspections/{inspection_id:int}/rectification", response_model=InspectionOut,
          summary="Record that the shop rectified what the inspection found")
def record_rectification(inspection_id: InspectionId, body: RectificationIn, session: SessionDep,
                         user: ApiReader) -> Any:
    ins = _inspection_or_404(session, inspection_id)
    _forbid(service.may_record(user), "record rectifications")
    service.record_rectification(session=session, inspection=ins, actor=user.username, note=body.note)
    return _one_out(session, ins)


@api.get("/{shop_id:int}", response_model=ShopOut, summary="One shop with its risk and the reasons for it")
def get_shop(request: Request, shop_id: ShopId, session: SessionDep, user: ApiReader) -> Any:
    risk = service.shop_risk(session=session, place_id=shop_id)
    if risk is None:
        raise HTTPException(status_code=404, detail=f"商铺 {shop_id} 不存在 (not found)")
    return _shop_out(risk, lang_of(request))


@api.put("/{shop_id:int}/registration", response_model=ShopOut,
         summary="Set a shop's 商住登记 (registered as a residence), base risk level and notes")
def put_registration(request: Request, shop_id: ShopId, body: RegistrationIn, session: SessionDep,
                     user: ApiReader) -> Any:
    if service.shop_risk(session=session, place_id=shop_id) is None:
        raise HTTPException(status_code=404, detail=f"商铺 {shop_id} 不存在 (not found)")
    _forbid(service.may_register(user), "shop registry")
    service.update_registration(session=session, place_id=shop_id, actor=user.username, **body.model_dump())
    risk = service.shop_risk(session=session, place_id=shop_id)
    assert risk is not None
    return _shop_out(risk, lang_of(request))


router = APIRouter()
router.include_router(pages)
router.include_router(api)
