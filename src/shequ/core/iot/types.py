"""Device types as data: telemetry fields, event payloads and commands of each kind of device.

The kernel's types live in ``device_types.toml`` beside this file; a scenario package adds
its own through ``Scenario.device_types`` (``DeviceType`` objects or dicts of the same shape
as one TOML table). Every message is checked against its device's type before it is stored.

A field is a *measure* (int, float: a reading that moves, kept in the telemetry store and its
rollups) or a *state* (bool, enum, str: a condition whose every change is kept in the twin's
history). ``alarm_values`` marks states that put the device "in alarm" (smoke = true).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

FIELD_TYPES = ("float", "int", "bool", "enum", "str", "object", "array")
CATALOG = Path(__file__).with_name("device_types.toml")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str = "float"
    unit: str = ""
    label: str = ""
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()  # enum members
    required: bool = False  # for event payloads and command arguments
    alarm_values: tuple[Any, ...] = ()  # state values that mean "in alarm"
    fault_values: tuple[Any, ...] = ()  # state values that mean "faulty"

    @property
    def is_measure(self) -> bool:
        return self.type in ("int", "float")

    def check(self, value: Any) -> str | None:
        """None when ``value`` fits, else the reason (naming the field)."""
        t = self.type
        if t == "float" or t == "int":
            if value.__class__ is bool or not isinstance(value, int | float):
                return f"{self.name}: expected a number, got {_short(value)}"
            if t == "int" and not isinstance(value, int):
                return f"{self.name}: expected an integer, got {_short(value)}"
            if isinstance(value, float) and not math.isfinite(value):
                return f"{self.name}: not a finite number"
            if self.min is not None and value < self.min:
                return f"{self.name}: {value} is below the minimum {self.min:g}"
            if self.max is not None and value > self.max:
                return f"{self.name}: {value} is above the maximum {self.max:g}"
            return None
        if t == "bool":
            return None if value is True or value is False else f"{self.name}: expected true or false, got {_short(value)}"
        if t == "enum":
            return None if value in self.values else f"{self.name}: {_short(value)} is not one of {', '.join(self.values)}"
        if t == "str":
            if not isinstance(value, str):
                return f"{self.name}: expected text, got {_short(value)}"
            return None if len(value) <= 2000 else f"{self.name}: text longer than 2,000 characters"
        if t == "object":
            return None if isinstance(value, dict) else f"{self.name}: expected an object, got {_short(value)}"
        if t == "array":
            return None if isinstance(value, list) else f"{self.name}: expected a list, got {_short(value)}"
        return f"{self.name}: unknown field type {t}"  # pragma: no cover - rejected at load


@dataclass(frozen=True)
class EventSpec:
    name: str
    label: str = ""
    payload: tuple[FieldSpec, ...] = ()
    alarm: bool = False  # the event itself is an alarm-worthy happening (object_fall)

    def check(self, data: Mapping[str, Any]) -> str | None:
        return check_fields(self.payload, data, strict=False, what=f"event {self.name}")


@dataclass(frozen=True)
class CommandSpec:
    name: str
    label: str = ""
    args: tuple[FieldSpec, ...] = ()
    timeout_s: int = 30

    def check(self, args: Mapping[str, Any]) -> str | None:
        return check_fields(self.args, args, strict=True, what=f"command {self.name}")


@dataclass(frozen=True)
class DeviceType:
    code: str
    name: str  # zh-CN
    name_en: str = ""
    category: str = ""  # safety | environment | energy | parking | sanitation | service | access
    telemetry: tuple[FieldSpec, ...] = ()
    events: tuple[EventSpec, ...] = ()
    commands: tuple[CommandSpec, ...] = ()
    heartbeat_s: int = 300  # how often a healthy device reports
    offline_after_s: int | None = None  # silence after which it is offline (default 3 heartbeats)
    placed_at: tuple[str, ...] = ()  # place kinds it is usually placed at
    scenario: str | None = None  # the scenario package that brought it (None: kernel)
    fields_by_name: dict[str, FieldSpec] = field(default_factory=dict, compare=False, repr=False)
    state_fields: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    events_by_name: dict[str, EventSpec] = field(default_factory=dict, compare=False, repr=False)
    commands_by_name: dict[str, CommandSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.fields_by_name.update({f.name: f for f in self.telemetry})
        # the hot path's view of each field: (is a number, min, max, may be a float, spec)
        object.__setattr__(self, "_fast", {
            f.name: (f.is_measure, f.min, f.max, f.type == "float", f) for f in self.telemetry})
        object.__setattr__(self, "state_fields", frozenset(f.name for f in self.telemetry if not f.is_measure))
        object.__setattr__(self, "_judged", tuple(
            (f.name, f.alarm_values, f.fault_values) for f in self.telemetry if f.alarm_values or f.fault_values))
        self.events_by_name.update({e.name: e for e in self.events})
        self.commands_by_name.update({c.name: c for c in self.commands})

    @property
    def offline_after(self) -> int:
        return self.offline_after_s or 3 * self.heartbeat_s

    def check_values(self, values: Mapping[str, Any]) -> str | None:
        """Telemetry and status values: every field known and of its type (partial sets allowed)."""
        fast = self._fast  # type: ignore[attr-defined]
        for name, value in values.items():
            f = fast.get(name)
            if f is None:
                return f"{name}: not a telemetry field of {self.code}"
            if value is None:
                continue
            cls = value.__class__
            if f[0] and (cls is int or (cls is float and f[3])) and value - value == 0 \
                    and (f[1] is None or value >= f[1]) and (f[2] is None or value <= f[2]):
                continue  # a number in range (value - value == 0 rules out NaN and infinities)
            problem = f[4].check(value)
            if problem:
                return problem
        return None

    def condition_of(self, values: Mapping[str, Any]) -> str:
        """ok, alarm or fault, from the state fields that declare alarm or fault values."""
        worst = "ok"
        for name, alarm_values, fault_values in self._judged:  # type: ignore[attr-defined]
            v = values.get(name)
            if v is None:
                continue
            if v in alarm_values:
                return "alarm"
            if v in fault_values:
                worst = "fault"
        return worst

    def as_dict(self) -> dict[str, Any]:
        def f(spec: FieldSpec) -> dict[str, Any]:
            d: dict[str, Any] = {"name": spec.name, "type": spec.type, "label": spec.label}
            for key in ("unit", "min", "max", "values", "required", "alarm_values", "fault_values"):
                v = getattr(spec, key)
                if v not in ("", None, (), False):
                    d[key] = list(v) if isinstance(v, tuple) else v
            return d

        return {
            "code": self.code, "name": self.name, "name_en": self.name_en, "category": self.category,
            "heartbeat_s": self.heartbeat_s, "offline_after_s": self.offline_after,
            "placed_at": list(self.placed_at), "scenario": self.scenario,
            "telemetry": [f(x) for x in self.telemetry],
            "events": [{"name": e.name, "label": e.label, "alarm": e.alarm, "payload": [f(x) for x in e.payload]}
                       for e in self.events],
            "commands": [{"name": c.name, "label": c.label, "timeout_s": c.timeout_s, "args": [f(x) for x in c.args]}
                         for c in self.commands],
        }


def check_fields(specs: Iterable[FieldSpec], data: Mapping[str, Any], *, strict: bool, what: str) -> str | None:
    if not isinstance(data, Mapping):
        return f"{what}: expected an object"
    known = {}
    for spec in specs:
        known[spec.name] = spec
        value = data.get(spec.name)
        if value is None:
            if spec.required:
                return f"{what}: {spec.name} is required"
            continue
        problem = spec.check(value)
        if problem:
            return f"{what}: {problem}"
    if strict:
        extra = [k for k in data if k not in known]
        if extra:
            return f"{what}: unknown argument {extra[0]}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


# --- loading ---------------------------------------------------------------------------------

def _field(d: Mapping[str, Any]) -> FieldSpec:
    t = d.get("type", "float")
    if t not in FIELD_TYPES:
        raise ValueError(f"field {d.get('name')!r}: type {t!r} is not one of {FIELD_TYPES}")
    return FieldSpec(
        name=d["name"], type=t, unit=d.get("unit", ""), label=d.get("label", ""),
        min=d.get("min"), max=d.get("max"), values=tuple(d.get("values", ())),
        required=bool(d.get("required", False)),
        alarm_values=tuple(d.get("alarm_values", ())), fault_values=tuple(d.get("fault_values", ())),
    )


def device_type_from_dict(code: str, d: Mapping[str, Any], scenario: str | None = None) -> DeviceType:
    try:
        return DeviceType(
            code=code, name=d["name"], name_en=d.get("name_en", ""), category=d.get("category", ""),
            telemetry=tuple(_field(x) for x in d.get("telemetry", ())),
            events=tuple(EventSpec(name=e["name"], label=e.get("label", ""), alarm=bool(e.get("alarm", False)),
                                   payload=tuple(_field(x) for x in e.get("payload", ())))
                         for e in d.get("events", ())),
            commands=tuple(CommandSpec(name=c["name"], label=c.get("label", ""), timeout_s=int(c.get("timeout_s", 30)),
                                       args=tuple(_field(x) for x in c.get("args", ())))
                           for c in d.get("commands", ())),
            heartbeat_s=int(d.get("heartbeat_s", 300)), offline_after_s=d.get("offline_after_s"),
            placed_at=tuple(d.get("placed_at", ())), scenario=scenario,
        )
    except KeyError as exc:
        raise ValueError(f"device type {code}: {exc.args[0]} is missing") from exc


def load_catalog(path: Path = CATALOG) -> dict[str, DeviceType]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return {code: device_type_from_dict(code, spec) for code, spec in data.items()}


@lru_cache(maxsize=1)
def device_types() -> dict[str, DeviceType]:
    """Every known device type: the kernel's catalog plus those the installed scenarios bring."""
    from shequ.core.plugins import load_scenarios

    types = dict(load_catalog())
    for scenario in load_scenarios().scenarios.values():
        for spec in scenario.device_types:
            dtype = spec if isinstance(spec, DeviceType) else device_type_from_dict(spec["code"], spec, scenario.id)
            if dtype.code in types and types[dtype.code] != dtype:
                raise ValueError(f"device type {dtype.code} of {scenario.id} clashes with an existing type")
            types[dtype.code] = dtype
    return types


def get_type(code: str) -> DeviceType | None:
    return device_types().get(code)
