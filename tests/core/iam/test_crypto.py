"""Personal data at rest: encrypted, found by blind index, masked, readable after key rotation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shequ.config import get_settings
from shequ.core.iam import crypto
from shequ.core.registry.models import Person
from tests.factories import place_tree

ID = "310112194407090358"
PHONE = "13912345678"


def test_the_database_holds_ciphertext_and_the_model_plaintext(session: Session) -> None:
    tree = place_tree(session)
    person = Person(name="李梅", id_number=ID, phone=PHONE, place_id=tree.room.id)
    session.add(person)
    session.flush()
    raw = session.execute(text("SELECT id_number, phone, id_number_mask, phone_mask FROM person "
                               "WHERE id = :id"), {"id": person.id}).one()
    assert raw.id_number.startswith("enc1:") and ID not in raw.id_number
    assert PHONE not in raw.phone
    assert (raw.id_number_mask, raw.phone_mask) == ("3101**********0358", "139****5678")
    session.expire_all()
    again = session.scalar(select(Person).where(Person.id_number_hash == crypto.blind_index(ID)))
    assert again is not None and (again.id_number, again.phone) == (ID, PHONE)


def test_the_change_log_keeps_only_masks(session: Session) -> None:
    from shequ.core.changelog import history

    person = Person(name="李梅", id_number=ID, phone=PHONE)
    session.add(person)
    session.flush()
    person.phone = "13700000000"
    session.flush()
    log = history(session, "person", person.id)
    assert [entry.action for entry in log] == ["update", "create"]
    assert log[0].before == {"phone": "139****5678", "phone_mask": "139****5678"}
    assert log[0].after == {"phone": "137****0000", "phone_mask": "137****0000"}
    dumped = json.dumps([entry.after for entry in log] + [entry.before for entry in log])
    assert ID not in dumped and PHONE not in dumped
    assert log[0].actor == "test"


def test_old_rows_stay_readable_after_the_key_rotates(session: Session) -> None:
    before = crypto.keyring().encrypt(ID)
    path = get_settings().key_file
    assert path is not None
    index_before = crypto.blind_index(ID)
    # Rotation only adds keys, so other tests' rows stay readable: nothing to restore.
    new_kid = crypto.rotate_key_file(path)
    after = crypto.keyring().encrypt(ID)
    assert after.split(":")[1] == new_kid != before.split(":")[1]
    assert crypto.keyring().decrypt(before) == ID == crypto.keyring().decrypt(after)
    # the blind-index key does not rotate, so lookups keep working
    assert crypto.blind_index(ID) == index_before


def test_a_tampered_ciphertext_is_refused() -> None:
    token = crypto.keyring().encrypt(ID)
    body = token.rsplit(":", 1)
    tampered = body[0] + ":" + ("A" if body[1][0] != "A" else "B") + body[1][1:]
    with pytest.raises(Exception):  # noqa: B017 - cryptography raises InvalidTag
        crypto.keyring().decrypt(tampered)


@pytest.mark.parametrize("value, masked", [("310112194407090358", "3101**********0358"),
                                           ("13912345678", "139****5678")])
def test_masks(value: str, masked: str) -> None:
    mask = crypto.mask_id_number if len(value) == 18 else crypto.mask_phone
    assert mask(value) == masked


def test_rotation_re_encrypts_stored_rows(engine) -> None:  # type: ignore[no-untyped-def]
    """`shequ db rotate-key`: every stored ciphertext moves to the new key and still decrypts."""
    import uuid

    from shequ.core.places.service import create_tenant
    from shequ.db import session_scope

    path = get_settings().key_file
    assert path is not None
    crypto.keyring()
    with session_scope(engine=engine) as s:
        tenant = create_tenant(session=s, code=f"R{uuid.uuid4().hex[:8]}", name="轮换测试")
        tid = tenant.id
    try:
        with session_scope(tenant_id=tid, engine=engine) as s:
            s.add(Person(name="周明", id_number=ID, phone=PHONE))
        new_kid = crypto.rotate_key_file(path)
        assert crypto.reencrypt_all(engine) >= 2
        with engine.connect() as conn:
            raw = conn.execute(text("SELECT id_number, phone FROM person WHERE tenant_id = :t"),
                               {"t": tid}).one()
        assert raw.id_number.startswith(f"enc1:{new_kid}:") and raw.phone.startswith(f"enc1:{new_kid}:")
        with session_scope(tenant_id=tid, engine=engine) as s:
            assert s.scalars(select(Person.id_number)).one() == ID
    finally:
        from shequ.core.places.models import Tenant

        with session_scope(engine=engine) as s:
            s.delete(s.get(Tenant, tid))
