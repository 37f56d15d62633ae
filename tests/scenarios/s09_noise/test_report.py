"""S09's report on hand-made readings sent through the pipeline, by the service and by the API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shequ.core.iam import service as iam
from shequ.db import session_scope
from shequ.scenarios.s09_noise import service
from shequ.web.app import create_app

from .conftest import IN_COMPOUND, ON_ROAD, NoiseWorld, local

DAY = [50, 52, 54, 56, 58, 60, 62, 64, 66, 72]  # 10:00…10:09 on the road (4a: 70 by day)
LAMAX = {50: 70.0, 66: 75.0}  # the others send no LAmax


def test_level_exceeded_interpolates_linearly_between_sorted_levels():
    levels = [72, 50, 64, 47, 60, 51, 54, 66, 52, 56, 58, 60, 62]  # sorted: 47 50 51 52 54 56 58 60 60 62 64 66 72
    # h = (n-1)·(100-N)/100 with n = 13: L10 → h = 10.8 → 64 + 0.8·(66-64); L90 → h = 1.2 → 50 + 0.2·(51-50)
    assert service.level_exceeded(levels, 10) == pytest.approx(65.6)
    assert service.level_exceeded(levels, 50) == pytest.approx(58.0)
    assert service.level_exceeded(levels, 90) == pytest.approx(50.2)
    assert service.level_exceeded([61.0], 10) == 61.0 and service.level_exceeded([], 50) is None
    assert service.energy_mean([60.0, 70.0]) == pytest.approx(67.4036, abs=1e-4)


@pytest.fixture
def loaded(noise: NoiseWorld, yesterday: dt.date) -> NoiseWorld:
    for k, level in enumerate(DAY):
        noise.send("NM-1", local(yesterday, 10, k), float(level), ON_ROAD, lamax=LAMAX.get(level))
    noise.send("NM-1", local(yesterday, 23, 0), 51.0, ON_ROAD)  # 4a by night: 55
    noise.send("NM-1", local(yesterday, 23, 1), 60.0, ON_ROAD)  # over
    noise.send("NM-1", local(yesterday, 23, 2), 47.0, IN_COMPOUND)  # class 1 by night: 45, over
    noise.send("NM-1", local(yesterday - dt.timedelta(days=1), 10), 99.0, ON_ROAD)  # outside the period
    return noise


def test_report_figures_on_hand_numbers(loaded, yesterday):
    start = local(yesterday, 0)
    with session_scope(tenant_id=loaded.world.tenant_id) as s:
        device = service.find_monitor(session=s, ref="NM-1")
        r = service.report(session=s, device=device, start=start, end=start + dt.timedelta(days=1))
    # LAeq = 10·log10(mean(10^(L/10))) over the 13 minutes; Ld over the 10 day minutes, Ln over the 3 night ones
    assert (r["laeq"], r["ld"], r["ln"]) == (63.28, 64.23, 55.93)
    assert (r["l10"], r["l50"], r["l90"]) == (65.6, 58.0, 50.2)
    assert r["lamax"] == 75.0
    assert (r["limit_day"], r["limit_night"]) == (70.0, 55.0)  # 4a: most day and most night minutes
    assert r["minutes_over"] == 3  # 72 > 70 by day; 60 > 55 on the road and 47 > 45 in the compound by night
    assert (r["readings"], r["day_minutes"], r["night_minutes"]) == (13, 10, 3)
    by_class = {c["noise_class"]: c for c in r["by_class"]}
    assert by_class["1"] == {"noise_class": "1", "minutes": 1, "laeq": 47.0, "ld": None, "ln": 47.0,
                             "limit_day": 55.0, "limit_night": 45.0, "minutes_over": 1}
    assert by_class["4a"]["minutes"] == 12 and by_class["4a"]["minutes_over"] == 2
    assert by_class["4a"]["ln"] == 57.5


@pytest.fixture(scope="module")
def real_app() -> Iterator[TestClient]:
    """The real app on the real database (no session override), built once for the module."""
    with TestClient(create_app()) as client:
        yield client


@pytest.fixture
def api(noise: NoiseWorld, real_app: TestClient) -> Iterator[TestClient]:
    """The real app with a bearer token of a dispatcher of the world's tenant."""
    with session_scope(tenant_id=noise.world.tenant_id, actor="test") as s:
        user = iam.create_user(session=s, username="noise_disp", password="jiangchuan2024", role="dispatcher")
        token = iam.create_api_token(session=s, user=user, name="t", days=1)
    real_app.headers["Authorization"] = f"Bearer {token}"
    yield real_app
    real_app.headers.pop("Authorization", None)


def test_the_report_api_returns_the_figures_by_code_or_id(loaded, api, yesterday):
    start = local(yesterday, 0)
    params = {"start": start.isoformat(), "end": (start + dt.timedelta(days=1)).isoformat()}
    body = api.get("/api/v1/noise/monitors/NM-1/report", params=params).json()
    assert {k: body[k] for k in ("laeq", "lamax", "l10", "l50", "l90", "ld", "ln", "limit_day", "limit_night",
                                 "minutes_over")} == {
        "laeq": 63.28, "lamax": 75.0, "l10": 65.6, "l50": 58.0, "l90": 50.2, "ld": 64.23, "ln": 55.93,
        "limit_day": 70.0, "limit_night": 55.0, "minutes_over": 3}
    by_id = api.get(f"/api/v1/noise/monitors/{loaded.world.devices['NM-1'].id}/report", params=params).json()
    assert by_id["laeq"] == 63.28
    # only the 10:09 minute (72 dB, no LAmax sent): LAmax falls back to the minute's LAeq
    one = api.get("/api/v1/noise/monitors/NM-1/report", params={
        "start": local(yesterday, 10, 9).isoformat(), "end": local(yesterday, 10, 10).isoformat()}).json()
    assert (one["laeq"], one["lamax"], one["l10"], one["l90"], one["minutes_over"]) == (72.0, 72.0, 72.0, 72.0, 1)
    # an unencoded "+08:00" arrives as a space and is still read as the offset
    raw = api.get(f"/api/v1/noise/monitors/NM-1/report?start={start.strftime('%Y-%m-%dT%H:%M:%S')}+08:00"
                  f"&end={(start + dt.timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%S')}+08:00").json()
    assert raw["laeq"] == 63.28


def test_the_report_api_gives_nulls_for_a_period_without_readings(loaded, api, yesterday):
    start = local(yesterday, 3)
    body = api.get("/api/v1/noise/monitors/NM-2/report",
                   params={"start": start.isoformat(), "end": (start + dt.timedelta(hours=1)).isoformat()}).json()
    assert all(body[k] is None for k in ("laeq", "lamax", "l10", "l50", "l90", "ld", "ln", "limit_day", "limit_night"))
    assert body["minutes_over"] == 0 and body["readings"] == 0


@pytest.mark.parametrize(("params", "field"), [
    ({"end": "2026-12-01T00:00:00+08:00"}, "start"),
    ({"start": "2026-12-01T00:00:00+08:00"}, "end"),
    ({"start": "yesterday", "end": "2026-12-01T00:00:00+08:00"}, "start"),
    ({"start": "2026-12-01T00:00:00", "end": "2026-12-02T00:00:00+08:00"}, "start"),  # no offset
    ({"start": "2026-12-01T00:00:00+08:00", "end": "2026-11-30T12:00:00Z"}, "end"),  # before start
    ({"start": "2026-12-02T00:00:00+08:00", "end": "2026-12-01T00:00:00+08:00"}, "end"),  # reversed
])
def test_the_report_api_names_the_bad_time(api, params, field):
    response = api.get("/api/v1/noise/monitors/NM-1/report", params=params)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_an_unknown_monitor_is_404(api):
    params = {"start": "2026-12-01T00:00:00+08:00", "end": "2026-12-02T00:00:00+08:00"}
    assert api.get("/api/v1/noise/monitors/NM-404/report", params=params).status_code == 404
    assert api.get("/api/v1/noise/monitors/SD-301/report", params=params).status_code == 404  # not a noise monitor
