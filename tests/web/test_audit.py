"""The audit log on the web: writes through the API carry the actor and client address; the
search API and page need ``audit.read``; no route can change or delete an audit row."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.models import AuditLog
from tests.web.conftest import PASSWORD, Registry, login


def _token(session: Session, username: str, role: str, **scope: list[int]) -> dict[str, str]:
    user = iam.create_user(session=session, username=username, password=PASSWORD, role=role, scope=scope)
    return {"Authorization": f"Bearer {iam.create_api_token(session=session, user=user, days=1)}"}


def test_a_write_through_the_api_names_the_user_and_the_client_address(
        client: TestClient, auth: dict, registry: Registry) -> None:
    csv = "姓名,身份证号,性别\n钱多多,310112199001011233,男\n".encode()
    done = client.post("/api/v1/imports/person", headers=auth,
                       files={"file": ("people.csv", csv, "text/csv")}, data={"source": "测试"})
    assert done.status_code == 200, done.text
    found = client.get("/api/v1/audit", headers=auth, params={"target": "person", "action": "create"})
    assert found.status_code == 200
    rows = [r for r in found.json()["items"] if r["detail"]["entity"] == "person"]
    # the registry fixture wrote four people outside any request; the import one, over HTTP
    assert [(r["actor"], r["ip"], r["detail"]["count"]) for r in rows] == [
        ("admin1", "testclient", 1), ("test", "", 4)]
    imported = client.get("/api/v1/audit", headers=auth, params={"action": "import"}).json()["items"]
    assert [r["ip"] for r in imported] == ["testclient"]


def test_the_search_api_filters_pages_and_refuses_bad_times(client: TestClient, session: Session,
                                                             auth: dict) -> None:
    t0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    session.execute(insert(AuditLog), [
        {"tenant_id": session.info["tenant_id"], "actor": "li", "action": "unmask",
         "target": f"person:{n}", "purpose": "上门核实", "ip": "10.0.0.9", "at": t0 + dt.timedelta(minutes=n),
         "detail": {"field": "phone"}} for n in range(5)])
    body = client.get("/api/v1/audit", headers=auth,
                      params={"actor": "li", "size": 2, "page": 2, "from": "2024-05-01T08:00:00+08:00"}).json()
    assert (body["total"], body["pages"], body["page"]) == (5, 3, 2)
    assert [r["target"] for r in body["items"]] == ["person:2", "person:1"]
    assert body["items"][0]["purpose"] == "上门核实"
    naive = client.get("/api/v1/audit", headers=auth, params={"from": "2024-05-01T08:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "from"
    assert client.get("/api/v1/audit", headers=auth, params={"page": 0}).status_code == 422


def test_only_roles_with_audit_read_may_search(client: TestClient, session: Session,
                                              registry: Registry) -> None:
    leader = _token(session, "leader1", "leader")
    grid = _token(session, "grid1", "grid_worker", grids=[registry.north.grid.id])
    assert client.get("/api/v1/audit", headers=leader).status_code == 200
    assert client.get("/api/v1/audit", headers=grid).status_code == 403
    assert client.get("/api/v1/audit").status_code == 401


def test_the_page_shows_beijing_time_and_is_linked_for_those_who_may(
        client: TestClient, session: Session, admin: object, registry: Registry) -> None:
    session.execute(insert(AuditLog), [{"tenant_id": session.info["tenant_id"], "actor": "li",
                                        "action": "unmask", "target": "person:7", "purpose": "核实低保",
                                        "ip": "10.1.1.1", "detail": {},
                                        "at": dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)}])
    login(client)
    assert 'href="/audit"' in client.get("/").text
    page = client.get("/audit", params={"actor": "li"})
    assert page.status_code == 200
    assert "2024-05-01 08:30:00" in page.text and "核实低保" in page.text and "10.1.1.1" in page.text
    local = client.get("/audit", params={"from": "2024-05-01T08:31", "actor": "li"})
    assert "核实低保" not in local.text  # a time typed on the page is Beijing time
    bad = client.get("/audit", params={"from": "yesterday"})
    assert bad.status_code == 200 and "时间格式" in bad.text

    iam.create_user(session=session, username="grid2", password=PASSWORD, role="grid_worker",
                    scope={"grids": [registry.north.grid.id]})
    client.cookies.clear()
    login(client, "grid2")
    assert 'href="/audit"' not in client.get("/").text
    assert client.get("/audit").status_code == 403


def test_no_route_changes_or_deletes_the_audit_log(client: TestClient, auth: dict) -> None:
    from shequ.core.iam import audit_routes

    spec = client.get("/api/v1/openapi.json").json()
    audit_ops = {method for path, ops in spec["paths"].items() if "audit" in path for method in ops}
    assert audit_ops == {"get"}
    routes = [*audit_routes.api.routes, *audit_routes.pages.routes]
    assert routes and all(getattr(r, "methods", set()) <= {"GET", "HEAD"} for r in routes)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.request(method, "/api/v1/audit", headers=auth).status_code == 405
