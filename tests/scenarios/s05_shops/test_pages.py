"""S05's pages and API: the risk ledger, one shop, inspection tasks, who may do what, 422s, scope."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.iam import service as iam
from shequ.core.places.service import create_place
from shequ.db import bind_context
from shequ.scenarios.s05_shops import service
from shequ.scenarios.s05_shops.models import Inspection, Shop
from tests.factories import Tree, place_tree
from tests.web.conftest import PASSWORD, admin, app, auth, client, csrf_of, login, token  # noqa: F401


@dataclass
class Town:
    a: Tree
    b: Tree
    shop_a: int
    shop_b: int
    tokens: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def town(session: Session) -> Town:
    a = place_tree(session, tag="A", committee_name="甲居委会")
    b = place_tree(session, tag="B", lon=121.45, committee_name="乙居委会")
    shop_a = create_place(session=session, kind="shop", code="SPA", name="甲街小吃店", parent=a.committee,
                          attrs={"industry": "住宿和餐饮业"}).id
    shop_b = create_place(session=session, kind="shop", code="SPB", name="乙街五金店", parent=b.committee,
                          attrs={"industry": "批发和零售业"}).id
    return Town(a, b, shop_a, shop_b)


@pytest.fixture
def staff(session: Session, town: Town) -> Town:
    """Users of other roles (each costs a password hash: only the tests that need them)."""
    a = town.a
    users = {
        "committee": ("committee", {"committees": [a.committee.id]}),
        "ajs": ("department", {"department": "安监所"}),
        "fwb": ("department", {"department": "社区服务办"}),
        "grid": ("grid_worker", {"grids": [a.grid.id]}),
    }
    for name, (role, scope) in users.items():
        user = iam.create_user(session=session, username=f"u_{name}", password=PASSWORD, role=role, scope=scope)
        town.tokens[name] = iam.create_api_token(session=session, user=user, days=1)
    return town


def bearer(town: Town, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {town.tokens[who]}"}


def test_the_ledger_scores_shops_and_explains_the_score(client, session, town, auth):  # noqa: F811
    # a 三合一 alarm at shop A, a failed inspection not rectified in time
    alarms.raise_alarm(session=session, type="s05_live_in", source=f"p:{town.shop_a}", severity="MINOR",
                       title="甲街小吃店 夜间有人滞留", place_id=town.shop_a, scenario="S05")
    session.add(Inspection(place_id=town.shop_a, planned_date=service.today() - dt.timedelta(days=30),
                           status="done", result="fail", findings="阁楼设置床铺", done_by="x",
                           done_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
                           rectify_by=service.today() - dt.timedelta(days=5)))
    session.flush()
    body = client.get("/api/v1/shops", headers=auth).json()
    assert body["total"] == 2
    first = body["items"][0]
    assert first["place_id"] == town.shop_a and first["incidents"] == {"s05_live_in": 1}
    assert first["rectification"] == "overdue" and first["last_result"] == "fail"
    keys = {r["key"]: r["points"] for r in first["reasons"]}
    assert keys == {"live_in": 15, "last_fail": 30, "rectify_overdue": 20}
    assert first["score"] == 65 and first["level"] == "high"
    other = body["items"][1]
    assert other["score"] == 10 and other["level"] == "low"  # never inspected within a year
    only_high = client.get("/api/v1/shops", params={"level": "high"}, headers=auth).json()
    assert [s["place_id"] for s in only_high["items"]] == [town.shop_a]
    assert client.get("/api/v1/shops", params={"level": "huge"}, headers=auth).status_code == 422

    login(client)
    page = client.get("/shops")
    assert page.status_code == 200 and "甲街小吃店" in page.text and "整改逾期" in page.text
    bad = client.get("/shops", params={"level": "huge"})
    assert bad.status_code == 422 and "level" in bad.text
    detail = client.get(f"/shops/{town.shop_a}")
    assert detail.status_code == 200 and 'data-reason="last_fail"' in detail.text and "阁楼设置床铺" in detail.text
    assert client.get(f"/shops/{town.a.building.id}").status_code == 404  # not a shop


def test_a_committee_user_sees_only_their_shops(client, session, town, staff):  # noqa: F811
    body = client.get("/api/v1/shops", headers=bearer(town, "committee")).json()
    assert [s["place_id"] for s in body["items"]] == [town.shop_a]
    assert client.get(f"/api/v1/shops/{town.shop_b}", headers=bearer(town, "committee")).status_code == 404
    bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=None)  # the test's own view
    other = service.create_inspection(session=session, place_id=town.shop_b, planned_date=service.today(),
                                      actor="test")
    listed = client.get("/api/v1/shops/inspections", headers=bearer(town, "committee")).json()
    assert listed["total"] == 0
    assert client.post(f"/api/v1/shops/inspections/{other.id}/result", json={"result": "pass"},
                       headers=bearer(town, "committee")).status_code == 404
    login(client, "u_committee")
    page = client.get("/shops")
    assert "甲街小吃店" in page.text and "乙街五金店" not in page.text
    assert client.get(f"/shops/{town.shop_b}").status_code == 404


def test_inspection_workflow_through_the_api(client, session, town, staff, auth):  # noqa: F811
    ajs = session.scalar(select(iam.User).where(iam.User.username == "u_ajs"))
    created = client.post("/api/v1/shops/inspections", headers=auth, json={
        "place_id": town.shop_a, "planned_date": service.today().isoformat(), "inspector_id": ajs.id})
    assert created.status_code == 201, created.text
    task = created.json()
    assert (task["status"], task["inspector"], task["shop"]) == ("planned", "u_ajs", "甲街小吃店")

    url = f"/api/v1/shops/inspections/{task['id']}"
    # another department may not record; 安监所 may; the finding is required for rectify
    assert client.post(f"{url}/result", json={"result": "pass"}, headers=bearer(town, "fwb")).status_code == 403
    missing = client.post(f"{url}/result", json={"result": "rectify"}, headers=bearer(town, "ajs"))
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "findings"
    wrong = client.post(f"{url}/result", json={"result": "maybe"}, headers=bearer(town, "ajs"))
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "result"
    done = client.post(f"{url}/result", json={"result": "rectify", "findings": "灭火器过期"},
                       headers=bearer(town, "ajs"))
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["rectification"], done.json()["done_by"]) == (
        "done", "pending", "u_ajs")
    again = client.post(f"{url}/result", json={"result": "pass"}, headers=bearer(town, "ajs"))
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "status"

    fixed = client.post(f"{url}/rectification", json={"note": "已更换灭火器"}, headers=bearer(town, "grid"))
    assert fixed.status_code == 200 and fixed.json()["rectification"] == "done"
    assert fixed.json()["rectified_by"] == "u_grid"
    twice = client.post(f"{url}/rectification", json={}, headers=bearer(town, "grid"))
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "rectified_at"

    listed = client.get("/api/v1/shops/inspections", params={"status": "done"}, headers=auth).json()
    assert [i["id"] for i in listed["items"]] == [task["id"]]


BAD_INSPECTIONS = [
    ({"planned_date": "2030-01-01"}, "place_id"),
    ({"place_id": 0, "planned_date": "2030-01-01"}, "place_id"),
    ({"place_id": "SHOP", "planned_date": "2030-01-01"}, "place_id"),
    ({"place_id": "shop_a", "planned_date": "yesterday"}, "planned_date"),
    ({"place_id": "shop_a", "planned_date": "2001-01-01"}, "planned_date"),
    ({"place_id": "building", "planned_date": "2030-01-01"}, "place_id"),
    ({"place_id": "shop_a", "planned_date": "2030-01-01", "inspector_id": 999999}, "inspector_id"),
]


def test_bad_inspection_input_is_a_422_naming_the_field(client, town, auth):  # noqa: F811
    for body, culprit in BAD_INSPECTIONS:
        resolved = {k: (town.shop_a if v == "shop_a" else town.a.building.id if v == "building" else v)
                    for k, v in body.items()}
        response = client.post("/api/v1/shops/inspections", json=resolved, headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert culprit in [e["field"] for e in response.json()["errors"]], (body, response.text)


def test_who_may_plan_inspections(client, town, staff):  # noqa: F811
    body = {"place_id": town.shop_a, "planned_date": service.today().isoformat()}
    assert client.post("/api/v1/shops/inspections", json=body, headers=bearer(town, "committee")).status_code == 403
    assert client.post("/api/v1/shops/inspections", json=body, headers=bearer(town, "fwb")).status_code == 403
    assert client.post("/api/v1/shops/inspections", json=body, headers=bearer(town, "ajs")).status_code == 201


def test_pages_plan_record_and_register_with_forms(client: TestClient, session, town, admin):  # noqa: F811
    login(client)
    csrf = csrf_of(client, "/shops/inspections")
    bad = client.post("/shops/inspections", data={"csrf_token": csrf, "place_id": str(town.shop_a),
                                                   "planned_date": "2001-01-01"}, follow_redirects=False)
    assert bad.status_code == 422 and 'data-error="planned_date"' in bad.text
    ok = client.post("/shops/inspections", data={"csrf_token": csrf, "place_id": str(town.shop_a),
                                                  "planned_date": service.today().isoformat(),
                                                  "next": f"/shops/{town.shop_a}"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"].startswith(f"/shops/{town.shop_a}")
    [task] = session.scalars(select(Inspection)).all()
    page = client.get(f"/shops/{town.shop_a}")
    assert f'data-inspection="{task.id}"' in page.text and 'data-action="result"' in page.text

    no_findings = client.post(f"/shops/inspections/{task.id}/result",
                              data={"csrf_token": csrf, "result": "fail", "next": f"/shops/{town.shop_a}"},
                              follow_redirects=False)
    assert no_findings.status_code == 422 and "findings" in no_findings.text
    recorded = client.post(f"/shops/inspections/{task.id}/result",
                           data={"csrf_token": csrf, "result": "pass"}, follow_redirects=False)
    assert recorded.status_code == 303
    assert session.get(Inspection, task.id).result == "pass"

    saved = client.post(f"/shops/{town.shop_a}/registration",
                        data={"csrf_token": csrf, "registered_residence": "1", "risk_level": "high",
                              "notes": "店主夫妇居住，已备案"}, follow_redirects=False)
    assert saved.status_code == 303
    shop = session.scalar(select(Shop).where(Shop.place_id == town.shop_a))
    assert shop is not None and shop.registered_residence and shop.risk_level == "high"
    assert shop.updated_by == "admin1"
    wrong = client.post(f"/shops/{town.shop_a}/registration",
                        data={"csrf_token": csrf, "risk_level": "extreme"}, follow_redirects=False)
    assert wrong.status_code == 422 and "risk_level" in wrong.text
    listed = client.get("/shops", params={"registered": "yes"})
    assert "甲街小吃店" in listed.text and "乙街五金店" not in listed.text


def test_the_brain_tile_counts_what_needs_attention(session, town):
    alarms.raise_alarm(session=session, type="s05_live_in", source=f"p:{town.shop_b}", severity="MINOR",
                       title="乙街五金店 夜间有人滞留", place_id=town.shop_b, scenario="S05")
    service.create_inspection(session=session, place_id=town.shop_b, planned_date=service.today(), actor="t")
    tile = service.tile(session=session, lang="zh-CN")
    figures = dict(tile.figures)
    assert figures["商铺"] == "2" and figures["三合一告警"] == "1" and figures["待检查"] == "1"
    assert tile.alert and tile.link == "/shops"
    assert dict(service.tile(session=session, lang="en").figures)["Shops"] == "2"


def test_the_brain_tile_counts_its_own_subdistricts_inspections_only(session, town):
    from shequ.core.places.service import create_tenant
    from shequ.db import bind_context

    mine = session.info["tenant_id"]
    other = create_tenant(session=session, code="T05OTHER", name="另一街道", district="闵行区", city="上海市",
                          centre=(121.42, 31.02))
    bind_context(session, tenant_id=other.id, actor="test")
    tree = place_tree(session, tag="O", committee_name="丙居委会")
    shop = create_place(session=session, kind="shop", code="SPO", name="丙街小店", parent=tree.committee)
    for _ in range(3):
        service.create_inspection(session=session, place_id=shop.id, planned_date=service.today(), actor="t")
    bind_context(session, tenant_id=mine, actor="test")
    service.create_inspection(session=session, place_id=town.shop_a, planned_date=service.today(), actor="t")
    assert dict(service.tile(session=session, lang="zh-CN").figures)["待检查"] == "1"


def test_seed_demo_registers_shops_once(session, town):
    service.seed_demo(session=session)
    first = {s.place_id: (s.registered_residence, s.risk_level) for s in session.scalars(select(Shop))}
    assert set(first) == {town.shop_a, town.shop_b}
    assert first[town.shop_a][1] in ("medium", "high")  # catering
    inspections = len(session.scalars(select(Inspection)).all())
    service.seed_demo(session=session)
    assert {s.place_id: (s.registered_residence, s.risk_level) for s in session.scalars(select(Shop))} == first
    assert len(session.scalars(select(Inspection)).all()) == inspections
