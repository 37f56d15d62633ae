"""The device simulator: deterministic steps, day/night patterns, anomalies, valid messages,
answered commands, and a run of a few simulated minutes through the real pipeline."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from statistics import mean
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from shequ.core.iot.models import Device, Telemetry
from shequ.db import session_scope
from shequ.sim.devices import seed_devices
from shequ.sim.seed import seed
from shequ.sim.simulate import ANOMALIES, SHANGHAI, Message, Simulator, local_hour, parse_injections

TENANT = "SIMRUN"
# a Wednesday, midnight in Shanghai
T0 = dt.datetime(2026, 3, 4, 0, 0, tzinfo=SHANGHAI).timestamp()
Decoded = list[tuple[str, str, dict[str, Any]]]


@pytest.fixture(scope="module")
def tenant(engine: Engine) -> int:
    report = seed(scale="small", seed=1, tenant_code=TENANT, progress=False)
    seed_devices(tenant_id=report.tenant_id, seed=1, scale="small")
    return report.tenant_id


@pytest.fixture(scope="module")
def day(tenant: int) -> tuple[Simulator, Decoded]:
    """One simulated day, stepped five minutes at a time, decoded."""
    sim = Simulator(TENANT)
    out: list[Message] = []
    for k in range(1, 24 * 12 + 1):
        out += sim.step(T0 + 300 * k)
    return sim, decoded(out)


def decoded(msgs: Iterable[Message]) -> Decoded:
    return [(code, kind, json.loads(payload)) for code, kind, payload in msgs]


def test_same_seed_same_messages_whatever_the_step(tenant: int) -> None:
    one, two, other = Simulator(TENANT), Simulator(TENANT), Simulator(TENANT, seed=2)
    a = one.step(T0) + one.step(T0 + 1800) + one.step(T0 + 3600)
    b = two.step(T0) + [m for k in range(1, 361) for m in two.step(T0 + 10 * k)]
    assert a and a == b
    c = other.step(T0) + other.step(T0 + 3600)
    assert c != a


def test_every_message_fits_its_device_type_and_has_a_unique_id(day: tuple[Simulator, Decoded]) -> None:
    sim, msgs = day
    ids = set()
    for code, kind, m in msgs:
        dtype = sim.by_code[code].type
        assert isinstance(m["ts"], int) and T0 * 1000 <= m["ts"] <= (T0 + 86400) * 1000
        ids.add((code, m["id"]))
        if kind == "telemetry":
            assert dtype.check_values(m["v"]) is None, (code, m)
        elif kind == "event":
            spec = dtype.events_by_name[m["type"]]
            assert spec.check(m["data"]) is None, (code, m)
        else:
            assert kind == "status" and m["online"] is True
    assert len(ids) == len(msgs)
    # every device reported, at least its heartbeat
    assert {code for code, _, _ in msgs} == set(sim.by_code)


def _values(msgs: Decoded, type_code: str, sim: Simulator, field: str) -> list[tuple[float, Any]]:
    return [(m["ts"] / 1000, m["v"][field]) for code, kind, m in msgs
            if kind == "telemetry" and sim.by_code[code].type_code == type_code and field in m["v"]]


def test_day_and_night_show_in_the_readings(day: tuple[Simulator, Decoded]) -> None:
    sim, msgs = day

    def mean_at(type_code: str, field: str, hours: tuple[float, float]) -> float:
        vals = [float(v) for t, v in _values(msgs, type_code, sim, field) if hours[0] <= local_hour(t) < hours[1]]
        assert vals, (type_code, field, hours)
        return mean(vals)

    assert mean_at("water_meter", "flow_lpm", (1, 5)) < 0.2 * mean_at("water_meter", "flow_lpm", (6.5, 8.5))
    assert mean_at("pir", "motion", (1, 5)) < mean_at("pir", "motion", (9, 12))
    assert 40 <= mean_at("noise_monitor", "laeq_db", (1, 5)) <= 50
    assert 54 <= mean_at("noise_monitor", "laeq_db", (9, 17)) <= 68
    assert mean_at("smart_light", "on", (22, 24)) == 1 and mean_at("smart_light", "on", (10, 15)) == 0
    assert mean_at("bin_fill_sensor", "fill_pct", (17, 20)) > mean_at("bin_fill_sensor", "fill_pct", (8.5, 10)) + 20
    residential = {c for c, d in sim.by_code.items() if d.attrs.get("residential")}
    street = {c for c, d in sim.by_code.items() if d.type_code == "parking_space_sensor"} - residential

    def occupied(codes: set[str], hours: tuple[float, float]) -> float:
        return mean(float(v) for t, v in _values([m for m in msgs if m[0] in codes], "parking_space_sensor", sim,
                                                 "occupied") if hours[0] <= local_hour(t) < hours[1])

    if residential:  # residential lots fill at night, street parking by day
        assert occupied(residential, (1, 5)) > occupied(residential, (11, 15)) + 0.2
    if street:
        assert occupied(street, (11, 15)) > occupied(street, (1, 5)) + 0.2
    # charging sessions: mostly started in the evening, each stop with its energy and fee in fen
    events = [(code, m) for code, kind, m in msgs if kind == "event"]
    starts = [local_hour(m["ts"] / 1000) for _, m in events if m["type"] == "session_start"]
    assert sum(17 <= h < 24 for h in starts) > sum(9 <= h < 16 for h in starts)
    stops = [m["data"] for _, m in events if m["type"] == "session_stop"]
    assert stops and all(isinstance(d["fee_fen"], int) and d["energy_kwh"] >= 0 for d in stops)


def test_heartbeats_come_at_each_type_s_interval(day: tuple[Simulator, Decoded]) -> None:
    sim, msgs = day
    status: dict[str, list[int]] = {}
    for code, kind, m in msgs:
        if kind == "status":
            status.setdefault(code, []).append(m["ts"])
    for dev in sim.devices:
        times = status[dev.code]
        gaps = {b - a for a, b in zip(times[1:], times[2:], strict=False)}  # after the boot report
        assert gaps == {dev.type.heartbeat_s * 1000}, dev.code


def _run_anomaly(kind: str, device: str | None = None, minutes: int = 20, **params: Any) -> tuple[Simulator, list]:
    sim = Simulator(TENANT)
    sim.step(T0 + 22 * 3600)  # ten at night
    sim.inject(kind, device, **params)
    out: list[Message] = []
    for k in range(1, minutes + 1):
        out += sim.step(T0 + 22 * 3600 + 60 * k)
    return sim, decoded(out)


@pytest.mark.parametrize("kind", ANOMALIES)
def test_an_injected_anomaly_shows_in_the_messages(tenant: int, kind: str) -> None:
    sim, msgs = _run_anomaly(kind)
    assert [n["kind"] for n in sim.truth] == [kind]
    code = sim.truth[0]["device"]
    mine = [(k, m) for c, k, m in msgs if c == code]
    events = {m["type"] for k, m in mine if k == "event"}
    values: dict[str, list[Any]] = {}
    for k, m in mine:
        if k == "telemetry":
            for f, v in m["v"].items():
                values.setdefault(f, []).append(v)
    if kind == "smoke":
        assert "smoke_alarm" in events and True in values["smoke"]
    elif kind == "gas_leak":
        assert "gas_alarm" in events and max(values["gas_lel"]) >= 20 and True in values["alarm"]
    elif kind == "ebike_in_elevator":
        assert [m["type"] for k, m in mine if k == "event"][-2:] == ["ebike_detected", "ebike_left"]
    elif kind == "object_fall":
        fall = next(m["data"] for k, m in mine if k == "event" and m["type"] == "object_fall")
        points = fall["points"]
        assert len(points) > 5 and points[0]["z"] > points[-1]["z"] >= -0.3
        # a free fall: the drop grows with the square of the time
        t, z = points[-1]["t"], points[-1]["z"]
        assert abs((points[0]["z"] - z) - 0.5 * 9.81 * t * t) < 0.5
        cal = sim.by_code[code].attrs
        floor = sim.truth[0]["floor"]
        assert cal["ground_floor_m"] + (floor - 2) * cal["floor_height_m"] <= points[0]["z"] + 0.3
    elif kind == "night_noise":
        assert min(values["laeq_db"]) >= 65
    elif kind == "no_water":
        room = [c for c, d in sim.by_code.items() if d.attrs.get("room") == sim.truth[0]["room"]]
        flows = [m["v"]["flow_lpm"] for c, k, m in msgs if c in room and k == "telemetry" and "flow_lpm" in m["v"]]
        motion = [m["v"]["motion"] for c, k, m in msgs if c in room and k == "telemetry" and "motion" in m["v"]]
        assert flows and set(flows) == {0.0} and set(motion) <= {False}
    elif kind == "shop_night_presence":
        assert values["motion"] and all(values["motion"])
    elif kind == "over_temperature":
        assert max(values["temperature_c"]) >= 75 and True in values["charging"]
    elif kind == "offline":
        assert mine == []
    elif kind == "bin_full":
        assert max(values["fill_pct"]) >= 95
        assert any(k == "event" and m["type"] == "overflow" for _, k, m in msgs)
    elif kind == "parking_full":
        lot = sim.by_code[code].facility_id
        spaces = [d for d in sim.devices if d.facility_id == lot and d.type_code == "parking_space_sensor"]
        assert all(d.state["occupied"] for d in spaces)


def test_an_anomaly_at_a_chosen_device_and_bad_ones_refused(tenant: int) -> None:
    sim = Simulator(TENANT)
    cam = next(d.code for d in sim.devices if d.type_code == "elevator_camera")
    sim, msgs = _run_anomaly("ebike_in_elevator", cam)
    assert sim.truth[0]["device"] == cam
    with pytest.raises(ValueError, match="unknown anomaly"):
        sim.inject("meteor")
    with pytest.raises(ValueError, match="no device"):
        sim.inject("smoke", "SD-NOWHERE-1")
    assert parse_injections(["smoke", f"ebike_in_elevator@{cam}"]) == [("smoke", None), ("ebike_in_elevator", cam)]


def test_commands_are_answered_and_change_the_state(tenant: int) -> None:
    sim = Simulator(TENANT)
    sim.step(T0)
    cam = next(d for d in sim.devices if d.type_code == "elevator_camera")
    box = next(d for d in sim.devices if d.type_code == "distribution_box")
    sim.downlink(TENANT, cam.code, json.dumps({"id": 41, "name": "hold_doors", "args": {"seconds": 90}}).encode())
    sim.downlink(TENANT, box.code, json.dumps({"id": 42, "name": "cut_power", "args": {}}).encode())
    sim.downlink(TENANT, cam.code, json.dumps({"id": 43, "name": "explode", "args": {}}).encode())
    sim.downlink("OTHER", cam.code, b'{"id": 44, "name": "release_doors"}')  # not ours: ignored
    msgs = decoded(sim.step(T0 + 1))
    replies = {m["cmd"]: m for _, k, m in msgs if k == "reply"}
    assert set(replies) == {41, 42, 43}
    assert replies[41]["ok"] and replies[42]["ok"] and not replies[43]["ok"]
    assert "unknown command" in replies[43]["error"]
    held = [m["v"] for c, k, m in msgs if c == cam.code and k == "telemetry"]
    assert {"doors_held": True} in held
    assert [m["v"] for c, k, m in msgs if c == box.code and k == "telemetry"][0]["power_on"] is False
    later = decoded(sim.step(T0 + 120))
    assert {"doors_held": False} in [m["v"] for c, k, m in later if c == cam.code and k == "telemetry"]


def test_an_inproc_run_stores_the_messages_through_the_pipeline(tenant: int, engine: Engine) -> None:
    pytest.importorskip("shequ.core.iot.twin")
    from shequ.core.iot.models import DeviceState

    sim = Simulator(TENANT, engine=engine)
    sim.open()
    try:
        start = dt.datetime.now(dt.UTC).timestamp() - 300
        sent = sim.pump(start, start + 240, tick_s=5)
    finally:
        sim.close()
    assert sent > 0
    with session_scope(tenant_id=tenant) as s:
        stored = s.scalar(select(func.count()).select_from(Telemetry).where(Telemetry.tenant_id == tenant))
        online = s.scalar(select(func.count()).select_from(DeviceState).where(
            DeviceState.tenant_id == tenant, DeviceState.online.is_(True)))
        devices = s.scalar(select(func.count()).select_from(Device).where(Device.tenant_id == tenant))
    assert stored == sent
    assert online == devices
