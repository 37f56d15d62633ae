"""S04 pages (/throwing …) and API (/api/v1/throwing/…): thin, reads and writes go through ``service``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from shequ.core.errors import FieldError
from shequ.core.iam.models import User
from shequ.scenarios.s04_throwing import service
from shequ.scenarios.s04_throwing.models import Incident
from shequ.scenarios.s04_throwing.schemas import IncidentList, IncidentOut
from shequ.web import i18n
from shequ.web.deps import PageUser, SessionDep, found, lang_of, render, require
from shequ.web.records import MAX_ID
from shequ.web.security import csrf_protect

SHANGHAI = ZoneInfo("Asia/Shanghai")
router = APIRouter()
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

Reader = Annotated[User, Depends(require("alarm.read", api=False))]
Handler = Annotated[User, Depends(require("alarm.handle", api=False))]
ApiReader = Annotated[User, Depends(require("alarm.read", api=True))]
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="incident id")]
BuildingId = Annotated[int, Path(ge=1, le=MAX_ID, description="building place id")]
Text = Annotated[str, Query(max_length=64)]

i18n.extend({
    "throwing.title": ("高空抛物", "High-altitude throwing"),
    "throwing.incidents": ("抛物事件", "Incidents"),
    "throwing.supervision": ("重点关注", "Targeted supervision"),
    "throwing.supervision_hint": ("90 天内 2 次及以上指向同一房间，或已查实的房间",
                                  "Rooms pointed at twice or more in 90 days, or confirmed"),
    "throwing.none": ("暂无抛物事件。", "No incidents."),
    "throwing.none_watch": ("暂无需要重点关注的房间。", "No room needs targeted supervision."),
    "throwing.at": ("时间", "Time"),
    "throwing.building": ("楼栋", "Building"),
    "throwing.camera": ("摄像机", "Camera"),
    "throwing.floor": ("楼层", "Floor"),
    "throwing.column": ("列", "Column"),
    "throwing.rooms": ("推算房间", "Rooms"),
    "throwing.confidence": ("置信度", "Confidence"),
    "throwing.verdict": ("核实", "Verdict"),
    "throwing.verdict.pending": ("待核实", "To check"),
    "throwing.verdict.confirmed": ("已查实", "Confirmed"),
    "throwing.verdict.false_alarm": ("误报", "False alarm"),
    "throwing.unlocated": ("无法推算", "Not located"),
    "throwing.heatmap": ("楼层 × 时段热力图", "Floor × hour heat map"),
    "throwing.heatmap_total": ("近 {days} 天 {total} 起", "{total} in {days} days"),
    "throwing.hour": ("时", "h"),
    "throwing.count": ("次数", "Incidents"),
    "throwing.last": ("最近", "Last"),
    "throwing.hours": ("发生时段", "Hours"),
    "throwing.advice": ("建议", "Advice"),
    "throwing.advice.refer": ("移交公安", "Refer to the police"),
    "throwing.advice.visit": ("入户约谈", "Home visit"),
    "throwing.advice.watch": ("宣传提醒、重点监控", "Remind and watch"),
    "throwing.incident": ("抛物事件 #{id}", "Incident #{id}"),
    "throwing.trajectory": ("轨迹", "Trajectory"),
    "throwing.estimate": ("推算结果", "Estimate"),
    "throwing.evidence": ("证据", "Evidence"),
    "throwing.video": ("录像片段", "Video clip"),
    "throwing.release": ("抛出点", "Release"),
    "throwing.fit": ("拟合", "Fit"),
    "throwing.alarm": ("告警", "Alarm"),
    "throwing.case": ("工单", "Case"),
    "throwing.save": ("保存", "Save"),
    "throwing.note": ("说明", "Note"),
    "throwing.filter": ("筛选", "Filter"),
    "throwing.start": ("开始", "From"),
    "throwing.end": ("结束", "To"),
    "throwing.today": ("今日", "Today"),
    "throwing.month": ("近30天", "30 days"),
    "throwing.pending": ("待核实", "To check"),
})


def _when(name: str, value: str | None) -> dt.datetime | None:
    """An ISO 8601 time of a query parameter (without an offset: Asia/Shanghai)."""
    if value is None or value == "":
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise FieldError(name, f"{value!r} is not an ISO 8601 time") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=SHANGHAI)
    return when.astimezone(dt.UTC)


def _filters(session: Session, device: str | None, building: str | None, start: str | None,
             end: str | None, limit: int = 100) -> service.IncidentFilter:
    f = service.IncidentFilter(start=_when("start", start), end=_when("end", end), limit=limit)
    if f.start and f.end and f.end <= f.start:
        raise FieldError("end", "must be after start")
    if device:
        f.device_id = service.resolve_device(session=session, ref=device)
        if f.device_id is None:
            raise FieldError("device", f"no facade camera {device!r}")
    if building:
        f.building_id = service.resolve_building(session=session, ref=building)
        if f.building_id is None:
            raise FieldError("building", f"no building {building!r}")
    return f


def _out(incident: Incident, names: dict[str, dict[int, str]]) -> IncidentOut:
    return IncidentOut(
        id=incident.id, at=incident.at, device=names["devices"].get(incident.device_id or 0),
        building=incident.building_id, building_name=names["buildings"].get(incident.building_id or 0, ""),
        located=incident.located, reason=incident.reason, floor=incident.floor, column=incident.column,
        unit=incident.unit, rooms=list(incident.rooms or []), room_numbers=list(incident.room_numbers or []),
        confidence=incident.confidence, video=incident.video, verdict=incident.verdict,
        alarm_id=incident.alarm_id, case_id=incident.case_id)


@router.get("/api/v1/throwing/incidents", response_model=IncidentList, tags=["throwing"])
def api_incidents(session: SessionDep, user: ApiReader,
                  device: Annotated[str | None, Query(max_length=64, description="camera code or id")] = None,
                  building: Annotated[str | None, Query(max_length=64, description="building id or code")] = None,
                  start: Annotated[str | None, Query(max_length=40, description="ISO 8601, from")] = None,
                  end: Annotated[str | None, Query(max_length=40, description="ISO 8601, before")] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Any:
    """高空抛物事件: floor, column, rooms and confidence of each, newest first."""
    f = _filters(session, device, building, start, end, limit)  # a FieldError is a 422 naming the parameter
    rows, total = service.list_incidents(session=session, filters=f)
    names = service.labels(session=session, incidents=rows)
    return IncidentList(items=[_out(i, names) for i in rows], total=total)


@pages.get("/throwing")
def index_page(request: Request, session: SessionDep, user: Reader, device: Text = "", building: Text = "",
               start: Annotated[str, Query(max_length=40)] = "",
               end: Annotated[str, Query(max_length=40)] = "") -> Response:
    error, field = "", ""
    try:
        f = _filters(session, device or None, building or None, start or None, end or None, 200)
    except FieldError as exc:
        error, field, f = exc.message, exc.field, service.IncidentFilter(limit=200)
    rows, total = service.list_incidents(session=session, filters=f)
    names = service.labels(session=session, incidents=rows)
    watch = service.supervision(session=session)
    watch_names = service.labels(session=session, incidents=[Incident(building_id=w.building_id) for w in watch])
    return render(request, "s04_throwing/index.html", status_code=422 if error else 200,
                  items=[_out(i, names) for i in rows], total=total, watch=watch, watch_names=watch_names,
                  error=error, field=field, q={"device": device, "building": building, "start": start, "end": end})


@pages.get("/throwing/buildings/{building_id:int}")
def building_page(request: Request, session: SessionDep, user: PageUser, building_id: BuildingId,
                  days: Annotated[int, Query(ge=1, le=3660)] = 90) -> Response:
    now = dt.datetime.now(dt.UTC)
    heat = service.heat_map(session=session, building_id=building_id, start=now - dt.timedelta(days=days), end=now)
    heat = found(heat, "楼栋", building_id, user=user, permission="alarm.read")
    rows, _total = service.list_incidents(session=session, filters=service.IncidentFilter(
        building_id=building_id, limit=50))
    names = service.labels(session=session, incidents=rows)
    return render(request, "s04_throwing/building.html", heat=heat, days=days,
                  items=[_out(i, names) for i in rows])


def _svg(incident: Incident) -> dict[str, Any]:
    """The trajectory drawn in facade metres (x right, z up) on a 0..W × 0..H canvas."""
    fit = incident.fit or {}
    pts = [p for p in incident.points or [] if isinstance(p, dict)
           and all(isinstance(p.get(k), int | float) and not isinstance(p.get(k), bool) for k in ("x", "z"))]
    release = fit.get("release") or {}
    xs = [float(p["x"]) for p in pts] + ([release["x"]] if "x" in release else [])
    zs = [float(p["z"]) for p in pts] + ([release["z"]] if "z" in release else [])
    if not xs:
        return {"points": "", "w": 1, "h": 1, "release": None, "dots": []}
    x0, x1 = min(xs) - 3, max(xs) + 3
    top = max(zs) + 3
    scale = 300.0 / max(top, 1.0)
    w = (x1 - x0) * scale

    def at(x: float, z: float) -> tuple[float, float]:
        return round((x - x0) * scale, 1), round((top - z) * scale, 1)

    dots = [at(float(p["x"]), float(p["z"])) for p in pts]
    return {"points": " ".join(f"{a},{b}" for a, b in dots), "dots": dots, "w": round(max(w, 60), 1),
            "h": round(top * scale, 1), "release": at(release["x"], release["z"]) if "x" in release else None}


@pages.get("/throwing/incidents/{incident_id:int}")
def incident_page(request: Request, session: SessionDep, user: PageUser, incident_id: IncidentId) -> Response:
    incident = found(service.get_incident(session=session, incident_id=incident_id), "高空抛物事件", incident_id,
                     user=user, permission="alarm.read")
    names = service.labels(session=session, incidents=[incident])
    return render(request, "s04_throwing/incident.html", i=_out(incident, names), fit=incident.fit or {},
                  svg=_svg(incident), lang_=lang_of(request))


@pages.post("/throwing/incidents/{incident_id:int}/verdict")
async def verdict_post(request: Request, session: SessionDep, user: Handler, incident_id: IncidentId) -> Response:
    if service.get_incident(session=session, incident_id=incident_id) is None:
        raise HTTPException(status_code=404, detail="no such incident")
    form = await request.form()
    service.set_verdict(session=session, incident_id=incident_id, verdict=str(form.get("verdict", "")),
                        actor=user.username, note=str(form.get("note", "")))
    return RedirectResponse(f"/throwing/incidents/{incident_id}", status_code=303)


router.include_router(pages)
