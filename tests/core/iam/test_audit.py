"""The audit log: every write recorded (who, what, when, from where), no double rows for what
is already logged, append-only on the database itself, search."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from shequ.core.iam import audit
from shequ.core.iam import service as iam
from shequ.core.iam.models import AuditLog
from shequ.core.places.models import Tenant
from shequ.core.places.service import create_tenant
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from shequ.db import session_scope
from tests.factories import place_tree

PASSWORD = "jiangchuan2024"


def _rows(session: Session, **where: str) -> list[AuditLog]:
    stmt = select(AuditLog).order_by(AuditLog.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(AuditLog, key) == value)
    return list(session.scalars(stmt))


def _person(session: Session, name: str, seq: int, place_id: int | None = None) -> Person:
    person = Person(name=name, sex="F", birth_date=dt.date(1960, 1, 1), residence_type="registered",
                    id_number=make_id_number("310112", dt.date(1960, 1, 1), seq),
                    phone=f"1381234{seq:04d}", place_id=place_id)
    session.add(person)
    return person


def test_create_update_delete_are_each_audited_with_actor_ids_and_fields(session: Session) -> None:
    tree = place_tree(session)
    session.info["actor"] = "wang.li"
    person = _person(session, "陈红", 1, tree.room.id)
    session.flush()
    [created] = _rows(session, action="create", target=f"person:{person.id}")
    assert created.actor == "wang.li" and created.ip == ""
    assert created.detail == {"entity": "person", "count": 1, "ids": [person.id]}

    person.phone = "13900000000"
    session.flush()
    [updated] = _rows(session, action="update", target=f"person:{person.id}")
    assert "phone" in updated.detail["fields"] and "updated_at" not in updated.detail["fields"]
    assert "13900000000" not in str(updated.detail)  # names of columns, never their values

    session.delete(person)
    session.flush()
    assert len(_rows(session, action="delete", target=f"person:{person.id}")) == 1


def test_one_row_per_flush_and_table_with_ids_capped(session: Session) -> None:
    tree = place_tree(session)
    people = [_person(session, f"居民{i}", i, tree.room.id) for i in range(1, 61)]
    session.flush()
    [row] = [r for r in _rows(session, action="create") if r.detail["entity"] == "person"]
    assert row.target == "person" and row.detail["count"] == 60
    assert row.detail["ids"] == sorted(p.id for p in people)[:audit.ID_CAP]


def test_the_client_address_of_the_request_is_recorded(session: Session) -> None:
    with audit.client_address("10.2.3.4"):
        _person(session, "李明", 2)
        session.flush()
        iam.audit(session=session, actor="x", action="export", target="person")
    assert {r.ip for r in _rows(session)} - {""} == {"10.2.3.4"}
    assert [r.ip for r in _rows(session, action="export")] == ["10.2.3.4"]


def test_login_and_its_session_are_not_logged_twice(session: Session) -> None:
    user = iam.create_user(session=session, username="li", password=PASSWORD, role="leader")
    before = len(_rows(session))
    assert iam.authenticate(session=session, username="li", password="wrong-pass-1", ip="10.0.0.1") is None
    found = iam.authenticate(session=session, username="li", password=PASSWORD, ip="10.0.0.1")
    assert found is user
    iam.start_session(session=session, user=user, ip="10.0.0.1")
    assert [r.action for r in _rows(session)[before:]] == ["login_failed", "login"]
    iam.create_api_token(session=session, user=user, name="report", days=1)
    assert _rows(session)[-1].target.startswith("api_token:")  # a new credential is a write


def test_an_update_or_delete_of_an_audit_row_is_refused_by_the_database(session: Session) -> None:
    row = iam.audit(session=session, actor="li", action="export", target="person")
    for statement in (update(AuditLog).where(AuditLog.id == row.id).values(actor="someone else"),
                      delete(AuditLog).where(AuditLog.id == row.id)):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(statement)
    session.expire_all()
    assert session.scalar(select(AuditLog.actor).where(AuditLog.id == row.id)) == "li"


def test_raw_sql_cannot_change_the_log_either(engine: Engine, session: Session) -> None:
    row = iam.audit(session=session, actor="li", action="export", target="person")
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("UPDATE audit_log SET purpose = 'x' WHERE id = :id"), {"id": row.id})


def test_deleting_the_tenant_removes_its_audit_log(session: Session) -> None:
    tenant_id = session.info["tenant_id"]
    iam.audit(session=session, actor="li", action="export", target="person")
    _person(session, "王芳", 3)
    session.flush()
    assert len(_rows(session)) >= 2
    session.execute(delete(Tenant).where(Tenant.id == tenant_id))
    left = session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.tenant_id == tenant_id),
                          execution_options={"all_tenants": True})
    assert left == 0


def test_a_committed_tenant_is_deleted_with_its_audit_log(engine: Engine) -> None:
    code = f"A{uuid.uuid4().hex[:8]}"
    with session_scope(engine=engine, actor="test") as s:
        tenant_id = create_tenant(session=s, code=code, name="审计测试街道").id
    with session_scope(tenant_id=tenant_id, engine=engine, actor="test") as s:
        iam.audit(session=s, actor="li", action="export", target="person")
    with engine.begin() as conn:
        assert conn.scalar(select(func.count()).select_from(AuditLog)
                           .where(AuditLog.tenant_id == tenant_id)) >= 2  # tenant created, export
        with pytest.raises(DBAPIError, match="append-only"), conn.begin_nested():
            conn.execute(delete(AuditLog).where(AuditLog.tenant_id == tenant_id))
        conn.execute(delete(Tenant).where(Tenant.id == tenant_id))
        assert conn.scalar(select(func.count()).select_from(AuditLog)
                           .where(AuditLog.tenant_id == tenant_id)) == 0


def test_cli_writes_name_the_cli_and_no_address(engine: Engine) -> None:
    from shequ.cli import app

    code = f"C{uuid.uuid4().hex[:8]}"
    with session_scope(engine=engine, actor="test") as s:
        tenant_id = create_tenant(session=s, code=code, name="命令行街道").id
    try:
        result = CliRunner().invoke(app, ["user", "create", "zhou", "--role", "leader",
                                          "--password", PASSWORD, "--tenant", code])
        assert result.exit_code == 0, result.output
        with session_scope(tenant_id=tenant_id, engine=engine) as s:
            rows = [r for r in _rows(s) if r.detail.get("entity") == "app_user"]
            assert [(r.action, r.actor, r.ip) for r in rows] == [("create", "cli:user", "")]
    finally:
        with engine.begin() as conn:
            conn.execute(delete(Tenant).where(Tenant.id == tenant_id))


def test_search_filters_and_orders_newest_first(session: Session) -> None:
    t0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    rows = [
        {"actor": "li", "action": "export", "target": "person", "ip": "10.0.0.1", "at": t0},
        {"actor": "li", "action": "unmask", "target": "person:17", "ip": "10.0.0.2",
         "at": t0 + dt.timedelta(hours=1), "purpose": "核实低保"},
        {"actor": "wang", "action": "login", "target": "user:3", "ip": "10.0.0.1",
         "at": t0 + dt.timedelta(hours=2)},
    ]
    tenant_id = session.info["tenant_id"]
    session.execute(insert(AuditLog), [{"tenant_id": tenant_id, "detail": {}, **r} for r in rows])
    other = create_tenant(session=session, code=f"O{uuid.uuid4().hex[:6]}", name="别的街道")
    session.execute(insert(AuditLog), [{"tenant_id": other.id, "actor": "li", "action": "export",
                                        "target": "person", "at": t0, "detail": {}}])

    def find(**kw: object) -> list[str]:
        page = audit.search(session=session, query=audit.AuditQuery(**kw))  # type: ignore[arg-type]
        return [f"{r.actor}/{r.action}" for r in page.items if r.at >= t0 and r.at.year == 2024]

    assert find() == ["wang/login", "li/unmask", "li/export"]
    assert find(actor="li") == ["li/unmask", "li/export"]
    assert find(target="person") == ["li/unmask", "li/export"]
    assert find(ip="10.0.0.1") == ["wang/login", "li/export"]
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert find(since=dt.datetime(2024, 5, 1, 9, tzinfo=shanghai),
                until=dt.datetime(2024, 5, 1, 10, tzinfo=shanghai)) == ["li/unmask"]
    assert find(target="100%") == []
    with pytest.raises(ValueError, match="时区"):
        find(since=dt.datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="from"):
        find(since=t0 + dt.timedelta(days=1), until=t0)


def test_an_orm_bulk_update_is_audited_with_its_count_in_its_tenant_only(session: Session) -> None:
    tree = place_tree(session)
    for i in range(1, 4):
        _person(session, f"居民{i}", i, tree.room.id)
    session.flush()
    session.info["actor"] = "li"
    session.execute(update(Person).values(ethnicity="汉族"))
    [row] = _rows(session, action="update", target="person")
    assert (row.actor, row.detail["count"], row.detail["bulk"]) == ("li", 3, True)
