"""Rule kinds: each a small registered class with its validated spec and pure evaluation.

A kind looks at one observation of a subject (a device's reading or event) and at the clock,
and moves that subject's ``St`` (state); it answers ``FIRE``, ``CLEAR``, ``REPEAT`` or None. The
engine persists states and runs actions; the dry run replays stored telemetry through the same
functions in memory. Conditions are data checked by Pydantic with a whitelist of operators —
never ``eval``. Adding a kind touches this file only (``@register``).

Composite rules (AND/OR/NOT of other rules, twin states and time windows at one place) are
evaluated by the engine over places, with the condition tree defined here.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

FIRE, CLEAR, REPEAT = "fire", "clear", "repeat"
SHANGHAI = ZoneInfo("Asia/Shanghai")

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}
Op = Literal[">", ">=", "<", "<=", "==", "!="]
Scalar = float | int | bool | str


def compare(op: str, left: Any, right: Any) -> bool:
    """``left op right``, False when the two cannot be compared (a string against a number)."""
    if left is None:
        return False
    if isinstance(right, bool) or isinstance(left, bool):
        if op not in ("==", "!="):
            return False
        return OPS[op](bool(left) if isinstance(left, (bool, int)) else left, right)
    try:
        return bool(OPS[op](left, right))
    except TypeError:
        return False


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataCondition(_Strict):
    """A condition on one field of an event's data (``confidence >= 0.6``)."""

    field: str = Field(max_length=60)
    op: Op
    value: Scalar

    def holds(self, data: dict[str, Any] | None) -> bool:
        return data is not None and self.field in data and compare(self.op, data[self.field], self.value)


class Match(_Strict):
    """What counts as "it happened": an event of a type (optionally with a condition on its
    data), or a reading of a field (optionally with a value condition)."""

    event: str | None = Field(None, max_length=60, description="event type, e.g. door_open")
    field: str | None = Field(None, max_length=60, description="telemetry field, e.g. open")
    op: Op | None = None
    value: Scalar | None = None
    where: DataCondition | None = Field(None, description="events only: a condition on the event's data")

    @model_validator(mode="after")
    def _one(self) -> Match:
        if (self.event is None) == (self.field is None):
            raise ValueError("match needs exactly one of event or field")
        if (self.op is None) != (self.value is None):
            raise ValueError("match: op and value go together")
        if self.where is not None and self.event is None:
            raise ValueError("match: where goes with event (for a field, use op and value)")
        return self

    def hits(self, obs: Obs) -> bool:
        if self.event is not None:
            return obs.event == self.event and (self.where is None or self.where.holds(obs.data))
        if obs.values is None or self.field not in obs.values:
            return False
        if self.op is None:
            return True
        return compare(self.op, obs.values[self.field], self.value)


class Window(_Strict):
    """A time window in Asia/Shanghai: ``start``–``end`` (may wrap midnight), on ``days``."""

    start: str = Field("00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field("24:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")
    days: Literal["all", "workdays", "offdays"] = "all"

    def contains(self, ts_ms: int) -> bool:
        local = dt.datetime.fromtimestamp(ts_ms / 1000, SHANGHAI)
        minute = local.hour * 60 + local.minute
        a = int(self.start[:2]) * 60 + int(self.start[3:])
        b = int(self.end[:2]) * 60 + int(self.end[3:])
        inside = a <= minute < b if a <= b else (minute >= a or minute < b)
        if not inside:
            return False
        if self.days == "all":
            return True
        from shequ.core.cases.calendar import is_workday

        # a night window that began yesterday belongs to yesterday's day kind
        day = local.date() - dt.timedelta(days=1) if a > b and minute < b else local.date()
        return is_workday(day) == (self.days == "workdays")


@dataclass(slots=True)
class Obs:
    """One observation of a device: a reading (values) or an event (type and data)."""

    ts: int
    device_id: int
    values: dict[str, Any] | None = None
    event: str | None = None
    data: dict[str, Any] | None = None
    msg_id: str = ""


@dataclass(slots=True)
class St:
    """A rule's state for one subject (mirrors ``RuleState``)."""

    active: bool = False
    holding: bool = False
    since_ms: int = 0
    last_ms: int = 0
    fired_ms: int = 0
    cleared_ms: int = 0
    value: Any = None
    marks: list[int] = field(default_factory=list)
    alarm_id: int | None = None
    stored: bool = False  # a row exists
    dirty: bool = False

    def fire(self, ts: int, value: Any) -> str:
        self.active, self.holding, self.fired_ms, self.value, self.dirty = True, False, ts, value, True
        return FIRE

    def clear(self, ts: int, value: Any) -> str:
        self.active, self.holding, self.cleared_ms, self.value, self.dirty = False, False, ts, value, True
        return CLEAR


class Kind:
    """A rule kind. ``observe`` takes one observation; ``tick`` the clock (for conditions on
    silence and durations); ``uses`` tells the engine which fields and events concern it."""

    code: ClassVar[str]
    label: ClassVar[tuple[str, str]]
    Spec: ClassVar[type[BaseModel]]
    timed: ClassVar[bool] = False  # needs the sweep (tick)

    def observe(self, spec: Any, st: St, obs: Obs) -> str | None:
        return None

    def tick(self, spec: Any, st: St, now_ms: int) -> str | None:
        return None

    def baseline(self, spec: Any, st: St, now_ms: int) -> None:
        """Start the clock of a subject seen for the first time (absence, staleness)."""


KINDS: dict[str, Kind] = {}


def register(cls: type[Kind]) -> type[Kind]:
    KINDS[cls.code] = cls()
    return cls


def parse_spec(kind: str, spec: dict[str, Any]) -> BaseModel:
    """The kind's spec, validated (raises ValueError / pydantic.ValidationError naming the field)."""
    if kind == "composite":
        return CompositeSpec.model_validate(spec)
    if kind not in KINDS:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(sorted([*KINDS, 'composite']))}")
    return KINDS[kind].Spec.model_validate(spec)


# --- threshold ----------------------------------------------------------------------------------

class ThresholdSpec(_Strict):
    field: str = Field(max_length=60, description="the telemetry field compared")
    op: Op
    value: Scalar
    clear_value: float | None = Field(None, description="hysteresis: clear only past this value")
    for_s: int = Field(0, ge=0, le=30 * 86400, description="minimum duration the condition holds")

    @model_validator(mode="after")
    def _hysteresis(self) -> ThresholdSpec:
        if self.clear_value is not None:
            if self.op not in (">", ">=", "<", "<="):
                raise ValueError("clear_value needs a comparison op (>, >=, <, <=)")
            if not isinstance(self.value, (int, float)) or isinstance(self.value, bool):
                raise ValueError("clear_value needs a numeric value")
            if (self.op in (">", ">=") and self.clear_value > self.value) or (
                    self.op in ("<", "<=") and self.clear_value < self.value):
                raise ValueError("clear_value must lie on the safe side of value")
        return self


@register
class Threshold(Kind):
    code = "threshold"
    label = ("阈值", "threshold")
    Spec = ThresholdSpec
    timed = True

    def observe(self, spec: ThresholdSpec, st: St, obs: Obs) -> str | None:
        if obs.values is None or spec.field not in obs.values:
            return None
        x = obs.values[spec.field]
        on = compare(spec.op, x, spec.value)
        if st.active:
            if spec.clear_value is not None:
                off = x < spec.clear_value if spec.op in (">", ">=") else x > spec.clear_value
            else:
                off = not on
            if off:
                return st.clear(obs.ts, x)
            return None
        if not on:
            if st.holding:
                st.holding, st.dirty = False, True
            return None
        if spec.for_s:
            if not st.holding:
                st.holding, st.since_ms, st.value, st.dirty = True, obs.ts, x, True
            if obs.ts - st.since_ms >= spec.for_s * 1000:
                return st.fire(obs.ts, x)
            return None
        return st.fire(obs.ts, x)

    def tick(self, spec: ThresholdSpec, st: St, now_ms: int) -> str | None:
        if st.holding and not st.active and spec.for_s and now_ms - st.since_ms >= spec.for_s * 1000:
            return st.fire(now_ms, st.value)
        return None


# --- event ------------------------------------------------------------------------------------

class EventSpec(_Strict):
    event: str = Field(max_length=60, description="the event type that fires the rule")
    where: Match | None = Field(None, description="a condition on the event's data (field/op/value)")
    clear_event: str | None = Field(None, max_length=60, description="an event type that clears it")
    clear_after_s: int | None = Field(None, ge=1, le=30 * 86400, description="clear after this long quiet")


@register
class EventKind(Kind):
    code = "event"
    label = ("事件", "event")
    Spec = EventSpec
    timed = True

    def observe(self, spec: EventSpec, st: St, obs: Obs) -> str | None:
        if obs.event is None:
            return None
        if obs.event == spec.event:
            if spec.where is not None and spec.where.field is not None:
                data = obs.data or {}
                if spec.where.field not in data:
                    return None
                if spec.where.op is not None and not compare(spec.where.op, data[spec.where.field], spec.where.value):
                    return None
            st.last_ms, st.dirty = max(st.last_ms, obs.ts), True
            if st.active:
                return REPEAT
            return st.fire(obs.ts, obs.data)
        if spec.clear_event and obs.event == spec.clear_event and st.active:
            return st.clear(obs.ts, obs.data)
        return None

    def tick(self, spec: EventSpec, st: St, now_ms: int) -> str | None:
        if st.active and spec.clear_after_s and now_ms - max(st.last_ms, st.fired_ms) >= spec.clear_after_s * 1000:
            return st.clear(now_ms, None)
        return None


# --- absence and staleness -------------------------------------------------------------------

class AbsenceSpec(_Strict):
    match: Match
    period_s: int = Field(ge=60, le=90 * 86400, description="nothing matching for this long fires")


class _Silence(Kind):
    """Fires when nothing that ``hits`` has come for ``period_s``; the next hit clears it."""

    timed = True

    def hits(self, spec: Any, obs: Obs) -> bool:
        raise NotImplementedError

    def observe(self, spec: Any, st: St, obs: Obs) -> str | None:
        if not self.hits(spec, obs) or obs.ts <= st.last_ms:
            return None  # an older message than the last hit changes nothing
        st.last_ms, st.dirty = obs.ts, True
        if st.active:
            return st.clear(obs.ts, None)
        return None

    def tick(self, spec: Any, st: St, now_ms: int) -> str | None:
        if not st.active and st.last_ms and now_ms - st.last_ms >= spec.period_s * 1000:
            return st.fire(now_ms, {"last_ms": st.last_ms})
        return None

    def baseline(self, spec: Any, st: St, now_ms: int) -> None:
        if not st.last_ms:
            st.last_ms, st.dirty = now_ms, True


@register
class Absence(_Silence):
    code = "absence"
    label = ("缺失（长时间无事件）", "absence")
    Spec = AbsenceSpec

    def hits(self, spec: AbsenceSpec, obs: Obs) -> bool:
        return spec.match.hits(obs)


class StaleSpec(_Strict):
    field: str = Field(max_length=60, description="the field that must keep being reported")
    period_s: int = Field(ge=60, le=90 * 86400)


@register
class Stale(_Silence):
    code = "stale"
    label = ("数据未更新", "value not updated")
    Spec = StaleSpec

    def hits(self, spec: StaleSpec, obs: Obs) -> bool:
        return obs.values is not None and spec.field in obs.values


# --- rate ---------------------------------------------------------------------------------------

class RateSpec(_Strict):
    match: Match
    count: int = Field(ge=2, le=1000, description="this many matches …")
    window_s: int = Field(ge=1, le=7 * 86400, description="… within this many seconds fire")


@register
class Rate(Kind):
    code = "rate"
    label = ("频次", "rate")
    Spec = RateSpec
    timed = True

    def observe(self, spec: RateSpec, st: St, obs: Obs) -> str | None:
        if not spec.match.hits(obs):
            return None
        horizon = obs.ts - spec.window_s * 1000
        marks = sorted([m for m in st.marks if m > horizon] + [obs.ts])[-spec.count:]
        st.marks, st.last_ms, st.dirty = marks, max(st.last_ms, obs.ts), True
        if len(marks) >= spec.count:
            if st.active:
                return REPEAT
            return st.fire(obs.ts, {"count": len(marks), "window_s": spec.window_s})
        return None

    def tick(self, spec: RateSpec, st: St, now_ms: int) -> str | None:
        if st.active and now_ms - st.last_ms >= spec.window_s * 1000:
            st.marks = []
            return st.clear(now_ms, None)
        return None


# --- geofence -----------------------------------------------------------------------------------

class GeofenceSpec(_Strict):
    place_id: int | None = Field(None, description="the area: a place's geometry …")
    polygon: dict[str, Any] | None = Field(None, description="… or a GeoJSON polygon (WGS84)")
    alarm_when: Literal["inside", "outside"] = "outside"
    lon_field: str = "lon"
    lat_field: str = "lat"
    _shape: Any = PrivateAttr(None)  # the prepared shapely geometry (a place's filled in by the engine)

    @model_validator(mode="after")
    def _area(self) -> GeofenceSpec:
        if (self.place_id is None) == (self.polygon is None):
            raise ValueError("geofence needs exactly one of place_id or polygon")
        if self.polygon is not None:
            from shapely.geometry import shape

            try:
                geom = shape(self.polygon)
            except Exception as exc:  # noqa: BLE001 - shapely raises many kinds on bad GeoJSON
                raise ValueError(f"polygon: not a GeoJSON geometry ({exc})") from exc
            if geom.geom_type not in ("Polygon", "MultiPolygon") or not geom.is_valid:
                raise ValueError("polygon: must be a valid Polygon or MultiPolygon")
        return self


@register
class Geofence(Kind):
    code = "geofence"
    label = ("电子围栏", "geofence")
    Spec = GeofenceSpec

    def observe(self, spec: GeofenceSpec, st: St, obs: Obs) -> str | None:
        values = obs.values or {}
        lon, lat = values.get(spec.lon_field), values.get(spec.lat_field)
        if not isinstance(lon, (int, float)) or not isinstance(lat, (int, float)):
            return None
        shape_ = area_shape(spec)
        if shape_ is None:
            return None
        from shapely.geometry import Point

        inside = shape_.covers(Point(lon, lat))
        bad = inside == (spec.alarm_when == "inside")
        if bad and not st.active:
            return st.fire(obs.ts, [lon, lat])
        if not bad and st.active:
            return st.clear(obs.ts, [lon, lat])
        return None


def area_shape(spec: GeofenceSpec, geometry: dict[str, Any] | None = None) -> Any:
    """The prepared shape of a geofence: its polygon, or ``geometry`` (its place's) when given."""
    from shapely import prepare
    from shapely.geometry import shape

    if geometry is not None:
        spec._shape = shape(geometry)
        prepare(spec._shape)
    elif spec._shape is None and spec.polygon is not None:
        spec._shape = shape(spec.polygon)
        prepare(spec._shape)
    return spec._shape


# --- composite ----------------------------------------------------------------------------------

class Cond(_Strict):
    """One node of a composite condition tree (exactly one key set)."""

    rule: str | None = Field(None, max_length=60, description="another rule's code: active at this place")
    state: Match | None = Field(None, description="a device at this place whose twin matches (field/op/value)")
    device_type: str | None = Field(None, max_length=40, description="limit ``state`` to devices of this type")
    window: Window | None = None
    all: list[Cond] | None = None
    any: list[Cond] | None = None
    not_: Cond | None = Field(None, alias="not")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one(self) -> Cond:
        keys = [k for k in ("rule", "state", "window", "all", "any", "not_") if getattr(self, k) is not None]
        if len(keys) != 1:
            raise ValueError("each condition has exactly one of rule, state, window, all, any, not")
        if self.state is not None and self.state.field is None:
            raise ValueError("state conditions name a field")
        if self.device_type is not None and self.state is None:
            raise ValueError("device_type goes with state")
        for group in (self.all, self.any):
            if group is not None and not group:
                raise ValueError("all/any need at least one condition")
        return self

    def rules(self) -> set[str]:
        if self.rule:
            return {self.rule}
        out: set[str] = set()
        for child in [*(self.all or []), *(self.any or []), *([self.not_] if self.not_ else [])]:
            out |= child.rules()
        return out

    def evaluate(self, *, active_rules: set[str], states: list[tuple[str, dict[str, Any]]], ts_ms: int) -> bool:
        """True when the condition holds at a place: ``active_rules`` are the codes of rules
        active there, ``states`` the (device type, twin attributes) of its devices."""
        if self.rule is not None:
            return self.rule in active_rules
        if self.state is not None:
            probe = Obs(ts=ts_ms, device_id=0)
            for type_code, attrs in states:
                if self.device_type and type_code != self.device_type:
                    continue
                probe.values = attrs
                if self.state.hits(probe):
                    return True
            return False
        if self.window is not None:
            return self.window.contains(ts_ms)
        if self.all is not None:
            return all(c.evaluate(active_rules=active_rules, states=states, ts_ms=ts_ms) for c in self.all)
        if self.any is not None:
            return any(c.evaluate(active_rules=active_rules, states=states, ts_ms=ts_ms) for c in self.any)
        assert self.not_ is not None
        return not self.not_.evaluate(active_rules=active_rules, states=states, ts_ms=ts_ms)


class CompositeSpec(_Strict):
    when: Cond = Field(description="the condition tree, evaluated at the place of each device")
    for_s: int = Field(0, ge=0, le=30 * 86400)


COMPOSITE_LABEL = ("组合", "composite")
