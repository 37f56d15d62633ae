"""S03 pages (/charging, /charging/sites/{id}) and API (/api/v1/charging/sites…): thin, reads only.

A route that names a site first finds it through the scoped session (404 when out of scope,
like a missing one) and only then checks the level and the permission.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from shequ.core.alarms.routes import SEVERITY_CLASS
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot.types import get_type
from shequ.core.registry.models import Facility
from shequ.scenarios.s03_charging import schemas, service
from shequ.web import i18n, nav
from shequ.web.deps import ApiUser, PageUser, SessionDep, ensure_can, lang_of, render, require
from shequ.web.records import MAX_ID

router = APIRouter()

FacilityId = Annotated[int, Path(ge=1, le=MAX_ID, description="the charging site's facility id")]
Days = Annotated[int, Query(ge=1, le=90, description="the period: the last this many days")]
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many sessions")]

i18n.extend({
    "charging.title": ("放心充电", "Safe charging"),
    "charging.intro": ("各充电场所的实时状态、利用率与告警；烟感报警时自动切断场所配电箱并核查喷淋。",
                       "Live state, utilisation and incidents of every charging site; smoke cuts the site's "
                       "power box and the sprinkler is checked."),
    "charging.period": ("统计周期", "Period"),
    "charging.days": ("最近 {n} 天", "Last {n} days"),
    "charging.site": ("充电场所", "Charging site"),
    "charging.sites": ("充电场所 {n} 处", "{n} charging sites"),
    "charging.none": ("范围内没有充电场所。", "No charging sites in your area."),
    "charging.piles": ("充电桩", "Piles"),
    "charging.charging_now": ("充电中 {n}/{total} 桩", "{n}/{total} piles charging"),
    "charging.ports": ("端口", "Ports"),
    "charging.box": ("配电箱", "Power box"),
    "charging.power_on": ("供电中", "On"),
    "charging.power_off": ("已断电", "Cut"),
    "charging.power_unknown": ("未上报", "Not reported"),
    "charging.sprinkler": ("喷淋", "Sprinkler"),
    "charging.sprinkler.none": ("未设", "None"),
    "charging.sprinkler.armed": ("待命", "Armed"),
    "charging.sprinkler.flowing": ("喷淋中", "Discharging"),
    "charging.sprinkler.not_armed": ("未待命", "Not armed"),
    "charging.sprinkler.offline": ("离线", "Offline"),
    "charging.sprinkler.unknown": ("未知", "Unknown"),
    "charging.utilisation": ("利用率", "Utilisation"),
    "charging.energy": ("电量", "Energy"),
    "charging.fees": ("收费", "Fees"),
    "charging.sessions": ("充电记录", "Sessions"),
    "charging.sessions_n": ("{n} 次", "{n}"),
    "charging.incidents": ("告警", "Incidents"),
    "charging.incidents_none": ("无", "None"),
    "charging.active": ("未清除 {n}", "{n} active"),
    "charging.flying_wire": ("疑似飞线充电", "Suspected flying-wire charging"),
    "charging.flying_wire_intro": ("夜间（22:00–06:00）非充电回路持续 30 分钟以上 0.5–4 A 的平稳电流。",
                                   "A steady 0.5–4 A for 30 min or more at night (22:00–06:00) on a circuit "
                                   "that feeds no charger."),
    "charging.flying_wire_none": ("周期内未发现。", "None in the period."),
    "charging.devices": ("场所设备", "Devices at the site"),
    "charging.device": ("设备", "Device"),
    "charging.state": ("状态", "State"),
    "charging.condition": ("工况", "Condition"),
    "charging.daily_energy": ("每日充电量 (kWh)", "Energy per day (kWh)"),
    "charging.pile": ("充电桩", "Pile"),
    "charging.port": ("端口", "Port"),
    "charging.started": ("开始", "Started"),
    "charging.stopped": ("结束", "Stopped"),
    "charging.running": ("充电中", "Charging"),
    "charging.unknown_start": ("未知", "Unknown"),
    "charging.ended_by": ("结束原因", "Ended by"),
    "charging.ended.normal": ("正常结束", "Unplugged"),
    "charging.ended.stopped": ("远程停充", "Stopped remotely"),
    "charging.ended.power_cut": ("断电", "Power cut"),
    "charging.ended.unknown": ("未知", "Unknown"),
    "charging.ended.": ("—", "—"),
    "charging.alarm": ("告警", "Alarm"),
    "charging.raised": ("发生时间", "Raised"),
    "charging.severity": ("级别", "Severity"),
    "charging.status": ("状态", "Status"),
    "charging.back": ("返回充电场所", "Back to the charging sites"),
    "charging.yuan": ("{v} 元", "¥{v}"),
    "charging.no_sessions": ("周期内没有充电记录。", "No sessions in the period."),
    "charging.no_alarms": ("周期内没有告警。", "No incidents in the period."),
    "charging.type.s03_pile_over_temperature": ("充电桩过温", "Pile over-temperature"),
    "charging.type.s03_pile_over_current": ("充电桩过流", "Pile over-current"),
    "charging.type.s03_sprinkler_not_armed": ("喷淋未待命", "Sprinkler not armed"),
    "charging.type.smoke": ("烟感报警", "Smoke"),
    "charging.type.offline": ("设备离线", "Offline"),
})


def _grid_user(user: User, *permissions: str) -> User:
    """403 unless the user works at the grid level and holds the permissions."""
    if user.role not in nav.LEVEL_ROLES["grid"]:
        raise HTTPException(status_code=403, detail=f"无权限 (the grid level is not for role {user.role})")
    return ensure_can(user, *permissions)


def _site(session: Session, facility_id: int) -> Facility:
    site = session.scalar(select(Facility).where(Facility.id == facility_id, Facility.kind == service.STATION))
    if site is None:
        raise HTTPException(status_code=404, detail="没有这个充电场所 (no such charging site)")
    return site


def _type_label(code: str, lang: str) -> str:
    key = f"charging.type.{code}"
    text = i18n.t(key, lang)
    if text != key:
        return text
    dtype = get_type(code)
    if dtype is not None:
        return dtype.name if lang.startswith("zh") else (dtype.name_en or dtype.name)
    return code


def _helpers(lang: str) -> dict[str, Any]:
    return {"type_label": lambda code: _type_label(code, lang), "sev_class": SEVERITY_CLASS,
            "pct": lambda x: f"{x * 100:.1f}%", "yuan": lambda fen: f"{fen / 100:,.2f}"}


# --- pages ----------------------------------------------------------------------------------------

@router.get("/charging", include_in_schema=False)
def charging_page(request: Request, session: SessionDep, user: PageUser, days: Days = 7) -> Response:
    _grid_user(user, iam.DEVICE_READ)
    start, end = service.period(days)
    sites = service.sites(session=session, start=start, end=end)
    wires = service.flying_wire_alarms(session=session, start=start) if iam.can(user, iam.ALARM_READ) else []
    return render(request, "s03_charging/sites.html", sites=sites, wires=wires, days=days, start=start, end=end,
                  day_choices=(1, 7, 30), may_alarms=iam.can(user, iam.ALARM_READ), **_helpers(lang_of(request)))


@router.get("/charging/sites/{facility_id}", include_in_schema=False)
def site_page(request: Request, session: SessionDep, user: PageUser, facility_id: FacilityId,
              days: Days = 7) -> Response:
    site = _site(session, facility_id)
    _grid_user(user, iam.DEVICE_READ)
    start, end = service.period(days)
    [figures] = service.sites(session=session, start=start, end=end, facility_id=site.id)
    may_alarms = iam.can(user, iam.ALARM_READ)
    daily = service.daily_energy(session=session, facility_id=site.id, start=start, end=end)
    return render(request, "s03_charging/site.html", site=figures, days=days, start=start, end=end,
                  day_choices=(1, 7, 30),
                  sessions=service.site_sessions(session=session, facility_id=site.id, start=start, end=end, limit=100),
                  alarms=service.site_alarms(session=session, facility_id=site.id, start=start) if may_alarms else [],
                  may_alarms=may_alarms, daily=daily, daily_max=max([v for _, v in daily] + [0.0]),
                  sprinklers=service.sprinkler_states_of(figures), **_helpers(lang_of(request)))


# --- API --------------------------------------------------------------------------------------------

def _site_out(s: service.SiteFigures) -> schemas.SiteOut:
    f = s.facility
    return schemas.SiteOut(
        id=f.id, code=f.code, name=f.name, ports=s.ports, piles_charging=s.charging_piles, power_on=s.power_on,
        sprinkler=s.sprinkler, sessions=s.sessions, energy_kwh=s.energy_kwh, fee_fen=s.fee_fen,
        utilisation=round(s.utilisation, 4), incidents=s.incidents, active_alarms=s.active_alarms,
        devices=[schemas.SiteDeviceOut(id=d.id, code=d.code, name=d.name, type_code=d.type_code, online=d.online,
                                       condition=d.condition, state=d.attrs) for d in s.devices])


@router.get("/api/v1/charging/sites", response_model=schemas.SiteList, tags=["charging"],
            summary="Charging sites with live state, utilisation, energy, fees and incidents")
def api_sites(session: SessionDep, user: Annotated[User, Depends(require(iam.DEVICE_READ, api=True))],
              days: Days = 7) -> schemas.SiteList:
    start, end = service.period(days)
    items = [_site_out(s) for s in service.sites(session=session, start=start, end=end)]
    return schemas.SiteList(start=start, end=end, items=items, total=len(items))


@router.get("/api/v1/charging/sites/{facility_id}/sessions", response_model=schemas.SessionList, tags=["charging"],
            summary="A charging site's sessions in the period, newest first")
def api_site_sessions(session: SessionDep, user: ApiUser, facility_id: FacilityId, days: Days = 7,
                      limit: Limit = 200) -> schemas.SessionList:
    site = _site(session, facility_id)
    ensure_can(user, iam.DEVICE_READ)
    start, end = service.period(days)
    rows = service.site_sessions(session=session, facility_id=site.id, start=start, end=end, limit=limit)
    items = [schemas.SessionOut(id=r.id, device_id=r.device_id, pile=pile, port=r.port, started_at=r.started_at,
                                stopped_at=r.stopped_at, energy_kwh=r.energy_kwh, fee_fen=r.fee_fen,
                                ended_by=r.ended_by) for r, pile in rows]
    return schemas.SessionList(facility_id=site.id, start=start, end=end, items=items, total=len(items))
