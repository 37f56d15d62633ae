"""Routes of the digital twin (数字孪生): the buildings layer with live state, a place or a
device as it is now or was at a past moment, and the CityJSON download of the community model.

Places and devices are found through the scoped session, so a building of another area answers
404, exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.responses import Response

from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot import cityjson, twin_read
from shequ.core.iot.models import Device
from shequ.web.deps import SHANGHAI, ApiUser, SessionDep, require
from shequ.web.records import MAX_ID, BadParam, RecordId

api = APIRouter(prefix="/twin", tags=["twin"])
ApiReader = Annotated[User, Depends(require(iam.READ, api=True))]
At = Annotated[str | None, Query(max_length=40, description=(
    "the moment to replay: ISO 8601 (with an offset; without one, Asia/Shanghai) or epoch "
    "milliseconds; left out: now"))]
GEOJSON = "application/geo+json"


def parse_at(raw: str | None, field: str = "at") -> int | None:
    """A moment as epoch milliseconds (UTC), or None for now."""
    if raw in (None, ""):
        return None
    try:
        if raw.lstrip("-").isdigit():
            value = dt.datetime.fromtimestamp(int(raw) / 1000, dt.UTC)
        else:
            value = dt.datetime.fromisoformat(raw)
    except (ValueError, OverflowError, OSError):
        raise BadParam(field, f"应为 ISO 8601 时间或毫秒时间戳，收到 {raw!r}（ISO 8601 or epoch ms）") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return int(value.timestamp() * 1000)


def parse_bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    if raw in (None, ""):
        return None
    try:
        west, south, east, north = (float(p) for p in raw.split(","))
    except ValueError:
        raise BadParam("bbox", "应为 最小经度,最小纬度,最大经度,最大纬度（min lon,min lat,max lon,max lat）") from None
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise BadParam("bbox", "范围无效（west ≤ east, south ≤ north, within ±180/±90）")
    return west, south, east, north


def _iso(ms: int | None) -> str | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


@api.get("/buildings.geojson", summary="Buildings with footprint, floors, height and live state (GeoJSON)",
         response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}})
def buildings(session: SessionDep, user: ApiReader,
              committee_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
              bbox: Annotated[str | None, Query(max_length=100, description="min lon,min lat,max lon,max lat")]
              = None) -> Response:
    layer = twin_read.buildings_geojson(session, bbox=parse_bbox(bbox), committee_id=committee_id)
    return JSONResponse(layer, media_type=GEOJSON)


@api.get("/places/{place_id:int}", summary="A place's state, its children and its devices, now or at a past moment")
def place(place_id: RecordId, session: SessionDep, user: ApiReader, at: At = None) -> Any:
    at_ms = parse_at(at)
    # the devices within are shown to those who may read devices; the counts to every reader
    cap = twin_read.DEVICE_CAP if iam.can(user, iam.DEVICE_READ) else 0
    twin = twin_read.place_twin_at(session, place_id, at_ms, device_cap=cap)
    if twin is None:
        raise HTTPException(status_code=404, detail=f"地点 {place_id} 不存在 (not found)")
    twin["at"] = _iso(at_ms)
    return twin


@api.get("/devices/{record_id:int}", summary="A device's twin, now or at a past moment")
def device(record_id: RecordId, session: SessionDep, user: ApiUser, at: At = None) -> Any:
    # found through the scoped session first: a device of another area is "not found", and a
    # refusal never tells whether it exists (as on the other device routes)
    found = session.scalar(select(Device).where(Device.id == record_id))
    if found is None:
        raise HTTPException(status_code=404, detail=f"设备 {record_id} 不存在 (not found)")
    if not iam.can(user, iam.DEVICE_READ):
        raise HTTPException(status_code=403, detail=f"无权限 (permission {iam.DEVICE_READ} required)")
    at_ms = parse_at(at)
    if at_ms is None:
        twins = twin_read.device_twin_now(session, [found.id])
    else:
        twins = twin_read.device_twin_at(session, [found.id], at_ms)
    twin = twins.get(found.id) or {"attrs": {}, "online": None, "condition": "unknown", "ts": None}
    return {"id": found.id, "code": found.code, "name": found.name, "type": found.type_code,
            "place_id": found.place_id, "status": found.status, "at": _iso(at_ms), **twin}


@api.get("/cityjson", summary="The community model as CityJSON 2.0 (LoD1 buildings, EPSG:4549)",
         response_class=Response, responses={200: {"content": {cityjson.MEDIA_TYPE: {}}}})
def city_model(session: SessionDep, user: ApiReader,
               committee_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Response:
    model = cityjson.export_cityjson(session, committee_id=committee_id)
    body = json.dumps(model, ensure_ascii=False, separators=(",", ":"))
    return Response(body, media_type=cityjson.MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{cityjson.filename(session)}"'})
