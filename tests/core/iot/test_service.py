"""Device operations: scopes limit which devices a user finds; credentials are audited; dead
letters belong to their tenant."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.models import AuditLog
from shequ.core.iam.scope import scope_of
from shequ.core.iot import service
from shequ.core.iot.credentials import token_digest
from shequ.core.iot.models import DeadLetter, Device
from shequ.db import bind_context
from tests.factories import place_tree


def test_a_committee_user_finds_only_devices_of_their_committee(session: Session, tenant_id: int) -> None:
    north = place_tree(session, tag="N")
    south = place_tree(session, tag="S", lon=121.45, committee_name="南街居委会")
    session.add_all([Device(code="N1", name="北烟感", type_code="smoke_detector", place_id=north.room.id),
                     Device(code="S1", name="南烟感", type_code="smoke_detector", place_id=south.room.id)])
    session.flush()
    south_id = session.scalar(select(Device.id).where(Device.code == "S1"))
    user = iam.create_user(session=session, username="cw", password="jiangchuan2024", role="committee",
                           scope={"committees": [north.committee.id]})
    bind_context(session, tenant_id=tenant_id, actor="cw", scope=scope_of(session=session, user=user))
    found = service.list_devices(session=session)
    assert [d.code for d, _state in found.items] == ["N1"] and found.total == 1
    assert service.get_device(session=session, device_id=int(south_id or 0)) is None


def test_rotate_and_revoke_are_audited_without_the_token(session: Session) -> None:
    tree = place_tree(session)
    device = Device(code="D1", name="门磁", type_code="door_magnet", place_id=tree.room.id)
    session.add(device)
    session.flush()
    token = service.rotate_token(session=session, device=device, actor="admin1", ip="10.0.0.1")
    assert device.token_hash == token_digest(token) and token not in str(device.token_hash)
    service.revoke_token(session=session, device=device, actor="admin1")
    assert device.token_hash is None and device.token_revoked_at is not None
    rows = list(session.scalars(select(AuditLog).where(AuditLog.action == "device_token").order_by(AuditLog.id)))
    assert [(r.detail["op"], r.target, r.actor) for r in rows] == [
        ("issue", f"device:{device.id}", "admin1"), ("revoke", f"device:{device.id}", "admin1")]
    assert all(token not in str(r.detail) for r in rows)


def test_dead_letters_are_the_tenants_own(session: Session, tenant_id: int) -> None:
    from shequ.core.places.service import create_tenant

    other = create_tenant(session=session, code=f"O{tenant_id}x", name="另一街道", district="", city="")
    now = dt.datetime.now(dt.UTC)
    session.execute(insert(DeadLetter), [
        {"tenant_id": tenant_id, "received_at": now, "transport": "http", "reason": "schema",
         "device_code": "D1", "payload": b"{}", "detail": "x"},
        {"tenant_id": other.id, "received_at": now, "transport": "http", "reason": "schema",
         "device_code": "D1", "payload": b"{}", "detail": "other tenant"},
    ])
    page = service.dead_letters(session=session, reason="schema")
    assert page.total == 1 and page.items[0].detail == "x"
    assert service.dead_letter_counts(session=session) == {"schema": 1}
