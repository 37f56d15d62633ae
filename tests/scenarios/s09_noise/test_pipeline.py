"""S09 through the real pipeline: minutes judged by the class where the monitor stands, the
over-limit window alarm, the night burst alarm and its case."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from shequ.core import loop
from shequ.db import session_scope
from shequ.scenarios.s09_noise.models import NoiseMinute
from tests.iot_fixtures import alarms_of, cases_of

from .conftest import IN_COMMITTEE, IN_COMPOUND, ON_ROAD, NoiseWorld, local


def minutes_of(noise: NoiseWorld, code: str) -> list[NoiseMinute]:
    with session_scope(tenant_id=noise.world.tenant_id) as s:
        return list(s.scalars(select(NoiseMinute).where(NoiseMinute.device_id == noise.world.devices[code].id)
                              .order_by(NoiseMinute.ts)))


def noise_alarms(noise: NoiseWorld, type_: str) -> list:
    return [a for a in alarms_of(noise.world) if a.type == type_]


def test_a_reading_is_judged_by_the_class_of_the_area_where_the_monitor_stands(noise, yesterday):
    day, night = local(yesterday, 10), local(yesterday, 23)
    noise.send("NM-1", day, 58.0, IN_COMPOUND)
    noise.send("NM-1", day + dt.timedelta(minutes=1), 58.0, ON_ROAD)
    noise.send("NM-1", day + dt.timedelta(minutes=2), 58.0, IN_COMMITTEE)
    noise.send("NM-1", night, 50.0, IN_COMPOUND)
    noise.send("NM-1", night + dt.timedelta(minutes=1), 50.0, ON_ROAD)
    noise.send("NM-1", night + dt.timedelta(minutes=2), 50.0)  # no position: where it was last seen (the road)
    got = [(m.noise_class, m.period, m.limit_db, m.over) for m in minutes_of(noise, "NM-1")]
    assert got == [
        ("1", "day", 55.0, True),  # residential compound: 58 > 55
        ("4a", "day", 70.0, False),  # main road band: 58 ≤ 70
        ("2", "day", 60.0, False),  # no zone: the tenant's default class 2
        ("1", "night", 45.0, True),
        ("4a", "night", 55.0, False),
        ("4a", "night", 55.0, False),
    ]
    [compound_minute] = [m for m in minutes_of(noise, "NM-1") if m.noise_class == "1" and m.period == "day"]
    assert compound_minute.place_id == noise.world.tree.compound.id  # filed at the area it stood in
    assert compound_minute.compound_id == noise.world.tree.compound.id


def test_two_readings_in_one_minute_are_energy_averaged(noise, yesterday):
    t = local(yesterday, 11, 5)
    noise.send("NM-1", t, 60.0, ON_ROAD, lamax=66.0)
    noise.send("NM-1", t + dt.timedelta(seconds=30), 70.0, ON_ROAD, lamax=75.0)
    [m] = minutes_of(noise, "NM-1")
    assert m.readings == 2 and round(m.laeq, 2) == 67.40  # 10·log10((10^6 + 10^7) / 2)
    assert m.lamax == 75.0


def test_the_window_alarm_fires_when_the_energy_mean_stays_above_the_limit_and_clears_below(noise, yesterday):
    t0 = local(yesterday, 14)
    # 4a by day: limit 70. The default window is 10 min, judged once it holds 5 minutes of data.
    for k in range(4):
        noise.send("NM-1", t0 + dt.timedelta(minutes=k), 72.0, ON_ROAD)
    assert noise_alarms(noise, "noise_over_limit") == []  # 4 minutes: too few to judge the window
    noise.send("NM-1", t0 + dt.timedelta(minutes=4), 72.0, ON_ROAD)
    [alarm] = noise_alarms(noise, "noise_over_limit")
    assert (alarm.severity, alarm.status, alarm.scenario) == ("MINOR", "ACTIVE_UNACK", "S09")
    assert alarm.context["laeq_window"] == 72.0 and alarm.context["limit"] == 70.0
    assert alarm.device_id == noise.world.devices["NM-1"].id
    # quiet again at 60 dB: the 10-minute energy mean falls as the loud minutes weigh less
    # minute 5..7: (5·10^7.2 + k·10^6)/(5+k) stays above 10^7; minute 8 (4 quiet): 8.32e7/9 < 10^7
    for k in range(5, 8):
        noise.send("NM-1", t0 + dt.timedelta(minutes=k), 60.0, ON_ROAD)
        assert noise_alarms(noise, "noise_over_limit")[0].status == "ACTIVE_UNACK", k
    noise.send("NM-1", t0 + dt.timedelta(minutes=8), 60.0, ON_ROAD)
    [alarm] = noise_alarms(noise, "noise_over_limit")
    assert alarm.status == "CLEARED_UNACK" and alarm.cleared_by == "scenario:S09"
    assert alarm.count == 1  # one alarm for the whole episode, not one per minute


def test_the_same_levels_alarm_in_a_compound_but_not_on_the_road(noise, yesterday):
    t0 = local(yesterday, 15)
    for k in range(6):
        noise.send("NM-1", t0 + dt.timedelta(minutes=k), 62.0, ON_ROAD)
        noise.send("NM-2", t0 + dt.timedelta(minutes=k), 62.0, IN_COMPOUND)
    alarms = noise_alarms(noise, "noise_over_limit")
    assert [a.device_id for a in alarms] == [noise.world.devices["NM-2"].id]
    assert alarms[0].compound_id == noise.world.tree.compound.id  # seen by the compound's area scopes


def test_a_night_reading_above_limit_plus_15_alarms_at_once_and_repeats_open_a_case(noise, yesterday):
    t0 = local(yesterday, 23, 30)  # 4a at night: limit 55, burst above 70
    noise.send("NM-1", t0, 69.5, ON_ROAD)
    assert noise_alarms(noise, "noise_night_burst") == []
    noise.send("NM-1", t0 + dt.timedelta(minutes=1), 71.0, ON_ROAD)
    [burst] = noise_alarms(noise, "noise_night_burst")
    assert (burst.severity, burst.status, burst.count) == ("MAJOR", "ACTIVE_UNACK", 1)
    assert burst.context["laeq"] == 71.0 and burst.context["limit"] == 55.0
    # the same reading by day is no burst (the night margin only)
    noise.send("NM-2", local(yesterday, 12), 85.0, ON_ROAD)
    assert len(noise_alarms(noise, "noise_night_burst")) == 1
    # two more bursts the same night count on the same alarm; the third opens a 噪声扰民 case
    noise.send("NM-1", t0 + dt.timedelta(minutes=2), 80.0, ON_ROAD)
    assert cases_of(noise.world) == []
    noise.send("NM-1", t0 + dt.timedelta(minutes=3), 78.0, ON_ROAD)
    loop.open_pending_cases(noise.world.engine)  # (other tests' tenants may have cases pending too)
    [case] = cases_of(noise.world)
    [burst] = noise_alarms(noise, "noise_night_burst")
    assert burst.count == 3 and case.alarm_id == burst.id
    assert case.class_code == "E0503" and case.department == "城运中心" and case.scenario == "S09"


def test_a_burst_alarm_clears_when_the_window_is_quiet_again(noise, yesterday):
    t0 = local(yesterday, 1)  # night, 4a: limit 55
    for k in range(5):
        noise.send("NM-1", t0 + dt.timedelta(minutes=k), 50.0, ON_ROAD)
    noise.send("NM-1", t0 + dt.timedelta(minutes=5), 90.0, ON_ROAD)
    [burst] = noise_alarms(noise, "noise_night_burst")
    assert burst.status == "ACTIVE_UNACK"
    for k in range(6, 15):  # the window (t-10 min, t] holds the loud minute 5 until t = minute 14
        noise.send("NM-1", t0 + dt.timedelta(minutes=k), 50.0, ON_ROAD)
    assert noise_alarms(noise, "noise_night_burst")[0].status == "ACTIVE_UNACK"
    noise.send("NM-1", t0 + dt.timedelta(minutes=15), 50.0, ON_ROAD)  # minutes 6…15: all 50 dB
    assert noise_alarms(noise, "noise_night_burst")[0].status == "CLEARED_UNACK"


def test_a_tenant_that_switched_the_scenario_off_judges_nothing(noise, yesterday):
    from shequ.core.places.models import Tenant

    with session_scope(tenant_id=noise.world.tenant_id) as s:
        tenant = s.get(Tenant, noise.world.tenant_id)
        tenant.settings = {**(tenant.settings or {}), "scenarios": ["S02"]}
    loop.forget_switches()  # a worker reads the switch again within loop.SWITCH_CACHE_S
    noise.send("NM-1", local(yesterday, 23), 90.0, ON_ROAD)
    assert minutes_of(noise, "NM-1") == [] and noise_alarms(noise, "noise_night_burst") == []
