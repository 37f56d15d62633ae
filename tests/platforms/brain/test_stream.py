"""The live stream's own sessions: they carry the user's scope, and its fingerprint moves when an
alarm is raised. The stream reads committed data, so this tenant is committed (and removed)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from shequ.core.alarms import service as alarms
from shequ.core.iam import service as iam
from shequ.core.iam.scope import Scope, scope_of
from shequ.core.places.models import Tenant
from shequ.core.places.service import create_tenant
from shequ.core.registry.models import Person
from shequ.core.registry.tags import install_default_tags
from shequ.core.registry.validators import make_id_number
from shequ.db import session_scope
from shequ.platforms.brain import routes
from tests.aio import run
from tests.factories import place_tree
from tests.platforms.brain.world import World, build


@dataclass
class Committed:
    tenant_id: int
    world: World
    north_worker: Scope


@pytest.fixture
def committed(engine: Engine) -> Iterator[Committed]:
    with session_scope(engine=engine) as session:
        tenant_id = create_tenant(session=session, code=f"B{uuid.uuid4().hex[:8]}", name="大脑街道").id
    with session_scope(tenant_id=tenant_id, actor="test", engine=engine) as session:
        north = place_tree(session, tag="N", committee_name="北街居委会")
        south = place_tree(session, tag="S", lon=121.45, committee_name="南街居委会")
        install_default_tags(session=session)
        people = {}
        for seq, (name, sex, born, rtype, tree) in enumerate((
                ("张建国", "M", dt.date(1938, 5, 1), "registered", north),
                ("李秀英", "F", dt.date(1961, 2, 14), "registered", north),
                ("王磊", "M", dt.date(1990, 8, 30), "resident", north),
                ("赵敏", "F", dt.date(1985, 11, 3), "resident", south)), start=1):
            people[name] = Person(name=name, sex=sex, birth_date=born, residence_type=rtype,
                                  id_number=make_id_number("310112", born, 500 + seq), place_id=tree.room.id)
            session.add(people[name])
        session.flush()
        world = build(session, north, south, people)
        worker = iam.create_user(session=session, username="stream_gw", password="jiangchuan2024",
                                 role="grid_worker", scope={"grids": [north.grid.id]})
        scope = scope_of(session=session, user=worker)
    yield Committed(tenant_id, world, scope)
    with session_scope(engine=engine) as session:
        session.execute(delete(Tenant).where(Tenant.id == tenant_id))


def test_the_streams_sessions_carry_the_users_scope(committed: Committed) -> None:
    whole = routes._snapshot(committed.tenant_id, None, "zh-CN")
    assert whole["summary"]["alarms"]["active"] == 2 and whole["summary"]["population"]["total"] == 4
    north = routes._snapshot(committed.tenant_id, committed.north_worker, "zh-CN")
    assert north["summary"]["alarms"]["active"] == 1 and north["summary"]["population"]["total"] == 3
    assert [a["id"] for a in north["alarms"]["items"]] == [committed.world.alarms["a1"].id]


def test_the_fingerprint_moves_when_an_alarm_is_raised(committed: Committed, engine: Engine) -> None:
    before = routes._fingerprint(committed.tenant_id, committed.north_worker)
    assert routes._fingerprint(committed.tenant_id, committed.north_worker) == before  # nothing happened
    with session_scope(tenant_id=committed.tenant_id, actor="test", engine=engine) as session:
        alarms.raise_alarm(session=session, type="smoke", source="p:stream", severity="MAJOR", title="北 302 烟感",
                           place_id=committed.world.north.room2.id)
    assert routes._fingerprint(committed.tenant_id, committed.north_worker) != before


def test_the_stream_sends_only_what_changed(committed: Committed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rounds with nothing new in between: the summary and the alarms go out once."""
    monkeypatch.setattr(routes, "POLL_S", 0.01)
    monkeypatch.setattr(routes, "STREAM_MAX_S", 0.3)
    monkeypatch.setattr(routes, "_fingerprint", lambda tenant_id, scope: (object(),))  # "changed" every round

    async def collect() -> list[str]:
        return [frame async for frame in routes._events(committed.tenant_id, committed.north_worker, "zh-CN")]

    frames = run(collect())
    events = [f for f in frames if f.startswith("event: ")]
    assert [e.split("\n", 1)[0] for e in events] == ["event: summary", "event: alarms"]
    alarms_frame = json.loads(events[1].split("data: ", 1)[1])
    assert [a["id"] for a in alarms_frame["items"]] == [committed.world.alarms["a1"].id]
