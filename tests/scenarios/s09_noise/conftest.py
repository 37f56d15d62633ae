"""S09 fixtures: a committed tenant with a compound (class 1), a main road band (4a) and a monitor."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from shequ.core import loop
from shequ.core.iot.credentials import issue_token
from shequ.core.iot.models import Device
from shequ.core.iot.pipeline import Pipeline
from shequ.core.places.service import create_place
from shequ.core.rules import service as rules
from shequ.db import session_scope
from shequ.scenarios.s09_noise import service
from tests.iot_fixtures import IotWorld, build_world
from tests.web.conftest import admin, app, auth, browser, client, token  # noqa: F401

SHANGHAI = ZoneInfo("Asia/Shanghai")
# place_tree: grid and committee from (121.40, 31.00); the compound is 121.401–121.406 × 31.001–31.006
IN_COMPOUND = (121.403, 31.003)  # class 1 (its own zone)
ON_ROAD = (121.404, 31.0082)  # 22 m from the road's centre line at 31.008: the 4a band (50 m)
IN_COMMITTEE = (121.408, 31.0002)  # neither: the tenant's default class 2
ROAD = {"type": "LineString", "coordinates": [[121.40, 31.008], [121.42, 31.008]]}


@dataclass
class NoiseWorld:
    world: IotWorld
    pipe: Pipeline
    road_id: int

    def send(self, code: str, at: dt.datetime, laeq: float, where: tuple[float, float] | None = None,
             lamax: float | None = None) -> None:
        from tests.iot_fixtures import send

        values: dict[str, float] = {"laeq_db": laeq}
        if lamax is not None:
            values["lamax_db"] = lamax
        if where is not None:
            values["lon"], values["lat"] = where
        send(self.pipe, self.world, code, ts=int(at.timestamp() * 1000), v=values)


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def yesterday() -> dt.date:
    """A day whose every minute lies within the pipeline's accepted age (a week) and in the past."""
    return (dt.datetime.now(SHANGHAI) - dt.timedelta(days=2)).date()


@pytest.fixture
def noise(engine: Engine) -> Iterator[NoiseWorld]:
    loop.install()
    w = build_world(engine)
    with session_scope(tenant_id=w.tenant_id, actor="test") as s:
        road = create_place(session=s, kind="street", code="RD001", name="江川路", geometry=ROAD,
                            attrs={"main": True, "width_m": 30})
        for code in ("NM-1", "NM-2"):
            dev = Device(code=code, name=f"江川路移动噪声监测仪{code[-1]}", type_code="noise_monitor",
                         place_id=road.id, lon=ON_ROAD[0], lat=ON_ROAD[1], attrs={"mobile": True})
            w.tokens[code] = issue_token(dev)
            s.add(dev)
            w.devices[code] = dev
        s.flush()
        rules.install_default_rules(session=s)
        service.set_zone(session=s, place_id=w.tree.compound.id, noise_class="1")
        service.set_zone(session=s, place_id=road.id, noise_class="4a", buffer_m=50)
        road_id = road.id
    yield NoiseWorld(w, Pipeline(engine, rollup_every_s=-1), road_id)
