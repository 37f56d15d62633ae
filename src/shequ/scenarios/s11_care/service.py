"""S11's one write path: care plans and contacts, signs of life from ingest, inactivity alarms, the escalation chain, check-ins, reviews."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import Alarm
from shequ.core.errors import FieldError
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot.models import Device
from shequ.core.notify import gateways
from shequ.core.notify import service as notify
from shequ.core.plugins import Tile
from shequ.core.registry.models import Person, Tag, Tagging
from shequ.db import session_scope
from shequ.scenarios.s11_care import judge as j
from shequ.scenarios.s11_care.models import (
    CareContact,
    CarePlan,
    Checkin,
    Escalation,
    Review,
    Signs,
)
from shequ.scenarios.s11_care.rules import (
    ALARM_TITLES,
    CASE_CLASS,
    CHECKIN_WAYS,
    DEFAULT_THRESHOLDS,
    GROUPS,
    INACTIVITY_TYPES,
    LINKED_TYPES,
    OWNER,
    PAUSE_REASONS,
    SCENARIO_ID,
    SEVERITY,
)

log = logging.getLogger(__name__)
ACTOR = "s11"
HOME_TYPES = frozenset({"pir", "door_magnet", "water_meter", "smoke_detector", "gas_detector"})
SIGN_TYPES = frozenset({"pir", "door_magnet", "water_meter"})
STOP_OUTCOMES = ("answered", "all_well")
FALSE_ALARM_DAYS = 50


class CareError(FieldError):
    """A care action its state or the given values do not allow; names the field."""


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def _source(plan_id: int) -> str:
    return f"s11:{plan_id}"


# --- plans and contacts ---------------------------------------------------------------------


def get_plan(*, session: Session, plan_id: int) -> CarePlan | None:
    """A plan in the session's tenant and scope (None when missing or out of scope)."""
    return session.scalar(select(CarePlan).where(CarePlan.id == plan_id))


def plan_for_person(*, session: Session, person_id: int) -> CarePlan | None:
    return session.scalar(select(CarePlan).where(CarePlan.person_id == person_id))


def check_thresholds(values: dict[str, Any]) -> dict[str, Any]:
    """Thresholds as a plan keeps them; CareError names the first bad field."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in DEFAULT_THRESHOLDS and key not in ("call_wait_min", "committee_wait_min"):
            raise CareError(key, "is not a threshold of a care plan")
        if key in ("day_start", "day_end"):
            try:
                j.hhmm(str(value))
            except ValueError as exc:
                raise CareError(key, str(exc)) from None
            out[key] = str(value)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CareError(key, f"{value!r} is not a number") from None
        limits = {"no_motion_hours": (1, 72), "no_door_hours": (0, 240), "away_hours": (0, 480),
                  "water_hours": (1, 72), "water_min_m3": (0, 1), "call_wait_min": (1, 120),
                  "committee_wait_min": (1, 24 * 60)}[key]
        if not limits[0] <= number <= limits[1]:
            raise CareError(key, f"must be between {limits[0]} and {limits[1]}")
        out[key] = int(number) if key.endswith("_min") else number
    if j.hhmm(out.get("day_start", "07:00")) >= j.hhmm(out.get("day_end", "21:00")):
        raise CareError("day_end", "the day window must end after it starts")
    return out


def create_plan(*, session: Session, person_id: int, group: str = "elderly_alone", place_id: int | None = None,
                now: dt.datetime | None = None, **thresholds: Any) -> CarePlan:
    """A care plan for a person at their home (the person's place unless given)."""
    person = session.scalar(select(Person).where(Person.id == person_id))
    if person is None:
        raise CareError("person_id", f"person {person_id} not found")
    if group not in GROUPS:
        raise CareError("group", f"{group!r} is not one of {', '.join(GROUPS)}")
    if plan_for_person(session=session, person_id=person_id) is not None:
        raise CareError("person_id", "this person already has a care plan")
    home = place_id or person.place_id
    if home is None:
        raise CareError("place_id", "the person has no home place")
    plan = CarePlan(person_id=person_id, group=group, place_id=home,
                    **{**DEFAULT_THRESHOLDS, **check_thresholds(thresholds)})
    session.add(plan)
    session.flush()
    session.add(Signs(plan_id=plan.id, place_id=home, since_ms=_ms(_now(now)), water=[], reset={}))
    session.flush()
    return plan


def update_plan(*, session: Session, plan: CarePlan, values: dict[str, Any]) -> CarePlan:
    """Change a plan's thresholds, timing and note; CareError names a bad field."""
    note = values.pop("note", None)
    for key, value in check_thresholds({**{k: getattr(plan, k) for k in ("day_start", "day_end")},
                                        **values}).items():
        setattr(plan, key, value)
    if note is not None:
        plan.note = str(note)[:500]
    session.flush()
    return plan


def pause_plan(*, session: Session, plan: CarePlan, reason: str, until: dt.datetime | None, actor: str,
               note: str = "", now: dt.datetime | None = None) -> CarePlan:
    """外出/住院: a reported absence stops the inactivity checks until the date given (or a resume)."""
    now = _now(now)
    if reason not in PAUSE_REASONS:
        raise CareError("reason", f"{reason!r} is not one of {', '.join(PAUSE_REASONS)}")
    if until is not None and until <= now:
        raise CareError("until", "must be in the future")
    plan.status, plan.pause_reason, plan.paused_until, plan.pause_note = "paused", reason, until, note[:200]
    for alarm in _active_alarms(session, [plan.id]).get(plan.id, []):
        if alarm.type in INACTIVITY_TYPES:
            _stop_chain(session, alarm, outcome="paused", actor=actor, now=now)
            alarms.clear(session=session, alarm=alarm, actor=actor, note=f"计划暂停：{reason}", now=now)
    session.flush()
    return plan


def resume_plan(*, session: Session, plan: CarePlan, actor: str, now: dt.datetime | None = None) -> CarePlan:
    """Watch again from now (the time away does not count as inactivity)."""
    now = _now(now)
    plan.status, plan.pause_reason, plan.paused_until = "active", "", None
    signs = session.get(Signs, plan.id)
    if signs is not None:
        signs.reset = {**(signs.reset or {}), **{t: _ms(now) for t in INACTIVITY_TYPES}}
    session.flush()
    return plan


def contacts_of(*, session: Session, plan_id: int) -> list[CareContact]:
    return list(session.scalars(select(CareContact).where(CareContact.plan_id == plan_id)
                                .order_by(CareContact.order, CareContact.id)))


def add_contact(*, session: Session, plan: CarePlan, name: str, phone: str, relation: str = "",
                order: int | None = None) -> CareContact:
    """A contact called (in order) when the person does not answer."""
    name, phone = name.strip(), phone.strip()
    if not name:
        raise CareError("name", "is empty")
    digits = phone.replace("-", "").replace(" ", "")
    if not (digits.isdigit() and 7 <= len(digits) <= 13):
        raise CareError("phone", "is not a phone number")
    if order is None:
        order = 1 + max((c.order for c in contacts_of(session=session, plan_id=plan.id)), default=0)
    contact = CareContact(plan_id=plan.id, name=name[:50], relation=relation.strip()[:20], phone=digits,
                          order=order)
    session.add(contact)
    session.flush()
    return contact


def get_contact(*, session: Session, contact_id: int) -> CareContact | None:
    """A contact of a plan in the session's scope."""
    return session.scalar(select(CareContact).join(CarePlan, CarePlan.id == CareContact.plan_id)
                          .where(CareContact.id == contact_id))


def remove_contact(*, session: Session, contact: CareContact) -> None:
    session.delete(contact)
    session.flush()


def unmask_contact(*, session: Session, user: User, contact: CareContact, purpose: str, ip: str = "") -> str:
    """A contact's full phone number for a stated purpose (``pii.unmask``); audited like the registry's."""
    purpose = (purpose or "").strip()
    if not purpose:
        raise CareError("purpose", "查看完整信息须填写用途（purpose is required）")
    if not iam.may_unmask(user=user, record=contact):
        raise PermissionError("无权查看完整信息（not allowed to unmask）")
    iam.audit(session=session, actor=user.username, action="unmask", target=f"s11_contact:{contact.id}",
              purpose=purpose, ip=ip, detail={"field": "phone"})
    return contact.phone or ""


def devices_of(*, session: Session, plan: CarePlan) -> list[Device]:
    """The devices in the plan's home (found by the room)."""
    return list(session.scalars(select(Device).where(Device.place_id == plan.place_id).order_by(Device.type_code)))


# --- signs of life from ingest --------------------------------------------------------------


def on_batch(changes: Any) -> None:
    """Ingest handler: take the batch's readings of care homes into their signs; link fire and gas alarms."""
    home = {i: d for i, d in changes.devices.items() if d.type_code in HOME_TYPES and d.place_id}
    if not home:
        return
    by_tenant: dict[int, dict[int, Any]] = {}
    for dev_id, info in home.items():
        by_tenant.setdefault(info.tenant_id, {})[dev_id] = info
    for tenant_id, devices in by_tenant.items():
        with changes.session(tenant_id, ACTOR) as session:
            _take_batch(session, changes, devices)


def _take_batch(session: Session, changes: Any, devices: dict[int, Any]) -> None:
    places = {d.place_id for d in devices.values()}
    signs_by_place = {s.place_id: s for s in session.scalars(select(Signs).where(Signs.place_id.in_(places)))}
    if not signs_by_place:
        return
    now = dt.datetime.fromtimestamp(changes.now_ms / 1000, dt.UTC)
    touched: set[int] = set()
    items: list[tuple[int, int, dict[str, Any] | None, str | None]] = [
        (d, ts, values, None) for d, ts, values in changes.readings]
    items += [(d, ts, data, kind) for d, ts, kind, data in changes.events]
    for dev_id, ts, values, event in sorted(items, key=lambda x: x[1]):
        info = devices.get(dev_id)
        if info is None or info.type_code not in SIGN_TYPES:
            continue
        signs = signs_by_place.get(info.place_id)
        if signs is None:
            continue
        if ts < signs.since_ms:
            signs.since_ms = ts  # the readings reach further back than the plan (a replayed backlog)
        before = (signs.last_motion_ms, signs.last_door_ms, signs.last_water_ms, list(signs.water))
        alive = j.observe(signs, type_code=info.type_code, ts_ms=ts,
                          values=values if event is None else None, event=event)
        if (signs.last_motion_ms, signs.last_door_ms, signs.last_water_ms, signs.water) != before:
            signs.water = list(signs.water)  # a new list: the JSON column sees the change
            touched.add(signs.plan_id)
        if alive and signs.checked_day != j.local_day(ts) and ts >= changes.now_ms - 86_400_000:
            touched.add(signs.plan_id)
    if touched:
        _after_signs(session, [s for s in signs_by_place.values() if s.plan_id in touched], now)
    linked = [d for d, info in devices.items() if info.type_code in ("smoke_detector", "gas_detector")]
    if linked:
        _link_fire_alarms(session, linked, signs_by_place, now)


def _after_signs(session: Session, signs: list[Signs], now: dt.datetime) -> None:
    """Clear the alarms a sign of life ended; record today's automatic check-in."""
    plans = {p.id: p for p in session.scalars(select(CarePlan).where(CarePlan.id.in_([s.plan_id for s in signs])))}
    active = _active_alarms(session, list(plans))
    today = j.local_day(_ms(now))
    for s in signs:
        plan = plans.get(s.plan_id)
        if plan is None:
            continue
        for alarm in active.get(plan.id, []):
            if alarm.type in INACTIVITY_TYPES and j.cleared(alarm.type, s, _ms(alarm.raised_at)):
                _end_alarm(session, alarm, s, actor=ACTOR, note="活动恢复 (activity returned)", now=now)
        last = max(s.last_motion_ms or 0, s.last_door_ms or 0, s.last_water_ms or 0)
        if last and j.local_day(last) == today and s.checked_day != today and plan.status == "active":
            s.checked_day = today
            _checkin(session, plan, day=today, how="sensors", by=ACTOR, note="", now=now)


def _link_fire_alarms(session: Session, device_ids: list[int], signs_by_place: dict[int | None, Signs],
                      now: dt.datetime) -> None:
    """Smoke or gas in a care home: the kernel's CRITICAL alarm also runs the plan's call chain."""
    found = session.scalars(select(Alarm).where(Alarm.device_id.in_(device_ids), Alarm.type.in_(LINKED_TYPES),
                                                Alarm.active_key.is_not(None))
                            .execution_options(all_scopes=True)).all()
    for alarm in found:
        signs = signs_by_place.get(alarm.place_id)
        if signs is None:
            continue
        started = session.scalar(select(func.count()).select_from(Escalation)
                                 .where(Escalation.alarm_id == alarm.id).execution_options(all_scopes=True))
        if not started:
            plan = session.get(CarePlan, signs.plan_id)
            if plan is not None:
                start_chain(session=session, alarm=alarm, plan=plan, now=now)


# --- inactivity judgement -------------------------------------------------------------------


def _active_alarms(session: Session, plan_ids: Sequence[int]) -> dict[int, list[Alarm]]:
    """The active care alarms of some plans: their own (source ``s11:<plan>``) and fire/gas in their homes."""
    if not plan_ids:
        return {}
    out: dict[int, list[Alarm]] = {}
    sources = {_source(i): i for i in plan_ids}
    for alarm in session.scalars(select(Alarm).where(Alarm.source.in_(list(sources)), Alarm.active_key.is_not(None))
                                 .execution_options(all_scopes=True)):
        out.setdefault(sources[alarm.source], []).append(alarm)
    places: dict[Any, int] = dict(session.execute(select(CarePlan.place_id, CarePlan.id).where(CarePlan.id.in_(list(plan_ids)))
                                  .execution_options(all_scopes=True)).all())
    if places:
        for alarm in session.scalars(select(Alarm).where(Alarm.place_id.in_(list(places)),
                                                         Alarm.type.in_(LINKED_TYPES), Alarm.active_key.is_not(None))
                                     .execution_options(all_scopes=True)):
            out.setdefault(places[alarm.place_id], []).append(alarm)
    return out


def judge_plans(*, session: Session, now: dt.datetime | None = None) -> int:
    """Judge every active plan of the tenant: raise the inactivity alarms that hold, clear those that ended."""
    now = _now(now)
    now_ms = _ms(now)
    plans = list(session.scalars(select(CarePlan).where(CarePlan.status == "active")
                                 .execution_options(all_scopes=True)))
    signs = {s.plan_id: s for s in session.scalars(select(Signs))}
    active = _active_alarms(session, [p.id for p in plans])
    raised = 0
    for plan in plans:
        s = signs.get(plan.id)
        if s is None:
            continue
        holding = j.judge(j.Thresholds.of(plan), s, now_ms)
        mine = {a.type: a for a in active.get(plan.id, []) if a.type in INACTIVITY_TYPES}
        for kind, alarm in mine.items():
            if j.cleared(kind, s, _ms(alarm.raised_at)):
                _end_alarm(session, alarm, s, actor=ACTOR, note="活动恢复 (activity returned)", now=now)
        for kind, reason in holding.items():
            if kind in mine:
                continue
            alarm, new = raise_inactivity(session=session, plan=plan, kind=kind, reason=reason, now=now)
            raised += int(new)
    return raised


def raise_inactivity(*, session: Session, plan: CarePlan, kind: str, reason: str,
                     now: dt.datetime | None = None) -> tuple[Alarm, bool]:
    """An inactivity alarm of a plan (scenario S11), and its escalation chain when new."""
    now = _now(now)
    person = session.get(Person, plan.person_id)
    zh, en = ALARM_TITLES[kind]
    pir = session.scalar(select(Device.id).where(Device.place_id == plan.place_id, Device.type_code == "pir"))
    alarm, new = alarms.raise_alarm(session=session, type=kind, source=_source(plan.id), severity=SEVERITY[kind],
                                    title=f"{person.name if person else ''}：{zh}", device_id=pir,
                                    place_id=plan.place_id, scenario=SCENARIO_ID, actor=ACTOR, now=now,
                                    context={"plan_id": plan.id, "reason": reason, "title_en": en},
                                    source_ms=_ms(now))
    if new:
        start_chain(session=session, alarm=alarm, plan=plan, now=now)
    return alarm, new


def _end_alarm(session: Session, alarm: Alarm, signs: Signs | None, *, actor: str, note: str,
               now: dt.datetime, outcome: str = "cleared") -> None:
    _stop_chain(session, alarm, outcome=outcome, actor=actor, now=now)
    if alarm.active_key is not None:
        alarms.clear(session=session, alarm=alarm, actor=actor, note=note, now=now)
    if signs is not None and alarm.type in INACTIVITY_TYPES:
        signs.reset = {**(signs.reset or {}), alarm.type: _ms(now)}


# --- the escalation chain -------------------------------------------------------------------


def chain_of(*, session: Session, alarm_id: int) -> list[Escalation]:
    return list(session.scalars(select(Escalation).where(Escalation.alarm_id == alarm_id)
                                .order_by(Escalation.step, Escalation.id)))


def start_chain(*, session: Session, alarm: Alarm, plan: CarePlan, now: dt.datetime | None = None) -> Escalation:
    """The first step: call the person (voice)."""
    return _run_step(session, alarm, plan, step=1, now=_now(now))


def _plan_steps(session: Session, plan: CarePlan) -> list[tuple[str, Any]]:
    """The chain of a plan: the person, each contact in order, the committee, a case."""
    person = session.get(Person, plan.person_id)
    steps: list[tuple[str, Any]] = [("call_person", person)]
    steps += [("call_contact", c) for c in contacts_of(session=session, plan_id=plan.id)]
    return [*steps, ("committee", None), ("case", None)]


def _run_step(session: Session, alarm: Alarm, plan: CarePlan, *, step: int, now: dt.datetime) -> Escalation:
    steps = _plan_steps(session, plan)
    action, who = steps[min(step, len(steps)) - 1]
    row = Escalation(alarm_id=alarm.id, plan_id=plan.id, step=step, action=action, at=now, place_id=plan.place_id,
                     actor=ACTOR)
    wait = dt.timedelta(minutes=plan.call_wait_min)
    zh = ALARM_TITLES.get(alarm.type, ("告警", ""))[0] if alarm.type in ALARM_TITLES else alarm.title
    if action in ("call_person", "call_contact"):
        phone = (who.phone if who is not None else None) or ""
        name = getattr(who, "name", "")
        row.contact_id = who.id if action == "call_contact" else None
        row.target = f"{name} {getattr(who, 'phone_mask', '') or ''}".strip()[:100]
        if not phone:
            row.outcome, row.due_at, row.note = "no_phone", now, "无电话号码，转下一步 (no phone number)"
        else:
            person = session.get(Person, plan.person_id)
            text = (f"【社区关怀】{person.name if person else ''}家中{zh}，请接听确认平安，"
                    f"平安请按1。" if action == "call_person" else
                    f"【社区关怀】您的亲友{person.name if person else ''}家中{zh}且未接听电话，请尽快联系或上门查看。")
            message = gateways.send(session=session, channel=gateways.VOICE, to=phone, text=text,
                                    ref=f"alarm:{alarm.id}")
            row.ref = message.provider_ref or ""
            row.outcome = "calling" if message.status == "sent" else "failed"
            row.due_at = now + wait if message.status == "sent" else now
    elif action == "committee":
        users = committee_users(session=session, committee_id=plan.committee_id)
        notify.notify(session=session, user_ids=[u.id for u in users], at=now, message=notify.Message(
            kind="escalation", title=f"关怀告警无人应答：{alarm.title}", severity=alarm.severity,
            body="本人及联系人均未接听，请立即上门查看 (nobody answered: please visit now)",
            link=f"/care?committee={plan.committee_id or ''}", ref=f"alarm:{alarm.id}"))
        row.target = f"居委 {len(users)} 人"[:100]
        row.outcome = "notified"
        row.due_at = now + dt.timedelta(minutes=plan.committee_wait_min)
    else:
        case = alarms.open_case(session=session, alarm=alarm, class_code=CASE_CLASS, actor=ACTOR,
                                priority="urgent", department=OWNER, now=now)
        row.target, row.outcome, row.ref = OWNER, "case_opened", str(case.code)[:100]
    session.add(row)
    session.flush()
    return row


def committee_users(*, session: Session, committee_id: int | None) -> list[User]:
    """The active committee staff bound to a committee."""
    if committee_id is None:
        return []
    users = session.scalars(select(User).where(User.role == "committee", User.active.is_(True)))
    return [u for u in users if committee_id in {int(c) for c in (u.scope or {}).get("committees") or []}]


def advance_chains(*, session: Session, now: dt.datetime | None = None) -> int:
    """Take the next step of every chain whose step went unanswered for its time."""
    now = _now(now)
    due = session.scalars(select(Escalation).where(Escalation.due_at.is_not(None), Escalation.due_at <= now)
                          .order_by(Escalation.due_at, Escalation.id).execution_options(all_scopes=True)).all()
    n = 0
    for row in due:
        alarm = session.get(Alarm, row.alarm_id)
        plan = session.get(CarePlan, row.plan_id)
        row.due_at = None
        if row.outcome == "calling":
            row.outcome = "no_answer"
        if alarm is None or plan is None or alarm.active_key is None:
            continue
        _run_step(session, alarm, plan, step=row.step + 1, now=now)
        n += 1
    session.flush()
    return n


def _stop_chain(session: Session, alarm: Alarm, *, outcome: str, actor: str, now: dt.datetime,
                note: str = "") -> Escalation | None:
    rows = chain_of(session=session, alarm_id=alarm.id)
    if not rows or rows[-1].action == "stop":
        return None
    for row in rows:
        if row.due_at is not None:
            row.due_at = None
            if row.outcome == "calling" and outcome in STOP_OUTCOMES:
                row.outcome = outcome
    stop = Escalation(alarm_id=alarm.id, plan_id=rows[-1].plan_id, step=rows[-1].step + 1, action="stop", at=now,
                      outcome=outcome, actor=actor[:100], note=note[:300], place_id=rows[-1].place_id)
    session.add(stop)
    session.flush()
    return stop


def record_answer(*, session: Session, alarm: Alarm, outcome: str, actor: str, note: str = "",
                  now: dt.datetime | None = None) -> Alarm:
    """已接通/平安: someone reached the person; the chain stops (all well also clears the alarm)."""
    now = _now(now)
    if outcome not in STOP_OUTCOMES:
        raise CareError("outcome", f"{outcome!r} is not one of {', '.join(STOP_OUTCOMES)}")
    if not chain_of(session=session, alarm_id=alarm.id):
        raise CareError("alarm_id", "this alarm has no care escalation")
    _stop_chain(session, alarm, outcome=outcome, actor=actor, now=now, note=note)
    if outcome == "all_well" and alarm.active_key is not None and alarm.type in INACTIVITY_TYPES:
        plan_id = int((alarm.context or {}).get("plan_id") or 0)
        _end_alarm(session, alarm, session.get(Signs, plan_id), actor=actor, note=note or "平安 (all well)",
                   now=now, outcome="all_well")
    session.flush()
    return alarm


def voice_outcome(*, session: Session, provider_ref: str, answered: bool, all_well: bool = False,
                  now: dt.datetime | None = None) -> Escalation | None:
    """What a voice adapter learnt of a call (by its reference): answered stops the chain, unanswered moves on."""
    now = _now(now)
    row = session.scalar(select(Escalation).where(Escalation.ref == provider_ref, Escalation.outcome == "calling"))
    if row is None:
        return None
    alarm = session.get(Alarm, row.alarm_id)
    if alarm is None:
        return None
    if answered:
        record_answer(session=session, alarm=alarm, outcome="all_well" if all_well else "answered",
                      actor="voice", now=now)
    else:
        row.due_at = now
        advance_chains(session=session, now=now)
    return row


def mark_false(*, session: Session, alarm: Alarm, reason: str, actor: str,
               now: dt.datetime | None = None) -> Review:
    """误报: staff say the alarm was false (with the reason); it clears and counts in the home's rate."""
    now = _now(now)
    reason = reason.strip()
    if not reason:
        raise CareError("reason", "a false alarm needs a reason")
    plan = _plan_of_alarm(session, alarm)
    if plan is None:
        raise CareError("alarm_id", "this alarm is not a care alarm")
    if session.scalar(select(Review.id).where(Review.alarm_id == alarm.id)) is not None:
        raise CareError("alarm_id", "this alarm is already reviewed")
    review = Review(alarm_id=alarm.id, plan_id=plan.id, false_alarm=True, reason=reason[:300], by=actor[:100],
                    at=now, place_id=plan.place_id)
    session.add(review)
    if alarm.active_key is not None:
        _end_alarm(session, alarm, session.get(Signs, plan.id), actor=actor, note=f"误报：{reason}", now=now,
                   outcome="false_alarm")
    session.flush()
    return review


def _plan_of_alarm(session: Session, alarm: Alarm) -> CarePlan | None:
    plan_id = (alarm.context or {}).get("plan_id")
    if alarm.source.startswith("s11:") and plan_id:
        return session.get(CarePlan, int(plan_id))
    if alarm.type in LINKED_TYPES and alarm.place_id:
        return session.scalar(select(CarePlan).where(CarePlan.place_id == alarm.place_id))
    return None


# --- the sweep ------------------------------------------------------------------------------


def sweep(engine: Engine, now: dt.datetime | None = None) -> int:
    """Every 15 s: end expired pauses, judge the homes, take the escalation steps that are due."""
    from shequ.core.loop import tenant_ids

    now = _now(now)
    n = 0
    for tenant_id in tenant_ids(engine, SCENARIO_ID):
        with session_scope(tenant_id=tenant_id, actor=ACTOR, engine=engine) as session:
            if session.scalar(select(CarePlan.id).limit(1)) is None:
                continue
            for plan in session.scalars(select(CarePlan).where(CarePlan.status == "paused",
                                                               CarePlan.paused_until.is_not(None),
                                                               CarePlan.paused_until <= now)):
                resume_plan(session=session, plan=plan, actor=ACTOR, now=now)
            n += judge_plans(session=session, now=now)
            n += advance_chains(session=session, now=now)
    return n


# --- check-ins ------------------------------------------------------------------------------


def _checkin(session: Session, plan: CarePlan, *, day: dt.date, how: str, by: str, note: str,
             now: dt.datetime) -> Checkin:
    existing = session.scalar(select(Checkin).where(Checkin.plan_id == plan.id, Checkin.day == day,
                                                    Checkin.how == how))
    if existing is not None:
        return existing
    row = Checkin(plan_id=plan.id, person_id=plan.person_id, day=day, how=how, by=by[:100], note=note[:300], at=now,
                  place_id=plan.place_id)
    session.add(row)
    session.flush()
    return row


def check_in(*, session: Session, plan: CarePlan, how: str, actor: str, note: str = "",
             now: dt.datetime | None = None) -> Checkin:
    """每日签到 by staff: the person was reached today by phone or visit."""
    now = _now(now)
    if how not in CHECKIN_WAYS or how == "sensors":
        raise CareError("how", "must be phone or visit")
    return _checkin(session, plan, day=j.local_day(_ms(now)), how=how, by=actor, note=note.strip(), now=now)


def list_checkins(*, session: Session, day: dt.date | None = None, plan_id: int | None = None,
                  limit: int = 500) -> list[Checkin]:
    stmt = select(Checkin)
    if day is not None:
        stmt = stmt.where(Checkin.day == day)
    if plan_id is not None:
        stmt = stmt.where(Checkin.plan_id == plan_id)
    return list(session.scalars(stmt.order_by(Checkin.day.desc(), Checkin.id.desc()).limit(limit)))


# --- what the pages show --------------------------------------------------------------------


@dataclass(frozen=True)
class HomeRow:
    plan: CarePlan
    person: Person | None
    address: str
    signs: Signs | None
    water_24h: float | None
    alarms: list[Alarm]
    step: Escalation | None
    checkins: list[Checkin]
    false_alarms: int
    monitored_days: float
    rate: float | None  # false alarms per 50 monitored days


def list_plans(*, session: Session, committee_id: int | None = None) -> list[CarePlan]:
    stmt = select(CarePlan)
    if committee_id is not None:
        stmt = stmt.where(CarePlan.committee_id == committee_id)
    return list(session.scalars(stmt.order_by(CarePlan.id)))


def home_rows(*, session: Session, plans: Sequence[CarePlan], now: dt.datetime | None = None) -> list[HomeRow]:
    """Each plan's home today: signs, active alarms and chain step, check-ins, false-alarm rate (few queries)."""
    from shequ.core.places.service import labels

    now = _now(now)
    ids = [p.id for p in plans]
    if not ids:
        return []
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_([p.person_id for p in plans])))}
    signs = {s.plan_id: s for s in session.scalars(select(Signs).where(Signs.plan_id.in_(ids)))}
    addresses = labels(session=session, ids=[p.place_id for p in plans])
    active = _active_alarms(session, ids)
    alarm_ids = [a.id for items in active.values() for a in items]
    steps: dict[int, Escalation] = {}
    if alarm_ids:
        for row in session.scalars(select(Escalation).where(Escalation.alarm_id.in_(alarm_ids))
                                   .order_by(Escalation.step, Escalation.id)):
            steps[row.alarm_id] = row
    today = j.local_day(_ms(now))
    checkins: dict[int, list[Checkin]] = {}
    for c in session.scalars(select(Checkin).where(Checkin.plan_id.in_(ids), Checkin.day == today)):
        checkins.setdefault(c.plan_id, []).append(c)
    falses: dict[int, int] = dict(session.execute(select(Review.plan_id, func.count()).where(Review.plan_id.in_(ids),
                                                                             Review.false_alarm.is_(True))
                                  .group_by(Review.plan_id)).all())
    out = []
    for plan in plans:
        s = signs.get(plan.id)
        days = max(0.0, (now - plan.created_at).total_seconds() / 86400) if plan.created_at else 0.0
        n_false = int(falses.get(plan.id, 0))
        mine = sorted(active.get(plan.id, []), key=lambda a: a.raised_at)
        step = next((steps[a.id] for a in reversed(mine) if a.id in steps), None)
        out.append(HomeRow(plan=plan, person=people.get(plan.person_id), address=addresses.get(plan.place_id or 0, ""),
                           signs=s, water_24h=j.water_used(s, _ms(now) - 86_400_000, _ms(now)) if s else None,
                           alarms=mine, step=step, checkins=checkins.get(plan.id, []), false_alarms=n_false,
                           monitored_days=days, rate=rate(n_false, days)))
    return out


def rate(false_alarms: int, days: float) -> float | None:
    """False alarms per 50 monitored days (None before a day of monitoring)."""
    return None if days < 1 else false_alarms / days * FALSE_ALARM_DAYS


def overall_rate(rows: Iterable[HomeRow]) -> float | None:
    rows = list(rows)
    return rate(sum(r.false_alarms for r in rows), sum(r.monitored_days for r in rows))


def tile(*, session: Session, lang: str) -> Tile:
    """The brain's tile: homes watched, active care alarms, chains running, today's check-ins."""
    zh = lang.startswith("zh")
    now = dt.datetime.now(dt.UTC)
    homes = session.scalar(select(func.count()).select_from(CarePlan).where(CarePlan.status == "active")) or 0
    active = session.scalar(select(func.count()).select_from(Alarm).where(
        Alarm.scenario == SCENARIO_ID, Alarm.active_key.is_not(None))) or 0
    running = session.scalar(select(func.count(func.distinct(Escalation.alarm_id))).where(
        Escalation.due_at.is_not(None))) or 0
    done = session.scalar(select(func.count(func.distinct(Checkin.plan_id))).where(
        Checkin.day == j.local_day(_ms(now)))) or 0
    figures = ((("关怀对象", "Homes watched")[not zh], str(homes)),
               (("关怀告警", "Care alarms")[not zh], str(active)),
               (("升级中", "Escalating")[not zh], str(running)),
               (("今日已签到", "Checked in today")[not zh], f"{done}/{homes}"))
    return Tile(title="老人关怀" if zh else "Living-alone care", figures=figures, link="/care",
                alert=bool(active or running))


# --- demo -----------------------------------------------------------------------------------


def seed_demo(*, session: Session) -> int:
    """Care plans (and two contacts each) for the demo's elders whose homes have care sensors (idempotent)."""
    rooms = set(session.scalars(select(Device.place_id).where(Device.type_code == "pir",
                                                               Device.place_id.is_not(None))
                                .execution_options(all_scopes=True)))
    if not rooms:
        return 0
    tagged = session.execute(
        select(Person.id, Person.place_id, Tag.code).join(Tagging, (Tagging.entity == "person")
                                                           & (Tagging.entity_id == Person.id))
        .join(Tag, Tag.id == Tagging.tag_id)
        .where(Tag.code.in_(list(GROUPS)), Person.place_id.in_(rooms), Person.status == "active")
        .order_by(Person.id).execution_options(all_scopes=True)).all()
    have = set(session.scalars(select(CarePlan.person_id).execution_options(all_scopes=True)))
    made = 0
    order = list(GROUPS)
    best: dict[int, tuple[int | None, str]] = {}
    for pid, place_id, code in tagged:
        if pid not in best or order.index(code) < order.index(best[pid][1]):
            best[pid] = (place_id, code)
    for pid, (place_id, code) in sorted(best.items()):
        if pid in have:
            continue
        plan = create_plan(session=session, person_id=pid, group=code, place_id=place_id)
        for k, (name, relation) in enumerate((("子女", "child"), ("邻居", "neighbour"))):
            add_contact(session=session, plan=plan, name=f"{name}{pid % 100:02d}", relation=relation,
                        phone=f"139{(pid * 7919 + k * 104729) % 100_000_000:08d}")
        made += 1
    session.flush()
    return made
