"""Web test fixtures: the real app with its database session replaced by the test's own
(rolled back after the test), users made through the IAM service, an API token and a
logged-in browser client."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from shequ.web.app import create_app
from shequ.web.deps import get_session
from tests.factories import Tree, place_tree

PASSWORD = "jiangchuan2024"


@pytest.fixture
def app(session: Session) -> FastAPI:
    application = create_app()

    def _session() -> Iterator[Session]:
        yield session

    application.dependency_overrides[get_session] = _session
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def admin(session: Session) -> User:
    return iam.create_user(session=session, username="admin1", password=PASSWORD, role="admin",
                           display_name="王管理")


@pytest.fixture
def token(session: Session, admin: User) -> str:
    return iam.create_api_token(session=session, user=admin, name="test", days=1)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_of(client: TestClient, path: str = "/login") -> str:
    """The CSRF token a page hands out (cookie and hidden field carry the same value)."""
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, f"no csrf field on {path}"
    return match.group(1)


def login(client: TestClient, username: str = "admin1", password: str = PASSWORD) -> None:
    csrf = csrf_of(client)
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": csrf, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text


@pytest.fixture
def browser(client: TestClient, admin: User) -> TestClient:
    login(client)
    return client


@dataclass
class Registry:
    """A small registry across two committees: people, one tagged 党员, and their ID numbers."""

    north: Tree
    south: Tree
    people: dict[str, Person]
    id_numbers: dict[str, str]
    phones: dict[str, str]


PEOPLE = (
    # name, sex, birth, residence type, tree, room
    ("张建国", "M", dt.date(1938, 5, 1), "registered", "north", "room"),
    ("李秀英", "F", dt.date(1961, 2, 14), "registered", "north", "room"),
    ("王磊", "M", dt.date(1990, 8, 30), "resident", "north", "room2"),
    ("赵敏", "F", dt.date(1985, 11, 3), "resident", "south", "room"),
)


@pytest.fixture
def registry(session: Session) -> Registry:
    from shequ.core.registry.tags import add_tag, install_default_tags

    north = place_tree(session, tag="N", committee_name="北街居委会")
    south = place_tree(session, tag="S", lon=121.45, committee_name="南街居委会")
    install_default_tags(session=session)
    people, numbers, phones = {}, {}, {}
    for seq, (name, sex, birth, rtype, area, room) in enumerate(PEOPLE, start=1):
        tree = north if area == "north" else south
        number = make_id_number("310112", birth, 100 + seq)
        phone = f"1391234{seq:04d}"
        person = Person(name=name, sex=sex, birth_date=birth, residence_type=rtype,
                        id_number=number, phone=phone, place_id=getattr(tree, room).id)
        session.add(person)
        people[name], numbers[name], phones[name] = person, number, phone
    session.flush()
    add_tag(session=session, code="party_member", entity="person", entity_id=people["李秀英"].id,
            by="test")
    session.flush()
    return Registry(north, south, people, numbers, phones)
