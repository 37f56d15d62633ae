"""The authorisation matrix: every route of the app (read from ``app.routes``, so a new route
is covered without anyone remembering) × every role.

A committed tenant holds two committees in different grids: 甲 (A) and 乙区 (B), each with
people, a household, a house, an organisation, a facility, a situation and a device, tagged;
every name of B contains the marker 乙区. Users of every role are bound to A (or to nothing).
Each route is called with the ids of B's records; the test asserts that

- no call answers 5xx;
- a user scoped to A never receives B's marker in any body (JSON, HTML or an XLSX's cells);
- a user scoped to A who may read the registry gets 404 for B's ids on detail routes;
- whole-tenant roles do see B.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from shequ.core.iam import service as iam
from shequ.core.iot.models import Device
from shequ.core.places.models import Place, Tenant
from shequ.core.registry.kinds import KINDS
from shequ.core.registry.models import (
    Facility,
    House,
    Household,
    Organisation,
    Person,
    Situation,
)
from shequ.core.registry.validators import make_id_number
from shequ.web.app import create_app
from shequ.web.records import BY_PLURAL, PLURALS
from tests.factories import Tree, place_tree
from tests.web.conftest import PASSWORD, login

pytestmark = pytest.mark.slow  # every route × every role: minutes; in make test and CI, not test-fast

MARKER = "乙区"
API = "/api/v1"
WHOLE_TENANT = ("admin", "leader", "dispatcher", "department")
SCOPED_TO_A = ("committee", "grid_worker", "property", "resident", "device", "api_client")
READERS = {"admin", "leader", "dispatcher", "department", "committee", "grid_worker", "property",
           "api_client"}


@dataclass
class Area:
    tree: Tree
    ids: dict[str, int] = field(default_factory=dict)  # kind -> id of one record of that kind


@dataclass
class World:
    tenant_code: str
    a: Area
    b: Area


def _records(session: Any, tree: Tree, label: str, seq: int) -> dict[str, int]:
    """One record of each kind in a tree, every name carrying the area's label."""
    birth = dt.date(1960 + seq, 3, 1)
    house = House(place_id=tree.room.id, use="rented", owner_name=f"{label}业主")
    session.add(house)
    session.flush()
    household = Household(number=f"{label}户{seq}", place_id=tree.room.id, house_id=house.id)
    session.add(household)
    session.flush()
    person = Person(name=f"{label}居民{seq}", sex="F", birth_date=birth, residence_type="registered",
                    id_number=make_id_number("310112", birth, 300 + seq), phone=f"1390000{seq:04d}",
                    place_id=tree.room.id, household_id=household.id, relation="head")
    org = Organisation(kind="enterprise", name=f"{label}公司", place_id=tree.building.id,
                       contact_phone=f"1370000{seq:04d}")
    facility = Facility(kind="charging_station", code=f"F{seq}", name=f"{label}充电站",
                        place_id=tree.compound.id)
    situation = Situation(source="hotline_12345", category="噪音", title=f"{label}噪音投诉",
                          content=f"{label}楼下施工", place_id=tree.building.id,
                          contact_phone=f"1360000{seq:04d}")
    device = Device(code=f"D{seq}", name=f"{label}摄像头", type_code="camera", place_id=tree.compound.id)
    session.add_all([person, org, facility, situation, device])
    session.flush()
    household.head_person_id = person.id
    session.flush()
    from shequ.core.cases import service as cases

    case = cases.open_case(session=session, title=f"{label}井盖缺失", class_code="C0101", source="patrol",
                           actor="matrix", place_id=tree.building.id, description=f"{label}楼下井盖",
                           reporter_name=f"{label}居民{seq}", dispatch=True)
    return {"person": person.id, "household": household.id, "house": house.id,
            "organisation": org.id, "facility": facility.id, "situation": situation.id,
            "device": device.id, "place": tree.building.id, "case": case.id}


def _alarm_records(session: Any, tree: Tree, label: str, seq: int) -> dict[str, int]:
    """A rule (of the whole tenant: its name carries no label) and an alarm of it in the tree."""
    from shequ.core.alarms import service as alarms
    from shequ.core.rules import service as rules

    rule = rules.save_rule(session=session, actor="matrix", body={
        "code": f"matrix_{seq}", "name": f"矩阵规则{seq}", "kind": "threshold",
        "target": {"device_types": ["smoke_detector"]}, "spec": {"field": "smoke", "op": "==", "value": True}})
    alarm, _ = alarms.raise_alarm(session=session, type="smoke", source=f"p:{tree.room.id}", severity="CRITICAL",
                                  title=f"{label}烟感告警", place_id=tree.room.id, rule_id=rule.id,
                                  rule_version=rule.version, actor="matrix")
    return {"alarm": alarm.id, "rule": rule.id}


def _build(engine: Engine) -> tuple[World, int]:
    from shequ.core.places.service import create_tenant
    from shequ.core.registry.tags import add_tag, install_default_tags
    from shequ.db import session_scope

    code = f"M{uuid.uuid4().hex[:8]}"
    with session_scope(engine=engine) as session:
        tenant_id = create_tenant(session=session, code=code, name="矩阵街道").id
    with session_scope(tenant_id=tenant_id, actor="matrix", engine=engine) as session:
        install_default_tags(session=session)
        a = Area(place_tree(session, tag="A", committee_name="甲居委会"))
        b = Area(place_tree(session, tag="B", lon=121.45, committee_name=f"{MARKER}居委会"))
        for place in session.scalars(select(Place).where(Place.grid_id == b.tree.grid.id)):
            place.name = f"{MARKER}{place.name}"
        b.tree.grid.name = f"{MARKER}网格"
        session.flush()
        a.ids = _records(session, a.tree, "甲", 1)
        b.ids = _records(session, b.tree, MARKER, 2)
        for area, label, seq in ((a, "甲", 1), (b, MARKER, 2)):
            area.ids.update(_alarm_records(session, area.tree, label, seq))
        for area in (a, b):
            add_tag(session=session, code="party_member", entity="person", entity_id=area.ids["person"],
                    by="matrix")
        bindings: dict[str, dict[str, Any]] = {
            "admin": {}, "leader": {}, "dispatcher": {"department": "城运中心"},
            "department": {"department": "社区服务办"},
            "committee": {"committees": [a.tree.committee.id]},
            "grid_worker": {"grids": [a.tree.grid.id]},
            "property": {"compounds": [a.tree.compound.id]},
            "resident": {"person_id": a.ids["person"]},
            "device": {"device_id": a.ids["device"]},
            "api_client": {},
        }
        for role, scope in bindings.items():
            iam.create_user(session=session, username=f"u_{role}", password=PASSWORD, role=role,
                            scope=scope)
    return World(code, a, b), tenant_id


@pytest.fixture(scope="module")
def world(engine: Engine) -> Iterator[World]:
    from shequ.db import session_scope

    built, tenant_id = _build(engine)
    yield built
    with session_scope(engine=engine) as session:
        session.execute(delete(Tenant).where(Tenant.id == tenant_id))


@dataclass
class Caller:
    role: str
    client: TestClient
    token: str
    csrf: str


@pytest.fixture(scope="module")
def callers(world: World, engine: Engine) -> Iterator[dict[str, Caller]]:
    from shequ.core.iam.models import User
    from shequ.db import session_scope

    app = create_app(tenant_code=world.tenant_code)
    out: dict[str, Caller] = {}
    tenant_id = None
    with session_scope(engine=engine) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.code == world.tenant_code))
    with session_scope(tenant_id=tenant_id, engine=engine) as session:
        for user in session.scalars(select(User)):
            role = user.role
            out[role] = Caller(role, TestClient(app, raise_server_exceptions=False), iam.create_api_token(session=session, user=user,
                                                                           days=1), "")
    for caller in out.values():
        login(caller.client, f"u_{caller.role}")
        caller.csrf = _csrf(caller.client)
    yield out
    for caller in out.values():
        caller.client.close()


def _csrf(client: TestClient) -> str:
    # the CSRF cookie is set on the first page; any page with a form shows the token
    page = client.get("/login", follow_redirects=False)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if match:
        return match.group(1)
    return client.cookies.get("shequ_csrf") or ""


# --- the routes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    route: str  # the template, e.g. /registry/{plural}/{record_id:int}
    path: str
    kind: str | None  # the kind of record the path names, when it names one
    names_b: bool  # the path carries an id of one of B's records
    query: tuple[tuple[str, str], ...] = ()


def routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, static files aside."""
    app = create_app()
    out = []
    for ctx in iter_route_contexts(app.routes):
        path = getattr(ctx, "path", None)
        methods = getattr(ctx, "methods", None) or set()
        if path is None or path.startswith("/static"):
            continue
        for method in sorted(methods - {"HEAD"}):
            out.append((method, path))
    return out


PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _kind_of(path: str) -> str | None:
    parts = path.split("/")
    for part in parts:
        if part in BY_PLURAL:
            return BY_PLURAL[part]
    return None


def expand(world: World, method: str, template: str) -> list[Call]:
    """Concrete calls of one route: its path parameters filled with B's ids."""
    names = PARAM.findall(template)
    b = world.b
    choices: list[dict[str, str]] = [{}]
    if "plural" in names:
        choices = [{"plural": p} for p in PLURALS.values()]
    calls = []
    for choice in choices:
        values = dict(choice)
        kind = BY_PLURAL.get(values.get("plural", "")) or _kind_of(template)
        names_b = False
        for name in names:
            if name == "plural":
                continue
            if name == "record_id":
                assert kind, template
                values[name] = str(b.ids[kind])
                names_b = True
            elif name == "place_id":
                values[name] = str(b.tree.committee.id)
                names_b = True
            elif name == "kind":
                values[name] = "person"
            elif name == "what":
                values[name] = "conflicts"
            elif name == "type_code":
                values[name] = "smoke_detector"
            elif name in ("command_id", "letter_id", "notification_id", "webhook_id", "routing_rule_id", "notice_id"):
                values[name] = "1"
            elif name == "facility_id":  # S03: a charging site (B's facility is a charging station)
                values[name], names_b = str(b.ids["facility"]), True
            elif name == "detection_id":  # S02: a detection (none in the matrix world: 404 for all)
                values[name] = "1"
            elif name in ("device_id", "device"):  # S02, S09: B's device (no elevator camera, no noise monitor: 404)
                values[name], names_b = str(b.ids["device"]), True
            elif name == "case_id":
                values[name] = str(b.ids["case"])
                names_b = True
            elif name == "building_id":  # S04 heat map: B's building
                values[name], names_b = str(b.tree.building.id), True
            elif name == "incident_id":  # S04 (none in the matrix world: 404 for all)
                values[name] = "999999"
            elif name == "attachment_id":
                values[name] = "1"
            elif name == "action":
                values[name] = "comment"
            elif name in ("plan_id", "contact_id"):  # S11 (none in the matrix world: 404 for all)
                values[name] = "999999"
            elif name == "alarm_id":
                values[name] = str(b.ids["alarm"])
                names_b = True
            elif name in ("inspection_id", "shop_id"):  # S05 (none in the matrix world: 404 for all)
                values[name] = "1"
            elif name == "rule_id":
                values[name] = str(b.ids["rule"])
            elif name == "role":
                values[name] = "committee"
            elif name in ("service_code", "class_code"):  # Open311; the case class catalog
                values[name] = "E0503"
            elif name == "service_request_id":  # Open311: only public cases; B's case is not
                values[name] = "20260101-000001"
            elif name == "token":  # Open311
                values[name] = "0" * 24
            else:
                raise AssertionError(f"{template}: the matrix test has no value for path parameter "
                                     f"{{{name}}} — add one in expand()")
        path = PARAM.sub(lambda m, v=values: v[m.group(1)], template)
        queries: list[tuple[tuple[str, str], ...]] = [()]
        if method == "GET":
            if path.endswith("/locate"):
                queries = [(("lon", "121.45"), ("lat", "31.0"))]
            elif path == "/places/picker":
                queries = [(("pick", str(b.tree.building.id)),)]
            elif path.startswith("/quality/"):
                queries = [(), (("committee", str(b.tree.committee.id)),)]
            elif not names_b and kind is not None and not path.endswith(".xlsx"):
                queries = [(), (("q", "乙"),), (("place", str(b.tree.committee.id)),)]
            elif path.endswith("export.xlsx"):
                queries = [(), (("q", "乙"),)]
        for query in queries:
            calls.append(Call(method, template, path, kind, names_b, query))
    return calls


def _pii_field(kind: str | None) -> str:
    if kind is None:
        return ""
    pii = [c.key for c in KINDS[kind].columns if c.pii]
    return pii[0] if pii else ""


def call(caller: Caller, c: Call) -> tuple[int, str]:
    """Make one call as the caller; the status and the body as text (XLSX cells included)."""
    client = caller.client
    api = c.path.startswith(API)
    headers = {"Authorization": f"Bearer {caller.token}"} if api else {}
    if c.method == "GET":
        response = client.get(c.path, params=list(c.query), headers=headers, follow_redirects=False)
    elif c.route.endswith("/unmask"):
        body = {"field": _pii_field(c.kind) or "name", "purpose": "矩阵测试"}
        if api:
            response = client.post(c.path, json=body, headers=headers)
        else:
            response = client.post(c.path, data={**body, "csrf_token": caller.csrf},
                                   follow_redirects=False)
    elif c.route.endswith("/permissions") and c.method == "PUT":
        response = client.put(c.path, json={"permissions": sorted(iam.PERMISSIONS["committee"])},
                              headers=headers)
    elif c.route == f"{API}/auth/token":
        response = client.post(c.path, json={"username": "nobody", "password": "x"})
    elif c.route.startswith(f"{API}/imports/"):
        response = client.post(c.path, files={"file": ("x.csv", b"", "text/csv")}, headers=headers)
    elif c.route == "/import":
        response = client.post(c.path, data={"kind": "person", "csrf_token": caller.csrf},
                               files={"file": ("x.csv", b"", "text/csv")}, follow_redirects=False)
    elif c.route == "/login":
        response = client.post(c.path, data={"username": "nobody", "password": "x",
                                             "csrf_token": caller.csrf}, follow_redirects=False)
    else:
        data = {"csrf_token": caller.csrf}
        response = (client.post(c.path, data=data, headers=headers, follow_redirects=False)
                    if c.method == "POST" else
                    client.request(c.method, c.path, json={}, headers=headers, follow_redirects=False))
    return response.status_code, _text(response)


def _text(response: Any) -> str:
    content_type = response.headers.get("content-type", "")
    if "spreadsheetml" in content_type:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(response.content), read_only=True)
        return "\n".join(str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True)
                         for v in row if v is not None)
    return response.text


# --- the test ----------------------------------------------------------------------------

SKIPPED = {("POST", "/logout")}  # would end the caller's session; called once at the end


def test_route_list_is_not_trivial() -> None:
    """The walk below is generated from the app; it must not silently walk nothing."""
    found = routes()
    assert len(found) > 40, found
    paths = {p for _, p in found}
    assert f"{API}/people/{{record_id:int}}" in paths and "/registry/{plural}/{record_id:int}" in paths


@pytest.fixture(scope="module")
def calls(world: World) -> list[Call]:
    out = [c for method, template in routes() if (method, template) not in SKIPPED
           for c in expand(world, method, template)]
    assert len(out) > 100
    return out


@pytest.mark.parametrize("role", WHOLE_TENANT + SCOPED_TO_A)
def test_every_route_as(role: str, callers: dict[str, Caller], calls: list[Call]) -> None:
    caller = callers[role]
    problems: list[str] = []
    seen_b = 0
    for c in calls:
        status, text = call(caller, c)
        where = f"{role} {c.method} {c.path}?{'&'.join(f'{k}={v}' for k, v in c.query)}"
        if status >= 500:
            problems.append(f"{where}: {status}")
            continue
        if role in SCOPED_TO_A:
            if MARKER in text:
                problems.append(f"{where}: B's marker {MARKER} in the answer ({status})")
            if c.names_b and c.method == "GET" and status == 200:
                problems.append(f"{where}: 200 for a record of B")
            # unmasking a kind without personal data is refused before any record is read
            # (422, the same for every id): that tells nothing about B
            no_pii = c.route.endswith("/unmask") and _pii_field(c.kind) == ""
            if c.names_b and role in READERS and status != 404 and not (no_pii and status == 422):
                problems.append(f"{where}: {status}, expected 404 for a record of B")
        else:
            seen_b += MARKER in text
            if c.names_b and c.method == "GET" and re.fullmatch(rf"{API}/\w+/\d+", c.path) \
                    and status != 200:
                problems.append(f"{where}: {status}, a whole-tenant user must see B's record")
    response = caller.client.post("/logout", data={"csrf_token": caller.csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert not problems, "\n".join(problems[:60]) + f"\n({len(problems)} problems)"
    if role in WHOLE_TENANT:
        # lists, details, profiles, exports, search: B is there for the whole subdistrict
        assert seen_b > 20, seen_b
