"""Who is told of which domain event: the recipient rules, and the listeners that apply them.

``install()`` registers the listeners with ``shequ.core.events`` (idempotent); the app factory,
the worker and tests call it. Every event then, in its own transaction:

1. writes one in-app Notification per recipient (``recipients`` below decides who), sends SMS or
   voice to recipients whose channels say so, and wakes their live streams on commit;
2. queues a WebhookDelivery for every active webhook whose patterns match the event's name.

Recipients are active users of the event's tenant; the user who acted (the payload's
``actor``) is never told of their own action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shequ.core import events
from shequ.core.cases.models import Case
from shequ.core.events import Event
from shequ.core.iam.models import Role, User
from shequ.core.notify import service, webhooks
from shequ.core.notify.service import INAPP, Message

ALARM_EVENTS = ("alarm.raised", "alarm.repeated", "alarm.acked", "alarm.cleared", "alarm.assigned",
                "alarm.escalated", "alarm.reminder", "alarm.commented")
# case actions that move a case to another stage (ACTIONS with a target stage), and the report
STAGE_ACTIONS = frozenset({"report", "register", "void", "dispatch", "handle", "feed_back", "verify",
                           "rework", "close", "evaluate"})
LEADER_ALARM_LEVEL = 2  # alarm.escalated from this level on reaches the leaders too
DISPATCHER_CASE_LEVEL = 1  # case.escalated from this level on reaches the dispatchers
LEADER_CASE_LEVEL = 3  # … and from this level on the leaders

ALARM_VERBS = {"raised": "新告警", "repeated": "告警重复", "acked": "告警已确认", "cleared": "告警已清除",
               "assigned": "告警指派给您", "escalated": "告警升级", "reminder": "告警提醒",
               "commented": "告警新备注"}
CASE_VERBS = {"report": "新上报事件", "register": "事件已立案", "void": "事件已作废", "dispatch": "事件派遣",
              "handle": "事件已处置", "feed_back": "事件已反馈", "verify": "事件已核查", "rework": "事件返工",
              "close": "事件已结案", "evaluate": "事件已评价", "extend": "事件延期", "suspend": "事件挂账",
              "resume": "事件恢复办理", "supervise": "事件督查", "co_handle": "事件联动处置",
              "assign": "事件指派给您", "comment": "事件新备注", "escalate": "事件升级"}


@dataclass
class Audience:
    """Who an event reaches: by role and area (filtered by alarm subscriptions for alarms), and
    named users (assignees, reporters) who are told regardless of their alarm filters."""

    roles: set[str] = field(default_factory=set)  # every active user of these roles
    grids: set[int] = field(default_factory=set)  # grid workers of these grids
    committees: set[int] = field(default_factory=set)  # committee staff of these committees
    compounds: set[int] = field(default_factory=set)  # property staff of these compounds
    departments: set[str] = field(default_factory=set)  # department staff of these departments
    direct: set[int] = field(default_factory=set)  # these users


def _area(audience: Audience, p: dict[str, Any], *, compounds: bool = True) -> None:
    for key, target in (("grid_id", audience.grids), ("committee_id", audience.committees)):
        if p.get(key) is not None:
            target.add(int(p[key]))
    if compounds and p.get("compound_id") is not None:
        audience.compounds.add(int(p["compound_id"]))


def recipients(session: Session, event: Event) -> Audience:
    """The rules, one per line of the table in docs/notifications.md."""
    entity, _, verb = event.name.partition(".")
    p = event.payload
    who = Audience()
    if entity == "alarm":
        level = int(p.get("escalation_level") or 0)
        if verb == "assigned":
            if p.get("assignee_id"):
                who.direct.add(int(p["assignee_id"]))
            return who
        _area(who, p)  # grid workers, committee staff and property staff of the alarm's area
        who.roles.add(Role.DISPATCHER)  # the city-operations centre sees every alarm
        if verb == "escalated" and level >= LEADER_ALARM_LEVEL:
            who.roles.add(Role.LEADER)
        return who
    if entity == "case":
        action = str(p.get("action") or verb)
        if verb == "escalated":
            action = "escalate"
        level = int(p.get("escalation_level") or 0)
        if action in ("dispatch", "rework", "co_handle"):  # the handling departments
            who.departments |= {d for d in [p.get("department"), *(p.get("co_departments") or [])] if d}
        if action in ("dispatch", "rework", "assign") and p.get("assignee_id"):
            who.direct.add(int(p["assignee_id"]))
        if action in STAGE_ACTIONS and p.get("source") == "patrol":  # the area's own staff
            _area(who, p, compounds=False)
        if action == "escalate":
            if level >= DISPATCHER_CASE_LEVEL:
                who.roles.add(Role.DISPATCHER)
            if level >= LEADER_CASE_LEVEL:
                who.roles.add(Role.LEADER)
        if "reporter_user_id" in p:  # the case's payload names its reporter
            reporter = p["reporter_user_id"]
        else:
            reporter = session.scalar(select(Case.reporter_user_id).where(Case.id == p.get("case_id"))
                                      .execution_options(all_scopes=True)) if p.get("case_id") else None
        if reporter is not None:
            who.direct.add(int(reporter))
    return who


def _users(session: Session, who: Audience) -> tuple[list[User], set[int]]:
    """The active users the audience names, and which of them are named directly."""
    roles = set(who.roles)
    roles |= {Role.GRID_WORKER} if who.grids else set()
    roles |= {Role.COMMITTEE} if who.committees else set()
    roles |= {Role.PROPERTY} if who.compounds else set()
    roles |= {Role.DEPARTMENT} if who.departments else set()
    if not roles and not who.direct:
        return [], set()
    users = session.scalars(select(User).where(User.active.is_(True),
                                               or_(User.role.in_(sorted(roles)), User.id.in_(sorted(who.direct))))
                            .order_by(User.id).execution_options(all_scopes=True)).all()
    picked, direct = [], set()
    for user in users:
        bound = user.scope or {}
        named = user.id in who.direct
        matched = (user.role in who.roles
                   or (user.role == Role.GRID_WORKER and _ints(bound.get("grids")) & who.grids)
                   or (user.role == Role.COMMITTEE and _ints(bound.get("committees")) & who.committees)
                   or (user.role == Role.PROPERTY and _ints(bound.get("compounds")) & who.compounds)
                   or (user.role == Role.DEPARTMENT and bound.get("department") in who.departments))
        if named or matched:
            picked.append(user)
            if named:
                direct.add(user.id)
    return picked, direct


def _ints(values: Any) -> set[int]:
    out = set()
    for v in values or ():
        try:
            out.add(int(v))
        except (TypeError, ValueError):
            continue
    return out


def _alarm_message(event: Event) -> Message:
    p = event.payload
    verb = event.name.partition(".")[2]
    kind = "escalation" if verb == "escalated" else "reminder" if verb == "reminder" else "alarm"
    title = f"{ALARM_VERBS.get(verb, verb)}：{p.get('title') or p.get('type') or ''}"
    body = f"{p.get('severity', '')} · {p.get('type', '')}"
    if int(p.get("count") or 1) > 1:
        body += f" · 第 {p['count']} 次"
    if verb == "escalated":
        body += f" · 升级至 {p.get('escalation_level')} 级"
    return Message(kind=kind, title=title, body=body, severity=str(p.get("severity") or ""),
                   link=f"/alarms/{p.get('alarm_id')}", ref=f"alarm:{p.get('alarm_id')}")


def _case_message(event: Event) -> Message:
    p = event.payload
    verb = event.name.partition(".")[2]
    action = "escalate" if verb == "escalated" else str(p.get("action") or verb)
    kind = "escalation" if action == "escalate" else "case"
    title = f"{CASE_VERBS.get(action, action)}：{p.get('title', '')}"
    parts = [str(p.get("code") or ""), str(p.get("department") or "")]
    if action == "escalate":
        parts.append(f"升级至 {p.get('escalation_level')} 级")
    if p.get("note"):
        parts.append(str(p["note"])[:200])
    return Message(kind=kind, title=title, body=" · ".join(x for x in parts if x),
                   severity="urgent" if p.get("priority") == "urgent" else "",
                   link=f"/cases/{p.get('case_id')}", ref=f"case:{p.get('case_id')}",
                   resident_link=f"/m/requests/{p.get('case_id')}")


def deliver(session: Session, event: Event) -> None:
    """Tell an event's recipients: in-app rows, and SMS/voice where their channels say so."""
    entity = event.name.partition(".")[0]
    audience = recipients(session, event)
    users, direct = _users(session, audience)
    actor = str(event.payload.get("actor") or event.actor)
    users = [u for u in users if u.username != actor]
    if not users:
        return
    if entity == "alarm":
        message = _alarm_message(event)
        p = event.payload
        prefs = service.preferences(session=session, user_ids=[u.id for u in users])
        inapp: list[int] = []
        for user in users:
            pref = prefs[user.id]
            severity = str(p.get("severity") or "")
            if user.id not in direct and not pref.wants(severity=severity, type=str(p.get("type") or ""),
                                                        scenario=str(p.get("scenario") or "")):
                continue
            channels = pref.channels_for(severity)
            if INAPP in channels or user.id in direct:
                inapp.append(user.id)
            service.send_outbound(session=session, user=user, channels=channels, message=message)
        service.notify(session=session, user_ids=inapp, message=message, at=event.at)
    else:
        service.notify(session=session, user_ids=[u.id for u in users], message=_case_message(event),
                       at=event.at)


def _on_domain_event(session: Session, event: Event) -> None:
    deliver(session, event)


def _on_rule_notify(session: Session, event: Event) -> None:
    """A rule's notify action: the roles it names — area roles only where the subject is."""
    from shequ.core.places.models import Place

    p = event.payload
    roles = set(p.get("roles") or [])
    who = Audience(roles=roles & {Role.DISPATCHER, Role.LEADER, Role.ADMIN, Role.DEPARTMENT})
    place = session.get(Place, p["place_id"]) if p.get("place_id") else None
    if place is not None:
        area = place.ancestry()
        if Role.GRID_WORKER in roles and area.get("grid_id"):
            who.grids.add(int(area["grid_id"]))  # type: ignore[arg-type]
        if Role.COMMITTEE in roles and area.get("committee_id"):
            who.committees.add(int(area["committee_id"]))  # type: ignore[arg-type]
        if Role.PROPERTY in roles and area.get("compound_id"):
            who.compounds.add(int(area["compound_id"]))  # type: ignore[arg-type]
    users, _direct = _users(session, who)
    if not users:
        return
    message = Message(kind="alarm", title=str(p.get("text") or p.get("rule") or ""), body=str(p.get("rule") or ""),
                      severity=str(p.get("severity") or ""),
                      link=f"/alarms/{p['alarm_id']}" if p.get("alarm_id") else "",
                      ref=f"alarm:{p['alarm_id']}" if p.get("alarm_id") else f"rule:{p.get('rule_id')}")
    channels = set(p.get("channels") or [INAPP])
    if INAPP in channels:
        service.notify(session=session, user_ids=[u.id for u in users], message=message, at=event.at)
    for user in users:
        service.send_outbound(session=session, user=user, channels=channels, message=message)


def _on_any_event(session: Session, event: Event) -> None:
    webhooks.enqueue(session=session, event=event)


LISTENERS: tuple[tuple[str, Callable[[Session, Event], None]], ...] = (
    *((name, _on_domain_event) for name in ALARM_EVENTS),
    ("case.*", _on_domain_event),
    ("rule.notify", _on_rule_notify),
    ("*", _on_any_event),
)


def install() -> None:
    """Register the notification and webhook listeners (idempotent)."""
    for pattern, fn in LISTENERS:
        events.listen(pattern, fn)


def uninstall() -> None:
    for pattern, fn in LISTENERS:
        events.unlisten(pattern, fn)
