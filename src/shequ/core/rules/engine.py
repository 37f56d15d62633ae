"""The rule engine: evaluates every ingest batch inside its transaction, and sweeps the clock.

``handle(changes)`` is the pipeline's change handler: for each reading and event of the batch
it finds the tenant's enabled rules that target the device, loads (in one query) the states of
those (rule, device) pairs, lets the rule kind move each state, writes the changed states back,
then evaluates composite rules at the places the batch touched, and runs the actions of every
rule that fired or cleared — alarms, commands, cases, webhooks — in the same transaction. So an
alarm commits with the message that caused it, and any worker can take any message: the state
is in the database, not in the process.

``sweep(engine, now_ms)`` runs the clock-driven part (absence, staleness, minimum durations,
rate windows, time windows of composites); the worker calls it every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, select, text

from shequ.core.places.service import forget_on_new_tenant
from shequ.core.rules.kinds import (
    FIRE,
    KINDS,
    CompositeSpec,
    GeofenceSpec,
    Obs,
    St,
    Window,
    area_shape,
    parse_spec,
)
from shequ.core.rules.models import Rule, RuleState

if TYPE_CHECKING:
    from shequ.core.iot.pipeline import Changes, DeviceInfo

log = logging.getLogger(__name__)
RULE_CACHE_S = 5.0
CHUNK = 500


@dataclass
class Compiled:
    """A rule ready to evaluate: its spec parsed once, its target as sets."""

    id: int
    tenant_id: int
    code: str
    name: str
    version: int
    kind: str
    spec: Any
    window: Window | None
    severity: str
    alarm_type: str
    scenario: str
    actions: list[dict[str, Any]]
    device_types: frozenset[str]
    devices: frozenset[int]
    places: frozenset[int]
    facility_kinds: frozenset[str] = frozenset()

    def applies(self, dev: DeviceInfo) -> bool:
        if self.device_types and dev.type_code not in self.device_types:
            return False
        if self.facility_kinds and dev.facility_kind not in self.facility_kinds:
            return False
        if self.devices and dev.id not in self.devices:
            return False
        return not self.places or bool({dev.place_id, *dev.area_ids} & self.places)


@dataclass
class Transition:
    rule: Compiled
    subject: str
    what: str  # fire | clear | repeat
    st: St
    ts: int
    device_id: int | None
    place_id: int | None
    obs: Obs | None = None


@dataclass
class TenantRules:
    loaded: float
    simple: list[Compiled] = field(default_factory=list)
    composite: list[Compiled] = field(default_factory=list)
    timed: list[Compiled] = field(default_factory=list)
    by_code: dict[str, Compiled] = field(default_factory=dict)


def compile_rule(row: Rule | Any, geometry: dict[str, Any] | None = None) -> Compiled:
    spec = parse_spec(row.kind, row.spec or {})
    if isinstance(spec, GeofenceSpec):
        area_shape(spec, geometry)
    target = row.target or {}
    return Compiled(
        id=row.id, tenant_id=row.tenant_id, code=row.code, name=row.name, version=row.version, kind=row.kind,
        spec=spec, window=Window.model_validate(row.window) if row.window else None, severity=row.severity,
        alarm_type=row.alarm_type, scenario=row.scenario or "", actions=list(row.actions or []),
        device_types=frozenset(target.get("device_types") or ()), devices=frozenset(target.get("devices") or ()),
        places=frozenset(target.get("places") or ()), facility_kinds=frozenset(target.get("facility_kinds") or ()))


class RuleEngine:
    """Rules per tenant (cached a few seconds) and the evaluation of batches and of the clock."""

    def __init__(self, ttl: float = RULE_CACHE_S) -> None:
        self.ttl = ttl
        self._rules: dict[int, TenantRules] = {}
        self._lock = threading.Lock()

    def invalidate(self, tenant_id: int | None = None) -> None:
        with self._lock:
            if tenant_id is None:
                self._rules.clear()
            else:
                self._rules.pop(tenant_id, None)

    def rules_of(self, conn: Connection, tenant_id: int) -> TenantRules:
        now = time.monotonic()
        cached = self._rules.get(tenant_id)
        if cached is not None and now - cached.loaded < self.ttl:
            return cached
        out = TenantRules(loaded=now)
        rows = conn.execute(select(Rule.__table__).where(Rule.tenant_id == tenant_id, Rule.enabled.is_(True))).all()
        for row in rows:
            try:
                geometry = None
                if row.kind == "geofence" and (row.spec or {}).get("place_id"):
                    geometry = conn.execute(text("SELECT geometry FROM place WHERE id = :p AND tenant_id = :t"),
                                            {"p": row.spec["place_id"], "t": tenant_id}).scalar()
                    if isinstance(geometry, str):
                        import json

                        geometry = json.loads(geometry)
                rule = compile_rule(row, geometry)
            except Exception:  # a rule that no longer validates is skipped, loudly
                log.exception("rule %s (%s) does not compile; skipped", row.code, row.id)
                continue
            out.by_code[rule.code] = rule
            if rule.kind == "composite":
                out.composite.append(rule)
            else:
                out.simple.append(rule)
                if KINDS[rule.kind].timed:
                    out.timed.append(rule)
        with self._lock:
            self._rules[tenant_id] = out
        return out

    # --- the batch ------------------------------------------------------------------------

    def handle(self, changes: Changes) -> None:
        """The pipeline's change handler (runs inside the batch's transaction)."""
        per_tenant: dict[int, list[Obs]] = defaultdict(list)
        for device_id, ts, values in changes.readings:
            dev = changes.devices.get(device_id)
            if dev is not None:
                per_tenant[dev.tenant_id].append(Obs(ts=ts, device_id=device_id, values=values))
        for device_id, ts, etype, data in changes.events:
            dev = changes.devices.get(device_id)
            if dev is not None:
                per_tenant[dev.tenant_id].append(Obs(ts=ts, device_id=device_id, event=etype, data=data))
        touched_places: dict[int, set[int]] = defaultdict(set)
        for device_id, _ts, _attr, _new, _old in changes.state_changes:
            dev = changes.devices.get(device_id)
            if dev is not None and dev.place_id is not None:
                touched_places[dev.tenant_id].add(dev.place_id)
        for tenant_id in set(per_tenant) | set(touched_places):
            rules = self.rules_of(changes.conn, tenant_id)
            if not rules.simple and not rules.composite:
                continue
            obs = sorted(per_tenant.get(tenant_id, []), key=lambda o: o.ts)
            transitions = self._evaluate(changes.conn, tenant_id, rules, obs, changes.devices)
            if rules.composite:  # the places the batch touched, only when a composite may look at them
                places = set(touched_places.get(tenant_id, set()))
                places |= {t.place_id for t in transitions if t.place_id is not None}
                places |= {p for o in obs if (p := changes.devices[o.device_id].place_id) is not None}
                if places:
                    transitions += self._composites(changes.conn, rules, tenant_id, places, changes.now_ms)
            if transitions:
                run_actions(changes.conn, tenant_id, transitions, changes.now_ms, changes.after_commit)

    def _evaluate(self, conn: Connection, tenant_id: int, rules: TenantRules, obs: list[Obs],
                  devices: dict[int, DeviceInfo]) -> list[Transition]:
        pairs: dict[tuple[int, int], list[Obs]] = defaultdict(list)
        wanted: dict[int, list[Compiled]] = {}
        for o in obs:
            dev = devices[o.device_id]
            applicable = wanted.get(o.device_id)
            if applicable is None:
                applicable = wanted[o.device_id] = [r for r in rules.simple if r.applies(dev)]
            for rule in applicable:
                if _concerns(rule, o):
                    pairs[(rule.id, o.device_id)].append(o)
        if not pairs:
            return []
        by_id = {r.id: r for r in rules.simple}
        states = load_states(conn, [(rid, f"d:{did}") for rid, did in pairs])
        transitions: list[Transition] = []
        for (rid, did), items in pairs.items():
            rule = by_id[rid]
            kind = KINDS[rule.kind]
            subject = f"d:{did}"
            st = states.setdefault((rid, subject), St())
            for o in items:
                what = kind.observe(rule.spec, st, o)
                if what == FIRE and rule.window is not None and not rule.window.contains(o.ts):
                    st.active, st.dirty = False, True  # outside the rule's window: not an alarm
                    what = None
                if what:
                    transitions.append(Transition(rule, subject, what, st, o.ts, did, devices[did].place_id, o))
        save_states(conn, tenant_id, states, devices)
        return transitions

    def _composites(self, conn: Connection, rules: TenantRules, tenant_id: int, places: set[int],
                    now_ms: int) -> list[Transition]:
        child_codes = set().union(*(r.spec.when.rules() for r in rules.composite))
        child_ids = {rules.by_code[c].id: c for c in child_codes if c in rules.by_code}
        active: dict[int, set[str]] = defaultdict(set)
        twin: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        place_list = sorted(places)
        for i in range(0, len(place_list), CHUNK):
            part = place_list[i:i + CHUNK]
            if child_ids:
                rows = conn.execute(text("SELECT rule_id, place_id FROM rule_state WHERE active = :a AND "
                                         "rule_id IN :r AND place_id IN :p").bindparams(
                    bindparam("r", expanding=True), bindparam("p", expanding=True)),
                    {"a": True, "r": sorted(child_ids), "p": part}).all()
                for rid, pid in rows:
                    active[pid].add(child_ids[rid])
            for pid, type_code, attrs in conn.execute(text(
                    "SELECT s.place_id, d.type_code, s.attrs FROM device_state s JOIN device d ON d.id = s.device_id "
                    "WHERE s.place_id IN :p").bindparams(bindparam("p", expanding=True)), {"p": part}):
                if isinstance(attrs, str):
                    import json

                    attrs = json.loads(attrs)
                twin[pid].append((type_code, attrs or {}))
        subjects = [(r, pid) for r in rules.composite for pid in places
                    if not r.places or pid in r.places]
        states = load_states(conn, [(r.id, f"p:{pid}") for r, pid in subjects])
        out = []
        for rule, pid in subjects:
            spec: CompositeSpec = rule.spec
            st = states.setdefault((rule.id, f"p:{pid}"), St())
            on = spec.when.evaluate(active_rules=active.get(pid, set()), states=twin.get(pid, []), ts_ms=now_ms)
            what = _composite_step(spec, st, on, now_ms)
            if what:
                out.append(Transition(rule, f"p:{pid}", what, st, now_ms, None, pid))
        save_states(conn, tenant_id, states, {}, place_of={(r.id, f"p:{pid}"): pid for r, pid in subjects})
        return out

    # --- the clock ------------------------------------------------------------------------

    def sweep(self, engine: Engine, now_ms: int, tenant_ids: Iterable[int] | None = None) -> int:
        """Tick every timed rule of every tenant: fires absences and durations, clears rates."""
        fired = 0
        after: list[Callable[[], None]] = []
        with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
            ids = list(tenant_ids) if tenant_ids is not None else [
                r[0] for r in conn.execute(text("SELECT DISTINCT tenant_id FROM rule WHERE enabled = :e"), {"e": True})]
            for tenant_id in ids:
                rules = self.rules_of(conn, tenant_id)
                transitions: list[Transition] = []
                for rule in rules.timed:
                    transitions += self._tick(conn, rule, now_ms)
                if rules.composite:
                    rows = conn.execute(text("SELECT DISTINCT place_id FROM rule_state WHERE tenant_id = :t AND "
                                             "place_id IS NOT NULL AND (active = :a OR holding = :a)"),
                                        {"t": tenant_id, "a": True}).scalars().all()
                    windowed = any(_has_window(r.spec.when) for r in rules.composite)
                    if windowed and rows:
                        transitions += self._composites(conn, rules, tenant_id, set(rows), now_ms)
                if transitions:
                    run_actions(conn, tenant_id, transitions, now_ms, after)
                    fired += sum(1 for t in transitions if t.what == FIRE)
        for fn in after:
            try:
                fn()
            except Exception:
                log.exception("after-commit step of the rule sweep failed")
        return fired

    def _tick(self, conn: Connection, rule: Compiled, now_ms: int) -> list[Transition]:
        kind = KINDS[rule.kind]
        # every targeted device needs a state to start its clock (absence, staleness)
        devices = _target_devices(conn, rule)
        keys = [(rule.id, f"d:{d}") for d in devices]
        states = load_states(conn, keys)
        out = []
        for (rid, subject), _ in zip(keys, devices, strict=True):
            st = states.get((rid, subject))
            if st is None:
                st = states[(rid, subject)] = St()
                kind.baseline(rule.spec, st, now_ms)
            what = kind.tick(rule.spec, st, now_ms)
            if what == FIRE and rule.window is not None and not rule.window.contains(now_ms):
                st.active = False
                what = None
            if what:
                device_id = int(subject[2:])
                out.append(Transition(rule, subject, what, st, now_ms, device_id, devices[device_id]))
        save_states(conn, rule.tenant_id, states, {}, place_of={(rule.id, f"d:{d}"): p for d, p in devices.items()})
        return out


def _has_window(cond: Any) -> bool:
    if cond.window is not None:
        return True
    children = [*(cond.all or []), *(cond.any or []), *([cond.not_] if cond.not_ else [])]
    return any(_has_window(c) for c in children)


def _composite_step(spec: CompositeSpec, st: St, on: bool, now_ms: int) -> str | None:
    if on and not st.active:
        if spec.for_s:
            if not st.holding:
                st.holding, st.since_ms, st.dirty = True, now_ms, True
            if now_ms - st.since_ms < spec.for_s * 1000:
                return None
        return st.fire(now_ms, True)
    if not on:
        if st.active:
            return st.clear(now_ms, False)
        if st.holding:
            st.holding, st.dirty = False, True
    return None


def _concerns(rule: Compiled, o: Obs) -> bool:
    """Whether an observation can move this rule (skips loading states for the rest)."""
    spec = rule.spec
    if o.event is not None:
        if rule.kind == "event":
            return o.event in (spec.event, spec.clear_event)
        match = getattr(spec, "match", None)
        return match is not None and match.event == o.event
    values = o.values or {}
    if rule.kind in ("threshold", "stale"):
        return spec.field in values
    if rule.kind in ("absence", "rate"):
        return spec.match.field is not None and spec.match.field in values
    if rule.kind == "geofence":
        return spec.lon_field in values
    return False


def _target_devices(conn: Connection, rule: Compiled) -> dict[int, int | None]:
    """Device id → place id of every active device a rule targets."""
    sql = "SELECT id, place_id, building_id, compound_id, committee_id, grid_id, type_code FROM device " \
          "WHERE tenant_id = :t AND status = 'active'"
    if rule.facility_kinds:
        kinds = ", ".join("'" + k.replace("'", "''") + "'" for k in sorted(rule.facility_kinds))
        sql += f" AND facility_id IN (SELECT id FROM facility WHERE kind IN ({kinds}))"
    params: dict[str, Any] = {"t": rule.tenant_id}
    stmt = text(sql)
    if rule.device_types:
        stmt = text(sql + " AND type_code IN :types").bindparams(bindparam("types", expanding=True))
        params["types"] = sorted(rule.device_types)
    out = {}
    for row in conn.execute(stmt, params):
        if rule.devices and row[0] not in rule.devices:
            continue
        if rule.places and not ({row[1], row[2], row[3], row[4], row[5]} & rule.places):
            continue
        out[row[0]] = row[1]
    return out


# --- states in the database ---------------------------------------------------------------------

_COLS = ("active", "holding", "since_ms", "last_ms", "fired_ms", "cleared_ms", "value", "marks", "alarm_id")


def load_states(conn: Connection, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], St]:
    """The stored states of (rule id, subject) pairs, locked for update on PostgreSQL."""
    out: dict[tuple[int, str], St] = {}
    if not keys:
        return out
    by_rule: dict[int, list[str]] = defaultdict(list)
    for rid, subject in keys:
        by_rule[rid].append(subject)
    lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    table = RuleState.__table__
    for rid, subjects in by_rule.items():
        for i in range(0, len(subjects), CHUNK):
            part = subjects[i:i + CHUNK]
            stmt = text(f"SELECT subject, {', '.join(_COLS)} FROM rule_state WHERE rule_id = :r AND subject IN :s"
                        f"{lock}").bindparams(bindparam("s", expanding=True)).columns(
                table.c.subject, *(table.c[c] for c in _COLS))
            for row in conn.execute(stmt, {"r": rid, "s": part}):
                out[(rid, row[0])] = St(active=bool(row[1]), holding=bool(row[2]), since_ms=row[3], last_ms=row[4],
                                        fired_ms=row[5], cleared_ms=row[6], value=row[7], marks=list(row[8] or []),
                                        alarm_id=row[9], stored=True)
    return out


def save_states(conn: Connection, tenant_id: int, states: dict[tuple[int, str], St],
                devices: dict[int, DeviceInfo], place_of: dict[tuple[int, str], int | None] | None = None) -> None:
    """Write back the states that changed (insert new ones, update stored ones)."""
    table = cast(Table, RuleState.__table__)
    new, old = [], []
    for (rid, subject), st in states.items():
        if not st.dirty:
            continue
        row = {"active": st.active, "holding": st.holding, "since_ms": st.since_ms, "last_ms": st.last_ms,
               "fired_ms": st.fired_ms, "cleared_ms": st.cleared_ms, "value": st.value, "marks": st.marks,
               "alarm_id": st.alarm_id}
        if st.stored:
            old.append({**row, "b_rule": rid, "b_subject": subject})
        else:
            device_id = int(subject[2:]) if subject.startswith("d:") else None
            place_id = (place_of or {}).get((rid, subject))
            if place_id is None:
                if device_id is not None and device_id in devices:
                    place_id = devices[device_id].place_id
                elif subject.startswith("p:"):
                    place_id = int(subject[2:])
            new.append({**row, "rule_id": rid, "subject": subject, "tenant_id": tenant_id,
                        "device_id": device_id, "place_id": place_id})
        st.stored, st.dirty = True, False
    if old:
        conn.execute(table.update().where(table.c.rule_id == bindparam("b_rule"),
                                           table.c.subject == bindparam("b_subject")), old)
    if new:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            pg = pg_insert(table)
            conn.execute(pg.on_conflict_do_update(index_elements=["rule_id", "subject"],
                                                  set_={c: pg.excluded[c] for c in _COLS}), new)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            lite = sqlite_insert(table)
            conn.execute(lite.on_conflict_do_update(index_elements=["rule_id", "subject"],
                                                    set_={c: lite.excluded[c] for c in _COLS}), new)


# --- actions --------------------------------------------------------------------------------------

def run_actions(conn: Connection, tenant_id: int, transitions: list[Transition], now_ms: int,
                after: list[Callable[[], None]]) -> None:
    """Run the actions of every transition in an ORM session on the batch's own connection;
    what must wait for the commit (commands on the wire) is appended to ``after``."""
    from shequ.core.iot.pipeline import batch_session
    from shequ.core.rules import actions

    with batch_session(conn, tenant_id=tenant_id, actor="rules", after=after) as session:
        touched: list[tuple[int, str, St]] = []
        for tr in transitions:
            actions.run(session, tr, now_ms)
            touched.append((tr.rule.id, tr.subject, tr.st))
        session.flush()
        # the alarm ids the actions set go back into the states
        for rid, subject, st in touched:
            conn.execute(cast(Table, RuleState.__table__).update().where(RuleState.rule_id == rid, RuleState.subject == subject)
                         .values(alarm_id=st.alarm_id))


_engine: RuleEngine | None = None


def _forget_tenant(tenant_id: int) -> None:
    if _engine is not None:
        _engine.invalidate(tenant_id)


forget_on_new_tenant(_forget_tenant)


def default_engine() -> RuleEngine:
    global _engine
    if _engine is None:
        _engine = RuleEngine()
    return _engine


def install() -> RuleEngine:
    """Hook the rule engine into the ingest pipeline (idempotent)."""
    from shequ.core.iot.pipeline import add_change_handler

    engine = default_engine()
    add_change_handler(engine.handle)
    return engine

