"""A small subdistrict for the brain's tests, counted by hand: the registry's two committees
(north and south, in two grids) with their four people, plus tags, devices and their twin,
alarms and cases at known moments.

At NOW (Monday 1 June 2026, 10:00 in Shanghai):

- people: 张建国 M 1938 (80+), 李秀英 F 1961 (60-79), 王磊 M 1990 (35-59) in the north, 赵敏 F 1985
  (35-59) in the south; registered 2, resident 2; 残疾 (disabled) 张建国, 李秀英, 赵敏; 低保
  (low income) 王磊;
- devices in service: north smoke (online, alarm), north PIR (online, ok), south smoke (offline),
  south camera (never heard of); a retired north PIR is not counted;
- alarms: a1 north smoke CRITICAL at 09:00 today (active, unacknowledged); a2 south gas MAJOR
  two days ago (active, acknowledged); a3 north S05 WARNING at 09:30 today (cleared);
- cases: c1 north, reported Friday 29 May, dispatched and handled an hour later (on time);
  c2 south, reported 7 May, handled 30 May (late); c3 north, reported and registered ten
  minutes ago; c4 south, reported yesterday (Sunday) and left — past its one working hour.
  c1 and c2 wait past their "handled" stage's hour: with c4, three cases are overdue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import Alarm
from shequ.core.cases import service as cases
from shequ.core.cases.models import Case
from shequ.core.iot.models import Device, DeviceState, PlaceState, PlaceStateChange
from shequ.core.registry.tags import add_tag
from tests.factories import Tree

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 6, 1, 10, 0, tzinfo=SHANGHAI)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
T_STATE = int((NOW - HOUR).timestamp() * 1000)  # the north building went into alarm


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class World:
    north: Tree
    south: Tree
    devices: dict[str, Device]
    alarms: dict[str, Alarm]
    cases: dict[str, Case]


def _insert(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    # the twin's tables are written by the ingest pipeline with Core statements, as here
    session.connection().execute(insert(model.__table__), rows)  # type: ignore[arg-type]


def build(session: Session, north: Tree, south: Tree, people: dict[str, Any]) -> World:
    """Add tags, devices, the twin, alarms and cases to the registry fixture's two committees."""
    for name, code in (("张建国", "disabled"), ("李秀英", "disabled"), ("赵敏", "disabled"), ("王磊", "low_income")):
        add_tag(session=session, code=code, entity="person", entity_id=people[name].id, by="test")

    devices = {
        "north_smoke": Device(code="BR-NS", name="北 301 烟感", type_code="smoke_detector", place_id=north.room.id,
                              lon=121.4021, lat=31.0021),
        "north_pir": Device(code="BR-NP", name="北 302 人体感应", type_code="pir", place_id=north.room2.id,
                            lon=121.4022, lat=31.0022),
        "north_retired": Device(code="BR-NR", name="北 旧人体感应", type_code="pir", place_id=north.room2.id,
                                status="retired"),
        "south_smoke": Device(code="BR-SS", name="南 301 烟感", type_code="smoke_detector", place_id=south.room.id,
                              lon=121.4521, lat=31.0021),
        "south_camera": Device(code="BR-SC", name="南 小区摄像头", type_code="camera", place_id=south.compound.id),
    }
    session.add_all(devices.values())
    session.flush()
    tenant_id = session.info["tenant_id"]
    t = T_STATE

    def state(key: str, place_id: int, online: bool, condition: str, attrs: dict[str, Any]) -> dict[str, Any]:
        return {"device_id": devices[key].id, "tenant_id": tenant_id, "place_id": place_id, "attrs": attrs,
                "reported_ms": t, "seen_ms": t, "online": online, "condition": condition, "changed_ms": t}

    _insert(session, DeviceState, [
        state("north_smoke", north.room.id, True, "alarm", {"smoke": True}),
        state("north_pir", north.room2.id, True, "ok", {"occupied": False}),
        state("north_retired", north.room2.id, True, "ok", {}),
        state("south_smoke", south.room.id, False, "offline", {"smoke": False}),
    ])
    zero = {"devices": 0, "alarm": 0, "fault": 0, "offline": 0, "maintenance": 0, "ok": 0, "unknown": 0}
    _insert(session, PlaceState, [
        {**zero, "place_id": north.building.id, "tenant_id": tenant_id, "kind": "building", "devices": 2,
         "alarm": 1, "ok": 1, "state": "alarm", "ts": t},
        {**zero, "place_id": north.floor.id, "tenant_id": tenant_id, "kind": "floor", "devices": 2, "alarm": 1,
         "ok": 1, "state": "alarm", "ts": t},
        {**zero, "place_id": south.building.id, "tenant_id": tenant_id, "kind": "building", "devices": 1,
         "offline": 1, "state": "offline", "ts": t - 60_000},
    ])
    _insert(session, PlaceStateChange, [
        {"tenant_id": tenant_id, "place_id": north.building.id, "ts": t - 3_600_000, "state": "ok",
         "counts": '{"devices": 2, "ok": 2}'},
        {"tenant_id": tenant_id, "place_id": north.building.id, "ts": t, "state": "alarm",
         "counts": '{"devices": 2, "ok": 1, "alarm": 1}'},
    ])

    a1, _ = alarms.raise_alarm(session=session, type="smoke", source=f"d:{devices['north_smoke'].id}",
                               severity="CRITICAL", title="北 301 烟感报警", device_id=devices["north_smoke"].id,
                               place_id=north.room.id, now=NOW - HOUR)
    a2, _ = alarms.raise_alarm(session=session, type="gas", source=f"p:{south.room.id}", severity="MAJOR",
                               title="南 301 燃气报警", place_id=south.room.id, now=NOW - 2 * DAY)
    alarms.acknowledge(session=session, alarm=a2, actor="test", now=NOW - 2 * DAY + HOUR)
    a3, _ = alarms.raise_alarm(session=session, type="no_activity", source=f"p:{north.room2.id}",
                               severity="WARNING", title="北 302 无活动", place_id=north.room2.id, scenario="S05",
                               now=NOW - HOUR / 2)
    alarms.clear(session=session, alarm=a3, actor="test", now=NOW - HOUR / 4)

    c1 = cases.open_case(session=session, title="北 12号 楼道堆物", class_code="C0101", source="patrol",
                         actor="test", place_id=north.building.id, dispatch=True, now=NOW - 3 * DAY)
    cases.act(session=session, case=c1, action="handle", actor="test", now=NOW - 3 * DAY + HOUR)
    c2 = cases.open_case(session=session, title="南 12号 井盖缺失", class_code="C0101", source="patrol",
                         actor="test", place_id=south.building.id, dispatch=True, now=NOW - 25 * DAY)
    cases.act(session=session, case=c2, action="handle", actor="test", now=NOW - 2 * DAY)
    c3 = cases.open_case(session=session, title="北 301 噪音", class_code="C0101", source="patrol", actor="test",
                         place_id=north.room.id, register=True, now=NOW - dt.timedelta(minutes=10))
    c4 = cases.open_case(session=session, title="南 12号 违章搭建", class_code="C0101", source="resident",
                         actor="test", place_id=south.building.id, now=NOW - DAY)
    session.flush()
    return World(north, south, devices, {"a1": a1, "a2": a2, "a3": a3}, {"c1": c1, "c2": c2, "c3": c3, "c4": c4})
