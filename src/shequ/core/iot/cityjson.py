"""CityJSON 2.0 export of the community model: every building an LoD1 solid, its footprint
extruded from the ground to its height, in CGCS2000 / 3-degree Gauss-Kruger CM 120E (EPSG:4549).

Footprints are stored in WGS84 (EPSG:4326); they are projected from 4326, not 4490: the two
datums differ by centimetres, which PROJ treats as a null ("ballpark") shift, and naming the
datum the data really is in keeps the export honest should a grid shift ever be installed.
Vertices are written east, north, up (CityJSON's x, y, z order whatever the CRS's axis order),
as integers of millimetres after the transform, deduplicated across the file.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.polygon import orient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.iot.twin_read import FLOOR_HEIGHT_M, building_height
from shequ.core.places.models import Place, PlaceKind, Tenant

SOURCE_CRS = "EPSG:4326"
TARGET_EPSG = 4549
REFERENCE_SYSTEM = f"https://www.opengis.net/def/crs/EPSG/0/{TARGET_EPSG}"
SCALE = 0.001  # millimetres
MEDIA_TYPE = "application/city+json"

Ring = list[int]  # vertex indices, not closed (CityJSON repeats no vertex)
Surface = list[Ring]  # outer ring, then holes


@lru_cache(maxsize=1)
def _transformer() -> Transformer:
    return Transformer.from_crs(SOURCE_CRS, f"EPSG:{TARGET_EPSG}", always_xy=True)


class _Vertices:
    """Integer vertices after the transform, each stored once."""

    def __init__(self, translate: tuple[float, float, float]) -> None:
        self.translate = translate
        self.index: dict[tuple[int, int, int], int] = {}
        self.items: list[list[int]] = []

    def add(self, x: float, y: float, z: float) -> int:
        tx, ty, tz = self.translate
        key = (round((x - tx) / SCALE), round((y - ty) / SCALE), round((z - tz) / SCALE))
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.items)
            self.items.append(list(key))
        return found


def _projected(geometry: dict[str, Any]) -> list[Polygon]:
    """The footprint's polygons in metres, exteriors counter-clockwise seen from above."""
    geom = shape(geometry)
    polygons = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom] if isinstance(geom, Polygon) else []
    project = _transformer().transform
    out = []
    for poly in polygons:
        if poly.is_empty:
            continue
        exterior = list(zip(*project(*poly.exterior.xy), strict=True))
        holes = [list(zip(*project(*ring.xy), strict=True)) for ring in poly.interiors]
        projected = orient(Polygon(exterior, holes), sign=1.0)
        if projected.area > 0:
            out.append(projected)
    return out


def _ring(vertices: _Vertices, coords: Sequence[tuple[float, ...]], z: float) -> Ring:
    """A ring's vertex indices at height z, without the closing repeat or repeats from rounding."""
    ring: Ring = []
    for x, y, *_ in coords[:-1]:  # shapely rings repeat the first point at the end
        i = vertices.add(x, y, z)
        if not ring or ring[-1] != i:
            ring.append(i)
    while len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()
    return ring


def _shell(vertices: _Vertices, poly: Polygon, height: float) -> list[Surface] | None:
    """The closed shell of a footprint extruded to ``height``: bottom, top, one wall per edge,
    every outer ring counter-clockwise seen from outside (normals point outwards)."""
    rings = [poly.exterior, *poly.interiors]  # exterior CCW, holes CW, seen from above
    bottoms = [_ring(vertices, list(r.coords), 0.0) for r in rings]
    tops = [_ring(vertices, list(r.coords), height) for r in rings]
    if len(bottoms[0]) < 3 or len(set(tops[0]) - set(bottoms[0])) < 3:
        return None  # a footprint smaller than the grid of millimetres, or no height
    keep = [n for n, r in enumerate(bottoms) if len(r) >= 3]
    shell: list[Surface] = [
        [list(reversed(bottoms[n])) for n in keep],  # seen from below: the order flips
        [tops[n] for n in keep],
    ]
    for n in keep:
        bottom, top = bottoms[n], tops[n]
        for k in range(len(bottom)):
            a, b = k, (k + 1) % len(bottom)
            # the solid lies left of each edge (a → b); from outside, a0 b0 b1 a1 turns counter-clockwise
            shell.append([[bottom[a], bottom[b], top[b], top[a]]])
    return shell


def _attributes(place: Place, height: float) -> dict[str, Any]:
    attrs: dict[str, Any] = {"name": place.name, "measuredHeight": round(height, 3),
                             "shequPlaceId": place.id, "shequCode": place.code}
    if place.floors:
        attrs["storeysAboveGround"] = place.floors
    if place.built_year:
        attrs["yearOfConstruction"] = place.built_year
    if place.use:
        attrs["function"] = place.use
    if place.address_text:
        attrs["address"] = place.address_text
    return attrs


def _buildings(session: Session, committee_id: int | None) -> list[Place]:
    stmt = select(Place).where(Place.kind == PlaceKind.BUILDING, Place.geometry.is_not(None)).order_by(Place.id)
    if committee_id is not None:
        stmt = stmt.where(Place.committee_id == committee_id)
    return list(session.scalars(stmt))


def _translate(footprints: Iterable[list[Polygon]]) -> tuple[float, float, float]:
    xs, ys = [], []
    for polys in footprints:
        for poly in polys:
            minx, miny, _, _ = poly.bounds
            xs.append(minx)
            ys.append(miny)
    # whole metres, so the integer vertices read as millimetres from a round origin
    return (float(int(min(xs))), float(int(min(ys))), 0.0) if xs else (0.0, 0.0, 0.0)


def export_cityjson(session: Session, *, committee_id: int | None = None) -> dict[str, Any]:
    """The buildings in the session's scope (optionally of one committee) as a CityJSON 2.0 object.

    A building without a footprint is left out; one without a known height gets one storey of
    3 m. A footprint of several polygons becomes a MultiSolid.
    """
    buildings = _buildings(session, committee_id)
    footprints = {b.id: _projected(b.geometry or {}) for b in buildings}
    vertices = _Vertices(_translate(footprints.values()))
    objects: dict[str, Any] = {}
    for place in buildings:
        height = building_height(height_m=place.height_m, floors=place.floors) or FLOOR_HEIGHT_M
        shells = [s for s in (_shell(vertices, poly, height) for poly in footprints[place.id]) if s]
        if not shells:
            continue
        if len(shells) == 1:
            geometry = {"type": "Solid", "lod": "1", "boundaries": [shells[0]]}
        else:
            geometry = {"type": "MultiSolid", "lod": "1", "boundaries": [[s] for s in shells]}
        objects[f"building-{place.id}"] = {"type": "Building", "attributes": _attributes(place, height),
                                           "geometry": [geometry]}
    metadata: dict[str, Any] = {"referenceSystem": REFERENCE_SYSTEM, "title": _title(session),
                                "referenceDate": dt.datetime.now(dt.UTC).date().isoformat()}
    if vertices.items:
        tx, ty, tz = vertices.translate
        lows = [min(v[i] for v in vertices.items) for i in range(3)]
        highs = [max(v[i] for v in vertices.items) for i in range(3)]
        origin = (tx, ty, tz)
        metadata["geographicalExtent"] = [round(origin[i] + lows[i] * SCALE, 3) for i in range(3)] + [
            round(origin[i] + highs[i] * SCALE, 3) for i in range(3)]
    return {
        "type": "CityJSON",
        "version": "2.0",
        "transform": {"scale": [SCALE, SCALE, SCALE], "translate": list(vertices.translate)},
        "metadata": metadata,
        "CityObjects": objects,
        "vertices": vertices.items,
    }


def _title(session: Session) -> str:
    tenant_id = session.info.get("tenant_id")
    tenant = session.get(Tenant, tenant_id) if tenant_id is not None else None
    return f"{tenant.name} 社区三维模型 (LoD1)" if tenant else "社区三维模型 (LoD1)"


def filename(session: Session) -> str:
    """The download name: the tenant's code and today's date (Asia/Shanghai)."""
    from zoneinfo import ZoneInfo

    tenant_id = session.info.get("tenant_id")
    tenant = session.get(Tenant, tenant_id) if tenant_id is not None else None
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    return f"shequ-{tenant.code if tenant else 'model'}-{today}.city.json"


def write_cityjson(session: Session, out: Any, *, committee_id: int | None = None) -> int:
    """Write the export to a path or a text file; returns the number of buildings (for the CLI
    command ``shequ twin export-cityjson --out file``)."""
    model = export_cityjson(session, committee_id=committee_id)
    text = json.dumps(model, ensure_ascii=False, separators=(",", ":"))
    if hasattr(out, "write"):
        out.write(text)
    else:
        from pathlib import Path

        Path(out).write_text(text, encoding="utf-8")
    return len(model["CityObjects"])
