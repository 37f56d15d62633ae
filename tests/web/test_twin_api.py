"""The twin API: the buildings layer, replay of a place and a device, the CityJSON download, and
what a committee-scoped user may not see."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlalchemy.orm import Session

from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot.models import Device, DeviceState, PlaceState, PlaceStateChange, TwinChange
from tests.factories import Tree, place_tree
from tests.web.conftest import PASSWORD

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T1 = dt.datetime(2025, 6, 15, 9, 30, tzinfo=SHANGHAI)  # the smoke alarm
T2 = dt.datetime(2025, 6, 15, 10, 0, tzinfo=SHANGHAI)  # cleared
MS = 1000


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * MS)


@dataclass
class Twin:
    north: Tree
    south: Tree
    smoke: Device


def _insert(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    session.connection().execute(insert(model.__table__), rows)  # type: ignore[arg-type]


@pytest.fixture
def twin(session: Session) -> Twin:
    north = place_tree(session, tag="N", committee_name="北街居委会")
    south = place_tree(session, tag="S", lon=121.45, committee_name="南街居委会")
    smoke = Device(code="SD-N301", name="301 烟感", type_code="smoke_detector", place_id=north.room.id)
    session.add(smoke)
    session.flush()
    tenant_id = session.info["tenant_id"]
    t0, t1, t2 = ms(T1) - 3_600_000, ms(T1) - 60_000, ms(T2)
    changes = [(t0, "online", True), (t0, "condition", "ok"), (t0, "smoke", False),
               (t1, "smoke", True), (t1, "condition", "alarm"), (t2, "smoke", False), (t2, "condition", "ok")]
    _insert(session, TwinChange, [{"tenant_id": tenant_id, "device_id": smoke.id, "ts": ts, "attr": attr,
                                   "value": json.dumps(v), "previous": None} for ts, attr, v in changes])
    places = [north.building.id, north.unit.id, north.floor.id, north.room.id]
    _insert(session, PlaceStateChange, [
        {"tenant_id": tenant_id, "place_id": pid, "ts": ts, "state": state,
         "counts": json.dumps({"devices": 1, state: 1})}
        for pid in places for ts, state in ((t0, "ok"), (t1, "alarm"), (t2, "ok"))])
    _insert(session, PlaceState, [{"place_id": pid, "tenant_id": tenant_id, "kind": kind, "devices": 1, "ok": 1,
                                   "state": "ok", "ts": t2}
                                  for pid, kind in zip(places, ("building", "unit", "floor", "room"), strict=True)])
    _insert(session, DeviceState, [{"device_id": smoke.id, "tenant_id": tenant_id, "place_id": north.room.id,
                                    "attrs": {"smoke": False}, "reported_ms": t2, "seen_ms": t2, "online": True,
                                    "condition": "ok", "changed_ms": t2}])
    return Twin(north, south, smoke)


def test_a_building_replayed_at_a_past_moment(client: TestClient, auth: dict[str, str], twin: Twin) -> None:
    url = f"/api/v1/twin/places/{twin.north.building.id}"
    then = client.get(url, params={"at": T1.isoformat()}, headers=auth)
    assert then.status_code == 200, then.text
    body = then.json()
    assert body["state"] == "alarm" and body["counts"]["alarm"] == 1
    assert body["at"] == T1.astimezone(dt.UTC).isoformat()
    [device] = body["devices"]
    assert device["code"] == "SD-N301" and device["condition"] == "alarm" and device["attrs"]["smoke"] is True
    now = client.get(url, headers=auth).json()
    assert now["state"] == "ok" and now["devices"][0]["condition"] == "ok" and now["at"] is None
    # without an offset the moment is Asia/Shanghai time
    local = client.get(url, params={"at": "2025-06-15T09:30:00"}, headers=auth).json()
    assert local["state"] == "alarm"
    assert client.get(url, params={"at": "yesterday"}, headers=auth).status_code == 422


def test_a_device_replayed_at_a_past_moment(client: TestClient, auth: dict[str, str], twin: Twin) -> None:
    url = f"/api/v1/twin/devices/{twin.smoke.id}"
    then = client.get(url, params={"at": str(ms(T1))}, headers=auth).json()
    assert then["condition"] == "alarm" and then["online"] is True and then["attrs"] == {"smoke": True}
    now = client.get(url, headers=auth).json()
    assert now["condition"] == "ok" and now["attrs"]["smoke"] is False
    assert client.get("/api/v1/twin/devices/999999", headers=auth).status_code == 404


def test_buildings_layer(client: TestClient, auth: dict[str, str], twin: Twin) -> None:
    response = client.get("/api/v1/twin/buildings.geojson", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    features = {f["properties"]["code"]: f["properties"] for f in response.json()["features"]}
    assert set(features) == {"BN", "BS"}
    assert features["BN"]["state"] == "ok" and features["BS"]["state"] == "unknown"
    south = client.get("/api/v1/twin/buildings.geojson", params={"committee_id": twin.south.committee.id},
                       headers=auth).json()
    assert [f["properties"]["code"] for f in south["features"]] == ["BS"]
    boxed = client.get("/api/v1/twin/buildings.geojson", params={"bbox": "121.39,30.99,121.41,31.01"},
                       headers=auth).json()
    assert [f["properties"]["code"] for f in boxed["features"]] == ["BN"]
    assert client.get("/api/v1/twin/buildings.geojson", params={"bbox": "1,2,3"}, headers=auth).status_code == 422


def test_cityjson_download(client: TestClient, auth: dict[str, str], twin: Twin) -> None:
    response = client.get("/api/v1/twin/cityjson", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/city+json")
    assert "attachment" in response.headers["content-disposition"]
    assert ".city.json" in response.headers["content-disposition"]
    model = response.json()
    assert model["type"] == "CityJSON" and len(model["CityObjects"]) == 2


def test_a_committee_user_sees_only_their_committees_buildings(client: TestClient, session: Session,
                                                               twin: Twin) -> None:
    user = iam.create_user(session=session, username="south1", password=PASSWORD, role="committee",
                           scope={"committees": [twin.south.committee.id]})
    headers = {"Authorization": f"Bearer {iam.create_api_token(session=session, user=user, days=1)}"}
    north_building = client.get(f"/api/v1/twin/places/{twin.north.building.id}", headers=headers)
    assert north_building.status_code == 404
    assert client.get(f"/api/v1/twin/places/{twin.north.building.id}", params={"at": T1.isoformat()},
                      headers=headers).status_code == 404
    assert client.get(f"/api/v1/twin/devices/{twin.smoke.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/twin/places/{twin.south.building.id}", headers=headers).status_code == 200
    layer = client.get("/api/v1/twin/buildings.geojson", headers=headers).json()
    assert [f["properties"]["code"] for f in layer["features"]] == ["BS"]
    model = client.get("/api/v1/twin/cityjson", headers=headers).json()
    assert [o["attributes"]["shequCode"] for o in model["CityObjects"].values()] == ["BS"]


def test_the_twin_needs_a_signed_in_reader(client: TestClient, session: Session, admin: User,
                                           twin: Twin) -> None:
    assert client.get("/api/v1/twin/buildings.geojson").status_code == 401
    narrow = iam.create_api_token(session=session, user=admin, days=1, permissions=[iam.AUDIT_READ])
    headers = {"Authorization": f"Bearer {narrow}"}
    assert client.get("/api/v1/twin/buildings.geojson", headers=headers).status_code == 403
    assert client.get(f"/api/v1/twin/places/{twin.north.building.id}", headers=headers).status_code == 403
