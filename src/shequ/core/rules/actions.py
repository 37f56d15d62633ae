"""Actions of rules, each a small registered piece: alarm, command, case, notify, webhook.

A rule's ``actions`` list runs in order when it fires (and, for those that say so, when it
clears) — the linkage (联动) of one event to several actions: smoke at a charging site → cut
the site's power box → alarm → case. The alarm action runs first whatever the order, so that a
case can name its alarm. Each action's parameters are validated when the rule is saved.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core import events
from shequ.core.rules.kinds import CLEAR, FIRE, REPEAT

if TYPE_CHECKING:
    from shequ.core.rules.engine import Transition


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlarmAction(_Strict):
    do: Literal["alarm"]
    severity: Literal["CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE"] | None = None
    auto_clear: bool = Field(True, description="clear the alarm when the rule clears")


class Target(_Strict):
    device_type: str = Field(max_length=40)
    at: Literal["place", "facility", "building", "compound"] = "place"


class CommandAction(_Strict):
    do: Literal["command"]
    name: str = Field(max_length=60)
    args: dict[str, Any] = Field(default_factory=dict)
    target: Literal["self"] | Target = "self"
    on: Literal["fire", "clear"] = "fire"


class CaseAction(_Strict):
    do: Literal["case"]
    class_code: str = Field(max_length=20)
    dispatch: bool = True
    department: str | None = None
    priority: Literal["urgent", "normal"] | None = None


class NotifyAction(_Strict):
    do: Literal["notify"]
    roles: list[str] = Field(default_factory=lambda: ["dispatcher"])
    channels: list[Literal["inapp", "sms", "voice"]] = Field(default_factory=lambda: ["inapp"])  # type: ignore[arg-type]
    text: str = Field("", max_length=300)
    on: Literal["fire", "clear"] = "fire"


class WebhookAction(_Strict):
    do: Literal["webhook"]
    on: Literal["fire", "clear", "both"] = "fire"


SPECS: dict[str, type[BaseModel]] = {
    "alarm": AlarmAction, "command": CommandAction, "case": CaseAction, "notify": NotifyAction,
    "webhook": WebhookAction,
}
ORDER = {"alarm": 0, "command": 1, "case": 2, "notify": 3, "webhook": 4}


def parse_actions(items: list[dict[str, Any]]) -> list[BaseModel]:
    """Validate a rule's actions (raises ValueError naming the position and field)."""
    out = []
    for n, item in enumerate(items):
        kind = item.get("do") if isinstance(item, dict) else None
        if kind not in SPECS:
            raise ValueError(f"actions[{n}].do: {kind!r} is not one of {', '.join(SPECS)}")
        try:
            out.append(SPECS[kind].model_validate(item))
        except Exception as exc:
            raise ValueError(f"actions[{n}]: {exc}") from exc
    return out


def _now(now_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)


def _subject_names(session: Session, tr: Transition) -> tuple[str, int | None]:
    """A readable name of the subject (device and where it is) and the place to file it at."""
    from shequ.core.iot.models import Device
    from shequ.core.places.models import Place

    if tr.device_id is not None:
        device = session.get(Device, tr.device_id)
        if device is not None:
            place_id = device.place_id or device.building_id or device.compound_id or device.committee_id or device.grid_id
            place = session.get(Place, place_id) if place_id else None
            where = (place.address_text or place.name) if place else ""
            return f"{device.name}{' · ' + where if where else ''}", place_id
    if tr.place_id is not None:
        place = session.get(Place, tr.place_id)
        if place is not None:
            return place.address_text or place.name, place.id
    return tr.subject, tr.place_id


def _alarm(session: Session, tr: Transition, spec: AlarmAction, now_ms: int, ctx: dict[str, Any]) -> None:
    from shequ.core.alarms import service as alarms
    from shequ.core.alarms.models import Alarm

    rule = tr.rule
    if tr.what in (FIRE, REPEAT):
        name, place_id = _subject_names(session, tr)
        obs = tr.obs
        context: dict[str, Any] = {"ts": tr.ts, "value": tr.st.value, "rule": rule.code, "version": rule.version}
        if obs is not None:
            context.update({"msg": obs.msg_id, "event": obs.event, "values": obs.values, "data": obs.data})
        alarm, _new = alarms.raise_alarm(
            session=session, type=rule.alarm_type, source=tr.subject, severity=spec.severity or rule.severity,
            title=f"{rule.name} · {name}", device_id=tr.device_id, place_id=place_id, rule_id=rule.id,
            rule_version=rule.version, scenario=rule.scenario, context=context, source_ms=tr.ts,
            actor=f"rule:{rule.code}", now=_now(now_ms))
        tr.st.alarm_id = alarm.id
        ctx["alarm"] = alarm
    elif tr.what == CLEAR and spec.auto_clear:
        alarm = None
        if tr.st.alarm_id:
            alarm = session.scalar(select(Alarm).where(Alarm.id == tr.st.alarm_id)
                                   .execution_options(all_scopes=True))
        if alarm is None or alarm.active_key is None:
            alarm = alarms.active_alarm(session=session, source=tr.subject, type=rule.alarm_type)
        if alarm is not None and alarm.active_key is not None:
            alarms.clear(session=session, alarm=alarm, actor=f"rule:{rule.code}", now=_now(now_ms))


def _command(session: Session, tr: Transition, spec: CommandAction, now_ms: int, ctx: dict[str, Any]) -> None:
    from shequ.core.iot import commands
    from shequ.core.iot.models import Device
    from shequ.core.places.models import Tenant

    if (spec.on == "fire" and tr.what != FIRE) or (spec.on == "clear" and tr.what != CLEAR):
        return
    source = session.get(Device, tr.device_id) if tr.device_id is not None else None
    if spec.target == "self":
        targets = [source] if source is not None else []
    else:
        target = spec.target
        assert isinstance(target, Target)
        stmt = select(Device).where(Device.type_code == target.device_type, Device.status == "active")
        if target.at == "place":
            place_id = source.place_id if source is not None else tr.place_id
            stmt = stmt.where(Device.place_id == place_id)
        elif target.at == "facility":
            stmt = stmt.where(Device.facility_id == (source.facility_id if source else None),
                              Device.facility_id.is_not(None))
        elif target.at == "building":
            stmt = stmt.where(Device.building_id == (source.building_id if source else None))
        else:
            stmt = stmt.where(Device.compound_id == (source.compound_id if source else None))
        targets = list(session.scalars(stmt.execution_options(all_scopes=True)))
    after: list[Callable[[], None]] = session.info.setdefault("after_commit", [])
    sent = []
    for device in targets:
        try:
            cmd = commands.store_command(session=session, device=device, name=spec.name, args=spec.args,
                                         actor=f"rule:{tr.rule.code}", source=f"rule:{tr.rule.id}")
        except commands.CommandRefused as exc:
            ctx.setdefault("errors", []).append(f"command {spec.name} to {device.code}: {exc}")
            continue
        tenant_code = session.scalar(select(Tenant.code).where(Tenant.id == device.tenant_id))
        after.append(_sender(session.info["engine"], cmd.id, str(tenant_code), device.code, spec.name, dict(cmd.args)))
        sent.append({"device": device.code, "command_id": cmd.id})
    ctx["commands"] = sent
    alarm = ctx.get("alarm")
    if alarm is not None and sent:
        from shequ.core.alarms.models import AlarmEvent

        session.add(AlarmEvent(alarm_id=alarm.id, at=_now(now_ms), actor=f"rule:{tr.rule.code}",
                               action="linkage", note=f"联动命令 {spec.name}", data={"commands": sent}))


def _sender(engine: Any, cmd_id: int, tenant: str, code: str, name: str,
            args: dict[str, Any]) -> Callable[[], None]:
    from shequ.core.iot import commands

    def send() -> None:
        with engine.begin() as conn:
            commands.send_stored(execute=conn.execute, command_id=cmd_id, tenant_code=tenant,
                                 device_code=code, name=name, args=args)

    return send


def _case(session: Session, tr: Transition, spec: CaseAction, now_ms: int, ctx: dict[str, Any]) -> None:
    """The alarm's case is opened just after the batch commits (``alarms.service.run_pending``):
    opening, registering and dispatching a case is heavy work that must not hold up the ingest
    of every other message of the batch, nor the alarm itself."""
    alarm = ctx.get("alarm")
    if tr.what != FIRE or alarm is None or alarm.case_id is not None:
        return
    body = spec.model_dump(mode="json", exclude_none=True)
    body["actor"] = f"rule:{tr.rule.code}"
    alarm.pending_actions = [*(alarm.pending_actions or []), body]
    alarm.pending_since = alarm.pending_since or _now(now_ms)
    after = session.info.get("after_commit")
    if after is not None and session.info.get("engine") is not None and not session.info.get("_wakes_pending"):
        from shequ.core.alarms.service import wake_pending

        session.info["_wakes_pending"] = True  # one wake-up per batch is enough
        after.append(functools.partial(wake_pending, session.info["engine"]))


def _notify(session: Session, tr: Transition, spec: NotifyAction, now_ms: int, ctx: dict[str, Any]) -> None:
    if (spec.on == "fire" and tr.what != FIRE) or (spec.on == "clear" and tr.what != CLEAR):
        return
    name, place_id = _subject_names(session, tr)
    alarm = ctx.get("alarm")
    events.emit(session, "rule.notify", {
        "rule": tr.rule.code, "rule_id": tr.rule.id, "what": tr.what, "roles": spec.roles,
        "channels": spec.channels, "text": spec.text or f"{tr.rule.name} · {name}", "place_id": place_id,
        "device_id": tr.device_id, "severity": tr.rule.severity, "alarm_id": alarm.id if alarm else None,
    }, at=_now(now_ms))


def _webhook(session: Session, tr: Transition, spec: WebhookAction, now_ms: int, ctx: dict[str, Any]) -> None:
    if spec.on != "both" and spec.on != tr.what:
        return
    alarm = ctx.get("alarm")
    events.emit(session, f"rule.{tr.what}", {
        "rule": tr.rule.code, "rule_id": tr.rule.id, "version": tr.rule.version, "subject": tr.subject,
        "device_id": tr.device_id, "place_id": tr.place_id, "ts": tr.ts, "value": tr.st.value,
        "alarm_id": alarm.id if alarm else tr.st.alarm_id,
    }, at=_now(now_ms))


RUNNERS: dict[str, Callable[..., None]] = {
    "alarm": _alarm, "command": _command, "case": _case, "notify": _notify, "webhook": _webhook,
}


def run(session: Session, tr: Transition, now_ms: int) -> dict[str, Any]:
    """Run a transition's actions (a rule with none raises and clears its alarm)."""
    items = tr.rule.actions or [{"do": "alarm"}]
    if tr.what == REPEAT:
        items = [a for a in items if a.get("do") == "alarm"]
    ctx: dict[str, Any] = {}
    for item in sorted(items, key=lambda a: ORDER.get(a.get("do", ""), 9)):
        spec = SPECS[item["do"]].model_validate(item)
        RUNNERS[item["do"]](session, tr, spec, now_ms, ctx)
    return ctx
