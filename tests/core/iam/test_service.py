"""Users and access: password policy, login lockout, sessions, API tokens, unmasking."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.models import AuditLog, AuthSession, User
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from shequ.db import utcnow
from tests.factories import place_tree

PASSWORD = "jiangchuan2024"


def _audit(session: Session, action: str) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


@pytest.mark.parametrize("password, rule", [
    ("abc12345", "至少 10 个字符"),
    ("abcdefghijkl", "字母和数字"),
    ("1234567890123", "字母和数字"),
])
def test_password_policy_names_the_rule(session: Session, password: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        iam.create_user(session=session, username="wang", password=password, role="admin")


def test_unknown_role_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="未知角色"):
        iam.create_user(session=session, username="wang", password=PASSWORD, role="king")


def test_password_is_stored_as_argon2_hash(session: Session) -> None:
    user = iam.create_user(session=session, username="wang", password=PASSWORD, role="leader")
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash
    assert iam.authenticate(session=session, username="wang", password=PASSWORD, ip="1.2.3.4") is user
    with pytest.raises(ValueError, match="已存在"):
        iam.create_user(session=session, username="wang", password=PASSWORD, role="leader")


def test_login_and_failure_are_audited(session: Session) -> None:
    iam.create_user(session=session, username="li", password=PASSWORD, role="leader")
    assert iam.authenticate(session=session, username="li", password="wrong-pass-1", ip="10.0.0.1") is None
    assert iam.authenticate(session=session, username="nobody", password=PASSWORD, ip="10.0.0.1") is None
    assert iam.authenticate(session=session, username="li", password=PASSWORD, ip="10.0.0.1") is not None
    failed = _audit(session, "login_failed")
    assert [f.actor for f in failed] == ["li", "nobody"]
    assert [r.ip for r in _audit(session, "login")] == ["10.0.0.1"]


def test_five_failures_lock_the_account_for_fifteen_minutes(session: Session) -> None:
    user = iam.create_user(session=session, username="zhao", password=PASSWORD, role="dispatcher")
    for _ in range(5):
        assert iam.authenticate(session=session, username="zhao", password="bad-guess-99") is None
    assert user.locked_until is not None
    minutes = (user.locked_until - utcnow()).total_seconds() / 60
    assert 14 < minutes <= 15
    # even the right password is refused while locked
    assert iam.authenticate(session=session, username="zhao", password=PASSWORD) is None
    user.locked_until = utcnow() - dt.timedelta(seconds=1)
    assert iam.authenticate(session=session, username="zhao", password=PASSWORD) is user
    assert user.locked_until is None


def test_session_token_stored_as_hash_and_revoked_on_logout(session: Session) -> None:
    user = iam.create_user(session=session, username="sun", password=PASSWORD, role="admin")
    token = iam.start_session(session=session, user=user, ip="127.0.0.1")
    stored = session.scalars(select(AuthSession.token_hash).where(AuthSession.user_id == user.id)).all()
    assert token not in stored and len(stored) == 1
    assert iam.user_for_session(session=session, token=token) is user
    assert iam.user_for_session(session=session, token=token + "x") is None
    iam.end_session(session=session, token=token)
    assert iam.user_for_session(session=session, token=token) is None


def test_expired_session_is_refused(session: Session) -> None:
    user = iam.create_user(session=session, username="zhou", password=PASSWORD, role="admin")
    token = iam.start_session(session=session, user=user)
    auth = session.scalars(select(AuthSession).where(AuthSession.user_id == user.id)).one()
    auth.expires_at = utcnow() - dt.timedelta(minutes=1)
    session.flush()
    assert iam.user_for_session(session=session, token=token) is None


def test_api_token_expires_and_is_not_stored(session: Session) -> None:
    user = iam.create_user(session=session, username="api1", password=PASSWORD, role="api_client")
    token = iam.create_api_token(session=session, user=user, name="ci", days=1)
    assert iam.user_for_token(session=session, token=token) is user
    from shequ.core.iam.models import ApiToken

    row = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert row.token_hash != token
    row.expires_at = utcnow() - dt.timedelta(seconds=1)
    session.flush()
    assert iam.user_for_token(session=session, token=token) is None


def test_session_of_another_tenant_is_not_accepted(session: Session) -> None:
    from shequ.core.places.service import create_tenant
    from shequ.db import bind_context

    user = iam.create_user(session=session, username="qian", password=PASSWORD, role="admin")
    token = iam.start_session(session=session, user=user)
    mine = session.info["tenant_id"]
    other = create_tenant(session=session, code="T-other-iam", name="别的街道")
    bind_context(session, tenant_id=other.id, actor="test")
    assert iam.user_for_session(session=session, token=token) is None
    bind_context(session, tenant_id=mine, actor="test")
    assert iam.user_for_session(session=session, token=token) is user


def _person(session: Session, committee_id: int | None = None) -> tuple[Person, str]:
    tree = place_tree(session)
    number = make_id_number("310112", dt.date(1950, 3, 4), 17)
    person = Person(name="张三", id_number=number, phone="13812345678", place_id=tree.room.id)
    session.add(person)
    session.flush()
    return person, number


def test_unmask_requires_purpose_and_is_audited(session: Session) -> None:
    leader = iam.create_user(session=session, username="leader1", password=PASSWORD, role="leader")
    person, number = _person(session)
    with pytest.raises(ValueError, match="用途"):
        iam.unmask(session=session, user=leader, entity="person", entity_id=person.id,
                   field="id_number", purpose="  ")
    with pytest.raises(ValueError, match="不是个人敏感信息"):
        iam.unmask(session=session, user=leader, entity="person", entity_id=person.id,
                   field="name", purpose="核对")
    value = iam.unmask(session=session, user=leader, entity="person", entity_id=person.id,
                       field="id_number", purpose="核对低保申请")
    assert value == number
    rows = _audit(session, "unmask")
    assert len(rows) == 1
    assert rows[0].purpose == "核对低保申请" and rows[0].target == f"person:{person.id}"
    assert rows[0].actor == "leader1" and number not in str(rows[0].detail)


def test_unmask_by_role_and_committee_scope(session: Session) -> None:
    from shequ.core.iam.scope import scope_of
    from shequ.db import bind_context

    person, _ = _person(session)
    other = place_tree(session, tag="S", committee_name="南街居委会")
    grid = iam.create_user(session=session, username="grid1", password=PASSWORD, role="grid_worker",
                           scope={"grids": [person.grid_id]})
    with pytest.raises(PermissionError):
        iam.unmask(session=session, user=grid, entity="person", entity_id=person.id,
                   field="phone", purpose="回访")
    outsider = iam.create_user(session=session, username="cm1", password=PASSWORD, role="committee",
                               scope={"committees": [other.committee.id]})
    insider = iam.create_user(session=session, username="cm2", password=PASSWORD, role="committee",
                              scope={"committees": [person.committee_id]})
    tenant_id = session.info["tenant_id"]
    # out of the user's scope, the record is not there at all
    bind_context(session, tenant_id=tenant_id, actor="cm1", scope=scope_of(session=session, user=outsider))
    with pytest.raises(LookupError):
        iam.unmask(session=session, user=outsider, entity="person", entity_id=person.id,
                   field="phone", purpose="回访")
    bind_context(session, tenant_id=tenant_id, actor="cm2", scope=scope_of(session=session, user=insider))
    assert iam.unmask(session=session, user=insider, entity="person", entity_id=person.id,
                      field="phone", purpose="回访") == "13812345678"
    bind_context(session, tenant_id=tenant_id, actor="test", scope=None)
    assert [r.actor for r in _audit(session, "unmask")] == ["cm2"]


def test_can_reads_the_role_table(session: Session) -> None:
    admin = User(username="a", role="admin", active=True)
    resident = User(username="r", role="resident", active=True)
    assert iam.can(admin, iam.UNMASK) and not iam.can(resident, iam.READ)
    admin.active = False
    assert not iam.can(admin, iam.READ)
