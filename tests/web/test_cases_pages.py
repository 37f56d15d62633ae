"""The case pages as a dispatcher and department staff use them in the browser (zh-CN and English)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shequ.core.cases import service
from tests.factories import png
from tests.web.conftest import csrf_of, login
from tests.web.test_cases_api import Loop, build_loop, hotline_xlsx

GOOD_ROW = ["GD-P-1", dt.datetime(2026, 11, 27, 9, 5), "垃圾", "小区门口暴露垃圾", "鹤庆路258弄12号", "王",
            "13912340009", None]


@pytest.fixture
def loop(session: Session) -> Loop:
    return build_loop(session)


def _case(session: Session, loop: Loop, **kw: object) -> int:
    values: dict = {"title": "北街井盖缺失", "class_code": "C0101", "source": "patrol", "actor": "g",
                    "place_id": loop.a.building.id, **kw}
    return service.open_case(session=session, **values).id


def test_list_and_detail_render_for_a_dispatcher(client: TestClient, loop: Loop, session: Session) -> None:
    late = _case(session, loop, dispatch=True, now=dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC))
    fresh = _case(session, loop, title="路灯不亮", class_code="C0102")
    login(client, "dispatcher")
    page = client.get("/cases")
    assert page.status_code == 200
    assert "北街井盖缺失" in page.text and "路灯不亮" in page.text
    assert 'data-stage="dispatched"' in page.text and "已派遣" in page.text
    assert "data-overdue" in page.text and "超期" in page.text
    assert "2026-01-06 10:00" in page.text  # the deadline (8 working hours from Monday 10:00), Shanghai time
    filtered = client.get("/cases", params={"stage": "reported"}, headers={"HX-Request": "true"})
    assert "路灯不亮" in filtered.text and "北街井盖缺失" not in filtered.text and "<html" not in filtered.text
    bad = client.get("/cases", params={"reported_from": "soon"})
    assert bad.status_code == 200 and "reported_from" in bad.text
    detail = client.get(f"/cases/{late}")
    assert detail.status_code == 200 and "城建中心" in detail.text
    assert 'data-step="dispatch"' in detail.text and 'data-action="handle"' in detail.text
    english = client.get(f"/cases/{fresh}", params={"lang": "en"})
    assert "Timeline" in english.text and "register" in english.text
    assert client.get("/cases/999999999").status_code == 404


def test_action_forms_move_the_stage_and_name_bad_fields(client: TestClient, loop: Loop, session: Session) -> None:
    cid = _case(session, loop)
    login(client, "dispatcher")
    csrf = csrf_of(client, f"/cases/{cid}")
    r = client.post(f"/cases/{cid}/actions/register", data={"csrf_token": csrf, "note": "受理"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{cid}"
    r = client.post(f"/cases/{cid}/actions/dispatch", data={"csrf_token": csrf, "department": "安监所"})
    assert r.status_code == 200 and 'data-stage="dispatched"' in r.text and "安监所" in r.text
    r = client.post(f"/cases/{cid}/actions/extend", data={"csrf_token": csrf, "hours": "abc", "note": "x"})
    assert r.status_code == 422 and "hours" in r.text
    r = client.post(f"/cases/{cid}/actions/close", data={"csrf_token": csrf})
    assert r.status_code == 422 and "action" in r.text
    r = client.post(f"/cases/{cid}/actions/co_handle", data={"csrf_token": csrf, "departments": ["城建中心", "社区服务办"]})
    assert r.status_code == 200 and "社区服务办" in r.text
    # without the CSRF token nothing happens
    assert client.post(f"/cases/{cid}/actions/comment", data={"note": "x"}).status_code == 403


def test_department_staff_handle_through_the_page(client: TestClient, loop: Loop, session: Session) -> None:
    mine = _case(session, loop, dispatch=True)
    other = _case(session, loop, title="楼道隐患", class_code="E0602", dispatch=True)
    login(client, "chengjian")
    listed = client.get("/cases")
    assert "北街井盖缺失" in listed.text and "楼道隐患" not in listed.text
    csrf = csrf_of(client, f"/cases/{mine}")
    r = client.post(f"/cases/{mine}/actions/handle", data={"csrf_token": csrf, "note": "已修复"})
    assert r.status_code == 200 and 'data-stage="handled"' in r.text and "已修复" in r.text
    assert client.post(f"/cases/{other}/actions/handle", data={"csrf_token": csrf}).status_code == 403
    # an attachment through the form, shown and downloadable
    image = png()
    r = client.post(f"/cases/{mine}/attachments", data={"csrf_token": csrf},
                    files={"file": ("现场.png", image, "image/png")})
    assert r.status_code == 200 and "现场.png" in r.text
    link = re.search(rf'href="(/cases/{mine}/attachments/\d+)"', r.text)
    assert link and client.get(link.group(1)).content == image
    r = client.post(f"/cases/{mine}/attachments", data={"csrf_token": csrf},
                    files={"file": ("notes.png", b"plain text", "image/png")})
    assert r.status_code == 422 and "file" in r.text


def test_report_form_and_hotline_upload(client: TestClient, loop: Loop) -> None:
    login(client, "dispatcher")
    form = client.get("/cases/new")
    assert form.status_code == 200 and 'name="class_code"' in form.text and "C0101" in form.text
    csrf = csrf_of(client, "/cases/new")
    r = client.post("/cases/new", data={"csrf_token": csrf, "title": "路灯不亮", "class_code": "C0102",
                                        "place": str(loop.a.building.id), "reporter_phone": "123"})
    assert r.status_code == 422 and "reporter_phone" in r.text and 'value="路灯不亮"' in r.text
    r = client.post("/cases/new", data={"csrf_token": csrf, "title": "路灯不亮", "class_code": "C0102",
                                        "place": str(loop.a.building.id), "dispatch": "1"}, follow_redirects=False)
    assert r.status_code == 303
    detail = client.get(r.headers["location"])
    assert 'data-stage="dispatched"' in detail.text and "城建中心" in detail.text
    r = client.post("/cases/import/hotline", data={"csrf_token": csrf},
                    files={"file": ("12345.xlsx", hotline_xlsx([GOOD_ROW]), "application/octet-stream")})
    assert r.status_code == 200 and 'data-hotline-created="1"' in r.text and "小区门口暴露垃圾" in r.text
    bad = list(GOOD_ROW)
    bad[0], bad[6] = "GD-P-2", "1"
    r = client.post("/cases/import/hotline", data={"csrf_token": csrf},
                    files={"file": ("12345.xlsx", hotline_xlsx([bad]), "application/octet-stream")})
    assert r.status_code == 422 and "联系电话" in r.text
