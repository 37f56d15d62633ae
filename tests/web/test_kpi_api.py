"""The indicators through the API, the XLSX export and the page: the figures of a small world
derived by hand, a scoped user's view, errors that name their parameter, and the audit row.

Week [2026-11-16, 2026-11-23), Asia/Shanghai:
- a1 (C0101 城建中心, grid A): reported Mon 09:00, dispatched 10:00, handled 11:00, closed 12:00
  (on time), rated 5 — 1 h to dispatch, 3 h to close;
- b1 (E0503 城运中心, grid B): reported and dispatched Tue 09:00 (due 14:00), never handled —
  open and past its deadline at the end: overdue; 0 h to dispatch.
The week before: a0 (C0101, grid A), reported Mon 9 09:00 and left (its stage due 10:00): overdue.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.cases import service as cases
from shequ.core.cases.calendar import SHANGHAI
from shequ.core.iam import service as iam
from shequ.core.iam.models import AuditLog
from tests.factories import Tree, place_tree
from tests.web.conftest import PASSWORD

PERIOD = {"start": "2026-11-16", "end": "2026-11-23"}


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=SHANGHAI).astimezone(dt.UTC)


@pytest.fixture
def world(session: Session) -> dict[str, Tree]:
    a = place_tree(session, tag="A")
    b = place_tree(session, tag="B", lon=121.45, committee_name="南街居委会")

    def report(tree: Tree, code: str, when: dt.datetime) -> Any:
        return cases.open_case(session=session, title="测试", class_code=code, source="patrol", actor="t",
                               place_id=tree.building.id, now=when)

    report(a, "C0101", at(9, 9))
    a1 = report(a, "C0101", at(16, 9))
    for action, hour in (("register", 10), ("dispatch", 10), ("handle", 11), ("feed_back", 11),
                         ("verify", 11), ("close", 12)):
        cases.act(session=session, case=a1, action=action, actor="t", now=at(16, hour))
    cases.act(session=session, case=a1, action="evaluate", actor="t", satisfaction=5, now=at(16, 13))
    b1 = report(b, "E0503", at(17, 9))
    for action in ("register", "dispatch"):
        cases.act(session=session, case=b1, action=action, actor="t", now=at(17, 9))
    return {"a": a, "b": b}


NOW = {  # a1 and b1
    "reported": 2, "registered": 2, "void": 0, "dispatched": 2,
    "handled": 1, "handled_on_time": 1, "on_time_handling_rate": 1.0,   # a1
    "overdue": 1,                                                       # b1
    "closed": 1, "closure_rate": 0.5, "on_time_closure_rate": 1.0,      # a1 of 2 registered
    "rework_rate": 0.0, "extension_rate": 0.0,
    "mean_hours_to_dispatch": 0.5,                                      # (1 + 0) / 2
    "mean_hours_to_close": 3.0,                                         # a1: 09:00 → 12:00
    "satisfaction": 5.0,
}
BEFORE = {  # a0, only reported
    "reported": 1, "registered": 0, "void": 0, "dispatched": 0, "handled": 0, "handled_on_time": 0,
    "on_time_handling_rate": None, "overdue": 1, "closed": 0, "closure_rate": None,
    "on_time_closure_rate": None, "rework_rate": None, "extension_rate": None,
    "mean_hours_to_dispatch": None, "mean_hours_to_close": None, "satisfaction": None,
}


def test_api_gives_every_indicator_and_its_change(client: TestClient, auth: dict[str, str],
                                                 world: dict[str, Tree]) -> None:
    response = client.get("/api/v1/kpi", params={**PERIOD, "by": "none"}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["start"], body["end"], body["previous_start"], body["previous_end"]) == (
        "2026-11-16", "2026-11-23", "2026-11-09", "2026-11-16")
    assert [i["key"] for i in body["indicators"]][:3] == ["reported", "registered", "void"]
    [row] = body["rows"]
    assert row["values"] == NOW
    assert row["previous"] == BEFORE
    assert row["change"]["reported"] == {"abs": 1.0, "rel": 1.0}      # 2 vs 1
    assert row["change"]["overdue"] == {"abs": 0.0, "rel": 0.0}       # 1 vs 1
    assert row["change"]["closure_rate"] == {"abs": None, "rel": None}  # nothing registered before
    assert body["total"]["values"] == NOW


def test_api_by_grid_names_the_grids(client: TestClient, auth: dict[str, str], world: dict[str, Tree]) -> None:
    body = client.get("/api/v1/kpi", params={**PERIOD, "by": "grid"}, headers=auth).json()
    a, b = world["a"], world["b"]
    # one case each this week; grid A had one the week before, so it comes first
    assert [(r["key"], r["label"], r["values"]["reported"], r["previous"]["reported"]) for r in body["rows"]] == [
        (str(a.grid.id), "第A网格", 1, 1), (str(b.grid.id), "第B网格", 1, 0)]
    assert body["rows"][1]["values"]["overdue"] == 1
    by_department = client.get("/api/v1/kpi", params={**PERIOD, "by": "department"}, headers=auth).json()
    assert [r["label"] for r in by_department["rows"]] == ["城建中心", "城运中心", "未派遣"]  # a0 never dispatched


def test_a_scoped_user_sees_only_their_grid(client: TestClient, session: Session, world: dict[str, Tree]) -> None:
    a = world["a"]
    grants = iam.role_permissions(session=session)["grid_worker"]
    iam.set_role_permissions(session=session, role="grid_worker", permissions=sorted(grants | {iam.KPI_READ}))
    worker = iam.create_user(session=session, username="wangge1", password=PASSWORD, role="grid_worker",
                             scope={"grids": [a.grid.id]})
    headers = {"Authorization": f"Bearer {iam.create_api_token(session=session, user=worker, days=1)}"}
    response = client.get("/api/v1/kpi", params={**PERIOD, "by": "grid"}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert [(r["label"], r["values"]["reported"]) for r in body["rows"]] == [("第A网格", 1)]
    assert body["total"]["values"]["reported"] == 1 and body["total"]["values"]["overdue"] == 0
    assert "第B网格" not in response.text
    sheet = client.get("/api/v1/kpi.xlsx", params={**PERIOD, "by": "grid"}, headers=headers)
    cells = [v for ws in load_workbook(io.BytesIO(sheet.content)).worksheets
             for row in ws.iter_rows(values_only=True) for v in row if v is not None]
    assert "第A网格" in cells and "第B网格" not in cells


def test_bad_parameters_are_named(client: TestClient, auth: dict[str, str]) -> None:
    backwards = client.get("/api/v1/kpi", params={"start": "2026-11-23", "end": "2026-11-16"}, headers=auth)
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "end"
    dimension = client.get("/api/v1/kpi", params={"by": "weather"}, headers=auth)
    assert dimension.status_code == 422 and dimension.json()["errors"][0]["field"] == "by"
    not_a_date = client.get("/api/v1/kpi.xlsx", params={"start": "16/11/2026"}, headers=auth)
    assert not_a_date.status_code == 422 and not_a_date.json()["errors"][0]["field"] == "start"
    ancient = client.get("/api/v1/kpi", params={"start": "0001-01-01", "end": "2026-01-01"}, headers=auth)
    assert ancient.status_code == 422 and ancient.json()["errors"][0]["field"] == "start"


def test_readers_need_kpi_read(client: TestClient, session: Session, world: dict[str, Tree]) -> None:
    partner = iam.create_user(session=session, username="partner", password=PASSWORD, role="api_client")
    headers = {"Authorization": f"Bearer {iam.create_api_token(session=session, user=partner, days=1)}"}
    assert client.get("/api/v1/kpi", headers=headers).status_code == 403
    assert client.get("/api/v1/kpi.xlsx", headers=headers).status_code == 403
    assert client.get("/api/v1/kpi").status_code == 401


def test_xlsx_holds_the_api_numbers_and_is_audited(client: TestClient, session: Session, auth: dict[str, str],
                                                   world: dict[str, Tree]) -> None:
    response = client.get("/api/v1/kpi.xlsx", params={**PERIOD, "by": "none"}, headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content))
    rows = list(book["考核指标"].iter_rows(values_only=True))
    keys = list(NOW)
    assert rows[0][1:] == ("上报数", "立案数", "作废数", "派遣数", "处置数", "按期处置数", "按期处置率", "超期数",
                           "结案数", "结案率", "按期结案率", "返工率", "延期率", "平均派遣时长（小时）",
                           "平均结案时长（小时）", "满意度（1–5）")
    assert rows[1][1:4] == ("reported", "registered", "void")
    assert len(rows) == 3  # two header rows, the whole subdistrict
    figures = dict(zip(keys, rows[2][1:], strict=True))
    assert figures == {k: (pytest.approx(v) if isinstance(v, float) else v) for k, v in NOW.items()}
    [audit] = session.scalars(select(AuditLog).where(AuditLog.action == "export", AuditLog.target == "kpi"))
    assert audit.actor == "admin1" and audit.detail == {"start": "2026-11-16", "end": "2026-11-23", "by": "none",
                                                         "rows": 1, "lang": "zh-CN"}


def test_the_page_shows_the_table_with_changes_and_links_the_export(browser: TestClient,
                                                                     world: dict[str, Tree]) -> None:
    page = browser.get("/kpi", params={**PERIOD, "by": "grid"})
    assert page.status_code == 200
    text = page.text
    assert "考核指标" in text and "第A网格" in text and "第B网格" in text and "合计" in text
    assert 'href="/kpi.xlsx?start=2026-11-16&amp;end=2026-11-23&amp;by=grid"' in text
    assert "50.0%" in text        # the closure rate of the whole subdistrict
    assert "▲ +1 (+100%)" in text  # reported: 2 against 1
    assert 'value="grid" selected' in text
    english = browser.get("/kpi", params={**PERIOD, "by": "department", "lang": "en"})
    assert "Indicators" in english.text and "on-time handling rate" in english.text
    assert "not dispatched" in english.text
    bad = browser.get("/kpi", params={"start": "2026-11-23", "end": "2026-11-16"})
    assert bad.status_code == 200 and "end:" in bad.text  # the error, above this month's figures
    sheet = browser.get("/kpi.xlsx", params={**PERIOD, "by": "grid", "lang": "zh-CN"})  # the cookie said en
    assert sheet.status_code == 200
    rows = list(load_workbook(io.BytesIO(sheet.content))["考核指标"].iter_rows(values_only=True))
    assert [r[0] for r in rows] == ["网格", "grid", "第A网格", "第B网格", "合计"]


def test_the_page_needs_kpi_read(client: TestClient, session: Session) -> None:
    from tests.web.conftest import login

    iam.create_user(session=session, username="partner2", password=PASSWORD, role="property",
                    scope={"compounds": [place_tree(session, tag="P").compound.id]})
    login(client, "partner2")
    assert client.get("/kpi").status_code == 403
