"""A committed tenant with a small place tree and devices, for tests of the ingest pipeline.

The pipeline runs its own transactions (like a worker), so its tests cannot use the rolled-back
``session`` fixture: this builds committed data and deletes it afterwards.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from shequ.core.alarms.models import Alarm
from shequ.core.cases.models import Case
from shequ.core.iot.credentials import issue_token
from shequ.core.iot.models import Device, DeviceCommand
from shequ.core.iot.pipeline import BatchResult, Inbound, Pipeline, now_ms
from shequ.core.places.service import create_tenant
from shequ.db import session_scope
from tests.factories import Tree, place_tree


@dataclass
class IotWorld:
    engine: Engine
    tenant_id: int
    tenant_code: str
    tree: Tree
    devices: dict[str, Device] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


DEVICES = (  # code, type, where
    ("SD-301", "smoke_detector", "room"),
    ("SD-302", "smoke_detector", "room2"),
    ("WM-301", "water_meter", "room"),
    ("DM-301", "door_magnet", "room"),
    ("EC-12", "elevator_camera", "building"),
)


def build_world(engine: Engine) -> IotWorld:
    code = f"T{uuid.uuid4().hex[:8]}"
    with session_scope(actor="test") as s:
        tenant = create_tenant(session=s, code=code, name="测试街道", district="闵行区", city="上海市",
                               centre=(121.4132, 31.0113))
        tenant_id = tenant.id
    with session_scope(tenant_id=tenant_id, actor="test") as s:
        tree = place_tree(s)
        world = IotWorld(engine, tenant_id, code, tree)
        for dcode, dtype, where in DEVICES:
            place = getattr(tree, where)
            dev = Device(code=dcode, name=dcode, type_code=dtype, place_id=place.id)
            world.tokens[dcode] = issue_token(dev)
            s.add(dev)
            world.devices[dcode] = dev
        s.flush()
    return world


def world_fixture(engine: Engine) -> Iterator[IotWorld]:
    # Each test gets its own tenant in the run's own database (created and dropped per run), so
    # nothing is deleted afterwards (the audit log is append-only anyway).
    yield build_world(engine)


_seq = itertools.count(1)


def send(pipe: Pipeline, world: IotWorld, device: str, kind: str = "telemetry", ts: int | None = None,
         **body: object) -> BatchResult:
    """One message of ``device`` through the real pipeline (its own transaction, as a worker's);
    it must be accepted."""
    msg = {"id": f"m{next(_seq)}", "ts": ts or now_ms(), **body}
    result = pipe.process([Inbound(json.dumps(msg).encode(), kind, world.tenant_code, device)])
    assert result.outcomes[0].status == "accepted", result.outcomes[0]
    return result


def alarms_of(world: IotWorld) -> list[Alarm]:
    with session_scope(tenant_id=world.tenant_id) as s:
        return list(s.scalars(select(Alarm).order_by(Alarm.id)))


def cases_of(world: IotWorld) -> list[Case]:
    with session_scope(tenant_id=world.tenant_id) as s:
        return list(s.scalars(select(Case).order_by(Case.id)))


def commands_of(world: IotWorld) -> list[DeviceCommand]:
    """The commands stored for the world's devices (rules' linkage and operators'), oldest first."""
    with session_scope(tenant_id=world.tenant_id) as s:
        return list(s.scalars(select(DeviceCommand).order_by(DeviceCommand.id)))
