"""Rules as data: save (validated, versioned), enable, list, the shipped defaults, and the dry run.

A save validates the kind's condition, the target, the time window and every action; it bumps
the version and stores the whole rule in ``rule_version`` with who saved it. The dry run
replays the stored telemetry of the targeted devices over a past period through the same rule
kinds, in memory, and says when the rule would have fired and cleared.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.orm import Session

from shequ.core.alarms.models import SEVERITIES
from shequ.core.errors import FieldError
from shequ.core.iot.types import device_types
from shequ.core.plugins import load_scenarios
from shequ.core.rules import actions as rule_actions
from shequ.core.rules.defaults import KERNEL_RULES
from shequ.core.rules.kinds import CLEAR, FIRE, KINDS, Obs, St, Window, parse_spec
from shequ.core.rules.models import Rule, RuleState, RuleVersion

CODE = re.compile(r"^[a-z][a-z0-9_.-]{1,59}$")
RULE_FIELDS = ("code", "name", "description", "scenario", "kind", "enabled", "target", "spec", "window",
               "severity", "alarm_type", "actions")
DRY_RUN_MAX_ROWS = 500_000


class RuleError(FieldError):
    """A rule that does not validate; ``field`` names the culprit (``spec.op``, ``actions[1].name``)."""


def _pydantic_field(prefix: str, exc: ValidationError) -> RuleError:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return RuleError(f"{prefix}.{loc}" if loc else prefix, first.get("msg", "invalid"))


def validate(body: dict[str, Any]) -> dict[str, Any]:
    """Check a whole rule body; returns it normalised (raises RuleError naming the field)."""
    out = {k: body.get(k) for k in RULE_FIELDS if k in body}
    code = str(out.get("code") or "")
    if not CODE.match(code):
        raise RuleError("code", "lower-case letters, digits, _ . - (2–60), starting with a letter")
    if not str(out.get("name") or "").strip():
        raise RuleError("name", "is empty")
    kind = out.get("kind")
    if kind not in (*KINDS, "composite"):
        raise RuleError("kind", f"{kind!r} is not one of {', '.join([*KINDS, 'composite'])}")
    try:
        spec = parse_spec(str(kind), out.get("spec") or {})
    except ValidationError as exc:
        raise _pydantic_field("spec", exc) from exc
    except ValueError as exc:
        raise RuleError("spec", str(exc)) from exc
    out["spec"] = spec.model_dump(mode="json", exclude_none=True, by_alias=True)
    target: dict[str, Any] = out.get("target") or {}
    if not isinstance(target, dict) or set(target) - {"device_types", "devices", "places", "facility_kinds"}:
        raise RuleError("target", "only device_types, devices, places and facility_kinds")
    if not all(isinstance(v, str) and 0 < len(v) <= 40 for v in target.get("facility_kinds") or []):
        raise RuleError("target.facility_kinds", "must be a list of facility kinds (e.g. charging_station)")
    known = device_types()
    for code_ in target.get("device_types") or []:
        if code_ not in known:
            raise RuleError("target.device_types", f"{code_!r} is not a device type")
    for key in ("devices", "places"):
        if not all(isinstance(v, int) and v > 0 for v in target.get(key) or []):
            raise RuleError(f"target.{key}", "must be a list of ids")
    target = {k: v for k, v in target.items() if v}
    out["target"] = target
    if kind != "composite" and not target.get("device_types") and not target.get("devices"):
        raise RuleError("target", "name the device types (or devices) the rule watches")
    if out.get("window"):
        try:
            out["window"] = Window.model_validate(out["window"]).model_dump()
        except ValidationError as exc:
            raise _pydantic_field("window", exc) from exc
    else:
        out["window"] = None
    severity = out.get("severity") or "MAJOR"
    if severity not in SEVERITIES:
        raise RuleError("severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    out["severity"] = severity
    out["alarm_type"] = str(out.get("alarm_type") or code)[:60]
    try:
        parsed = rule_actions.parse_actions(list(out.get("actions") or []))
    except ValueError as exc:
        raise RuleError("actions", str(exc)) from exc
    out["actions"] = [a.model_dump(mode="json", exclude_none=True) for a in parsed]
    return out


def get_rule(*, session: Session, rule_id: int) -> Rule | None:
    return session.scalar(select(Rule).where(Rule.id == rule_id))


def get_rule_by_code(*, session: Session, code: str) -> Rule | None:
    return session.scalar(select(Rule).where(Rule.code == code))


def list_rules(*, session: Session, scenario: str | None = None) -> list[Rule]:
    stmt = select(Rule).order_by(Rule.scenario, Rule.code)
    if scenario is not None:
        stmt = stmt.where(Rule.scenario == scenario)
    return list(session.scalars(stmt))


def _snapshot(rule: Rule) -> dict[str, Any]:
    return {k: getattr(rule, k) for k in RULE_FIELDS}


def save_rule(*, session: Session, body: dict[str, Any], actor: str, rule: Rule | None = None,
              note: str = "", origin: str = "tenant") -> Rule:
    """Create a rule, or save a new version of ``rule``; every version is kept whole."""
    data = validate(body if rule is None else {**_snapshot(rule), **body})
    if rule is None:
        if get_rule_by_code(session=session, code=data["code"]) is not None:
            raise RuleError("code", f"a rule {data['code']!r} exists already")
        rule = Rule(**data, version=1, origin=origin)
        session.add(rule)
    else:
        if data["code"] != rule.code:
            raise RuleError("code", "a rule's code does not change")
        if all(getattr(rule, k) == data.get(k) for k in RULE_FIELDS if k in data):
            return rule  # nothing changed: no new version
        for key, value in data.items():
            setattr(rule, key, value)
        rule.version += 1
    session.flush()
    session.add(RuleVersion(rule_id=rule.id, version=rule.version, body=_snapshot(rule), saved_by=actor,
                            note=note[:300]))
    if rule.version > 1 or not rule.enabled:
        # a changed condition starts afresh: old states would mean something else now
        session.execute(cast(Table, RuleState.__table__).delete().where(RuleState.rule_id == rule.id,
                                                            RuleState.active.is_(False)))
    session.flush()
    _forget(session)
    return rule


def set_enabled(*, session: Session, rule: Rule, enabled: bool, actor: str) -> Rule:
    return save_rule(session=session, rule=rule, body={"enabled": enabled}, actor=actor,
                     note="启用 enabled" if enabled else "停用 disabled")


def versions(*, session: Session, rule_id: int) -> list[RuleVersion]:
    return list(session.scalars(select(RuleVersion).where(RuleVersion.rule_id == rule_id)
                                .order_by(RuleVersion.version.desc())))


def _forget(session: Session) -> None:
    from shequ.core.rules.engine import default_engine

    default_engine().invalidate(session.info.get("tenant_id"))


def shipped_rules() -> list[dict[str, Any]]:
    """The kernel's default rules and every installed scenario's."""
    out = [dict(r) for r in KERNEL_RULES]
    for spec in load_scenarios().scenarios.values():
        for item in spec.rules:
            out.append({"scenario": spec.id, **dict(item)})
    return out


def install_default_rules(*, session: Session, actor: str = "system") -> list[Rule]:
    """Give the tenant each shipped rule it does not have (a rule it changed is left as it is)."""
    have = {r.code for r in session.scalars(select(Rule))}
    added = []
    for body in shipped_rules():
        if body["code"] not in have:
            added.append(save_rule(session=session, body=body, actor=actor, origin="default",
                                   note="随版本提供的默认规则 (shipped default)"))
    return added


# --- the dry run ---------------------------------------------------------------------------------

@dataclass
class DryRun:
    start: dt.datetime
    end: dt.datetime
    devices: int = 0
    messages: int = 0
    fired: int = 0
    cleared: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # {device_id, subject, what, at, value}
    truncated: bool = False


def dry_run(*, session: Session, body: dict[str, Any], days: float = 7.0, end: dt.datetime | None = None,
            limit: int = 200) -> DryRun:
    """What the rule (saved or not) would have done over the last ``days`` of stored telemetry."""
    data = validate({**body, "code": body.get("code") or "dry_run", "name": body.get("name") or "dry run"})
    if data["kind"] == "composite":
        raise RuleError("kind", "the dry run covers single-device rules; composites depend on other rules")
    end = end or dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=days)
    spec = parse_spec(data["kind"], data["spec"])
    window = Window.model_validate(data["window"]) if data.get("window") else None
    kind = KINDS[data["kind"]]
    target = data["target"]
    # the devices through the ORM, so a scoped user's dry run covers only the devices they may see
    from shequ.core.iot.models import Device

    stmt = select(Device.id, Device.place_id, Device.building_id, Device.compound_id, Device.committee_id,
                  Device.grid_id)
    if target.get("device_types"):
        stmt = stmt.where(Device.type_code.in_(target["device_types"]))
    if target.get("facility_kinds"):
        from shequ.core.registry.models import Facility

        stmt = stmt.where(Device.facility_id.in_(select(Facility.id).where(Facility.kind.in_(target["facility_kinds"]))))
    visible = session.execute(stmt).all()
    wanted_devices = set(target.get("devices") or ())
    places = set(target.get("places") or ())
    ids = [r[0] for r in visible if (not wanted_devices or r[0] in wanted_devices)
           and (not places or set(r[1:]) & places)]
    conn = session.connection()
    result = DryRun(start=start, end=end, devices=len(ids))
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    step_ms = 60_000
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        rows = conn.execute(text("SELECT device_id, ts, kind, name, body FROM telemetry WHERE device_id IN :d "
                                 "AND ts >= :a AND ts < :b AND kind IN ('t', 'e') ORDER BY device_id, ts")
                            .bindparams(bindparam("d", expanding=True)), {"d": part, "a": start_ms, "b": end_ms})
        states: dict[int, St] = {}
        last_tick: dict[int, int] = {}
        for device_id, ts, mkind, name, body_text in rows:
            result.messages += 1
            if result.messages > DRY_RUN_MAX_ROWS:
                result.truncated = True
                break
            st = states.get(device_id)
            if st is None:
                st = states[device_id] = St()
                kind.baseline(spec, st, start_ms)
                last_tick[device_id] = start_ms
            _ticks(kind, spec, st, window, last_tick[device_id], ts, step_ms, device_id, result, limit)
            last_tick[device_id] = ts
            payload = json.loads(body_text)
            obs = Obs(ts=ts, device_id=device_id, values=payload if mkind == "t" else None,
                      event=name if mkind == "e" else None, data=payload if mkind == "e" else None)
            what = kind.observe(spec, st, obs)
            _record(what, st, window, ts, device_id, result, limit)
        for device_id in part:
            st = states.get(device_id)
            if st is None and kind.timed:
                st = states[device_id] = St()
                kind.baseline(spec, st, start_ms)
                last_tick[device_id] = start_ms
            if st is not None:
                _ticks(kind, spec, st, window, last_tick.get(device_id, start_ms), end_ms, step_ms, device_id,
                       result, limit)
    return result


def _ticks(kind: Any, spec: Any, st: St, window: Window | None, a: int, b: int, step: int, device_id: int,
           result: DryRun, limit: int) -> None:
    """The clock between two messages: tick at the moments a timed condition can change (the
    end of a silence, of a minimum duration, of a quiet period, of a rate window)."""
    if not kind.timed:
        return
    for _ in range(4):
        spans = [getattr(spec, name, None) for name in ("period_s", "for_s", "clear_after_s", "window_s")]
        bases = [st.last_ms, st.since_ms, max(st.last_ms, st.fired_ms), st.last_ms]
        due = sorted(base + s_ * 1000 for base, s_ in zip(bases, spans, strict=True) if s_ and base)
        due = [t for t in due if a < t < b]
        if not due:
            return
        what = kind.tick(spec, st, due[0])
        _record(what, st, window, due[0], device_id, result, limit)
        a = due[0]


def _record(what: str | None, st: St, window: Window | None, ts: int, device_id: int, result: DryRun,
            limit: int) -> None:
    if what == FIRE and window is not None and not window.contains(ts):
        st.active = False
        return
    if what not in (FIRE, CLEAR):
        return
    if what == FIRE:
        result.fired += 1
    else:
        result.cleared += 1
    if len(result.events) < limit:
        result.events.append({"device_id": device_id, "what": what,
                              "at": dt.datetime.fromtimestamp(ts / 1000, dt.UTC).isoformat(), "value": st.value})
