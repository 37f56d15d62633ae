"""The registry pages in a real browser: log in, browse and filter people, open a profile,
import a file with a bad row, switch to English."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Site, log_in

pytestmark = pytest.mark.e2e


def total(page: Any) -> int:
    return int(page.locator(".total").get_attribute("data-total"))


def test_login_failure_then_success(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/")
    assert "/login" in page.url
    page.fill("input[name=username]", "e2e_admin")
    page.fill("input[name=password]", "wrong-password-1")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.locator(".alert.error").inner_text()
    log_in(page, site)
    assert "欢迎" in page.locator("h1").inner_text()


def test_browse_filter_and_profile(page: Any, site: Site) -> None:
    log_in(page, site)
    page.click("text=主题数库")
    page.wait_for_url(re.compile(r".*/registry/people"))
    everyone = total(page)
    assert everyone > 0
    masked = page.locator("td.col-id_number").first.inner_text()
    assert re.fullmatch(r"\d{4}\*{10}[\dX]{4}", masked), masked
    page.screenshot(path="/tmp/shequ-people.png", full_page=False)

    # committee: pick its grid first, then the committee (cascading picker via htmx)
    committee_option = page.locator("select[data-level=grid] option").all()
    for option in committee_option[1:]:
        page.select_option("select[data-level=grid]", value=option.get_attribute("value"))
        page.wait_for_selector("select[data-level=committee]")
        if page.locator(f"select[data-level=committee] option:text-is('{site.committee}')").count():
            break
    # the list shown is the committee's own, not a late answer to the grid's selection
    committee_id = page.locator(f"select[data-level=committee] option:text-is('{site.committee}')").get_attribute("value")
    with page.expect_response(lambda r: "/registry/people?" in r.url and f"place={committee_id}" in r.url):
        page.select_option("select[data-level=committee]", label=site.committee)
    page.wait_for_url(re.compile(f".*[?&]place={committee_id}(&|$)"))  # the URL carries the filter: a link can be shared
    expect(page.locator(".total")).not_to_have_attribute("data-total", str(everyone), timeout=30_000)
    in_committee = total(page)
    assert 0 < in_committee < everyone

    with page.expect_response(lambda r: "tag=" in r.url):
        page.select_option("select[name=tag]", value=site.tag)
    expect(page.locator(".total")).not_to_have_attribute("data-total", str(in_committee), timeout=30_000)
    tagged = total(page)
    assert 0 < tagged < in_committee
    page.wait_for_url(re.compile(f".*tag={site.tag}"))
    assert "sex=" not in page.url  # filters not in use stay out of the link
    assert page.locator("td.col-tags .chip", has_text=site.tag_name).count() == page.locator("tbody tr").count()

    # a shared link opens the same list
    shared = page.url
    page.goto(shared)
    assert total(page) == tagged

    name = page.locator("tbody tr td.col-name a").first.inner_text()
    page.locator("tbody tr td.col-name a").first.click()
    page.wait_for_url(re.compile(r".*/registry/people/\d+$"))
    assert name in page.locator("h1").inner_text()
    assert page.locator("#history").is_visible()
    # unmask with a purpose
    page.click("text=显示完整 · 身份证号")
    page.fill("#unmask-id_number input[name=purpose]", "电话回访核实身份")
    page.click("#unmask-id_number button[type=submit]")
    page.wait_for_selector("#unmask-id_number-value .unmasked")
    assert re.search(r"\d{17}[\dX]", page.locator("#unmask-id_number-value").inner_text())
    assert page.console_errors == []


def test_import_with_bad_row_shows_report(page: Any, site: Site, tmp_path: Any) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/import")
    bad = tmp_path / "people.csv"
    bad.write_text("姓名,身份证号,性别\n孙二娘,110101199003077777,女\n", encoding="utf-8")
    page.select_option("select[name=kind]", value="person")
    page.set_input_files("input[name=file]", str(bad))
    page.fill("input[name=source]", "测试导入")
    page.click("text=上传并导入")
    report = page.locator("#import-errors")
    report.wait_for()
    assert "导入被拒绝" in report.inner_text()
    first = report.locator("tbody tr").first
    assert first.locator("td").nth(0).inner_text() == "2"
    assert first.locator("td").nth(1).inner_text() == "身份证号"


def test_switch_to_english(page: Any, site: Site) -> None:
    log_in(page, site)
    page.goto(f"{site.url}/registry/people")
    page.click("a.lang")
    page.wait_for_url(re.compile(r".*lang=en"))
    assert "Export ledger (XLSX)" in page.content()
    assert page.locator("html").get_attribute("lang") == "en"
    page.click("text=Home")
    assert "Welcome" in page.locator("h1").inner_text()
