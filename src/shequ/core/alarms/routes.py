"""Routes of the alarms package: the API (under /api/v1) and the alarm console pages.

An alarm is placed: the scoped session shows a committee's staff only their committee's
alarms. Routes that name an alarm first find it through the scoped session (404 for one out of
scope, like one that does not exist) and only then check the permission. Handling goes through
``alarms.service`` (acknowledge, clear, assign, comment, open a case); an action its state does
not allow is answered 422 naming the field (a second acknowledgement: ``status``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from shequ.core.alarms import service
from shequ.core.alarms.models import (
    ACTIVE_ACK,
    ACTIVE_UNACK,
    SEVERITIES,
    STATUSES,
    Alarm,
)
from shequ.core.alarms.query import ACTIVE, PAGE_SIZE, Filters, find_alarms, place_names, summary
from shequ.core.alarms.schemas import (
    AlarmDetail,
    AlarmEventOut,
    AlarmOut,
    AlarmPage,
    AlarmSummary,
    AssignIn,
    CaseIn,
    CaseLink,
    CommentIn,
    NoteIn,
)
from shequ.core.alarms.service import AlarmError
from shequ.core.cases.service import CaseError
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.web import i18n
from shequ.web.deps import (
    SHANGHAI,
    ApiUser,
    PageUser,
    SessionDep,
    ensure_can,
    lang_of,
    render,
    require,
)
from shequ.web.records import MAX_ID, BadParam
from shequ.web.security import csrf_protect

api = APIRouter(tags=["alarms"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

AlarmId = Annotated[int, Path(ge=1, le=MAX_ID, description="alarm id")]
ApiAlarmReader = Annotated[User, Depends(require(iam.ALARM_READ, api=True))]
PageAlarmReader = Annotated[User, Depends(require(iam.ALARM_READ, api=False))]


# until app.css has classes of its own for severities, they borrow the device conditions' colours
SEVERITY_CLASS = {"CRITICAL": "cond-alarm", "MAJOR": "cond-fault", "MINOR": "cond-maintenance",
                  "WARNING": "cond-offline", "INDETERMINATE": "cond-ok"}

i18n.extend({
    "alarms.title": ("告警台", "Alarm console"),
    "alarms.alarm": ("告警", "Alarm"),
    "alarms.severity": ("级别", "Severity"),
    "alarms.status": ("状态", "Status"),
    "alarms.type": ("类型", "Type"),
    "alarms.scenario": ("场景", "Scenario"),
    "alarms.active_only": ("只看未清除", "Active only"),
    "alarms.sort": ("排序", "Order"),
    "alarms.sort.time": ("最新在前", "newest first"),
    "alarms.sort.severity": ("最严重在前", "most severe first"),
    "alarms.count": ("次数", "Count"),
    "alarms.age": ("已持续", "Age"),
    "alarms.place": ("位置", "Place"),
    "alarms.raised_at": ("发生时间", "Raised"),
    "alarms.last_at": ("最近一次", "Last"),
    "alarms.acked": ("确认", "Acknowledged"),
    "alarms.cleared": ("清除", "Cleared"),
    "alarms.assignee": ("处理人", "Assignee"),
    "alarms.escalation": ("升级级别", "Escalation level"),
    "alarms.reminders": ("提醒次数", "Reminders"),
    "alarms.rule": ("规则", "Rule"),
    "alarms.device": ("设备", "Device"),
    "alarms.context": ("触发数据", "What caused it"),
    "alarms.case": ("工单", "Case"),
    "alarms.actions": ("操作", "Actions"),
    "alarms.ack": ("确认", "Acknowledge"),
    "alarms.clear": ("清除", "Clear"),
    "alarms.comment": ("备注", "Comment"),
    "alarms.assign": ("指派", "Assign"),
    "alarms.to_case": ("转工单", "Open a case"),
    "alarms.more": ("更多", "More"),
    "alarms.class": ("事件类别", "Case class"),
    "alarms.department": ("派往部门（留空按规则）", "Department (empty: by the routing rules)"),
    "alarms.dispatch": ("立即派遣", "Dispatch at once"),
    "alarms.note": ("说明", "Note"),
    "alarms.timeline": ("时间线", "Timeline"),
    "alarms.at": ("时间", "Time"),
    "alarms.actor": ("操作人", "By"),
    "alarms.action": ("动作", "Action"),
    "alarms.none": ("没有符合条件的告警。", "No alarms match."),
    "alarms.back": ("返回告警台", "Back to the console"),
    "alarms.live": ("每 10 秒自动刷新", "Refreshes every 10 s"),
    "alarms.summary": ("今日 {today} 条 · 未清除 {active} 条 · 未确认 {unacked} 条",
                       "Today {today} · active {active} · unacknowledged {unacked}"),
    "alarms.minutes": ("{n} 分钟", "{n} min"),
    "alarms.hours": ("{n} 小时", "{n} h"),
    "alarms.days": ("{n} 天", "{n} d"),
    **{f"alarms.sev.{k}": v for k, v in {
        "CRITICAL": ("紧急", "critical"), "MAJOR": ("重要", "major"), "MINOR": ("次要", "minor"),
        "WARNING": ("提示", "warning"), "INDETERMINATE": ("不确定", "indeterminate")}.items()},
    **{f"alarms.st.{k}": v for k, v in {
        ACTIVE_UNACK: ("未确认", "active, unacknowledged"), ACTIVE_ACK: ("已确认", "active, acknowledged"),
        "CLEARED_UNACK": ("已清除未确认", "cleared, unacknowledged"),
        "CLEARED_ACK": ("已清除", "cleared, acknowledged")}.items()},
    **{f"alarms.ev.{k}": v for k, v in {
        "raised": ("发生", "raised"), "severity": ("级别提高", "severity raised"), "acked": ("确认", "acknowledged"),
        "cleared": ("清除", "cleared"), "assigned": ("指派", "assigned"), "commented": ("备注", "comment"),
        "case": ("转工单", "case opened"), "escalated": ("升级", "escalated"), "reminder": ("提醒", "reminder"),
        "linkage": ("联动", "linkage")}.items()},
})


def _not_found(alarm_id: int) -> HTTPException:
    return HTTPException(status_code=404, detail=f"告警 {alarm_id} 不存在 (alarm not found)")


def _alarm(session: Session, alarm_id: int) -> Alarm:
    alarm = service.get_alarm(session=session, alarm_id=alarm_id)
    if alarm is None:
        raise _not_found(alarm_id)
    return alarm


def _api_alarm(alarm_id: AlarmId, session: SessionDep, user: ApiUser) -> Alarm:
    return _alarm(session, alarm_id)


def _page_alarm(alarm_id: AlarmId, session: SessionDep, user: PageUser) -> Alarm:
    return _alarm(session, alarm_id)


ApiAlarm = Annotated[Alarm, Depends(_api_alarm)]
PageAlarm = Annotated[Alarm, Depends(_page_alarm)]


# --- queries ---------------------------------------------------------------------------------

def _list_of(field: str, raw: str | None, allowed: Sequence[str]) -> list[str]:
    values = [v.strip() for v in (raw or "").split(",") if v.strip()]
    for value in values:
        if value not in allowed:
            raise BadParam(field, f"取值 {value!r} 无效，可用：{', '.join(allowed)}（invalid value）")
    return values


def _since(raw: str | None) -> dt.datetime | None:
    if raw in (None, ""):
        return None
    try:
        if raw.lstrip("-").isdigit():
            return dt.datetime.fromtimestamp(int(raw) / 1000, dt.UTC)
        value = dt.datetime.fromisoformat(raw)
        # without an offset: Asia/Shanghai; stored times are UTC (a year-1 time would not fit)
        return (value if value.tzinfo else value.replace(tzinfo=SHANGHAI)).astimezone(dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise BadParam("since", f"应为 ISO 8601 时间或毫秒时间戳，收到 {raw!r}（ISO 8601 or epoch ms）") from None


def filters_of(*, status: str | None = None, severity: str | None = None, type: str | None = None,
               scenario: str | None = None, device_id: int | None = None, active: bool | None = None,
               since: str | None = None, sort: str | None = None) -> Filters:
    """The alarm list's filters, each bad value refused naming its parameter."""
    if sort not in (None, "", "time", "severity"):
        raise BadParam("sort", "time | severity")
    return Filters(statuses=_list_of("status", status, STATUSES), severities=_list_of("severity", severity, SEVERITIES),
                   type=type or None, scenario=scenario or None, device_id=device_id, active=active,
                   since=_since(since), sort=sort or "time")


def _out(alarm: Alarm, places: dict[int, str]) -> AlarmOut:
    data = {k: getattr(alarm, k) for k in AlarmOut.model_fields if k not in ("active", "place")}
    return AlarmOut(**data, active=alarm.status in ACTIVE, place=places.get(alarm.place_id or 0, ""))


def _case_link(session: Session, alarm: Alarm) -> CaseLink | None:
    from shequ.core.cases import service as cases

    if alarm.case_id is None:
        return None
    found = cases.get_case(session=session, case_id=alarm.case_id)
    if found is None:
        return None
    return CaseLink(id=found.id, code=found.code, stage=found.stage, department=found.department)


def _detail(session: Session, alarm: Alarm) -> AlarmDetail:
    base = _out(alarm, place_names(session, [alarm]))
    events = [AlarmEventOut.model_validate(e, from_attributes=True)
              for e in service.timeline(session=session, alarm_id=alarm.id)]
    return AlarmDetail(**base.model_dump(), timeline=events, case=_case_link(session, alarm))


def _assignee(session: Session, assignee_id: int) -> None:
    """The assignee is a user of the tenant (a SELECT: the tenant filter applies)."""
    if session.scalar(select(User.id).where(User.id == assignee_id)) is None:
        raise AlarmError("assignee_id", f"用户 {assignee_id} 不存在 (user {assignee_id} does not exist)")


def _handle(session: Session, alarm: Alarm, user: User, verb: str, form: dict[str, Any]) -> None:
    """One handling action by a user (raises AlarmError / CaseError naming the field)."""
    actor = user.username
    note = str(form.get("note") or "")
    if verb == "ack":
        service.acknowledge(session=session, alarm=alarm, actor=actor, note=note)
    elif verb == "clear":
        service.clear(session=session, alarm=alarm, actor=actor, note=note)
    elif verb == "comment":
        service.comment(session=session, alarm=alarm, actor=actor, note=note)
    elif verb == "assign":
        assignee_id = int(form["assignee_id"])
        _assignee(session, assignee_id)
        service.assign(session=session, alarm=alarm, assignee_id=assignee_id, actor=actor, note=note)
    elif verb == "case":
        service.open_case(session=session, alarm=alarm, class_code=str(form["class_code"]), actor=actor,
                          title=form.get("title") or None, priority=form.get("priority") or None,
                          department=form.get("department") or None, dispatch=bool(form.get("dispatch", True)))
    else:  # pragma: no cover - the routes name the verbs
        raise AlarmError("action", verb)


def _api_handle(session: Session, alarm: Alarm, user: User, verb: str, form: dict[str, Any]) -> AlarmDetail:
    _handle(session, alarm, user, verb, form)
    return _detail(session, alarm)


# --- API -------------------------------------------------------------------------------------

@api.get("/alarms", response_model=AlarmPage, summary="Alarms in the user's scope, newest first",
         description=f"status and severity take comma lists ({', '.join(STATUSES)}; {', '.join(SEVERITIES)}); "
                     "active=true: not cleared; since: ISO 8601 (without an offset: Asia/Shanghai) or epoch ms; "
                     "sort=severity puts CRITICAL first.")
def list_alarms(session: SessionDep, user: ApiAlarmReader,
                status: Annotated[str | None, Query(max_length=100)] = None,
                severity: Annotated[str | None, Query(max_length=100)] = None,
                type: Annotated[str | None, Query(max_length=60)] = None,
                scenario: Annotated[str | None, Query(max_length=3)] = None,
                device_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                active: bool | None = None,
                since: Annotated[str | None, Query(max_length=40)] = None,
                sort: Annotated[str | None, Query(pattern="^(time|severity)$")] = None,
                page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                size: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE) -> Any:
    filters = filters_of(status=status, severity=severity, type=type, scenario=scenario, device_id=device_id,
                         active=active, since=since, sort=sort)
    found = find_alarms(session=session, filters=filters, page=page, size=size)
    places = place_names(session, found.items)
    return AlarmPage(items=[_out(a, places) for a in found.items], total=found.total, page=found.page,
                     size=found.size)


@api.get("/alarms/summary", response_model=AlarmSummary,
         summary="Counts: by status, active ones by severity, today's (Asia/Shanghai) by type")
def alarm_summary(session: SessionDep, user: ApiAlarmReader) -> Any:
    return summary(session=session)


@api.get("/alarms/{alarm_id:int}", response_model=AlarmDetail, summary="One alarm with its timeline and case")
def get_alarm(alarm: ApiAlarm, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.ALARM_READ)
    return _detail(session, alarm)


@api.post("/alarms/{alarm_id:int}/ack", response_model=AlarmDetail,
          summary="Acknowledge (确认): who and when are recorded; reminders and escalation stop")
def ack_alarm(alarm: ApiAlarm, session: SessionDep, user: ApiUser, body: NoteIn | None = None) -> Any:
    ensure_can(user, iam.ALARM_HANDLE)
    return _api_handle(session, alarm, user, "ack", (body or NoteIn()).model_dump())


@api.post("/alarms/{alarm_id:int}/clear", response_model=AlarmDetail,
          summary="Clear (清除) by hand: the condition is over; a new occurrence is a new alarm")
def clear_alarm(alarm: ApiAlarm, session: SessionDep, user: ApiUser, body: NoteIn | None = None) -> Any:
    ensure_can(user, iam.ALARM_HANDLE)
    return _api_handle(session, alarm, user, "clear", (body or NoteIn()).model_dump())


@api.post("/alarms/{alarm_id:int}/assign", response_model=AlarmDetail, summary="Assign the alarm to a user")
def assign_alarm(alarm: ApiAlarm, body: AssignIn, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.ALARM_HANDLE)
    return _api_handle(session, alarm, user, "assign", body.model_dump())


@api.post("/alarms/{alarm_id:int}/comment", response_model=AlarmDetail, summary="Add a comment to the timeline")
def comment_alarm(alarm: ApiAlarm, body: CommentIn, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.ALARM_HANDLE)
    return _api_handle(session, alarm, user, "comment", body.model_dump())


@api.post("/alarms/{alarm_id:int}/case", response_model=AlarmDetail,
          summary="Open a case from the alarm (转工单): registered and dispatched; the alarm keeps its case")
def case_from_alarm(alarm: ApiAlarm, body: CaseIn, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.ALARM_HANDLE, iam.CASE_REPORT)
    return _api_handle(session, alarm, user, "case", body.model_dump())


# --- pages -----------------------------------------------------------------------------------

def _qs(request: Request, **change: Any) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in change and v != ""]
    items += [(k, str(v)) for k, v in change.items() if v not in (None, "")]
    return urlencode(items)


def age(since: dt.datetime, lang: str, now: dt.datetime | None = None) -> str:
    """How long ago, in the largest whole unit (minutes, hours, days)."""
    now = now or dt.datetime.now(dt.UTC)
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return i18n.t("alarms.minutes", lang, n=minutes)
    if minutes < 48 * 60:
        return i18n.t("alarms.hours", lang, n=minutes // 60)
    return i18n.t("alarms.days", lang, n=minutes // 1440)


def _classes(session: Session, lang: str) -> list[tuple[str, str]]:
    from shequ.core.cases import service as cases

    return [(c.code, f"{c.major} · {c.name}" if lang.startswith("zh") else (c.name_en or c.name))
            for c in cases.list_classes(session=session)]


def _page_context(request: Request, session: Session, user: User) -> dict[str, Any]:
    lang = lang_of(request)
    may_handle = iam.can(user, iam.ALARM_HANDLE)
    may_case = may_handle and iam.can(user, iam.CASE_REPORT)
    return {"may_handle": may_handle, "may_case": may_case, "sev_class": SEVERITY_CLASS,
            "classes": _classes(session, lang) if may_case else [],
            "age": lambda since: age(since, lang)}


@pages.get("/alarms")
def alarms_page(request: Request, session: SessionDep, user: PageAlarmReader,
                status: Annotated[str, Query(max_length=100)] = "",
                severity: Annotated[str, Query(max_length=100)] = "",
                type: Annotated[str, Query(max_length=60)] = "",
                scenario: Annotated[str, Query(max_length=3)] = "",
                active: Annotated[str, Query(pattern="^(|true|false)$")] = "",
                sort: Annotated[str, Query(pattern="^(|time|severity)$")] = "",
                page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    error = ""
    active_flag = {"true": True, "false": False}.get(active)
    try:
        filters = filters_of(status=status, severity=severity, type=type, scenario=scenario, active=active_flag,
                             sort=sort)
    except BadParam as exc:
        error = str(exc)
        filters = filters_of(sort=sort)
    found = find_alarms(session=session, filters=filters, page=page)
    types = list(session.scalars(select(Alarm.type).distinct().order_by(Alarm.type)))
    stats = summary(session=session)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context = {"page": found, "alarms": found.items, "places": place_names(session, found.items), "error": error,
               "types": types, "stats": stats, "severities": SEVERITIES, "statuses": STATUSES, "here": here,
               "f": {"status": status, "severity": severity, "type": type, "scenario": scenario,
                     "active": active, "sort": sort},
               "qs": lambda **kw: _qs(request, **kw), **_page_context(request, session, user)}
    partial = request.headers.get("hx-request") and not request.headers.get("hx-history-restore-request")
    response = render(request, "alarms/_table.html" if partial else "alarms/list.html", **context)
    response.headers["Vary"] = "HX-Request"
    return response


def _detail_page(request: Request, session: Session, user: User, alarm: Alarm, *, error: str = "",
                 status_code: int = 200) -> Response:
    from shequ.core.rules.models import Rule

    detail = _detail(session, alarm)
    rule = session.scalar(select(Rule).where(Rule.id == alarm.rule_id)) if alarm.rule_id else None
    assignee = session.scalar(select(User).where(User.id == alarm.assignee_id)) if alarm.assignee_id else None
    staff = list(session.scalars(select(User).where(User.active.is_(True),
                                                     User.role.not_in(("resident", "device", "api_client")))
                                 .order_by(User.username).limit(300))) if iam.can(user, iam.ALARM_HANDLE) else []
    return render(request, "alarms/detail.html", status_code=status_code, alarm=alarm, detail=detail, rule=rule,
                  assignee=assignee, staff=staff, error=error, here=f"/alarms/{alarm.id}",
                  **_page_context(request, session, user))


@pages.get("/alarms/{alarm_id:int}")
def alarm_page(request: Request, alarm: PageAlarm, session: SessionDep, user: PageAlarmReader) -> Response:
    return _detail_page(request, session, user, alarm)


def _back(next_url: str, alarm: Alarm) -> str:
    """Where a handled alarm sends the user back to: a page of the console, never another site."""
    if next_url.startswith(("/alarms", "/committee")) and not next_url.startswith("//"):
        return next_url
    return f"/alarms/{alarm.id}"


async def _page_action(request: Request, session: Session, user: User, alarm: Alarm, verb: str) -> Response:
    ensure_can(user, iam.ALARM_HANDLE, *((iam.CASE_REPORT,) if verb == "case" else ()))
    form = await request.form()
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        if verb == "assign":
            raw = values.get("assignee_id", "")
            if not str(raw).isdigit() or not 1 <= int(raw) <= MAX_ID:
                raise AlarmError("assignee_id", "应为用户编号 (a user id)")
        if verb == "case":
            if not values.get("class_code"):
                raise AlarmError("class_code", "请选择事件类别 (choose a case class)")
            values["dispatch"] = values.get("dispatch") in ("1", "on", "true")
            if values.get("priority") not in (None, "", "urgent", "normal"):
                raise AlarmError("priority", "urgent | normal")
        if len(values.get("note", "")) > 1000:
            raise AlarmError("note", "最多 1000 字 (at most 1000 characters)")
        with session.begin_nested():  # a case refused half-way leaves nothing behind
            _handle(session, alarm, user, verb, values)
    except (AlarmError, CaseError) as exc:
        return _detail_page(request, session, user, alarm, error=f"{exc.field}: {exc.message}", status_code=422)
    return RedirectResponse(_back(str(values.get("next") or ""), alarm), status_code=303)


@pages.post("/alarms/{alarm_id:int}/ack")
async def ack_page(request: Request, alarm: PageAlarm, session: SessionDep, user: PageUser) -> Response:
    return await _page_action(request, session, user, alarm, "ack")


@pages.post("/alarms/{alarm_id:int}/clear")
async def clear_page(request: Request, alarm: PageAlarm, session: SessionDep, user: PageUser) -> Response:
    return await _page_action(request, session, user, alarm, "clear")


@pages.post("/alarms/{alarm_id:int}/comment")
async def comment_page(request: Request, alarm: PageAlarm, session: SessionDep, user: PageUser) -> Response:
    return await _page_action(request, session, user, alarm, "comment")


@pages.post("/alarms/{alarm_id:int}/assign")
async def assign_page(request: Request, alarm: PageAlarm, session: SessionDep, user: PageUser) -> Response:
    return await _page_action(request, session, user, alarm, "assign")


@pages.post("/alarms/{alarm_id:int}/case")
async def case_page(request: Request, alarm: PageAlarm, session: SessionDep, user: PageUser) -> Response:
    return await _page_action(request, session, user, alarm, "case")
