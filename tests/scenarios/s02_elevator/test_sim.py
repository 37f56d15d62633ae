"""S02's simulator anomalies and demo seed on a small seeded subdistrict."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine, func, select

from shequ.db import session_scope
from shequ.scenarios.s02_elevator import service
from shequ.scenarios.s02_elevator.models import Detection
from shequ.sim.devices import seed_devices
from shequ.sim.seed import seed
from shequ.sim.simulate import SHANGHAI, Simulator

TENANT = "S02SIM"
T0 = dt.datetime(2026, 3, 4, 20, 0, tzinfo=SHANGHAI).timestamp()


@pytest.fixture(scope="module")
def tenant(engine: Engine) -> int:
    report = seed(scale="small", seed=2, tenant_code=TENANT, progress=False)
    seed_devices(tenant_id=report.tenant_id, seed=2, scale="small")
    return report.tenant_id


def _events(sim: Simulator, kind: str, minutes: int, **params: object) -> list[tuple[str, str]]:
    sim.step(T0)
    sim.inject(kind, **params)
    out = []
    for k in range(1, minutes + 1):
        out += sim.step(T0 + 60 * k)
    code = sim.truth[-1]["device"]
    return [(m["type"], str(m["data"].get("confidence", ""))) for c, kind_, body in out
            if c == code and kind_ == "event" for m in [json.loads(body)]]


def test_a_repeated_ebike_comes_three_times_to_one_elevator(tenant: int) -> None:
    sim = Simulator(TENANT)
    events = _events(sim, "ebike_repeat", 8)
    assert [e for e, _c in events] == ["ebike_detected", "ebike_left"] * 3
    assert sim.truth[-1]["kind"] == "ebike_repeat"


def test_a_pram_is_detected_with_a_modest_confidence(tenant: int) -> None:
    events = _events(Simulator(TENANT), "pram_in_elevator", 3)
    assert events == [("ebike_detected", "0.66"), ("ebike_left", "")]


def test_the_demo_seed_fills_a_fortnight_once(tenant: int) -> None:
    with session_scope(tenant_id=tenant, actor="seed") as s:
        service.seed_demo(session=s)
    with session_scope(tenant_id=tenant, actor="seed") as s:
        n = s.scalar(select(func.count(Detection.id)))
        service.seed_demo(session=s)
        assert s.scalar(select(func.count(Detection.id))) == n
        a, b = service.period(start=None, end=None, default_days=30)
        st = service.stats(session=s, start=a, end=b)
    assert n and st.total + st.false == n and st.precision is not None
    assert sum(st.by_hour) == st.total and st.cameras
