"""The API under /api/v1 as a client sees it: auth, filters, paging, tenancy, masking, import,
export, tags, places and unmasking."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.models import AuditLog
from shequ.core.places.service import create_tenant
from shequ.core.registry.models import Person
from shequ.db import bind_context
from tests.web.conftest import PASSWORD, Registry


def names(body: dict) -> list[str]:
    return [item["name"] for item in body["items"]]


def test_health_needs_no_auth(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "db": "ok", "version": "0.1.0"}


@pytest.mark.parametrize("path", ["/api/v1/people", "/api/v1/houses/1", "/api/v1/tags",
                                  "/api/v1/quality", "/api/v1/places/1/children", "/api/v1/me",
                                  "/api/v1/people/export.xlsx"])
def test_auth_required(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.get(path, headers={"Authorization": "Bearer shq_not-a-token"}).status_code == 401


def test_token_from_form_or_json(client: TestClient, admin: object) -> None:
    by_form = client.post("/api/v1/auth/token", data={"username": "admin1", "password": PASSWORD})
    by_json = client.post("/api/v1/auth/token", json={"username": "admin1", "password": PASSWORD})
    for response in (by_form, by_json):
        assert response.status_code == 200
        token = response.json()["access_token"]
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["username"] == "admin1" and me.json()["role_label"] == "系统管理员"


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient, session: Session,
                                                       admin: object) -> None:
    wrong = client.post("/api/v1/auth/token", json={"username": "admin1", "password": "nope-123456"})
    nobody = client.post("/api/v1/auth/token", json={"username": "ghost", "password": "nope-123456"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()
    assert len(session.scalars(select(AuditLog).where(AuditLog.action == "login_failed")).all()) == 2
    missing = client.post("/api/v1/auth/token", json={"username": "admin1"})
    assert missing.status_code == 422 and "password" in missing.text


def test_lockout_after_five_failures(client: TestClient, admin: object) -> None:
    for _ in range(5):
        client.post("/api/v1/auth/token", json={"username": "admin1", "password": "bad-guess-1"})
    locked = client.post("/api/v1/auth/token", json={"username": "admin1", "password": PASSWORD})
    assert locked.status_code == 401


def test_list_filters(client: TestClient, auth: dict, registry: Registry) -> None:
    everyone = client.get("/api/v1/people", headers=auth).json()
    assert everyone["total"] == 4
    north = client.get(f"/api/v1/people?place={registry.north.committee.id}", headers=auth).json()
    assert sorted(names(north)) == sorted(["张建国", "李秀英", "王磊"])
    room = client.get(f"/api/v1/people?place={registry.north.room2.id}", headers=auth).json()
    assert names(room) == ["王磊"]
    party = client.get("/api/v1/people?tag=party_member", headers=auth).json()
    assert names(party) == ["李秀英"]
    by_number = client.get(f"/api/v1/people?q={registry.id_numbers['赵敏']}", headers=auth).json()
    assert names(by_number) == ["赵敏"]
    by_phone = client.get(f"/api/v1/people?q={registry.phones['王磊']}", headers=auth).json()
    assert names(by_phone) == ["王磊"]
    by_name = client.get("/api/v1/people?q=秀", headers=auth).json()
    assert names(by_name) == ["李秀英"]
    women = client.get("/api/v1/people?sex=F", headers=auth).json()
    assert sorted(names(women)) == ["李秀英", "赵敏"]
    both = client.get(f"/api/v1/people?sex=F&residence_type=resident&place={registry.south.grid.id}",
                      headers=auth).json()
    assert names(both) == ["赵敏"]
    labels = women["items"][0]["labels"]
    assert labels["sex"] == "女" and labels["committee"] in ("北街居委会", "南街居委会")


@pytest.mark.parametrize("query, field", [
    ("sex=X", "sex"), ("sort=id_number", "sort"), ("size=100000", "size"), ("page=0", "page"),
    ("place=999999", "place"), ("page=abc", "page"),
])
def test_bad_parameters_are_named(client: TestClient, auth: dict, registry: Registry,
                                  query: str, field: str) -> None:
    response = client.get(f"/api/v1/people?{query}", headers=auth)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


def test_pagination_and_sort(client: TestClient, auth: dict, registry: Registry) -> None:
    first = client.get("/api/v1/people?sort=-birth_date&size=3", headers=auth).json()
    assert names(first) == ["王磊", "赵敏", "李秀英"]
    assert first["total"] == 4 and first["size"] == 3 and first["page"] == 1
    second = client.get("/api/v1/people?sort=-birth_date&size=3&page=2", headers=auth).json()
    assert names(second) == ["张建国"]
    oldest_first = client.get("/api/v1/people?sort=birth_date&size=1", headers=auth).json()
    assert names(oldest_first) == ["张建国"]


def test_records_of_another_tenant_are_not_found(client: TestClient, auth: dict, session: Session,
                                                 registry: Registry) -> None:
    mine = session.info["tenant_id"]
    other = create_tenant(session=session, code="T-other-api", name="别的街道")
    bind_context(session, tenant_id=other.id, actor="test")
    stranger = Person(name="外人甲", residence_type="registered")
    session.add(stranger)
    session.flush()
    bind_context(session, tenant_id=mine, actor="test")
    assert client.get(f"/api/v1/people/{stranger.id}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/people/{stranger.id}/profile", headers=auth).status_code == 404
    assert "外人甲" not in client.get("/api/v1/people?size=500", headers=auth).text
    own = registry.people["赵敏"].id
    assert client.get(f"/api/v1/people/{own}", headers=auth).json()["name"] == "赵敏"


def test_personal_data_masked_everywhere(client: TestClient, auth: dict, registry: Registry) -> None:
    person = registry.people["张建国"]
    number, phone = registry.id_numbers["张建国"], registry.phones["张建国"]
    bodies = [
        client.get("/api/v1/people?size=500", headers=auth),
        client.get(f"/api/v1/people?q={number}", headers=auth),
        client.get(f"/api/v1/people/{person.id}", headers=auth),
        client.get(f"/api/v1/people/{person.id}/profile", headers=auth),
    ]
    for response in bodies:
        assert response.status_code == 200, response.text
        for plain in list(registry.id_numbers.values()) + list(registry.phones.values()):
            assert plain not in response.text
    detail = bodies[2].json()
    assert detail["id_number"] == number[:4] + "*" * 10 + number[-4:]
    assert detail["phone"] == phone[:3] + "****" + phone[-4:]


def test_unmask_is_audited_and_needs_purpose(client: TestClient, auth: dict, session: Session,
                                             registry: Registry) -> None:
    person = registry.people["李秀英"]
    url = f"/api/v1/people/{person.id}/unmask"
    empty = client.post(url, json={"field": "id_number", "purpose": "   "}, headers=auth)
    assert empty.status_code == 422 and "purpose" in [e["field"] for e in empty.json()["errors"]]
    shown = client.post(url, json={"field": "id_number", "purpose": "核对低保"}, headers=auth)
    assert shown.json() == {"field": "id_number", "value": registry.id_numbers["李秀英"]}
    rows = session.scalars(select(AuditLog).where(AuditLog.action == "unmask")).all()
    assert [(r.actor, r.purpose, r.target) for r in rows] == [("admin1", "核对低保", f"person:{person.id}")]
    grid = iam.create_user(session=session, username="grid9", password=PASSWORD, role="grid_worker",
                           scope={"grids": [registry.north.grid.id]})
    grid_token = iam.create_api_token(session=session, user=grid, days=1)
    refused = client.post(url, json={"field": "phone", "purpose": "回访"},
                          headers={"Authorization": f"Bearer {grid_token}"})
    assert refused.status_code == 403


def test_tags_tree_with_counts(client: TestClient, auth: dict, registry: Registry) -> None:
    items = client.get("/api/v1/tags?applies_to=person", headers=auth).json()["items"]
    flat = {}

    def walk(nodes: list[dict]) -> None:
        for node in nodes:
            flat[node["code"]] = node
            walk(node["children"])

    walk(items)
    assert flat["party_member"]["count"] == 1
    assert flat["political_status"]["count"] >= 1  # the parent counts what is beneath it
    assert client.get("/api/v1/tags?applies_to=spaceship", headers=auth).status_code == 422


def test_places_children_and_locate(client: TestClient, auth: dict, registry: Registry) -> None:
    tree = registry.north
    children = client.get(f"/api/v1/places/{tree.committee.id}/children", headers=auth).json()
    assert [c["name"] for c in children["items"]] == ["鹤庆新村"]
    found = client.get("/api/v1/places/locate?lon=121.4025&lat=31.0025", headers=auth).json()
    assert found["committee"]["name"] == "北街居委会" and found["compound"]["name"] == "鹤庆新村"
    assert found["grid"]["id"] == tree.grid.id
    nowhere = client.get("/api/v1/places/locate?lon=100&lat=20", headers=auth).json()
    assert nowhere == {"grid": None, "committee": None, "compound": None}
    assert client.get("/api/v1/places/locate?lon=500&lat=20", headers=auth).status_code == 422


def test_export_xlsx_follows_filters(client: TestClient, auth: dict, registry: Registry) -> None:
    response = client.get(f"/api/v1/people/export.xlsx?place={registry.north.committee.id}&sort=name",
                          headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    header = rows[0]
    assert "姓名" in header and "身份证号" in header
    body = [r for r in rows[1:] if any(r)]
    name_col, id_col = header.index("姓名"), header.index("身份证号")
    assert sorted(r[name_col] for r in body) == sorted(["张建国", "李秀英", "王磊"])
    assert all("*" in r[id_col] for r in body)
    assert registry.id_numbers["张建国"] not in str(rows)


def test_import_reports_row_and_column(client: TestClient, auth: dict, registry: Registry) -> None:
    csv = ("姓名,身份证号,性别\n"
           "钱多多,310112199001011234,男\n"
           "孙二娘,110101199003077777,女\n").encode()
    response = client.post("/api/v1/imports/person", headers=auth,
                           files={"file": ("people.csv", csv, "text/csv")}, data={"source": "测试"})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors and all({"row", "column", "value", "reason"} <= set(e) for e in errors)
    bad = [e for e in errors if e["column"] == "身份证号"]
    assert bad and {e["row"] for e in bad} <= {2, 3}
    assert "钱多多" not in client.get("/api/v1/people?q=钱多多", headers=auth).text


def test_openapi_is_served_and_no_cdn_docs(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/people" in spec["paths"] and "/api/v1/people/{record_id}" in spec["paths"]
    params = {p["name"] for p in spec["paths"]["/api/v1/people"]["get"]["parameters"]}
    assert {"place", "tag", "q", "sort", "page", "size", "sex", "residence_type"} <= params
    assert client.get("/api/v1/docs").status_code == 404


def test_quality_report_per_kind_and_committee(client: TestClient, auth: dict, session: Session,
                                               registry: Registry) -> None:
    session.add(Person(name="无址者", residence_type="registered"))
    session.flush()
    kinds = {k["kind"]: k for k in client.get("/api/v1/quality", headers=auth).json()["kinds"]}
    people = {r["committee"]: r for r in kinds["person"]["rows"]}
    assert people["北街居委会"]["total"] == 3 and people["南街居委会"]["total"] == 1
    assert people["未落地"]["missing"]["place"] == 1 and people["未落地"]["committee_id"] == 0
    assert kinds["person"]["total"]["total"] == 5
