"""S05 shop safety: 三合一 judgement on ingest, the shop registry, inspections, risk ledger, tile, seed."""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import ACTIVE_UNACK, Alarm, AlarmEvent
from shequ.core.errors import FieldError
from shequ.core.iam import service as iam
from shequ.core.iam.models import Role, User
from shequ.core.places.models import Place, Tenant
from shequ.core.plugins import Tile
from shequ.scenarios.s05_shops import rules as data
from shequ.scenarios.s05_shops.models import (
    DONE,
    OVERDUE,
    PLANNED,
    RESULTS,
    RISK_LEVELS,
    Inspection,
    NightPresence,
    Shop,
)
from shequ.scenarios.s05_shops.schemas import S05Settings

if TYPE_CHECKING:
    from shequ.core.iot.pipeline import Changes

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
SCENARIO = data.SCENARIO_ID
ACTOR = "S05"
OPEN_STATUSES = (PLANNED, OVERDUE)
PRESENCE_NOTE = "夜间有人在场"  # the note on a smoke alarm's timeline


class ShopError(FieldError):
    """An S05 input the service refuses; names the field."""


# --- settings and the clock ----------------------------------------------------------------------

_settings_cache: dict[int, tuple[float, S05Settings]] = {}
SETTINGS_TTL_S = 10.0


def _parse_settings(raw: Any) -> S05Settings:
    try:
        return S05Settings.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError:
        log.warning("tenant setting s05 is invalid; the defaults apply: %s", raw)
        return S05Settings.model_validate({})


def settings_of(*, session: Session) -> S05Settings:
    """The tenant's S05 settings (``tenant.settings["s05"]`` over ``rules.DEFAULTS``)."""
    tenant = session.get(Tenant, session.info["tenant_id"])
    return _parse_settings(((tenant.settings or {}) if tenant else {}).get("s05"))


def _cached_settings(conn: Any, tenant_id: int) -> S05Settings:
    hit = _settings_cache.get(tenant_id)
    if hit is not None and time.monotonic() - hit[0] < SETTINGS_TTL_S:
        return hit[1]
    raw = conn.execute(select(Tenant.settings).where(Tenant.id == tenant_id)).scalar()
    found = _parse_settings((raw or {}).get("s05"))
    _settings_cache[tenant_id] = (time.monotonic(), found)
    return found


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def local(ts_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ms / 1000, SHANGHAI)


def in_night(ts_ms: int, cfg: S05Settings) -> bool:
    """Whether a device time falls in the night window (Asia/Shanghai, may wrap midnight)."""
    when = local(ts_ms)
    minute = when.hour * 60 + when.minute
    a, b = _minutes(cfg.night_start), _minutes(cfg.night_end)
    return a <= minute < b if a <= b else (minute >= a or minute < b)


def night_of(ts_ms: int, cfg: S05Settings) -> dt.date:
    """The local date the night began (02:00 on the 5th belongs to the night of the 4th)."""
    when = local(ts_ms)
    a, b = _minutes(cfg.night_start), _minutes(cfg.night_end)
    if a > b and when.hour * 60 + when.minute < b:
        return when.date() - dt.timedelta(days=1)
    return when.date()


def today(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(SHANGHAI).date()


def _hm(ts_ms: int) -> str:
    return local(ts_ms).strftime("%H:%M")


# --- who may do what (no data changes) -----------------------------------------------------------

def _department(user: User) -> str | None:
    if user.role != Role.DEPARTMENT:
        return None
    value = (user.scope or {}).get("department")
    return value if isinstance(value, str) else ""


def may_plan(user: User) -> bool:
    """Create and assign inspection tasks: case.dispatch holders and 安监所's own staff."""
    return iam.can(user, iam.CASE_DISPATCH) or _department(user) == data.OWNER


def may_record(user: User) -> bool:
    """Record results and rectifications: 安监所's department users and other case.handle holders
    (a department user of another department may not)."""
    dept = _department(user)
    return iam.can(user, iam.CASE_HANDLE) and dept in (None, data.OWNER)


def may_register(user: User) -> bool:
    """Keep the shop registry (商住登记, base risk): registry importers outside other departments."""
    dept = _department(user)
    return (iam.can(user, iam.IMPORT) or iam.can(user, iam.CASE_DISPATCH)) and dept in (None, data.OWNER)


# --- the ingest handler ------------------------------------------------------------------------

@dataclass
class _Seen:
    motion: list[tuple[int, int]] = field(default_factory=list)  # device, ts
    smoke: list[tuple[int, int]] = field(default_factory=list)


def on_batch(changes: Changes) -> None:
    """Judge night presence and smoke in shops (inside the ingest batch's transaction)."""
    per_tenant: dict[int, _Seen] = {}
    for device_id, ts, values in changes.readings:
        info = changes.devices.get(device_id)
        if info is None or info.place_id is None:
            continue
        if info.type_code == "pir" and values.get("motion") is True:
            per_tenant.setdefault(info.tenant_id, _Seen()).motion.append((device_id, ts))
        elif info.type_code == "smoke_detector" and values.get("smoke") is True:
            per_tenant.setdefault(info.tenant_id, _Seen()).smoke.append((device_id, ts))
    for device_id, ts, kind, _data in changes.events:
        info = changes.devices.get(device_id)
        if info is not None and info.place_id is not None and info.type_code == "smoke_detector" \
                and kind == "smoke_alarm":
            per_tenant.setdefault(info.tenant_id, _Seen()).smoke.append((device_id, ts))
    if not per_tenant:
        return
    for tenant_id, seen in per_tenant.items():
        cfg = _cached_settings(changes.conn, tenant_id)
        motion = [(d, ts) for d, ts in seen.motion if in_night(ts, cfg)]
        smoke = [(d, ts) for d, ts in seen.smoke if in_night(ts, cfg)]
        if not (motion or smoke):
            continue
        place_of = {d: changes.devices[d].place_id for d, _ in (*motion, *smoke)}
        shops = set(changes.conn.execute(select(Place.id).where(
            Place.id.in_({p for p in place_of.values() if p is not None}), Place.kind == "shop")).scalars())
        motion = [(d, ts) for d, ts in motion if place_of[d] in shops]
        smoke = [(d, ts) for d, ts in smoke if place_of[d] in shops]
        if not (motion or smoke):
            continue
        with changes.session(tenant_id, ACTOR) as session:
            for device_id, ts in sorted(motion, key=lambda x: x[1]):
                _motion(session, cfg, int(place_of[device_id] or 0), device_id, ts)
            for device_id, ts in sorted(smoke, key=lambda x: x[1]):
                _smoke(session, cfg, int(place_of[device_id] or 0), ts)


def _registered(session: Session, place_id: int) -> bool:
    return bool(session.scalar(select(Shop.registered_residence).where(Shop.place_id == place_id)))


def _active_smoke(session: Session, place_id: int) -> Alarm | None:
    return session.scalar(select(Alarm).where(Alarm.place_id == place_id, Alarm.type == "smoke",
                                              Alarm.active_key.is_not(None))
                          .order_by(Alarm.id.desc()).limit(1))


def _motion(session: Session, cfg: S05Settings, place_id: int, device_id: int, ts: int) -> None:
    night = night_of(ts, cfg)
    row = session.scalar(select(NightPresence).where(NightPresence.place_id == place_id,
                                                     NightPresence.night == night))
    gap = cfg.gap_min * 60_000
    if row is None:
        row = NightPresence(place_id=place_id, night=night, device_id=device_id, first_ms=ts, span_ms=ts,
                            last_ms=ts, readings=1, sustained=False)
        session.add(row)
    else:
        if ts > row.last_ms:
            if ts - row.last_ms > gap:
                row.span_ms = ts  # a long silence: a new span begins
            row.last_ms = ts
        elif ts < row.first_ms:  # a late message from earlier in the night
            if row.span_ms - ts <= gap and row.span_ms == row.first_ms:
                row.span_ms = ts
            row.first_ms = ts
        row.readings += 1
        row.device_id = device_id
    if row.last_ms - row.span_ms >= cfg.sustain_min * 60_000:
        row.sustained = True
    session.flush()
    smoke = _active_smoke(session, place_id)
    if smoke is not None and ts >= smoke.source_ms - cfg.coincide_min * 60_000:
        _smoke_with_presence(session, cfg, place_id, row, ts, smoke)
    elif row.sustained and row.alarm_id is None and not _registered(session, place_id):
        _raise(session, cfg, place_id, row, cfg.severity, "presence", ts)


def _smoke(session: Session, cfg: S05Settings, place_id: int, ts: int) -> None:
    window = cfg.coincide_min * 60_000
    row = session.scalar(select(NightPresence).where(
        NightPresence.place_id == place_id, NightPresence.night == night_of(ts, cfg),
        NightPresence.last_ms >= ts - window, NightPresence.first_ms <= ts + window))
    smoke = _active_smoke(session, place_id)
    if row is not None and smoke is not None:
        _smoke_with_presence(session, cfg, place_id, row, ts, smoke)


def _smoke_with_presence(session: Session, cfg: S05Settings, place_id: int, row: NightPresence, ts: int,
                         smoke: Alarm) -> None:
    """Smoke while someone is in the shop at night: a note on the smoke alarm (once), and for a
    shop not registered as a residence the 三合一 alarm at the escalated severity."""
    if row.smoke_ms is None:
        row.smoke_ms = ts
    registered = _registered(session, place_id)
    noted = session.scalar(select(AlarmEvent.id).where(AlarmEvent.alarm_id == smoke.id,
                                                       AlarmEvent.actor == ACTOR).limit(1))
    if noted is None:
        who = "已登记商住" if registered else "未登记商住，疑似三合一"
        alarms.comment(session=session, alarm=smoke, actor=ACTOR,
                       note=f"{PRESENCE_NOTE}：{_hm(row.first_ms)}–{_hm(row.last_ms)} 检测到人员活动"
                            f"（{who}）(someone is in the shop at night)")
    if not registered:
        _raise(session, cfg, place_id, row, cfg.escalated_severity, "smoke", ts)


def _raise(session: Session, cfg: S05Settings, place_id: int, row: NightPresence, severity: str, reason: str,
           ts: int) -> None:
    place = session.get(Place, place_id)
    name = place.name if place else f"#{place_id}"
    context = {"night": row.night.isoformat(), "first": _hm(row.first_ms), "last": _hm(row.last_ms),
               "readings": row.readings, "reason": reason, "registered_residence": False}
    title = (f"{name} 夜间烟感报警且有人在场（疑似三合一）" if reason == "smoke"
             else f"{name} 夜间有人滞留（疑似三合一）")
    alarm, new = alarms.raise_alarm(session=session, type=data.ALARM_TYPE, source=f"p:{place_id}",
                                    severity=severity, title=title, device_id=row.device_id, place_id=place_id,
                                    scenario=SCENARIO, context=context, source_ms=ts, actor=ACTOR)
    row.alarm_id = alarm.id
    if new:
        _inspection_for_alarm(session, cfg, place_id, alarm)


def _inspection_for_alarm(session: Session, cfg: S05Settings, place_id: int, alarm: Alarm) -> None:
    open_one = session.scalar(select(Inspection.id).where(Inspection.place_id == place_id,
                                                          Inspection.status.in_(OPEN_STATUSES)).limit(1))
    if open_one is not None:
        return
    session.add(Inspection(place_id=place_id, planned_date=today() + dt.timedelta(days=cfg.inspect_within_days),
                           status=PLANNED, reason="alarm", alarm_id=alarm.id, created_by=ACTOR))
    session.flush()


# --- inspections -------------------------------------------------------------------------------

def _shop_place(session: Session, place_id: int) -> Place:
    place = session.scalar(select(Place).where(Place.id == place_id))
    if place is None or place.kind != "shop":
        raise ShopError("place_id", f"场所 {place_id} 不是本辖区内的商铺（not a shop in your area）")
    return place


def _inspector(session: Session, inspector_id: int | None) -> None:
    if inspector_id is None:
        return
    user = session.scalar(select(User).where(User.id == inspector_id))
    if user is None or not user.active or user.role in (Role.RESIDENT, Role.DEVICE, Role.API_CLIENT):
        raise ShopError("inspector_id", f"用户 {inspector_id} 不能担任检查人（not a staff user）")


def get_inspection(*, session: Session, inspection_id: int) -> Inspection | None:
    """An inspection in the session's scope, or None."""
    return session.scalar(select(Inspection).where(Inspection.id == inspection_id))


def create_inspection(*, session: Session, place_id: int, planned_date: dt.date, actor: str,
                      inspector_id: int | None = None, now: dt.datetime | None = None) -> Inspection:
    """Plan an inspection of a shop (by hand)."""
    _shop_place(session, place_id)
    if planned_date < today(now):
        raise ShopError("planned_date", "计划日期不能早于今天（must be today or later）")
    _inspector(session, inspector_id)
    row = Inspection(place_id=place_id, planned_date=planned_date, inspector_id=inspector_id, status=PLANNED,
                     reason="manual", created_by=actor)
    session.add(row)
    session.flush()
    return row


def assign_inspection(*, session: Session, inspection: Inspection, inspector_id: int,
                      planned_date: dt.date | None = None, now: dt.datetime | None = None) -> Inspection:
    """Give an open task to an inspector (and, optionally, a new date)."""
    if inspection.status == DONE:
        raise ShopError("status", "检查已完成，不能改派（the inspection is done）")
    _inspector(session, inspector_id)
    inspection.inspector_id = inspector_id
    if planned_date is not None:
        if planned_date < today(now):
            raise ShopError("planned_date", "计划日期不能早于今天（must be today or later）")
        inspection.planned_date = planned_date
        inspection.status = PLANNED
    session.flush()
    return inspection


def record_result(*, session: Session, inspection: Inspection, result: str, findings: str, actor: str,
                  rectify_by: dt.date | None = None, now: dt.datetime | None = None) -> Inspection:
    """Record what the inspection found; a 三合一 alarm that asked for it is closed with a note."""
    now = now or dt.datetime.now(dt.UTC)
    if inspection.status == DONE:
        raise ShopError("status", "检查结果已记录（the result is already recorded）")
    if result not in RESULTS:
        raise ShopError("result", f"应为 {', '.join(RESULTS)} 之一（one of these）")
    findings = findings.strip()
    if result != "pass" and not findings:
        raise ShopError("findings", "整改或不合格须写明发现的问题（say what was found）")
    if result == "pass":
        rectify_by = None
    else:
        cfg = settings_of(session=session)
        rectify_by = rectify_by or today(now) + dt.timedelta(days=cfg.rectify_days)
        if rectify_by < today(now):
            raise ShopError("rectify_by", "整改期限不能早于今天（must be today or later）")
    inspection.result, inspection.findings, inspection.rectify_by = result, findings[:1000], rectify_by
    inspection.status, inspection.done_at, inspection.done_by = DONE, now, actor
    session.flush()
    if inspection.alarm_id is not None:
        alarm = session.scalar(select(Alarm).where(Alarm.id == inspection.alarm_id)
                               .execution_options(all_scopes=True))
        if alarm is not None and alarm.active_key is not None:
            note = f"场所检查 #{inspection.id} 已完成：{result}（inspection done）"
            if alarm.status == ACTIVE_UNACK:
                alarms.acknowledge(session=session, alarm=alarm, actor=actor, note=note, now=now)
            alarms.clear(session=session, alarm=alarm, actor=actor, note=note, now=now)
    return inspection


def record_rectification(*, session: Session, inspection: Inspection, actor: str, note: str = "",
                         now: dt.datetime | None = None) -> Inspection:
    """Record that the shop has rectified what the inspection found (整改完成)."""
    if inspection.status != DONE or inspection.result not in ("rectify", "fail"):
        raise ShopError("result", "只有结果为整改或不合格的检查需要记录整改（no rectification was asked）")
    if inspection.rectified_at is not None:
        raise ShopError("rectified_at", "整改已记录（already recorded）")
    inspection.rectified_at, inspection.rectified_by = now or dt.datetime.now(dt.UTC), actor
    inspection.rectify_note = note.strip()[:500]
    session.flush()
    return inspection


def rectification(inspection: Inspection | None, on: dt.date) -> str:
    """none | pending | overdue | done — where the rectification an inspection asked for stands."""
    if inspection is None or inspection.status != DONE or inspection.result not in ("rectify", "fail"):
        return "none"
    if inspection.rectified_at is not None:
        return "done"
    if inspection.rectify_by is not None and inspection.rectify_by < on:
        return "overdue"
    return "pending"


def is_overdue(inspection: Inspection, on: dt.date) -> bool:
    return inspection.status != DONE and inspection.planned_date < on


def list_inspections(*, session: Session, status: str | None = None, place_id: int | None = None,
                     inspector_id: int | None = None, page: int = 1, size: int = 50,
                     now: dt.datetime | None = None) -> tuple[list[Inspection], int]:
    """Inspections in scope, open ones first by date; ``status`` open|planned|done|overdue."""
    on = today(now)
    stmt = select(Inspection)
    if status == "open":
        stmt = stmt.where(Inspection.status != DONE)
    elif status == OVERDUE:
        stmt = stmt.where(Inspection.status != DONE, Inspection.planned_date < on)
    elif status == PLANNED:
        stmt = stmt.where(Inspection.status != DONE, Inspection.planned_date >= on)
    elif status == DONE:
        stmt = stmt.where(Inspection.status == DONE)
    elif status:
        raise ShopError("status", "应为 open、planned、done、overdue 之一（one of these）")
    if place_id is not None:
        stmt = stmt.where(Inspection.place_id == place_id)
    if inspector_id is not None:
        stmt = stmt.where(Inspection.inspector_id == inspector_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by((Inspection.status == DONE), Inspection.planned_date.desc()
                                         if status == DONE else Inspection.planned_date, Inspection.id)
                           .offset((page - 1) * size).limit(size)).all()
    return list(rows), int(total)


def names(*, session: Session, place_ids: set[int], user_ids: set[int]) -> tuple[dict[int, str], dict[int, str]]:
    """Shop names and user names for a list (two queries)."""
    places = {pid: name for pid, name in session.execute(
        select(Place.id, Place.name).where(Place.id.in_(place_ids)))} if place_ids else {}
    users = {uid: (dn or un) for uid, un, dn in session.execute(
        select(User.id, User.username, User.display_name).where(User.id.in_(user_ids)))} if user_ids else {}
    return places, users


def inspectors(*, session: Session) -> list[User]:
    """Who may be given an inspection: 安监所's staff first, then grid workers and dispatchers."""
    users = session.scalars(select(User).where(User.active.is_(True), User.role.in_(
        (Role.DEPARTMENT, Role.GRID_WORKER, Role.DISPATCHER))).order_by(User.username)).all()
    own = [u for u in users if _department(u) == data.OWNER]
    rest = [u for u in users if u.role != Role.DEPARTMENT]
    return own + rest


# --- the registry ------------------------------------------------------------------------------

def update_registration(*, session: Session, place_id: int, registered_residence: bool, risk_level: str,
                        notes: str, actor: str) -> Shop:
    """Set a shop's 商住登记, base risk level and notes (the row is made on first use)."""
    _shop_place(session, place_id)
    if risk_level not in RISK_LEVELS:
        raise ShopError("risk_level", f"应为 {', '.join(RISK_LEVELS)} 之一（one of these）")
    row = session.scalar(select(Shop).where(Shop.place_id == place_id))
    if row is None:
        row = Shop(place_id=place_id)
        session.add(row)
    row.registered_residence, row.risk_level = registered_residence, risk_level
    row.notes, row.updated_by = notes.strip()[:500], actor
    session.flush()
    return row


# --- the risk ledger ---------------------------------------------------------------------------

@dataclass
class Risk:
    place: Place
    shop: Shop | None
    incidents: dict[str, int]
    last_done: Inspection | None
    open_task: Inspection | None
    rectification: str
    score: int
    level: str
    reasons: list[tuple[str, int]]  # (reason key, points)

    @property
    def registered(self) -> bool:
        return bool(self.shop and self.shop.registered_residence)

    @property
    def base_level(self) -> str:
        return self.shop.risk_level if self.shop else "low"


def score(*, shop: Shop | None, incidents: dict[str, int], last_done: Inspection | None,
          open_task: Inspection | None, inspected_within_year: bool, on: dt.date) -> tuple[int, str, list[tuple[str, int]]]:
    """The risk score, its level and the reasons that make it up (see ``rules.RISK_POINTS``)."""
    p = data.RISK_POINTS
    reasons: list[tuple[str, int]] = []
    base = data.RISK_BASE.get(shop.risk_level if shop else "low", 0)
    if base:
        reasons.append((f"base_{shop.risk_level if shop else 'low'}", base))
    fire = sum(n for t, n in incidents.items() if t in data.FIRE_TYPES)
    if fire:
        reasons.append(("fire", min(p["fire_max"], fire * p["fire"])))
    live = incidents.get(data.ALARM_TYPE, 0)
    if live:
        reasons.append(("live_in", min(p["live_in_max"], live * p["live_in"])))
    other = sum(n for t, n in incidents.items() if t not in data.FIRE_TYPES and t != data.ALARM_TYPE)
    if other:
        reasons.append(("other", min(p["other_max"], other * p["other"])))
    if shop is not None and shop.registered_residence:
        reasons.append(("residence", p["residence"]))
    if last_done is not None and last_done.result in ("fail", "rectify", "pass"):
        reasons.append((f"last_{last_done.result}", p[last_done.result]))
    if rectification(last_done, on) == "overdue":
        reasons.append(("rectify_overdue", p["rectify_overdue"]))
    if open_task is not None and is_overdue(open_task, on):
        reasons.append(("inspection_overdue", p["inspection_overdue"]))
    if not inspected_within_year:
        reasons.append(("never_inspected", p["never_inspected"]))
    total = max(0, sum(points for _k, points in reasons))
    level = next(name for name, threshold in data.RISK_LEVELS if total >= threshold)
    return total, level, reasons


@dataclass
class LedgerFilters:
    committee_id: int | None = None
    place_id: int | None = None
    level: str | None = None
    registered: bool | None = None
    rectification: str | None = None
    q: str | None = None


def ledger(*, session: Session, filters: LedgerFilters | None = None,
           now: dt.datetime | None = None) -> list[Risk]:
    """Every shop in scope with its risk, highest first (four queries whatever the count)."""
    f = filters or LedgerFilters()
    now = now or dt.datetime.now(dt.UTC)
    on = today(now)
    cfg = settings_of(session=session)
    stmt = select(Place).where(Place.kind == "shop")
    if f.committee_id is not None:
        stmt = stmt.where(Place.committee_id == f.committee_id)
    if f.place_id is not None:
        stmt = stmt.where(Place.id == f.place_id)
    if f.q:
        like = f"%{f.q.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(Place.name.like(like) | Place.address_text.like(like))
    places = list(session.scalars(stmt.order_by(Place.code)))
    if not places:
        return []
    ids = {p.id for p in places}
    shops = {s.place_id: s for s in session.scalars(select(Shop).where(Shop.place_id.in_(ids)))}
    since = now - dt.timedelta(days=cfg.incident_days)
    incidents: dict[int, dict[str, int]] = defaultdict(dict)
    # a 三合一 alarm counts each night it repeated; any other alarm counts once
    rows = session.execute(
        select(Alarm.place_id, Alarm.type, func.count(), func.sum(Alarm.count))
        .join(Place, Place.id == Alarm.place_id)
        .where(Place.kind == "shop", Alarm.raised_at >= since).group_by(Alarm.place_id, Alarm.type)).all()
    for place_id, type_, n, repeats in rows:
        if place_id in ids:
            incidents[place_id][type_] = int(repeats or n) if type_ == data.ALARM_TYPE else int(n)
    year_ago = on - dt.timedelta(days=365)
    last_done: dict[int, Inspection] = {}
    open_task: dict[int, Inspection] = {}
    recent: set[int] = set()
    for ins in session.scalars(select(Inspection).join(Place, Place.id == Inspection.place_id)
                               .where(Place.kind == "shop").order_by(Inspection.id)):
        pid = ins.place_id or 0
        if ins.status == DONE:
            prev = last_done.get(pid)
            if prev is None or (ins.done_at or now) >= (prev.done_at or now):
                last_done[pid] = ins
            if ins.done_at is not None and today(ins.done_at) >= year_ago:
                recent.add(pid)
        elif pid not in open_task or ins.planned_date < open_task[pid].planned_date:
            open_task[pid] = ins
    out = []
    for place in places:
        shop = shops.get(place.id)
        got = incidents.get(place.id, {})
        total, level, reasons = score(shop=shop, incidents=got, last_done=last_done.get(place.id),
                                      open_task=open_task.get(place.id), inspected_within_year=place.id in recent,
                                      on=on)
        risk = Risk(place, shop, got, last_done.get(place.id), open_task.get(place.id),
                    rectification(last_done.get(place.id), on), total, level, reasons)
        if f.level and risk.level != f.level:
            continue
        if f.registered is not None and risk.registered != f.registered:
            continue
        if f.rectification and risk.rectification != f.rectification:
            continue
        out.append(risk)
    out.sort(key=lambda r: (-r.score, r.place.code))
    return out


def shop_risk(*, session: Session, place_id: int, now: dt.datetime | None = None) -> Risk | None:
    """One shop's risk (None when it is not a shop in scope)."""
    found = ledger(session=session, filters=LedgerFilters(place_id=place_id), now=now)
    return found[0] if found else None


def shop_detail(*, session: Session, place_id: int, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """One shop: its risk, devices with their live state, incidents, inspections and nights with presence."""
    from shequ.core.iot import service as iot
    from shequ.core.iot.models import Device

    risk = shop_risk(session=session, place_id=place_id, now=now)
    if risk is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    cfg = settings_of(session=session)
    devices = [iot.device_state(session=session, device=d) for d in session.scalars(
        select(Device).where(Device.place_id == place_id, Device.status != "retired").order_by(Device.code))]
    since = now - dt.timedelta(days=cfg.incident_days)
    incidents = list(session.scalars(select(Alarm).where(Alarm.place_id == place_id, Alarm.raised_at >= since)
                                     .order_by(Alarm.raised_at.desc()).limit(100)))
    inspections = list(session.scalars(select(Inspection).where(Inspection.place_id == place_id)
                                       .order_by(Inspection.planned_date.desc(), Inspection.id.desc())))
    nights = list(session.scalars(select(NightPresence).where(NightPresence.place_id == place_id)
                                  .order_by(NightPresence.night.desc()).limit(14)))
    committee = session.scalar(select(Place.name).where(Place.id == risk.place.committee_id)) \
        if risk.place.committee_id else None
    return {"risk": risk, "devices": devices, "incidents": incidents, "inspections": inspections,
            "nights": nights, "committee": committee or "", "settings": cfg}


# --- sweep, tile, seed -------------------------------------------------------------------------

def sweep(engine: Engine, now: dt.datetime | None = None) -> int:
    """Mark planned inspections past their date as overdue, in every tenant."""
    from shequ.db import session_scope

    on = today(now)
    with engine.connect() as conn:
        tenants = list(conn.execute(select(Inspection.tenant_id).where(
            Inspection.status == PLANNED, Inspection.planned_date < on).distinct()).scalars())
    n = 0
    for tenant_id in tenants:
        with session_scope(tenant_id=tenant_id, actor=ACTOR, engine=engine) as session:
            due = session.scalars(select(Inspection).where(Inspection.status == PLANNED,
                                                           Inspection.planned_date < on)).all()
            for ins in due:
                ins.status = OVERDUE
            n += len(due)
    return n


def tile(*, session: Session, lang: str) -> Tile:
    """The brain's tile: shops, active 三合一 alarms, open and overdue inspections."""
    zh = lang.startswith("zh")
    shops = session.scalar(select(func.count()).select_from(Place).where(Place.kind == "shop")) or 0
    live = session.scalar(select(func.count()).select_from(Alarm).where(
        Alarm.type == data.ALARM_TYPE, Alarm.active_key.is_not(None))) or 0
    on = today()
    open_n, overdue_n, rectify_n = session.execute(select(
        func.count().filter(Inspection.status != DONE),
        func.count().filter(Inspection.status != DONE, Inspection.planned_date < on),
        func.count().filter(Inspection.status == DONE, Inspection.result.in_(("rectify", "fail")),
                            Inspection.rectified_at.is_(None))).select_from(Inspection)).one()
    figures = (("商铺" if zh else "Shops", str(shops)),
               ("三合一告警" if zh else "Live-in alarms", str(live)),
               ("待检查" if zh else "Inspections open", str(open_n or 0)),
               ("检查逾期" if zh else "Overdue", str(overdue_n or 0)),
               ("待整改" if zh else "To rectify", str(rectify_n or 0)))
    return Tile(title="场所监管" if zh else "Shop safety", figures=figures, link="/shops",
                alert=bool(live or overdue_n))


CATERING = "住宿和餐饮业"


def seed_demo(*, session: Session) -> None:
    """The demo's shop registry (a few shops registered as residences) and some past inspections;
    idempotent: shops that already have a row and a tenant that has inspections are left alone."""
    places = list(session.scalars(select(Place).where(Place.kind == "shop").order_by(Place.code)
                                  .execution_options(all_scopes=True)))
    have = set(session.scalars(select(Shop.place_id).execution_options(all_scopes=True)))
    for place in places:
        if place.id in have:
            continue
        rng = random.Random(f"s05/{place.code}")
        industry = (place.attrs or {}).get("industry")
        level = "medium" if industry == CATERING else "low"
        if rng.random() < 0.08:
            level = "high"
        registered = rng.random() < 0.15
        session.add(Shop(place_id=place.id, registered_residence=registered, risk_level=level,
                         notes="商住两用，已备案" if registered else "", updated_by="seed"))
    if session.scalar(select(Inspection.id).execution_options(all_scopes=True).limit(1)) is None:
        now = dt.datetime.now(dt.UTC)
        for place in places:
            rng = random.Random(f"s05/inspection/{place.code}")
            if rng.random() < 0.35:
                done = now - dt.timedelta(days=rng.randint(10, 200), hours=rng.randint(0, 8))
                result = rng.choices(RESULTS, weights=(7, 2, 1))[0]
                ins = Inspection(place_id=place.id, planned_date=today(done), status=DONE, reason="manual",
                                 created_by="seed", result=result, done_at=done, done_by="seed",
                                 findings="" if result == "pass" else rng.choice(
                                     ("灭火器过期", "疏散通道堆放杂物", "电线私拉乱接", "阁楼设置床铺")))
                if result != "pass":
                    ins.rectify_by = today(done) + dt.timedelta(days=15)
                    if rng.random() < 0.6:
                        ins.rectified_at, ins.rectified_by = done + dt.timedelta(days=rng.randint(3, 14)), "seed"
                session.add(ins)
            elif rng.random() < 0.08:
                session.add(Inspection(place_id=place.id, planned_date=today(now) + dt.timedelta(days=rng.randint(1, 10)),
                                       status=PLANNED, reason="manual", created_by="seed"))
    session.flush()
