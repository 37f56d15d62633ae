"""Browser fixtures: the real app served by uvicorn on a free localhost port, against a database
seeded at small scale, and Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service

CHROMIUM = Path("/usr/bin/chromium")
TENANT = "E2E000001"
USER, PASSWORD = "e2e_admin", "jiangchuan2024"
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass
class Site:
    url: str
    tenant_id: int
    committee: str  # a committee name that has people
    tag: str  # a tag code that some people carry
    tag_name: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _populate() -> tuple[int, str, str, str]:
    """Seed the e2e tenant (helper A's seed when present, else a small factory dataset)."""
    from shequ.core.iam.service import create_user
    from shequ.core.places.service import create_tenant
    from shequ.core.registry.tags import add_tag, install_default_tags
    from shequ.db import session_scope

    try:
        from shequ.sim.seed import seed
    except ImportError:
        seed = None
    if seed is not None:
        report = seed(scale="small", seed=7, tenant_code=TENANT, progress=False, reset=True)
        tenant_id = report.tenant_id
    else:
        from shequ.core.registry.models import Person
        from shequ.core.registry.validators import make_id_number
        from tests.factories import place_tree

        with session_scope() as session:
            tenant_id = create_tenant(session=session, code=TENANT, name="江川路街道", district="闵行区",
                                      city="上海市").id
        with session_scope(tenant_id=tenant_id, actor="e2e") as session:
            install_default_tags(session=session)
            trees = [place_tree(session, tag="N", committee_name="北街居委会"),
                     place_tree(session, tag="S", lon=121.45, committee_name="南街居委会")]
            people = []
            for n in range(36):
                tree = trees[n % 2]
                birth = dt.date(1935 + n * 2, 1 + n % 12, 1 + n % 28)
                person = Person(name=f"{'张李王赵钱孙'[n % 6]}{'伟芳敏静磊军'[n // 6]}", sex="MF"[n % 2],
                                birth_date=birth, residence_type="registered",
                                id_number=make_id_number("310112", birth, 100 + n),
                                phone=f"1380000{n:04d}", place_id=(tree.room if n % 3 else tree.room2).id)
                session.add(person)
                people.append(person)
            session.flush()
            for person in people[::4]:
                add_tag(session=session, code="party_member", entity="person", entity_id=person.id, by="e2e")
    with session_scope(tenant_id=tenant_id, actor="e2e") as session:
        from sqlalchemy import func, select

        from shequ.core.places.models import Place
        from shequ.core.registry.models import Person, Tag, Tagging

        create_user(session=session, username=USER, password=PASSWORD, role="admin", display_name="测试管理员")
        committee = session.scalar(select(Place.name).join(Person, Person.committee_id == Place.id)
                                   .group_by(Place.name).order_by(func.count().desc()).limit(1))
        tag, name = session.execute(
            select(Tag.code, Tag.name).join(Tagging, Tagging.tag_id == Tag.id)
            .where(Tagging.entity == "person").group_by(Tag.code, Tag.name)
            .order_by(func.count().desc()).limit(1)).one()
    return tenant_id, committee, tag, name


@pytest.fixture(scope="session")
def site(_settings: str) -> Iterator[Site]:
    import uvicorn

    from shequ.web.app import create_app

    if not CHROMIUM.exists():
        require_service("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    tenant_id, committee, tag, tag_name = _populate()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(tenant_code=TENANT), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", tenant_id, committee, tag, tag_name)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def browser_page(chromium: Any, *, timeout_ms: int = 15000, **context_options: Any) -> Iterator[Any]:
    """A page in a fresh context (zh-CN unless told), collecting console errors and uncaught page
    errors in ``page.console_errors``."""
    context = chromium.new_context(**{"locale": "zh-CN", **context_options})
    pg = context.new_page()
    pg.set_default_timeout(timeout_ms)
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.console_errors = errors
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def page(chromium: Any, site: Site) -> Iterator[Any]:
    with browser_page(chromium, viewport={"width": 1280, "height": 900}) as pg:
        yield pg


@pytest.fixture
def phone(chromium: Any, site: Site) -> Iterator[Any]:
    """A phone: 390×844, touch, twice the pixels."""
    with browser_page(chromium, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                      device_scale_factor=2) as pg:
        yield pg


def log_in(page: Any, site: Site, username: str = USER, password: str = PASSWORD, *,
           lands_on: str = "/") -> None:
    """Sign in through the login form and wait for the page the role lands on."""
    page.goto(f"{site.url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}{lands_on}")
