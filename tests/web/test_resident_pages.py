"""The resident's pages as a resident's browser sees them: report with a photo, refused reports,
my requests and their progress, another's request, rating, notices, large-font mode, and the
staff pages a resident may not open."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.cases import service as cases
from shequ.core.cases.models import Case, CaseAttachment
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.notify import notices
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from shequ.db import bind_context
from shequ.web.deps import LARGE_FONT_COOKIE
from tests.factories import Tree, place_tree, png
from tests.web.conftest import PASSWORD, csrf_of, login


@dataclass
class Homes:
    north: Tree
    south: Tree
    ann: User
    bob: User


@pytest.fixture
def homes(session: Session) -> Homes:
    north = place_tree(session, tag="N", committee_name="北街居委会")
    south = place_tree(session, tag="S", lon=121.45, committee_name="南街居委会", lane="300")
    users = []
    for seq, (name, tree) in enumerate((("安阿姨", north), ("鲍师傅", south)), start=1):
        birth = dt.date(1948 + seq, 5, 1)
        person = Person(name=name, sex="F", birth_date=birth, residence_type="registered",
                        id_number=make_id_number("310112", birth, 400 + seq), place_id=tree.room.id)
        session.add(person)
        session.flush()
        users.append(iam.create_user(session=session, username=f"res_page_{seq}", password=PASSWORD,
                                     role="resident", display_name=name, scope={"person_id": person.id}))
    return Homes(north, south, users[0], users[1])


def as_staff(session: Session) -> None:
    """The test's own reads and the dispatcher's actions: the whole tenant (a request of the
    resident bound their scope to the shared session)."""
    bind_context(session, tenant_id=session.info["tenant_id"], actor="dispatcher", scope=None)


def count(session: Session, model: type[Case] | type[CaseAttachment]) -> int:
    as_staff(session)
    return session.scalar(select(func.count()).select_from(model)) or 0


def submit(client: TestClient, *, photos: list[tuple[str, bytes, str]] | None = None, **fields: str) -> Response:
    data = {"csrf_token": csrf_of(client, "/m/report"), "class_code": "C0102", "title": "",
            "description": "楼下路灯不亮三天了", "location": "home", "lon": "", "lat": "", "address_detail": ""}
    data.update(fields)
    files = [("photos", p) for p in (photos or [])]
    return client.post("/m/report", data=data, files=files or None, follow_redirects=False)


def case_id_of(response: Response) -> int:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/m/requests/(\d+)/submitted", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def test_report_with_a_photo(client: TestClient, session: Session, homes: Homes) -> None:
    login(client, "res_page_1")
    form = client.get("/m/report")
    assert form.status_code == 200
    assert 'accept="image/*"' in form.text and 'capture="environment"' in form.text
    assert "<optgroup label=\"公用设施\">" in form.text and "路灯损坏" in form.text
    assert "鹤庆路" in form.text  # "my home" names the resident's building
    image = png()
    case_id = case_id_of(submit(client, photos=[("夜里拍的.png", image, "image/png")]))
    done = client.get(f"/m/requests/{case_id}/submitted")
    as_staff(session)
    case = session.get(Case, case_id)
    assert case is not None
    assert done.status_code == 200 and case.code in done.text and f'href="/m/requests/{case_id}"' in done.text
    assert (case.source, case.reporter_user_id, case.title) == ("resident", homes.ann.id, "路灯损坏")
    assert case.place_id == homes.north.building.id and case.committee_id == homes.north.committee.id
    assert cases.route(session=session, case=case).department == "城建中心"
    [attachment] = session.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case_id)).all()
    assert attachment.content_type == "image/png" and attachment.size == len(image)
    # the resident sees their photo on the request's page
    detail = client.get(f"/m/requests/{case_id}")
    src = f"/m/requests/{case_id}/photos/{attachment.id}"
    assert detail.status_code == 200 and f'src="{src}"' in detail.text
    got = client.get(src)
    assert got.status_code == 200 and got.content == image and got.headers["content-type"] == "image/png"


@pytest.mark.parametrize(("fields", "photo", "field"), [
    ({"class_code": ""}, None, "class_code"),
    ({"class_code": "C0202"}, None, "class_code"),  # a class not offered to residents
    ({"description": ""}, None, "description"),
    ({}, ("note.png", b"this is text, not a picture", "image/png"), "photos"),
    ({"location": "map"}, None, "location"),
    ({"location": "gps", "lon": "1.0", "lat": "1.0"}, None, "location"),
])
def test_bad_input_is_refused_at_its_field_and_nothing_is_created(
        client: TestClient, session: Session, homes: Homes, fields: dict[str, str],
        photo: tuple[str, bytes, str] | None, field: str) -> None:
    login(client, "res_page_1")
    before = count(session, Case), count(session, CaseAttachment)
    response = submit(client, photos=[photo] if photo else None, description=fields.pop("description", "路灯坏了"),
                      **fields)
    assert response.status_code == 422
    assert f'data-error-for="{field}"' in response.text
    assert f'aria-describedby="err-{field}"' in response.text
    assert (count(session, Case), count(session, CaseAttachment)) == before
    if field != "description":
        assert "路灯坏了" in response.text  # what was typed comes back


def test_my_requests_list_and_detail(client: TestClient, session: Session, homes: Homes) -> None:
    login(client, "res_page_2")
    bobs = case_id_of(submit(client, title="鲍师傅的问题"))
    client.cookies.clear()
    login(client, "res_page_1")
    first = case_id_of(submit(client, title="路灯不亮"))
    second = case_id_of(submit(client, class_code="E0503", title="夜里施工太吵", description="晚上十一点还在施工"))
    as_staff(session)
    cases.act(session=session, case=session.get(Case, first), action="register", actor="dispatcher")
    listing = client.get("/m/requests")
    assert listing.status_code == 200
    ids = [int(i) for i in re.findall(r'data-case-id="(\d+)"', listing.text)]
    assert ids == [second, first]  # mine only, newest first
    assert "鲍师傅的问题" not in listing.text
    assert "已受理" in listing.text and "已提交" in listing.text  # stages in plain words
    home = client.get("/m")
    assert 'data-open-count="2"' in home.text
    detail = client.get(f"/m/requests/{first}")
    assert detail.status_code == 200
    assert re.findall(r'data-step="(\w+)"', detail.text) == ["report", "register"]
    assert "诉求已受理" in detail.text
    # another resident's request is not there at all
    for path in (f"/m/requests/{bobs}", f"/m/requests/{bobs}/submitted", f"/m/requests/{bobs}/photos/1"):
        assert client.get(path).status_code == 404, path
    csrf = csrf_of(client, "/m/report")
    assert client.post(f"/m/requests/{bobs}/rating", data={"csrf_token": csrf, "satisfaction": "1"},
                       follow_redirects=False).status_code == 404
    as_staff(session)
    theirs = session.get(Case, bobs)
    assert theirs is not None and theirs.stage == "reported"


def test_rating_after_the_request_is_closed(client: TestClient, session: Session, homes: Homes) -> None:
    login(client, "res_page_1")
    case_id = case_id_of(submit(client))
    csrf = csrf_of(client, "/m/report")
    early = client.post(f"/m/requests/{case_id}/rating", data={"csrf_token": csrf, "satisfaction": "5"},
                        follow_redirects=False)
    assert early.status_code == 422 and 'data-error-for="satisfaction"' in early.text
    assert "data-rating-form" in early.text  # the message shows at the form
    before = client.get(f"/m/requests/{case_id}")
    assert "data-rating-form" not in before.text
    as_staff(session)
    case = session.get(Case, case_id)
    assert case is not None and case.stage == "reported"
    for action in ("register", "dispatch", "handle", "feed_back", "verify", "close"):
        cases.act(session=session, case=case, action=action, actor="dispatcher",
                  note="已更换灯泡" if action == "handle" else "")
    closed = client.get(f"/m/requests/{case_id}")
    assert "data-rating-form" in closed.text and "已办结" in closed.text and "已更换灯泡" in closed.text
    no_stars = client.post(f"/m/requests/{case_id}/rating", data={"csrf_token": csrf, "comment": "还行"},
                           follow_redirects=False)
    assert no_stars.status_code == 422 and 'data-error-for="satisfaction"' in no_stars.text
    assert "还行" in no_stars.text
    rated = client.post(f"/m/requests/{case_id}/rating",
                        data={"csrf_token": csrf, "satisfaction": "4", "comment": "修得很快"}, follow_redirects=False)
    assert rated.status_code == 303
    shown = client.get(f"/m/requests/{case_id}")
    assert "data-rating " in shown.text or "data-rating>" in shown.text
    assert "修得很快" in shown.text and "已评价" in shown.text and "data-rating-form" not in shown.text
    as_staff(session)
    assert (case.stage, case.satisfaction, case.satisfaction_note) == ("evaluated", 4, "修得很快")


def test_large_font_switch(client: TestClient, homes: Homes) -> None:
    login(client, "res_page_1")
    page = client.get("/m/report")
    assert 'class="resident"' in page.text and 'aria-pressed="false"' in page.text
    csrf = csrf_of(client, "/m/report")
    on = client.post("/m/large-font", data={"csrf_token": csrf, "next": "/m/report"}, follow_redirects=False)
    assert on.status_code == 303 and on.headers["location"] == "/m/report"
    cookie = on.headers["set-cookie"]
    assert f"{LARGE_FONT_COOKIE}=1" in cookie and "Max-Age=31536000" in cookie and "samesite=lax" in cookie.lower()
    assert client.cookies.get(LARGE_FONT_COOKIE) == "1"
    page = client.get("/m/report")
    assert 'class="resident large-font"' in page.text and 'aria-pressed="true"' in page.text
    off = client.post("/m/large-font", data={"csrf_token": csrf, "next": "//evil.example/"}, follow_redirects=False)
    assert off.headers["location"] == "/m"  # only a path of this site
    assert client.cookies.get(LARGE_FONT_COOKIE) is None
    assert 'class="resident"' in client.get("/m").text
    # without the CSRF token nothing changes
    assert client.post("/m/large-font", data={"next": "/m"}, follow_redirects=False).status_code == 403


def test_the_tab_bar_and_the_language(client: TestClient, homes: Homes) -> None:
    login(client, "res_page_1")
    home = client.get("/m")
    tabs = home.text.split('class="m-tabs"', 1)[1]
    assert re.findall(r'href="(/m[^"]*)"', tabs) == ["/m", "/m/report", "/m/requests", "/m/notices"]
    assert 'href="/registry/people"' not in home.text and "mainnav" not in home.text
    english = client.get("/m/requests?lang=en")
    assert "My requests" in english.text and "Report" in english.text


def test_notices_for_residents(client: TestClient, session: Session, homes: Homes) -> None:
    as_staff(session)
    admin = iam.create_user(session=session, username="res_page_admin", password=PASSWORD, role="admin")
    everyone = notices.publish(session=session, user=admin, title="停水通知", body="周六 9:00–12:00 停水",
                               audience="residents")
    mine = notices.publish(session=session, user=admin, title="北街义诊", audience="all",
                           committee_id=homes.north.committee.id)
    staff_only = notices.publish(session=session, user=admin, title="内部会议", audience="staff")
    theirs = notices.publish(session=session, user=admin, title="南街活动", audience="residents",
                             committee_id=homes.south.committee.id)
    login(client, "res_page_1")
    assert "停水通知" in client.get("/m").text
    listing = client.get("/m/notices")
    assert "停水通知" in listing.text and "北街义诊" in listing.text
    assert "内部会议" not in listing.text and "南街活动" not in listing.text
    one = client.get(f"/m/notices/{everyone.id}")
    assert one.status_code == 200 and "周六 9:00–12:00 停水" in one.text
    assert client.get(f"/m/notices/{mine.id}").status_code == 200
    assert client.get(f"/m/notices/{staff_only.id}").status_code == 404
    assert client.get(f"/m/notices/{theirs.id}").status_code == 404


@pytest.mark.parametrize("path", ["/registry/people", "/cases", "/alarms", "/kpi", "/audit", "/quality"])
def test_staff_pages_are_forbidden_to_a_resident(client: TestClient, homes: Homes, path: str) -> None:
    login(client, "res_page_1")
    assert client.get(path, follow_redirects=False).status_code == 403


def test_the_pages_need_a_signed_in_user(client: TestClient) -> None:
    for path in ("/m", "/m/report", "/m/requests", "/m/notices"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
