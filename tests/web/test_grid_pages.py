"""网格中台 pages in the browser's shoes: the board with its quick actions and alarm console, the
patrol report with a photo and a point on the map, and the search box — in zh-CN and English,
within the user's scope; a resident is turned away."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import Alarm
from shequ.core.cases import service as cases
from shequ.core.cases.models import Case, CaseAttachment
from shequ.db import bind_context
from tests.factories import png
from tests.web.conftest import csrf_of, login
from tests.web.test_cases_api import Loop, build_loop


@pytest.fixture
def loop(session: Session) -> Loop:
    return build_loop(session)


def _unscoped(session: Session) -> Session:
    """The test's own reads see the whole tenant again (the last request bound its user's scope)."""
    return bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=None)


def _case(session: Session, loop: Loop, title: str = "北街井盖缺失", tree: Any = None, **kw: Any) -> Case:
    return cases.open_case(session=session, title=title, class_code="C0101", source="patrol", actor="test",
                           place_id=(tree or loop.a).building.id, **kw)


def _alarm(session: Session, loop: Loop, title: str = "北街烟感告警", tree: Any = None) -> Alarm:
    alarm, _ = alarms.raise_alarm(session=session, type="smoke", source=f"p:{(tree or loop.a).room.id}",
                                  severity="CRITICAL", title=title, place_id=(tree or loop.a).room.id)
    return alarm


def _card(html: str, case_id: int) -> str:
    match = re.search(rf'<article[^>]*id="case-{case_id}".*?</article>', html, re.S)
    assert match, f"no card of case {case_id}"
    return match.group(0)


def _column_of(html: str, case_id: int) -> str:
    before = html[:html.index(f'id="case-{case_id}"')]
    return re.findall(r'data-column="(\w+)"', before)[-1]


def test_the_board_renders_in_both_languages(client: TestClient, loop: Loop, session: Session) -> None:
    reported = _case(session, loop)
    dispatched = _case(session, loop, "路灯不亮", dispatch=True)
    other = _case(session, loop, "南街垃圾堆放", tree=loop.b)
    alarm = _alarm(session, loop)
    login(client, "dispatcher")
    page = client.get("/grid")
    assert page.status_code == 200
    html = page.text
    assert "案件看板" in html and "告警台" in html and "北街烟感告警" in html
    assert _column_of(html, reported.id) == "reported" and _column_of(html, dispatched.id) == "dispatched"
    assert _column_of(html, other.id) == "reported"
    assert re.search(r'data-column="reported" data-count="2"', html)
    assert "城建中心" in _card(html, dispatched.id) and reported.code in _card(html, reported.id)
    assert 'data-action="register"' in _card(html, reported.id)
    assert 'data-quick="dispatch"' in _card(html, dispatched.id) and "改派" in _card(html, dispatched.id)
    assert f'action="/grid/alarms/{alarm.id}/ack"' in html
    assert 'hx-get="/grid/alarms"' in html and 'hx-trigger="every 10s"' in html
    assert 'action="/grid/search"' in html  # the search box in the board's header
    assert "<script>" not in html and "style=" not in html  # the CSP allows neither
    english = client.get("/grid", params={"lang": "en"})
    assert english.status_code == 200
    assert "Case board" in english.text and "Alarm console" in english.text and "Re-dispatch" in english.text
    # filters: by grid, and a bad value is named
    only_b = client.get("/grid", params={"grid_id": loop.b.grid.id})
    assert f'id="case-{other.id}"' in only_b.text and f'id="case-{reported.id}"' not in only_b.text
    bad = client.get("/grid", params={"grid_id": "abc"})
    assert bad.status_code == 422 and 'data-error="grid_id"' in bad.text
    # the console alone, as the page polls it
    console = client.get("/grid/alarms")
    assert console.status_code == 200 and "北街烟感告警" in console.text and "<html" not in console.text


def test_quick_dispatch_and_co_handling_from_the_board(client: TestClient, loop: Loop, session: Session) -> None:
    case = _case(session, loop, register=True)
    login(client, "dispatcher")
    csrf = csrf_of(client, "/grid")
    r = client.post(f"/grid/cases/{case.id}/dispatch",
                    data={"csrf_token": csrf, "department": "安监所", "back": "grid_id=x&overdue=true&evil=1"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/grid?grid_id=x&overdue=true&case={case.id}&done=dispatch#case-{case.id}"
    board = client.get(f"/grid?case={case.id}&done=dispatch")
    assert _column_of(board.text, case.id) == "dispatched" and "安监所" in _card(board.text, case.id)
    assert 'data-done="dispatch"' in board.text and "已派遣" in board.text
    r = client.post(f"/grid/cases/{case.id}/co_handle",
                    data={"csrf_token": csrf, "departments": ["城建中心", "社区服务办"]}, follow_redirects=False)
    assert r.status_code == 303
    _unscoped(session).refresh(case)
    assert case.stage == "dispatched" and case.department == "安监所"
    assert case.co_departments == ["城建中心", "社区服务办"]
    # refusals name the field and change nothing
    r = client.post(f"/grid/cases/{case.id}/co_handle", data={"csrf_token": csrf})
    assert r.status_code == 422 and "departments" in r.text
    r = client.post(f"/grid/cases/{case.id}/close", data={"csrf_token": csrf})
    assert r.status_code == 422 and "action" in r.text
    r = client.post(f"/grid/cases/{case.id}/void", data={"csrf_token": csrf})
    assert r.status_code == 422 and "action" in r.text
    _unscoped(session).refresh(case)
    assert case.stage == "dispatched"
    assert client.post(f"/grid/cases/{case.id}/handle", data={"note": "x"}).status_code == 403  # no CSRF token
    assert client.post("/grid/cases/999999/handle", data={"csrf_token": csrf}).status_code == 404


def test_the_console_acknowledges_clears_and_opens_a_case(client: TestClient, loop: Loop, session: Session) -> None:
    first = _alarm(session, loop)
    second = _alarm(session, loop, "北街燃气告警")
    second_id = second.id
    login(client, "dispatcher")
    csrf = csrf_of(client, "/grid")
    r = client.post(f"/grid/alarms/{first.id}/ack", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/grid?alarm={first.id}&done=ack")
    board = client.get(r.headers["location"])
    item = re.search(rf'<li class="alarm-item" data-alarm="{first.id}" data-status="(\w+)"', board.text)
    assert item and item.group(1) == "ACTIVE_ACK" and "告警已确认" in board.text
    assert client.post(f"/grid/alarms/{first.id}/ack", data={"csrf_token": csrf}).status_code == 422
    r = client.post(f"/grid/alarms/{second_id}/case", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 422 and "class_code" in r.text
    r = client.post(f"/grid/alarms/{second_id}/case", data={"csrf_token": csrf, "class_code": "C0101",
                                                             "dispatch": "1"}, follow_redirects=False)
    assert r.status_code == 303
    opened = _unscoped(session).scalar(select(Case).where(Case.alarm_id == second_id))
    assert opened is not None and opened.stage == "dispatched"
    board = client.get(r.headers["location"])
    assert f'href="/grid?case={opened.id}#case-{opened.id}"' in board.text
    r = client.post(f"/grid/alarms/{first.id}/clear", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert f'data-alarm="{first.id}"' not in client.get("/grid/alarms").text  # cleared: off the console


def test_a_patrol_report_with_a_photo_and_a_point(client: TestClient, loop: Loop, session: Session) -> None:
    login(client, "grid_a")
    form = client.get("/grid/patrol")
    assert form.status_code == 200
    assert 'id="patrol-map"' in form.text and 'name="photos"' in form.text and "C0101" in form.text
    assert "/static/vendor/maplibre-gl-csp.js" in form.text and 'data-bounds="121.400000,31.000000' in form.text
    assert "Patrol report" in client.get("/grid/patrol", params={"lang": "en"}).text
    geo = client.get("/grid/patrol/buildings").json()
    assert [f["properties"]["id"] for f in geo["features"]] == [loop.a.building.id]  # only A's, in scope
    csrf = csrf_of(client, "/grid/patrol")
    assert loop.a.building.lon is not None and loop.a.building.lat is not None
    lon, lat = f"{loop.a.building.lon + 0.0002:.6f}", f"{loop.a.building.lat:.6f}"
    image = png()
    r = client.post("/grid/patrol", data={"csrf_token": csrf, "title": "楼道堆物", "class_code": "C0101",
                                          "description": "三楼楼道堆放杂物", "lon": lon, "lat": lat},
                    files=[("photos", ("现场1.png", image, "image/png")), ("photos", ("现场2.png", image, "image/png"))],
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    case_id = int(r.headers["location"].rsplit("/", 1)[1])
    s = _unscoped(session)
    case = s.get(Case, case_id)
    assert case is not None and case.source == "patrol" and case.title == "楼道堆物"
    assert f"{case.lon:.6f}" == lon and f"{case.lat:.6f}" == lat
    assert case.place_id == loop.a.building.id and case.reporter_user_id == loop.user_ids["grid_a"]
    names = list(s.scalars(select(CaseAttachment.name).where(CaseAttachment.case_id == case_id)))
    assert sorted(names) == ["现场1.png", "现场2.png"]
    detail = client.get(r.headers["location"], params={"lang": "zh-CN"})
    assert detail.status_code == 200 and "现场1.png" in detail.text and "巡查" in detail.text


@pytest.mark.parametrize(("change", "field"), [
    ({"title": ""}, "title"),
    ({"class_code": "ZZ99"}, "class_code"),
    ({"lon": "120.000000", "lat": "30.000000"}, "point"),  # outside the subdistrict
    ({"lon": "east", "lat": "31.0"}, "point"),
    ({"lon": "", "lat": ""}, "point"),  # no point and no place
    ({"place": "999999999"}, "place"),
    ({"photo": b"GIF89a not allowed"}, "photos"),
    ({"photo": b"%PDF-1.4 a document, not a photo"}, "photos"),
])
def test_bad_patrol_input_is_named_and_creates_nothing(client: TestClient, loop: Loop, session: Session,
                                                       change: dict[str, Any], field: str) -> None:
    login(client, "grid_a")
    csrf = csrf_of(client, "/grid/patrol")
    assert loop.a.building.lon is not None and loop.a.building.lat is not None
    data = {"csrf_token": csrf, "title": "楼道堆物", "class_code": "C0101", "description": "杂物",
            "lon": f"{loop.a.building.lon:.6f}", "lat": f"{loop.a.building.lat:.6f}"}
    photo = change.pop("photo", png())
    data.update(change)
    before = _unscoped(session).scalar(select(func.count(Case.id)))
    files = [("photos", ("p.png", photo, "image/png"))]
    r = client.post("/grid/patrol", data=data, files=files, follow_redirects=False)
    assert r.status_code == 422
    assert f'data-error="{field}"' in r.text and f"{field}:" in r.text
    if change.get("title") != "":
        assert 'value="楼道堆物"' in r.text  # the form keeps what was typed
    s = _unscoped(session)
    assert s.scalar(select(func.count(Case.id))) == before
    assert s.scalar(select(func.count(CaseAttachment.id))) == 0


def test_search_within_scope(client: TestClient, loop: Loop, session: Session) -> None:
    from shequ.core.registry.models import Person

    s = _unscoped(session)
    north = s.scalar(select(Person).where(Person.name == "居民甲"))
    assert north is not None and north.id_number
    number = north.id_number
    b_case = _case(session, loop, "南街垃圾堆放", tree=loop.b)
    login(client, "grid_a")
    r = client.get("/grid/search", params={"q": number})
    assert r.status_code == 200
    people = re.search(r'<section class="card search-group" id="kind-person".*?</section>', r.text, re.S)
    assert people and 'data-count="1"' in people.group(0)
    assert f'href="/registry/people/{north.id}"' in people.group(0)
    assert number not in people.group(0) and north.id_number_mask in people.group(0)  # masked only
    assert "南街垃圾堆放" not in client.get("/grid/search", params={"q": "南街"}).text
    assert 'data-total="0"' in client.get("/grid/search", params={"q": b_case.code}).text
    english = client.get("/grid/search", params={"q": "居民", "lang": "en"})
    assert "People" in english.text and "results for" in english.text
    bad = client.get("/grid/search", params={"q": "x" * 150})
    assert bad.status_code == 422 and 'data-error="q"' in bad.text
    # a dispatcher (the whole subdistrict) finds B's case by its number
    client.post("/logout", data={"csrf_token": csrf_of(client, "/grid")})
    login(client, "dispatcher")
    found = client.get("/grid/search", params={"q": b_case.code, "lang": "zh-CN"})
    assert f'href="/cases/{b_case.id}"' in found.text and "待受理" in found.text  # its stage


def test_a_grid_worker_sees_and_acts_only_in_their_grid(client: TestClient, loop: Loop, session: Session) -> None:
    mine = _case(session, loop, "北街的", register=True, dispatch=True)
    theirs = _case(session, loop, "南街的", tree=loop.b, register=True, dispatch=True)
    their_alarm = _alarm(session, loop, "南街告警", tree=loop.b)
    login(client, "grid_a")
    board = client.get("/grid")
    assert board.status_code == 200 and "北街的" in board.text and "南街" not in board.text
    assert 'data-quick="dispatch"' not in board.text  # a grid worker does not dispatch
    csrf = csrf_of(client, "/grid")
    assert client.post(f"/grid/cases/{theirs.id}/handle", data={"csrf_token": csrf}).status_code == 404
    assert client.post(f"/grid/alarms/{their_alarm.id}/ack", data={"csrf_token": csrf}).status_code == 404
    assert client.post(f"/grid/cases/{mine.id}/dispatch", data={"csrf_token": csrf}).status_code == 403
    assert "南街" not in client.get("/grid", params={"case": theirs.id}).text


def test_a_resident_is_turned_away(client: TestClient, loop: Loop, session: Session) -> None:
    case = _case(session, loop)
    login(client, "resident")
    for path in ("/grid", "/grid/patrol", "/grid/search?q=井盖", "/grid/alarms", "/grid/patrol/buildings"):
        assert client.get(path).status_code == 403, path
    csrf = csrf_of(client, "/login")
    r = client.post("/grid/patrol", data={"csrf_token": csrf, "title": "x", "class_code": "C0101"})
    assert r.status_code == 403
    assert client.post(f"/grid/cases/{case.id}/register", data={"csrf_token": csrf}).status_code in (403, 404)
    # nobody signed in: to the login page
    client.post("/logout", data={"csrf_token": csrf})
    r = client.get("/grid", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
