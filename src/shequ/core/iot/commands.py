"""Commands to devices (downlink): send and track them, apply the devices' replies, time them out.

A command is stored (pending) and committed before it goes down the wire, so a device that
answers at once (the in-process simulator, a fast broker) finds it; it is then marked sent, or
failed with the downlink's error. Replies come back through the ingest pipeline, which calls
``apply_replies`` inside its batch transaction; ``sweep_commands`` marks commands whose
deadline passed without a reply as timed out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from shequ.core.errors import FieldError
from shequ.core.iot.models import Device, DeviceCommand
from shequ.core.iot.types import get_type
from shequ.core.places.models import Tenant
from shequ.db import utcnow

PENDING, SENT, ACKED, FAILED, TIMED_OUT = "pending", "sent", "acked", "failed", "timed_out"
COMMAND_STATUSES = (PENDING, SENT, ACKED, FAILED, TIMED_OUT)
OPEN = (PENDING, SENT)  # a reply or the sweep may still change these

# one reply as the pipeline hands it over: device id, device time (epoch ms), command id, ok,
# result object, error text
Reply = tuple[int, int, int, bool, Mapping[str, Any] | None, str | None]


class CommandRefused(FieldError):
    """A command that cannot be sent as asked; ``field`` names the culprit (name or args.<arg>)."""


def _arg_field(problem: str, args: Mapping[str, Any]) -> str:
    """The argument a CommandSpec.check message is about (it names it after "command x: ")."""
    rest = problem.split(": ", 1)[1] if ": " in problem else problem
    if rest.startswith("unknown argument "):
        return "args." + rest.removeprefix("unknown argument ").strip()
    head = rest.split(":", 1)[0].split(" ", 1)[0].strip()
    return f"args.{head}" if head else "args"


def validate(*, device: Device, name: str, args: Mapping[str, Any]) -> int:
    """Check a command against the device's type; its timeout in seconds, or CommandRefused."""
    dtype = get_type(device.type_code)
    if dtype is None:
        raise CommandRefused("name", f"设备类型 {device.type_code} 未知 (unknown device type)")
    spec = dtype.commands_by_name.get(name)
    if spec is None:
        known = ", ".join(dtype.commands_by_name) or "—"
        raise CommandRefused("name", f"{dtype.name} 不支持命令 {name!r}（{dtype.code} has no command "
                                     f"{name!r}; known: {known}）")
    if device.status == "retired":
        raise CommandRefused("name", "设备已报废，不能下发命令 (the device is retired)")
    problem = spec.check(args)
    if problem:
        raise CommandRefused(_arg_field(problem, args), problem)
    return spec.timeout_s


def store_command(*, session: Session, device: Device, name: str, args: Mapping[str, Any] | None = None,
                  actor: str = "system", source: str = "api") -> DeviceCommand:
    """Validate and store one command as pending (flushed, not sent): the sender sends it after
    the transaction commits (``send_stored``), so that a device answering at once finds it."""
    args = dict(args or {})
    timeout_s = validate(device=device, name=name, args=args)
    now = utcnow()
    cmd = DeviceCommand(device_id=device.id, name=name, args=args, status=PENDING, created_at=now,
                        deadline=now + dt.timedelta(seconds=timeout_s), actor=actor[:100],
                        source=source[:40])
    session.add(cmd)
    session.flush()
    return cmd


def send_stored(*, execute: Callable[[Any], Any], command_id: int, tenant_code: str, device_code: str,
                name: str, args: Mapping[str, Any]) -> None:
    """Put a committed pending command on the wire and mark it sent (or failed, with the error)
    through ``execute`` (a session's or a connection's; the caller commits)."""
    from shequ.core.iot.downlink import get_downlink

    payload = json.dumps({"id": command_id, "name": name, "args": dict(args)}, ensure_ascii=False).encode()
    table = cast(Table, DeviceCommand.__table__)
    try:
        get_downlink().send(tenant_code, device_code, payload)
    except Exception as exc:  # noqa: BLE001 - whatever the transport raised, the command failed
        execute(update(table).where(table.c.id == command_id, table.c.status == PENDING)
                .values(status=FAILED, result={"error": f"{type(exc).__name__}: {exc}"[:500]}))
        return
    sent_at = utcnow()
    # a reply may have come in already (acked): only a command still pending becomes sent
    execute(update(table).where(table.c.id == command_id, table.c.sent_at.is_(None)).values(sent_at=sent_at))
    execute(update(table).where(table.c.id == command_id, table.c.status == PENDING).values(status=SENT))


def send_command(*, session: Session, device: Device, name: str, args: Mapping[str, Any] | None = None,
                 actor: str = "system", source: str = "api") -> DeviceCommand:
    """Validate, store and send one command; returns it as sent (or failed, with the error).

    Commits the pending command before it goes down (so that an immediate reply finds it).
    """
    cmd = store_command(session=session, device=device, name=name, args=args, actor=actor, source=source)
    tenant_code = session.scalar(select(Tenant.code).where(Tenant.id == device.tenant_id))
    cmd_id, device_code, cmd_args = cmd.id, device.code, dict(cmd.args)
    session.commit()
    send_stored(execute=session.execute, command_id=cmd_id, tenant_code=str(tenant_code),
                device_code=device_code, name=name, args=cmd_args)
    session.commit()
    found = session.scalar(select(DeviceCommand).where(DeviceCommand.id == cmd_id)
                           .execution_options(populate_existing=True))
    assert found is not None
    return found


def get_command(*, session: Session, command_id: int) -> DeviceCommand | None:
    """One command of the tenant whose device the session may see (scopes apply to devices)."""
    cmd = session.scalar(select(DeviceCommand).where(DeviceCommand.id == command_id))
    if cmd is None:
        return None
    visible = session.scalar(select(Device.id).where(Device.id == cmd.device_id))
    return cmd if visible is not None else None


def list_commands(*, session: Session, device_id: int, limit: int = 50) -> list[DeviceCommand]:
    """The device's latest commands, newest first."""
    stmt = (select(DeviceCommand).where(DeviceCommand.device_id == device_id)
            .order_by(DeviceCommand.created_at.desc(), DeviceCommand.id.desc()).limit(limit))
    return list(session.scalars(stmt))


# --- called by the pipeline and the worker (Core statements on their connection) -------------

_table = cast(Table, DeviceCommand.__table__)


def apply_replies(conn: Connection, replies: Sequence[Reply]) -> int:
    """Record the devices' replies: acked or failed, when, and the result. A reply counts only
    when the command belongs to the replying device and is still pending or sent; returns how
    many did."""
    if not replies:
        return 0
    ids = sorted({r[2] for r in replies})
    open_ = {row[0]: row[1] for row in conn.execute(
        select(_table.c.id, _table.c.device_id).where(_table.c.id.in_(ids), _table.c.status.in_(OPEN)))}
    rows = []
    done: set[int] = set()
    for device_id, ts_ms, command_id, ok, result, error in replies:
        if open_.get(command_id) != device_id or command_id in done:
            continue
        done.add(command_id)
        body: dict[str, Any] = dict(result or {})
        if error:
            body["error"] = str(error)[:500]
        rows.append({"cid": command_id, "did": device_id, "st": ACKED if ok else FAILED,
                     "at": dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC), "res": body})
    if rows:
        conn.execute(
            # no IN (...) here: an expanding parameter cannot go into an executemany (many replies)
            update(_table).where(_table.c.id == bindparam("cid"), _table.c.device_id == bindparam("did"),
                                 or_(*(_table.c.status == status for status in OPEN)))
            .values(status=bindparam("st"), replied_at=bindparam("at"), result=bindparam("res")),
            rows)
    return len(rows)


def sweep_commands(conn: Connection, now: dt.datetime | int | None = None) -> int:
    """Mark commands past their deadline without a reply (sent, or stuck pending) timed out;
    returns how many."""
    if now is None:
        now = utcnow()
    elif isinstance(now, int):
        now = dt.datetime.fromtimestamp(now / 1000, dt.UTC)
    result = conn.execute(update(_table).where(_table.c.status.in_(OPEN), _table.c.deadline < now)
                          .values(status=TIMED_OUT))
    return int(result.rowcount or 0)
