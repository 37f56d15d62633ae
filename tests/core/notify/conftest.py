"""Fixtures of the notify tests: the listeners installed, and two areas with a user of every
role that notifications reach (A's staff, B's staff, departments, dispatchers, leaders)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.notify import listeners
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from tests.factories import Tree, place_tree

PASSWORD = "jiangchuan2024"
PHONE = "13912345678"


@pytest.fixture(autouse=True)
def _listeners() -> Iterator[None]:
    listeners.install()
    yield


@dataclass
class Staff:
    a: Tree
    b: Tree
    users: dict[str, User]

    def __getitem__(self, name: str) -> User:
        return self.users[name]


BINDINGS = {  # name: (role, scope builder)
    "grid_a": ("grid_worker", lambda a, b: {"grids": [a.grid.id]}),
    "grid_b": ("grid_worker", lambda a, b: {"grids": [b.grid.id]}),
    "committee_a": ("committee", lambda a, b: {"committees": [a.committee.id], "phone": PHONE}),
    "committee_b": ("committee", lambda a, b: {"committees": [b.committee.id]}),
    "property_a": ("property", lambda a, b: {"compounds": [a.compound.id]}),
    "property_b": ("property", lambda a, b: {"compounds": [b.compound.id]}),
    "dispatcher": ("dispatcher", lambda a, b: {"department": "城运中心"}),
    "leader": ("leader", lambda a, b: {}),
    "dept_build": ("department", lambda a, b: {"department": "城建中心"}),
    "dept_safety": ("department", lambda a, b: {"department": "安监所"}),
    "dept_service": ("department", lambda a, b: {"department": "社区服务办"}),
    "admin": ("admin", lambda a, b: {}),
}


def make_staff(session: Session) -> Staff:
    a = place_tree(session, tag="A", committee_name="甲居委会")
    b = place_tree(session, tag="B", lon=121.45, committee_name="乙居委会")
    users = {name: iam.create_user(session=session, username=name, password=PASSWORD, role=role,
                                   scope=scope(a, b))
             for name, (role, scope) in BINDINGS.items()}
    birth = dt.date(1970, 5, 1)
    person = Person(name="钱居民", sex="F", birth_date=birth, residence_type="registered",
                    id_number=make_id_number("310112", birth, 401), phone="13700001111", place_id=a.room.id)
    session.add(person)
    session.flush()
    users["resident"] = iam.create_user(session=session, username="resident", password=PASSWORD,
                                        role="resident", scope={"person_id": person.id})
    return Staff(a, b, users)


@pytest.fixture
def staff(session: Session) -> Staff:
    return make_staff(session)
