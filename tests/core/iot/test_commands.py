"""Commands: checked against the device type, sent down the local downlink, replies applied only
to the replying device's open commands, and the sweep timing out the silent ones."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from shequ.core.iot import commands as cmds
from shequ.core.iot.downlink import local_downlink
from shequ.core.iot.models import Device
from tests.factories import place_tree


@pytest.fixture
def light(session: Session) -> Device:
    tree = place_tree(session)
    device = Device(code="SL-9", name="路灯", type_code="smart_light", place_id=tree.compound.id)
    session.add(device)
    session.flush()
    return device


def test_arguments_are_checked_and_named(session: Session, light: Device) -> None:
    with pytest.raises(cmds.CommandRefused) as bad:
        cmds.send_command(session=session, device=light, name="set_level", args={"level_pct": "high"})
    assert bad.value.field == "args.level_pct"
    with pytest.raises(cmds.CommandRefused) as extra:
        cmds.send_command(session=session, device=light, name="set_level", args={"level_pct": 5, "colour": 1})
    assert extra.value.field == "args.colour"
    with pytest.raises(cmds.CommandRefused) as missing:
        cmds.send_command(session=session, device=light, name="set_level", args={})
    assert missing.value.field == "args.level_pct"


def test_sent_on_the_downlink_then_failed_when_it_raises(session: Session, light: Device) -> None:
    seen: list[tuple[str, str, bytes]] = []

    def device(tenant: str, code: str, payload: bytes) -> None:
        seen.append((tenant, code, payload))

    local_downlink().subscribe(device)
    try:
        cmd = cmds.send_command(session=session, device=light, name="set_level", args={"level_pct": 30},
                                actor="tester")
    finally:
        local_downlink().unsubscribe(device)
    assert cmd.status == "sent" and cmd.sent_at is not None and cmd.actor == "tester"
    assert seen and seen[0][1] == "SL-9" and b'"level_pct": 30' in seen[0][2]
    assert cmd.deadline - cmd.created_at == dt.timedelta(seconds=30)

    def broken(tenant: str, code: str, payload: bytes) -> None:
        raise ConnectionError("broker down")

    local_downlink().subscribe(broken)
    try:
        failed = cmds.send_command(session=session, device=light, name="set_level", args={"level_pct": 1})
    finally:
        local_downlink().unsubscribe(broken)
    assert failed.status == "failed" and "broker down" in (failed.result or {})["error"]


def test_replies_and_sweep(session: Session, light: Device) -> None:
    first = cmds.send_command(session=session, device=light, name="set_level", args={"level_pct": 2})
    second = cmds.send_command(session=session, device=light, name="set_level", args={"level_pct": 3})
    conn = session.connection()
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    assert cmds.apply_replies(conn, [(light.id + 1000, now_ms, first.id, True, None, None)]) == 0
    assert cmds.apply_replies(conn, [(light.id, now_ms, first.id, False, None, "jammed")]) == 1
    cmds.sweep_commands(conn, now_ms)  # nothing of this test is late yet (other tests' may be)
    session.expire_all()
    assert cmds.get_command(session=session, command_id=second.id).status == "sent"  # type: ignore[union-attr]
    assert cmds.sweep_commands(conn, now_ms + 31_000) >= 1
    session.expire_all()
    assert cmds.get_command(session=session, command_id=first.id).status == "failed"  # type: ignore[union-attr]
    late = cmds.get_command(session=session, command_id=second.id)
    assert late is not None and late.status == "timed_out"
    # a reply after the timeout changes nothing
    assert cmds.apply_replies(conn, [(light.id, now_ms, second.id, True, None, None)]) == 0


def test_several_replies_in_one_batch_are_all_recorded(session: Session, light: Device) -> None:
    # a rule's linkage sends two commands to one device (hold the doors, play the warning); its
    # two replies then arrive in the same batch
    first = cmds.send_command(session=session, device=light, name="set_level", args={"level_pct": 2})
    second = cmds.send_command(session=session, device=light, name="set_level", args={"level_pct": 3})
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    replies = [(light.id, now_ms, first.id, True, {"level_pct": 2}, None),
               (light.id, now_ms, second.id, False, None, "jammed")]
    assert cmds.apply_replies(session.connection(), replies) == 2
    session.expire_all()
    assert cmds.get_command(session=session, command_id=first.id).status == "acked"  # type: ignore[union-attr]
    assert cmds.get_command(session=session, command_id=second.id).status == "failed"  # type: ignore[union-attr]
