"""S03 through the real pipeline: pile protection, the smoke linkage of a charging site, the
sessions ledger and flying-wire charging."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from shequ.core import loop
from shequ.core.alarms.models import AlarmEvent
from shequ.core.iot.credentials import issue_token
from shequ.core.iot.models import Device
from shequ.core.iot.pipeline import Pipeline
from shequ.core.registry.models import Facility
from shequ.core.rules import service as rules
from shequ.core.rules.engine import install as install_rules
from shequ.db import session_scope
from shequ.scenarios.s03_charging import service
from shequ.scenarios.s03_charging.models import ChargingSession
from tests.iot_fixtures import IotWorld, alarms_of, build_world, cases_of, commands_of, send

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def world(engine: Engine) -> Iterator[IotWorld]:
    """Two charging sites in one compound (A with a sprinkler, B without), each with a pile, a
    power box and a smoke detector; a corridor breaker feeding no charger and one feeding a
    charger at the building."""
    install_rules()
    loop.install()
    w = build_world(engine)
    with session_scope(tenant_id=w.tenant_id, actor="test") as s:
        compound = w.tree.compound
        sites = {}
        for tag in ("A", "B"):
            fac = Facility(kind="charging_station", code=f"CS-{tag}", name=f"充电棚{tag}", place_id=compound.id,
                           capacity=10, attrs={"sprinkler": tag == "A"})
            s.add(fac)
            s.flush()
            sites[tag] = fac.id
            items = [(f"CP-{tag}1", "charging_pile", {"ports": 10, "price_fen_per_kwh": 100}),
                     (f"DB-{tag}", "distribution_box", {}), (f"SD-{tag}", "smoke_detector", {})]
            if tag == "A":
                items.append(("SP-A", "sprinkler", {}))
            for code, type_code, attrs in items:
                dev = Device(code=code, name=code, type_code=type_code, place_id=compound.id, facility_id=fac.id,
                             attrs=attrs)
                w.tokens[code] = issue_token(dev)
                s.add(dev)
                w.devices[code] = dev
        for code, feeds in (("BK-C1", False), ("BK-CH", True)):
            dev = Device(code=code, name=f"楼道空开{code}", type_code="smart_breaker", place_id=w.tree.building.id,
                         attrs={"feeds_charger": feeds})
            s.add(dev)
            w.devices[code] = dev
        s.flush()
        rules.install_default_rules(session=s)
    w.sites = sites  # type: ignore[attr-defined]
    service.forget_caches()
    yield w


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def _night(hour: int, minute: int = 0) -> dt.datetime:
    """A moment (Asia/Shanghai) of the day before yesterday: whole nights after it are in the
    past, and it is well within the pipeline's seven days."""
    day = dt.datetime.now(SHANGHAI).date() - dt.timedelta(days=2)
    return dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI)


def test_an_overheating_pile_is_stopped_and_raises_a_major_alarm(engine, world):
    pipe = Pipeline(engine)
    send(pipe, world, "CP-A1", v={"temperature_c": 41.0, "charging": True, "current_a": 6.0})
    assert alarms_of(world) == []

    send(pipe, world, "CP-A1", v={"temperature_c": 72.5, "charging": True})
    [alarm] = alarms_of(world)
    assert (alarm.type, alarm.severity, alarm.device_id) == ("s03_pile_over_temperature", "MAJOR",
                                                              world.devices["CP-A1"].id)
    [cmd] = commands_of(world)
    assert (cmd.name, cmd.device_id) == ("stop_charging", world.devices["CP-A1"].id)
    assert cmd.status == "sent"  # on the wire once the batch committed

    send(pipe, world, "CP-A1", v={"temperature_c": 60.0})  # cooling, still above the clear value
    assert alarms_of(world)[0].status == "ACTIVE_UNACK"
    send(pipe, world, "CP-A1", v={"temperature_c": 50.0})
    assert alarms_of(world)[0].status == "CLEARED_UNACK"
    assert len(commands_of(world)) == 1


def test_over_current_for_ten_seconds_stops_the_pile(engine, world):
    pipe = Pipeline(engine)
    t0 = _ms(dt.datetime.now(dt.UTC)) - 60_000
    send(pipe, world, "CP-B1", ts=t0, v={"current_a": 23.0})
    assert alarms_of(world) == []  # not yet ten seconds
    send(pipe, world, "CP-B1", ts=t0 + 12_000, v={"current_a": 22.4})
    [alarm] = alarms_of(world)
    assert (alarm.type, alarm.severity) == ("s03_pile_over_current", "MAJOR")
    assert [(c.name, c.device_id) for c in commands_of(world)] == [("stop_charging", world.devices["CP-B1"].id)]


def test_smoke_at_a_charging_site_cuts_its_own_box_and_notes_the_sprinkler(engine, world):
    pipe = Pipeline(engine)
    send(pipe, world, "SP-A", v={"armed": True, "flowing": False, "pressure_mpa": 0.35})
    send(pipe, world, "SD-A", v={"smoke": True, "temperature_c": 48.0})

    [alarm] = alarms_of(world)  # the kernel's smoke alarm only: the linkage rule raises none
    assert (alarm.type, alarm.severity, alarm.device_id) == ("smoke", "CRITICAL", world.devices["SD-A"].id)
    [cmd] = commands_of(world)  # site A's box, not site B's in the same compound
    assert (cmd.name, cmd.device_id, cmd.status) == ("cut_power", world.devices["DB-A"].id, "sent")

    with session_scope(tenant_id=world.tenant_id) as s:
        [note] = s.scalars(select(AlarmEvent).where(AlarmEvent.alarm_id == alarm.id,
                                                    AlarmEvent.action == "linkage")).all()
        assert "DB-A" in note.note and "待命" in note.note and "armed" in note.note
        assert note.data["cut_power"] == [{"device": "DB-A", "command_id": cmd.id}]
        assert note.data["sprinklers"] == [{"device": "SP-A", "state": "armed", "pressure_mpa": 0.35}]

    loop.open_pending_cases(engine)
    [case] = cases_of(world)
    assert (case.alarm_id, case.class_code, case.department, case.priority) == (alarm.id, "E0401", "城运中心",
                                                                                "urgent")

    # the same smoke again: no second note, no second cut
    send(pipe, world, "SD-A", v={"smoke": True})
    assert len(commands_of(world)) == 1
    with session_scope(tenant_id=world.tenant_id) as s:
        assert len(s.scalars(select(AlarmEvent).where(AlarmEvent.alarm_id == alarm.id,
                                                      AlarmEvent.action == "linkage")).all()) == 1


def test_smoke_at_a_site_without_sprinkler_says_so(engine, world):
    pipe = Pipeline(engine)
    send(pipe, world, "SD-B", v={"smoke": True})
    [alarm] = alarms_of(world)
    assert [(c.name, c.device_id) for c in commands_of(world)] == [("cut_power", world.devices["DB-B"].id)]
    with session_scope(tenant_id=world.tenant_id) as s:
        [note] = s.scalars(select(AlarmEvent).where(AlarmEvent.alarm_id == alarm.id,
                                                    AlarmEvent.action == "linkage")).all()
        assert "本场所未设喷淋" in note.note and note.data["sprinklers"] == "none"


def test_smoke_elsewhere_cuts_no_power(engine, world):
    pipe = Pipeline(engine)
    send(pipe, world, "SD-301", v={"smoke": True})  # a smoke detector in a home
    [alarm] = alarms_of(world)
    assert alarm.type == "smoke" and commands_of(world) == []


def test_sessions_are_recorded_with_their_fees(engine, world):
    pipe = Pipeline(engine)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    send(pipe, world, "CP-A1", "event", ts=_ms(start), type="session_start",
         data={"port": 3, "energy_kwh": 0.0, "fee_fen": 0})
    send(pipe, world, "CP-A1", "event", ts=_ms(start + dt.timedelta(minutes=10)), type="session_start",
         data={"port": 4, "energy_kwh": 0.0, "fee_fen": 0})
    send(pipe, world, "CP-A1", "event", ts=_ms(start + dt.timedelta(hours=2)), type="session_stop",
         data={"port": 3, "energy_kwh": 0.62, "fee_fen": 100})
    send(pipe, world, "CP-B1", "event", ts=_ms(start), type="session_stop",  # its start was not heard
         data={"port": 1, "energy_kwh": 1.5, "fee_fen": 150})

    with session_scope(tenant_id=world.tenant_id) as s:
        rows = {(r.device_id, r.port): r for r in s.scalars(select(ChargingSession))}
        done = rows[(world.devices["CP-A1"].id, 3)]
        assert (done.started_at, done.stopped_at) == (start, start + dt.timedelta(hours=2))
        assert (done.energy_kwh, done.fee_fen, done.ended_by) == (0.62, 100, "normal")
        assert done.facility_id == world.sites["A"] and done.compound_id == world.tree.compound.id
        running = rows[(world.devices["CP-A1"].id, 4)]
        assert running.stopped_at is None and running.ended_by == ""
        orphan = rows[(world.devices["CP-B1"].id, 1)]
        assert orphan.started_at is None and orphan.fee_fen == 150

        end = dt.datetime.now(dt.UTC)
        [site_a] = service.sites(session=s, start=end - dt.timedelta(days=1), end=end, facility_id=world.sites["A"])
        assert (site_a.sessions, site_a.fee_fen, site_a.energy_kwh) == (1, 100, 0.62)
        # 2 h on port 3 and ~2 h 50 min (still running) on port 4, of 10 ports × 24 h
        assert 4.8 / 240 < site_a.utilisation < 4.9 / 240


def test_a_stop_command_ends_the_session_as_stopped(engine, world):
    pipe = Pipeline(engine)
    send(pipe, world, "CP-A1", "event", type="session_start", data={"port": 1, "energy_kwh": 0.0, "fee_fen": 0})
    send(pipe, world, "CP-A1", v={"temperature_c": 80.0})  # over-temperature: stop_charging
    send(pipe, world, "CP-A1", "event", type="session_stop", data={"port": 1, "energy_kwh": 0.05, "fee_fen": 100})
    with session_scope(tenant_id=world.tenant_id) as s:
        [row] = s.scalars(select(ChargingSession)).all()
        assert row.ended_by == "stopped"


def _draw(pipe, world, code, start, minutes, current, step=5):
    for k in range(0, minutes + 1, step):
        value = current(k) if callable(current) else current
        send(pipe, world, code, ts=_ms(start + dt.timedelta(minutes=k)), v={"current_a": value, "on": True})


def test_flying_wire_at_night_raises_an_alarm_and_a_case_to_the_grid(engine, world):
    pipe = Pipeline(engine)
    start = _night(23, 0)
    _draw(pipe, world, "BK-C1", start, 25, lambda k: 1.55 + (0.04 if k % 10 else -0.03))
    assert alarms_of(world) == []  # 25 minutes: not yet
    _draw(pipe, world, "BK-C1", start + dt.timedelta(minutes=30), 0, 1.58)
    [alarm] = alarms_of(world)
    assert (alarm.type, alarm.severity, alarm.scenario) == ("s03_flying_wire", "MINOR", "S03")
    assert alarm.device_id == world.devices["BK-C1"].id and alarm.building_id == world.tree.building.id
    assert alarm.context["minutes"] == 30 and 1.5 < alarm.context["mean_a"] < 1.6

    loop.open_pending_cases(engine)
    [case] = cases_of(world)
    assert (case.class_code, case.department, case.alarm_id) == ("S03-02", "城运中心", alarm.id)
    assert (case.grid_id, case.building_id) == (world.tree.grid.id, world.tree.building.id)

    # still drawing two hours on: MAJOR; then the charger is unplugged: cleared
    _draw(pipe, world, "BK-C1", start + dt.timedelta(minutes=35), 90, 1.56, step=15)
    assert alarms_of(world)[0].severity == "MAJOR"
    _draw(pipe, world, "BK-C1", start + dt.timedelta(minutes=130), 0, 0.05)
    assert alarms_of(world)[0].status == "CLEARED_UNACK"
    assert len(cases_of(world)) == 1


def test_the_same_draw_in_the_daytime_is_not_flying_wire(engine, world):
    pipe = Pipeline(engine)
    _draw(pipe, world, "BK-C1", _night(10, 0), 60, 1.55)  # 10:00–11:00
    assert alarms_of(world) == []


def test_a_night_draw_on_a_charger_circuit_is_not_flying_wire(engine, world):
    pipe = Pipeline(engine)
    _draw(pipe, world, "BK-CH", _night(23, 0), 60, 1.55)
    assert alarms_of(world) == []


def test_a_fluctuating_night_load_is_not_flying_wire(engine, world):
    pipe = Pipeline(engine)
    _draw(pipe, world, "BK-C1", _night(23, 0), 60, lambda k: (0.6, 1.4, 0.9, 1.9)[(k // 5) % 4])
    assert alarms_of(world) == []
