"""S11's pages (``/care``: today's homes, ``/care/plans/{id}``: a plan and its contacts) and API (``/api/v1/care/…``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from shequ.core.alarms import service as alarms
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.places.models import Place
from shequ.core.registry.models import Person
from shequ.scenarios.s11_care import service
from shequ.scenarios.s11_care.judge import local_day
from shequ.scenarios.s11_care.rules import ALARM_TITLES, CHECKIN_WAYS, GROUPS, PAUSE_REASONS
from shequ.scenarios.s11_care.schemas import CheckinOut, ContactOut, PlanOut
from shequ.web import i18n
from shequ.web.deps import (
    PageUser,
    SessionDep,
    client_ip,
    found,
    lang_of,
    render,
    require,
)
from shequ.web.records import MAX_ID
from shequ.web.security import csrf_protect

pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
api = APIRouter(prefix="/api/v1/care", tags=["S11 老人关怀 living-alone care"])
router = APIRouter()

PageReader = Annotated[User, Depends(require(iam.ALARM_READ, api=False))]
PageHandler = Annotated[User, Depends(require(iam.ALARM_HANDLE, api=False))]
ApiReader = Annotated[User, Depends(require(iam.ALARM_READ, api=True))]
PlanId = Annotated[int, Path(ge=1, le=MAX_ID, description="care plan id")]
ContactId = Annotated[int, Path(ge=1, le=MAX_ID, description="contact id")]
AlarmId = Annotated[int, Path(ge=1, le=MAX_ID, description="alarm id")]

i18n.extend({
    "care.title": ("老人关怀", "Living-alone care"),
    "care.today": ("今日关怀", "Today's homes"),
    "care.committee": ("居委", "Committee"),
    "care.switch": ("切换", "Switch"),
    "care.person": ("对象", "Person"),
    "care.signs": ("传感器", "Sensors"),
    "care.last_motion": ("最近活动", "last motion"),
    "care.last_door": ("最近开门", "last door"),
    "care.water_24h": ("24小时用水", "water in 24 h"),
    "care.alarm": ("告警与升级", "Alarm and escalation"),
    "care.checkin": ("今日签到", "Check-in today"),
    "care.no_checkin": ("未签到", "not yet"),
    "care.rate": ("误报率（次/50天）", "False alarms per 50 days"),
    "care.overall": ("全部 {n} 户 · 误报 {rate} 次/50天", "{n} homes · {rate} false alarms per 50 days"),
    "care.none": ("没有关怀对象。", "No homes are watched."),
    "care.never": ("无", "none"),
    "care.paused": ("暂停：{reason}", "paused: {reason}"),
    "care.until": ("至 {at}", "until {at}"),
    "care.phone": ("电话签到", "Phone check-in"),
    "care.visit": ("上门签到", "Visit check-in"),
    "care.answered": ("已接通", "Answered"),
    "care.all_well": ("平安", "All well"),
    "care.false": ("误报", "False alarm"),
    "care.reason": ("误报原因", "Why false"),
    "care.plan": ("关怀计划", "Care plan"),
    "care.edit": ("计划", "Plan"),
    "care.save": ("保存", "Save"),
    "care.saved": ("已保存。", "Saved."),
    "care.group": ("人群", "Group"),
    "care.home": ("住址", "Home"),
    "care.devices": ("设备", "Devices"),
    "care.thresholds": ("阈值", "Thresholds"),
    "care.no_motion_hours": ("白天无活动（小时）", "No motion (daytime hours)"),
    "care.day_start": ("白天开始", "Day starts"),
    "care.day_end": ("白天结束", "Day ends"),
    "care.no_door_hours": ("未开门（小时）", "Door shut (hours)"),
    "care.away_hours": ("外出未归（小时）", "Out, not back (hours)"),
    "care.water_hours": ("用水窗口（白天小时）", "Water window (daytime hours)"),
    "care.water_min_m3": ("最低用水（m³）", "Minimum water (m³)"),
    "care.call_wait_min": ("每次呼叫等待（分钟）", "Wait per call (min)"),
    "care.committee_wait_min": ("居委处置时限（分钟）", "Committee has (min)"),
    "care.note": ("备注", "Note"),
    "care.pause": ("报备外出/住院（暂停）", "Report an absence (pause)"),
    "care.pause_reason": ("原因", "Reason"),
    "care.pause_until": ("预计返回日期", "Back on"),
    "care.resume": ("恢复监测", "Resume"),
    "care.contacts": ("紧急联系人", "Contacts"),
    "care.contact_name": ("姓名", "Name"),
    "care.relation": ("关系", "Relation"),
    "care.contact_phone": ("电话", "Phone"),
    "care.add_contact": ("添加联系人", "Add a contact"),
    "care.remove": ("删除", "Remove"),
    "care.chain": ("升级记录", "Escalation steps"),
    "care.step.call_person": ("呼叫本人", "call the person"),
    "care.step.call_contact": ("呼叫联系人", "call a contact"),
    "care.step.committee": ("通知居委", "tell the committee"),
    "care.step.case": ("派单社区服务办", "case to 社区服务办"),
    "care.step.stop": ("停止", "stopped"),
    "care.checkins": ("签到记录", "Check-ins"),
    "care.status.active": ("监测中", "watching"),
    "care.status.paused": ("已暂停", "paused"),
})


def _label(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    zh, en = table.get(key, (key, key))
    return zh if lang.startswith("zh") else en


def _committees(session: Any) -> list[Place]:
    return list(session.scalars(select(Place).where(Place.kind == "committee").order_by(Place.code)))


def _plan_or_404(session: Any, plan_id: int) -> Any:
    return found(service.get_plan(session=session, plan_id=plan_id), "关怀计划", plan_id)


def _alarm_or_404(session: Any, alarm_id: int, user: User) -> Any:
    return found(alarms.get_alarm(session=session, alarm_id=alarm_id), "告警", alarm_id,
                 user=user, permission=iam.ALARM_HANDLE)


def _back(raw: str, fallback: str = "/care") -> str:
    target = str(raw or "")
    if target.startswith("/care") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def _ms_time(ms: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC) if ms else None


# --- pages ----------------------------------------------------------------------------------


@pages.get("/care")
def care_page(request: Request, session: SessionDep, user: PageReader,
              committee: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Response:
    options = _committees(session)
    chosen = next((c for c in options if c.id == committee), None) if committee else None
    if committee and chosen is None:
        raise HTTPException(status_code=404, detail=f"居委 {committee} 不存在 (not found)")
    plans = service.list_plans(session=session, committee_id=chosen.id if chosen else None)
    rows = service.home_rows(session=session, plans=plans)
    lang = lang_of(request)
    return render(request, "s11_care/index.html", rows=rows, committees=options, committee=chosen,
                  overall=service.overall_rate(rows), titles=ALARM_TITLES, groups=GROUPS,
                  reasons=PAUSE_REASONS, ways=CHECKIN_WAYS, lbl=lambda table, key: _label(table, key, lang),
                  when=_ms_time, may_handle=iam.can(user, iam.ALARM_HANDLE))


@pages.get("/care/plans/{plan_id}")
def plan_page(request: Request, plan_id: PlanId, session: SessionDep, user: PageReader,
              message: str = "") -> Response:
    plan = _plan_or_404(session, plan_id)
    lang = lang_of(request)
    [row] = service.home_rows(session=session, plans=[plan])
    chains = {a.id: service.chain_of(session=session, alarm_id=a.id) for a in row.alarms}
    return render(request, "s11_care/plan.html", row=row, plan=plan,
                  contacts=service.contacts_of(session=session, plan_id=plan.id),
                  devices=service.devices_of(session=session, plan=plan), chains=chains,
                  checkins=service.list_checkins(session=session, plan_id=plan.id, limit=30),
                  groups=GROUPS, reasons=PAUSE_REASONS, ways=CHECKIN_WAYS, titles=ALARM_TITLES,
                  lbl=lambda table, key: _label(table, key, lang), when=_ms_time,
                  may_handle=iam.can(user, iam.ALARM_HANDLE), may_unmask=iam.can(user, iam.UNMASK),
                  message=message)


def _to_plan(plan_id: int, message: str = "saved") -> RedirectResponse:
    return RedirectResponse(f"/care/plans/{plan_id}?{urlencode({'message': message})}", status_code=303)


@pages.post("/care/plans/{plan_id}")
def save_plan(plan_id: PlanId, session: SessionDep, user: PageHandler,
              no_motion_hours: Annotated[str, Form()] = "", day_start: Annotated[str, Form()] = "",
              day_end: Annotated[str, Form()] = "", no_door_hours: Annotated[str, Form()] = "",
              away_hours: Annotated[str, Form()] = "", water_hours: Annotated[str, Form()] = "",
              water_min_m3: Annotated[str, Form()] = "", call_wait_min: Annotated[str, Form()] = "",
              committee_wait_min: Annotated[str, Form()] = "",
              note: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    plan = _plan_or_404(session, plan_id)
    given = {"no_motion_hours": no_motion_hours, "day_start": day_start, "day_end": day_end,
             "no_door_hours": no_door_hours, "away_hours": away_hours, "water_hours": water_hours,
             "water_min_m3": water_min_m3, "call_wait_min": call_wait_min,
             "committee_wait_min": committee_wait_min}
    values: dict[str, Any] = {k: v.strip() for k, v in given.items() if v.strip()}
    if note is not None:
        values["note"] = note
    service.update_plan(session=session, plan=plan, values=values)
    return _to_plan(plan.id)


@pages.post("/care/plans/{plan_id}/pause")
def pause(plan_id: PlanId, session: SessionDep, user: PageHandler, reason: Annotated[str, Form()] = "",
          until: Annotated[str, Form()] = "", note: Annotated[str, Form(max_length=200)] = "") -> Response:
    plan = _plan_or_404(session, plan_id)
    back_on = None
    if until.strip():
        try:
            day = dt.date.fromisoformat(until.strip())
        except ValueError:
            raise service.CareError("until", f"{until[:20]!r} is not a date (YYYY-MM-DD)") from None
        back_on = dt.datetime.combine(day, dt.time(0), dt.timezone(dt.timedelta(hours=8))).astimezone(dt.UTC)
    service.pause_plan(session=session, plan=plan, reason=reason, until=back_on, actor=user.username, note=note)
    return _to_plan(plan.id, "paused")


@pages.post("/care/plans/{plan_id}/resume")
def resume(plan_id: PlanId, session: SessionDep, user: PageHandler) -> Response:
    plan = _plan_or_404(session, plan_id)
    service.resume_plan(session=session, plan=plan, actor=user.username)
    return _to_plan(plan.id, "resumed")


@pages.post("/care/plans/{plan_id}/contacts")
def add_contact(plan_id: PlanId, session: SessionDep, user: PageHandler,
                name: Annotated[str, Form(max_length=50)] = "", phone: Annotated[str, Form(max_length=20)] = "",
                relation: Annotated[str, Form(max_length=20)] = "") -> Response:
    plan = _plan_or_404(session, plan_id)
    service.add_contact(session=session, plan=plan, name=name, phone=phone, relation=relation)
    return _to_plan(plan.id, "contact added")


def _contact_or_404(session: Any, contact_id: int) -> Any:
    contact = service.get_contact(session=session, contact_id=contact_id)
    if contact is None:
        raise HTTPException(status_code=404, detail=f"联系人 {contact_id} 不存在 (not found)")
    return contact


@pages.post("/care/contacts/{contact_id}/delete")
def remove_contact(contact_id: ContactId, session: SessionDep, user: PageHandler) -> Response:
    contact = _contact_or_404(session, contact_id)
    plan_id = contact.plan_id
    service.remove_contact(session=session, contact=contact)
    return _to_plan(plan_id, "contact removed")


@pages.post("/care/contacts/{contact_id}/unmask")
def unmask(request: Request, contact_id: ContactId, session: SessionDep, user: PageReader,
           purpose: Annotated[str, Form(max_length=300)] = "") -> Response:
    contact = _contact_or_404(session, contact_id)
    try:
        value = service.unmask_contact(session=session, user=user, contact=contact, purpose=purpose,
                                       ip=client_ip(request))
    except PermissionError as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    return render(request, "registry/_unmasked.html", field="phone", value=value, error="")


@pages.post("/care/plans/{plan_id}/checkin")
def checkin(plan_id: PlanId, session: SessionDep, user: PageHandler, how: Annotated[str, Form()] = "",
            note: Annotated[str, Form(max_length=300)] = "", back: Annotated[str, Form()] = "") -> Response:
    plan = _plan_or_404(session, plan_id)
    service.check_in(session=session, plan=plan, how=how, actor=user.username, note=note)
    return RedirectResponse(_back(back, f"/care/plans/{plan.id}"), status_code=303)


@pages.post("/care/alarms/{alarm_id}/answer")
def answer(alarm_id: AlarmId, session: SessionDep, user: PageUser, outcome: Annotated[str, Form()] = "",
           note: Annotated[str, Form(max_length=300)] = "", back: Annotated[str, Form()] = "") -> Response:
    alarm = _alarm_or_404(session, alarm_id, user)
    service.record_answer(session=session, alarm=alarm, outcome=outcome, actor=user.username, note=note)
    return RedirectResponse(_back(back), status_code=303)


@pages.post("/care/alarms/{alarm_id}/false")
def false_alarm(alarm_id: AlarmId, session: SessionDep, user: PageUser,
                reason: Annotated[str, Form(max_length=300)] = "", back: Annotated[str, Form()] = "") -> Response:
    alarm = _alarm_or_404(session, alarm_id, user)
    service.mark_false(session=session, alarm=alarm, reason=reason, actor=user.username)
    return RedirectResponse(_back(back), status_code=303)


# --- API ------------------------------------------------------------------------------------


@api.get("/plans", response_model=list[PlanOut], summary="Care plans in your areas (phones masked)")
def api_plans(session: SessionDep, user: ApiReader,
              committee: Annotated[int | None, Query(ge=1, le=MAX_ID, description="committee id")] = None) -> Any:
    plans = service.list_plans(session=session, committee_id=committee)
    rows = service.home_rows(session=session, plans=plans)
    names: dict[int, str] = dict(session.execute(select(Person.id, Person.name).where(
        Person.id.in_([p.person_id for p in plans] or [0]))).all())
    out = []
    for row in rows:
        p, s = row.plan, row.signs
        out.append(PlanOut(
            id=p.id, person_id=p.person_id, person_name=names.get(p.person_id, ""), group=p.group,
            place_id=p.place_id, committee_id=p.committee_id, status=p.status, pause_reason=p.pause_reason,
            paused_until=p.paused_until, no_motion_hours=p.no_motion_hours, day_start=p.day_start,
            day_end=p.day_end, no_door_hours=p.no_door_hours, away_hours=p.away_hours, water_hours=p.water_hours,
            water_min_m3=p.water_min_m3, call_wait_min=p.call_wait_min, committee_wait_min=p.committee_wait_min,
            last_motion_at=_ms_time(s.last_motion_ms if s else None),
            last_door_at=_ms_time(s.last_door_ms if s else None),
            water_24h_m3=None if row.water_24h is None else round(row.water_24h, 4),
            active_alarms=[a.type for a in row.alarms], false_alarms=row.false_alarms,
            false_alarms_per_50_days=None if row.rate is None else round(row.rate, 3),
            contacts=[ContactOut(id=c.id, name=c.name, relation=c.relation, phone_mask=c.phone_mask, order=c.order)
                      for c in service.contacts_of(session=session, plan_id=p.id)]))
    return out


@api.get("/checkins", response_model=list[CheckinOut], summary="Check-ins of one day (default today)")
def api_checkins(session: SessionDep, user: ApiReader,
                 day: Annotated[dt.date | None, Query(description="YYYY-MM-DD, Asia/Shanghai")] = None,
                 plan_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Any:
    when = day or local_day(int(dt.datetime.now(dt.UTC).timestamp() * 1000))
    rows = service.list_checkins(session=session, day=when, plan_id=plan_id)
    return [CheckinOut(id=c.id, plan_id=c.plan_id, person_id=c.person_id, day=c.day, how=c.how, by=c.by, note=c.note,
                       at=c.at) for c in rows]


router.include_router(pages)
router.include_router(api)
