"""The alarm lifecycle: raise (a repeat counts up on the active alarm), acknowledge, assign,
comment, clear, open a case from it; and the sweep that reminds and escalates while nobody
acknowledges. Every change writes the alarm's timeline and emits ``alarm.<verb>``.

Escalation policy (per severity, minutes; a tenant overrides it in
``tenant.settings["alarm_policy"]``): an unacknowledged alarm is reminded every ``remind``
minutes and escalates one level every ``escalate`` minutes (1: 城运中心 dispatchers, 2: the
subdistrict's leaders, 3: both again, the last level).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shequ.core import events
from shequ.core.alarms.models import (
    ACTIVE_ACK,
    ACTIVE_UNACK,
    CLEARED_ACK,
    CLEARED_UNACK,
    SEVERITIES,
    SEVERITY_RANK,
    Alarm,
    AlarmEvent,
)
from shequ.core.errors import FieldError
from shequ.core.places.models import Tenant

POLICY: dict[str, dict[str, int | None]] = {
    "CRITICAL": {"remind": 5, "escalate": 5},
    "MAJOR": {"remind": 15, "escalate": 15},
    "MINOR": {"remind": 60, "escalate": 60},
    "WARNING": {"remind": 240, "escalate": None},
    "INDETERMINATE": {"remind": None, "escalate": None},
}
MAX_LEVEL = 3


class AlarmError(FieldError):
    """An alarm action that its state or the given values do not allow; names the field."""


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def policy(*, session: Session, severity: str) -> dict[str, int | None]:
    tenant = session.get(Tenant, session.info["tenant_id"])
    custom = ((tenant.settings or {}).get("alarm_policy") or {}) if tenant else {}
    return {**POLICY.get(severity, POLICY["INDETERMINATE"]), **(custom.get(severity) or {})}


def payload(alarm: Alarm, actor: str = "system") -> dict[str, Any]:
    return {"alarm_id": alarm.id, "type": alarm.type, "severity": alarm.severity, "status": alarm.status,
            "title": alarm.title, "scenario": alarm.scenario, "device_id": alarm.device_id,
            "place_id": alarm.place_id, "grid_id": alarm.grid_id, "committee_id": alarm.committee_id,
            "compound_id": alarm.compound_id, "building_id": alarm.building_id, "count": alarm.count,
            "escalation_level": alarm.escalation_level, "assignee_id": alarm.assignee_id,
            "case_id": alarm.case_id, "rule_id": alarm.rule_id, "actor": actor}


def _event(session: Session, alarm: Alarm, action: str, *, actor: str, now: dt.datetime, note: str = "",
           data: dict[str, Any] | None = None, emit: str | None = None) -> None:
    session.add(AlarmEvent(alarm_id=alarm.id, at=now, actor=actor, action=action, note=note[:1000],
                           data=data or {}))
    session.flush()
    events.emit(session, emit or f"alarm.{action}", payload(alarm, actor), at=now)


def active_alarm(*, session: Session, source: str, type: str) -> Alarm | None:
    """The active alarm of a (source, type), whoever's scope it is in."""
    return session.scalar(select(Alarm).where(Alarm.active_key == f"{source}|{type}")
                          .execution_options(all_scopes=True))


def raise_alarm(*, session: Session, type: str, source: str, severity: str, title: str,
                device_id: int | None = None, place_id: int | None = None, rule_id: int | None = None,
                rule_version: int | None = None, scenario: str = "", context: dict[str, Any] | None = None,
                source_ms: int = 0, actor: str = "system", now: dt.datetime | None = None) -> tuple[Alarm, bool]:
    """Raise an alarm, or count a repeat on the active one of the same (source, type).

    Returns the alarm and whether it is new. A repeat of higher severity raises the severity.
    """
    now = _now(now)
    if severity not in SEVERITIES:
        raise AlarmError("severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    if not type or not source:
        raise AlarmError("type" if not type else "source", "is empty")
    existing = active_alarm(session=session, source=source, type=type)
    if existing is not None:
        existing.count += 1
        existing.last_at = now
        if SEVERITY_RANK[severity] < SEVERITY_RANK[existing.severity]:
            before = existing.severity
            existing.severity = severity
            _event(session, existing, "severity", actor=actor, now=now, data={"from": before, "to": severity},
                   emit="alarm.raised")
        return existing, False
    rules = policy(session=session, severity=severity)
    first_check = rules["remind"] or rules["escalate"]
    alarm = Alarm(type=type, source=source, active_key=f"{source}|{type}", severity=severity,
                  status=ACTIVE_UNACK, title=title[:200], scenario=scenario, device_id=device_id,
                  place_id=place_id, rule_id=rule_id, rule_version=rule_version, context=context or {},
                  count=1, raised_at=now, last_at=now, source_ms=source_ms,
                  next_check_at=now + dt.timedelta(minutes=first_check) if first_check else None)
    session.add(alarm)
    session.flush()
    _event(session, alarm, "raised", actor=actor, now=now, data={"context": context or {}})
    return alarm, True


def get_alarm(*, session: Session, alarm_id: int) -> Alarm | None:
    """An alarm in the session's tenant and scope (None when missing or out of scope)."""
    return session.scalar(select(Alarm).where(Alarm.id == alarm_id))


def acknowledge(*, session: Session, alarm: Alarm, actor: str, note: str = "",
                now: dt.datetime | None = None) -> Alarm:
    """确认: who saw it and when; reminders and escalation stop."""
    now = _now(now)
    if alarm.status in (ACTIVE_ACK, CLEARED_ACK):
        raise AlarmError("status", f"the alarm is already acknowledged ({alarm.acked_by})")
    alarm.status = ACTIVE_ACK if alarm.status == ACTIVE_UNACK else CLEARED_ACK
    alarm.acked_at, alarm.acked_by = now, actor
    alarm.next_check_at = None
    _event(session, alarm, "acked", actor=actor, now=now, note=note)
    return alarm


def clear(*, session: Session, alarm: Alarm, actor: str, note: str = "", now: dt.datetime | None = None) -> Alarm:
    """清除: the condition is over (by its rule, or by a person); a new occurrence is a new alarm."""
    now = _now(now)
    if alarm.status in (CLEARED_UNACK, CLEARED_ACK):
        raise AlarmError("status", "the alarm is already cleared")
    alarm.status = CLEARED_ACK if alarm.status == ACTIVE_ACK else CLEARED_UNACK
    alarm.active_key = None
    alarm.cleared_at, alarm.cleared_by = now, actor
    _event(session, alarm, "cleared", actor=actor, now=now, note=note)
    if alarm.rule_id is not None and not actor.startswith("rule:"):
        _release_rules(session, alarm, now)
    return alarm


def _release_rules(session: Session, alarm: Alarm, now: dt.datetime) -> None:
    """A person (or a scenario) cleared a rule's alarm: the rules that raised it go back to quiet
    for that subject, so that the next occurrence raises a new alarm and runs its linkage again
    instead of counting as a repeat of a condition nobody sees any more.

    Quiet starts at the clearing: a duration or an absence counts again from then (an absence
    alarm cleared after a visit does not fire again at the next sweep), and a rate counts anew."""
    from shequ.core.rules.models import RuleState  # rules build on alarms, not the reverse

    ms = int(now.timestamp() * 1000)
    session.execute(update(RuleState)
                    .where(RuleState.tenant_id == alarm.tenant_id, RuleState.active.is_(True),
                           RuleState.alarm_id == alarm.id)
                    .values(active=False, holding=False, since_ms=0, last_ms=ms, marks=[], cleared_ms=ms))


def assign(*, session: Session, alarm: Alarm, assignee_id: int, actor: str, note: str = "",
           now: dt.datetime | None = None) -> Alarm:
    from shequ.core.iam.models import User

    now = _now(now)
    if session.get(User, assignee_id) is None:
        raise AlarmError("assignee_id", f"user {assignee_id} does not exist")
    alarm.assignee_id = assignee_id
    _event(session, alarm, "assigned", actor=actor, now=now, note=note, data={"assignee_id": assignee_id})
    return alarm


def comment(*, session: Session, alarm: Alarm, actor: str, note: str, now: dt.datetime | None = None) -> Alarm:
    if not note.strip():
        raise AlarmError("note", "a comment needs text")
    _event(session, alarm, "commented", actor=actor, now=_now(now), note=note)
    return alarm


def open_case(*, session: Session, alarm: Alarm, class_code: str, actor: str, title: str | None = None,
              priority: str | None = None, department: str | None = None, dispatch: bool = True,
              now: dt.datetime | None = None) -> Any:
    """转工单: a case from the alarm (once: the alarm keeps its case), registered and, by
    default, dispatched to the department its class or the routing rules name."""
    from shequ.core.cases import service as cases

    now = _now(now)
    if alarm.case_id is not None:
        existing = cases.get_case(session=session, case_id=alarm.case_id)
        if existing is not None:
            return existing
    urgent = priority or ("urgent" if alarm.severity in ("CRITICAL", "MAJOR") else "normal")
    case = cases.open_case(session=session, title=title or alarm.title, class_code=class_code, source="alarm",
                           source_ref=str(alarm.id), actor=actor, place_id=alarm.place_id,
                           priority=urgent, alarm_id=alarm.id, scenario=alarm.scenario,
                           description=f"告警 #{alarm.id}: {alarm.title}", register=True, now=now)
    if dispatch:
        cases.act(session=session, case=case, action="dispatch", actor=actor, department=department, now=now)
    alarm.case_id = case.id
    _event(session, alarm, "case", actor=actor, now=now, data={"case_id": case.id, "code": case.code},
           emit="alarm.case_opened")
    return case


def run_pending(*, session: Session, limit: int = 50, now: dt.datetime | None = None) -> list[Alarm]:
    """Run the follow-up actions (opening cases) of alarms raised by rules, oldest first.

    Each alarm is taken under a row lock (SKIP LOCKED on PostgreSQL, so several workers share
    the work; SQLite serialises writers anyway); a failing action is recorded on the alarm's
    timeline and dropped, so one bad class code cannot block the queue.
    """
    stmt = (select(Alarm).where(Alarm.pending_since.is_not(None)).order_by(Alarm.pending_since, Alarm.id)
            .limit(limit).execution_options(all_scopes=True))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    done = []
    for alarm in session.scalars(stmt).all():
        items, alarm.pending_actions, alarm.pending_since = list(alarm.pending_actions or []), None, None
        for item in items:
            if item.get("do") != "case":
                continue
            try:
                with session.begin_nested():
                    open_case(session=session, alarm=alarm, class_code=item["class_code"],
                              actor=str(item.get("actor") or "rules"), priority=item.get("priority"),
                              department=item.get("department"), dispatch=bool(item.get("dispatch", True)),
                              now=now)
            except ValueError as exc:
                _event(session, alarm, "case_failed", actor=str(item.get("actor") or "rules"), now=_now(now),
                       note=str(exc)[:1000], emit="alarm.case_failed")
        done.append(alarm)
    session.flush()
    return done


_wakers: dict[str, Any] = {}
# Tests that take the steps one by one turn the background thread off and call
# ``loop.open_pending_cases`` themselves.
background_cases = True


def wake_pending(engine: Any) -> None:
    """Open the pending cases now (called after an ingest batch that raised alarms committed),
    in a background thread of this process so the ingest goes on at once."""
    if not background_cases:
        return
    key = str(engine.url)
    waker = _wakers.get(key)
    if waker is None or not waker.thread.is_alive():
        waker = _wakers[key] = _PendingRunner(engine)
    waker.event.set()


class _PendingRunner:
    """One thread per process and database that opens pending cases when woken."""

    def __init__(self, engine: Any) -> None:
        import threading

        self.engine = engine
        self.event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="shequ-pending-cases", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import logging

        from shequ.core.loop import open_pending_cases

        while True:
            self.event.wait()
            self.event.clear()
            try:
                while open_pending_cases(self.engine):
                    pass
            except Exception:  # the sweep picks up what is left
                logging.getLogger(__name__).exception("opening pending cases failed")


def sweep(*, session: Session, now: dt.datetime | None = None) -> list[Alarm]:
    """Remind and escalate every unacknowledged alarm whose check time has come."""
    now = _now(now)
    due = session.scalars(select(Alarm).where(Alarm.status == ACTIVE_UNACK, Alarm.next_check_at.is_not(None),
                                              Alarm.next_check_at <= now)
                          .order_by(Alarm.next_check_at).execution_options(all_scopes=True)).all()
    touched = []
    for alarm in due:
        rules = policy(session=session, severity=alarm.severity)
        waited = (now - alarm.raised_at).total_seconds() / 60
        escalate = rules["escalate"]
        level = min(MAX_LEVEL, int(waited // escalate)) if escalate else 0
        if level > alarm.escalation_level:
            alarm.escalation_level = level
            _event(session, alarm, "escalated", actor="system", now=now,
                   note=f"{int(waited)} 分钟无人确认 (unacknowledged for {int(waited)} min)",
                   data={"level": level})
        else:
            alarm.reminders += 1
            _event(session, alarm, "reminder", actor="system", now=now, data={"n": alarm.reminders})
        step = rules["remind"] or escalate
        if step:
            nxt = now + dt.timedelta(minutes=step)
            if escalate and alarm.escalation_level < MAX_LEVEL:
                nxt = min(nxt, alarm.raised_at + dt.timedelta(minutes=escalate * (alarm.escalation_level + 1)))
            alarm.next_check_at = max(nxt, now + dt.timedelta(seconds=30))
        else:
            alarm.next_check_at = None
        touched.append(alarm)
    session.flush()
    return touched


def timeline(*, session: Session, alarm_id: int) -> list[AlarmEvent]:
    return list(session.scalars(select(AlarmEvent).where(AlarmEvent.alarm_id == alarm_id).order_by(AlarmEvent.id)))
