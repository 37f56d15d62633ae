"""Test fixtures: a real database (SQLite file or PostgreSQL), migrated with Alembic, and a
session per test that rolls back, bound to a fresh tenant.

Choose the database with ``--db sqlite`` (default) or ``--db postgresql``; the URL of the
PostgreSQL server comes from SHEQU_TEST_PG_URL (default: local trust auth). Without a server
the PostgreSQL run skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default=os.environ.get("SHEQU_TEST_DB", "sqlite"),
                     choices=("sqlite", "postgresql"), help="database the suite runs on")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of one database's own mechanism run in that database's pass and are deselected
    (not skipped) in the other. The slow tests go first, then the browser tests: pytest-xdist
    hands out files in this order, so the long ones start early instead of ending the run on one
    busy worker while the other waits."""
    if config.getoption("--db") != "postgresql":
        keep = [item for item in items if item.get_closest_marker("postgresql") is None]
        if len(keep) != len(items):
            config.hook.pytest_deselected(items=[i for i in items if i not in keep])
            items[:] = keep

    def weight(item: pytest.Item) -> int:
        return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("e2e") else 2

    items.sort(key=weight)  # stable: the order within each group stays


def require_service(name: str, reason: str) -> None:
    """Skip when a service is missing, except in CI where a missing service is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} not available: {reason}")


@pytest.fixture(scope="session")
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session", autouse=True)
def _settings(tmp_path_factory: pytest.TempPathFactory, db_kind: str) -> Iterator[str]:
    """Point the settings at a private var dir and a private database for this run."""
    from shequ.config import get_settings
    from shequ.core.iam import crypto
    from shequ.core.iam import service as iam_service

    var = tmp_path_factory.mktemp("var")
    os.environ["SHEQU_ENV"] = "test"
    os.environ["SHEQU_VAR_DIR"] = str(var)
    os.environ.pop("SHEQU_KEY_FILE", None)
    # argon2 at a test cost: every user the suite creates or logs in hashes a password, and the
    # production cost (64 MiB, 3 passes: 0.16 s a hash here) would add minutes to the suite
    os.environ["SHEQU_ARGON2_TIME_COST"] = "1"
    os.environ["SHEQU_ARGON2_MEMORY_KIB"] = "1024"
    dropper = None
    if db_kind == "sqlite":
        url = f"sqlite:///{var / 'test.db'}"
    else:
        admin_url = os.environ.get("SHEQU_TEST_PG_URL", PG_DEFAULT)
        name = f"shequ_test_{uuid.uuid4().hex[:10]}"
        try:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
            require_service("PostgreSQL", str(exc).splitlines()[0])
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"

        def dropper() -> None:
            from shequ.core.notify.bus import stop_all
            from shequ.db import _engines

            stop_all()  # the LISTEN threads would keep knocking at the dropped database
            for engine in _engines.values():
                engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    os.environ["SHEQU_DATABASE_URL"] = url
    get_settings.cache_clear()
    crypto.keyring.cache_clear()
    iam_service._hasher.cache_clear()
    iam_service._dummy_hash.cache_clear()
    from shequ.core.migrate import upgrade

    upgrade()
    yield url
    if dropper:
        dropper()


@pytest.fixture(scope="session", autouse=True)
def _cases_in_step() -> Iterator[None]:
    """Tests take the loop's steps one by one: the case a rule asks for is opened when the test
    calls ``loop.open_pending_cases`` (a worker does it in a background thread right after the
    batch; the test of that timing turns the thread back on)."""
    from shequ.core.alarms import service

    service.background_cases = False
    yield
    service.background_cases = True


@pytest.fixture(scope="session")
def engine(_settings: str) -> Engine:
    from shequ.db import get_engine

    return get_engine()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test, bound to a new tenant."""
    from shequ.core.places.service import create_tenant
    from shequ.db import bind_context

    connection = engine.connect()
    outer = connection.begin()
    sess = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    bind_context(sess, tenant_id=None, actor="test")
    tenant = create_tenant(session=sess, code=f"T{uuid.uuid4().hex[:8]}", name="测试街道",
                           district="闵行区", city="上海市", centre=(121.4132, 31.0113))
    bind_context(sess, tenant_id=tenant.id, actor="test")
    sess.info["tenant"] = tenant
    try:
        yield sess
    finally:
        sess.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def tenant_id(session: Session) -> int:
    return int(session.info["tenant_id"])


@pytest.fixture
def var_dir(_settings: str) -> Path:
    from shequ.config import get_settings

    return get_settings().var_dir
