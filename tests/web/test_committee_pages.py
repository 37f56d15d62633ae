"""居委微平台 in the browser's place: the to-dos, ledgers, exports, requests and notices of
committee A as its staff see them, and nothing of committee B."""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import Alarm
from shequ.core.cases import service as cases
from shequ.core.cases.models import Case, CaseStep
from shequ.core.iam import service as iam
from shequ.core.iam.models import AuditLog, User
from shequ.core.notify import notices
from shequ.core.notify.models import Notice, Notification
from shequ.core.registry.models import Person, Visit
from shequ.core.registry.tags import add_tag, install_default_tags
from shequ.core.registry.validators import make_id_number
from shequ.db import bind_context
from tests.factories import Tree, place_tree
from tests.web.conftest import PASSWORD, csrf_of, login


@dataclass
class World:
    a: Tree
    b: Tree
    people: dict[str, Person]
    case_a: int
    case_b: int
    alarm_a: int
    alarm_b: int


def _person(session: Session, tree: Tree, name: str, seq: int, *groups: str) -> Person:
    birth = dt.date(1975, 1, 1) + dt.timedelta(days=seq)  # under 60: no 老年人 tag by the rules
    p = Person(name=name, sex="F", birth_date=birth, residence_type="registered",
               id_number=make_id_number("310112", birth, 100 + seq % 800), phone=f"1391234{seq:04d}",
               place_id=tree.room.id)
    session.add(p)
    session.flush()
    for code in groups:
        add_tag(session=session, code=code, entity="person", entity_id=p.id, by="test")
    return p


@pytest.fixture
def world(session: Session) -> World:
    install_default_tags(session=session)
    a = place_tree(session, tag="A", committee_name="北街居委会")
    b = place_tree(session, tag="B", lon=121.45, committee_name="南街居委会", lane="300")
    people = {
        "北街孤老": _person(session, a, "北街孤老", 1, "solitary_elderly"),
        "北街残疾": _person(session, a, "北街残疾", 2, "disabled"),
        "北街居民": _person(session, a, "北街居民", 3),
        "南街孤老": _person(session, b, "南街孤老", 4, "solitary_elderly"),
    }
    case_a = cases.open_case(session=session, title="北街楼道堆物", class_code="E0103", source="patrol", actor="t",
                             place_id=a.building.id, dispatch=True).id
    case_b = cases.open_case(session=session, title="南街井盖缺失", class_code="C0101", source="patrol", actor="t",
                             place_id=b.building.id, dispatch=True).id
    alarm_a = alarms.raise_alarm(session=session, type="smoke", source=f"p:{a.room.id}", severity="MAJOR",
                                 title="北街烟感告警", place_id=a.room.id)[0].id
    alarm_b = alarms.raise_alarm(session=session, type="smoke", source=f"p:{b.room.id}", severity="MAJOR",
                                 title="南街烟感告警", place_id=b.room.id)[0].id
    for name, role, scope in (("juwei_a", "committee", {"committees": [a.committee.id]}),
                              ("juwei_b", "committee", {"committees": [b.committee.id]}),
                              ("resident_a", "resident", {"person_id": people["北街居民"].id}),
                              ("boss", "admin", {})):
        iam.create_user(session=session, username=name, password=PASSWORD, role=role, scope=scope,
                        display_name=name)
    return World(a, b, people, case_a, case_b, alarm_a, alarm_b)


def _client(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app)
    login(client, username)
    return client


@pytest.fixture
def juwei(app: FastAPI, world: World) -> TestClient:
    return _client(app, "juwei_a")


def _unscoped(session: Session) -> Session:
    """The test's own reads see the whole tenant again (the last request bound its user's scope)."""
    return bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=None)


# --- today's to-dos --------------------------------------------------------------------------

def test_the_todos_show_committee_a_and_nothing_of_b(juwei: TestClient, world: World) -> None:
    page = juwei.get("/committee")
    assert page.status_code == 200
    text = page.text
    assert "北街居委会" in text and "南街" not in text
    assert "北街楼道堆物" in text and f'action="/committee/cases/{world.case_a}/actions/handle"' in text
    assert "北街烟感告警" in text and f'action="/alarms/{world.alarm_a}/ack"' in text
    assert "北街孤老" in text and "北街残疾" in text and "北街居民" not in text
    # counts at the top: one case, one alarm, two visits
    assert 'data-todo-total="4"' in text and "待办 4" in text
    assert re.search(r'data-count="visits"><strong>2</strong>', text)
    # the stylesheet and script are the committee's own files (no inline script or style)
    assert "/static/committee/committee.css" in text and "/static/committee/committee.js" in text
    assert "<script>" not in text and "style=" not in text
    assert juwei.get("/static/committee/committee.js").status_code == 200
    # another committee is not there for this user
    assert juwei.get("/committee", params={"committee": world.b.committee.id}).status_code == 404
    assert juwei.get("/committee", params={"committee": "abc"}).status_code == 422
    assert juwei.get("/committee", params={"committee": "9" * 5000}).status_code == 422
    assert juwei.get("/committee", params={"visited": "9" * 5000, "reported": "1" * 30}).status_code == 200


def test_a_whole_tenant_role_picks_the_committee(app: FastAPI, world: World) -> None:
    boss = _client(app, "boss")
    first = boss.get("/committee")
    assert first.status_code == 200 and "北街楼道堆物" in first.text and "南街井盖缺失" not in first.text
    assert f'<option value="{world.b.committee.id}"' in first.text  # the picker offers both
    english = boss.get("/committee", params={"lang": "en"})
    assert "To do: 4" in english.text and "Cases waiting for us" in english.text and "Record a visit" in english.text
    other = boss.get("/committee", params={"committee": world.b.committee.id})
    assert "南街井盖缺失" in other.text and "南街烟感告警" in other.text and "南街孤老" in other.text
    assert "北街楼道堆物" not in other.text


def test_one_tap_takes_a_case_a_stage_further(juwei: TestClient, world: World, session: Session) -> None:
    csrf = csrf_of(juwei, "/committee")
    r = juwei.post(f"/committee/cases/{world.case_a}/actions/handle",
                   data={"csrf_token": csrf, "committee": world.a.committee.id}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/committee?committee={world.a.committee.id}"
    _unscoped(session)
    case = session.get(Case, world.case_a)
    assert case is not None and case.stage == "handled"
    page = juwei.get("/committee")
    assert f'action="/committee/cases/{world.case_a}/actions/feed_back"' in page.text
    # another committee's case answers 404, a stage that does not allow it 422 naming the field
    r = juwei.post(f"/committee/cases/{world.case_b}/actions/handle", data={"csrf_token": csrf})
    assert r.status_code == 404
    r = juwei.post(f"/committee/cases/{world.case_a}/actions/handle", data={"csrf_token": csrf})
    assert r.status_code == 422 and "action" in r.text
    r = juwei.post(f"/committee/cases/{world.case_a}/actions/close", data={"csrf_token": csrf})
    assert r.status_code == 422 and "action" in r.text
    assert juwei.post(f"/committee/cases/{world.case_a}/actions/feed_back", data={}).status_code == 403  # CSRF


def test_acknowledging_an_alarm_from_the_todos(juwei: TestClient, world: World, session: Session) -> None:
    csrf = csrf_of(juwei, "/committee")
    r = juwei.post(f"/alarms/{world.alarm_a}/ack", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    _unscoped(session)
    alarm = session.get(Alarm, world.alarm_a)
    assert alarm is not None and alarm.status == "ACTIVE_ACK" and alarm.acked_by == "juwei_a"
    page = juwei.get("/committee")
    assert f'action="/alarms/{world.alarm_a}/ack"' not in page.text
    assert f'action="/alarms/{world.alarm_a}/clear"' in page.text


def test_recording_a_visit_takes_the_person_off_the_list(juwei: TestClient, world: World,
                                                        session: Session) -> None:
    person = world.people["北街残疾"]
    csrf = csrf_of(juwei, "/committee")
    r = juwei.post("/committee/visits", data={"csrf_token": csrf, "committee": world.a.committee.id,
                                              "person_id": person.id, "way": "phone", "result": "well",
                                              "note": "身体不错"}, follow_redirects=False)
    assert r.status_code == 303 and f"visited={person.id}" in r.headers["location"]
    page = juwei.get(r.headers["location"])
    assert "已记录对 北街残疾 的走访" in page.text
    assert f'data-person="{person.id}"' not in page.text and 'data-todo-total="3"' in page.text
    _unscoped(session)
    visit = session.scalar(select(Visit).where(Visit.person_id == person.id))
    assert visit is not None and visit.visitor == "juwei_a" and visit.way == "phone" and visit.note == "身体不错"


def test_a_bad_visit_is_answered_at_its_field(juwei: TestClient, world: World, session: Session) -> None:
    person = world.people["北街孤老"]
    csrf = csrf_of(juwei, "/committee")
    r = juwei.post("/committee/visits", data={"csrf_token": csrf, "committee": world.a.committee.id,
                                              "person_id": person.id, "way": "letter", "result": "well"})
    assert r.status_code == 422
    assert 'data-field="way"' in r.text and "home / phone / video" in r.text
    # the form of that person stays open with what was entered
    assert r.text.count('<details class="cm-visit" open>') == 1
    assert re.search(rf'data-person="{person.id}">(?:(?!</article>).)*<details class="cm-visit" open>', r.text, re.S)
    # another committee's person is not found, like a missing one
    r = juwei.post("/committee/visits", data={"csrf_token": csrf, "committee": world.a.committee.id,
                                              "person_id": world.people["南街孤老"].id, "way": "home",
                                              "result": "well"})
    assert r.status_code == 422 and "不存在" in r.text and "南街孤老" not in r.text
    _unscoped(session)
    assert session.scalar(select(func.count(Visit.id))) == 0


def test_a_visit_that_needs_help_becomes_a_case(juwei: TestClient, world: World, session: Session) -> None:
    person = world.people["北街孤老"]
    csrf = csrf_of(juwei, "/committee")
    r = juwei.post("/committee/visits", data={"csrf_token": csrf, "committee": world.a.committee.id,
                                              "person_id": person.id, "way": "home", "result": "needs_help",
                                              "note": "屋顶漏水"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/committee/cases/new?")
    form = juwei.get(r.headers["location"])
    assert form.status_code == 200 and "走访发现北街孤老需要帮助" in form.text
    r = juwei.post("/committee/cases/new", data={"csrf_token": csrf, "committee": world.a.committee.id,
                                                 "person": person.id, "title": "孤老屋顶漏水",
                                                 "class_code": "E0699", "description": "需维修"},
                   follow_redirects=False)
    assert r.status_code == 303 and "reported=" in r.headers["location"]
    _unscoped(session)
    case = session.scalar(select(Case).where(Case.title == "孤老屋顶漏水"))
    assert case is not None and case.source == "patrol" and case.place_id == person.place_id
    assert case.committee_id == world.a.committee.id and case.reporter_name == "juwei_a"
    assert case.code in juwei.get(r.headers["location"]).text
    # an unknown class is named
    r = juwei.post("/committee/cases/new", data={"csrf_token": csrf, "committee": world.a.committee.id,
                                                 "person": person.id, "title": "x", "class_code": "NOPE"})
    assert r.status_code == 422 and "class_code" in r.text
    assert juwei.get("/committee/cases/new", params={"person": world.people["南街孤老"].id}).status_code == 404


# --- ledgers ---------------------------------------------------------------------------------

def test_the_special_ledger_is_paged_masked_and_filtered(juwei: TestClient, world: World,
                                                        session: Session) -> None:
    for n in range(22):
        _person(session, world.a, f"低保户{n:02d}", 10 + n, "low_income")
    page = juwei.get("/committee/ledgers/special")
    assert page.status_code == 200
    assert 'data-total="24"' in page.text and "第 1 / 2 页" in page.text
    assert page.text.count('class="cm-item"') == 20
    assert "南街孤老" not in page.text and "北街居民" not in page.text
    second = juwei.get("/committee/ledgers/special", params={"page": 2})
    assert second.text.count('class="cm-item"') == 4
    # personal data masked as on the registry pages
    every = page.text + second.text
    numbers = [p.id_number for p in world.people.values() if p.id_number]
    assert not any(n in every for n in numbers)
    assert "1391234" not in every and re.search(r"139\*{4}\d{4}", every)
    assert "从未走访" in every and "孤老" in every
    only = juwei.get("/committee/ledgers/special", params={"group": "solitary_elderly"})
    assert 'data-total="1"' in only.text and "北街孤老" in only.text and "北街残疾" not in only.text
    assert juwei.get("/committee/ledgers/special", params={"group": "nope"}).status_code == 422
    found = juwei.get("/committee/ledgers/special", params={"q": "残疾"})
    assert 'data-total="1"' in found.text and "北街残疾" in found.text


def test_houses_and_shops_ledgers(juwei: TestClient, world: World, session: Session) -> None:
    from shequ.core.registry.models import House, Organisation

    session.add_all([House(place_id=world.a.room.id, use="rented", owner_name="北街业主"),
                     House(place_id=world.b.room.id, use="rented", owner_name="南街业主"),
                     Organisation(kind="shop_operator", name="北街小吃店", place_id=world.a.building.id,
                                  contact_phone="13700001111"),
                     Organisation(kind="enterprise", name="北街科技公司", place_id=world.a.building.id),
                     Organisation(kind="shop_operator", name="南街理发店", place_id=world.b.building.id)])
    session.flush()
    houses = juwei.get("/committee/ledgers/houses")
    assert houses.status_code == 200 and 'data-total="1"' in houses.text and "出租" in houses.text
    shops = juwei.get("/committee/ledgers/shops")
    assert "北街小吃店" in shops.text and "北街科技公司" not in shops.text and "南街理发店" not in shops.text
    assert "13700001111" not in shops.text and "137****1111" in shops.text


def test_a_ledger_exports_only_its_committee_and_is_audited(juwei: TestClient, world: World,
                                                           session: Session) -> None:
    _unscoped(session)
    before = session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "export")) or 0
    r = juwei.get("/committee/ledgers/special/export.xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert r.headers["x-record-count"] == "2"
    book = load_workbook(io.BytesIO(r.content), read_only=True)
    rows = [row for row in book.worksheets[0].iter_rows(values_only=True)]
    assert rows[0][0] == "姓名" and {row[0] for row in rows[1:]} == {"北街孤老", "北街残疾"}
    cells = " ".join(str(v) for row in rows for v in row if v is not None)
    assert "南街" not in cells and not any((p.id_number or "") in cells for p in world.people.values())
    _unscoped(session)
    audits = list(session.scalars(select(AuditLog).where(AuditLog.action == "export").order_by(AuditLog.id)))
    assert len(audits) == before + 1
    assert audits[-1].actor == "juwei_a" and audits[-1].detail["rows"] == 2
    assert audits[-1].detail["filters"]["place_id"] == world.a.committee.id
    # no export permission, no export
    iam.set_role_permissions(session=session, role="committee",
                             permissions=sorted(iam.PERMISSIONS["committee"] - {iam.EXPORT}))
    assert juwei.get("/committee/ledgers/special/export.xlsx").status_code == 403


# --- residents' requests ---------------------------------------------------------------------

def test_residents_requests_are_answered(juwei: TestClient, world: World, session: Session) -> None:
    mine = cases.open_case(session=session, title="楼下噪音", class_code="E0503", source="resident",
                           actor="resident_a", place_id=world.a.room.id, dispatch=True).id
    cases.open_case(session=session, title="南街噪音", class_code="E0503", source="resident", actor="r",
                    place_id=world.b.room.id)
    page = juwei.get("/committee/requests")
    assert page.status_code == 200 and "楼下噪音" in page.text and "南街噪音" not in page.text
    assert "北街楼道堆物" not in page.text  # a patrol case is not a resident's request
    assert f'action="/committee/cases/{mine}/actions/handle"' in page.text
    csrf = csrf_of(juwei, "/committee/requests")
    r = juwei.post(f"/committee/requests/{mine}/answer", data={"csrf_token": csrf, "note": "已联系物业处理"},
                   follow_redirects=False)
    assert r.status_code == 303 and "answered=1" in r.headers["location"]
    _unscoped(session)
    step = session.scalar(select(CaseStep).where(CaseStep.case_id == mine, CaseStep.action == "comment"))
    assert step is not None and step.note == "已联系物业处理" and step.actor == "juwei_a" and step.data["answer"]
    r = juwei.post(f"/committee/requests/{mine}/answer", data={"csrf_token": csrf, "note": "  "})
    assert r.status_code == 422 and "note" in r.text
    assert juwei.post(f"/committee/requests/{world.case_b}/answer",
                      data={"csrf_token": csrf, "note": "x"}).status_code == 404


# --- notices ---------------------------------------------------------------------------------

def test_publishing_a_notice_reaches_the_committees_residents(juwei: TestClient, world: World,
                                                             session: Session) -> None:
    csrf = csrf_of(juwei, "/committee/notices")
    r = juwei.post("/committee/notices", data={"csrf_token": csrf, "committee": world.a.committee.id,
                                               "committee_id": world.a.committee.id, "title": "周六停水",
                                               "body": "上午九点至十二点", "audience": "all"},
                   follow_redirects=False)
    assert r.status_code == 303
    _unscoped(session)
    notice = session.scalar(select(Notice).where(Notice.title == "周六停水"))
    assert notice is not None and notice.committee_id == world.a.committee.id
    users = {u.username: u.id for u in session.scalars(select(User))}
    reached = set(session.scalars(select(Notification.user_id).where(Notification.ref == f"notice:{notice.id}")))
    assert users["resident_a"] in reached and users["juwei_a"] in reached and users["juwei_b"] not in reached
    listed = juwei.get(r.headers["location"])
    assert "周六停水" in listed.text and f'href="/notices/{notice.id}"' in listed.text
    assert "已发布" in listed.text
    # the resident reads it through the shared reader page their notification links to
    resident = TestClient(juwei.app)
    login(resident, "resident_a")
    shown = resident.get(f"/notices/{notice.id}")
    assert shown.status_code == 200 and "上午九点至十二点" in shown.text


def test_a_committee_cannot_publish_to_another(juwei: TestClient, world: World, session: Session) -> None:
    csrf = csrf_of(juwei, "/committee/notices")
    r = juwei.post("/committee/notices", data={"csrf_token": csrf, "committee": world.a.committee.id,
                                               "committee_id": world.b.committee.id, "title": "越权通知",
                                               "audience": "all"})
    assert r.status_code == 422 and 'data-field="committee_id"' in r.text and "只能向本居委发布" in r.text
    r = juwei.post("/committee/notices", data={"csrf_token": csrf, "committee": world.a.committee.id,
                                               "committee_id": world.a.committee.id, "title": " ",
                                               "audience": "all"})
    assert r.status_code == 422 and 'data-field="title"' in r.text
    _unscoped(session)
    assert session.scalar(select(func.count(Notice.id))) == 0


def test_a_notice_of_another_committee_is_not_found(app: FastAPI, juwei: TestClient, world: World,
                                                   session: Session) -> None:
    _unscoped(session)
    boss = session.scalar(select(User).where(User.username == "boss"))
    assert boss is not None
    theirs = notices.publish(session=session, user=boss, title="南街议事会", committee_id=world.b.committee.id)
    ours = notices.publish(session=session, user=boss, title="北街议事会", committee_id=world.a.committee.id)
    everyone = notices.publish(session=session, user=boss, title="街道防汛通知")
    assert juwei.get(f"/notices/{theirs.id}").status_code == 404
    assert juwei.get(f"/notices/{ours.id}").status_code == 200
    listed = juwei.get("/committee/notices").text
    assert "北街议事会" in listed and "街道防汛通知" in listed and "南街议事会" not in listed
    assert _client(app, "boss").get(f"/notices/{theirs.id}").status_code == 200
    assert juwei.get(f"/notices/{everyone.id}").status_code == 200
    assert juwei.get("/notices/999999999").status_code == 404
