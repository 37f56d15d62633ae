"""地 places: creating the tree, finding a place by code or address, resolving a point."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shapely import STRtree
from shapely.geometry import Point, shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.places.address import format_address, normalise_address
from shequ.core.places.models import PARENT_KINDS, Place, PlaceKind, Tenant

# Caches keyed by tenant id register here (``forget_on_new_tenant``): SQLite may give a new
# tenant the id of a deleted one, and nothing a process cached about that one may apply to it.
_forgetters: list[Callable[[int], None]] = []


def forget_on_new_tenant(fn: Callable[[int], None]) -> None:
    """``fn(tenant_id)`` drops what a cache holds for that id; called for every new tenant."""
    if fn not in _forgetters:
        _forgetters.append(fn)


def create_tenant(*, session: Session, code: str, name: str, district: str = "", city: str = "",
                  centre: tuple[float, float] | None = None) -> Tenant:
    """Register a subdistrict; returns the existing one when the code is known."""
    tenant = session.scalar(select(Tenant).where(Tenant.code == code))
    if tenant:
        return tenant
    tenant = Tenant(code=code, name=name, district=district, city=city,
                    centre_lon=centre[0] if centre else None, centre_lat=centre[1] if centre else None)
    session.add(tenant)
    session.flush()
    for forget in _forgetters:
        forget(tenant.id)
    return tenant


def get_tenant(*, session: Session, code: str) -> Tenant | None:
    return session.scalar(select(Tenant).where(Tenant.code == code))


def create_place(*, session: Session, kind: PlaceKind | str, code: str, name: str,
                 parent: Place | None = None, geometry: dict[str, Any] | None = None,
                 address: dict[str, Any] | None = None, **fields: Any) -> Place:
    """Add a place under its parent; checks the kind may sit there and inherits the ancestry."""
    kind = PlaceKind(kind)
    allowed = PARENT_KINDS[kind]
    parent_kind = PlaceKind(parent.kind) if parent else None
    if parent_kind not in allowed:
        raise ValueError(f"a {kind} cannot be placed under {parent_kind or 'nothing'}")
    place = Place(kind=kind, code=code, name=name, geometry=geometry, address=address or {}, **fields)
    if parent is not None:
        place.parent_id = parent.id
        for key, value in parent.ancestry().items():
            setattr(place, key, value)
        if parent.id is None:
            raise ValueError("the parent must be flushed first")
    if address:
        place.address_text = format_address(address)
    if geometry and place.lon is None:
        pt = shape(geometry).representative_point()
        place.lon, place.lat = round(pt.x, 7), round(pt.y, 7)
    session.add(place)
    session.flush()
    return place


def find_by_address(*, session: Session, text: str) -> Place | None:
    """The place whose standard address matches the text (after normalising)."""
    norm = normalise_address(text)
    if not norm:
        return None
    return session.scalars(select(Place).where(Place.address_text == norm).limit(1)).first()


def path(*, session: Session, place: Place) -> list[Place]:
    """From the top of the tree down to this place (breadcrumbs)."""
    out = [place]
    while out[0].parent_id is not None:
        parent = session.get(Place, out[0].parent_id)
        if parent is None:
            break
        out.insert(0, parent)
    return out


@dataclass(frozen=True)
class Located:
    grid_id: int | None
    committee_id: int | None
    compound_id: int | None


class Locator:
    """Resolves a WGS84 point to the grid, committee area and compound containing it."""

    def __init__(self, areas: list[tuple[str, int, dict[str, Any]]]):
        self._by_kind: dict[str, tuple[STRtree, list[int], list[Any]]] = {}
        for kind in (PlaceKind.GRID, PlaceKind.COMMITTEE, PlaceKind.COMPOUND):
            rows = [(pid, shape(geom)) for k, pid, geom in areas if k == kind and geom]
            geoms = [g for _, g in rows]
            self._by_kind[kind] = (STRtree(geoms), [pid for pid, _ in rows], geoms)

    def _find(self, kind: str, point: Point) -> int | None:
        tree, ids, geoms = self._by_kind[kind]
        if not ids:
            return None
        for idx in tree.query(point, predicate="intersects"):
            return ids[int(idx)]
        return None

    def locate(self, lon: float, lat: float) -> Located:
        pt = Point(lon, lat)
        return Located(
            grid_id=self._find(PlaceKind.GRID, pt),
            committee_id=self._find(PlaceKind.COMMITTEE, pt),
            compound_id=self._find(PlaceKind.COMPOUND, pt),
        )


def labels(*, session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """The address (or, without one, the name) of some places, in one query, within the
    session's scope."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = session.execute(select(Place.id, Place.address_text, Place.name).where(Place.id.in_(wanted)))
    return {pid: addr or name for pid, addr, name in rows}


def build_locator(*, session: Session, whole_tenant: bool = False) -> Locator:
    """A locator of the areas in the session's scope, or of every area of the tenant
    (``whole_tenant``: for placing a point someone reported, never for showing areas)."""
    rows = session.execute(
        select(Place.kind, Place.id, Place.geometry).where(
            Place.kind.in_([PlaceKind.GRID, PlaceKind.COMMITTEE, PlaceKind.COMPOUND]),
            Place.geometry.is_not(None),
        ),
        execution_options={"all_scopes": True} if whole_tenant else {},
    ).all()
    return Locator([(k, i, g) for k, i, g in rows])


def locate(*, session: Session, lon: float, lat: float) -> Located:
    """Grid, committee and compound at a point, for the session's tenant."""
    return build_locator(session=session).locate(lon, lat)
