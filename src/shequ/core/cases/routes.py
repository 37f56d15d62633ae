"""Routes of the cases package: the API (under /api/v1) and the pages.

Routes that name a case first find it through the scoped session (404 for a case out of scope,
like one that does not exist) and only then check the permission. Which actions a user may take
follows their permissions (see ``permitted``); the case's stage decides the rest
(``service.allowed_actions``). Department staff see, in lists, the cases of their department
and those their department co-handles; they handle and feed back only those.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import (
    APIRouter,
    Body,
    Depends,
    File,
    Form,
    HTTPException,
    Path,
    Query,
    Request,
    UploadFile,
)
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from shequ.config import get_settings
from shequ.core.cases import attachments as files
from shequ.core.cases import hotline, policy, service
from shequ.core.cases.models import (
    SOURCES,
    STAGES,
    Case,
    CaseAttachment,
    CaseStep,
    RoutingRule,
)
from shequ.core.cases.policy import may_attach, user_actions, user_department
from shequ.core.cases.query import PAGE_SIZE, CaseFilters, is_overdue, list_cases
from shequ.core.cases.schemas import (
    AttachmentOut,
    CaseActionIn,
    CaseClassList,
    CaseClassOut,
    CaseClassPatch,
    CaseDetail,
    CasePage,
    CaseReportIn,
    HotlineImportOut,
    RoutingRuleIn,
    RoutingRuleList,
    RoutingRuleOut,
    StepOut,
)
from shequ.core.cases.service import ACTIONS, CaseError
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.places.models import Place, PlaceKind
from shequ.core.plugins import DEPARTMENTS
from shequ.web import i18n
from shequ.web.deps import SHANGHAI, ApiUser, PageUser, SessionDep, lang_of, render, require
from shequ.web.records import MAX_ID, BadParam
from shequ.web.security import csrf_protect

api = APIRouter(tags=["cases"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="case id")]
AttachmentId = Annotated[int, Path(ge=1, le=MAX_ID, description="attachment id")]
ApiCaseReader = Annotated[User, Depends(require(iam.CASE_READ, api=True))]
ApiDispatcher = Annotated[User, Depends(require(iam.CASE_DISPATCH, api=True))]
PageCaseReader = Annotated[User, Depends(require(iam.CASE_READ, api=False))]
PageReporter = Annotated[User, Depends(require(iam.CASE_REPORT, api=False))]
PageDispatcher = Annotated[User, Depends(require(iam.CASE_DISPATCH, api=False))]

i18n.extend({
    "cases.title": ("事件工单", "Cases"),
    "cases.new": ("上报事件", "Report a case"),
    "cases.code": ("工单号", "Number"),
    "cases.case_title": ("标题", "Title"),
    "cases.class": ("类别", "Class"),
    "cases.stage": ("阶段", "Stage"),
    "cases.source": ("来源", "Source"),
    "cases.department": ("责任部门", "Department"),
    "cases.co_departments": ("联动部门", "Co-handling departments"),
    "cases.grid": ("网格", "Grid"),
    "cases.committee": ("居委会", "Committee"),
    "cases.priority": ("紧急程度", "Priority"),
    "cases.reported_at": ("上报时间", "Reported"),
    "cases.reported_from": ("上报起", "Reported from"),
    "cases.reported_to": ("上报止", "Reported to"),
    "cases.deadline": ("当前时限", "Deadline"),
    "cases.due_at": ("处置时限", "Handling deadline"),
    "cases.overdue": ("超期", "Overdue"),
    "cases.overdue_only": ("只看超期", "Overdue only"),
    "cases.suspended": ("挂账中", "Suspended"),
    "cases.supervised": ("督办", "Supervised"),
    "cases.escalation": ("升级 {level} 级", "Escalated to level {level}"),
    "cases.description": ("描述", "Description"),
    "cases.address": ("地址", "Address"),
    "cases.place": ("位置", "Place"),
    "cases.lon": ("经度", "Longitude"),
    "cases.lat": ("纬度", "Latitude"),
    "cases.reporter": ("上报人", "Reporter"),
    "cases.reporter_name": ("联系人", "Contact name"),
    "cases.reporter_phone": ("联系电话", "Contact phone"),
    "cases.dispatch_now": ("立案并派遣", "Register and dispatch at once"),
    "cases.submit": ("提交", "Submit"),
    "cases.timeline": ("处置过程", "Timeline"),
    "cases.attachments": ("附件", "Attachments"),
    "cases.upload": ("上传附件", "Upload"),
    "cases.file": ("文件（JPEG/PNG/WebP/PDF，≤10 MB）", "File (JPEG/PNG/WebP/PDF, ≤ 10 MB)"),
    "cases.note": ("说明", "Note"),
    "cases.hours": ("延期工作小时", "Extra working hours"),
    "cases.satisfaction": ("满意度（1–5）", "Satisfaction (1–5)"),
    "cases.assignee": ("指派给（用户编号）", "Assign to (user id)"),
    "cases.actions": ("操作", "Actions"),
    "cases.actor": ("操作人", "By"),
    "cases.at": ("时间", "Time"),
    "cases.none": ("无", "none"),
    "cases.auto_route": ("按规则派遣", "by the routing rules"),
    "cases.hotline": ("导入 12345 工单", "Import 12345 hotline orders"),
    "cases.hotline_file": ("12345 导出文件（XLSX/CSV）", "12345 export (XLSX/CSV)"),
    "cases.hotline_done": ("已导入 {created} 件，{skipped} 件此前已导入。",
                           "{created} imported, {skipped} imported before."),
    "cases.hotline_rejected": ("导入被拒绝，未做任何修改：", "Import rejected, nothing changed:"),
    "cases.row": ("行", "Row"),
    "cases.column": ("列", "Column"),
    "cases.value": ("值", "Value"),
    "cases.reason": ("原因", "Reason"),
    "cases.back": ("返回列表", "Back to the list"),
    "cases.on_time": ("按期", "on time"),
    "cases.late": ("超期", "late"),
    "cases.rework_count": ("返工次数", "Reworks"),
    "cases.extension_count": ("延期次数", "Extensions"),
    "cases.priority.urgent": ("紧急", "urgent"),
    "cases.priority.normal": ("一般", "normal"),
    **{f"cases.stage.{k}": v for k, v in {
        "reported": ("待受理", "reported"), "registered": ("已立案", "registered"), "void": ("作废", "void"),
        "dispatched": ("已派遣", "dispatched"), "handled": ("已处置", "handled"),
        "fed_back": ("已反馈", "fed back"), "verified": ("已核实", "verified"), "closed": ("已结案", "closed"),
        "evaluated": ("已评价", "evaluated")}.items()},
    **{f"cases.action.{k}": v for k, v in {
        "report": ("上报", "report"), "register": ("立案", "register"), "void": ("作废", "void"),
        "dispatch": ("派遣", "dispatch"), "handle": ("处置", "handle"), "feed_back": ("反馈", "feed back"),
        "verify": ("核实", "verify"), "rework": ("返工", "return for rework"), "close": ("结案", "close"),
        "evaluate": ("评价", "evaluate"), "extend": ("延期", "extend"), "suspend": ("挂账", "suspend"),
        "resume": ("恢复", "resume"), "supervise": ("督办", "supervise"), "co_handle": ("联动处置", "co-handle"),
        "assign": ("指派", "assign"), "comment": ("备注", "comment"), "escalate": ("升级", "escalate")}.items()},
    **{f"cases.source.{k}": v for k, v in {
        "alarm": ("告警", "alarm"), "resident": ("居民", "resident"), "patrol": ("巡查", "patrol"),
        "hotline": ("12345 热线", "12345 hotline"), "department": ("部门", "department"),
        "open311": ("Open311", "Open311")}.items()},
})

STAGE_STYLE = {"reported": "maintenance", "registered": "maintenance", "dispatched": "fault",
               "handled": "fault", "fed_back": "maintenance", "verified": "maintenance", "closed": "ok",
               "evaluated": "ok", "void": "offline"}


# --- who may do what -----------------------------------------------------------------------------

def _forbidden(what: str) -> HTTPException:
    return HTTPException(status_code=403, detail=f"无权限 (not allowed: {what})")


def _not_found(what: str, ident: object) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} {ident} 不存在 (not found)")


# --- the list ------------------------------------------------------------------------------------

def _when(field: str, raw: str | None, *, end: bool = False) -> dt.datetime | None:
    """An ISO 8601 date or time (without an offset: Asia/Shanghai); a bare date as ``end`` is
    the start of the next day, so that the day itself is included."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            value = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time())
        else:
            value = dt.datetime.fromisoformat(raw)
    except (ValueError, OverflowError):
        raise BadParam(field, f"应为 ISO 8601 日期或时间，收到 {raw!r}（ISO 8601 date or time）") from None
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


def _int_param(field: str, raw: str | None) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise BadParam(field, f"应为正整数，收到 {raw[:20]!r}（must be a positive integer）")
    return int(raw)


def filters_from(query: Mapping[str, str]) -> CaseFilters:
    """List filters from a query string; a bad value raises BadParam naming its parameter."""
    def text(key: str) -> str | None:
        value = (query.get(key) or "").strip()
        if "\x00" in value:
            raise BadParam(key, "不能包含 NUL 字符（must not contain a NUL character）")
        return value or None

    stage, source = text("stage"), text("source")
    if stage and stage not in STAGES:
        raise BadParam("stage", f"取值 {stage!r} 无效，可用：{', '.join(STAGES)}（invalid value）")
    if source and source not in SOURCES:
        raise BadParam("source", f"取值 {source!r} 无效，可用：{', '.join(SOURCES)}（invalid value）")
    overdue = (text("overdue") or "").lower()
    if overdue not in ("", "true", "false", "1", "0", "on", "yes", "no"):
        raise BadParam("overdue", "应为 true 或 false（true or false）")
    start = _when("reported_from", text("reported_from"))
    end = _when("reported_to", text("reported_to"), end=True)
    if start and end and start >= end:
        raise BadParam("reported_to", "应晚于 reported_from（must be after reported_from）")
    return CaseFilters(stage=stage, source=source, class_code=text("class_code"), department=text("department"),
                       grid_id=_int_param("grid_id", text("grid_id")),
                       committee_id=_int_param("committee_id", text("committee_id")),
                       overdue=overdue in ("true", "1", "on", "yes"), q=text("q"),
                       reported_from=start, reported_to=end)


# --- shaping the answers -------------------------------------------------------------------------

def case_item(case: Case, names: Mapping[str, str]) -> dict[str, Any]:
    return {"id": case.id, "code": case.code, "title": case.title, "stage": case.stage, "source": case.source,
            "source_ref": case.source_ref, "class_code": case.class_code,
            "class_name": names.get(case.class_code, case.class_code), "priority": case.priority,
            "department": case.department, "co_departments": list(case.co_departments or []),
            "place_id": case.place_id, "grid_id": case.grid_id, "committee_id": case.committee_id,
            "address_text": case.address_text or "", "lon": case.lon, "lat": case.lat,
            "reported_at": case.reported_at, "due_at": case.due_at, "stage_due_at": case.stage_due_at,
            "overdue": is_overdue(case), "escalation_level": case.escalation_level,
            "supervised": bool(case.supervised), "suspended": case.suspended_at is not None}


def _step_out(step: CaseStep) -> dict[str, Any]:
    return StepOut(id=step.id, at=step.at, actor=step.actor, action=step.action, from_stage=step.from_stage,
                   to_stage=step.to_stage, department=step.department, note=step.note or "",
                   data=dict(step.data or {})).model_dump()


def _attachment_out(a: CaseAttachment) -> dict[str, Any]:
    return AttachmentOut(id=a.id, name=a.name, content_type=a.content_type, size=a.size, sha256=a.sha256,
                         uploaded_by=a.uploaded_by, uploaded_at=a.uploaded_at, step_id=a.step_id,
                         url=f"/api/v1/cases/{a.case_id}/attachments/{a.id}").model_dump()


def case_detail(*, session: Session, case: Case, user: User, lang: str) -> dict[str, Any]:
    """A case with its timeline, attachments and the actions the user may take (phone masked)."""
    out = case_item(case, service.class_names(session=session, lang=lang))
    out.update({
        "description": case.description or "", "reporter_name": case.reporter_name,
        "reporter_phone_mask": case.reporter_phone_mask or "", "reporter_user_id": case.reporter_user_id,
        "assignee_id": case.assignee_id, "alarm_id": case.alarm_id,
        **{k: getattr(case, k) for k in ("registered_at", "dispatched_at", "handled_at", "fed_back_at",
                                         "verified_at", "closed_at", "evaluated_at", "voided_at", "suspended_at",
                                         "overdue_at", "handled_on_time", "closed_on_time", "satisfaction",
                                         "satisfaction_note")},
        "suspended_minutes": case.suspended_minutes or 0, "rework_count": case.rework_count or 0,
        "extension_count": case.extension_count or 0,
        "attrs": {k: v for k, v in (case.attrs or {}).items() if k not in ("remaining_hours", "due_remaining_hours")},
        "timeline": [_step_out(s) for s in service.timeline(session=session, case_id=case.id)],
        "attachments": [_attachment_out(a) for a in files.list_attachments(session=session, case_id=case.id)],
        "allowed_actions": user_actions(user, case),
    })
    return out


# --- reporting -----------------------------------------------------------------------------------

def report_case(*, session: Session, user: User, body: CaseReportIn) -> Case:
    try:
        return policy.report_case(session=session, user=user, body=body)
    except policy.CaseForbidden as exc:
        raise _forbidden(exc.what) from None


def take_action(*, session: Session, user: User, case: Case, action: str, body: CaseActionIn) -> Case:
    try:
        return policy.take_action(session=session, user=user, case=case, action=action, body=body)
    except policy.CaseForbidden as exc:
        raise _forbidden(exc.what) from None


def attach(*, session: Session, user: User, case: Case, name: str, data: bytes, note: str = "") -> CaseAttachment:
    try:
        return policy.attach(session=session, user=user, case=case, name=name, data=data, note=note)
    except policy.CaseForbidden as exc:
        raise _forbidden(exc.what) from None


# --- API -----------------------------------------------------------------------------------------

def _api_case(case_id: CaseId, session: SessionDep, user: ApiUser) -> Case:
    case = service.get_case(session=session, case_id=case_id)
    if case is None:
        raise _not_found("工单", case_id)
    return case


def _page_case(case_id: CaseId, session: SessionDep, user: PageUser) -> Case:
    case = service.get_case(session=session, case_id=case_id)
    if case is None:
        raise _not_found("工单", case_id)
    return case


ApiCase = Annotated[Case, Depends(_api_case)]
PageCase = Annotated[Case, Depends(_page_case)]


def _page_size(size: int) -> int:
    limit = get_settings().page_size_max
    if size > limit:
        raise BadParam("size", f"每页最多 {limit} 条（at most {limit}）")
    return size


@api.get("/cases", response_model=CasePage, summary="Cases in the user's scope, newest first",
         description="Filters: stage, source, class_code (prefix), department (main or co-handling), grid_id, "
                     "committee_id, overdue=true (open, not suspended, past the stage's deadline), q (title, "
                     "number, address, description), reported_from / reported_to (ISO 8601 date or time; "
                     "without an offset Asia/Shanghai; a bare date as reported_to includes that day). "
                     "Department staff see their department's and co-handled cases only.")
def list_cases_api(request: Request, session: SessionDep, user: ApiCaseReader,
                   stage: Annotated[str | None, Query(max_length=12)] = None,
                   source: Annotated[str | None, Query(max_length=12)] = None,
                   class_code: Annotated[str | None, Query(max_length=20)] = None,
                   department: Annotated[str | None, Query(max_length=40)] = None,
                   grid_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                   committee_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                   overdue: bool = False,
                   q: Annotated[str | None, Query(max_length=100)] = None,
                   reported_from: Annotated[str | None, Query(max_length=40)] = None,
                   reported_to: Annotated[str | None, Query(max_length=40)] = None,
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                   size: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE) -> Any:
    filters = filters_from(request.query_params)
    found = list_cases(session=session, filters=filters, department=user_department(user), page=page,
                       size=_page_size(size))
    names = service.class_names(session=session, lang=lang_of(request))
    return {"items": [case_item(c, names) for c in found.items], "total": found.total, "page": found.page,
            "size": found.size}


@api.post("/cases", response_model=CaseDetail, status_code=201,
          summary="Report a case (place_id, or lon/lat located to grid, committee and compound)",
          description="The source follows the role (grid and committee staff: patrol; department staff: "
                      "department; residents: resident) unless a dispatcher gives one; dispatch=true "
                      "(dispatchers) registers and dispatches at once. The reporter's phone is checked.")
def report_case_api(request: Request, body: CaseReportIn, session: SessionDep, user: ApiUser) -> Any:
    if not iam.can(user, iam.CASE_REPORT):
        raise _forbidden(iam.CASE_REPORT)
    case = report_case(session=session, user=user, body=body)
    return case_detail(session=session, case=case, user=user, lang=lang_of(request))


@api.get("/cases/{case_id:int}", response_model=CaseDetail,
         summary="One case: timeline, attachments and the actions you may take (reporter phone masked)")
def get_case_api(request: Request, case: ApiCase, session: SessionDep, user: ApiUser) -> Any:
    if not iam.can(user, iam.CASE_READ):
        raise _forbidden(iam.CASE_READ)
    return case_detail(session=session, case=case, user=user, lang=lang_of(request))


@api.post("/cases/{case_id:int}/actions/{action}", response_model=CaseDetail,
          summary="Take an action on a case (register, dispatch, handle, feed_back, verify, close, evaluate, …)",
          description="Body fields by action: dispatch {department?, departments?, assignee_id?}; co_handle "
                      "{departments}; extend {hours, note}; suspend {note}; evaluate {satisfaction, note?}; "
                      "assign {assignee_id}; comment {note}. 422 names the field when the stage or a value "
                      "does not allow it; 403 when your permissions do not.")
def act_api(request: Request, case: ApiCase, session: SessionDep, user: ApiUser,
            action: Annotated[str, Path(max_length=20, description=", ".join(ACTIONS))],
            body: Annotated[CaseActionIn | None, Body()] = None) -> Any:
    take_action(session=session, user=user, case=case, action=action, body=body or CaseActionIn())
    return case_detail(session=session, case=case, user=user, lang=lang_of(request))


@api.post("/cases/{case_id:int}/attachments", response_model=AttachmentOut, status_code=201,
          summary="Attach a photo (JPEG/PNG/WebP) or PDF of at most 10 MB; the bytes decide the type")
async def attach_api(case: ApiCase, session: SessionDep, user: ApiUser,
                     file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or PDF, ≤ 10 MB")],
                     note: Annotated[str, Form(max_length=2000)] = "") -> Any:
    data = await file.read(files.MAX_BYTES + 1)
    row = attach(session=session, user=user, case=case, name=file.filename or "file", data=data, note=note)
    return _attachment_out(row)


def _download(session: Session, case: Case, attachment_id: int, user: User) -> Response:
    row = files.get_attachment(session=session, case_id=case.id, attachment_id=attachment_id)
    if row is None:
        raise _not_found("附件", attachment_id)
    if not iam.can(user, iam.CASE_READ):
        raise _forbidden(iam.CASE_READ)
    data = files.read_attachment(row)
    if data is None:
        raise _not_found("附件文件", attachment_id)
    disposition = "inline" if row.content_type.startswith("image/") else "attachment"
    ascii_name = row.name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return Response(data, media_type=row.content_type, headers={
        "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(row.name)}"})


@api.get("/cases/{case_id:int}/attachments/{attachment_id:int}", summary="Download an attachment",
         responses={200: {"content": {t: {} for t in files.ALLOWED}}})
def download_api(case: ApiCase, attachment_id: AttachmentId, session: SessionDep, user: ApiUser) -> Response:
    return _download(session, case, attachment_id, user)


@api.get("/case-classes", response_model=CaseClassList,
         summary="The case classes (for report forms): who handles each and in how many working hours")
def case_classes_api(session: SessionDep, user: ApiUser) -> Any:
    if not (iam.can(user, iam.CASE_READ) or iam.can(user, iam.CASE_REPORT)):
        raise _forbidden(iam.CASE_READ)
    public_only = not iam.can(user, iam.CASE_READ)
    return {"items": [CaseClassOut.model_validate(k, from_attributes=True).model_dump()
                      for k in service.list_classes(session=session, public_only=public_only)]}


# --- routing rules and the class catalog (who gets which case) ----------------------------------

RoutingRuleId = Annotated[int, Path(ge=1, le=MAX_ID, description="routing rule id")]


def _routing_out(rule: RoutingRule) -> dict[str, Any]:
    return RoutingRuleOut.model_validate(rule, from_attributes=True).model_dump()


@api.get("/routing-rules", response_model=RoutingRuleList,
         summary="Routing rules: which department gets which cases (before the class's own department)")
def routing_rules_api(session: SessionDep, user: ApiCaseReader) -> Any:
    return {"items": [_routing_out(r) for r in service.list_routing_rules(session=session)]}


@api.post("/routing-rules", response_model=RoutingRuleOut, status_code=201, summary="Add a routing rule")
def add_routing_rule_api(body: RoutingRuleIn, session: SessionDep, user: ApiDispatcher) -> Any:
    rule = service.save_routing_rule(session=session, **body.model_dump())
    return _routing_out(rule)


@api.delete("/routing-rules/{routing_rule_id:int}", status_code=204, summary="Remove a routing rule")
def delete_routing_rule_api(routing_rule_id: RoutingRuleId, session: SessionDep, user: ApiDispatcher) -> Response:
    rule = session.scalar(select(RoutingRule).where(RoutingRule.id == routing_rule_id))
    if rule is None:
        raise _not_found("分派规则", routing_rule_id)
    service.delete_routing_rule(session=session, rule=rule)
    return Response(status_code=204)


@api.patch("/case-classes/{class_code}", response_model=CaseClassOut,
           summary="Change a class's department, working hours, publication (the tenant's catalog)")
def patch_case_class_api(class_code: Annotated[str, Path(max_length=20)], body: CaseClassPatch,
                         session: SessionDep, user: ApiDispatcher) -> Any:
    klass = service.get_class(session=session, code=class_code)
    if klass is None:
        raise _not_found("案件分类", class_code)
    service.update_class(session=session, klass=klass, **body.model_dump(exclude_none=True))
    return CaseClassOut.model_validate(klass, from_attributes=True).model_dump()


def _hotline_answer(result: hotline.HotlineImport) -> dict[str, Any]:
    return {"rows": result.rows, "created": len(result.created), "already_imported": result.already_imported,
            "cases": [{"row": row.row, "order_no": row.order_no, "case_id": case.id, "code": case.code,
                       "class_code": case.class_code, "department": dept, "place_id": case.place_id}
                      for row, case, dept in result.created]}


def _rejected(rejected: hotline.HotlineRejected) -> list[dict[str, Any]]:
    return [{"row": e.row, "column": e.column, "value": e.value, "reason": e.reason} for e in rejected.errors]


@api.post("/cases/import/hotline", response_model=HotlineImportOut,
          summary="Import a 12345 hotline export (XLSX or CSV): one registered case per new order",
          description="Columns: 工单编号, 来电时间, 诉求类别, 诉求内容, 地址, 联系人, 联系电话, 办理时限 (optional). "
                      "Any bad row rejects the whole file (422 with errors naming row and column) and nothing "
                      "changes; an order number imported before is reported in already_imported.",
          responses={422: {"description": "rejected: {errors: [{row, column, value, reason}]}"}})
async def hotline_api(session: SessionDep, user: ApiDispatcher,
                      file: Annotated[UploadFile, File(description="XLSX or CSV")]) -> Any:
    data = await file.read(files.MAX_BYTES + 1)
    if len(data) > files.MAX_BYTES:
        raise BadParam("file", "文件超过 10 MB（larger than 10 MB）")
    try:
        result = hotline.import_hotline(session=session, filename=file.filename or "upload", data=data,
                                        actor=user.username)
    except hotline.HotlineRejected as rejected:
        errors = _rejected(rejected)
        return JSONResponse({"detail": f"导入被拒绝，未做任何修改：{len(errors)} 处错误 (import rejected, nothing "
                                       f"changed)", "errors": errors}, status_code=422)
    return _hotline_answer(result)


# --- pages ---------------------------------------------------------------------------------------

def _qs(request: Request, **change: Any) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in change and v != ""]
    items += [(k, str(v)) for k, v in change.items() if v not in (None, "")]
    return urlencode(items)


def _areas(session: Session) -> tuple[list[Place], list[Place]]:
    rows = list(session.scalars(select(Place).where(Place.kind.in_([PlaceKind.GRID, PlaceKind.COMMITTEE]))
                                .order_by(Place.code)))
    return [p for p in rows if p.kind == PlaceKind.GRID], [p for p in rows if p.kind == PlaceKind.COMMITTEE]


def _list_context(request: Request, session: Session, user: User, page: int) -> dict[str, Any]:
    lang = lang_of(request)
    error = ""
    try:
        filters = filters_from(request.query_params)
    except BadParam as exc:
        error, filters = str(exc), CaseFilters()
    found = list_cases(session=session, filters=filters, department=user_department(user), page=page)
    names = service.class_names(session=session, lang=lang)
    grids, committees = _areas(session)
    f = {k: (request.query_params.get(k) or "") for k in (
        "stage", "source", "class_code", "department", "grid_id", "committee_id", "overdue", "q",
        "reported_from", "reported_to")}
    return {"page": found, "rows": [case_item(c, names) for c in found.items], "error": error, "f": f,
            "stages": STAGES, "sources": SOURCES, "departments": DEPARTMENTS,
            "classes": sorted(names.items()), "grids": grids, "committees": committees,
            "qs": lambda **kw: _qs(request, **kw), "my_department": user_department(user),
            "may_report": iam.can(user, iam.CASE_REPORT), "may_import": iam.can(user, iam.CASE_DISPATCH),
            "stage_style": STAGE_STYLE}


@pages.get("/cases")
def list_page(request: Request, session: SessionDep, user: PageCaseReader,
              page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    context = _list_context(request, session, user, page)
    partial = request.headers.get("hx-request") and not request.headers.get("hx-history-restore-request")
    response = render(request, "cases/_list.html" if partial else "cases/list.html", **context)
    response.headers["Vary"] = "HX-Request"
    return response


@pages.post("/cases/import/hotline")
async def hotline_page(request: Request, session: SessionDep, user: PageDispatcher,
                       file: Annotated[UploadFile | None, File()] = None) -> Response:
    data = await file.read(files.MAX_BYTES + 1) if file is not None else b""
    problem = ("请选择文件（choose a file）" if not data else
               "文件超过 10 MB（larger than 10 MB）" if len(data) > files.MAX_BYTES else "")
    errors = [{"row": 0, "column": "file", "value": "", "reason": problem}] if problem else []
    done = None
    if not errors:
        filename = (file.filename if file is not None else None) or "upload"
        try:
            done = _hotline_answer(hotline.import_hotline(session=session, filename=filename, data=data,
                                                          actor=user.username))
        except hotline.HotlineRejected as rejected:
            errors = _rejected(rejected)
    context = _list_context(request, session, user, 1)
    return render(request, "cases/list.html", status_code=422 if errors else 200, **context,
                  hotline_errors=errors, hotline_done=done)


def _new_context(request: Request, session: Session, user: User, form: Mapping[str, Any] | None = None,
                 error: str = "") -> dict[str, Any]:
    from shequ.core.places.routes import picker_levels

    lang = lang_of(request)
    values = {k: str((form or {}).get(k) or "") for k in (
        "title", "class_code", "description", "place", "lon", "lat", "address_text", "priority",
        "reporter_name", "reporter_phone", "source", "dispatch")}
    public_only = not iam.can(user, iam.CASE_READ)
    classes = [(k.code, k.name if lang.startswith("zh") or not k.name_en else k.name_en, k.major)
               for k in service.list_classes(session=session, public_only=public_only)]
    place_id = int(values["place"]) if values["place"].isdigit() and int(values["place"]) <= MAX_ID else None
    picker = iam.can(user, iam.READ)
    return {"v": values, "classes": classes, "error": error, "may_dispatch": iam.can(user, iam.CASE_DISPATCH),
            "sources": ("patrol", "resident", "hotline", "department"), "picker": picker,
            "levels": picker_levels(session=session, place_id=place_id, lang=lang) if picker else [],
            "place_id": place_id or ""}


@pages.get("/cases/new")
def new_page(request: Request, session: SessionDep, user: PageReporter) -> Response:
    return render(request, "cases/new.html", **_new_context(request, session, user))


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ())) or "request"
        parts.append(f"{where}: {e.get('msg', '')}")
    return "; ".join(parts)


@pages.post("/cases/new")
async def new_post(request: Request, session: SessionDep, user: PageReporter) -> Response:
    form = await request.form()
    raw = {k: form.get(k) for k in form if k != "csrf_token"}

    def val(key: str) -> str | None:
        value = raw.get(key)
        return value.strip() if isinstance(value, str) and value.strip() else None

    place = val("place") or val("place_id")
    data: dict[str, Any] = {
        "title": val("title") or "", "class_code": val("class_code") or "", "description": val("description") or "",
        "place_id": place, "lon": val("lon"), "lat": val("lat"), "address_text": val("address_text") or "",
        "priority": val("priority") or "normal", "reporter_name": val("reporter_name"),
        "reporter_phone": val("reporter_phone"), "source": val("source"),
        "dispatch": val("dispatch") in ("1", "on", "true"),
    }
    if data["source"] == policy.default_source(user):
        data["source"] = None
    try:
        body = CaseReportIn.model_validate(data)
        case = report_case(session=session, user=user, body=body)
    except ValidationError as exc:
        return render(request, "cases/new.html", status_code=422,
                      **_new_context(request, session, user, raw, _validation_message(exc)))
    except CaseError as exc:
        return render(request, "cases/new.html", status_code=422,
                      **_new_context(request, session, user, raw, str(exc)))
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


def _detail_context(request: Request, session: Session, user: User, case: Case, error: str = "") -> dict[str, Any]:
    lang = lang_of(request)
    detail = case_detail(session=session, case=case, user=user, lang=lang)
    place = session.scalar(select(Place).where(Place.id == case.place_id)) if case.place_id else None
    return {"case": detail, "place": place, "error": error, "departments": DEPARTMENTS,
            "may_attach": may_attach(user, case), "stage_style": STAGE_STYLE}


@pages.get("/cases/{case_id:int}")
def detail_page(request: Request, case: PageCase, session: SessionDep, user: PageUser) -> Response:
    if not iam.can(user, iam.CASE_READ):
        raise _forbidden(iam.CASE_READ)
    return render(request, "cases/detail.html", **_detail_context(request, session, user, case))


def _form_number(form: Mapping[str, Any], key: str, kind: type) -> Any:
    raw = form.get(key)
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        return kind(raw.strip())
    except ValueError:
        raise CaseError(key, f"应为数字，收到 {raw.strip()[:20]!r}（must be a number）") from None


@pages.post("/cases/{case_id:int}/actions/{action}")
async def action_page(request: Request, case: PageCase, session: SessionDep, user: PageUser,
                      action: Annotated[str, Path(max_length=20)]) -> Response:
    form = await request.form()
    try:
        departments = [d for d in form.getlist("departments") if isinstance(d, str) and d]
        body = CaseActionIn.model_validate({
            "note": str(form.get("note") or ""), "department": (str(form.get("department") or "") or None),
            "departments": departments, "hours": _form_number(form, "hours", float),
            "satisfaction": _form_number(form, "satisfaction", int),
            "assignee_id": _form_number(form, "assignee_id", int)})
        take_action(session=session, user=user, case=case, action=action, body=body)
    except ValidationError as exc:
        return render(request, "cases/detail.html", status_code=422,
                      **_detail_context(request, session, user, case, _validation_message(exc)))
    except CaseError as exc:
        return render(request, "cases/detail.html", status_code=422,
                      **_detail_context(request, session, user, case, str(exc)))
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


@pages.post("/cases/{case_id:int}/attachments")
async def attach_page(request: Request, case: PageCase, session: SessionDep, user: PageUser,
                      file: Annotated[UploadFile | None, File()] = None,
                      note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    data = await file.read(files.MAX_BYTES + 1) if file is not None else b""
    try:
        attach(session=session, user=user, case=case, name=(file.filename if file else None) or "file", data=data,
               note=note)
    except CaseError as exc:
        return render(request, "cases/detail.html", status_code=422,
                      **_detail_context(request, session, user, case, str(exc)))
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


@pages.get("/cases/{case_id:int}/attachments/{attachment_id:int}")
def download_page(case: PageCase, attachment_id: AttachmentId, session: SessionDep, user: PageUser) -> Response:
    return _download(session, case, attachment_id, user)

