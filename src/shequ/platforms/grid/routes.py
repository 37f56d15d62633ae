"""Pages of 网格中台: the case board by stage with quick actions and the alarm console beside it
(/grid), patrol reporting with photos and a point on the map (/grid/patrol), and one search box
over the thematic database (/grid/search).

Thin: each route reads its parameters, calls ``grid.service`` (reads) or the cases and alarms
services (changes) and renders. A route that names a case or an alarm first finds it through the
scoped session (404 when out of scope, like a missing one) and only then checks the level and
the permission.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import ACTIVE_ACK, ACTIVE_UNACK, CLEARED_UNACK
from shequ.core.alarms.routes import SEVERITY_CLASS, age
from shequ.core.alarms.service import AlarmError
from shequ.core.cases import attachments, policy
from shequ.core.cases import service as cases
from shequ.core.cases.policy import user_department
from shequ.core.cases.query import is_overdue
from shequ.core.cases.schemas import CaseActionIn
from shequ.core.cases.service import CaseError
from shequ.core.errors import FieldError
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot import twin_read
from shequ.core.places.routes import picker_levels
from shequ.core.plugins import DEPARTMENTS
from shequ.platforms.grid import service
from shequ.web import i18n, nav
from shequ.web.deps import PageUser, SessionDep, ensure_can, lang_of, render
from shequ.web.records import MAX_ID
from shequ.web.security import csrf_protect

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="case id")]
AlarmId = Annotated[int, Path(ge=1, le=MAX_ID, description="alarm id")]
Action = Annotated[str, Path(max_length=20)]
ALARM_ACTIONS = ("ack", "clear", "case")
KEPT = ("grid_id", "class_code", "overdue")  # the board's filters, kept across an action

i18n.extend({
    "grid.title": ("网格中台", "Grid platform"),
    "grid.board": ("案件看板", "Case board"),
    "grid.board_total": ("在办 {total} 件", "{total} open"),
    "grid.col.reported": ("待受理", "Reported"),
    "grid.col.registered": ("已立案", "Registered"),
    "grid.col.dispatched": ("已派遣", "Dispatched"),
    "grid.col.handled": ("已处置 / 已反馈", "Handled / fed back"),
    "grid.col.verified": ("已核实", "Verified"),
    "grid.more": ("全部 {n} 件", "All {n}"),
    "grid.column_empty": ("暂无", "None"),
    "grid.redispatch": ("改派", "Re-dispatch"),
    "grid.dispatch_to": ("派往部门", "Send to"),
    "grid.co_pick": ("联动部门（可多选）", "Co-handling departments (one or more)"),
    "grid.open": ("详情", "Details"),
    "grid.done": ("工单 {code} 已{action}，当前阶段：{stage}", "Case {code}: {action} done; stage now {stage}"),
    "grid.alarm_done.ack": ("告警已确认：{title}", "Alarm acknowledged: {title}"),
    "grid.alarm_done.clear": ("告警已清除：{title}", "Alarm cleared: {title}"),
    "grid.alarm_done.case": ("告警已转工单：{title}", "Case opened from the alarm: {title}"),
    "grid.alarms": ("告警台", "Alarm console"),
    "grid.alarms_summary": ("未清除 {active} 条 · 未确认 {unacked} 条", "Active {active} · unacknowledged {unacked}"),
    "grid.alarms_none": ("范围内没有未清除的告警。", "No active alarms in your area."),
    "grid.alarms_all": ("全部告警", "All alarms"),
    "grid.alarm_case": ("工单", "Case"),
    "grid.live": ("每 10 秒刷新", "Refreshes every 10 s"),
    "grid.search": ("一网搜索", "Search"),
    "grid.search_hint": ("姓名、完整身份证号或手机号、地址、名称、编号",
                         "Name, a full ID or mobile number, address, name or code"),
    "grid.search_go": ("搜索", "Search"),
    "grid.search_total": ("“{q}”共找到 {total} 条", "{total} results for “{q}”"),
    "grid.search_none": ("没有找到“{q}”。", "Nothing found for “{q}”."),
    "grid.search_first": ("仅显示前 {n} 条", "showing the first {n}"),
    "grid.search_masked": ("个人信息已脱敏；完整信息请在档案页按规定查看。",
                           "Personal data is masked; see the full record on its profile page where allowed."),
    **{f"grid.kind.{k}": v for k, v in {
        "person": ("人口", "People"), "house": ("房屋", "Houses"), "place": ("地址与场所", "Places"),
        "organisation": ("组织", "Organisations"), "facility": ("设施", "Facilities"),
        "device": ("物联设备", "Devices"), "case": ("事件工单", "Cases"), "alarm": ("告警", "Alarms")}.items()},
    "grid.patrol": ("巡查上报", "Patrol report"),
    "grid.patrol_intro": ("在地图上点选问题位置，填写情况并拍照上传。", "Pick the spot on the map, describe it and add photos."),
    "grid.photos": ("现场照片（JPEG/PNG/WebP，可多张，每张 ≤ 10 MB）", "Photos (JPEG/PNG/WebP, one or more, ≤ 10 MB each)"),
    "grid.point": ("位置", "Location"),
    "grid.map_hint": ("点击地图选定位置", "Click the map to set the location"),
    "grid.point_none": ("尚未选定位置", "No location yet"),
    "grid.point_at": ("已选位置", "Chosen location"),
    "grid.nearest": ("最近楼栋", "Nearest building"),
    "grid.my_position": ("使用我的位置", "Use my position"),
    "grid.no_position": ("无法获取您的位置", "Your position is not available"),
    "grid.or_place": ("或选择地点（优先于地图位置）", "Or choose a place (takes precedence over the map)"),
    "grid.no_map": ("此浏览器无法显示地图，请选择地点。", "This browser cannot show the map; choose a place instead."),
    "grid.submit": ("提交上报", "Submit report"),
    "grid.field.title": ("标题", "Title"),
    "grid.field.class_code": ("事件类别", "Case class"),
    "grid.field.description": ("情况描述", "Description"),
    "grid.field.photos": ("照片", "Photos"),
    "grid.field.point": ("位置", "Location"),
    "grid.field.place": ("地点", "Place"),
    "grid.fix": ("请修改标出的字段：{fields}", "Please correct the marked fields: {fields}"),
})


# --- who may use the level ----------------------------------------------------------------------

def ensure_grid(user: User, *permissions: str) -> User:
    """403 unless the user's role works at the grid level and holds every permission."""
    if user.role not in nav.LEVEL_ROLES["grid"]:
        raise HTTPException(status_code=403, detail=f"无权限 (the grid level is not for role {user.role})")
    return ensure_can(user, *permissions)


def _grid_user(permission: str) -> Any:
    def check(user: PageUser) -> User:
        return ensure_grid(user, permission)

    return check


BoardUser = Annotated[User, Depends(_grid_user(iam.CASE_READ))]
ConsoleUser = Annotated[User, Depends(_grid_user(iam.ALARM_READ))]
Reporter = Annotated[User, Depends(_grid_user(iam.CASE_REPORT))]
Searcher = Annotated[User, Depends(_grid_user(iam.READ))]


# --- the board ----------------------------------------------------------------------------------

def _filters(query: Mapping[str, str], names: Mapping[str, str]) -> tuple[service.BoardFilters, dict[str, str]]:
    """The board's filters from the query string, and the message of each one refused."""
    errors: dict[str, str] = {}
    raw_grid = (query.get("grid_id") or "").strip()
    grid_id = None
    if raw_grid:
        if raw_grid.isdigit() and 1 <= int(raw_grid) <= MAX_ID:
            grid_id = int(raw_grid)
        else:
            errors["grid_id"] = f"应为网格编号，收到 {raw_grid[:20]!r}（a grid id）"
    class_code = (query.get("class_code") or "").strip() or None
    if class_code is not None and not any(code.startswith(class_code) for code in names):
        errors["class_code"] = f"没有类别 {class_code[:20]!r}（unknown case class）"
        class_code = None
    raw_overdue = (query.get("overdue") or "").strip().lower()
    if raw_overdue not in ("", "true", "false", "1", "0", "on"):
        errors["overdue"] = "应为 true 或 false（true or false）"
    return service.BoardFilters(grid_id, class_code, raw_overdue in ("true", "1", "on")), errors


def _kept(query: Mapping[str, str] | str) -> dict[str, str]:
    """The board filters of a query (a mapping or a query string), for the way back."""
    items = dict(parse_qsl(query)) if isinstance(query, str) else dict(query)
    return {k: v for k, v in items.items() if k in KEPT and v and len(v) <= 40}


def _console_context(request: Request, session: Session, user: User) -> dict[str, Any]:
    lang = lang_of(request)
    may_handle = iam.can(user, iam.ALARM_HANDLE)
    may_case = may_handle and iam.can(user, iam.CASE_REPORT)
    return {"console": service.alarm_console(session=session), "may_handle": may_handle, "may_case": may_case,
            "sev_class": SEVERITY_CLASS, "age": lambda since: age(since, lang),
            "back": urlencode(_kept(request.query_params)),
            "alarm_classes": (sorted(service.class_names(session=session, lang=lang).items()) if may_case else []),
            "unacked_states": (ACTIVE_UNACK, CLEARED_UNACK), "active_states": (ACTIVE_UNACK, ACTIVE_ACK)}


def _board(request: Request, session: Session, user: User, *, error: str = "", status_code: int = 200,
           done: dict[str, Any] | None = None) -> Response:
    lang = lang_of(request)
    names = service.class_names(session=session, lang=lang)
    filters, errors = _filters(request.query_params, names)
    raw_focus = request.query_params.get("case") or ""
    focus_id = int(raw_focus) if raw_focus.isdigit() and 1 <= int(raw_focus) <= MAX_ID else None
    department = user_department(user)
    found = service.board(session=session, filters=filters, department=department, focus_case_id=focus_id)
    if done is None:
        done = _done(request, session, found.focus)
    context: dict[str, Any] = {
        "board": found, "names": names, "grids": service.grids(session=session), "departments": DEPARTMENTS,
        "f": {k: request.query_params.get(k) or "" for k in KEPT}, "filter_errors": errors,
        "actions": lambda case: service.quick_actions(user, case), "overdue": is_overdue,
        "list_query": urlencode({k: v for k, v in _kept(request.query_params).items() if k != "overdue"}
                                | ({"overdue": "true"} if filters.overdue else {})),
        "back": urlencode(_kept(request.query_params)), "focus_id": found.focus.id if found.focus else None,
        "my_department": department, "error": error, "done": done, "may_search": iam.can(user, iam.READ),
        "may_report": iam.can(user, iam.CASE_REPORT), "show_console": iam.can(user, iam.ALARM_READ),
    }
    if context["show_console"]:
        context.update(_console_context(request, session, user))
    status = status_code if status_code != 200 else (422 if errors else 200)
    return render(request, "grid/board.html", status_code=status, **context)


def _done(request: Request, session: Session, focus: Any) -> dict[str, Any] | None:
    """What the last action did, for the message at the top of the board."""
    action = request.query_params.get("done") or ""
    if action in service.QUICK_ACTIONS and focus is not None:
        return {"kind": "case", "action": action, "code": focus.code, "stage": focus.stage, "id": focus.id}
    raw_alarm = request.query_params.get("alarm") or ""
    if action in ALARM_ACTIONS and raw_alarm.isdigit() and int(raw_alarm) <= MAX_ID:
        alarm = alarms.get_alarm(session=session, alarm_id=int(raw_alarm))
        if alarm is not None:
            return {"kind": "alarm", "action": action, "title": alarm.title, "id": alarm.id,
                    "case_id": alarm.case_id}
    return None


@router.get("/grid")
def board_page(request: Request, session: SessionDep, user: BoardUser) -> Response:
    return _board(request, session, user)


@router.get("/grid/alarms")
def console_partial(request: Request, session: SessionDep, user: ConsoleUser) -> Response:
    """The alarm console alone: the board polls it every 10 s."""
    return render(request, "grid/_alarms.html", **_console_context(request, session, user))


def _back_to_board(back: str, **extra: Any) -> str:
    query = urlencode({**_kept(back), **{k: str(v) for k, v in extra.items()}})
    anchor = f"#case-{extra['case']}" if "case" in extra else ""
    return f"/grid?{query}{anchor}"


@router.post("/grid/cases/{case_id:int}/{action}")
async def case_action(request: Request, case_id: CaseId, action: Action, session: SessionDep,
                      user: PageUser) -> Response:
    """A card's quick action (register, dispatch, co-handle, handle, feed back, verify, close)."""
    case = cases.get_case(session=session, case_id=case_id)
    if case is None:
        raise HTTPException(status_code=404, detail=f"工单 {case_id} 不存在 (not found)")
    ensure_grid(user, iam.CASE_READ)
    form = await request.form()
    back = str(form.get("back") or "")
    try:
        if action not in service.QUICK_ACTIONS:
            raise CaseError("action", f"看板上没有 {action[:20]!r} 操作，请在工单页办理（not a board action; use the case page）")
        body = CaseActionIn.model_validate({
            "note": str(form.get("note") or ""), "department": str(form.get("department") or "") or None,
            "departments": [d for d in form.getlist("departments") if isinstance(d, str) and d]})
        with session.begin_nested():
            policy.take_action(session=session, user=user, case=case, action=action, body=body)
    except policy.CaseForbidden as exc:
        raise HTTPException(status_code=403, detail=f"无权限 (not allowed: {exc.what})") from None
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _board(request, session, user, error=f"{case.code} {message}", status_code=422)
    except CaseError as exc:
        return _board(request, session, user, error=f"{case.code} {exc.field}: {exc.message}", status_code=422)
    return RedirectResponse(_back_to_board(back, case=case.id, done=action), status_code=303)


@router.post("/grid/alarms/{alarm_id:int}/{action}")
async def alarm_action(request: Request, alarm_id: AlarmId, action: Action, session: SessionDep,
                       user: PageUser) -> Response:
    """The console's buttons: acknowledge, clear, turn into a case."""
    alarm = alarms.get_alarm(session=session, alarm_id=alarm_id)
    if alarm is None:
        raise HTTPException(status_code=404, detail=f"告警 {alarm_id} 不存在 (alarm not found)")
    ensure_grid(user, iam.ALARM_HANDLE, *((iam.CASE_REPORT,) if action == "case" else ()))
    form = await request.form()
    back = str(form.get("back") or "")
    note = str(form.get("note") or "")
    try:
        if action not in ALARM_ACTIONS:
            raise AlarmError("action", f"{action[:20]!r} 不是告警台的操作，可用：{', '.join(ALARM_ACTIONS)}（not a console action）")
        if len(note) > 1000 or "\x00" in note:
            raise AlarmError("note", "最多 1000 字，且不含 NUL（at most 1000 characters, no NUL）")
        with session.begin_nested():  # a case refused half-way leaves nothing behind
            if action == "ack":
                alarms.acknowledge(session=session, alarm=alarm, actor=user.username, note=note)
            elif action == "clear":
                alarms.clear(session=session, alarm=alarm, actor=user.username, note=note)
            else:
                class_code = str(form.get("class_code") or "")
                if not class_code:
                    raise AlarmError("class_code", "请选择事件类别（choose a case class）")
                department = str(form.get("department") or "") or None
                alarms.open_case(session=session, alarm=alarm, class_code=class_code, actor=user.username,
                                 department=department, dispatch=form.get("dispatch") in ("1", "on", "true"))
    except (AlarmError, CaseError) as exc:
        return _board(request, session, user, error=f"{alarm.title} {exc.field}: {exc.message}", status_code=422)
    return RedirectResponse(_back_to_board(back, alarm=alarm.id, done=action), status_code=303)


# --- patrol reports -----------------------------------------------------------------------------

def _patrol(request: Request, session: Session, user: User, *, values: Mapping[str, str] | None = None,
            errors: Mapping[str, str] | None = None) -> Response:
    lang = lang_of(request)
    v = {k: str((values or {}).get(k) or "") for k in ("title", "class_code", "description", "lon", "lat", "place")}
    public_only = not iam.can(user, iam.CASE_READ)
    zh = lang.startswith("zh")
    classes = [(k.code, k.name if zh or not k.name_en else k.name_en, k.major)
               for k in cases.list_classes(session=session, public_only=public_only)]
    place_id = int(v["place"]) if v["place"].isdigit() and int(v["place"]) <= MAX_ID else None
    picker = iam.can(user, iam.READ)
    bounds = service.subdistrict_bounds(session=session)
    return render(request, "grid/patrol.html", status_code=422 if errors else 200, v=v, classes=classes,
                  errors=dict(errors or {}), bounds=",".join(f"{b:.6f}" for b in bounds) if bounds else "",
                  picker=picker, place_id=place_id or "",
                  levels=picker_levels(session=session, place_id=place_id, lang=lang) if picker else [])


@router.get("/grid/patrol")
def patrol_page(request: Request, session: SessionDep, user: Reporter) -> Response:
    return _patrol(request, session, user)


@router.get("/grid/patrol/buildings")
def patrol_buildings(session: SessionDep, user: Reporter) -> Response:
    """The buildings in the user's scope as GeoJSON, for the patrol map."""
    return JSONResponse(twin_read.buildings_geojson(session), headers={"Cache-Control": "no-store"})


@router.post("/grid/patrol")
async def patrol_post(request: Request, session: SessionDep, user: Reporter) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    photos = []
    for item in form.getlist("photos"):
        if isinstance(item, UploadFile):
            data = await item.read(attachments.MAX_BYTES + 1)
            photos.append(service.Photo(item.filename or "", data))
    try:
        with session.begin_nested():  # nothing stays when a photo is refused late
            case = service.report_patrol(session=session, user=user, title=values.get("title", ""),
                                         class_code=values.get("class_code", ""),
                                         description=values.get("description", ""), lon=values.get("lon", ""),
                                         lat=values.get("lat", ""), place=values.get("place", ""), photos=photos)
    except service.PatrolRejected as exc:
        return _patrol(request, session, user, values=values, errors=exc.errors)
    except FieldError as exc:  # a check further down (the case service, the file store)
        return _patrol(request, session, user, values=values, errors={exc.field: exc.message})
    return RedirectResponse(f"/cases/{case.id}", status_code=303)


# --- one search box -----------------------------------------------------------------------------

@router.get("/grid/search")
def search_page(request: Request, session: SessionDep, user: Searcher,
                q: Annotated[str, Query(max_length=200)] = "") -> Response:
    kinds = [k for k in service.SEARCH_KINDS if not (
        (k == "case" and not iam.can(user, iam.CASE_READ)) or (k == "alarm" and not iam.can(user, iam.ALARM_READ))
        or (k == "device" and not iam.can(user, iam.DEVICE_READ)))]
    error = ""
    groups: list[service.Group] = []
    try:
        groups = service.search(session=session, q=q, kinds=kinds, department=user_department(user),
                                lang=lang_of(request))
    except FieldError as exc:
        error = f"{exc.field}: {exc.message}"
    return render(request, "grid/search.html", status_code=422 if error else 200, q=q.strip(), groups=groups,
                  error=error, total=sum(g.total for g in groups), limit=service.SEARCH_LIMIT)
