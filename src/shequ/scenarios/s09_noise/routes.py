"""S09's pages (/noise, /noise/monitors/{device}, /noise/zones) and API (/api/v1/noise/…); thin."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from shequ.core.errors import FieldError
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot.models import Device
from shequ.core.places.models import Place
from shequ.scenarios.s09_noise import rules, service
from shequ.scenarios.s09_noise.schemas import ReportOut, SettingsIn, ZoneIn, ZoneOut
from shequ.web import i18n
from shequ.web.deps import (
    SessionDep,
    api_user,
    found,
    lang_of,
    page_user,
    render,
    require,
)
from shequ.web.records import MAX_ID
from shequ.web.security import csrf_protect

pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api/v1/noise", tags=["noise"])

PageReader = Annotated[User, Depends(require(iam.DEVICE_READ, api=False))]
PageManager = Annotated[User, Depends(require(iam.RULE_MANAGE, api=False))]
PageUser = Annotated[User, Depends(page_user)]
ApiReader = Annotated[User, Depends(require(iam.DEVICE_READ, api=True))]
ApiManager = Annotated[User, Depends(require(iam.RULE_MANAGE, api=True))]
ApiUser = Annotated[User, Depends(api_user)]
DeviceRef = Annotated[str, Path(min_length=1, max_length=64, description="the monitor's code or id")]
PlaceId = Annotated[int, Path(ge=1, le=MAX_ID, description="a grid, committee, compound or street place")]
TimeParam = Annotated[str | None, Query(max_length=40, description="ISO 8601 with an offset")]

i18n.extend({
    "noise.title": ("噪音管理", "Noise"),
    "noise.monitors": ("噪声监测仪", "Noise monitors"),
    "noise.zones": ("声环境功能区", "Noise zones"),
    "noise.device": ("监测仪", "Monitor"),
    "noise.position": ("位置", "Position"),
    "noise.area": ("所在区域", "Area"),
    "noise.class": ("功能区类别", "Class"),
    "noise.latest": ("最近一分钟", "Latest minute"),
    "noise.limit": ("限值", "Limit"),
    "noise.alarms": ("未清除告警", "Active alarms"),
    "noise.none": ("范围内没有噪声监测仪。", "No noise monitor in your area."),
    "noise.no_data": ("暂无数据", "No data yet"),
    "noise.over": ("超标", "over"),
    "noise.ok": ("达标", "within"),
    "noise.day": ("昼间", "day"),
    "noise.night": ("夜间", "night"),
    "noise.report": ("监测报告", "Report"),
    "noise.period": ("时段", "Period"),
    "noise.start": ("开始", "Start"),
    "noise.end": ("结束", "End"),
    "noise.show": ("查看", "Show"),
    "noise.readings": ("有效分钟数", "Minutes with data"),
    "noise.minutes_over": ("超标分钟数", "Minutes over the limit"),
    "noise.by_class": ("按功能区", "By class"),
    "noise.minutes": ("分钟", "Minutes"),
    "noise.chart": ("每分钟等效声级与限值", "LAeq per minute and the limit"),
    "noise.chart_bucket": ("每点为 {n} 分钟的能量平均", "each point is the energy mean of {n} minutes"),
    "noise.complaints": ("附近居民噪声投诉", "Residents' noise complaints nearby"),
    "noise.complaints_none": ("该时段监测位置附近没有噪声投诉。", "No noise complaint near the monitor in this period."),
    "noise.distance": ("距离", "Distance"),
    "noise.reported": ("上报时间", "Reported"),
    "noise.stage": ("阶段", "Stage"),
    "noise.back": ("返回监测仪列表", "Back to the monitors"),
    "noise.formula": ("LAeq 为能量平均；L10/L50/L90 为 10%/50%/90% 时间超过的声级（排序后线性插值）；"
                      "LAmax 取各分钟最大声级（缺失时取该分钟 LAeq）。",
                      "LAeq is the energy mean; L10/L50/L90 are the levels exceeded 10/50/90 % of the time "
                      "(linear interpolation between sorted minutes); LAmax is the largest minute LAmax "
                      "(a minute without one counts its LAeq)."),
    "noise.limits_note": ("限值取该时段停留分钟最多的功能区；跨功能区时见下表。",
                          "The limits are those of the class with most minutes; see the table when it crossed classes."),
    "noise.zone_own": ("本级设定", "Own class"),
    "noise.zone_inherit": ("未设定（沿用上级或默认）", "Not set (parent's or the default)"),
    "noise.buffer": ("缓冲距离（距道路中心线，米）", "Band (m from the centre line)"),
    "noise.save": ("保存", "Save"),
    "noise.remove": ("取消设定", "Unset"),
    "noise.saved": ("已保存：{name} → {cls}", "Saved: {name} → {cls}"),
    "noise.removed": ("已取消：{name}", "Unset: {name}"),
    "noise.settings": ("判定设置", "Settings"),
    "noise.window_min": ("持续超标判定窗口（分钟）", "Over-limit window (minutes)"),
    "noise.default_class": ("未覆盖区域的默认类别", "Default class where no zone applies"),
    "noise.night_burst_db": ("夜间突发噪声允许超过限值（dB）", "Night burst margin over the limit (dB)"),
    "noise.case_after": ("夜间突发累计几次转工单（0 不转）", "Night bursts before a case (0: never)"),
    "noise.complaint_radius_m": ("投诉关联半径（米）", "Complaint radius (m)"),
    "noise.settings_saved": ("设置已保存", "Settings saved"),
    "noise.kind.grid": ("网格", "Grid"),
    "noise.kind.committee": ("居委", "Committee"),
    "noise.kind.compound": ("小区", "Compound"),
    "noise.kind.street": ("道路", "Street"),
    "noise.all": ("全部", "All"),
    "noise.fix": ("请修改：{detail}", "Please correct: {detail}"),
    **{f"noise.class.{k}": v for k, v in rules.CLASS_NAMES.items()},
})


def _parse_time(value: str | None, name: str, *, local: bool) -> dt.datetime | None:
    """ISO 8601; a browser's offset-less value is Asia/Shanghai on pages, refused by the API."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)  # an unencoded "+" arrives as a space
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise FieldError(name, f"{value!r} is not an ISO 8601 time") from exc
    if when.tzinfo is None and local:
        when = when.replace(tzinfo=service.SHANGHAI)
    return when


def _zone_place(session: Session, place_id: int, user: User) -> Place:
    """404 for a place out of the user's scope (like a missing one), then 403 without rule.manage."""
    return found(service.zone_place(session=session, place_id=place_id), "地点", place_id,
                 user=user, permission=iam.RULE_MANAGE)


def _monitor(session: Session, ref: str, user: User) -> Device:
    """404 for a monitor out of the user's scope (like a missing one), then 403 without device.read."""
    return found(service.find_monitor(session=session, ref=ref), "噪声监测仪", ref,
                 user=user, permission=iam.DEVICE_READ)


def _api_monitor(session: SessionDep, user: ApiUser, device: DeviceRef) -> Device:
    return _monitor(session, device, user)


def _page_monitor(session: SessionDep, user: PageUser, device: DeviceRef) -> Device:
    return _monitor(session, device, user)


def _api_zone(session: SessionDep, user: ApiUser, place_id: PlaceId) -> Place:
    return _zone_place(session, place_id, user)


ApiMonitor = Annotated[Device, Depends(_api_monitor)]
PageMonitor = Annotated[Device, Depends(_page_monitor)]
ApiZonePlace = Annotated[Place, Depends(_api_zone)]


# --- pages -------------------------------------------------------------------------------------

@pages.get("/noise")
def monitors_page(request: Request, session: SessionDep, user: PageReader) -> Response:
    return render(request, "s09_noise/index.html", rows=service.monitors(session=session),
                  limits=rules.LIMITS)


@pages.get("/noise/monitors/{device}")
def monitor_page(request: Request, session: SessionDep, monitor: PageMonitor,
                 start: TimeParam = None, end: TimeParam = None) -> Response:
    now = dt.datetime.now(service.SHANGHAI).replace(second=0, microsecond=0)
    error = ""
    try:
        t0 = _parse_time(start, "start", local=True) or now - dt.timedelta(hours=24)
        t1 = _parse_time(end, "end", local=True) or now + dt.timedelta(minutes=1)
        t0, t1 = service.check_period(t0, t1)
    except FieldError as exc:
        error = str(exc)
        t0, t1 = (now - dt.timedelta(hours=24)).astimezone(dt.UTC), (now + dt.timedelta(minutes=1)).astimezone(dt.UTC)
    view = service.monitor_view(session=session, device=monitor, start=t0, end=t1)
    return render(request, "s09_noise/monitor.html", status_code=422 if error else 200, device=monitor,
                  error=error, **view,
                  start=t0.astimezone(service.SHANGHAI).strftime("%Y-%m-%dT%H:%M"),
                  end=t1.astimezone(service.SHANGHAI).strftime("%Y-%m-%dT%H:%M"))


@pages.get("/noise/zones")
def zones_page(request: Request, session: SessionDep, user: PageReader,
               kind: Annotated[str | None, Query(pattern="^(grid|committee|compound|street)$")] = None,
               done: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    return render(request, "s09_noise/zones.html", rows=service.zones(session=session, kind=kind), kind=kind,
                  classes=rules.CLASSES, settings=service.tenant_settings(session=session),
                  can_manage=iam.can(user, iam.RULE_MANAGE), done=done or "", error="")


def _back(kind: str | None, done: str) -> str:
    query = {k: v for k, v in (("kind", kind), ("done", done)) if v}
    return "/noise/zones" + (f"?{urlencode(query)}" if query else "")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


@pages.post("/noise/zones/{place_id}")
async def zone_form(request: Request, session: SessionDep, user: PageUser, place_id: PlaceId) -> Response:
    _zone_place(session, place_id, user)
    form = await _form(request)
    kind = form.get("kind") if form.get("kind") in service.ZONE_KINDS else None
    lang = lang_of(request)
    try:
        if form.get("remove"):
            service.remove_zone(session=session, place_id=place_id)
            name = next((r["name"] for r in service.zones(session=session) if r["place_id"] == place_id), str(place_id))
            return RedirectResponse(_back(kind, i18n.t("noise.removed", lang, name=name)), status_code=303)
        buffer_text = form.get("buffer_m", "").strip()
        try:
            buffer_m = float(buffer_text) if buffer_text else None
        except ValueError as exc:
            raise FieldError("buffer_m", f"{buffer_text!r} is not a number") from exc
        zone = service.set_zone(session=session, place_id=place_id, noise_class=form.get("noise_class", ""),
                                buffer_m=buffer_m, note=form.get("note", ""))
    except FieldError as exc:
        return render(request, "s09_noise/zones.html", status_code=422, rows=service.zones(session=session, kind=kind),
                      kind=kind, classes=rules.CLASSES, settings=service.tenant_settings(session=session),
                      can_manage=True, done="", error=i18n.t("noise.fix", lang, detail=str(exc)), error_field=exc.field)
    name = next((r["name"] for r in service.zones(session=session) if r["place_id"] == place_id), str(place_id))
    return RedirectResponse(_back(kind, i18n.t("noise.saved", lang, name=name, cls=zone.noise_class)), status_code=303)


@pages.post("/noise/settings")
async def settings_form(request: Request, session: SessionDep, user: PageManager) -> Response:
    form = await _form(request)
    lang = lang_of(request)
    try:
        body = SettingsIn.model_validate({k: form[k] for k in SettingsIn.model_fields if k in form})
        service.update_settings(session=session, **body.model_dump())
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "form"
        return render(request, "s09_noise/zones.html", status_code=422, rows=service.zones(session=session),
                      kind=None, classes=rules.CLASSES, settings=service.tenant_settings(session=session),
                      can_manage=True, done="", error=i18n.t("noise.fix", lang, detail=f"{field}: {err['msg']}"),
                      error_field=field)
    return RedirectResponse(_back(None, i18n.t("noise.settings_saved", lang)), status_code=303)


# --- API ---------------------------------------------------------------------------------------

@api.get("/monitors", summary="Noise monitors in scope: latest judged minute and active S09 alarms")
def list_monitors(session: SessionDep, user: ApiReader) -> list[dict[str, Any]]:
    out = []
    for row in service.monitors(session=session):
        d, m = row["device"], row["minute"]
        out.append({"id": d.id, "code": d.code, "name": d.name, "area": row["area"],
                    "latest": None if m is None else {
                        "ts": m.ts.isoformat(), "laeq": round(m.laeq, 1), "lamax": m.lamax, "lon": m.lon,
                        "lat": m.lat, "noise_class": m.noise_class, "period": m.period, "limit": m.limit_db,
                        "over": m.over},
                    "alarms": [{"id": a.id, "type": a.type, "severity": a.severity, "title": a.title}
                               for a in row["alarms"]]})
    return out


@api.get("/monitors/{device}/report", response_model=ReportOut,
         summary="A monitor's report over [start, end): LAeq, LAmax, L10/L50/L90, Ld, Ln, limits, minutes over",
         description="start and end: ISO 8601 with an offset (e.g. 2026-12-01T22:00:00+08:00); "
                     "422 naming start or end when missing, without an offset or reversed. Levels are null "
                     "when the monitor sent nothing in the period.")
def monitor_report(session: SessionDep, monitor: ApiMonitor, start: TimeParam = None, end: TimeParam = None) -> Any:
    t0 = _parse_time(start, "start", local=False)
    t1 = _parse_time(end, "end", local=False)
    t0, t1 = service.check_period(t0, t1)
    return service.report(session=session, device=monitor, start=t0, end=t1)


@api.get("/zones", response_model=list[ZoneOut], summary="Places that may carry a GB 3096 class, with their own")
def list_zones(session: SessionDep, user: ApiReader,
               kind: Annotated[str | None, Query(pattern="^(grid|committee|compound|street)$")] = None) -> Any:
    return service.zones(session=session, kind=kind)


@api.put("/zones/{place_id}", response_model=ZoneOut, summary="Set an area's (or a street band's) GB 3096 class")
def put_zone(session: SessionDep, place: ApiZonePlace, body: ZoneIn) -> Any:
    service.set_zone(session=session, place_id=place.id, noise_class=body.noise_class, buffer_m=body.buffer_m,
                     note=body.note)
    return next(r for r in service.zones(session=session) if r["place_id"] == place.id)


@api.delete("/zones/{place_id}", status_code=204, summary="Unset an area's own class (its parent's or the default applies)")
def delete_zone(session: SessionDep, place: ApiZonePlace) -> Response:
    if not service.remove_zone(session=session, place_id=place.id):
        raise HTTPException(status_code=404, detail=f"place {place.id} has no class of its own")
    return Response(status_code=204)


@api.get("/settings", summary="The tenant's S09 settings (window, default class, night margin, case, radius)")
def get_settings(session: SessionDep, user: ApiReader) -> dict[str, Any]:
    return service.tenant_settings(session=session)


@api.put("/settings", summary="Change the tenant's S09 settings")
def put_settings(session: SessionDep, user: ApiManager, body: SettingsIn) -> dict[str, Any]:
    return service.update_settings(session=session, **body.model_dump())


router = APIRouter()
router.include_router(pages)
router.include_router(api)
