"""Replay of the twin: a building, a floor and its devices as they were at a past moment, and
the buildings layer of the map with its live state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from shequ.core.iam.scope import Scope
from shequ.core.iot.models import (
    Device,
    DeviceState,
    PlaceState,
    PlaceStateChange,
    Telemetry,
    TelemetryRollup,
    TwinChange,
)
from shequ.core.iot.twin_read import buildings_geojson, device_twin_at, place_twin_at
from shequ.db import bind_context
from tests.factories import Tree, place_tree
from tests.iot_fixtures import IotWorld, world_fixture

MIN = 60_000
T0 = 1_750_000_000_000  # devices installed and reporting
T1 = T0 + 60 * MIN  # the moment replayed: smoke in 301, room 302 offline
T2 = T0 + 120 * MIN  # all cleared


@dataclass
class Scene:
    tree: Tree
    other: Tree
    smoke: Device  # room 301
    offline: Device  # room 302


def _rows(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    session.connection().execute(insert(model.__table__), rows)  # type: ignore[arg-type]


def _change(session: Session, device: Device, ts: int, attr: str, value: Any, previous: Any = None) -> None:
    _rows(session, TwinChange, [{"tenant_id": device.tenant_id, "device_id": device.id, "ts": ts, "attr": attr,
                                 "value": json.dumps(value),
                                 "previous": None if previous is None else json.dumps(previous)}])


def _place_change(session: Session, place_id: int, ts: int, state: str, **counts: int) -> None:
    tenant_id = session.info["tenant_id"]
    _rows(session, PlaceStateChange, [{"tenant_id": tenant_id, "place_id": place_id, "ts": ts, "state": state,
                                       "counts": json.dumps({"devices": sum(counts.values()), **counts})}])


def _reading(session: Session, device: Device, ts: int, msg_id: str, values: dict[str, Any]) -> None:
    _rows(session, Telemetry, [{"tenant_id": device.tenant_id, "device_id": device.id, "ts": ts, "msg_id": msg_id,
                                "kind": "t", "name": "", "body": json.dumps(values)}])


@pytest.fixture
def scene(session: Session) -> Scene:
    tree = place_tree(session, tag="A")
    other = place_tree(session, tag="B", lon=121.45, committee_name="南街居委会")
    smoke = Device(code="SD-301", name="301 烟感", type_code="smoke_detector", place_id=tree.room.id)
    offline = Device(code="SD-302", name="302 烟感", type_code="smoke_detector", place_id=tree.room2.id)
    session.add_all([smoke, offline])
    session.flush()
    tenant_id = session.info["tenant_id"]

    for dev in (smoke, offline):
        _change(session, dev, T0, "online", True, False)
        _change(session, dev, T0, "condition", "ok")
        _change(session, dev, T0, "smoke", False)
    # 301: smoke at T1 - 10 min, cleared at T2; the pipeline would not log a repeated value,
    # but a repeated row must not change what is read either
    _change(session, smoke, T1 - 10 * MIN, "smoke", True, False)
    _change(session, smoke, T1 - 10 * MIN, "condition", "alarm", "ok")
    _change(session, smoke, T1 - 5 * MIN, "smoke", True, True)
    _change(session, smoke, T2, "smoke", False, True)
    _change(session, smoke, T2, "condition", "ok", "alarm")
    # 302: silent from T1 - 20 min, offline at T1 - 1 min, back at T2
    _change(session, offline, T1 - MIN, "online", False, True)
    _change(session, offline, T1 - MIN, "condition", "offline", "ok")
    _change(session, offline, T2, "online", True, False)
    _change(session, offline, T2, "condition", "ok", "offline")

    # readings of 301: a full set, then a partial one, then one after T1
    _reading(session, smoke, T1 - 30 * MIN, "m1", {"temperature_c": 21.5, "battery_pct": 90, "smoke": False})
    _reading(session, smoke, T1 - 3 * MIN, "m2", {"temperature_c": 48.0, "smoke": True})
    _reading(session, smoke, T1 + 5 * MIN, "m3", {"temperature_c": 22.0, "battery_pct": 89, "smoke": True})
    # 302's raw telemetry is past retention: only the minute rollup is left
    _rows(session, TelemetryRollup, [
        {"device_id": offline.id, "field": f, "grain": "m", "start": T1 - 21 * MIN, "tenant_id": tenant_id,
         "n": 1, "sum": v, "min": v, "max": v, "last": v, "last_ts": T1 - 20 * MIN - 5_000}
        for f, v in (("battery_pct", 88.0), ("temperature_c", 20.25))
    ] + [
        {"device_id": offline.id, "field": "battery_pct", "grain": "m", "start": T2, "tenant_id": tenant_id,
         "n": 1, "sum": 87.0, "min": 87.0, "max": 87.0, "last": 87.0, "last_ts": T2 + 1_000},
    ])

    # the places: alarm and offline at T1, all well now
    b, f = tree.building.id, tree.floor.id
    for pid in (b, tree.unit.id, f):
        _place_change(session, pid, T0, "ok", ok=2)
        _place_change(session, pid, T1 - 10 * MIN, "alarm", alarm=1, ok=1)
        _place_change(session, pid, T1 - MIN, "alarm", alarm=1, offline=1)
        _place_change(session, pid, T2, "ok", ok=2)
    _place_change(session, tree.room.id, T0, "ok", ok=1)
    _place_change(session, tree.room.id, T1 - 10 * MIN, "alarm", alarm=1)
    _place_change(session, tree.room.id, T2, "ok", ok=1)
    _place_change(session, tree.room2.id, T0, "ok", ok=1)
    _place_change(session, tree.room2.id, T1 - MIN, "offline", offline=1)
    _place_change(session, tree.room2.id, T2, "ok", ok=1)
    _rows(session, PlaceState, [
        {"place_id": pid, "tenant_id": tenant_id, "kind": kind, "devices": n, "ok": n, "state": "ok", "ts": T2}
        for pid, kind, n in ((b, "building", 2), (tree.unit.id, "unit", 2), (f, "floor", 2),
                             (tree.room.id, "room", 1), (tree.room2.id, "room", 1))
    ])
    _rows(session, DeviceState, [
        {"device_id": dev.id, "tenant_id": tenant_id, "place_id": dev.place_id,
         "attrs": {"smoke": False, "temperature_c": 22.0, "battery_pct": 89}, "reported_ms": T2,
         "seen_ms": T2, "online": True, "condition": "ok", "changed_ms": T2}
        for dev in (smoke, offline)
    ])
    return Scene(tree, other, smoke, offline)


def test_a_building_at_a_past_moment_shows_what_was_true_then(session: Session, scene: Scene) -> None:
    then = place_twin_at(session, scene.tree.building.id, T1)
    now = place_twin_at(session, scene.tree.building.id)
    assert then is not None and now is not None

    assert then["state"] == "alarm"
    assert then["counts"]["alarm"] == 1 and then["counts"]["offline"] == 1 and then["counts"]["ok"] == 0
    assert now["state"] == "ok" and now["counts"]["ok"] == 2 and now["counts"]["devices"] == 2
    assert [c["name"] for c in then["children"]] == ["1单元"]
    assert then["children"][0]["state"] == "alarm"

    devices = {d["code"]: d for d in then["devices"]}
    assert set(devices) == {"SD-301", "SD-302"}
    assert devices["SD-301"]["condition"] == "alarm"
    assert devices["SD-301"]["attrs"]["smoke"] is True
    assert devices["SD-301"]["online"] is True
    assert devices["SD-302"]["condition"] == "offline"
    assert devices["SD-302"]["online"] is False
    assert {d["condition"] for d in now["devices"]} == {"ok"}


def test_a_floor_at_a_past_moment_lists_its_rooms_with_their_states(session: Session, scene: Scene) -> None:
    floor = place_twin_at(session, scene.tree.floor.id, T1)
    assert floor is not None
    rooms = {c["name"]: c["state"] for c in floor["children"]}
    assert rooms == {"301室": "alarm", "302室": "offline"}
    later = place_twin_at(session, scene.tree.floor.id, T2 + MIN)
    assert later is not None
    assert {c["name"]: c["state"] for c in later["children"]} == {"301室": "ok", "302室": "ok"}


def test_a_room_lists_only_its_own_devices(session: Session, scene: Scene) -> None:
    room = place_twin_at(session, scene.tree.room2.id, T1)
    assert room is not None
    assert [d["code"] for d in room["devices"]] == ["SD-302"]
    assert room["state"] == "offline" and room["children"] == []


def test_measures_are_the_last_readings_at_that_moment(session: Session, scene: Scene) -> None:
    twins = device_twin_at(session, [scene.smoke.id, scene.offline.id], T1)
    smoke = twins[scene.smoke.id]["attrs"]
    # temperature from the latest message before T1; the battery from an earlier, fuller one
    assert smoke["temperature_c"] == 48.0
    assert smoke["battery_pct"] == 90
    assert twins[scene.smoke.id]["ts"] == T1 - 3 * MIN
    # raw data gone: the minute rollup's last value, never the one after T1
    offline = twins[scene.offline.id]["attrs"]
    assert offline["battery_pct"] == 88 and isinstance(offline["battery_pct"], int)
    assert offline["temperature_c"] == 20.25


def test_a_repeated_value_does_not_change_the_replay(session: Session, scene: Scene) -> None:
    before_repeat = device_twin_at(session, [scene.smoke.id], T1 - 6 * MIN)[scene.smoke.id]
    after_repeat = device_twin_at(session, [scene.smoke.id], T1)[scene.smoke.id]
    assert before_repeat["attrs"]["smoke"] is after_repeat["attrs"]["smoke"] is True
    assert before_repeat["condition"] == after_repeat["condition"] == "alarm"


def test_before_any_history_devices_and_places_are_unknown(session: Session, scene: Scene) -> None:
    early = place_twin_at(session, scene.tree.building.id, T0 - MIN)
    assert early is not None
    assert early["state"] == "unknown" and early["counts"]["devices"] == 0
    assert {d["condition"] for d in early["devices"]} == {"unknown"}
    assert all(d["attrs"] == {} and d["online"] is None for d in early["devices"])


def test_a_place_without_devices_is_unknown_with_zero_counts(session: Session, scene: Scene) -> None:
    empty = place_twin_at(session, scene.other.building.id, T1)
    now = place_twin_at(session, scene.other.building.id)
    assert empty is not None and now is not None
    for twin in (empty, now):
        assert twin["state"] == "unknown"
        assert set(twin["counts"].values()) == {0}
        assert twin["devices"] == [] and twin["devices_total"] == 0


def test_an_unknown_place_reads_as_none(session: Session, scene: Scene) -> None:
    assert place_twin_at(session, 10**9, T1) is None


def test_buildings_layer_has_one_feature_per_building_with_live_state(session: Session, scene: Scene) -> None:
    layer = buildings_geojson(session)
    assert layer["type"] == "FeatureCollection"
    by_code = {f["properties"]["code"]: f for f in layer["features"]}
    assert set(by_code) == {"BA", "BB"}
    a = by_code["BA"]
    assert a["geometry"]["type"] == "Polygon"
    assert a["properties"]["state"] == "ok" and a["properties"]["counts"]["ok"] == 2
    assert a["properties"]["floors"] == 6 and a["properties"]["height_m"] == 18.0
    assert a["properties"]["committee"] == "北街居委会"
    assert by_code["BB"]["properties"]["state"] == "unknown"

    north = buildings_geojson(session, committee_id=scene.tree.committee.id)
    assert [f["properties"]["code"] for f in north["features"]] == ["BA"]
    box = buildings_geojson(session, bbox=(121.44, 30.99, 121.46, 31.01))
    assert [f["properties"]["code"] for f in box["features"]] == ["BB"]


def test_buildings_layer_and_replay_respect_the_users_scope(session: Session, scene: Scene) -> None:
    south = Scope.areas(committees=[scene.other.committee.id], ancestors=[scene.other.grid.id])
    bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=south)
    try:
        codes = [f["properties"]["code"] for f in buildings_geojson(session)["features"]]
        assert codes == ["BB"]
        assert place_twin_at(session, scene.tree.building.id, T1) is None
        assert place_twin_at(session, scene.other.building.id, T1) is not None
    finally:
        bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=None)


# --- end to end: messages through the pipeline, then the building replayed between them --------


@pytest.fixture
def world(engine: Engine) -> Iterator[IotWorld]:
    yield from world_fixture(engine)


def _inproc(world: IotWorld, device: str, kind: str, body: dict[str, Any]) -> Any:
    from shequ.core.iot.pipeline import Inbound

    return Inbound(json.dumps(body).encode(), kind, world.tenant_code, device)


def test_a_building_fed_through_the_pipeline_replays_between_its_messages(world: IotWorld) -> None:
    from shequ.core.iot.pipeline import Pipeline, now_ms
    from shequ.db import session_scope

    pipeline = Pipeline(world.engine, rollup_every_s=-1)
    t = now_ms() - 30 * MIN
    pipeline.process([
        _inproc(world, "SD-301", "telemetry", {"id": "a1", "ts": t, "v": {"smoke": False, "temperature_c": 21.0}}),
        _inproc(world, "SD-302", "telemetry", {"id": "b1", "ts": t, "v": {"smoke": False, "temperature_c": 20.0}}),
    ])
    pipeline.process([_inproc(world, "SD-301", "telemetry",
                              {"id": "a2", "ts": t + 5 * MIN, "v": {"smoke": True, "temperature_c": 55.0}})])
    # the same value again is a report, not a change
    pipeline.process([_inproc(world, "SD-301", "telemetry",
                              {"id": "a3", "ts": t + 7 * MIN, "v": {"smoke": True, "temperature_c": 57.0}})])
    pipeline.process([_inproc(world, "SD-301", "telemetry",
                              {"id": "a4", "ts": t + 10 * MIN, "v": {"smoke": False, "temperature_c": 23.0}})])

    building = world.tree.building.id
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        during = place_twin_at(s, building, t + 8 * MIN)
        before = place_twin_at(s, building, t + MIN)
        now = place_twin_at(s, building)
        logged = s.connection().execute(
            select(TwinChange.value).where(TwinChange.device_id == world.devices["SD-301"].id,
                                           TwinChange.attr == "smoke").order_by(TwinChange.ts)).scalars().all()
    assert logged == ["false", "true", "false"]  # the repeated true was a report, not a change
    assert during is not None and before is not None and now is not None
    assert during["state"] == "alarm" and during["counts"]["alarm"] == 1
    assert before["state"] != "alarm" and now["state"] != "alarm"
    smoke = {d["code"]: d for d in during["devices"]}["SD-301"]
    assert smoke["condition"] == "alarm" and smoke["attrs"]["smoke"] is True
    assert smoke["attrs"]["temperature_c"] == 57.0
    now_smoke = {d["code"]: d for d in now["devices"]}["SD-301"]
    assert now_smoke["attrs"]["smoke"] is False and now_smoke["attrs"]["temperature_c"] == 23.0


def _statements(session: Session) -> Any:
    """A list that fills with every SQL statement the session's connection runs."""
    from sqlalchemy import event

    seen: list[str] = []
    conn = session.connection()
    event.listen(conn, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_reads_cost_the_same_few_queries_however_many_buildings_and_devices(session: Session,
                                                                            scene: Scene) -> None:
    from shequ.core.places.service import create_place
    from tests.factories import square

    for n in range(12):
        building = create_place(session=session, kind="building", code=f"BX{n}", name=f"{n}号",
                                parent=scene.tree.compound, floors=5, geometry=square(121.41 + n * 0.001, 31.0, 0.0003))
        session.add_all([Device(code=f"PIR-{n}-{k}", name="人体感应", type_code="pir", place_id=building.id)
                         for k in range(3)])
    session.flush()
    seen = _statements(session)
    assert len(buildings_geojson(session)["features"]) == 14
    assert len(seen) == 1
    seen.clear()
    compound = place_twin_at(session, scene.tree.compound.id, T1)
    assert compound is not None and compound["devices_total"] == 2 + 36
    assert len(seen) <= 10, seen  # place, children, states, count, devices, then 5 for their twins
