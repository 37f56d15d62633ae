"""The kernel's device-type catalog: every type loads, and every telemetry field, event and
command accepts a good sample and rejects a bad one with a message naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from shequ.core.iot.types import FIELD_TYPES, FieldSpec, load_catalog
from shequ.core.places.models import PlaceKind

CATALOG = load_catalog()
KERNEL_TYPES = {
    "smoke_detector", "gas_detector", "door_magnet", "pir", "water_meter", "smart_breaker", "noise_monitor",
    "elevator_camera", "facade_camera", "charging_pile", "distribution_box", "parking_space_sensor",
    "parking_gate", "garbage_camera", "bin_fill_sensor", "smart_light", "service_terminal",
}


def good(spec: FieldSpec) -> Any:
    return {"float": spec.min if spec.min is not None else 1.5, "int": int(spec.max or 1),
            "bool": True, "enum": spec.values[0] if spec.values else None, "str": "文本",
            "object": {}, "array": []}[spec.type]


def bad(spec: FieldSpec) -> Any:
    if spec.type in ("float", "int") and spec.max is not None:
        return spec.max + 1
    return {"float": "hot", "int": 1.5, "bool": "yes", "enum": "nonsense", "str": 7, "object": [],
            "array": {}}[spec.type]


def test_the_catalog_has_the_seventeen_kernel_types_with_zh_cn_names() -> None:
    assert set(CATALOG) == KERNEL_TYPES
    kinds = {k.value for k in PlaceKind} | {"facility", "point"}
    for code, dtype in CATALOG.items():
        assert dtype.name and any("\u4e00" <= ch <= "\u9fff" for ch in dtype.name), code
        assert dtype.name_en and dtype.category and dtype.heartbeat_s > 0
        assert set(dtype.placed_at) <= kinds, code
        assert dtype.scenario is None
        for spec in dtype.telemetry:
            assert spec.type in FIELD_TYPES and spec.label, (code, spec.name)
        assert dtype.as_dict()["code"] == code


def test_alarm_and_fault_states_give_the_device_condition() -> None:
    smoke = CATALOG["smoke_detector"]
    assert smoke.condition_of({"smoke": True, "tamper": True}) == "alarm"
    assert smoke.condition_of({"smoke": False, "tamper": True}) == "fault"
    assert smoke.condition_of({"smoke": False, "battery_pct": 80}) == "ok"
    bins = CATALOG["bin_fill_sensor"]
    assert bins.condition_of({"fill_pct": 99.0}) == "ok"  # full bins are for the rules, not an alarm value


@pytest.mark.parametrize("code", sorted(KERNEL_TYPES))
def test_every_telemetry_field_takes_a_good_value_and_names_itself_in_a_rejection(code: str) -> None:
    dtype = CATALOG[code]
    assert dtype.check_values({s.name: good(s) for s in dtype.telemetry}) is None
    for spec in dtype.telemetry:
        problem = dtype.check_values({spec.name: bad(spec)})
        assert problem is not None and problem.startswith(f"{spec.name}:"), (code, spec.name, problem)
    assert "not a telemetry field" in (dtype.check_values({"no_such_field": 1}) or "")


@pytest.mark.parametrize("code", sorted(KERNEL_TYPES))
def test_every_event_and_command_checks_its_payload(code: str) -> None:
    dtype = CATALOG[code]
    for event in dtype.events:
        assert event.check({s.name: good(s) for s in event.payload}) is None, (code, event.name)
        for spec in event.payload:
            problem = event.check({**{s.name: good(s) for s in event.payload}, spec.name: bad(spec)})
            assert problem is not None and spec.name in problem and event.name in problem
            if spec.required:
                missing = event.check({})
                assert missing == f"event {event.name}: {spec.name} is required"
    for command in dtype.commands:
        assert command.check({s.name: good(s) for s in command.args}) is None, (code, command.name)
        sample = {s.name: good(s) for s in command.args}
        assert command.check({**sample, "bogus": 1}) == f"command {command.name}: unknown argument bogus"
        for spec in command.args:
            problem = command.check({spec.name: bad(spec)})
            assert problem is not None and spec.name in problem


def test_the_payloads_the_scenarios_rely_on() -> None:
    cam = CATALOG["elevator_camera"]
    assert cam.events_by_name["ebike_detected"].check({"snapshot": "a.jpg"}) == \
        "event ebike_detected: confidence is required"
    assert "above the maximum" in (cam.events_by_name["ebike_detected"].check({"confidence": 1.2}) or "")
    assert cam.commands_by_name["hold_doors"].check({"seconds": 30}) is None
    fall = CATALOG["facade_camera"].events_by_name["object_fall"]
    assert fall.alarm and fall.check({"points": [{"t": 0, "x": 1.0, "z": 30.0}]}) is None
    assert fall.check({"points": "nope"}) == "event object_fall: points: expected a list, got 'nope'"
    pile = CATALOG["charging_pile"].events_by_name["session_stop"]
    assert pile.check({"energy_kwh": 1.2, "fee_fen": 120}) is None
    assert "fee_fen: expected an integer" in (pile.check({"energy_kwh": 1.2, "fee_fen": 1.2}) or "")
    gate = CATALOG["parking_gate"].events_by_name["vehicle_in"]
    assert gate.check({}) == "event vehicle_in: plate is required"
    assert CATALOG["smart_light"].commands_by_name["set_level"].check({}) == \
        "command set_level: level_pct is required"
    assert CATALOG["service_terminal"].commands_by_name["show_notice"].check({"text": "停水通知"}) is None
    noise = CATALOG["noise_monitor"]
    assert noise.check_values({"laeq_db": 19}) == "laeq_db: 19 is below the minimum 20"
