"""The case workflow: open, register, dispatch, handle, feed back, verify, close, evaluate — and
void, return for rework, extend, suspend and resume, supervise, co-handle, escalate.

Every change goes through ``act`` (or ``open_case``): it checks that the action is allowed in
the case's stage, moves the stage, sets the stage's deadline in working hours, appends a step
to the immutable timeline, and emits ``case.<action>`` for the notifications. Times default to
now; tests pass ``now`` to freeze the clock.
"""

from __future__ import annotations

import datetime as dt
import secrets
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shequ.core import events
from shequ.core.cases.calendar import SHANGHAI, WorkCalendar, calendar_for
from shequ.core.cases.models import (
    CLOSED,
    DISPATCHED,
    EVALUATED,
    FED_BACK,
    HANDLED,
    OPEN_STAGES,
    PRIORITIES,
    REGISTERED,
    REPORTED,
    SOURCES,
    VERIFIED,
    VOID,
    Case,
    CaseClass,
    CaseStep,
    RoutingRule,
)
from shequ.core.errors import FieldError
from shequ.core.places.models import Place, Tenant
from shequ.core.plugins import DEPARTMENTS, load_scenarios

CATALOG = Path(__file__).with_name("classes.toml")
# working hours allowed for each stage (the handling stage takes its class's hours); a tenant
# overrides them in tenant.settings["case_stage_hours"]
STAGE_HOURS: dict[str, float] = {REPORTED: 1.0, REGISTERED: 1.0, HANDLED: 1.0, FED_BACK: 4.0, VERIFIED: 1.0}
ESCALATE_EVERY_HOURS = 4.0  # working hours between escalation levels of an overdue case
MAX_ESCALATION = 3  # 1 the department's head, 2 城运中心, 3 the subdistrict's leaders


class CaseError(FieldError):
    """An action that the case's stage or the given values do not allow; names the field."""


# --- classes ---------------------------------------------------------------------------------

@lru_cache
def shipped_classes() -> dict[str, dict[str, Any]]:
    """The kernel's catalog plus every installed scenario's classes (``Scenario.case_classes``)."""
    with CATALOG.open("rb") as fh:
        out: dict[str, dict[str, Any]] = {code: dict(v) for code, v in tomllib.load(fh).items()}
    for spec in load_scenarios().scenarios.values():
        for item in getattr(spec, "case_classes", ()) or ():
            entry = dict(item)
            entry.setdefault("kind", "scenario")
            entry.setdefault("scenario", spec.id)
            out[entry.pop("code")] = entry
    return out


def ensure_classes(*, session: Session) -> None:
    """Give the session's tenant every shipped class it does not have yet (edits are kept);
    checked once per session and tenant."""
    done = session.info.setdefault("_classes_ensured", set())
    if session.info.get("tenant_id") in done:
        return
    have = set(session.scalars(select(CaseClass.code)))
    missing = [(code, v) for code, v in shipped_classes().items() if code not in have]
    if not missing:
        # remembered only once they are there (an insert below may still be rolled back)
        done.add(session.info.get("tenant_id"))
        return
    tenant_id = session.info["tenant_id"]
    session.execute(insert(CaseClass), [{
        "tenant_id": tenant_id, "code": code, "kind": v.get("kind", "event"), "major": v.get("major", ""),
        "name": v["name"], "name_en": v.get("name_en", ""), "department": v["department"],
        "handle_hours": float(v.get("handle_hours", 16)), "urgent_hours": float(v.get("urgent_hours", 2)),
        "scenario": v.get("scenario", ""), "public": bool(v.get("public", False)),
        "description": v.get("description", ""), "active": True,
    } for code, v in missing])


def get_class(*, session: Session, code: str) -> CaseClass | None:
    ensure_classes(session=session)
    cache: dict[tuple[Any, str], CaseClass] = session.info.setdefault("_case_classes", {})
    key = (session.info.get("tenant_id"), code)
    found = cache.get(key)
    if found is None:
        found = session.scalar(select(CaseClass).where(CaseClass.code == code))
        if found is not None:
            cache[key] = found
    return found


def class_names(*, session: Session, lang: str, codes: Iterable[str] | None = None) -> dict[str, str]:
    """Case class code → its name in ``lang`` (English when there is one), for every class or
    only ``codes``; one query."""
    ensure_classes(session=session)
    stmt = select(CaseClass.code, CaseClass.name, CaseClass.name_en)
    if codes is not None:
        wanted = sorted(set(codes))
        if not wanted:
            return {}
        stmt = stmt.where(CaseClass.code.in_(wanted))
    zh = lang.startswith("zh")
    return {code: (name if zh or not name_en else name_en) for code, name, name_en in session.execute(stmt)}


def list_classes(*, session: Session, public_only: bool = False) -> list[CaseClass]:
    ensure_classes(session=session)
    stmt = select(CaseClass).where(CaseClass.active.is_(True)).order_by(CaseClass.code)
    if public_only:
        stmt = stmt.where(CaseClass.public.is_(True))
    return list(session.scalars(stmt))


# --- routing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    department: str
    co_departments: tuple[str, ...] = ()
    rule_id: int | None = None  # the routing rule that decided, if any


def route(*, session: Session, case: Case) -> Route:
    """Who handles a case: the first matching routing rule, else its class's department. The
    place decides the grid and committee (kept on the case from its place)."""
    areas = {a for a in (case.grid_id, case.committee_id, case.compound_id) if a is not None}
    rules = session.scalars(select(RoutingRule).where(RoutingRule.active.is_(True))
                            .order_by(RoutingRule.position, RoutingRule.id))
    for rule in rules:
        if rule.class_prefix and not case.class_code.startswith(rule.class_prefix):
            continue
        if rule.scenario and rule.scenario != case.scenario:
            continue
        if rule.source and rule.source != case.source:
            continue
        if rule.area_ids and not areas & set(rule.area_ids):
            continue
        return Route(rule.department, tuple(rule.co_departments), rule.id)
    klass = get_class(session=session, code=case.class_code)
    return Route(klass.department if klass else "城运中心")


def list_routing_rules(*, session: Session) -> list[RoutingRule]:
    return list(session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)))


def _check_departments(field: str, names: Iterable[str]) -> list[str]:
    out = []
    for name in names:
        if name not in DEPARTMENTS:
            raise CaseError(field, f"{name!r} is not a known department")
        out.append(name)
    return out


def save_routing_rule(*, session: Session, department: str, class_prefix: str = "", scenario: str = "",
                      source: str = "", area_ids: Iterable[int] = (), co_departments: Iterable[str] = (),
                      position: int = 100, note: str = "", rule: RoutingRule | None = None) -> RoutingRule:
    """Add (or change) a routing rule: cases matching it go to ``department`` instead of their
    class's; the first matching rule by position wins. A dispatcher can still choose another."""
    _check_departments("department", [department])
    co = _check_departments("co_departments", co_departments)
    if source and source not in SOURCES:
        raise CaseError("source", f"{source!r} is not one of {', '.join(SOURCES)}")
    if scenario and not (len(scenario) == 3 and scenario[0] == "S" and scenario[1:].isdigit()):
        raise CaseError("scenario", "S01…S20 or empty")
    areas = [int(a) for a in area_ids]
    if areas:
        found = set(session.scalars(select(Place.id).where(Place.id.in_(areas), Place.kind.in_(
            ("grid", "committee", "compound")))))
        missing = [a for a in areas if a not in found]
        if missing:
            raise CaseError("area_ids", f"{missing} are not grids, committees or compounds")
    if not (class_prefix or scenario or source or areas):
        raise CaseError("class_prefix", "a rule matches on at least one of class_prefix, scenario, source, area_ids")
    if rule is None:
        rule = RoutingRule()
        session.add(rule)
    rule.department, rule.co_departments, rule.class_prefix = department, co, class_prefix[:20]
    rule.scenario, rule.source, rule.area_ids = scenario, source, areas
    rule.position, rule.note, rule.active = position, note[:300], True
    session.flush()
    return rule


def delete_routing_rule(*, session: Session, rule: RoutingRule) -> None:
    session.delete(rule)
    session.flush()


def update_class(*, session: Session, klass: CaseClass, department: str | None = None,
                 handle_hours: float | None = None, urgent_hours: float | None = None,
                 public: bool | None = None, active: bool | None = None) -> CaseClass:
    """Change who handles a class and in how many working hours (the tenant's own catalog)."""
    if department is not None:
        klass.department = _check_departments("department", [department])[0]
    for field, value in (("handle_hours", handle_hours), ("urgent_hours", urgent_hours)):
        if value is not None:
            if not 0 < value <= 2000:
                raise CaseError(field, "0 < hours ≤ 2000 working hours")
            setattr(klass, field, float(value))
    if public is not None:
        klass.public = public
    if active is not None:
        klass.active = active
    session.flush()
    session.info.pop("_case_classes", None)
    return klass


# --- deadlines -------------------------------------------------------------------------------

def _tenant_settings(session: Session) -> dict[str, Any]:
    cache = session.info.setdefault("_tenant_settings", {})
    tenant_id = session.info["tenant_id"]
    if tenant_id not in cache:
        tenant = session.get(Tenant, tenant_id)
        cache[tenant_id] = dict(tenant.settings or {}) if tenant else {}
    return dict(cache[tenant_id])


def work_calendar(*, session: Session, department: str | None = None) -> WorkCalendar:
    """The tenant's working calendar, or the department's own where the tenant set one."""
    return calendar_for(_tenant_settings(session), department)


def stage_hours(*, session: Session, case: Case, stage: str) -> float | None:
    """Working hours allowed for ``stage`` of ``case`` (None: the stage has no deadline)."""
    if stage == DISPATCHED:
        klass = get_class(session=session, code=case.class_code)
        if klass is None:
            return 16.0
        return klass.urgent_hours if case.priority == "urgent" else klass.handle_hours
    custom = _tenant_settings(session).get("case_stage_hours") or {}
    hours = custom.get(stage, STAGE_HOURS.get(stage))
    return float(hours) if hours is not None else None


def _outside_limit(case: Case) -> dt.datetime | None:
    """A time limit the case brought with it (a 12345 order's 办理时限), if any."""
    raw = ((case.attrs or {}).get("hotline") or {}).get("limit_at")
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


def _set_stage(session: Session, case: Case, stage: str, now: dt.datetime) -> None:
    case.stage = stage
    hours = stage_hours(session=session, case=case, stage=stage) if stage in OPEN_STAGES else None
    cal = work_calendar(session=session, department=case.department)
    case.stage_due_at = cal.add(now, hours) if hours is not None else None


# --- the timeline ----------------------------------------------------------------------------

def _step(session: Session, case: Case, action: str, *, actor: str, now: dt.datetime, from_stage: str | None,
          note: str = "", department: str | None = None, data: dict[str, Any] | None = None) -> CaseStep:
    step = CaseStep(case_id=case.id, at=now, actor=actor, action=action, from_stage=from_stage,
                    to_stage=case.stage, department=department, note=note[:2000], data=data or {})
    session.add(step)
    return step


def timeline(*, session: Session, case_id: int) -> list[CaseStep]:
    return list(session.scalars(select(CaseStep).where(CaseStep.case_id == case_id).order_by(CaseStep.id)))


def _payload(case: Case, action: str, step: CaseStep) -> dict[str, Any]:
    return {"case_id": case.id, "code": case.code, "action": action, "stage": case.stage,
            "title": case.title, "class_code": case.class_code, "department": case.department,
            "co_departments": list(case.co_departments or []), "grid_id": case.grid_id,
            "committee_id": case.committee_id, "priority": case.priority, "source": case.source,
            "assignee_id": case.assignee_id, "escalation_level": case.escalation_level,
            "due_at": case.stage_due_at.isoformat() if case.stage_due_at else None,
            "reporter_user_id": case.reporter_user_id, "actor": step.actor, "note": step.note}


# --- opening a case --------------------------------------------------------------------------

def open_case(*, session: Session, title: str, class_code: str, source: str, actor: str,
              description: str = "", place_id: int | None = None, lon: float | None = None,
              lat: float | None = None, address_text: str = "", priority: str = "normal",
              source_ref: str | None = None, reporter_name: str | None = None,
              reporter_phone: str | None = None, reporter_user_id: int | None = None,
              alarm_id: int | None = None, service_code: str | None = None, public: bool = False,
              scenario: str = "", attrs: dict[str, Any] | None = None, register: bool = False,
              dispatch: bool = False, now: dt.datetime | None = None) -> Case:
    """Report a case (信息收集); with ``register`` also register it, with ``dispatch`` also send
    it to its routed department (what an alarm or a dispatcher's own report does at once)."""
    now = now or dt.datetime.now(dt.UTC)
    if source not in SOURCES:
        raise CaseError("source", f"{source!r} is not one of {', '.join(SOURCES)}")
    if priority not in PRIORITIES:
        raise CaseError("priority", f"{priority!r} is not urgent or normal")
    title = (title or "").strip()
    if not title:
        raise CaseError("title", "is empty")
    klass = get_class(session=session, code=class_code)
    if klass is None or not klass.active:
        raise CaseError("class_code", f"{class_code!r} is not a known case class")
    place = None
    if place_id is not None:
        place = session.get(Place, place_id)
        if place is None:
            raise CaseError("place_id", f"place {place_id} does not exist")
    if place is not None and lon is None and place.lon is not None:
        lon, lat = place.lon, place.lat
    if place is not None and not address_text:
        address_text = place.address_text or place.name
    case = Case(code="", title=title[:200], description=description, source=source, source_ref=source_ref,
                class_code=class_code, scenario=scenario or klass.scenario, priority=priority,
                stage=REPORTED, place_id=place_id, lon=lon, lat=lat, address_text=address_text[:300],
                reporter_name=reporter_name, reporter_phone=reporter_phone,
                reporter_user_id=reporter_user_id, alarm_id=alarm_id, service_code=service_code,
                public=public, open311_token=secrets.token_hex(12), reported_at=now, attrs=attrs or {})
    _set_stage(session, case, REPORTED, now)
    session.add(case)
    session.flush()
    case.code = f"{now.astimezone(SHANGHAI):%Y%m%d}-{case.id:06d}"
    step = _step(session, case, "report", actor=actor, now=now, from_stage=None,
                 note=description[:2000], data={"source": source, "source_ref": source_ref})
    session.flush()
    events.emit(session, "case.reported", _payload(case, "report", step), at=now)
    if register or dispatch:
        act(session=session, case=case, action="register", actor=actor, now=now)
    if dispatch:
        act(session=session, case=case, action="dispatch", actor=actor, now=now)
    return case


def get_case(*, session: Session, case_id: int) -> Case | None:
    """A case in the session's tenant and scope (None when it does not exist or is out of scope)."""
    return session.scalar(select(Case).where(Case.id == case_id))


# --- actions ---------------------------------------------------------------------------------

# action → (stages it may be taken in, the stage it leads to; None keeps the stage)
ACTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "register": ((REPORTED,), REGISTERED),
    "void": ((REPORTED,), VOID),
    "dispatch": ((REGISTERED, DISPATCHED), DISPATCHED),  # again from dispatched: re-dispatch
    "handle": ((DISPATCHED,), HANDLED),
    "feed_back": ((HANDLED,), FED_BACK),
    "verify": ((FED_BACK,), VERIFIED),
    "rework": ((FED_BACK, VERIFIED), DISPATCHED),  # 返工: back to the department
    "close": ((VERIFIED,), CLOSED),
    "evaluate": ((CLOSED,), EVALUATED),
    "extend": ((DISPATCHED, HANDLED), None),  # 延期
    "suspend": (OPEN_STAGES, None),  # 挂账
    "resume": (OPEN_STAGES, None),
    "supervise": (OPEN_STAGES, None),  # 督查
    "co_handle": ((REGISTERED, DISPATCHED, HANDLED), None),  # 联动处置
    "assign": (OPEN_STAGES, None),
    "comment": (OPEN_STAGES + (CLOSED, EVALUATED, VOID), None),
    "escalate": (OPEN_STAGES, None),
}


# what may still be done to a suspended (挂账) case
WHILE_SUSPENDED = ("resume", "comment", "supervise", "void")


def allowed_actions(case: Case) -> list[str]:
    """The actions the case's stage allows (the pages show these as buttons)."""
    out = []
    for action, (stages, _to) in ACTIONS.items():
        if case.stage not in stages:
            continue
        if case.suspended_at is not None and action not in WHILE_SUSPENDED:
            continue
        if action == "suspend" and case.suspended_at is not None:
            continue
        if action == "resume" and case.suspended_at is None:
            continue
        out.append(action)
    return out


def act(*, session: Session, case: Case, action: str, actor: str, now: dt.datetime | None = None,
        note: str = "", department: str | None = None, departments: Iterable[str] = (),
        hours: float | None = None, satisfaction: int | None = None, assignee_id: int | None = None,
        data: dict[str, Any] | None = None) -> Case:
    """Take one action on a case (see ``ACTIONS``); raises ``CaseError`` naming what is wrong."""
    now = now or dt.datetime.now(dt.UTC)
    if action not in ACTIONS:
        raise CaseError("action", f"{action!r} is not an action on cases")
    stages, to_stage = ACTIONS[action]
    if case.stage not in stages:
        raise CaseError("action", f"{action} is not possible in stage {case.stage}")
    if case.suspended_at is not None and action not in WHILE_SUSPENDED:
        raise CaseError("action", f"the case is suspended (挂账); resume it before {action}")
    from_stage = case.stage
    cal = work_calendar(session=session, department=case.department)
    extra: dict[str, Any] = dict(data or {})
    step_department = None
    if action == "dispatch":
        chosen = route(session=session, case=case) if department is None else Route(department)
        if chosen.department not in DEPARTMENTS:
            raise CaseError("department", f"{chosen.department!r} is not a known department")
        co = [d for d in (*chosen.co_departments, *departments) if d != chosen.department]
        for d in co:
            if d not in DEPARTMENTS:
                raise CaseError("departments", f"{d!r} is not a known department")
        case.department = chosen.department
        case.co_departments = sorted(set(co) | set(case.co_departments or []))
        if assignee_id is not None:
            case.assignee_id = assignee_id
        case.dispatched_at = case.dispatched_at or now
        _set_stage(session, case, DISPATCHED, now)
        limit = _outside_limit(case)
        if limit is not None and case.stage_due_at is not None and limit < case.stage_due_at:
            case.stage_due_at = limit  # the 12345 centre's own time limit binds when it is earlier
        if case.due_at is None or from_stage == REGISTERED:
            case.due_at = case.stage_due_at
        step_department = case.department
        extra.update({"routed_by": "dispatcher" if department else
                      (f"routing_rule:{chosen.rule_id}" if chosen.rule_id else "class"),
                      "co_departments": case.co_departments})
    elif action == "rework":
        case.rework_count += 1
        case.handled_at = None
        case.fed_back_at = None
        _set_stage(session, case, DISPATCHED, now)
        step_department = case.department
    elif action == "extend":
        if hours is None or not 0 < hours <= 400:
            raise CaseError("hours", "an extension needs 0 < hours ≤ 400 working hours")
        if not note.strip():
            raise CaseError("note", "an extension needs a reason")
        case.extension_count += 1
        if case.stage_due_at is not None:
            case.stage_due_at = cal.add(case.stage_due_at, hours)
        if case.due_at is not None:
            case.due_at = cal.add(case.due_at, hours)
        extra["hours"] = hours
    elif action == "suspend":
        if not note.strip():
            raise CaseError("note", "suspending (挂账) needs a reason")
        case.suspended_at = now
        if case.stage_due_at is not None:
            extra["remaining_hours"] = round(cal.between(now, case.stage_due_at), 4)
            case.attrs = {**(case.attrs or {}), "remaining_hours": extra["remaining_hours"],
                          "due_remaining_hours": round(cal.between(now, case.due_at), 4) if case.due_at else None}
    elif action == "resume":
        assert case.suspended_at is not None
        case.suspended_minutes += int((now - case.suspended_at).total_seconds() // 60)
        attrs = dict(case.attrs or {})
        remaining = attrs.pop("remaining_hours", None)
        due_remaining = attrs.pop("due_remaining_hours", None)
        if remaining is not None:
            case.stage_due_at = cal.add(now, max(0.0, remaining))
        if due_remaining is not None:
            case.due_at = cal.add(now, max(0.0, due_remaining))
        case.attrs = attrs
        case.suspended_at = None
    elif action == "supervise":
        case.supervised = True
    elif action == "co_handle":
        added = [d for d in departments if d and d != case.department]
        if not added:
            raise CaseError("departments", "name at least one other department")
        for d in added:
            if d not in DEPARTMENTS:
                raise CaseError("departments", f"{d!r} is not a known department")
        case.co_departments = sorted(set(case.co_departments or []) | set(added))
        extra["added"] = added
    elif action == "assign":
        if assignee_id is None:
            raise CaseError("assignee_id", "is required")
        case.assignee_id = assignee_id
    elif action == "escalate":
        case.escalation_level = min(MAX_ESCALATION, case.escalation_level + 1)
        extra["level"] = case.escalation_level
    elif action == "evaluate":
        if satisfaction is not None and not 1 <= satisfaction <= 5:
            raise CaseError("satisfaction", "must be 1 to 5")
        case.satisfaction = satisfaction
        case.satisfaction_note = note[:500] or None
        case.evaluated_at = now
        _set_stage(session, case, EVALUATED, now)
    elif action == "comment" and not note.strip():
        raise CaseError("note", "a comment needs text")
    if action in ("register", "void", "handle", "feed_back", "verify", "close"):
        _set_stage(session, case, str(to_stage), now)
        stamp = {"register": "registered_at", "void": "voided_at", "handle": "handled_at",
                 "feed_back": "fed_back_at", "verify": "verified_at", "close": "closed_at"}[action]
        setattr(case, stamp, now)
        if action == "handle":
            case.handled_on_time = case.due_at is None or now <= case.due_at
            step_department = case.department
        if action == "close":
            case.closed_on_time = case.overdue_at is None
    step = _step(session, case, action, actor=actor, now=now, from_stage=from_stage, note=note,
                 department=step_department, data=extra)
    session.flush()
    events.emit(session, f"case.{action}", _payload(case, action, step), at=now)
    return case


# --- the sweep -------------------------------------------------------------------------------

def sweep_overdue(*, session: Session, now: dt.datetime | None = None) -> list[Case]:
    """Escalate every open, unsuspended case past its stage's deadline: level 1 at the
    deadline, one more level every ESCALATE_EVERY_HOURS working hours after, up to 3."""
    now = now or dt.datetime.now(dt.UTC)
    stmt = (select(Case).where(Case.stage.in_(OPEN_STAGES), Case.suspended_at.is_(None),
                               Case.stage_due_at.is_not(None), Case.stage_due_at < now)
            .execution_options(all_scopes=True))
    escalated = []
    for case in session.scalars(stmt):
        assert case.stage_due_at is not None
        late = work_calendar(session=session, department=case.department).between(case.stage_due_at, now)
        level = min(MAX_ESCALATION, 1 + int(late // ESCALATE_EVERY_HOURS))
        first = case.overdue_at is None
        if first:
            case.overdue_at = now
        if level <= case.escalation_level and not first:
            continue
        if level > case.escalation_level:
            case.escalation_level = level
        step = _step(session, case, "escalate", actor="system", now=now, from_stage=case.stage,
                     note=f"超期 {late:.1f} 工作小时 (overdue by {late:.1f} working hours)",
                     data={"level": case.escalation_level, "due": case.stage_due_at.isoformat()})
        session.flush()
        events.emit(session, "case.escalated", _payload(case, "escalate", step), at=now)
        escalated.append(case)
    return escalated
