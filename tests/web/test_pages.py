"""The pages as a browser sees them: login, CSRF, security headers, the registry browser,
profiles with unmasking, import errors, language, and a guard against N+1 queries."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.models import AuditLog
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from tests.web.conftest import PASSWORD, Registry, csrf_of, login


def test_pages_need_login(client: TestClient) -> None:
    response = client.get("/registry/people?sex=F", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fregistry%2Fpeople%3Fsex%3DF"


def test_login_in_chinese_and_session_cookie(client: TestClient, admin: object) -> None:
    page = client.get("/login")
    assert "登录" in page.text and 'lang="zh-CN"' in page.text
    csrf = csrf_of(client)
    failed = client.post("/login", data={"username": "admin1", "password": "wrong-pass-1",
                                         "csrf_token": csrf})
    assert failed.status_code == 401 and "用户名或密码错误" in failed.text
    ok = client.post("/login", data={"username": "admin1", "password": PASSWORD, "csrf_token": csrf,
                                     "next": "/registry/people"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/registry/people"
    cookie = ok.headers["set-cookie"]
    assert "shequ_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = client.get("/")
    assert "欢迎，王管理" in home.text and "人口" in home.text


def test_login_never_redirects_off_site(client: TestClient, admin: object) -> None:
    csrf = csrf_of(client)
    response = client.post("/login", data={"username": "admin1", "password": PASSWORD,
                                           "csrf_token": csrf, "next": "//evil.example/x"},
                           follow_redirects=False)
    assert response.headers["location"] == "/"


def test_csrf_rejects_form_post_without_token(client: TestClient, admin: object) -> None:
    client.get("/login")  # the browser has a CSRF cookie …
    response = client.post("/login", data={"username": "admin1", "password": PASSWORD})
    assert response.status_code == 403 and "页面已过期" in response.text
    forged = client.post("/login", data={"username": "admin1", "password": PASSWORD,
                                         "csrf_token": "forged"})
    assert forged.status_code == 403
    assert "shequ_session" not in client.cookies


def test_logout_needs_csrf_and_revokes(browser: TestClient) -> None:
    assert browser.post("/logout").status_code == 403
    assert browser.get("/", follow_redirects=False).status_code == 200
    token = csrf_of(browser, "/")
    browser.post("/logout", data={"csrf_token": token})
    assert browser.get("/", follow_redirects=False).status_code == 303


def test_security_headers(client: TestClient) -> None:
    for path in ("/login", "/api/v1/health"):
        headers = client.get(path).headers
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
    page = client.get("/login").text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline script found"
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


def test_people_list_masked_filtered_and_partial(browser: TestClient, registry: Registry) -> None:
    page = browser.get("/registry/people")
    assert page.status_code == 200
    assert "共 4 条" in page.text and "导出台账 (XLSX)" in page.text
    for plain in list(registry.id_numbers.values()) + list(registry.phones.values()):
        assert plain not in page.text
    number = registry.id_numbers["赵敏"]
    assert number[:4] + "*" * 10 + number[-4:] in page.text
    assert "北街居委会" in page.text  # the place picker offers the committees
    committee = registry.north.committee.id
    partial = browser.get(f"/registry/people?place={committee}&tag=party_member",
                          headers={"HX-Request": "true"})
    assert "<html" not in partial.text and "共 1 条" in partial.text and "李秀英" in partial.text
    assert f"export.xlsx?place={committee}&amp;tag=party_member" in partial.text


def test_place_picker_cascades(browser: TestClient, registry: Registry) -> None:
    grid = browser.get(f"/places/picker?pick={registry.north.grid.id}").text
    assert "北街居委会" in grid and "南街居委会" not in grid
    assert f'name="place" value="{registry.north.grid.id}"' in grid
    compound = browser.get(f"/places/picker?pick={registry.north.compound.id}").text
    assert "12号" in compound  # the building level opens under the compound


def test_english_switch(browser: TestClient, registry: Registry) -> None:
    english = browser.get("/registry/people?lang=en")
    assert "shequ_lang=en" in english.headers["set-cookie"]
    assert "Export ledger (XLSX)" in english.text and "4 records" in english.text
    assert "female" in english.text  # enum labels follow the language
    assert "Export ledger" in browser.get("/registry/people").text  # the cookie remembers
    assert "导出台账" in browser.get("/registry/people?lang=zh-CN").text


def test_person_profile_and_unmask(browser: TestClient, session: Session, registry: Registry) -> None:
    person = registry.people["张建国"]
    page = browser.get(f"/registry/people/{person.id}")
    assert page.status_code == 200 and "张建国" in page.text
    assert "显示完整" in page.text and "变更记录" in page.text
    assert registry.id_numbers["张建国"] not in page.text
    token = csrf_of(browser, f"/registry/people/{person.id}")
    refused = browser.post(f"/registry/people/{person.id}/unmask",
                           data={"field": "id_number", "purpose": "", "csrf_token": token})
    assert refused.status_code == 422 and "用途" in refused.text
    shown = browser.post(f"/registry/people/{person.id}/unmask",
                         data={"field": "id_number", "purpose": "上门核实", "csrf_token": token})
    assert registry.id_numbers["张建国"] in shown.text
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "unmask")).one()
    assert audit.purpose == "上门核实"


def test_no_unmask_control_for_grid_worker(client: TestClient, session: Session,
                                          registry: Registry) -> None:
    iam.create_user(session=session, username="grid7", password=PASSWORD, role="grid_worker",
                    scope={"grids": [registry.south.grid.id]})
    login(client, "grid7")
    page = client.get(f"/registry/people/{registry.people['赵敏'].id}")
    assert page.status_code == 200 and "显示完整" not in page.text


def test_other_profiles_render(browser: TestClient, registry: Registry) -> None:
    building = browser.get(f"/registry/places/{registry.north.building.id}")
    assert building.status_code == 200 and "12号" in building.text
    assert browser.get("/registry/people/999999").status_code == 404


def test_import_page_shows_error_table(browser: TestClient, registry: Registry) -> None:
    token = csrf_of(browser, "/import")
    csv = "姓名,身份证号,性别\n孙二娘,110101199003077777,女\n".encode()
    response = browser.post("/import", data={"kind": "person", "source": "测试", "csrf_token": token},
                            files={"file": ("people.csv", csv, "text/csv")})
    assert response.status_code == 422
    assert "导入被拒绝，未做任何修改" in response.text
    table = response.text[response.text.index('id="import-errors"'):]
    assert "<td data-label=\"行号\">2</td>" in table and "身份证号" in table


def test_list_page_query_count_does_not_grow_with_rows(browser: TestClient, session: Session,
                                                       registry: Registry) -> None:
    for n in range(60):
        session.add(Person(name=f"居民{n:02d}", sex="M", residence_type="registered",
                           id_number=make_id_number("310112", registry.people["王磊"].birth_date, 300 + n),
                           place_id=registry.north.room.id))
    session.flush()
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        statements.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        page = browser.get("/registry/people?size=50")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert page.status_code == 200 and "共 64 条" in page.text
    assert len(statements) < 25, f"{len(statements)} statements for one page of 50"


def test_quality_page_links_to_records(browser: TestClient, session: Session, registry: Registry) -> None:
    session.add(Person(name="无址者", residence_type="registered"))
    session.flush()
    page = browser.get("/quality")
    assert page.status_code == 200 and "北街居委会" in page.text and "未落地" in page.text
    link = re.search(r'href="(/quality/person/place\?committee=0)"', page.text)
    assert link, "the unplaced figure links to its records"
    records = browser.get(link.group(1))
    assert records.status_code == 200 and "无址者" in records.text and "张建国" not in records.text
