"""S02's pages (/elevator: ledger, statistics, detail with actions) and API (/api/v1/elevator/…).

Thin: a route reads its parameters, finds the detection or camera through the scoped session
(404 when out of scope, like a missing one), checks the permission, and calls ``service``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from shequ.core.alarms.routes import age
from shequ.core.errors import FieldError
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot.models import Device, DeviceCommand
from shequ.scenarios.s02_elevator import service
from shequ.scenarios.s02_elevator.models import Detection
from shequ.scenarios.s02_elevator.rules import FALSE_REASONS, VERDICTS
from shequ.scenarios.s02_elevator.schemas import (
    BuildingCount,
    CameraStats,
    ClearIn,
    ClearOut,
    CommandOut,
    DetectionOut,
    DetectionPage,
    IntercomIn,
    StatsOut,
    VerdictIn,
)
from shequ.web import i18n
from shequ.web.deps import ApiUser, PageUser, SessionDep, ensure_can, found, lang_of, render
from shequ.web.records import MAX_ID
from shequ.web.security import csrf_protect

router = APIRouter()
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api/v1/elevator", tags=["elevator"])

DetectionId = Annotated[int, Path(ge=1, le=MAX_ID, description="detection id")]
DeviceId = Annotated[int, Path(ge=1, le=MAX_ID, description="elevator camera (device) id")]
PAGE_SIZE = 50
FILTERS = ("start", "end", "building_id", "device_id", "verdict", "blocked")

i18n.extend({
    "elevator.title": ("安全梯控", "Elevator e-bike block"),
    "elevator.intro": ("电梯摄像机识别到电动车时自动阻梯（梯门保持开启）并语音劝离；电动车离开后释放。",
                       "When an elevator camera recognises an e-bike, the doors are held open and a voice "
                       "warns; they are released when it leaves."),
    "elevator.ledger": ("识别台账", "Detection ledger"),
    "elevator.stats": ("统计", "Statistics"),
    "elevator.by_hour": ("按时段（上海时间）", "By hour of day (Shanghai time)"),
    "elevator.by_building": ("按楼栋", "By building"),
    "elevator.by_elevator": ("按电梯与识别准确率", "By elevator, with precision"),
    "elevator.precision": ("准确率", "Precision"),
    "elevator.precision_hint": ("准确率 = 确认 ÷（确认 + 误报），待研判不计。",
                                "Precision = confirmed ÷ (confirmed + false); pending ones are left out."),
    "elevator.summary": ("识别 {total} 次 · 确认 {confirmed} · 误报 {false} · 待研判 {pending} · 低于阈值 {below}",
                         "{total} detections · {confirmed} confirmed · {false} false · {pending} pending · "
                         "{below} below the threshold"),
    "elevator.start": ("开始日期", "From"),
    "elevator.end": ("结束日期", "To"),
    "elevator.building": ("楼栋", "Building"),
    "elevator.elevator": ("电梯", "Elevator"),
    "elevator.camera": ("摄像机", "Camera"),
    "elevator.verdict": ("研判", "Verdict"),
    "elevator.blocked": ("阻梯", "Blocked"),
    "elevator.blocked_yes": ("已阻梯", "blocked"),
    "elevator.blocked_no": ("低于阈值，未阻梯", "below the threshold, not blocked"),
    "elevator.detected_at": ("识别时间", "Detected"),
    "elevator.confidence": ("置信度", "Confidence"),
    "elevator.snapshot": ("抓拍", "Snapshot"),
    "elevator.left_at": ("离开时间", "Left"),
    "elevator.held_at": ("阻梯时间", "Doors held"),
    "elevator.released": ("释放", "Released"),
    "elevator.alarm": ("告警", "Alarm"),
    "elevator.count": ("次数", "Count"),
    "elevator.hour": ("时", "Hour"),
    "elevator.none": ("该时段没有识别记录。", "No detections in this period."),
    "elevator.v.pending": ("待研判", "pending"),
    "elevator.v.confirmed": ("确认电动车", "confirmed"),
    "elevator.v.false": ("误报", "false"),
    "elevator.reason": ("误报原因", "Why false"),
    "elevator.note": ("说明", "Note"),
    "elevator.mark_confirmed": ("确认为电动车", "Confirm: an e-bike"),
    "elevator.mark_false": ("标记误报", "Mark false"),
    "elevator.intercom": ("远程喊话", "Remote intercom"),
    "elevator.intercom_text": ("喊话内容", "What to say"),
    "elevator.intercom_default": ("请将电动自行车推出电梯，谢谢配合。", "Please take the e-bike out of the lift, thank you."),
    "elevator.send": ("发送", "Send"),
    "elevator.clear": ("远程解除", "Remote clearing"),
    "elevator.clear_hint": ("释放梯门并清除该电梯的电动车告警", "Release the doors and clear this elevator's e-bike alarm"),
    "elevator.commands": ("联动与命令", "Linkage and commands"),
    "elevator.command": ("命令", "Command"),
    "elevator.status": ("状态", "Status"),
    "elevator.by": ("操作人", "By"),
    "elevator.at": ("时间", "Time"),
    "elevator.back": ("返回台账", "Back to the ledger"),
    "elevator.done.verdict": ("已保存研判", "Verdict saved"),
    "elevator.done.intercom": ("喊话已发送", "Intercom message sent"),
    "elevator.done.clear": ("已远程解除", "Remotely cleared"),
    "elevator.fix": ("请修改：{msg}", "Please correct: {msg}"),
    "elevator.cmd.hold_doors": ("保持梯门开启", "hold doors"),
    "elevator.cmd.release_doors": ("释放梯门", "release doors"),
    "elevator.cmd.voice_warning": ("语音提醒", "voice warning"),
    "elevator.cmd.intercom": ("远程喊话", "intercom"),
    **{f"elevator.reason.{code}": (zh, en) for code, zh, en in FALSE_REASONS},
})


# --- shared -----------------------------------------------------------------------------------

def _detection(session: Session, detection_id: int) -> Detection:
    return found(service.get_detection(session=session, detection_id=detection_id), "识别记录", detection_id)


def _camera(session: Session, device_id: int) -> Device:
    return found(service.get_camera(session=session, device_id=device_id), "电梯摄像机", device_id)


def _api_detection(detection_id: DetectionId, session: SessionDep, user: ApiUser) -> Detection:
    return _detection(session, detection_id)


def _api_camera(device_id: DeviceId, session: SessionDep, user: ApiUser) -> Device:
    return _camera(session, device_id)


# found before the body is read: a record out of scope is 404 whatever the body says
ApiDetection = Annotated[Detection, Depends(_api_detection)]
ApiCamera = Annotated[Device, Depends(_api_camera)]


def _int(raw: str | None, name: str) -> int | None:
    value = (raw or "").strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        raise service.ElevatorError(name, f"应为编号，收到 {value[:20]!r}（an id）")
    return int(value)


def _filters(query: Mapping[str, str | None]) -> service.Filters:
    """The ledger's filters from a query (raises ElevatorError naming the field)."""
    start, end = service.period(start=service.parse_day(query.get("start"), "start"),
                                end=service.parse_day(query.get("end"), "end"))
    verdict = (query.get("verdict") or "").strip() or None
    if verdict is not None and verdict not in VERDICTS:
        raise service.ElevatorError("verdict", f"应为 {' | '.join(VERDICTS)}（one of {', '.join(VERDICTS)}）")
    raw_blocked = (query.get("blocked") or "").strip().lower()
    if raw_blocked not in ("", "true", "false"):
        raise service.ElevatorError("blocked", "应为 true 或 false（true or false）")
    return service.Filters(start=start, end=end, building_id=_int(query.get("building_id"), "building_id"),
                           device_id=_int(query.get("device_id"), "device_id"), verdict=verdict,
                           blocked=None if not raw_blocked else raw_blocked == "true")


def _out(d: Detection, names: service.Names) -> DetectionOut:
    return DetectionOut(
        id=d.id, device_id=d.device_id, elevator=names.elevator(d), facility_id=d.facility_id,
        building_id=d.building_id, building=names.building(d), detected_at=d.detected_at, confidence=d.confidence,
        snapshot=d.snapshot, blocked=d.blocked, left_at=d.left_at, doors_held_at=d.doors_held_at,
        released_at=d.released_at, released_by=d.released_by, alarm_id=d.alarm_id, verdict=d.verdict,
        reason=d.reason, verdict_note=d.verdict_note, verdict_by=d.verdict_by, verdict_at=d.verdict_at)


def _stats_out(s: service.Stats) -> StatsOut:
    return StatsOut(start=s.start, end=s.end, total=s.total, below_threshold=s.below_threshold,
                    confirmed=s.confirmed, false=s.false, pending=s.pending, precision=s.precision,
                    by_hour=s.by_hour,
                    by_building=[BuildingCount(building_id=b, building=label, count=n) for b, label, n in s.by_building],
                    cameras=[CameraStats(device_id=c.device_id, elevator=c.elevator, building=c.building,
                                         detections=c.detections, confirmed=c.confirmed, false=c.false,
                                         pending=c.pending, precision=c.precision) for c in s.cameras],
                    false_reasons=s.false_reasons)


def _command_out(c: DeviceCommand) -> CommandOut:
    return CommandOut(id=c.id, device_id=c.device_id, name=c.name, args=dict(c.args or {}), status=c.status,
                      created_at=c.created_at, actor=c.actor)


# --- API --------------------------------------------------------------------------------------

@api.get("/detections", response_model=DetectionPage, summary="The detection ledger in the user's scope, newest first",
         description="start and end: local dates (Asia/Shanghai) YYYY-MM-DD, end included (default: the last 30 "
                     "days); verdict: pending | confirmed | false; blocked: true (reached the threshold) | false.")
def list_detections(session: SessionDep, user: ApiUser,
                    start: Annotated[str | None, Query(max_length=10)] = None,
                    end: Annotated[str | None, Query(max_length=10)] = None,
                    building_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    device_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    verdict: Annotated[str | None, Query(max_length=10)] = None,
                    blocked: bool | None = None,
                    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                    size: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE) -> Any:
    ensure_can(user, iam.ALARM_READ)
    filters = _filters({"start": start, "end": end, "verdict": verdict,
                        "blocked": None if blocked is None else str(blocked).lower(),
                        "building_id": str(building_id or ""), "device_id": str(device_id or "")})
    found = service.list_detections(session=session, filters=filters, page=page, size=size)
    names = service.names_of(session=session, rows=found.items)
    return DetectionPage(items=[_out(d, names) for d in found.items], total=found.total, page=found.page,
                         size=found.size)


@api.get("/detections/{detection_id:int}", response_model=DetectionOut, summary="One detection")
def get_detection(found: ApiDetection, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.ALARM_READ)
    return _out(found, service.names_of(session=session, rows=[found]))


@api.get("/stats", response_model=StatsOut, summary="Detections by hour of day, building and elevator; precision "
                                                    "per camera",
         description="start and end: local dates YYYY-MM-DD, end included (default: the last 30 days).")
def get_stats(session: SessionDep, user: ApiUser,
              start: Annotated[str | None, Query(max_length=10)] = None,
              end: Annotated[str | None, Query(max_length=10)] = None,
              building_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Any:
    ensure_can(user, iam.ALARM_READ)
    a, b = service.period(start=service.parse_day(start, "start"), end=service.parse_day(end, "end"))
    return _stats_out(service.stats(session=session, start=a, end=b, building_id=building_id))


@api.post("/detections/{detection_id:int}/verdict", response_model=DetectionOut,
          summary="研判: confirm a detection or mark it false (with the reason); false clears its alarm")
def post_verdict(found: ApiDetection, body: VerdictIn, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.ALARM_HANDLE)
    service.set_verdict(session=session, detection=found, verdict=body.verdict, reason=body.reason, note=body.note,
                        actor=user.username)
    return _out(found, service.names_of(session=session, rows=[found]))


@api.post("/cameras/{device_id:int}/intercom", response_model=CommandOut,
          summary="远程喊话: the operator's words played in the car")
def post_intercom(camera: ApiCamera, body: IntercomIn, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.DEVICE_COMMAND)
    return _command_out(service.intercom(session=session, device=camera, text=body.text, actor=user.username))


@api.post("/cameras/{device_id:int}/clear", response_model=ClearOut,
          summary="远程解除: release the doors and clear the elevator's e-bike alarm")
def post_clear(camera: ApiCamera, session: SessionDep, user: ApiUser, body: ClearIn | None = None) -> Any:
    ensure_can(user, iam.DEVICE_COMMAND)
    done = service.remote_clear(session=session, device=camera, actor=user.username, note=body.note if body else "")
    return ClearOut(command=_command_out(done.command), alarm_id=done.alarm.id if done.alarm else None,
                    released=done.released)


# --- pages ------------------------------------------------------------------------------------

def _page_user(user: PageUser) -> User:
    return ensure_can(user, iam.ALARM_READ)


Reader = Annotated[User, Depends(_page_user)]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _bars(values: list[int], width: int = 100) -> list[int]:
    """Bar lengths (0…width) for counts, the largest filling the width."""
    top = max(values) if values else 0
    return [round(v * width / top) if top else 0 for v in values]


@pages.get("/elevator")
def index_page(request: Request, session: SessionDep, user: Reader) -> Response:
    query = {k: request.query_params.get(k) for k in FILTERS}
    error = ""
    try:
        filters = _filters(query)
    except FieldError as exc:
        error = f"{exc.field}: {exc.message}"
        filters = _filters({})
    raw_page = request.query_params.get("page") or "1"
    page_no = int(raw_page) if raw_page.isdigit() and 1 <= int(raw_page) <= 100_000 else 1
    found = service.list_detections(session=session, filters=filters, page=page_no, size=PAGE_SIZE)
    names = service.names_of(session=session, rows=found.items)
    assert filters.start is not None and filters.end is not None
    st = service.stats(session=session, start=filters.start, end=filters.end, building_id=filters.building_id)
    kept = {k: v for k, v in query.items() if v}
    return render(request, "s02_elevator/index.html", status_code=422 if error else 200, error=error,
                  page=found, rows=found.items, names=names, stats=st, pct=_pct,
                  hour_bars=_bars(st.by_hour), building_bars=_bars([n for _b, _l, n in st.by_building]),
                  f={k: v or "" for k, v in query.items()}, verdicts=VERDICTS,
                  buildings=st.by_building, cameras=st.cameras,
                  prev_url="/elevator?" + urlencode({**kept, "page": page_no - 1}),
                  next_url="/elevator?" + urlencode({**kept, "page": page_no + 1}))


def _detail(request: Request, session: Session, user: User, found: Detection, *, error: str = "",
            status_code: int = 200) -> Response:
    lang = lang_of(request)
    names = service.names_of(session=session, rows=[found])
    done = request.query_params.get("done") or ""
    return render(request, "s02_elevator/detail.html", status_code=status_code, d=found, names=names,
                  error=error, done=done if done in ("verdict", "intercom", "clear") else "",
                  commands=service.commands_for(session=session, detection=found), reasons=FALSE_REASONS,
                  may_judge=iam.can(user, iam.ALARM_HANDLE), may_command=iam.can(user, iam.DEVICE_COMMAND),
                  age=lambda since: age(since, lang))


@pages.get("/elevator/detections/{detection_id:int}")
def detail_page(request: Request, detection_id: DetectionId, session: SessionDep, user: PageUser) -> Response:
    found = _detection(session, detection_id)
    ensure_can(user, iam.ALARM_READ)
    return _detail(request, session, user, found)


@pages.post("/elevator/detections/{detection_id:int}/verdict")
async def verdict_page(request: Request, detection_id: DetectionId, session: SessionDep,
                       user: PageUser) -> Response:
    found = _detection(session, detection_id)
    ensure_can(user, iam.ALARM_HANDLE)
    form = await request.form()
    try:
        body = VerdictIn.model_validate({"verdict": str(form.get("verdict") or ""),
                                         "reason": str(form.get("reason") or "") or None,
                                         "note": str(form.get("note") or "")})
        service.set_verdict(session=session, detection=found, verdict=body.verdict, reason=body.reason,
                            note=body.note, actor=user.username)
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _detail(request, session, user, found, error=message, status_code=422)
    except FieldError as exc:
        return _detail(request, session, user, found, error=f"{exc.field}: {exc.message}", status_code=422)
    return RedirectResponse(f"/elevator/detections/{found.id}?done=verdict", status_code=303)


async def _camera_action(request: Request, session: Session, user: User, device_id: int, action: str) -> Response:
    camera = _camera(session, device_id)
    ensure_can(user, iam.DEVICE_COMMAND)
    form = await request.form()
    raw = str(form.get("detection") or "")
    back = int(raw) if raw.isdigit() and 1 <= int(raw) <= MAX_ID else None
    found = service.get_detection(session=session, detection_id=back) if back else None
    try:
        if action == "intercom":
            service.intercom(session=session, device=camera, text=str(form.get("text") or ""), actor=user.username)
        else:
            service.remote_clear(session=session, device=camera, actor=user.username, note=str(form.get("note") or ""))
    except FieldError as exc:
        if found is None:
            return render(request, "error.html", status_code=422, message=f"{exc.field}: {exc.message}")
        return _detail(request, session, user, found, error=f"{exc.field}: {exc.message}", status_code=422)
    target = f"/elevator/detections/{found.id}" if found is not None else f"/elevator?device_id={camera.id}"
    return RedirectResponse(f"{target}{'&' if '?' in target else '?'}done={action}", status_code=303)


@pages.post("/elevator/cameras/{device_id:int}/intercom")
async def intercom_page(request: Request, device_id: DeviceId, session: SessionDep, user: PageUser) -> Response:
    return await _camera_action(request, session, user, device_id, "intercom")


@pages.post("/elevator/cameras/{device_id:int}/clear")
async def clear_page(request: Request, device_id: DeviceId, session: SessionDep, user: PageUser) -> Response:
    return await _camera_action(request, session, user, device_id, "clear")


router.include_router(pages)
router.include_router(api)
