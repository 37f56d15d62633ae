"""The case API as its users meet it: a dispatcher, department staff, a grid worker and committee
staff take cases through the workflow; refusals, scopes, attachments and the 12345 import."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.cases import service
from shequ.core.cases.models import Case
from shequ.core.iam import service as iam
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from shequ.db import bind_context
from tests.factories import Tree, place_tree, png
from tests.web.conftest import PASSWORD

API = "/api/v1"


@dataclass
class Loop:
    """Two committees in two grids (A and B) and one user of each role that works cases."""

    a: Tree
    b: Tree
    headers: dict[str, dict[str, str]]
    user_ids: dict[str, int]


USERS: dict[str, tuple[str, Any]] = {
    # name: (role, scope; areas are filled in below)
    "dispatcher": ("dispatcher", {"department": "城运中心"}),
    "chengjian": ("department", {"department": "城建中心"}),
    "anjian": ("department", {"department": "安监所"}),
    "grid_a": ("grid_worker", "grid"),
    "committee_a": ("committee", "committee"),
    "leader": ("leader", {}),
    "resident": ("resident", "person"),
}


def build_loop(session: Session) -> Loop:
    a = place_tree(session, tag="A", committee_name="北街居委会")
    b = place_tree(session, tag="B", lon=121.45, committee_name="南街居委会", lane="300")
    person = Person(name="居民甲", sex="F", birth_date=dt.date(1970, 1, 1), residence_type="registered",
                    id_number=make_id_number("310112", dt.date(1970, 1, 1), 101), place_id=a.room.id)
    session.add(person)
    session.flush()
    headers: dict[str, dict[str, str]] = {}
    ids: dict[str, int] = {}
    for name, (role, scope) in USERS.items():
        if scope == "person":
            scope = {"person_id": person.id}
        elif scope == "grid":
            scope = {"grids": [a.grid.id]}
        elif scope == "committee":
            scope = {"committees": [a.committee.id]}
        user = iam.create_user(session=session, username=name, password=PASSWORD, role=role,
                               display_name=name, scope=scope)
        headers[name] = {"Authorization": f"Bearer {iam.create_api_token(session=session, user=user, days=1)}"}
        ids[name] = user.id
    return Loop(a, b, headers, ids)


@pytest.fixture
def loop(session: Session) -> Loop:
    return build_loop(session)


def _unscoped(session: Session) -> Session:
    """The test's own reads see the whole tenant again (the last request bound its user's scope)."""
    return bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=None)


def report(client: TestClient, loop: Loop, who: str = "dispatcher", **body: Any) -> dict[str, Any]:
    payload = {"title": "井盖缺失", "class_code": "C0101", "place_id": loop.a.building.id, **body}
    r = client.post(f"{API}/cases", json=payload, headers=loop.headers[who])
    assert r.status_code == 201, r.text
    return dict(r.json())


def act(client: TestClient, loop: Loop, who: str, case_id: int, action: str, expect: int = 200,
        **body: Any) -> dict[str, Any]:
    r = client.post(f"{API}/cases/{case_id}/actions/{action}", json=body, headers=loop.headers[who])
    assert r.status_code == expect, r.text
    return dict(r.json())


# --- the workflow --------------------------------------------------------------------------------

def test_every_stage_through_the_api(client: TestClient, loop: Loop) -> None:
    case = report(client, loop, "grid_a", title="鹤庆路井盖缺失", reporter_phone="139 1234 5678")
    assert case["stage"] == "reported" and case["source"] == "patrol"
    assert case["grid_id"] == loop.a.grid.id and case["committee_id"] == loop.a.committee.id
    assert case["reporter_phone_mask"] and "5678" in case["reporter_phone_mask"]
    assert "13912345678" not in str(case)
    # the grid worker may comment on it but neither register nor dispatch it
    assert case["allowed_actions"] == ["comment"]
    cid = case["id"]
    assert act(client, loop, "dispatcher", cid, "register")["stage"] == "registered"
    dispatched = act(client, loop, "dispatcher", cid, "dispatch")
    assert dispatched["stage"] == "dispatched" and dispatched["department"] == "城建中心"
    assert dispatched["due_at"] is not None
    # department staff of 城建中心 handle it; the dispatcher's view offers handling too
    assert "handle" in client.get(f"{API}/cases/{cid}", headers=loop.headers["chengjian"]).json()["allowed_actions"]
    assert act(client, loop, "chengjian", cid, "handle", note="已更换井盖")["stage"] == "handled"
    assert act(client, loop, "chengjian", cid, "feed_back", note="照片见附件")["stage"] == "fed_back"
    assert act(client, loop, "grid_a", cid, "verify", note="现场核实")["stage"] == "verified"
    assert act(client, loop, "dispatcher", cid, "close")["stage"] == "closed"
    done = act(client, loop, "grid_a", cid, "evaluate", satisfaction=5, note="很快")  # the reporter
    assert done["stage"] == "evaluated" and done["satisfaction"] == 5
    steps = [s["action"] for s in done["timeline"]]
    assert steps == ["report", "register", "dispatch", "handle", "feed_back", "verify", "close", "evaluate"]
    assert [s["actor"] for s in done["timeline"]][3:5] == ["chengjian", "chengjian"]


def test_dispatcher_reports_and_dispatches_at_once_with_a_chosen_source(client: TestClient, loop: Loop) -> None:
    case = report(client, loop, "dispatcher", class_code="E0602", source="hotline", dispatch=True)
    assert case["stage"] == "dispatched" and case["source"] == "hotline" and case["department"] == "安监所"
    # others may neither choose the source nor dispatch
    r = client.post(f"{API}/cases", json={"title": "x", "class_code": "E0602", "place_id": loop.a.building.id,
                                          "source": "hotline"}, headers=loop.headers["grid_a"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "source"
    r = client.post(f"{API}/cases", json={"title": "x", "class_code": "E0602", "place_id": loop.a.building.id,
                                          "dispatch": True}, headers=loop.headers["grid_a"])
    assert r.status_code == 403
    dept = report(client, loop, "chengjian", class_code="C0102")
    assert dept["source"] == "department"


def test_report_checks_phone_class_and_place(client: TestClient, loop: Loop) -> None:
    bad = {"title": "路灯不亮", "class_code": "C0102", "place_id": loop.a.building.id}
    cases = [({"reporter_phone": "12345"}, "reporter_phone"), ({"class_code": "X9999"}, "class_code"),
             ({"place_id": 2_000_000_000}, "place_id"), ({"title": ""}, "title"),
             ({"place_id": None, "lon": 121.41}, "lat")]
    for change, field in cases:
        r = client.post(f"{API}/cases", json={**bad, **change}, headers=loop.headers["dispatcher"])
        assert r.status_code == 422, (change, r.text)
        assert r.json()["errors"][0]["field"] == field, r.text
    # a committee user reports within their committee only
    r = client.post(f"{API}/cases", json={**bad, "place_id": loop.b.building.id}, headers=loop.headers["committee_a"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "place_id"


def test_a_point_is_located_to_grid_committee_and_compound(client: TestClient, loop: Loop) -> None:
    case = report(client, loop, "grid_a", place_id=None, lon=121.4015, lat=31.0015)
    assert case["place_id"] == loop.a.compound.id
    assert (case["grid_id"], case["committee_id"]) == (loop.a.grid.id, loop.a.committee.id)
    assert case["lon"] == pytest.approx(121.4015)


def test_rework_extension_and_co_handling(client: TestClient, loop: Loop, session: Session) -> None:
    cid = report(client, loop, class_code="C0101", dispatch=True)["id"]
    before = act(client, loop, "chengjian", cid, "handle")
    act(client, loop, "chengjian", cid, "feed_back")
    back = act(client, loop, "dispatcher", cid, "rework", note="井盖未固定")
    assert back["stage"] == "dispatched" and back["rework_count"] == 1
    # extension: the deadline moves by working hours; a reason is required
    assert act(client, loop, "dispatcher", cid, "extend", expect=422, hours=8)["errors"][0]["field"] == "note"
    assert act(client, loop, "dispatcher", cid, "extend", expect=422, hours=0, note="x")["errors"][0]["field"] == "hours"
    old_due = dt.datetime.fromisoformat(back["due_at"])
    extended = act(client, loop, "dispatcher", cid, "extend", hours=8, note="等待配件")
    cal = service.work_calendar(session=_unscoped(session))
    assert dt.datetime.fromisoformat(extended["due_at"]) == cal.add(old_due, 8)
    assert extended["extension_count"] == 1
    # co-handling: 安监所 joins and may now handle; a department not named may not
    assert act(client, loop, "anjian", cid, "handle", expect=403)
    co = act(client, loop, "dispatcher", cid, "co_handle", departments=["安监所"])
    assert co["co_departments"] == ["安监所"]
    assert act(client, loop, "anjian", cid, "handle", note="联合处置")["stage"] == "handled"
    assert act(client, loop, "dispatcher", cid, "co_handle", expect=422, departments=["不存在的部门"])[
        "errors"][0]["field"] == "departments"
    assert before["handled_on_time"] is True


def test_suspension_supervision_and_void(client: TestClient, loop: Loop) -> None:
    cid = report(client, loop, dispatch=True)["id"]
    suspended = act(client, loop, "dispatcher", cid, "suspend", note="等待产权单位确认")
    assert suspended["suspended"] is True and "resume" in suspended["allowed_actions"]
    assert "handle" not in suspended["allowed_actions"]
    # a suspended case is not handled until it is resumed
    err = act(client, loop, "chengjian", cid, "handle", expect=422)
    assert err["errors"][0]["field"] == "action"
    assert act(client, loop, "dispatcher", cid, "supervise", note="街道督办")["supervised"] is True
    resumed = act(client, loop, "dispatcher", cid, "resume")
    assert resumed["suspended"] is False and resumed["stage_due_at"] is not None
    other = report(client, loop, "grid_a", title="重复上报")["id"]
    voided = act(client, loop, "dispatcher", other, "void", note="重复")
    assert voided["stage"] == "void" and voided["allowed_actions"] == ["comment"]


def test_illegal_actions_are_422_and_refusals_403(client: TestClient, loop: Loop) -> None:
    cid = report(client, loop)["id"]
    r = act(client, loop, "dispatcher", cid, "close", expect=422)
    assert r["errors"][0]["field"] == "action" and "reported" in r["detail"]
    assert act(client, loop, "dispatcher", cid, "fly", expect=422)["errors"][0]["field"] == "action"
    assert act(client, loop, "dispatcher", cid, "comment", expect=422)["errors"][0]["field"] == "note"
    assert act(client, loop, "dispatcher", cid, "assign", expect=422, assignee_id=2_000_000)[
        "errors"][0]["field"] == "assignee_id"
    # who may not: grid worker registers, leader handles, department staff of another department handle
    act(client, loop, "grid_a", cid, "register", expect=403)
    act(client, loop, "dispatcher", cid, "register")
    act(client, loop, "dispatcher", cid, "dispatch")
    act(client, loop, "leader", cid, "handle", expect=403)
    act(client, loop, "anjian", cid, "handle", expect=403)
    act(client, loop, "committee_a", cid, "close", expect=403)
    assert act(client, loop, "dispatcher", cid, "assign", assignee_id=loop.user_ids["chengjian"])[
        "assignee_id"] == loop.user_ids["chengjian"]
    # the leader reads but is offered only what it may do
    seen = client.get(f"{API}/cases/{cid}", headers=loop.headers["leader"]).json()
    assert "handle" not in seen["allowed_actions"] and "supervise" in seen["allowed_actions"]
    # a resident may report but not read cases
    assert client.get(f"{API}/cases/{cid}", headers=loop.headers["resident"]).status_code == 404


def test_scope_committee_a_never_sees_committee_b(client: TestClient, loop: Loop) -> None:
    mine = report(client, loop, title="北街井盖")["id"]
    theirs = report(client, loop, title="南街井盖", place_id=loop.b.building.id)["id"]
    h = loop.headers["committee_a"]
    assert client.get(f"{API}/cases/{theirs}", headers=h).status_code == 404
    assert client.post(f"{API}/cases/{theirs}/actions/comment", json={"note": "x"}, headers=h).status_code == 404
    assert client.get(f"{API}/cases/{theirs}/attachments/1", headers=h).status_code == 404
    listed = client.get(f"{API}/cases", headers=h).json()
    assert [c["id"] for c in listed["items"]] == [mine] and listed["total"] == 1
    assert "南街" not in str(listed)
    assert client.get(f"{API}/cases", params={"q": "南街"}, headers=h).json()["total"] == 0
    # the dispatcher sees both
    assert client.get(f"{API}/cases", headers=loop.headers["dispatcher"]).json()["total"] == 2


def test_list_filters_and_the_department_view(client: TestClient, loop: Loop, session: Session) -> None:
    light = report(client, loop, title="路灯不亮", class_code="C0102", dispatch=True)["id"]
    hazard = report(client, loop, title="楼道堆物隐患", class_code="E0602", dispatch=True,
                    place_id=loop.b.building.id)["id"]
    fresh = report(client, loop, title="新上报", class_code="E0503")["id"]
    h = loop.headers["dispatcher"]

    def ids(**params: Any) -> list[int]:
        r = client.get(f"{API}/cases", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["items"]]

    assert set(ids()) == {light, hazard, fresh}
    assert ids(stage="reported") == [fresh]
    assert ids(class_code="C01") == [light]
    assert ids(department="安监所") == [hazard]
    assert ids(grid_id=loop.b.grid.id) == [hazard]
    assert ids(committee_id=loop.a.committee.id, stage="dispatched") == [light]
    assert ids(q="路灯") == [light]
    assert ids(source="patrol", size=1, page=3) == [light]  # newest first
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    assert len(ids(reported_from=today.isoformat(), reported_to=today.isoformat())) == 3
    assert ids(reported_to=(today - dt.timedelta(days=1)).isoformat()) == []
    for params, field in (({"stage": "bogus"}, "stage"), ({"reported_from": "yesterday"}, "reported_from"),
                          ({"size": 100_000}, "size")):
        r = client.get(f"{API}/cases", params=params, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    # department staff see their department's and co-handled cases only
    assert [c["id"] for c in client.get(f"{API}/cases", headers=loop.headers["chengjian"]).json()["items"]] == [light]
    act(client, loop, "dispatcher", light, "co_handle", departments=["安监所"])
    seen = {c["id"] for c in client.get(f"{API}/cases", headers=loop.headers["anjian"]).json()["items"]}
    assert seen == {light, hazard}
    # overdue: a case dispatched long ago is past its deadline
    s = _unscoped(session)
    old = service.open_case(session=s, title="旧案", class_code="C0102", source="patrol", actor="t",
                            place_id=loop.a.building.id, dispatch=True,
                            now=dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC))
    s.flush()
    over = client.get(f"{API}/cases", params={"overdue": "true"}, headers=h).json()
    assert [c["id"] for c in over["items"]] == [old.id] and over["items"][0]["overdue"] is True


def test_case_classes_for_forms(client: TestClient, loop: Loop) -> None:
    staff = client.get(f"{API}/case-classes", headers=loop.headers["grid_a"]).json()["items"]
    assert {"C0101", "E0503", "E0699"} <= {c["code"] for c in staff}
    well = next(c for c in staff if c["code"] == "C0101")
    assert well["department"] == "城建中心" and well["handle_hours"] == 8
    public = client.get(f"{API}/case-classes", headers=loop.headers["resident"]).json()["items"]
    assert public and all(c["public"] for c in public)


# --- attachments ---------------------------------------------------------------------------------



def test_attachment_round_trip_and_type_check(client: TestClient, loop: Loop, session: Session,
                                              var_dir: Any) -> None:
    cid = report(client, loop, dispatch=True)["id"]
    image = png()
    h = loop.headers["chengjian"]
    r = client.post(f"{API}/cases/{cid}/attachments", files={"file": ("井盖.png", image, "image/png")},
                    data={"note": "处置前照片"}, headers=h)
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["content_type"] == "image/png" and meta["size"] == len(image) and meta["step_id"]
    stored = var_dir / "files" / meta["sha256"][:2] / meta["sha256"]
    assert stored.read_bytes() == image
    got = client.get(meta["url"], headers=loop.headers["committee_a"])
    assert got.status_code == 200 and got.content == image
    assert got.headers["content-type"] == "image/png"
    detail = client.get(f"{API}/cases/{cid}", headers=h).json()
    assert [a["id"] for a in detail["attachments"]] == [meta["id"]]
    assert detail["timeline"][-1]["action"] == "comment" and detail["timeline"][-1]["note"] == "处置前照片"
    # a text file named .png is refused by its bytes; so is a PDF header lie the other way round
    r = client.post(f"{API}/cases/{cid}/attachments", files={"file": ("photo.png", b"just text", "image/png")},
                    headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    r = client.post(f"{API}/cases/{cid}/attachments", files={"file": ("report.png", pdf, "image/png")}, headers=h)
    assert r.status_code == 201 and r.json()["content_type"] == "application/pdf"
    assert r.json()["name"].endswith(".pdf")
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (10 * 1024 * 1024)
    r = client.post(f"{API}/cases/{cid}/attachments", files={"file": ("big.png", big, "image/png")}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    assert client.get(f"{API}/cases/{cid}/attachments/{meta['id'] + 99}", headers=h).status_code == 404
    # a role that may only read cases may not attach
    iam.set_role_permissions(session=_unscoped(session), role="leader", permissions=[iam.CASE_READ])
    try:
        r = client.post(f"{API}/cases/{cid}/attachments", files={"file": ("a.png", image, "image/png")},
                        headers=loop.headers["leader"])
        assert r.status_code == 403
    finally:  # the permission cache outlives the rolled-back test; a later tenant may get this id
        iam._permission_cache.pop(session.info["tenant_id"], None)


# --- the 12345 hotline ---------------------------------------------------------------------------

HEADER = ["工单编号", "来电时间", "诉求类别", "诉求内容", "地址", "联系人", "联系电话", "办理时限"]


def hotline_xlsx(rows: list[list[Any]], *, title: bool = True) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    if title:
        sheet.append(["12345 市民服务热线工单导出"])
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


GOOD = [
    ["GD202611270001", dt.datetime(2026, 11, 27, 9, 5), "噪音扰民", "楼下夜间施工噪音", "鹤庆路258弄12号", "张先生",
     "13912340001", dt.datetime(2026, 11, 30, 17, 0)],
    ["GD202611270002", "2026-11-27 10:30", "井盖", "人行道井盖松动", "不存在路1号", "李女士", "021-64301234", None],
    ["GD202611270003", "2026/11/27 11:00", "其他类", "楼道灯坏了", "", "", "", "2026-12-01"],
]


def _import(client: TestClient, loop: Loop, data: bytes, who: str = "dispatcher",
            name: str = "12345.xlsx") -> Any:
    return client.post(f"{API}/cases/import/hotline", files={"file": (name, data, "application/octet-stream")},
                       headers=loop.headers[who])


def test_hotline_import_registers_routed_cases_once(client: TestClient, loop: Loop, session: Session) -> None:
    r = _import(client, loop, hotline_xlsx(GOOD))
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["created"] == 3 and result["already_imported"] == []
    by_order = {c["order_no"]: c for c in result["cases"]}
    assert by_order["GD202611270001"]["class_code"] == "E0503"
    assert by_order["GD202611270001"]["department"] == "城运中心"
    assert by_order["GD202611270002"]["class_code"] == "C0101"
    assert by_order["GD202611270002"]["department"] == "城建中心"
    assert by_order["GD202611270003"]["class_code"] == "E0699"
    assert by_order["GD202611270001"]["place_id"] == loop.a.building.id
    assert by_order["GD202611270002"]["place_id"] is None  # unresolved: kept with its address text
    h = loop.headers["dispatcher"]
    noise = client.get(f"{API}/cases/{by_order['GD202611270001']['case_id']}", headers=h).json()
    assert noise["stage"] == "registered" and noise["source"] == "hotline"
    assert noise["source_ref"] == "GD202611270001" and noise["committee_id"] == loop.a.committee.id
    assert noise["reported_at"].startswith("2026-11-27T01:05")  # 09:05 Shanghai
    assert noise["reporter_phone_mask"] and "13912340001" not in str(noise)
    well = client.get(f"{API}/cases/{by_order['GD202611270002']['case_id']}", headers=h).json()
    assert well["address_text"] == "不存在路1号" and well["place_id"] is None
    # the same file again: nothing new
    again = _import(client, loop, hotline_xlsx(GOOD)).json()
    assert again["created"] == 0 and sorted(again["already_imported"]) == [r[0] for r in GOOD]
    s = _unscoped(session)
    assert s.scalar(select(func.count(Case.id)).where(Case.source == "hotline")) == 3


def test_hotline_bad_row_rejects_the_whole_file(client: TestClient, loop: Loop, session: Session) -> None:
    rows = [list(r) for r in GOOD]
    rows[2][6] = "12345"  # sheet row 4 with the title line: data row 3
    r = _import(client, loop, hotline_xlsx(rows, title=False))
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert errors == [{"row": 4, "column": "联系电话", "value": "12345", "reason": errors[0]["reason"]}]
    s = _unscoped(session)
    assert s.scalar(select(func.count(Case.id))) == 0
    # CSV too; missing 工单编号 and a bad time are named with their rows
    csv = ("工单编号,来电时间,诉求类别,诉求内容,地址,联系人,联系电话\n"
           "GD1,2026-11-27 09:00,垃圾,暴露垃圾,,,\n"
           ",2026-11-27 09:00,垃圾,暴露垃圾,,,\n"
           "GD3,昨天,垃圾,暴露垃圾,,,\n").encode()
    r = _import(client, loop, csv, name="12345.csv")
    assert r.status_code == 422
    assert {(e["row"], e["column"]) for e in r.json()["errors"]} == {(3, "工单编号"), (4, "来电时间")}
    assert s.scalar(select(func.count(Case.id))) == 0
    # a file without the columns, and a user who may not dispatch
    assert _import(client, loop, b"a,b\n1,2\n", name="x.csv").status_code == 422
    assert _import(client, loop, hotline_xlsx(GOOD), who="grid_a").status_code == 403


def test_a_routing_rule_sends_a_class_elsewhere_and_the_catalog_is_editable(client: TestClient, loop: Loop) -> None:
    auth, tree = loop.headers["dispatcher"], loop.a
    bad = client.post("/api/v1/routing-rules", headers=auth, json={"department": "火星办"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "department"
    nothing = client.post("/api/v1/routing-rules", headers=auth, json={"department": "安监所"})
    assert nothing.status_code == 422 and nothing.json()["errors"][0]["field"] == "class_prefix"
    rule = client.post("/api/v1/routing-rules", headers=auth, json={
        "department": "安监所", "class_prefix": "E05", "area_ids": [tree.committee.id]})
    assert rule.status_code == 201, rule.text
    routed = client.post("/api/v1/cases", headers=auth, json={
        "title": "占道经营", "class_code": "E0501", "place_id": tree.building.id, "dispatch": True}).json()
    assert routed["department"] == "安监所"  # the rule, not the class's 城运中心
    other = client.post("/api/v1/cases", headers=auth, json={
        "title": "井盖缺失", "class_code": "C0101", "place_id": tree.building.id, "dispatch": True}).json()
    assert other["department"] == "城建中心"  # no rule matches: the class decides
    patched = client.patch("/api/v1/case-classes/C0101", headers=auth, json={"department": "城运中心",
                                                                              "handle_hours": 4})
    assert patched.status_code == 200 and patched.json()["handle_hours"] == 4
    third = client.post("/api/v1/cases", headers=auth, json={
        "title": "井盖缺失", "class_code": "C0101", "place_id": tree.building.id, "dispatch": True}).json()
    assert third["department"] == "城运中心"
    assert client.delete(f"/api/v1/routing-rules/{rule.json()['id']}", headers=auth).status_code == 204
    assert client.get("/api/v1/routing-rules", headers=auth).json()["items"] == []
