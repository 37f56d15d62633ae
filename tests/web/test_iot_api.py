"""The device API as its users and devices see it: who may do what, scopes, credentials, HTTP
ingest with a device token, commands from send to acknowledgement, dead letters and /metrics.

The pipeline commits in its own transactions, so these tests run on a committed tenant
(``tests.iot_fixtures``) through the real app, without the rolled-back session override.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from shequ.core.iam import service as iam
from shequ.core.iot import commands as cmds
from shequ.core.iot.downlink import local_downlink
from shequ.core.iot.models import DeviceCommand
from shequ.db import session_scope
from shequ.web.app import create_app
from tests.factories import place_tree
from tests.iot_fixtures import IotWorld, build_world
from tests.web.conftest import PASSWORD

API = "/api/v1"


@dataclass
class Site:
    world: IotWorld
    client: TestClient
    tokens: dict[str, str]  # role -> API bearer token
    light: int  # a smart light in committee A (commands)
    far: int  # a smoke detector in another committee (B)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def dev(self, code: str) -> int:
        return self.world.devices[code].id


def _device_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def site(engine: Engine) -> Iterator[Site]:
    from shequ.core.iot.models import Device

    world = build_world(engine)
    tokens: dict[str, str] = {}
    with session_scope(tenant_id=world.tenant_id, actor="test") as s:
        other = place_tree(s, tag="B", lon=121.45, committee_name="南街居委会")
        light = Device(code="SL-1", name="路灯1", type_code="smart_light", place_id=world.tree.compound.id)
        far = Device(code="SD-B1", name="南街烟感", type_code="smoke_detector", place_id=other.room.id)
        s.add_all([light, far])
        s.flush()
        bindings = {"admin": {}, "leader": {}, "dispatcher": {"department": "城运中心"},
                    "committee": {"committees": [world.tree.committee.id]},
                    "property": {"compounds": [world.tree.compound.id]}}
        for role, scope in bindings.items():
            user = iam.create_user(session=s, username=f"{role}_iot", password=PASSWORD, role=role, scope=scope)
            tokens[role] = iam.create_api_token(session=s, user=user, days=1)
        light_id, far_id = light.id, far.id
    app = create_app(tenant_code=world.tenant_code)
    with TestClient(app) as client:
        yield Site(world, client, tokens, light_id, far_id)
    _drop_tenant(world.tenant_id)


def _drop_tenant(tenant_id: int) -> None:
    """Users, their tokens and sessions go with the tenant (other tests count those tables); the
    hot tables carry the tenant id without a foreign key, and SQLite reuses the id."""
    from sqlalchemy import delete

    from shequ.core.iot.models import (
        DeadLetter,
        PlaceStateChange,
        Telemetry,
        TelemetryRollup,
        TwinChange,
    )
    from shequ.core.places.models import Tenant

    with session_scope() as s:
        for model in (DeadLetter, Telemetry, TelemetryRollup, TwinChange, PlaceStateChange):
            s.connection().execute(delete(model.__table__).where(model.__table__.c.tenant_id == tenant_id))
        s.execute(delete(Tenant).where(Tenant.id == tenant_id))


def _telemetry(n: int, **values: object) -> dict[str, object]:
    return {"kind": "telemetry", "id": f"m{n}-{time.time_ns()}", "ts": int(time.time() * 1000), "v": values}


# --- permissions and scope ---------------------------------------------------------------------

def test_new_permissions_are_granted_by_role(site: Site) -> None:
    c = site.client
    light = site.light
    # committee staff read devices of their committee but may not rotate or command
    assert c.get(f"{API}/devices/{light}/state", headers=site.auth("committee")).status_code == 200
    assert c.post(f"{API}/devices/{light}/token", headers=site.auth("committee")).status_code == 403
    assert c.post(f"{API}/devices/{light}/commands", json={"name": "set_level", "args": {"level_pct": 5}},
                  headers=site.auth("committee")).status_code == 403
    assert c.get(f"{API}/dead-letters", headers=site.auth("committee")).status_code == 403
    # the dispatcher commands and reads dead letters, but manages no credentials
    assert c.get(f"{API}/dead-letters", headers=site.auth("dispatcher")).status_code == 200
    assert c.post(f"{API}/devices/{light}/token", headers=site.auth("dispatcher")).status_code == 403
    assert c.put(f"{API}/devices/{light}/maintenance", json={"on": True},
                 headers=site.auth("dispatcher")).status_code == 403
    # the leader reads, nothing more
    assert c.get(f"{API}/device-types", headers=site.auth("leader")).status_code == 200
    assert c.get(f"{API}/dead-letters", headers=site.auth("leader")).status_code == 403
    assert c.post(f"{API}/devices/{light}/token", headers=site.auth("admin")).status_code == 200


def test_scoped_users_see_only_devices_in_their_area(site: Site) -> None:
    c = site.client
    for role in ("committee", "property"):
        assert c.get(f"{API}/devices/{site.dev('SD-301')}/state", headers=site.auth(role)).status_code == 200
        # a device of another committee does not exist for them — even where they lack the permission
        assert c.get(f"{API}/devices/{site.far}/state", headers=site.auth(role)).status_code == 404
        assert c.post(f"{API}/devices/{site.far}/token", headers=site.auth(role)).status_code == 404
        listed = c.get(f"{API}/devices", headers=site.auth(role)).json()
        codes = {d["code"] for d in listed["items"]}
        assert "SD-B1" not in codes and "SD-301" in codes
    assert c.get(f"{API}/devices/{site.far}/state", headers=site.auth("leader")).status_code == 200


def test_permission_codes_reach_a_tenant_that_predates_them(session: object) -> None:
    from sqlalchemy import delete
    from sqlalchemy.orm import Session

    from shequ.core.iam.models import RolePermission

    assert isinstance(session, Session)
    tenant_id = session.info["tenant_id"]
    iam.role_permissions(session=session)
    # as an issue-3 tenant: its table without the device codes and without their markers
    session.execute(delete(RolePermission).where(RolePermission.permission.in_(iam.ADDED_CODES)))
    iam._permission_cache.pop(tenant_id, None)
    table = iam.role_permissions(session=session)
    assert iam.DEVICE_READ in table["committee"] and iam.DEVICE_COMMAND in table["dispatcher"]
    # an administrator's removal sticks: the defaults are offered once
    iam.set_role_permissions(session=session, role="committee", permissions=["registry.read"])
    iam._permission_cache.pop(tenant_id, None)
    assert iam.DEVICE_READ not in iam.role_permissions(session=session)["committee"]


# --- device types and state --------------------------------------------------------------------

def test_device_types_and_state_with_units(site: Site) -> None:
    c = site.client
    types = c.get(f"{API}/device-types", headers=site.auth("committee")).json()["items"]
    assert {"smoke_detector", "smart_light"} <= {t["code"] for t in types}
    one = c.get(f"{API}/device-types/smart_light", headers=site.auth("committee")).json()
    assert one["commands"][0]["name"] == "set_level"
    assert c.get(f"{API}/device-types/no_such", headers=site.auth("committee")).status_code == 404

    sd = site.dev("SD-301")
    r = c.post(f"{API}/ingest", json={"messages": [_telemetry(1, smoke=False, temperature_c=21.5)]},
               headers=_device_auth(site.world.tokens["SD-301"]))
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    state = c.get(f"{API}/devices/{sd}/state", headers=site.auth("committee")).json()
    assert state["condition"] == "ok" and state["online"] is True
    temp = next(a for a in state["attrs"] if a["name"] == "temperature_c")
    assert temp == {"name": "temperature_c", "label": "温度", "unit": "℃", "type": "float", "value": 21.5}
    history = c.get(f"{API}/devices/{sd}/telemetry", params={"field": "temperature_c", "grain": "raw"},
                    headers=site.auth("committee")).json()
    assert [p["v"] for p in history["points"]] == [21.5]
    bad = c.get(f"{API}/devices/{sd}/telemetry", params={"field": "smoke"}, headers=site.auth("committee"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "field"


# --- credentials and HTTP ingest --------------------------------------------------------------

def test_rotate_refuses_the_old_token_and_revoke_refuses_all(site: Site) -> None:
    c = site.client
    sd = site.dev("SD-302")
    old = site.world.tokens["SD-302"]
    assert c.post(f"{API}/ingest", json={"messages": [_telemetry(1, smoke=False)]},
                  headers=_device_auth(old)).json()["accepted"] == 1
    issued = c.post(f"{API}/devices/{sd}/token", headers=site.auth("admin")).json()
    new = issued["token"]
    assert new != old and issued["hint"] == new[-4:]
    refused = c.post(f"{API}/ingest", json={"messages": [_telemetry(2, smoke=False)]}, headers=_device_auth(old))
    assert refused.status_code == 401
    letters = c.get(f"{API}/dead-letters", params={"reason": "bad_token"}, headers=site.auth("admin")).json()
    assert letters["total"] == 1 and letters["counts"]["bad_token"] == 1
    one = c.get(f"{API}/dead-letters/{letters['items'][0]['id']}", headers=site.auth("admin")).json()
    assert '"smoke":false' in one["payload"]
    assert c.post(f"{API}/ingest", json={"messages": [_telemetry(3, smoke=False)]},
                  headers=_device_auth(new)).json()["accepted"] == 1
    # the rotation is in the audit log, without the token
    with session_scope(tenant_id=site.world.tenant_id) as s:
        from shequ.core.iam.models import AuditLog

        rows = list(s.scalars(select(AuditLog).where(AuditLog.action == "device_token")))
        assert [r.detail["op"] for r in rows] == ["rotate"] and new not in json.dumps(rows[0].detail)
    assert c.delete(f"{API}/devices/{sd}/token", headers=site.auth("admin")).status_code == 200
    assert c.post(f"{API}/ingest", json={"messages": [_telemetry(4, smoke=False)]},
                  headers=_device_auth(new)).status_code == 401


def test_refused_requests_from_one_address_are_kept_only_up_to_a_cap(site: Site) -> None:
    from shequ.core.iot import service as iot_service

    c = site.client
    window = iot_service._bad_token_window
    window.counts.clear()
    window.clock = lambda: 60.0 * 29_000_000  # one minute throughout, whatever the real clock does
    try:
        cap = iot_service.BAD_TOKEN_KEEP_PER_MINUTE
        for n in range(cap + 10):
            r = c.post(f"{API}/ingest", json={"messages": [_telemetry(n, smoke=False)]},
                       headers=_device_auth(f"sqd_guess_{n}"))
            assert r.status_code == 401  # every one is refused
        letters = c.get(f"{API}/dead-letters", params={"reason": "bad_token"}, headers=site.auth("admin")).json()
        assert letters["total"] == cap  # but only the first ones of the minute are stored
    finally:
        window.clock = time.time
        window.counts.clear()


def test_mixed_batch_stores_the_good_and_dead_letters_the_bad_by_index(site: Site) -> None:
    c = site.client
    now = int(time.time() * 1000)
    batch = [
        _telemetry(1, temperature_c=20.0),
        {"kind": "telemetry", "id": "x2", "ts": now, "v": {"colour": "red"}},  # unknown field
        {"kind": "telemetry", "id": "x3", "ts": now + 86_400_000, "v": {"smoke": False}},  # a day ahead
        "not an object",
        {"id": "x5", "ts": now, "v": {"smoke": False}},  # no kind
        {"kind": "event", "id": "x6", "ts": now, "type": "no_such_event"},
        _telemetry(7, temperature_c=22.0),
    ]
    r = c.post(f"{API}/ingest", json={"messages": batch}, headers=_device_auth(site.world.tokens["SD-301"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["dead"]) == (2, 5)
    by_index = {x["index"]: x for x in body["results"]}
    assert [by_index[i]["status"] for i in range(7)] == ["accepted", "dead", "dead", "dead", "dead", "dead",
                                                         "accepted"]
    assert [by_index[i]["reason"] for i in (1, 2, 3, 4, 5)] == ["schema", "time_range", "bad_message",
                                                               "bad_message", "schema"]
    assert "colour" in by_index[1]["detail"] and "messages[3]" in by_index[3]["detail"]
    letters = c.get(f"{API}/dead-letters", params={"device": "SD-301"}, headers=site.auth("dispatcher")).json()
    assert letters["total"] == 5
    assert letters["counts"] == {"schema": 2, "time_range": 1, "bad_message": 2}
    # sent again: the good ones are duplicates, nothing is stored twice
    again = c.post(f"{API}/ingest", json={"messages": [batch[0]]},
                   headers=_device_auth(site.world.tokens["SD-301"])).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)


def test_ingest_limits_and_bad_bodies(site: Site) -> None:
    c = site.client
    auth = _device_auth(site.world.tokens["SD-301"])
    too_many = {"messages": [{"kind": "telemetry"}] * 5001}
    assert c.post(f"{API}/ingest", json=too_many, headers=auth).status_code == 413
    big = b'{"messages": ["' + b"x" * (5 * 1024 * 1024) + b'"]}'
    assert c.post(f"{API}/ingest", content=big, headers={**auth, "content-type": "application/json"}
                  ).status_code == 413
    r = c.post(f"{API}/ingest", content=b"{nope", headers={**auth, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
    # a user's API token is not a device token
    assert c.post(f"{API}/ingest", json={"messages": []}, headers=site.auth("admin")).status_code == 401


# --- commands ---------------------------------------------------------------------------------

def test_command_lifecycle_acked_failed_timed_out(site: Site, engine: Engine) -> None:
    c = site.client
    light_token = _issue(site, site.light)
    got: list[dict[str, object]] = []
    answer = {"ok": True}

    def device(tenant: str, code: str, payload: bytes) -> None:
        """The street light: takes the command and replies over HTTP with its token."""
        if code != "SL-1":
            return
        command = json.loads(payload)
        got.append(command)
        if answer.get("silent"):
            return
        reply = {"kind": "reply", "id": f"r{command['id']}", "ts": int(time.time() * 1000), "cmd": command["id"],
                 "ok": answer["ok"], "result": {"level_pct": command["args"]["level_pct"]},
                 **({} if answer["ok"] else {"error": "driver fault"})}
        r = c.post(f"{API}/ingest", json={"messages": [reply]}, headers=_device_auth(light_token))
        assert r.json()["accepted"] == 1, r.text

    local_downlink().subscribe(device)
    try:
        refused = c.post(f"{API}/devices/{site.light}/commands", json={"name": "set_level", "args": {"level_pct": 150}},
                         headers=site.auth("dispatcher"))
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "args.level_pct"
        unknown = c.post(f"{API}/devices/{site.light}/commands", json={"name": "explode"},
                         headers=site.auth("dispatcher"))
        assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "name"

        sent = c.post(f"{API}/devices/{site.light}/commands", json={"name": "set_level", "args": {"level_pct": 40}},
                      headers=site.auth("dispatcher"))
        assert sent.status_code == 201, sent.text
        first = sent.json()
        assert got[-1] == {"id": first["id"], "name": "set_level", "args": {"level_pct": 40}}
        shown = c.get(f"{API}/commands/{first['id']}", headers=site.auth("committee")).json()
        assert shown["status"] == "acked" and shown["result"] == {"level_pct": 40} and shown["sent_at"]

        answer["ok"] = False
        failed = c.post(f"{API}/devices/{site.light}/commands", json={"name": "set_level", "args": {"level_pct": 10}},
                        headers=site.auth("dispatcher")).json()
        shown = c.get(f"{API}/commands/{failed['id']}", headers=site.auth("dispatcher")).json()
        assert shown["status"] == "failed" and shown["result"]["error"] == "driver fault"

        answer["silent"] = True
        quiet = c.post(f"{API}/devices/{site.light}/commands", json={"name": "set_level", "args": {"level_pct": 70}},
                       headers=site.auth("dispatcher")).json()
        assert quiet["status"] == "sent"
    finally:
        local_downlink().unsubscribe(device)
    deadline = time.time() + 3600  # as the worker's sweep would see it an hour later
    with engine.begin() as conn:
        assert cmds.sweep_commands(conn, int(deadline * 1000)) >= 1
    listed = c.get(f"{API}/devices/{site.light}/commands", headers=site.auth("committee")).json()
    assert [x["status"] for x in listed] == ["timed_out", "failed", "acked"]
    # the committee of another area cannot read these commands
    assert c.get(f"{API}/commands/{quiet['id']}", headers=site.auth("committee")).status_code == 200


def test_a_reply_from_another_device_changes_nothing(site: Site, engine: Engine) -> None:
    with session_scope(tenant_id=site.world.tenant_id) as s:
        from shequ.core.iot.models import Device

        light = s.scalar(select(Device).where(Device.id == site.light))
        assert light is not None
        cmd = cmds.send_command(session=s, device=light, name="set_level", args={"level_pct": 1})
        cmd_id = cmd.id
    with engine.begin() as conn:
        assert cmds.apply_replies(conn, [(site.dev("SD-301"), int(time.time() * 1000), cmd_id, True, {}, None)]) == 0
        assert cmds.apply_replies(conn, [(site.light, int(time.time() * 1000), cmd_id, True, {"a": 1}, None)]) == 1
        assert cmds.apply_replies(conn, [(site.light, int(time.time() * 1000), cmd_id, False, {}, "late")]) == 0
    with session_scope(tenant_id=site.world.tenant_id) as s:
        row = s.scalar(select(DeviceCommand).where(DeviceCommand.id == cmd_id))
        assert row is not None and row.status == "acked" and row.result == {"a": 1}


def _issue(site: Site, device_id: int) -> str:
    r = site.client.post(f"{API}/devices/{device_id}/token", headers=site.auth("admin"))
    assert r.status_code == 200
    return str(r.json()["token"])


# --- maintenance ------------------------------------------------------------------------------

def test_maintenance_moves_the_condition(site: Site) -> None:
    c = site.client
    sd = site.dev("SD-301")
    c.post(f"{API}/ingest", json={"messages": [_telemetry(1, smoke=True)]},
           headers=_device_auth(site.world.tokens["SD-301"]))
    assert c.get(f"{API}/devices/{sd}/state", headers=site.auth("admin")).json()["condition"] == "alarm"
    on = c.put(f"{API}/devices/{sd}/maintenance", json={"on": True, "note": "更换电池"}, headers=site.auth("admin"))
    assert on.status_code == 200, on.text
    assert on.json()["status"] == "maintenance" and on.json()["condition"] == "maintenance"
    off = c.put(f"{API}/devices/{sd}/maintenance", json={"on": False}, headers=site.auth("admin")).json()
    assert off["status"] == "active" and off["condition"] == "alarm"


# --- metrics ----------------------------------------------------------------------------------

def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}}" if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_accepted_and_dead(site: Site) -> None:
    c = site.client
    before = c.get("/metrics").text
    auth = _device_auth(site.world.tokens["SD-301"])
    c.post(f"{API}/ingest", json={"messages": [_telemetry(1, smoke=False), {"kind": "telemetry", "id": "b",
                                                                            "ts": 1, "v": {}}]}, headers=auth)
    after = c.get("/metrics")
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    text = after.text
    key = "shequ_ingest_messages_total"
    assert _sample(text, key, transport="http", outcome="accepted") - \
        _sample(before, key, transport="http", outcome="accepted") == 1
    assert _sample(text, key, transport="http", outcome="dead") - _sample(before, key, transport="http",
                                                                          outcome="dead") == 1
    code = site.world.tenant_code
    assert _sample(text, "shequ_devices", tenant=code) == 7
    assert _sample(text, "shequ_devices_online", tenant=code) == 1
    assert _sample(text, "shequ_dead_letters_last_hour", tenant=code, reason="time_range") == 1
