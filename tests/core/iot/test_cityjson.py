"""The CityJSON export: a valid LoD1 model whose solids are closed, outward-facing and as large
as footprint × height."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from pyproj import Transformer
from shapely.geometry import Polygon, shape
from sqlalchemy.orm import Session

from shequ.core.iam.scope import Scope
from shequ.core.iot.cityjson import REFERENCE_SYSTEM, export_cityjson, write_cityjson
from shequ.core.places.service import create_place
from shequ.db import bind_context
from tests.factories import Tree, place_tree

Vec = tuple[float, float, float]


def courtyard(lon: float, lat: float, d: float) -> dict[str, Any]:
    """A square block with a square courtyard; the outer ring given clockwise on purpose."""
    outer = [[lon, lat], [lon, lat + d], [lon + d, lat + d], [lon + d, lat], [lon, lat]]
    q = d / 4
    hole = [[lon + q, lat + q], [lon + 3 * q, lat + q], [lon + 3 * q, lat + 3 * q], [lon + q, lat + 3 * q],
            [lon + q, lat + q]]
    return {"type": "Polygon", "coordinates": [outer, hole]}


def l_shape(lon: float, lat: float, d: float) -> dict[str, Any]:
    ring = [[lon, lat], [lon + 2 * d, lat], [lon + 2 * d, lat + d], [lon + d, lat + d], [lon + d, lat + 2 * d],
            [lon, lat + 2 * d], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture
def trees(session: Session) -> tuple[Tree, Tree]:
    north = place_tree(session, tag="N")
    south = place_tree(session, tag="S", lon=121.45, committee_name="南街居委会")
    create_place(session=session, kind="building", code="BC", name="中庭楼", parent=north.compound,
                 geometry=courtyard(121.403, 31.003, 0.0008), height_m=25.5, built_year=1998, use="commercial")
    create_place(session=session, kind="building", code="BL", name="L 形楼", parent=north.compound,
                 geometry=l_shape(121.404, 31.004, 0.0003), floors=3)
    return north, south


# --- the checks a CityJSON validator would make, and a few it cannot --------------------------


def real_vertices(model: dict[str, Any]) -> list[Vec]:
    scale, translate = model["transform"]["scale"], model["transform"]["translate"]
    return [(v[0] * scale[0] + translate[0], v[1] * scale[1] + translate[1], v[2] * scale[2] + translate[2])
            for v in model["vertices"]]


def solids(model: dict[str, Any], object_id: str) -> list[list[list[list[int]]]]:
    """The outer shells of an object's solids (each a list of surfaces, each a list of rings)."""
    geometry = model["CityObjects"][object_id]["geometry"][0]
    assert geometry["lod"] == "1"
    if geometry["type"] == "Solid":
        return [geometry["boundaries"][0]]
    assert geometry["type"] == "MultiSolid"
    return [solid[0] for solid in geometry["boundaries"]]


def volume(shell: list[list[list[int]]], vertices: list[Vec]) -> float:
    """Divergence theorem: V = 1/3 Σ over faces of (a point of the face) · (its area vector);
    holes, oriented the other way, subtract their area by themselves."""
    total = 0.0
    for surface in shell:
        p0 = vertices[surface[0][0]]
        for ring in surface:
            ax = ay = az = 0.0
            pts = [vertices[i] for i in ring]
            for (x1, y1, z1), (x2, y2, z2) in zip(pts, pts[1:] + pts[:1], strict=True):
                ax += y1 * z2 - z1 * y2
                ay += z1 * x2 - x1 * z2
                az += x1 * y2 - y1 * x2
            total += (p0[0] * ax + p0[1] * ay + p0[2] * az) / 2
    return total / 3


def check_model(model: dict[str, Any]) -> None:
    assert model["type"] == "CityJSON" and model["version"] == "2.0"
    assert model["metadata"]["referenceSystem"] == REFERENCE_SYSTEM
    vertices = model["vertices"]
    assert all(len(v) == 3 and all(isinstance(c, int) for c in v) for v in vertices)
    assert len({tuple(v) for v in vertices}) == len(vertices), "vertices are deduplicated"
    for object_id, obj in model["CityObjects"].items():
        assert obj["type"] == "Building"
        for shell in solids(model, object_id):
            edges: Counter[tuple[int, int]] = Counter()
            for surface in shell:
                for ring in surface:
                    assert all(0 <= i < len(vertices) for i in ring)
                    assert len(set(ring)) >= 3 and len(set(ring)) == len(ring), ring
                    for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
                        edges[(a, b)] += 1
            # closed and consistently oriented: every edge is walked once each way
            assert all(n == 1 and edges[(b, a)] == 1 for (a, b), n in edges.items())


def footprint_area_m2(geometry: dict[str, Any]) -> float:
    project = Transformer.from_crs("EPSG:4326", "EPSG:4549", always_xy=True).transform
    poly = shape(geometry)
    assert isinstance(poly, Polygon)
    outer = Polygon(list(zip(*project(*poly.exterior.xy), strict=True)),
                    [list(zip(*project(*r.xy), strict=True)) for r in poly.interiors])
    return float(outer.area)


def by_code(model: dict[str, Any]) -> dict[str, str]:
    return {obj["attributes"]["shequCode"]: oid for oid, obj in model["CityObjects"].items()}


# --- the tests ----------------------------------------------------------------------------------


def test_every_building_is_a_closed_outward_lod1_solid(session: Session, trees: tuple[Tree, Tree]) -> None:
    model = export_cityjson(session)
    check_model(model)
    assert set(by_code(model)) == {"BN", "BS", "BC", "BL"}
    vertices = real_vertices(model)
    for object_id in model["CityObjects"]:
        for shell in solids(model, object_id):
            assert volume(shell, vertices) > 0, f"{object_id} faces inwards"


@pytest.mark.parametrize(("code", "height"), [("BN", 18.0), ("BC", 25.5), ("BL", 9.0)])
def test_a_solid_holds_footprint_area_times_height(session: Session, trees: tuple[Tree, Tree],
                                                   code: str, height: float) -> None:
    from sqlalchemy import select

    from shequ.core.places.models import Place

    model = export_cityjson(session)
    place = session.scalars(select(Place).where(Place.code == code, Place.kind == "building")).one()
    assert place.geometry is not None
    [shell] = solids(model, by_code(model)[code])
    expected = footprint_area_m2(place.geometry) * height
    assert volume(shell, real_vertices(model)) == pytest.approx(expected, rel=0.01)
    # one wall per footprint edge, a bottom and a top
    edges = sum(len(ring) - 1 for ring in shape(place.geometry).__geo_interface__["coordinates"])
    assert len(shell) == 2 + edges


def test_buildings_carry_their_registry_attributes(session: Session, trees: tuple[Tree, Tree]) -> None:
    model = export_cityjson(session)
    court = model["CityObjects"][by_code(model)["BC"]]["attributes"]
    assert court["name"] == "中庭楼" and court["measuredHeight"] == 25.5
    assert court["yearOfConstruction"] == 1998 and court["function"] == "commercial"
    block = model["CityObjects"][by_code(model)["BN"]]["attributes"]
    assert block["storeysAboveGround"] == 6 and block["measuredHeight"] == 18.0
    assert block["shequPlaceId"] == trees[0].building.id
    # projected into the Shanghai Gauss-Kruger zone: east about 633 km, north about 3,432 km
    west, south, low, east, north, high = model["metadata"]["geographicalExtent"]
    assert 600_000 < west < east < 700_000 and 3_400_000 < south < north < 3_500_000
    assert low == 0 and high == 25.5


def test_one_committee_and_a_scoped_user_export_only_their_buildings(session: Session,
                                                                     trees: tuple[Tree, Tree]) -> None:
    north, south = trees
    assert set(by_code(export_cityjson(session, committee_id=south.committee.id))) == {"BS"}
    bind_context(session, tenant_id=session.info["tenant_id"], actor="test",
                 scope=Scope.areas(committees=[south.committee.id], ancestors=[south.grid.id]))
    try:
        assert set(by_code(export_cityjson(session))) == {"BS"}
    finally:
        bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=None)


def test_the_file_written_for_the_cli_is_the_same_model(session: Session, trees: tuple[Tree, Tree],
                                                        tmp_path: Any) -> None:
    out = tmp_path / "model.city.json"
    assert write_cityjson(session, out) == 4
    written = json.loads(out.read_text(encoding="utf-8"))
    check_model(written)
    assert set(by_code(written)) == {"BN", "BS", "BC", "BL"}


def test_a_tenant_without_buildings_exports_an_empty_valid_model(session: Session) -> None:
    model = export_cityjson(session)
    check_model(model)
    assert model["CityObjects"] == {} and model["vertices"] == []
