"""One deployment, several subdistricts: each signed-in user works in their own tenant only."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete

from shequ.core.iam import service as iam
from shequ.core.places.models import Tenant
from shequ.core.places.service import create_tenant
from shequ.core.registry.models import Person
from shequ.db import session_scope
from shequ.web.app import create_app

PASSWORD = "jiangchuan2024"


@dataclass
class Deployment:
    codes: tuple[str, str]
    tokens: tuple[str, str]


@pytest.fixture
def deployment(engine: Engine) -> Iterator[Deployment]:
    """Two committed tenants, each with a user called "admin" and one person."""
    codes = (f"A{uuid.uuid4().hex[:7]}", f"B{uuid.uuid4().hex[:7]}")
    ids, tokens = [], []
    for code, name, person in zip(codes, ("江川路街道", "古美路街道"), ("江川居民", "古美居民"), strict=True):
        with session_scope(engine=engine) as s:
            tid = create_tenant(session=s, code=code, name=name).id
        with session_scope(tenant_id=tid, actor="test", engine=engine) as s:
            user = iam.create_user(session=s, username="admin", password=PASSWORD, role="admin")
            s.add(Person(name=person))
            tokens.append(iam.create_api_token(session=s, user=user, name="t", days=1))
        ids.append(tid)
    yield Deployment(codes=codes, tokens=(tokens[0], tokens[1]))
    with engine.begin() as conn:
        conn.execute(delete(Tenant).where(Tenant.id.in_(ids)))


def test_each_token_sees_only_its_own_subdistrict(deployment: Deployment) -> None:
    # The deployment's default tenant is the first; the second user's token still works in B.
    with TestClient(create_app(tenant_code=deployment.codes[0])) as client:
        for token, expected in zip(deployment.tokens, ("江川居民", "古美居民"), strict=True):
            body = client.get("/api/v1/people", headers={"Authorization": f"Bearer {token}"}).json()
            assert [p["name"] for p in body["items"]] == [expected]


def test_the_login_page_offers_the_subdistricts_and_signs_in_to_the_chosen_one(
        deployment: Deployment) -> None:
    with TestClient(create_app(tenant_code=deployment.codes[0])) as client:
        page = client.get("/login")
        assert "古美路街道" in page.text and "江川路街道" in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        done = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf,
                                           "tenant": deployment.codes[1], "next": "/registry/people"})
        assert done.status_code == 200 and "古美居民" in done.text and "江川居民" not in done.text
        wrong = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                            "csrf_token": csrf, "tenant": "nowhere"})
        assert wrong.status_code == 400 and "没有这个街道" in wrong.text
