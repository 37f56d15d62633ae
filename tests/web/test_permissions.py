"""Permissions as data: an administrator edits what a role may do; tokens carry a subset."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from tests.web.conftest import PASSWORD, Registry


def test_admin_reads_and_edits_role_permissions(client: TestClient, session: Session, auth: dict,
                                                registry: Registry) -> None:
    leader = iam.create_user(session=session, username="lead1", password=PASSWORD, role="leader")
    lead_auth = {"Authorization": f"Bearer {iam.create_api_token(session=session, user=leader)}"}
    person = registry.people["张建国"]
    url = f"/api/v1/people/{person.id}/unmask"
    body = {"field": "phone", "purpose": "核对"}
    assert client.post(url, json=body, headers=lead_auth).status_code == 200

    got = client.get("/api/v1/roles/leader/permissions", headers=auth).json()
    assert iam.UNMASK in got["permissions"] and got["role_label"] == "街道领导"
    # reading stays, unmasking goes: two separate permissions
    put = client.put("/api/v1/roles/leader/permissions", headers=auth,
                     json={"permissions": [iam.READ, iam.EXPORT]})
    assert put.status_code == 200 and put.json()["permissions"] == [iam.EXPORT, iam.READ]
    assert client.post(url, json=body, headers=lead_auth).status_code == 403
    assert client.get(f"/api/v1/people/{person.id}", headers=lead_auth).status_code == 200

    bad = client.put("/api/v1/roles/leader/permissions", headers=auth, json={"permissions": ["fly"]})
    assert bad.status_code == 422 and "fly" in bad.text
    assert client.get("/api/v1/roles/king/permissions", headers=auth).status_code == 404
    # only users.manage may edit
    assert client.put("/api/v1/roles/leader/permissions", headers=lead_auth,
                      json={"permissions": []}).status_code == 403


def test_a_token_can_do_only_its_subset(client: TestClient, session: Session, admin: User,
                                        registry: Registry) -> None:
    read_only = iam.create_api_token(session=session, user=admin, permissions=[iam.READ])
    headers = {"Authorization": f"Bearer {read_only}"}
    assert client.get("/api/v1/people", headers=headers).status_code == 200
    assert client.get("/api/v1/people/export.xlsx", headers=headers).status_code == 403
    person = registry.people["张建国"]
    assert client.post(f"/api/v1/people/{person.id}/unmask", headers=headers,
                       json={"field": "phone", "purpose": "核对"}).status_code == 403
    # a token cannot grant what the role lacks: role ∩ token
    grid = iam.create_user(session=session, username="g2", password=PASSWORD, role="grid_worker",
                           scope={"grids": [registry.north.grid.id]})
    wide = iam.create_api_token(session=session, user=grid, permissions=[iam.READ, iam.UNMASK])
    assert client.post(f"/api/v1/people/{person.id}/unmask", json={"field": "phone", "purpose": "核对"},
                       headers={"Authorization": f"Bearer {wide}"}).status_code == 403


def test_committee_user_sees_only_their_committee(client: TestClient, session: Session,
                                                  registry: Registry) -> None:
    user = iam.create_user(session=session, username="cm9", password=PASSWORD, role="committee",
                           scope={"committees": [registry.north.committee.id]})
    headers = {"Authorization": f"Bearer {iam.create_api_token(session=session, user=user)}"}
    names = {p["name"] for p in client.get("/api/v1/people", headers=headers).json()["items"]}
    assert names == {"张建国", "李秀英", "王磊"}
    south = registry.people["赵敏"]
    assert client.get(f"/api/v1/people/{south.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/people/{south.id}/profile", headers=headers).status_code == 404
