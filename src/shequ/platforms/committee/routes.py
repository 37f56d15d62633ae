"""Pages of 居委微平台, mobile first: today's to-dos (``/committee``), the ledgers
(``/committee/ledgers/special|houses|shops`` and their XLSX export), residents' requests
(``/committee/requests``), notices (``/committee/notices``) and the shared notice reader
(``/notices/{id}``, for every signed-in user, linked from notifications).

A committee user works in their own committee(s); a whole-tenant role picks one with
``?committee=``. Everything is read through the request's scoped session: another area's
committee, case or notice answers 404 like a missing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from shequ.core.alarms.models import ACTIVE_UNACK
from shequ.core.cases import policy
from shequ.core.cases import service as cases
from shequ.core.cases.models import Case
from shequ.core.cases.query import is_overdue
from shequ.core.cases.schemas import CaseActionIn
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.notify import notices
from shequ.core.places.models import Place
from shequ.core.registry import visits
from shequ.core.registry.exporter import export_xlsx
from shequ.platforms.committee import service
from shequ.platforms.committee.service import LEDGERS, Ledger
from shequ.web import i18n
from shequ.web.deps import PageUser, SessionDep, ensure_can, lang_of, render, require
from shequ.web.records import MAX_ID, PLURALS
from shequ.web.security import csrf_protect

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PageCaseReader = Annotated[User, Depends(require(iam.CASE_READ, api=False))]
CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="case id")]
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID, description="notice id")]
PageNo = Annotated[int, Query(ge=1, le=100_000)]

i18n.extend({
    "committee.title": ("居委微平台", "Committee"),
    "committee.todos": ("今日待办", "Today's to-dos"),
    "committee.todo_total": ("待办 {n}", "To do: {n}"),
    "committee.pick": ("居委", "Committee"),
    "committee.go": ("切换", "Switch"),
    "committee.none": ("您的管辖范围内没有居委。", "There is no committee in your areas."),
    "committee.tab.todos": ("待办", "To-dos"),
    "committee.tab.ledgers": ("台账", "Ledgers"),
    "committee.tab.requests": ("居民诉求", "Requests"),
    "committee.tab.notices": ("通知", "Notices"),
    "committee.cases": ("待处理工单", "Cases waiting for us"),
    "committee.alarms": ("未清除告警", "Active alarms"),
    "committee.visits": ("应走访", "Visits due"),
    "committee.n_cases": ("工单", "cases"),
    "committee.n_alarms": ("告警", "alarms"),
    "committee.n_visits": ("走访", "visits"),
    "committee.no_cases": ("没有等待本居委处理的工单。", "No case waits for us."),
    "committee.no_alarms": ("没有未清除的告警。", "No active alarm."),
    "committee.no_visits": ("没有到期的走访。", "No visit is due."),
    "committee.deadline": ("时限 {at}", "due {at}"),
    "committee.overdue": ("超期", "overdue"),
    "committee.details": ("详情", "Details"),
    "committee.ack": ("确认", "Acknowledge"),
    "committee.clear": ("清除", "Clear"),
    "committee.never": ("从未走访", "never visited"),
    "committee.last_visit": ("上次走访 {at}", "last visit {at}"),
    "committee.overdue_days": ("逾期 {n} 天", "{n} days overdue"),
    "committee.every": ("每 {n} 天", "every {n} days"),
    "committee.record": ("记录走访", "Record a visit"),
    "committee.way": ("走访方式", "How"),
    "committee.way.home": ("上门", "at home"),
    "committee.way.phone": ("电话", "by phone"),
    "committee.way.video": ("视频", "by video"),
    "committee.result": ("走访结果", "Result"),
    "committee.result.well": ("情况良好", "all well"),
    "committee.result.needs_help": ("需要帮助", "needs help"),
    "committee.result.absent": ("未遇到", "not met"),
    "committee.note": ("情况记录", "Notes"),
    "committee.save": ("保存", "Save"),
    "committee.help_hint": ("保存后可转为工单上报。", "After saving you may open a case."),
    "committee.visited": ("已记录对 {name} 的走访。", "Visit to {name} recorded."),
    "committee.reported": ("已上报工单 {code}。", "Case {code} reported."),
    "committee.new_case": ("走访发现问题，上报工单", "Report a case from the visit"),
    "committee.case_title": ("标题", "Title"),
    "committee.case_class": ("类别", "Class"),
    "committee.case_description": ("描述", "Description"),
    "committee.case_for": ("走访对象：{name}，{address}", "Visited: {name}, {address}"),
    "committee.case_default_title": ("走访发现{name}需要帮助", "{name} needs help (found on a visit)"),
    "committee.submit": ("上报", "Report"),
    "committee.skip": ("暂不上报", "Not now"),
    "committee.ledgers": ("台账", "Ledgers"),
    "committee.group": ("人群", "Group"),
    "committee.all_groups": ("全部特殊人群", "All special groups"),
    "committee.search": ("搜索", "Search"),
    "committee.apply": ("查询", "Apply"),
    "committee.export": ("导出 XLSX", "Export XLSX"),
    "committee.total": ("共 {n} 条", "{n} records"),
    "committee.empty": ("没有记录。", "No records."),
    "committee.requests": ("居民诉求", "Residents' requests"),
    "committee.no_requests": ("暂无居民诉求。", "No requests from residents."),
    "committee.answer": ("答复居民", "Answer the resident"),
    "committee.answer_hint": ("答复内容（居民可见）", "Your answer (the resident sees it)"),
    "committee.send": ("发送", "Send"),
    "committee.answered": ("已答复。", "Answer sent."),
    "committee.notices": ("通知公告", "Notices"),
    "committee.publish": ("发布通知", "Publish a notice"),
    "committee.notice_title": ("标题", "Title"),
    "committee.notice_body": ("正文", "Text"),
    "committee.audience": ("发送对象", "Audience"),
    "committee.audience.all": ("全体", "everyone"),
    "committee.audience.staff": ("工作人员", "staff"),
    "committee.audience.residents": ("居民", "residents"),
    "committee.published": ("已发布，{n} 人收到。", "Published; {n} recipients."),
    "committee.no_notices": ("暂无通知。", "No notices."),
    "committee.subdistrict": ("街道", "subdistrict"),
    "committee.notice_by": ("{by} 发布于 {at}", "by {by}, {at}"),
    "committee.recipients": ("{n} 人收到", "{n} recipients"),
    "committee.back": ("返回", "Back"),
})

SEVERITY_CLASS = {"CRITICAL": "sev-critical", "MAJOR": "sev-major", "MINOR": "sev-minor",
                  "WARNING": "sev-warning", "INDETERMINATE": "sev-info"}


# --- the committee a page works on -----------------------------------------------------------

def _id(raw: Any) -> int | None:
    """A record id from a form or query value; None for anything else (never an error)."""
    value = str(raw or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 1 <= int(value) <= MAX_ID:
        return None
    return int(value)


def _committee_id(raw: Any) -> int | None:
    value = str(raw or "").strip()
    if not value:
        return None
    if _id(value) is None:
        raise HTTPException(status_code=422, detail=f"committee: 应为居委编号，收到 {value[:20]!r}（a committee id）")
    return int(value)


def _choose(session: Session, raw: Any) -> tuple[Place, list[Place]]:
    """The committee asked for (404 when it is not one of the user's), else the first."""
    options = service.committees(session=session)
    wanted = _committee_id(raw)
    if wanted is not None:
        chosen = next((p for p in options if p.id == wanted), None)
        if chosen is None:
            raise HTTPException(status_code=404, detail=f"居委 {wanted} 不存在 (not found)")
        return chosen, options
    if not options:
        raise HTTPException(status_code=404, detail="您的管辖范围内没有居委 (no committee in your areas)")
    return options[0], options


def _here(path: str, committee: Place, **params: Any) -> str:
    query = urlencode([("committee", committee.id), *[(k, v) for k, v in params.items() if v not in (None, "")]])
    return f"{path}?{query}"


def _back(raw: Any, committee: Place) -> str:
    """Where a form sends the user back to: a committee page, never another site."""
    target = str(raw or "")
    if target.startswith("/committee") and not target.startswith("//") and "\\" not in target:
        return target
    return _here("/committee", committee)


def _common(committee: Place, options: list[Place], tab: str) -> dict[str, Any]:
    return {"committee": committee, "committees": options, "tab": tab}


# --- today's to-dos --------------------------------------------------------------------------

def _todos_page(request: Request, session: Session, user: User, committee: Place, options: list[Place], *,
                status_code: int = 200, error: str = "", errors: Mapping[str, str] | None = None,
                open_person: int | None = None, values: Mapping[str, str] | None = None,
                message: str = "") -> Response:
    lang = lang_of(request)
    todo = service.todos(session=session, user=user, committee_id=committee.id, lang=lang)
    groups = dict(service.special_groups(session=session, lang=lang))
    return render(request, "committee/todos.html", status_code=status_code,
                  **_common(committee, options, "todos"), todo=todo, groups=groups,
                  error=error, errors=errors or {}, open_person=open_person, v=values or {},
                  message=message, ways=visits.WAYS, results=visits.RESULTS, ACTIVE_UNACK=ACTIVE_UNACK,
                  severity_class=SEVERITY_CLASS, is_overdue=is_overdue,
                  may_handle_alarms=iam.can(user, iam.ALARM_HANDLE))


def _message(request: Request, session: Session) -> str:
    """The line a page shows after a redirect (a visit recorded, a case reported)."""
    lang = lang_of(request)
    q = request.query_params
    if (case_id := _id(q.get("reported"))) is not None:
        case = cases.get_case(session=session, case_id=case_id)
        if case is not None:
            return i18n.t("committee.reported", lang, code=case.code)
    if (person_id := _id(q.get("visited"))) is not None:
        person = service.visible_person(session=session, person_id=person_id)
        if person is not None:
            return i18n.t("committee.visited", lang, name=person.name)
    if q.get("answered") == "1":
        return i18n.t("committee.answered", lang)
    if (raw := q.get("published", "")).isascii() and raw.isdigit() and len(raw) <= 9:
        return i18n.t("committee.published", lang, n=int(raw))
    return ""


@router.get("/committee")
def todos_page(request: Request, session: SessionDep, user: PageCaseReader) -> Response:
    committee, options = _choose(session, request.query_params.get("committee"))
    return _todos_page(request, session, user, committee, options, message=_message(request, session))


@router.post("/committee/visits")
async def record_visit(request: Request, session: SessionDep, user: PageCaseReader) -> Response:
    form = await request.form()
    committee, options = _choose(session, form.get("committee"))
    values = {k: str(form.get(k) or "") for k in ("person_id", "way", "result", "note")}
    person_id = _id(values["person_id"])
    try:
        if person_id is None:
            raise visits.VisitError("person_id", "请选择走访对象（choose a person）")
        with session.begin_nested():
            visit = visits.record_visit(session=session, person_id=person_id, visitor=user.username,
                                        way=values["way"], result=values["result"], note=values["note"])
    except visits.VisitError as exc:
        if exc.field == "person_id":  # no form of this person on the page: said at the top
            return _todos_page(request, session, user, committee, options, status_code=422, error=str(exc))
        return _todos_page(request, session, user, committee, options, status_code=422,
                           errors={exc.field: exc.message}, open_person=person_id, values=values)
    if visit.result == "needs_help" and iam.can(user, iam.CASE_REPORT):
        return RedirectResponse(_here("/committee/cases/new", committee, person=visit.person_id),
                                status_code=303)
    return RedirectResponse(_here("/committee", committee, visited=visit.person_id) + "#visits", status_code=303)


def _case_or_404(session: Session, case_id: int) -> Case:
    case = cases.get_case(session=session, case_id=case_id)
    if case is None:
        raise HTTPException(status_code=404, detail=f"工单 {case_id} 不存在 (not found)")
    return case


@router.post("/committee/cases/{case_id:int}/actions/{action}")
async def case_action(request: Request, case_id: CaseId, session: SessionDep, user: PageUser,
                      action: Annotated[str, Path(max_length=20)]) -> Response:
    """One tap on a to-do: handle, feed back or verify (the note is optional)."""
    case = _case_or_404(session, case_id)  # found first: out of scope is 404 whoever asks
    ensure_can(user, iam.CASE_READ)
    form = await request.form()
    committee, options = _choose(session, form.get("committee") or case.committee_id)
    try:
        if action not in service.WAITING_ACTIONS:
            raise cases.CaseError("action", f"此处可用：{', '.join(service.WAITING_ACTIONS)}（one of these）")
        body = CaseActionIn.model_validate({"note": str(form.get("note") or "")})
        with session.begin_nested():
            policy.take_action(session=session, user=user, case=case, action=action, body=body)
    except policy.CaseForbidden as exc:
        raise HTTPException(status_code=403, detail=f"无权限 (not allowed: {exc.what})") from None
    except ValidationError as exc:
        return _todos_page(request, session, user, committee, options, status_code=422,
                           error="note: " + "; ".join(str(e.get("msg", "")) for e in exc.errors()))
    except cases.CaseError as exc:
        return _todos_page(request, session, user, committee, options, status_code=422, error=str(exc))
    return RedirectResponse(_back(form.get("next"), committee), status_code=303)


# --- a case from a visit ---------------------------------------------------------------------

def _new_case_page(request: Request, session: Session, user: User, committee: Place, options: list[Place],
                   person: Any, values: Mapping[str, str] | None = None, error: str = "",
                   status_code: int = 200) -> Response:
    lang = lang_of(request)
    address = service.addresses(session, {person.place_id} if person.place_id else set()).get(
        person.place_id or 0, "")
    v = dict(values or {})
    v.setdefault("title", i18n.t("committee.case_default_title", lang, name=person.name))
    v.setdefault("class_code", service.VISIT_CASE_CLASS)
    v.setdefault("description", i18n.t("committee.case_for", lang, name=person.name, address=address))
    classes = [(k.code, k.name if lang.startswith("zh") or not k.name_en else k.name_en)
               for k in cases.list_classes(session=session)]
    return render(request, "committee/new_case.html", status_code=status_code,
                  **_common(committee, options, "todos"), person=person, v=v, classes=classes,
                  error=error)


def _person_or_404(session: Session, raw: Any) -> Any:
    person_id = _id(raw)
    person = service.visible_person(session=session, person_id=person_id) if person_id is not None else None
    if person is None:
        raise HTTPException(status_code=404, detail=f"人员 {str(raw or '')[:20]} 不存在 (not found)")
    return person


@router.get("/committee/cases/new")
def new_case_page(request: Request, session: SessionDep, user: PageCaseReader) -> Response:
    ensure_can(user, iam.CASE_REPORT)
    committee, options = _choose(session, request.query_params.get("committee"))
    person = _person_or_404(session, request.query_params.get("person"))
    return _new_case_page(request, session, user, committee, options, person)


@router.post("/committee/cases/new")
async def new_case_post(request: Request, session: SessionDep, user: PageCaseReader) -> Response:
    ensure_can(user, iam.CASE_REPORT)
    form = await request.form()
    committee, options = _choose(session, form.get("committee"))
    person = _person_or_404(session, form.get("person"))
    values = {k: str(form.get(k) or "").strip() for k in ("title", "class_code", "description")}
    try:
        with session.begin_nested():
            case = service.report_from_visit(session=session, user=user, person=person, **values)
    except policy.CaseForbidden as exc:
        raise HTTPException(status_code=403, detail=f"无权限 (not allowed: {exc.what})") from None
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                            for e in exc.errors())
        return _new_case_page(request, session, user, committee, options, person, values, message, 422)
    except cases.CaseError as exc:
        return _new_case_page(request, session, user, committee, options, person, values, str(exc), 422)
    return RedirectResponse(_here("/committee", committee, reported=case.id), status_code=303)


# --- ledgers (台账) ---------------------------------------------------------------------------

def _ledger_query(request: Request, session: Session, ledger: Ledger, lang: str) -> tuple[
        Place, list[Place], str, str, list[tuple[str, str]]]:
    committee, options = _choose(session, request.query_params.get("committee"))
    group = (request.query_params.get("group") or "").strip()
    q = (request.query_params.get("q") or "").strip()[:100]
    if "\x00" in q:
        raise HTTPException(status_code=422, detail="q: 不能包含 NUL 字符（must not contain a NUL character）")
    groups = service.special_groups(session=session, lang=lang) if ledger.tag_root else []
    if group and group not in {code for code, _ in groups}:
        raise HTTPException(status_code=422, detail=f"group: 未知人群 {group[:30]!r}（unknown group）")
    return committee, options, group, q, groups


def _register_ledger(ledger: Ledger) -> None:
    path = f"/committee/ledgers/{ledger.key}"

    @router.get(path, name=f"committee_ledger_{ledger.key}")
    def ledger_page(request: Request, session: SessionDep, user: PageCaseReader, page: PageNo = 1) -> Response:
        ensure_can(user, iam.READ)
        lang = lang_of(request)
        committee, options, group, q, groups = _ledger_query(request, session, ledger, lang)
        params = service.ledger_params(ledger=ledger, committee_id=committee.id, group=group, q=q, page=page)
        found = service.ledger_page(session=session, ledger=ledger, params=params, lang=lang)
        columns = [c for c in ledger.kind.columns if c.in_list and c.key not in ("committee", "grid")]

        def href(**change: Any) -> str:
            return _here(path, committee, group=group, q=q, **change)

        return render(request, "committee/ledger.html", **_common(committee, options, "ledgers"),
                      ledger=ledger, ledgers=LEDGERS.values(), found=found, columns=columns, group=group,
                      q=q, groups=groups, plural=PLURALS[ledger.kind.key],
                      prev_href=href(page=page - 1), next_href=href(page=page + 1),
                      export_href=_here(f"{path}/export.xlsx", committee, group=group, q=q),
                      may_export=iam.can(user, iam.EXPORT))

    @router.get(f"{path}/export.xlsx", name=f"committee_ledger_{ledger.key}_export")
    def ledger_export(request: Request, session: SessionDep, user: PageCaseReader) -> Response:
        ensure_can(user, iam.READ, iam.EXPORT)
        lang = lang_of(request)
        committee, _options, group, q, _groups = _ledger_query(request, session, ledger, lang)
        params = service.ledger_params(ledger=ledger, committee_id=committee.id, group=group, q=q)
        data, count = export_xlsx(session=session, kind=ledger.kind, params=params, lang=lang,
                                  actor=user.username)
        name = (f"{committee.name}{ledger.zh}台账.xlsx" if lang.startswith("zh")
                else f"committee-{committee.id}-{ledger.key}.xlsx")
        return Response(data, media_type=XLSX, headers={
            "Content-Disposition": f"attachment; filename=\"{ledger.key}.xlsx\"; filename*=UTF-8''{quote(name)}",
            "X-Record-Count": str(count)})


for _ledger in LEDGERS.values():
    _register_ledger(_ledger)


@router.get("/committee/ledgers")
def ledgers_page(request: Request, user: PageCaseReader) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/committee/ledgers/special{query}", status_code=303)


# --- residents' requests ---------------------------------------------------------------------

def _requests_page(request: Request, session: Session, user: User, committee: Place, options: list[Place],
                   page: int = 1, *, error: str = "", error_case: int | None = None,
                   status_code: int = 200) -> Response:
    lang = lang_of(request)
    found, items = service.resident_requests(session=session, user=user, committee_id=committee.id,
                                             page=page, lang=lang)
    return render(request, "committee/requests.html", status_code=status_code,
                  **_common(committee, options, "requests"), found=found, items=items,
                  error=error, error_case=error_case, message=_message(request, session),
                  prev_href=_here("/committee/requests", committee, page=page - 1),
                  next_href=_here("/committee/requests", committee, page=page + 1))


@router.get("/committee/requests")
def requests_page(request: Request, session: SessionDep, user: PageCaseReader, page: PageNo = 1) -> Response:
    committee, options = _choose(session, request.query_params.get("committee"))
    return _requests_page(request, session, user, committee, options, page)


@router.post("/committee/requests/{case_id:int}/answer")
async def answer_request(request: Request, case_id: CaseId, session: SessionDep, user: PageUser) -> Response:
    case = _case_or_404(session, case_id)  # found first: out of scope is 404 whoever asks
    ensure_can(user, iam.CASE_READ)
    form = await request.form()
    committee, options = _choose(session, form.get("committee") or case.committee_id)
    try:
        with session.begin_nested():
            service.answer_request(session=session, user=user, case=case, note=str(form.get("note") or ""))
    except policy.CaseForbidden as exc:
        raise HTTPException(status_code=403, detail=f"无权限 (not allowed: {exc.what})") from None
    except cases.CaseError as exc:
        return _requests_page(request, session, user, committee, options, error=str(exc), error_case=case.id,
                              status_code=422)
    return RedirectResponse(_here("/committee/requests", committee, answered=1) + f"#case-{case.id}",
                            status_code=303)


# --- notices ---------------------------------------------------------------------------------

def _notices_page(request: Request, session: Session, user: User, committee: Place, options: list[Place], *,
                  errors: Mapping[str, str] | None = None, values: Mapping[str, str] | None = None,
                  status_code: int = 200) -> Response:
    names = {p.id: p.name for p in options}
    return render(request, "committee/notices.html", status_code=status_code,
                  **_common(committee, options, "notices"),
                  items=notices.visible_to(session=session, user=user), names=names,
                  audiences=notices.AUDIENCES, may_publish=iam.can(user, iam.NOTICE_PUBLISH),
                  errors=errors or {}, v=values or {"audience": "all", "committee_id": str(committee.id)},
                  message=_message(request, session))


@router.get("/committee/notices")
def notices_page(request: Request, session: SessionDep, user: PageCaseReader) -> Response:
    committee, options = _choose(session, request.query_params.get("committee"))
    return _notices_page(request, session, user, committee, options)


@router.post("/committee/notices")
async def publish_notice(request: Request, session: SessionDep, user: PageCaseReader) -> Response:
    ensure_can(user, iam.NOTICE_PUBLISH)
    form = await request.form()
    committee, options = _choose(session, form.get("committee"))
    values = {k: str(form.get(k) or "") for k in ("title", "body", "audience", "committee_id")}
    committee_id = _id(values["committee_id"])
    try:
        if committee_id is None:
            raise notices.NoticeError("committee_id", "请选择居委（choose a committee）")
        with session.begin_nested():
            notice = notices.publish(session=session, user=user, title=values["title"], body=values["body"],
                                     audience=values["audience"], committee_id=committee_id)
    except notices.NoticeError as exc:
        return _notices_page(request, session, user, committee, options, errors={exc.field: exc.message},
                             values=values, status_code=422)
    return RedirectResponse(_here("/committee/notices", committee, published=notice.recipients),
                            status_code=303)


@router.get("/notices/{notice_id:int}")
def notice_page(request: Request, notice_id: NoticeId, session: SessionDep, user: PageUser) -> Response:
    """One notice, for anyone it is addressed to (404 for anyone else)."""
    notice = notices.get_visible(session=session, user=user, notice_id=notice_id)
    if notice is None:
        raise HTTPException(status_code=404, detail=f"通知 {notice_id} 不存在 (not found)")
    committee_name = ""
    if notice.committee_id is not None:
        committee_name = session.scalar(select(Place.name).where(Place.id == notice.committee_id)) or ""
    return render(request, "committee/notice.html", notice=notice, committee_name=committee_name)
