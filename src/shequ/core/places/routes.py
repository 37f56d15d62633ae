"""Routes of places: children of a place and point lookup in the API, and the cascading
place picker (grid › committee › compound › building) of the registry pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.places.models import Place, PlaceKind
from shequ.core.places.service import locate, path
from shequ.core.registry.kinds import label
from shequ.web.deps import SessionDep, lang_of, render, require
from shequ.web.records import RecordId
from shequ.web.security import csrf_protect

api = APIRouter(tags=["places"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
ApiReader = Annotated[User, Depends(require(iam.READ, api=True))]
PageReader = Annotated[User, Depends(require(iam.READ, api=False))]

PICKER_LEVELS = (PlaceKind.GRID, PlaceKind.COMMITTEE, PlaceKind.COMPOUND, PlaceKind.BUILDING)


def _brief(place: Place | None, lang: str) -> dict[str, Any] | None:
    if place is None:
        return None
    return {"id": place.id, "kind": place.kind, "kind_label": label("place_kind", place.kind, lang),
            "code": place.code, "name": place.name, "address": place.address_text,
            "lon": place.lon, "lat": place.lat}


def _place(session: Any, place_id: int) -> Place | None:
    return session.scalar(select(Place).where(Place.id == place_id))


@api.get("/places/locate", summary="The grid, committee and compound containing a WGS84 point")
def locate_point(request: Request, session: SessionDep, user: ApiReader,
                 lon: Annotated[float, Query(ge=-180, le=180)],
                 lat: Annotated[float, Query(ge=-90, le=90)]) -> Any:
    found = locate(session=session, lon=lon, lat=lat)
    lang = lang_of(request)
    return {key: _brief(_place(session, pid), lang) if pid else None
            for key, pid in (("grid", found.grid_id), ("committee", found.committee_id),
                             ("compound", found.compound_id))}


@api.get("/places/{place_id:int}/children", summary="The places directly under a place")
def children(request: Request, place_id: RecordId, session: SessionDep, user: ApiReader) -> Any:
    if _place(session, place_id) is None:
        raise HTTPException(status_code=404, detail=f"地点 {place_id} 不存在 (not found)")
    lang = lang_of(request)
    rows = session.scalars(select(Place).where(Place.parent_id == place_id).order_by(Place.code))
    return {"items": [_brief(p, lang) for p in rows]}


def picker_levels(*, session: Any, place_id: int | None, lang: str) -> list[dict[str, Any]]:
    """The select boxes of the cascading picker for a selected place: one per level down to
    the level below the selection, each with its options and the chosen one."""
    chosen: dict[str, Place] = {}
    selected = _place(session, place_id) if place_id else None
    if selected is not None:
        for p in path(session=session, place=selected):
            chosen[p.kind] = p
    levels = []
    parent: Place | None = None
    for kind in PICKER_LEVELS:
        if kind == PlaceKind.GRID:
            stmt = select(Place).where(Place.kind == kind)
        elif parent is None:
            break
        else:
            stmt = select(Place).where(Place.parent_id == parent.id, Place.kind == kind)
        options = list(session.scalars(stmt.order_by(Place.code)))
        if not options:
            continue  # e.g. buildings directly under a committee, with no compound level
        current = chosen.get(kind)
        levels.append({"kind": kind, "label": label("place_kind", kind, lang), "options": options,
                       "current": current.id if current else None,
                       "all_value": parent.id if parent else ""})
        if current is None:
            break
        parent = current
    return levels


@pages.get("/places/picker")
def picker(request: Request, session: SessionDep, user: PageReader, pick: str = "") -> Response:
    place_id = int(pick) if pick.isdigit() else None
    levels = picker_levels(session=session, place_id=place_id, lang=lang_of(request))
    return render(request, "places/_picker.html", levels=levels, place_id=place_id or "")
