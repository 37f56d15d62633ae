"""The brain's pages: the big screen itself, its JSON data under /brain/data/…, its live stream
(server-sent events) and its command actions under /brain/actions/….

Everything reads through the request's scoped session (the stream through sessions of its own
that carry the same scope), so a screen opened by a grid worker shows their grid only. Routes
that name a record find it first (404 for one out of scope, like a missing one) and only then
check the permission. The actions answer JSON: 422 naming the field, 403 without the permission.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from shequ.core.alarms.models import AlarmEvent
from shequ.core.cases.models import CaseStep
from shequ.core.cases.policy import CaseForbidden
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iam.scope import Scope
from shequ.core.iot.models import Device, DeviceState
from shequ.core.notify.notices import AUDIENCES
from shequ.core.plugins import DEPARTMENTS
from shequ.db import bind_context, session_scope
from shequ.platforms.brain import service
from shequ.web import i18n
from shequ.web.deps import PageUser, SessionDep, ensure_can, lang_of, render, require
from shequ.web.records import BadParam, RecordId
from shequ.web.routes.twin import parse_at
from shequ.web.security import csrf_protect

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
BrainReader = Annotated[User, Depends(require(iam.ALARM_READ, api=False))]
At = Annotated[str | None, Query(max_length=40)]

POLL_S = 1.5  # how often the stream looks for a change (one cheap query)
HEARTBEAT_S = 15.0
# a stream ends after this long; EventSource reconnects by itself (a deploy never waits long)
STREAM_MAX_S = 240.0
RETRY_MS = 3000

i18n.extend({
    "brain.title": ("社区大脑", "Community brain"),
    "brain.live": ("实时", "Live"),
    "brain.scenarios": ("场景态势", "Scenarios"),
    "brain.replay": ("回放", "Replay"),
    "brain.back_live": ("回到实时", "Back to live"),
    "brain.day": ("日期", "Day"),
    "brain.time": ("时刻", "Time"),
    "brain.home": ("返回工作台", "Back to the desk"),
    "brain.subdistrict": ("全街道", "Whole subdistrict"),
    "brain.active_alarms": ("未清除告警", "Alarms"),
    "brain.unacked": ("未确认", "Unacked"),
    "brain.alarms_today": ("今日告警", "Today"),
    "brain.open_cases": ("在办工单", "Cases"),
    "brain.overdue": ("超期工单", "Overdue"),
    "brain.late": ("超期", "overdue"),
    "brain.devices_online": ("设备在线", "Online"),
    "brain.population": ("实有人口", "Population"),
    "brain.on_time_rate": ("按期处置率", "On time"),
    "brain.chart.age_sex": ("人口结构（年龄 × 性别）", "Population by age and sex"),
    "brain.chart.residence": ("户籍 / 来沪", "Residence"),
    "brain.chart.special": ("特殊人群", "Special groups"),
    "brain.chart.devices": ("设备在线 / 离线（按类型）", "Devices online / offline by type"),
    "brain.chart.alarm_scenarios": ("今日告警（按场景）", "Today by scenario"),
    "brain.chart.alarm_severity": ("今日告警（按级别）", "Today by severity"),
    "brain.chart.case_stages": ("工单阶段", "Cases by stage"),
    "brain.chart.on_time_dept": ("部门按期处置率（30 天）", "On time by department (30 d)"),
    "brain.chart.on_time_grid": ("网格按期处置率（30 天）", "On time by grid (30 d)"),
    "brain.chart.trends": ("近 14 天告警与工单", "Alarms and cases, last 14 days"),
    "brain.male": ("男", "Male"),
    "brain.female": ("女", "Female"),
    "brain.online": ("在线", "Online"),
    "brain.offline": ("离线", "Offline"),
    "brain.alarms": ("告警", "Alarms"),
    "brain.cases": ("工单", "Cases"),
    "brain.alarm_list": ("实时告警", "Live alarms"),
    "brain.case_list": ("待指挥工单", "Cases to command"),
    "brain.no_alarms": ("当前没有未清除的告警", "No active alarms"),
    "brain.no_cases": ("没有在办工单", "No open cases"),
    "brain.state.alarm": ("告警", "alarm"),
    "brain.state.fault": ("故障", "fault"),
    "brain.state.offline": ("离线", "offline"),
    "brain.state.maintenance": ("维护", "maintenance"),
    "brain.state.ok": ("正常", "normal"),
    "brain.state.unknown": ("未知", "unknown"),
    "brain.children": ("下级", "Below"),
    "brain.devices": ("设备", "Devices"),
    "brain.devices_more": ("另有 {n} 台未列出", "{n} more not listed"),
    "brain.no_devices": ("没有设备", "No devices"),
    "brain.close": ("关闭", "Close"),
    "brain.loading": ("加载中…", "Loading…"),
    "brain.failed": ("加载失败", "Could not load"),
    "brain.dispatch": ("派遣", "Dispatch"),
    "brain.escalate": ("升级", "Escalate"),
    "brain.supervise": ("督办", "Supervise"),
    "brain.department": ("派遣部门", "Department"),
    "brain.choose": ("请选择", "Choose"),
    "brain.note": ("说明", "Note"),
    "brain.done": ("已完成", "Done"),
    "brain.case_of_alarm": ("关联工单", "Its case"),
    "brain.open_detail": ("查看详情", "Open details"),
    "brain.locate": ("定位到位置", "Go to the place"),
    "brain.notice": ("发布通知", "Broadcast a notice"),
    "brain.notice_title": ("标题", "Title"),
    "brain.notice_body": ("正文", "Text"),
    "brain.audience": ("对象", "Audience"),
    "brain.audience.all": ("全体（工作人员和居民）", "everyone (staff and residents)"),
    "brain.audience.staff": ("工作人员", "staff"),
    "brain.audience.residents": ("居民", "residents"),
    "brain.where": ("范围", "Where"),
    "brain.send": ("发布", "Publish"),
    "brain.cancel": ("取消", "Cancel"),
    "brain.sent": ("已发布，送达 {n} 人", "Published to {n} people"),
    "brain.due": ("时限", "Due"),
    "brain.level": ("升级 {n} 级", "level {n}"),
    "brain.count": ("次数", "count"),
    "brain.at": ("回放时刻：{at}", "Replaying {at}"),
    "brain.updated": ("更新于", "Updated"),
    "brain.unknown_age": ("年龄不详", "age unknown"),
    "brain.people": ("人", "people"),
})

# the words brain.js shows (handed over in a data attribute: no inline script)
JS_WORDS = tuple(k for k in i18n.CATALOG if k.startswith("brain."))


def _json_error(exc: HTTPException) -> JSONResponse:
    return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)


def _not_found(what: str, ident: object) -> JSONResponse:
    return JSONResponse({"detail": f"{what} {ident} 不存在 (not found)"}, status_code=404)


# --- the page ----------------------------------------------------------------------------


@router.get("/brain")
def page(request: Request, session: SessionDep, user: BrainReader) -> Response:
    lang = lang_of(request)
    centre = service.centre(session=session)
    words = {k: i18n.t(k, lang) for k in JS_WORDS}
    return render(request, "brain/index.html", s=service.summary(session=session, lang=lang), centre=centre,
                  words=words, departments=DEPARTMENTS, committees=service.committees(session=session),
                  audiences=AUDIENCES, perms=service.permissions(user))


# --- data --------------------------------------------------------------------------------


@router.get("/brain/data/summary")
def summary(request: Request, session: SessionDep, user: BrainReader) -> Any:
    return service.summary(session=session, lang=lang_of(request))


@router.get("/brain/data/buildings.geojson")
def buildings(session: SessionDep, user: BrainReader, at: At = None) -> Response:
    layer = service.buildings(session=session, at_ms=parse_at(at))
    return JSONResponse(layer, media_type="application/geo+json")


@router.get("/brain/data/areas.geojson")
def areas(request: Request, session: SessionDep, user: BrainReader, at: At = None) -> Response:
    layer = service.areas(session=session, at_ms=parse_at(at), lang=lang_of(request))
    return JSONResponse(layer, media_type="application/geo+json")


@router.get("/brain/data/alarms")
def alarms(request: Request, session: SessionDep, user: BrainReader) -> Any:
    return {"items": service.active_alarms(session=session, lang=lang_of(request))}


@router.get("/brain/data/cases")
def cases(request: Request, session: SessionDep, user: BrainReader) -> Any:
    return {"items": service.open_cases(session=session, user=user, lang=lang_of(request))}


@router.get("/brain/data/cases/{case_id:int}")
def case(request: Request, case_id: RecordId, session: SessionDep, user: PageUser) -> Response:
    found = service.get_case(session=session, case_id=case_id)
    if found is None:
        return _not_found("工单", case_id)
    try:
        ensure_can(user, iam.CASE_READ)
    except HTTPException as exc:
        return _json_error(exc)
    return JSONResponse(service.case_row(found, user=user, lang=lang_of(request)))


@router.get("/brain/data/places/{place_id:int}")
def place(request: Request, place_id: RecordId, session: SessionDep, user: PageUser, at: At = None) -> Response:
    at_ms = parse_at(at)
    cap = service.DEVICE_CAP if iam.can(user, iam.DEVICE_READ) else 0
    panel = service.place_panel(session=session, place_id=place_id, at_ms=at_ms, lang=lang_of(request),
                                device_cap=cap)
    if panel is None:
        return _not_found("地点", place_id)
    try:
        ensure_can(user, iam.ALARM_READ)
    except HTTPException as exc:
        return _json_error(exc)
    return JSONResponse(panel)


# --- the live stream ---------------------------------------------------------------------


@contextmanager
def _scoped(tenant_id: int, scope: Scope | None) -> Iterator[Session]:
    """A session of the stream's own, limited to the user's scope like the request's."""
    with session_scope(tenant_id=tenant_id, actor="brain") as session:
        bind_context(session, tenant_id=tenant_id, actor="brain", scope=scope)
        yield session


def _fingerprint(tenant_id: int, scope: Scope | None) -> tuple[Any, ...]:
    """What moves when the screen should change: the newest alarm event and case step, the
    devices online, the buildings' latest state change. One statement."""
    with _scoped(tenant_id, scope) as session:
        online = (select(func.count(Device.id)).join(DeviceState, DeviceState.device_id == Device.id)
                  .where(DeviceState.online.is_(True)).scalar_subquery())
        row = session.execute(select(select(func.max(AlarmEvent.id)).scalar_subquery(),
                                     select(func.max(CaseStep.id)).scalar_subquery(), online)).one()
        return (*row, service.twin_mark(session=session))


def _snapshot(tenant_id: int, scope: Scope | None, lang: str) -> dict[str, Any]:
    with _scoped(tenant_id, scope) as session:
        return {"summary": service.summary(session=session, lang=lang),
                "alarms": {"items": service.active_alarms(session=session, lang=lang)}}


async def _events(tenant_id: int, scope: Scope | None, lang: str) -> AsyncIterator[str]:
    """``summary`` and ``alarms`` whenever they change (checked every POLL_S), a heartbeat
    comment when nothing was sent for HEARTBEAT_S; ends after STREAM_MAX_S."""
    yield f"retry: {RETRY_MS}\n\n"
    started = last_write = time.monotonic()
    mark: tuple[Any, ...] | None = None
    sent: dict[str, str] = {}
    while True:
        now_mark = await anyio.to_thread.run_sync(_fingerprint, tenant_id, scope)
        if now_mark != mark:
            mark = now_mark
            snapshot = await anyio.to_thread.run_sync(_snapshot, tenant_id, scope, lang)
            for name, data in snapshot.items():
                text = json.dumps(data, ensure_ascii=False, sort_keys=True)
                if sent.get(name) != text:
                    sent[name] = text
                    last_write = time.monotonic()
                    yield f"event: {name}\ndata: {text}\n\n"
        if time.monotonic() - last_write >= HEARTBEAT_S:
            last_write = time.monotonic()
            yield ": ping\n\n"
        left = STREAM_MAX_S - (time.monotonic() - started)
        if left <= 0:
            return
        await anyio.sleep(min(POLL_S, left))


@router.get("/brain/stream")
async def stream(request: Request, user: BrainReader) -> Response:
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise HTTPException(status_code=406, detail="请以 Accept: text/event-stream 连接 "
                                                    "(send Accept: text/event-stream)")
    scope = getattr(request.state, "scope", None)
    return StreamingResponse(_events(user.tenant_id, scope, lang_of(request)), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# --- command actions ---------------------------------------------------------------------


async def _values(request: Request) -> Mapping[str, Any]:
    """The fields of a JSON or form body."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except ValueError:
            raise BadParam("body", "不是有效的 JSON（not valid JSON）") from None
        if not isinstance(data, dict):
            raise BadParam("body", "应为 JSON 对象（a JSON object）")
        return data
    form = await request.form()
    return {k: v for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}


async def _command(request: Request, session: Session, user: User, case_id: int, action: str) -> Response:
    values = await _values(request)
    try:
        case = service.command_case(session=session, user=user, case_id=case_id, action=action, values=values)
    except service.CaseNotFound:
        return _not_found("工单", case_id)
    except CaseForbidden as exc:
        return JSONResponse({"detail": f"无权限 (not allowed: {exc.what})"}, status_code=403)
    return JSONResponse({"ok": True, "case": service.case_row(case, user=user, lang=lang_of(request))})


@router.post("/brain/actions/cases/{case_id:int}/dispatch")
async def dispatch(request: Request, case_id: RecordId, session: SessionDep, user: PageUser) -> Response:
    return await _command(request, session, user, case_id, "dispatch")


@router.post("/brain/actions/cases/{case_id:int}/escalate")
async def escalate(request: Request, case_id: RecordId, session: SessionDep, user: PageUser) -> Response:
    return await _command(request, session, user, case_id, "escalate")


@router.post("/brain/actions/cases/{case_id:int}/supervise")
async def supervise(request: Request, case_id: RecordId, session: SessionDep, user: PageUser) -> Response:
    return await _command(request, session, user, case_id, "supervise")


@router.post("/brain/actions/notices")
async def notice(request: Request, session: SessionDep, user: PageUser) -> Response:
    try:
        ensure_can(user, iam.NOTICE_PUBLISH)
    except HTTPException as exc:
        return _json_error(exc)
    values = await _values(request)
    published = service.broadcast(session=session, user=user, values=values)
    return JSONResponse({"ok": True, "notice": {"id": published.id, "title": published.title,
                                                "audience": published.audience,
                                                "committee_id": published.committee_id,
                                                "recipients": published.recipients}})

