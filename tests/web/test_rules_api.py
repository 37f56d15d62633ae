"""The rules API as a rule editor meets it: create, change (every save a version), refusals that
name the field, enable and disable, the catalogue of kinds, the default rules, and the dry run
over telemetry stored by the real pipeline."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iot.pipeline import now_ms
from tests.factories import place_tree
from tests.web.conftest import PASSWORD
from tests.web.test_alarms_api import Site, site  # noqa: F401 - the committed-tenant fixture

API = "/api/v1"
HOT: dict[str, Any] = {
    "code": "hot", "name": "温度过高", "kind": "threshold", "severity": "MAJOR",
    "target": {"device_types": ["smoke_detector"]},
    "spec": {"field": "temperature_c", "op": ">", "value": 60, "clear_value": 50},
}


def test_create_update_and_versions(client: TestClient, auth: dict[str, str]) -> None:
    created = client.post(f"{API}/rules", json=HOT, headers=auth)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (rule["version"], rule["enabled"], rule["alarm_type"]) == (1, True, "hot")
    assert rule["actions"] == [] and [v["version"] for v in rule["versions"]] == [1]

    changed = client.put(f"{API}/rules/{rule['id']}", json={"spec": {**HOT["spec"], "value": 55, "clear_value": 45}},
                         headers=auth)
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2 and changed.json()["spec"]["value"] == 55
    assert changed.json()["name"] == "温度过高"  # a partial body keeps the rest
    # the same body again is no new version
    assert client.put(f"{API}/rules/{rule['id']}", json={"name": "温度过高"}, headers=auth).json()["version"] == 2

    history = client.get(f"{API}/rules/{rule['id']}/versions", headers=auth).json()
    assert [(v["version"], v["body"]["spec"]["value"], v["saved_by"]) for v in history] == [
        (2, 55, "admin1"), (1, 60, "admin1")]
    detail = client.get(f"{API}/rules/{rule['id']}", headers=auth).json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]

    disabled = client.post(f"{API}/rules/{rule['id']}/disable", headers=auth).json()
    assert disabled["enabled"] is False and disabled["version"] == 3
    assert client.get(f"{API}/rules", params={"enabled": "false"}, headers=auth).json()["total"] == 1
    assert client.get(f"{API}/rules", params={"enabled": "true"}, headers=auth).json()["total"] == 0
    assert client.post(f"{API}/rules/{rule['id']}/enable", headers=auth).json()["enabled"] is True
    assert client.get(f"{API}/rules", params={"kind": "threshold"}, headers=auth).json()["total"] == 1
    assert client.get(f"{API}/rules", params={"kind": "absence"}, headers=auth).json()["total"] == 0
    assert client.get(f"{API}/rules/999999", headers=auth).status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"spec": {"field": "x", "op": "=~", "value": 1}}, "spec.op"),
    ({"spec": {"field": "x", "op": ">", "value": 1, "bogus": 2}}, "spec.bogus"),
    ({"actions": [{"do": "format_disk"}]}, "actions"),
    ({"target": {"device_types": ["toaster"]}}, "target.device_types"),
    ({"severity": "APOCALYPTIC"}, "severity"),
    ({"window": {"start": "25:00", "end": "06:00"}}, "window.start"),
    ({"code": "Bad Code"}, "code"),
    ({"kind": "telepathy"}, "kind"),
])
def test_a_bad_rule_is_refused_naming_the_field(client: TestClient, auth: dict[str, str],
                                                change: dict[str, Any], field: str) -> None:
    refused = client.post(f"{API}/rules", json={**HOT, **change}, headers=auth)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == field
    assert client.get(f"{API}/rules", headers=auth).json()["total"] == 0


def test_a_bad_change_is_refused_and_keeps_the_rule(client: TestClient, auth: dict[str, str]) -> None:
    rule = client.post(f"{API}/rules", json=HOT, headers=auth).json()
    refused = client.put(f"{API}/rules/{rule['id']}", json={"spec": {"field": "x", "op": "~"}}, headers=auth)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "spec.op"
    renamed = client.put(f"{API}/rules/{rule['id']}", json={"code": "other"}, headers=auth)
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["field"] == "code"
    again = client.post(f"{API}/rules", json=HOT, headers=auth)
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "code"
    assert client.get(f"{API}/rules/{rule['id']}", headers=auth).json()["version"] == 1


def test_rule_kinds_give_the_schemas_for_forms(client: TestClient, auth: dict[str, str]) -> None:
    kinds = client.get(f"{API}/rule-kinds", headers=auth).json()
    by_code = {k["code"]: k for k in kinds["kinds"]}
    assert {"threshold", "event", "absence", "stale", "rate", "geofence", "composite"} <= set(by_code)
    assert by_code["threshold"]["label"] == "阈值"
    assert set(by_code["threshold"]["spec_schema"]["properties"]) >= {"field", "op", "value", "for_s"}
    assert "when" in by_code["composite"]["spec_schema"]["properties"]
    assert {a["do"] for a in kinds["actions"]} == {"alarm", "command", "case", "notify", "webhook"}
    assert kinds["severities"][0] == "CRITICAL"


def test_default_rules_are_installed_once(client: TestClient, auth: dict[str, str]) -> None:
    first = client.post(f"{API}/rules/install-defaults", headers=auth).json()["installed"]
    assert {"smoke", "smoke_event", "gas"} <= set(first)
    assert client.post(f"{API}/rules/install-defaults", headers=auth).json()["installed"] == []
    listed = {r["code"]: r for r in client.get(f"{API}/rules", headers=auth).json()["items"]}
    assert listed["smoke"]["origin"] == "default" and listed["smoke"]["severity"] == "CRITICAL"


def test_readers_read_and_only_managers_change(client: TestClient, session: Session, auth: dict[str, str]) -> None:
    rule = client.post(f"{API}/rules", json=HOT, headers=auth).json()
    leader = iam.create_user(session=session, username="leader1", password=PASSWORD, role="leader")
    tree = place_tree(session)
    committee = iam.create_user(session=session, username="committee1", password=PASSWORD, role="committee",
                                scope={"committees": [tree.committee.id]})
    lead = {"Authorization": f"Bearer {iam.create_api_token(session=session, user=leader, days=1)}"}
    comm = {"Authorization": f"Bearer {iam.create_api_token(session=session, user=committee, days=1)}"}
    assert client.get(f"{API}/rules/{rule['id']}", headers=lead).status_code == 200
    assert client.put(f"{API}/rules/{rule['id']}", json={"name": "x"}, headers=lead).status_code == 403
    assert client.post(f"{API}/rules/{rule['id']}/disable", headers=lead).status_code == 403
    assert client.post(f"{API}/rules", json={**HOT, "code": "hot2"}, headers=lead).status_code == 403
    assert client.get(f"{API}/rules", headers=comm).status_code == 403
    # a rule that does not exist is 404 before any permission is checked
    assert client.put(f"{API}/rules/999999", json={"name": "x"}, headers=lead).status_code == 404


def test_dry_run_over_stored_telemetry(site: Site) -> None:  # noqa: F811 - the fixture
    base = now_ms() - 2 * 86_400_000
    for k, temp in enumerate([40, 65, 70, 45, 80, 30]):  # above 60 in two separate spells
        site.send("SD-301", ts=base + k * 600_000, v={"temperature_c": temp})
    c, auth = site.client, site.auth("dispatcher")
    body = {"kind": "threshold", "target": {"device_types": ["smoke_detector"]},
            "spec": {"field": "temperature_c", "op": ">", "value": 60}}
    result = c.post(f"{API}/rules/dry-run", json={**body, "days": 3}, headers=auth)
    assert result.status_code == 200, result.text
    found = result.json()
    assert (found["fired"], found["cleared"], found["messages"], found["devices"]) == (2, 2, 6, 2)
    assert [e["what"] for e in found["events"]] == ["fire", "clear", "fire", "clear"]
    assert found["events"][0]["device_id"] == site.world.devices["SD-301"].id
    # one day back sees none of it
    assert c.post(f"{API}/rules/dry-run", json={**body, "days": 1}, headers=auth).json()["fired"] == 0
    too_far = c.post(f"{API}/rules/dry-run", json={**body, "days": 31}, headers=auth)
    assert too_far.status_code == 422 and too_far.json()["errors"][0]["field"] == "days"
    bad = c.post(f"{API}/rules/dry-run", json={**body, "spec": {"field": "t", "op": "?", "value": 1}}, headers=auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "spec.op"

    saved = c.post(f"{API}/rules", json={**body, "code": "hot_dry", "name": "温度过高"}, headers=auth).json()
    again = c.post(f"{API}/rules/{saved['id']}/dry-run", params={"days": 3}, headers=auth).json()
    assert (again["fired"], again["cleared"]) == (2, 2)
    # the dry run raised nothing
    assert site.alarms() == []
