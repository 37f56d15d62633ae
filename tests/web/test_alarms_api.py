"""The alarms API as its users meet it: a smoke reading goes through the real pipeline and the
rules, and the alarm it raises is seen by the dispatcher and the committee it happened in (not
by another committee); it is acknowledged, commented, assigned, cleared, turned into a case,
and escalated by the sweep while nobody acknowledges it.

The pipeline commits in its own transactions, so these tests run on a committed tenant
(``tests.iot_fixtures``) through the real app, without the rolled-back session override.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select

from shequ.core import loop
from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import Alarm
from shequ.core.cases.models import Case
from shequ.core.iam import service as iam
from shequ.core.iot.pipeline import Inbound, Pipeline, now_ms
from shequ.core.places.models import Tenant
from shequ.core.rules import service as rules
from shequ.core.rules.engine import install as install_rules
from shequ.db import session_scope
from shequ.web.app import create_app
from tests.factories import place_tree
from tests.iot_fixtures import IotWorld, build_world
from tests.web.conftest import PASSWORD

API = "/api/v1"


@dataclass
class Site:
    """A committed tenant with the default rules, committees A (the world's) and B, and users."""

    world: IotWorld
    client: TestClient
    tokens: dict[str, str]  # role name -> bearer token
    user_ids: dict[str, int]
    usernames: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def send(self, device: str, kind: str = "telemetry", ts: int | None = None, **body: object) -> None:
        msg = {"id": f"m{uuid.uuid4().hex}", "ts": ts or now_ms(), **body}
        result = Pipeline(self.world.engine).process(
            [Inbound(json.dumps(msg).encode(), kind, self.world.tenant_code, device)])
        assert result.outcomes[0].status == "accepted", result.outcomes[0]
        loop.open_pending_cases(self.world.engine)  # what the worker does right after the batch

    def alarms(self) -> list[Alarm]:
        with session_scope(tenant_id=self.world.tenant_id) as s:
            return list(s.scalars(select(Alarm).order_by(Alarm.id)))


@pytest.fixture
def site(engine: Engine) -> Iterator[Site]:
    install_rules()
    world = build_world(engine)
    tag = uuid.uuid4().hex[:6]
    tokens: dict[str, str] = {}
    user_ids: dict[str, int] = {}
    usernames: dict[str, str] = {}
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        rules.install_default_rules(session=s)
        other = place_tree(s, tag="B", lon=121.45, committee_name="南街居委会")
        bindings = {"admin": ("admin", {}), "dispatcher": ("dispatcher", {"department": "城运中心"}),
                    "leader": ("leader", {}),
                    "committee_a": ("committee", {"committees": [world.tree.committee.id]}),
                    "committee_b": ("committee", {"committees": [other.committee.id]})}
        for who, (role, scope) in bindings.items():
            user = iam.create_user(session=s, username=f"{who}_{tag}", password=PASSWORD, role=role, scope=scope,
                                   display_name=who)
            tokens[who] = iam.create_api_token(session=s, user=user, days=1)
            s.flush()
            user_ids[who], usernames[who] = user.id, user.username
    with TestClient(create_app(tenant_code=world.tenant_code)) as client:
        yield Site(world, client, tokens, user_ids, usernames)
    drop_tenant(world.tenant_id)


def drop_tenant(tenant_id: int) -> None:
    """Users, tokens and timelines go with the tenant; the hot tables carry no foreign key."""
    from shequ.core.iot.models import (
        DeadLetter,
        PlaceStateChange,
        Telemetry,
        TelemetryRollup,
        TwinChange,
    )

    with session_scope() as s:
        for model in (DeadLetter, Telemetry, TelemetryRollup, TwinChange, PlaceStateChange):
            s.connection().execute(delete(model.__table__).where(model.__table__.c.tenant_id == tenant_id))
        s.execute(delete(Tenant).where(Tenant.id == tenant_id))


def _hot_rule(site: Site) -> None:
    """A rule that only raises an alarm (no case), for the handling tests."""
    with session_scope(tenant_id=site.world.tenant_id, actor="test") as s:
        rules.save_rule(session=s, actor="test", body={
            "code": "hot", "name": "温度过高", "kind": "threshold", "severity": "MAJOR",
            "target": {"device_types": ["smoke_detector"]},
            "spec": {"field": "temperature_c", "op": ">", "value": 60}, "actions": [{"do": "alarm"}]})


def test_a_smoke_alarm_is_seen_by_the_dispatcher_and_its_committee_only(site: Site) -> None:
    site.send("SD-301", v={"smoke": True})
    [alarm] = site.alarms()
    c = site.client
    for who in ("dispatcher", "committee_a", "leader"):
        listed = c.get(f"{API}/alarms", headers=site.auth(who))
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert (item["id"], item["type"], item["severity"], item["status"]) == (
            alarm.id, "smoke", "CRITICAL", "ACTIVE_UNACK")
        assert item["active"] is True and item["count"] == 1 and "301" in item["place"]
    # another committee's staff: not in the list, and the alarm does not exist for them
    assert c.get(f"{API}/alarms", headers=site.auth("committee_b")).json()["total"] == 0
    assert c.get(f"{API}/alarms/{alarm.id}", headers=site.auth("committee_b")).status_code == 404
    assert c.post(f"{API}/alarms/{alarm.id}/ack", headers=site.auth("committee_b")).status_code == 404
    summary = c.get(f"{API}/alarms/summary", headers=site.auth("committee_b")).json()
    assert summary["active"] == 0 and summary["today_by_type"] == {}
    summary = c.get(f"{API}/alarms/summary", headers=site.auth("committee_a")).json()
    assert summary["active"] == 1 and summary["unacknowledged"] == 1
    assert summary["by_severity"]["CRITICAL"] == 1 and summary["today_by_type"] == {"smoke": 1}

    detail = c.get(f"{API}/alarms/{alarm.id}", headers=site.auth("committee_a")).json()
    assert [e["action"] for e in detail["timeline"]][0] == "raised"
    # the smoke rule opened a case (E0401, dispatched to 城运中心): linked from the alarm
    assert detail["case"]["stage"] == "dispatched" and detail["case_id"] == detail["case"]["id"]
    # the leader reads alarms but does not handle them
    assert c.post(f"{API}/alarms/{alarm.id}/ack", headers=site.auth("leader")).status_code == 403


def test_filters_and_order(site: Site) -> None:
    _hot_rule(site)
    site.send("SD-301", v={"temperature_c": 70})
    site.send("SD-302", v={"smoke": True})
    c, auth = site.client, site.auth("dispatcher")
    newest = c.get(f"{API}/alarms", headers=auth).json()["items"]
    assert [a["type"] for a in newest] == ["smoke", "hot"]
    by_severity = c.get(f"{API}/alarms", params={"sort": "severity"}, headers=auth).json()["items"]
    assert [a["severity"] for a in by_severity] == ["CRITICAL", "MAJOR"]
    assert [a["type"] for a in c.get(f"{API}/alarms", params={"severity": "MAJOR,MINOR"},
                                     headers=auth).json()["items"]] == ["hot"]
    assert c.get(f"{API}/alarms", params={"type": "smoke", "active": "true"}, headers=auth).json()["total"] == 1
    assert c.get(f"{API}/alarms", params={"active": "false"}, headers=auth).json()["total"] == 0
    device = site.world.devices["SD-301"].id
    assert [a["type"] for a in c.get(f"{API}/alarms", params={"device_id": device},
                                     headers=auth).json()["items"]] == ["hot"]
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert c.get(f"{API}/alarms", params={"since": future}, headers=auth).json()["total"] == 0
    bad = c.get(f"{API}/alarms", params={"status": "ACTIVE_UNACK,BURNING"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
    bad = c.get(f"{API}/alarms", params={"since": "yesterday"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "since"


def test_ack_comment_assign_clear(site: Site) -> None:
    _hot_rule(site)
    site.send("SD-301", v={"temperature_c": 70})
    site.send("SD-301", v={"temperature_c": 72})  # still above: the same alarm, no new one
    [alarm] = site.alarms()
    c, auth = site.client, site.auth("committee_a")
    before = dt.datetime.now(dt.UTC)
    acked = c.post(f"{API}/alarms/{alarm.id}/ack", json={"note": "已到场"}, headers=auth)
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["status"] == "ACTIVE_ACK" and body["acked_by"] == site.usernames["committee_a"]
    assert dt.datetime.fromisoformat(body["acked_at"]).replace(tzinfo=dt.UTC) >= before - dt.timedelta(seconds=1)
    again = c.post(f"{API}/alarms/{alarm.id}/ack", headers=auth)
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "status"

    commented = c.post(f"{API}/alarms/{alarm.id}/comment", json={"note": "烟雾已散"}, headers=auth).json()
    assert commented["timeline"][-1]["action"] == "commented" and commented["timeline"][-1]["note"] == "烟雾已散"
    empty = c.post(f"{API}/alarms/{alarm.id}/comment", json={"note": ""}, headers=auth)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "note"

    assigned = c.post(f"{API}/alarms/{alarm.id}/assign", json={"assignee_id": site.user_ids["dispatcher"]},
                      headers=auth).json()
    assert assigned["assignee_id"] == site.user_ids["dispatcher"]
    nobody = c.post(f"{API}/alarms/{alarm.id}/assign", json={"assignee_id": 2_000_000_000}, headers=auth)
    assert nobody.status_code == 422 and nobody.json()["errors"][0]["field"] == "assignee_id"

    cleared = c.post(f"{API}/alarms/{alarm.id}/clear", json={"note": "处置完毕"}, headers=auth).json()
    assert cleared["status"] == "CLEARED_ACK" and cleared["active"] is False
    assert cleared["cleared_by"] == site.usernames["committee_a"]
    assert [e["action"] for e in cleared["timeline"]] == ["raised", "acked", "commented", "assigned", "cleared"]
    twice = c.post(f"{API}/alarms/{alarm.id}/clear", headers=auth)
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "status"
    # a new occurrence after the clear is a new alarm
    site.send("SD-301", v={"temperature_c": 50})
    site.send("SD-301", v={"temperature_c": 75})
    assert [a.status for a in site.alarms()] == ["CLEARED_ACK", "ACTIVE_UNACK"]


def test_case_from_an_alarm_is_linked_both_ways(site: Site) -> None:
    _hot_rule(site)
    site.send("SD-301", v={"temperature_c": 70})
    [alarm] = site.alarms()
    c = site.client
    # committee staff report cases, so they may turn an alarm into one; the leader may not
    assert c.post(f"{API}/alarms/{alarm.id}/case", json={"class_code": "E0401"},
                  headers=site.auth("leader")).status_code == 403
    bad = c.post(f"{API}/alarms/{alarm.id}/case", json={"class_code": "X9999"}, headers=site.auth("dispatcher"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "class_code"
    assert site.alarms()[0].case_id is None  # the refused case left nothing behind
    opened = c.post(f"{API}/alarms/{alarm.id}/case", json={"class_code": "E0401"}, headers=site.auth("dispatcher"))
    assert opened.status_code == 200, opened.text
    link = opened.json()["case"]
    assert link["stage"] == "dispatched" and opened.json()["timeline"][-1]["action"] == "case"
    with session_scope(tenant_id=site.world.tenant_id) as s:
        case = s.scalars(select(Case).where(Case.id == link["id"])).one()
        assert case.alarm_id == alarm.id and case.source == "alarm" and case.code == link["code"]
    # once: asking again gives the same case
    again = c.post(f"{API}/alarms/{alarm.id}/case", json={"class_code": "E0401"}, headers=site.auth("dispatcher"))
    assert again.json()["case"]["id"] == link["id"]


def test_the_sweep_escalates_an_unacknowledged_critical_alarm_until_it_is_acknowledged(site: Site) -> None:
    site.send("SD-301", v={"smoke": True})
    [alarm] = site.alarms()
    raised = alarm.raised_at.replace(tzinfo=dt.UTC) if alarm.raised_at.tzinfo is None else alarm.raised_at
    with session_scope(tenant_id=site.world.tenant_id) as s:
        [swept] = alarms.sweep(session=s, now=raised + dt.timedelta(minutes=6))
        assert swept.escalation_level == 1
    c, auth = site.client, site.auth("dispatcher")
    detail = c.get(f"{API}/alarms/{alarm.id}", headers=auth).json()
    assert detail["escalation_level"] == 1
    escalated = [e for e in detail["timeline"] if e["action"] == "escalated"]
    assert len(escalated) == 1 and escalated[0]["data"]["level"] == 1
    assert c.post(f"{API}/alarms/{alarm.id}/ack", headers=auth).status_code == 200
    with session_scope(tenant_id=site.world.tenant_id) as s:
        assert alarms.sweep(session=s, now=raised + dt.timedelta(minutes=30)) == []
    after = c.get(f"{API}/alarms/{alarm.id}", headers=auth).json()
    assert after["escalation_level"] == 1 and after["reminders"] == 0
    assert [e["action"] for e in after["timeline"]].count("reminder") == 0
