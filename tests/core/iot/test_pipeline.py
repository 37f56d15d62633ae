"""The ingest pipeline end to end over the real database: what a device sends is stored once,
bad messages are dead-lettered with their reason, the twin follows."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from shequ.core.iot.pipeline import Inbound, Pipeline, now_ms
from shequ.core.iot.telemetry import catch_up_rollups, history
from tests.iot_fixtures import IotWorld, world_fixture


@pytest.fixture
def world(engine: Engine) -> Iterator[IotWorld]:
    yield from world_fixture(engine)


def msg(world: IotWorld, device: str, kind: str, body: dict, *, transport: str = "mqtt",
        token: bool = True) -> Inbound:
    if token and transport != "inproc":
        body = {**body, "tk": world.tokens[device]}
    return Inbound(json.dumps(body).encode(), kind, world.tenant_code, device, transport=transport,
                   topic=f"shequ/{world.tenant_code}/{device}/{kind}")


def count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar() or 0)


def test_a_batch_with_bad_messages_stores_every_good_one_and_dead_letters_every_bad_one(world: IotWorld) -> None:
    now = now_ms()
    wm = world.devices["WM-301"].id
    batch = [
        msg(world, "WM-301", "telemetry", {"id": "g1", "ts": now - 2000, "v": {"flow_lpm": 3.5}}),
        Inbound(b"{not json", "telemetry", world.tenant_code, "WM-301", transport="mqtt"),
        msg(world, "NOPE-1", "telemetry", {"id": "x", "ts": now, "v": {"flow_lpm": 1}}, token=False),
        msg(world, "WM-301", "telemetry", {"id": "b3", "ts": now, "v": {"flow_lpm": 3.5}, "tk": "sqd_wrong"},
            token=False),
        msg(world, "WM-301", "telemetry", {"id": "b4", "ts": now, "v": {"pressure": 2}}),
        msg(world, "WM-301", "telemetry", {"id": "b5", "ts": now + 3_600_000, "v": {"flow_lpm": 1}}),
        msg(world, "WM-301", "telemetry", {"id": "b6", "ts": now - 30 * 86_400_000, "v": {"flow_lpm": 1}}),
        msg(world, "WM-301", "telemetry", {"id": "b7", "ts": now, "v": {"flow_lpm": -5}}),
        msg(world, "WM-301", "telemetry", {"id": "g2", "ts": now - 1000, "v": {"flow_lpm": 0.0}}),
        msg(world, "SD-301", "event", {"id": "b9", "ts": now, "type": "explosion"}),
        msg(world, "SD-301", "status", {"id": "g3", "ts": now, "online": True}),
    ]
    result = Pipeline(world.engine).process(batch)

    assert [o.status for o in result.outcomes] == [
        "accepted", "dead", "dead", "dead", "dead", "dead", "dead", "dead", "accepted", "dead", "accepted"]
    reasons = [o.reason for o in result.outcomes if o.status == "dead"]
    assert reasons == ["bad_json", "unknown_device", "bad_token", "schema", "time_range", "time_range",
                       "schema", "schema"]
    assert "pressure" in result.outcomes[4].detail and "flow_lpm" in result.outcomes[7].detail
    assert count(world.engine, "SELECT count(*) FROM telemetry WHERE tenant_id = :t", t=world.tenant_id) == 3
    assert count(world.engine, "SELECT count(*) FROM telemetry WHERE device_id = :d", d=wm) == 2
    with world.engine.connect() as conn:
        dead = conn.execute(text("SELECT reason, device_code, payload FROM dead_letter WHERE tenant_id = :t "
                                 "ORDER BY id"), {"t": world.tenant_id}).all()
    assert [d.reason for d in dead] == reasons
    assert bytes(dead[0].payload) == b"{not json"  # kept as received, for review


def test_the_same_message_twice_is_stored_once_within_and_across_batches(world: IotWorld) -> None:
    now = now_ms()
    p = Pipeline(world.engine)
    first = p.process([msg(world, "WM-301", "telemetry", {"id": "m1", "ts": now, "v": {"flow_lpm": 1.0}}),
                       msg(world, "WM-301", "telemetry", {"id": "m1", "ts": now, "v": {"flow_lpm": 1.0}})])
    again = p.process([msg(world, "WM-301", "telemetry", {"id": "m1", "ts": now + 5, "v": {"flow_lpm": 9.0}}),
                       msg(world, "WM-301", "telemetry", {"id": "m2", "ts": now, "v": {"flow_lpm": 2.0}})])
    assert (first.accepted, first.duplicates) == (1, 1)
    assert [o.status for o in again.outcomes] == ["duplicate", "accepted"]
    assert count(world.engine, "SELECT count(*) FROM telemetry WHERE device_id = :d",
                 d=world.devices["WM-301"].id) == 2


def test_inproc_messages_need_no_token_but_network_ones_do(world: IotWorld) -> None:
    now = now_ms()
    result = Pipeline(world.engine).process([
        msg(world, "DM-301", "telemetry", {"id": "a", "ts": now, "v": {"open": True}}, transport="inproc"),
        msg(world, "DM-301", "telemetry", {"id": "b", "ts": now, "v": {"open": False}}, token=False),
    ])
    assert [(o.status, o.reason) for o in result.outcomes] == [("accepted", ""), ("dead", "bad_token")]


def test_the_twin_keeps_changes_not_reports_and_places_follow_the_worst_condition(world: IotWorld) -> None:
    p = Pipeline(world.engine)
    sd = world.devices["SD-301"].id
    t0 = now_ms() - 60_000
    for i, smoke in enumerate([False, False, True, True, False]):
        p.process([msg(world, "SD-301", "telemetry",
                       {"id": f"s{i}", "ts": t0 + i * 1000, "v": {"smoke": smoke, "temperature_c": 20.0 + i}})])
    with world.engine.connect() as conn:
        changes = conn.execute(text("SELECT attr, value FROM twin_change WHERE device_id = :d ORDER BY id"),
                               {"d": sd}).all()
        state = conn.execute(text("SELECT attrs, condition, online FROM device_state WHERE device_id = :d"),
                             {"d": sd}).one()
        building = conn.execute(text("SELECT state, alarm, ok, devices FROM place_state WHERE place_id = :p"),
                                {"p": world.tree.building.id}).one()
        history_rows = conn.execute(text(
            "SELECT state FROM place_state_change WHERE place_id = :p ORDER BY id"),
            {"p": world.tree.room.id}).all()
    smoke_changes = [json.loads(v) for a, v in changes if a == "smoke"]
    assert smoke_changes == [False, True, False]  # five reports, three changes
    assert [json.loads(v) for a, v in changes if a == "condition"] == ["ok", "alarm", "ok"]
    assert not any(a == "temperature_c" for a, _ in changes)  # a measure: its history is the telemetry
    attrs = state.attrs if isinstance(state.attrs, dict) else json.loads(state.attrs)
    assert attrs == {"smoke": False, "temperature_c": 24.0} and state.condition == "ok" and state.online
    assert (building.state, building.alarm, building.ok, building.devices) == ("ok", 0, 1, 1)
    assert [r.state for r in history_rows] == ["ok", "alarm", "ok"]


def test_an_older_message_arriving_late_does_not_roll_the_twin_back(world: IotWorld) -> None:
    p = Pipeline(world.engine)
    t0 = now_ms() - 10_000
    p.process([msg(world, "DM-301", "telemetry", {"id": "new", "ts": t0 + 5000, "v": {"open": True}})])
    p.process([msg(world, "DM-301", "telemetry", {"id": "old", "ts": t0, "v": {"open": False}})])
    with world.engine.connect() as conn:
        attrs = conn.execute(text("SELECT attrs FROM device_state WHERE device_id = :d"),
                             {"d": world.devices["DM-301"].id}).scalar()
    attrs = attrs if isinstance(attrs, dict) else json.loads(attrs)
    assert attrs["open"] is True


def test_rollups_per_minute_hour_and_day_follow_the_raw_data(world: IotWorld) -> None:
    p = Pipeline(world.engine, rollup_every_s=-1)
    wm = world.devices["WM-301"].id
    base = (now_ms() - 3 * 3_600_000) // 3_600_000 * 3_600_000  # an hour boundary, 3 h ago
    values = [(base + i * 20_000, float(i)) for i in range(9)]  # 3 minutes × 3 readings
    p.process([msg(world, "WM-301", "telemetry", {"id": f"r{i}", "ts": ts, "v": {"flow_lpm": v}})
               for i, (ts, v) in enumerate(values)])
    catch_up_rollups(world.engine)
    with world.engine.connect() as conn:
        minutes = history(conn, wm, "flow_lpm", base, base + 179_999, grain="m")["points"]
        hours = history(conn, wm, "flow_lpm", base, base + 3_599_999, grain="h")["points"]
        raw = history(conn, wm, "flow_lpm", base, base + 179_999)["points"]
    assert [(m["n"], m["min"], m["max"], m["last"]) for m in minutes] == [
        (3, 0.0, 2.0, 2.0), (3, 3.0, 5.0, 5.0), (3, 6.0, 8.0, 8.0)]
    assert [m["avg"] for m in minutes] == [1.0, 4.0, 7.0]
    assert len(hours) == 1 and hours[0]["n"] == 9 and hours[0]["avg"] == 4.0
    assert [r["v"] for r in raw] == [v for _, v in values]
    # a late message for the first minute updates its rollup (no double counting of the others)
    p.process([msg(world, "WM-301", "telemetry", {"id": "late", "ts": base + 1, "v": {"flow_lpm": 10.0}})])
    catch_up_rollups(world.engine)
    with world.engine.connect() as conn:
        first = history(conn, wm, "flow_lpm", base, base + 59_999, grain="m")["points"][0]
        hour = history(conn, wm, "flow_lpm", base, base + 3_599_999, grain="h")["points"][0]
    assert (first["n"], first["max"], first["last"]) == (4, 10.0, 2.0)
    assert hour["n"] == 10


def test_events_and_status_reach_the_change_handlers(world: IotWorld) -> None:
    from shequ.core.iot.pipeline import Changes, add_change_handler, remove_change_handler

    seen: list[Changes] = []
    add_change_handler(seen.append)
    try:
        now = now_ms()
        Pipeline(world.engine).process([
            msg(world, "EC-12", "event", {"id": "e1", "ts": now, "type": "ebike_detected",
                                          "data": {"confidence": 0.93}}),
            msg(world, "SD-302", "telemetry", {"id": "t1", "ts": now, "v": {"smoke": True}}),
        ])
    finally:
        remove_change_handler(seen.append)
    (changes,) = seen
    ec, sd = world.devices["EC-12"].id, world.devices["SD-302"].id
    assert [(d, t) for d, _ts, t, _data in changes.events] == [(ec, "ebike_detected")]
    assert (sd, "alarm") in [(d, new) for d, _ts, new, _old in changes.conditions]
    assert [(d, a, v) for d, _ts, a, v, _old in changes.state_changes] == [(sd, "smoke", True)]


def test_booleans_roll_up_as_a_share_of_true_and_days_are_china_days(world: IotWorld) -> None:
    from shequ.core.iot.telemetry import HOUR

    p = Pipeline(world.engine, rollup_every_s=-1)
    dm = world.devices["DM-301"].id
    # 23:30 and 23:45 China time on one day, 00:15 on the next (UTC+8): two local days
    midnight_cn = (now_ms() + 8 * HOUR) // (24 * HOUR) * (24 * HOUR) - 8 * HOUR
    times = [midnight_cn - 30 * 60_000, midnight_cn - 15 * 60_000, midnight_cn + 15 * 60_000]
    if times[-1] > now_ms():  # keep every reading in the past
        times = [t - 24 * HOUR for t in times]
        midnight_cn -= 24 * HOUR
    p.process([msg(world, "DM-301", "telemetry", {"id": f"b{i}", "ts": ts, "v": {"open": v}})
               for i, (ts, v) in enumerate(zip(times, [True, False, True], strict=True))])
    catch_up_rollups(world.engine)
    with world.engine.connect() as conn:
        days = history(conn, dm, "open", midnight_cn - 24 * HOUR, midnight_cn + HOUR, grain="d")["points"]
        late = history(conn, dm, "open", times[0], times[1], grain="h")["points"]
    assert [(d["t"], d["n"]) for d in days] == [(midnight_cn - 24 * HOUR, 2), (midnight_cn, 1)]
    assert days[0]["avg"] == 0.5 and days[0]["last"] == 0.0  # open half of the time, closed last
    assert late[0]["n"] == 2
