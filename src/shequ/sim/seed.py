"""`shequ seed`: generate the synthetic Jiangchuan Road subdistrict into the database.

Deterministic for a seed: every random draw comes from ``random.Random`` instances derived
from the seed and a phase name, every date from a fixed reference date (``REF_DATE``), and
nothing iterates over a hash-ordered set. Only the storage-side values differ between runs
(ids, creation timestamps, the random nonces of encrypted columns).

The whole subdistrict is generated in memory as rows with ids assigned here (after the
current maximum of each table, so tenants never collide), then bulk-written by
``shequ.sim.store`` (executemany on SQLite, COPY on PostgreSQL, values converted by the
column types, so personal data is encrypted; blind indexes and masks are computed here).
Bulk writes do not pass through the ORM, so the change log is not written row by row:
instead one ImportBatch row per kind (source ``seed``) records what the seed created. Tags
go through ``shequ.core.registry.tags``: default taxonomy, manual taggings, then the rules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import shape
from sqlalchemy import Connection, Table, func, select
from sqlalchemy.orm import Session

from shequ.core.iam.crypto import blind_index, keyring, mask_phone
from shequ.core.places.address import format_address
from shequ.core.places.models import Place, PlaceKind
from shequ.core.places.service import create_tenant, get_tenant
from shequ.core.registry.models import (
    FacilityKind,
    HouseUse,
    OrgKind,
    ResidenceType,
    SituationSource,
)
from shequ.db import bind_context, get_engine, session_scope, utcnow
from shequ.sim import names as nm
from shequ.sim import store
from shequ.sim.addresses import Road, parts
from shequ.sim.catalog import CATEGORIES, NOT_ON_PATROL, SOURCES
from shequ.sim.geo import (
    Cut,
    Footprint,
    Frame,
    Rect,
    bisect,
    distance_to_cut,
    merge_cuts,
    pack_rows,
    place_blocks,
)
from shequ.sim.identity import IdentityMaker
from shequ.sim.population import AWAY, HEAD, REF_DATE, PersonDraft, PopulationMaker, age_on

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENTRE = (121.4132, 31.0113)
TENANT_NAME = "江川路街道"
MAIN_SOURCE = "公安实有人口"
OTHER_SOURCES = ("民政", "卫健", "人社")
TOWER_SHARE = {"old": 0.02, "mixed": 0.3, "new": 0.75}  # relative chance a building is a tower
REF_TIME = dt.datetime(REF_DATE.year, REF_DATE.month, REF_DATE.day, 9, 0, tzinfo=SHANGHAI)


@dataclass(frozen=True)
class Scale:
    name: str
    extent: Rect  # metres around the centre; the Huangpu runs just south of y = -1100
    grids: int
    committees: int
    compounds: int
    buildings: int
    estate_types: tuple[tuple[str, float], ...]
    tower_share: float  # of all buildings: 11–33-storey towers, the rest six-storey walk-ups
    walkup_units: tuple[tuple[int, float], ...]
    tower_floors: tuple[tuple[int, float], ...]
    tower_units: tuple[tuple[int, float], ...]
    shops: int
    enterprises: int
    situations: int
    health_huts: int
    fitness_trails: int
    canteens: int


SCALES: dict[str, Scale] = {
    "full": Scale(
        name="full", extent=Rect(-3000, -1100, 3000, 3400), grids=9, committees=44,
        compounds=150, buildings=1500,
        estate_types=(("old", 0.70), ("mixed", 0.18), ("new", 0.12)),
        tower_share=0.12, walkup_units=((1, 0.16), (2, 0.50), (3, 0.30), (4, 0.04)),
        tower_floors=((11, 0.22), (12, 0.14), (14, 0.18), (16, 0.10), (18, 0.12), (20, 0.06),
                      (24, 0.07), (28, 0.05), (33, 0.06)),
        tower_units=((1, 0.6), (2, 0.4)),
        shops=320, enterprises=400, situations=2400, health_huts=8, fitness_trails=10, canteens=10,
    ),
    "small": Scale(
        name="small", extent=Rect(-1000, -700, 1000, 800), grids=2, committees=4,
        compounds=10, buildings=60,
        estate_types=(("old", 0.8), ("mixed", 0.15), ("new", 0.05)),
        tower_share=0.05, walkup_units=((1, 0.45), (2, 0.5), (3, 0.05)),
        tower_floors=((11, 0.5), (12, 0.3), (14, 0.2)),
        tower_units=((1, 1.0),),
        shops=24, enterprises=15, situations=120, health_huts=1, fitness_trails=1, canteens=1,
    ),
}


@dataclass
class SeedReport:
    counts: dict[str, int]
    seconds: float
    tenant_id: int
    phases: dict[str, float] = field(default_factory=dict)


# --- small helpers --------------------------------------------------------------------------


def _pick(rng: random.Random, pairs: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([p[0] for p in pairs], cum_weights=list(accumulate(p[1] for p in pairs)))[0]


def _allocate(total: int, weights: list[float], minimum: int) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder), each at
    least ``minimum``."""
    n = len(weights)
    spare = total - minimum * n
    if spare < 0:
        raise ValueError("total too small for the minimum")
    s = sum(weights)
    raw = [spare * w / s for w in weights]
    out = [minimum + int(r) for r in raw]
    order = sorted(range(n), key=lambda i: -(raw[i] - int(raw[i])))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def fact_digest(value: str) -> str:
    """Digest of a non-personal value a source reported (addresses): plain SHA-256."""
    return hashlib.sha256(value.encode()).hexdigest()


def _rng(seed: int, phase: str) -> random.Random:
    # str seeds are hashed with SHA-512 by random.seed: stable across runs and processes
    return random.Random(f"jiangchuan/{seed}/{phase}")


AREA_KEYS = ("grid_id", "committee_id", "compound_id", "building_id")
OWN_KEY = {PlaceKind.GRID: "grid_id", PlaceKind.COMMITTEE: "committee_id",
           PlaceKind.COMPOUND: "compound_id", PlaceKind.BUILDING: "building_id"}


def ancestry(place: dict[str, Any]) -> dict[str, Any]:
    """What a record placed here (or a child place) inherits: as Place.ancestry()."""
    out = {k: place[k] for k in AREA_KEYS}
    own = OWN_KEY.get(place["kind"])
    if own:
        out[own] = place["id"]
    return out


# --- the generated world --------------------------------------------------------------------


@dataclass
class Committee:
    row: dict[str, Any]
    rect: Rect
    grid: dict[str, Any]
    name: str
    compounds: list[Compound] = field(default_factory=list)


@dataclass
class Compound:
    row: dict[str, Any]
    rect: Rect
    committee: Committee
    estate: str
    road: Road
    lane: int
    buildings: list[Building] = field(default_factory=list)
    property_company: dict[str, Any] | None = None


@dataclass
class Building:
    row: dict[str, Any]
    rect: Rect
    compound: Compound
    number: int
    tower: bool
    floors: int
    units: int
    rooms_per_floor: int
    unit_rows: list[dict[str, Any]] = field(default_factory=list)
    rooms: list[dict[str, Any]] = field(default_factory=list)
    residents: list[int] = field(default_factory=list)  # indices into people (adults living here)


class World:
    """Rows per table, ids assigned from the table's next free id."""

    def __init__(self, tenant_id: int, next_ids: dict[str, int], now: dt.datetime) -> None:
        self.tenant_id = tenant_id
        self.next_ids = dict(next_ids)
        self.now = now
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def add(self, table: str, row: dict[str, Any], stamped: bool = True) -> dict[str, Any]:
        row["id"] = self.next_ids[table]
        self.next_ids[table] += 1
        row["tenant_id"] = self.tenant_id
        if stamped:
            row["created_at"] = row["updated_at"] = self.now
        self.rows.setdefault(table, []).append(row)
        return row


class Generator:
    """Builds the subdistrict for one scale and seed, phase by phase."""

    def __init__(self, scale: Scale, seed: int, tenant_code: str, world: World) -> None:
        self.scale = scale
        self.seed = seed
        self.code = tenant_code
        self.w = world
        self.frame = Frame(*CENTRE)
        self.ident = IdentityMaker(_rng(seed, "identity"))
        self.roads: list[Road] = []
        self.street_rows: dict[str, dict[str, Any]] = {}
        self.grids: list[tuple[dict[str, Any], Rect]] = []
        self.committees: list[Committee] = []
        self.compounds: list[Compound] = []
        self.buildings: list[Building] = []
        self.people: list[dict[str, Any]] = []
        self.households: list[dict[str, Any]] = []
        self.shops: list[dict[str, Any]] = []
        self.orgs: dict[str, list[dict[str, Any]]] = {}
        self.branch_of: dict[int, dict[str, Any]] = {}  # committee place id → party branch
        self.team_of: dict[int, dict[str, Any]] = {}  # committee place id → volunteer team
        self.manual_tags: list[tuple[str, str, int]] = []  # (tag code, entity, id)
        self.facility_counter: dict[FacilityKind, int] = {}
        self.other_places = 0
        self.canteen_operator: dict[str, Any] | None = None

    # --- places -------------------------------------------------------------------------

    def place(self, kind: PlaceKind, code: str, name: str, parent: dict[str, Any] | None, *,
              geometry: dict[str, Any] | None = None, lon: float | None = None,
              lat: float | None = None, address: dict[str, Any] | None = None,
              area: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "kind": kind.value, "parent_id": parent["id"] if parent else None, "code": code,
            "name": name, "geometry": geometry, "lon": lon, "lat": lat,
            "address": address or {}, "address_text": format_address(address) if address else "",
            "floors": None, "floor_no": None, "height_m": None, "use": None, "built_year": None,
            "attrs": {},
        }
        if geometry is not None and lon is None:  # every place gets a representative point
            point = shape(geometry).representative_point()
            row["lon"], row["lat"] = round(point.x, 7), round(point.y, 7)
        row.update(fields)
        row.update(area or (ancestry(parent) if parent else dict.fromkeys(AREA_KEYS)))
        return self.w.add("place", row)

    def layout(self) -> None:
        """Grids and committee areas by bisection; the cuts become the roads."""
        rng = _rng(self.seed, "layout")
        sc = self.scale
        cuts: list[Cut] = []
        grid_rects = bisect(sc.extent, sc.grids, rng, 0, cuts, min_side=400)
        areas = [r.w * r.h for r in grid_rects]
        per_grid = _allocate(sc.committees, areas, 2)
        names = nm.committee_names(_rng(self.seed, "committee-names"), sc.committees)
        k = 0
        for g, (grect, n) in enumerate(zip(grid_rects, per_grid, strict=True), start=1):
            grid = self.place(PlaceKind.GRID, f"{self.code}W{g:02d}", f"第{nm.cn_number(g)}网格", None,
                              geometry=self.frame.polygon(grect),
                              attrs={"kind": "responsibility_grid"})
            self.grids.append((grid, grect))
            for crect in bisect(grect, n, rng, 1, cuts, min_side=250):
                k += 1
                name = names[k - 1]
                row = self.place(PlaceKind.COMMITTEE, f"{self.code}{k:03d}", f"{name}居委会", grid,
                                 geometry=self.frame.polygon(crect),
                                 attrs={"full_name": f"{name}居民委员会"})
                self.committees.append(Committee(row, crect, grid, name))
        self._roads(merge_cuts(cuts), rng)

    def _roads(self, cuts: list[Cut], rng: random.Random) -> None:
        horizontal = sorted((c for c in cuts if not c.vertical), key=lambda c: -c.length)
        vertical = sorted((c for c in cuts if c.vertical), key=lambda c: -c.length)
        named: list[tuple[str, Cut, bool]] = []
        main_h = sorted(horizontal[: len(nm.MAIN_ROADS_EW)], key=lambda c: c.at)
        main_v = sorted(vertical[: len(nm.MAIN_ROADS_NS)], key=lambda c: c.at)
        named += [(n, c, True) for n, c in zip(nm.MAIN_ROADS_EW, main_h, strict=False)]
        named += [(n, c, True) for n, c in zip(nm.MAIN_ROADS_NS, main_v, strict=False)]
        minor = horizontal[len(main_h):] + vertical[len(main_v):]
        minor.sort(key=lambda c: (c.vertical, c.at, c.start))
        pool = list(nm.MINOR_ROADS)
        rng.shuffle(pool)
        for i, c in enumerate(minor):
            named.append((pool[i] if i < len(pool) else f"{pool[i % len(pool)][:-1]}{i // len(pool) + 1}路", c, False))
        for i, (name, cut, main) in enumerate(named, start=1):
            road = Road(name, cut, main)
            self.roads.append(road)
            self.street_rows[name] = self.place(
                PlaceKind.STREET, f"RD{i:03d}", name, None, geometry=self.frame.line(cut.points()),
                address={"road": name}, use="road",
                attrs={"main": main, "length_m": round(cut.length), "width_m": 30 if main else 16})

    def nearest_road(self, x: float, y: float, main_only: bool = False) -> Road:
        roads = [r for r in self.roads if r.main] if main_only else self.roads
        return min(roads, key=lambda r: distance_to_cut(r.cut, x, y))

    def committee_at(self, x: float, y: float) -> Committee | None:
        for c in self.committees:
            if c.rect.contains(x, y):
                return c
        return None

    def estates(self) -> None:
        """Compounds in each committee area, buildings in rows inside each compound."""
        rng = _rng(self.seed, "estates")
        sc = self.scale
        k = len(self.committees)
        counts = _allocate(sc.compounds, [1.0] * k, 2)
        rng.shuffle(counts)
        for _ in range(k):  # some committees have more compounds than others
            a, b = rng.randrange(k), rng.randrange(k)
            if counts[a] > 2 and counts[b] < 6:
                counts[a] -= 1
                counts[b] += 1
        estates = [[_pick(rng, sc.estate_types) for _ in range(n)] for n in counts]
        size_w = {"old": 1.2, "mixed": 1.0, "new": 0.45}
        flat = [e for es in estates for e in es]
        weights = [size_w[e] * math.exp(rng.gauss(0, 0.35)) for e in flat]
        per_compound = _allocate(sc.buildings, weights, 2)
        # a fixed number of towers, spread over the compounds by their estate type
        tower_w = [n * TOWER_SHARE[e] for n, e in zip(per_compound, flat, strict=True)]
        towers = [min(t, n) for t, n in zip(_allocate(round(sc.buildings * sc.tower_share), tower_w, 0),
                                            per_compound, strict=True)]
        used_names: set[str] = set()
        it = iter(zip(per_compound, towers, strict=True))
        for committee, kinds in zip(self.committees, estates, strict=True):
            cnames = nm.compound_names(rng, committee.name, kinds, used_names)
            plans = [self._plan_compound(rng, kind, *next(it), committee.rect) for kind in kinds]
            area = committee.rect.shrink(40)
            rects = None
            for gap in (25.0, 15.0, 8.0):
                rects = place_blocks([(p[2], p[3]) for p in plans], area, rng, gap=gap)
                if rects is not None:
                    break
            if rects is None:
                raise RuntimeError(f"compounds do not fit in {committee.name}")
            for name, kind, plan, rect in zip(cnames, kinds, plans, rects, strict=True):
                self._make_compound(rng, committee, name, kind, plan, rect)

    def _building_specs(self, rng: random.Random, estate: str, n: int, towers: int) -> list[dict[str, Any]]:
        sc = self.scale
        specs = []
        for i in range(n):
            if i < towers:
                floors = _pick(rng, sc.tower_floors)
                units = _pick(rng, sc.tower_units)
                rpf = _pick(rng, ((2, 0.3), (3, 0.3), (4, 0.4)))
                year = rng.randint(2002, 2018) if estate == "new" else rng.randint(1996, 2012)
                unit_w = {2: 18.0, 3: 22.0, 4: 26.0}[rpf]
                fp = Footprint(unit_w * units, 15.0 + rpf, floors * 3.0)
                specs.append({"tower": True, "floors": floors, "units": units, "rpf": rpf, "year": year, "fp": fp})
            else:
                floors = _pick(rng, ((6, 0.75), (5, 0.15), (7, 0.05), (4, 0.05)))
                units = _pick(rng, sc.walkup_units)
                rpf = 2 if rng.random() < 0.85 else 3
                year = rng.randint(1979, 1998) if estate != "new" else rng.randint(1995, 2003)
                fp = Footprint((12.0 if rpf == 2 else 16.0) * units, rng.choice((10.0, 11.0, 12.0)), floors * 2.8)
                specs.append({"tower": False, "floors": floors, "units": units, "rpf": rpf, "year": year, "fp": fp})
        specs.sort(key=lambda s: (s["fp"].height, s["fp"].w))  # tall ones at the north side
        return specs

    def _plan_compound(self, rng: random.Random, estate: str, n: int, towers: int,
                       area: Rect) -> tuple[list[dict[str, Any]], list[Rect], float, float, float]:
        specs = self._building_specs(rng, estate, n, towers)
        margin = rng.uniform(15, 30)
        max_w = max(60.0, area.w - 80 - 2 * margin)
        rects, used_w, used_d = pack_rows([s["fp"] for s in specs], max_w, rng)
        return specs, rects, used_w + 2 * margin, used_d + 2 * margin, margin

    def _make_compound(self, rng: random.Random, committee: Committee, name: str, estate: str,
                       plan: tuple[Any, ...], rect: Rect) -> None:
        specs, rel_rects, _, _, margin = plan
        road = self.nearest_road(rect.cx, rect.cy)
        lane = road.number_at(rect.cx, rect.cy)
        j = len(committee.compounds) + 1
        years = [s["year"] for s in specs]
        row = self.place(PlaceKind.COMPOUND, f"{committee.row['code']}X{j:02d}", name, committee.row,
                         geometry=self.frame.polygon(rect), lon=None, lat=None,
                         address=parts(road.name, lane), use="residential", built_year=min(years),
                         attrs={"estate_type": estate, "buildings": len(specs)})
        row["lon"], row["lat"] = self.frame.lonlat(rect.cx, rect.cy)
        compound = Compound(row, rect, committee, estate, road, lane)
        committee.compounds.append(compound)
        self.compounds.append(compound)
        for number, (spec, rel) in enumerate(zip(specs, rel_rects, strict=True), start=1):
            self._make_building(compound, number, spec, rel.moved(rect.x0 + margin, rect.y0 + margin))

    def _make_building(self, compound: Compound, number: int, spec: dict[str, Any], rect: Rect) -> None:
        fr = self.frame
        road, lane = compound.road.name, compound.lane
        bcode = f"{compound.row['code']}B{number:02d}"
        tower, floors, units, rpf = spec["tower"], spec["floors"], spec["units"], spec["rpf"]
        lon, lat = fr.lonlat(rect.cx, rect.cy)
        row = self.place(PlaceKind.BUILDING, bcode, f"{number}号", compound.row, geometry=fr.polygon(rect),
                         lon=lon, lat=lat, address=parts(road, lane, number), floors=floors,
                         height_m=round(floors * (3.0 if tower else 2.8), 1), use="residential",
                         built_year=spec["year"],
                         attrs={"type": "tower" if tower else "walkup", "units": units,
                                "rooms_per_floor": rpf, "elevator": tower})
        b = Building(row, rect, compound, number, tower, floors, units, rpf)
        compound.buildings.append(b)
        self.buildings.append(b)
        uw = rect.w / units
        for u in range(1, units + 1):
            slab = Rect(rect.x0 + (u - 1) * uw, rect.y0, rect.x0 + u * uw, rect.y1)
            if units > 1:
                ulon, ulat = fr.lonlat(slab.cx, slab.cy)
                parent = self.place(PlaceKind.UNIT, f"{bcode}U{u}", f"{u}单元", row,
                                    geometry=fr.polygon(slab), lon=ulon, lat=ulat,
                                    address=parts(road, lane, number, u), use="residential")
                b.unit_rows.append(parent)
                unit_no: int | None = u
            else:
                parent = row
                unit_no = None
            ucode = parent["code"]
            room_points = [fr.lonlat(slab.x0 + (n - 0.5) * slab.w / rpf, slab.cy) for n in range(1, rpf + 1)]
            for f in range(1, floors + 1):
                floor = self.place(PlaceKind.FLOOR, f"{ucode}F{f:02d}", f"{f}层", parent,
                                   lon=parent["lon"] or lon, lat=parent["lat"] or lat, floor_no=f)
                area = ancestry(floor)
                for n in range(1, rpf + 1):
                    no = f * 100 + n
                    rlon, rlat = room_points[n - 1]
                    room = self.place(PlaceKind.ROOM, f"{ucode}R{no}", f"{no}室", floor, lon=rlon, lat=rlat,
                                      address=parts(road, lane, number, unit_no, no), floor_no=f,
                                      use="residential", area=area)
                    b.rooms.append(room)

    def streets(self) -> None:
        """Shops along the main roads, enterprises' premises, public institutions."""
        rng = _rng(self.seed, "streets")
        fr = self.frame
        slots: list[tuple[Road, float, int]] = []
        for road in self.roads:
            if not road.main:
                continue
            c = road.cut
            crossings = [o.cut.at for o in self.roads if o.cut.vertical != c.vertical
                         and o.cut.start - 1 <= c.at <= o.cut.end + 1]
            pos = c.start + 40
            while pos < c.end - 40:
                if all(abs(pos - x) > 45 for x in crossings):
                    slots += [(road, pos, 1), (road, pos, -1)]
                pos += 15
        chosen = rng.sample(slots, min(self.scale.shops, len(slots)))
        chosen.sort(key=lambda s: (s[0].name, s[1], s[2]))
        used_names: set[str] = set()
        for i, (road, pos, side) in enumerate(chosen, start=1):
            c = road.cut
            frontage = rng.uniform(8, 13)
            off0, depth = 17.0, rng.uniform(8, 11)
            if c.vertical:
                x0 = c.at + side * off0
                x1 = x0 + side * depth
                rect = Rect(min(x0, x1), pos - frontage / 2, max(x0, x1), pos + frontage / 2)
            else:
                y0 = c.at + side * off0
                y1 = y0 + side * depth
                rect = Rect(pos - frontage / 2, min(y0, y1), pos + frontage / 2, max(y0, y1))
            committee = self.committee_at(rect.cx, rect.cy)
            if committee is None:
                continue
            number = road.number_at(rect.cx, rect.cy)
            name, industry, chain = nm.shop_name(rng, road.name, number, used_names)
            lon, lat = fr.lonlat(rect.cx, rect.cy)
            area = {"grid_id": committee.grid["id"], "committee_id": committee.row["id"],
                    "compound_id": None, "building_id": None}
            shop = self.place(PlaceKind.SHOP, f"SP{i:04d}", name, self.street_rows[road.name],
                              geometry=fr.polygon(rect), lon=lon, lat=lat, address=parts(road.name, number=number),
                              use="commercial", area=area,
                              attrs={"industry": industry, "chain": chain, "frontage_m": round(frontage, 1)})
            self.shops.append(shop)

    def free_point(self, rng: random.Random, committee: Committee, keep_off: float = 10) -> tuple[float, float]:
        inner = committee.rect.shrink(45)
        blocked = [c.rect.grow(keep_off) for c in committee.compounds]
        for _ in range(200):
            x, y = rng.uniform(inner.x0, inner.x1), rng.uniform(inner.y0, inner.y1)
            if not any(r.contains(x, y) for r in blocked):
                return x, y
        return inner.x0, inner.y0

    # --- houses, households, people ----------------------------------------------------

    def population(self) -> None:
        rng = _rng(self.seed, "population")
        pm = PopulationMaker(rng, self.ident)
        w = self.w
        use_p = {"old": (0.07, 0.26), "mixed": (0.08, 0.22), "new": (0.10, 0.15)}
        owner_occupied, rented, vacant = (HouseUse.OWNER_OCCUPIED.value, HouseUse.RENTED.value,
                                          HouseUse.VACANT.value)
        hh_no = 0
        for b in self.buildings:
            vacant_p, rented_p = use_p[b.compound.estate]
            if b.tower:
                size = {2: (95, 140), 3: (80, 120), 4: (65, 100)}[b.rooms_per_floor]
            else:
                size = (50, 78) if b.rooms_per_floor == 2 else (34, 58)
            for room in b.rooms:
                area = ancestry(room)
                r = rng.random()
                use = vacant if r < vacant_p else rented if r < vacant_p + rented_p else owner_occupied
                area_m2 = round(rng.uniform(*size), 2)
                bedrooms = 1 if area_m2 < 48 else 2 if area_m2 < 90 else 3
                house = w.add("house", {
                    "use": use, "area_m2": area_m2, "rooms": bedrooms, "owner_name": None,
                    "source": "房屋管理", "attrs": {}, "place_id": room["id"], **area})
                groups: list[tuple[str, str, list[PersonDraft]]] = []
                if use == owner_occupied:
                    htype, members = pm.registered()
                    groups.append(("registered", htype, pm.realise(members)))
                elif use == rented:
                    htype, members = pm.migrant()
                    groups.append(("resident", htype, pm.realise(members)))
                    if rng.random() < 0.25:
                        htype, members = pm.away()
                        groups.insert(0, ("registered", htype, pm.realise(members)))
                elif rng.random() < 0.3:
                    htype, members = pm.away()
                    groups.append(("registered", htype, pm.realise(members)))
                for kind, htype, drafts in groups:
                    hh_no += 1
                    hh = w.add("household", {
                        "number": f"{self.code}{hh_no:06d}", "kind": kind, "house_id": house["id"],
                        "head_person_id": None, "attrs": {"type": htype},
                        "place_id": room["id"], **area})
                    self.households.append(hh)
                    for d in drafts:
                        person = self._person(d, hh["id"], house["id"], room["id"], area)
                        if d.relation == HEAD:
                            hh["head_person_id"] = person["id"]
                        if d.residence_type != AWAY and d.age >= 18:
                            b.residents.append(len(self.people) - 1)
                if groups:
                    owner = groups[0][2][0].name
                    house["owner_name"] = owner if use != rented or groups[0][0] == "registered" \
                        else nm.person_name(rng, "M", 1965)
                else:
                    house["owner_name"] = nm.person_name(rng, nm.choice(rng, "MF"), nm.randint(rng, 1940, 1990))
        self._unplace(rng)

    def _person(self, d: PersonDraft, household_id: int, house_id: int, room_id: int,
                area: dict[str, Any]) -> dict[str, Any]:
        row = self.w.add("person", {
            "name": d.name, "id_number": d.id_number, "id_number_hash": None, "id_number_mask": "",
            "phone": d.phone, "phone_hash": None, "phone_mask": "",
            "birth_date": d.birth, "sex": d.sex, "ethnicity": d.ethnicity,
            "residence_type": d.residence_type, "status": "active", "household_id": household_id,
            "relation": d.relation, "house_id": house_id if d.residence_type != AWAY else None,
            "source": MAIN_SOURCE, "attrs": {}, "place_id": room_id, **area})
        self.people.append(row)
        return row

    def _unplace(self, rng: random.Random) -> None:
        """About 1% of people come from a source whose address could not be matched."""
        compounds = {c.row["id"]: c.row["name"] for c in self.compounds}
        for p in self.people:
            if rng.random() < 0.01:
                p["attrs"] = {"reported_address": f"江川路街道{compounds.get(p['compound_id'], '')}"}
                p["place_id"] = p["house_id"] = None
                for k in AREA_KEYS:
                    p[k] = None

    # --- organisations -------------------------------------------------------------------

    def org(self, kind: OrgKind, name: str, place: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "kind": kind.value, "name": name, "credit_code": None, "legal_person": None,
            "contact_phone": None, "contact_phone_mask": "", "industry": None, "employees": None,
            "parent_id": None, "status": "active", "source": "市场监管", "attrs": {},
            "place_id": place["id"] if place else None,
        }
        row.update(fields)
        row.update(ancestry(place) if place else dict.fromkeys(AREA_KEYS))
        self.orgs.setdefault(kind.value, []).append(row)
        return self.w.add("organisation", row)

    def organisations(self) -> None:
        rng = _rng(self.seed, "organisations")
        ident = self.ident
        sc = self.scale
        # party organisations: the subdistrict working committee and one per committee area
        top = self.org(OrgKind.PARTY_BRANCH, "中共上海市闵行区江川路街道工作委员会", None, source="党建",
                       attrs={"level": "subdistrict"})
        for c in self.committees:
            branch = self.org(OrgKind.PARTY_BRANCH, f"中共江川路街道{c.name}居民区总支部委员会", c.row,
                              parent_id=top["id"], source="党建", legal_person=nm.person_name(rng, "F", 1970),
                              contact_phone=ident.landline(), attrs={"level": "committee"})
            self.branch_of[c.row["id"]] = branch
        # property companies, each serving several compounds
        n_pc = max(2, min(len(nm.PROPERTY_COMPANY_NAMES), math.ceil(len(self.compounds) / 6)))
        companies = []
        for name in nm.PROPERTY_COMPANY_NAMES[:n_pc]:
            served = None
            companies.append(self.org(OrgKind.PROPERTY_COMPANY, name, served, credit_code=ident.credit_code(),
                                      legal_person=nm.person_name(rng, "M", rng.randint(1960, 1985)),
                                      contact_phone=ident.landline(), industry="房地产业",
                                      employees=rng.randint(40, 600), attrs={"compounds": 0}))
        for compound in self.compounds:
            pc = companies[0] if compound.estate == "old" and rng.random() < 0.3 else rng.choice(companies)
            compound.property_company = pc
            compound.row["attrs"].update(property_company_id=pc["id"], property_company=pc["name"])
            pc["attrs"]["compounds"] += 1
            if pc["place_id"] is None:
                pc["place_id"] = compound.row["id"]
                pc.update(ancestry(compound.row))
        # social organisations
        office = self.compounds[0].row
        social = (("江川路街道志愿者服务中心", "5", "2"), ("江川路街道老年协会", "5", "1"),
                  ("闵行区江川为老服务社", "5", "2"), ("江川路街道社区基金会", "5", "3"),
                  ("江川路街道睦邻文化促进会", "5", "1"), ("闵行区江川社工师事务所", "5", "2"))
        for name, dept, kind in social:
            row = self.org(OrgKind.SOCIAL_ORG, name, office, source="民政",
                           credit_code=ident.credit_code(dept, kind),
                           legal_person=nm.person_name(rng, rng.choice("MF"), rng.randint(1955, 1985)),
                           contact_phone=ident.landline(), industry="居民服务、修理和其他服务业",
                           employees=rng.randint(3, 40))
            if name == "闵行区江川为老服务社":
                self.canteen_operator = row
        for c in self.committees:
            self.team_of[c.row["id"]] = self.org(
                OrgKind.SOCIAL_ORG, f"{c.name}居民区志愿者服务队", c.row, source="民政",
                legal_person=nm.person_name(rng, "F", rng.randint(1950, 1965)), attrs={"team": "volunteer"})
        # public institutions
        publics = (("江川路街道办事处", "鹤庆路", 258, "1", "1"),
                   ("江川路街道社区事务受理服务中心", None, None, "1", "2"),
                   ("江川路街道社区党群服务中心", None, None, "1", "2"),
                   ("江川社区卫生服务中心", None, None, "1", "2"),
                   ("闵行公安分局江川路派出所", None, None, "1", "1"),
                   ("上海交通大学（闵行校区）", "东川路", 800, "1", "2"),
                   ("闵行区江川路小学", None, None, "1", "2"),
                   ("闵行区鹤庆幼儿园", None, None, "1", "2"))
        for name, road_name, number, dept, kind in publics:
            committee = rng.choice(self.committees)
            x, y = self.free_point(rng, committee)
            place = self._premises(rng, name, committee, x, y, road_name, number, "public")
            self.org(OrgKind.PUBLIC_INSTITUTION, name, place, source="机构编制",
                     credit_code=ident.credit_code(dept, kind), contact_phone=ident.landline(),
                     industry="公共管理、社会保障和社会组织" if kind == "1" else "教育",
                     employees=rng.randint(20, 300))
        # enterprises
        used: set[str] = set()
        for _ in range(sc.enterprises):
            name, industry, (lo, hi) = nm.enterprise_name(rng, used)
            committee = rng.choice(self.committees)
            x, y = self.free_point(rng, committee)
            place = self._premises(rng, name, committee, x, y, None, None, "industrial"
                                   if industry == "制造业" else "commercial")
            employees = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            row = self.org(OrgKind.ENTERPRISE, name, place, credit_code=ident.credit_code("9", "1"),
                           legal_person=nm.person_name(rng, "M" if rng.random() < 0.75 else "F",
                                                       rng.randint(1960, 1995)),
                           contact_phone=ident.landline() if rng.random() < 0.6 else ident.mobile(),
                           industry=industry, employees=employees,
                           attrs={"founded": rng.randint(1993, 2025),
                                  "registered_capital_wan": rng.choice((50, 100, 200, 500, 1000, 3000, 5000))})
            if employees >= 300 or rng.random() < 0.04:
                self.manual_tags.append(("large_enterprise", "organisation", row["id"]))
            if rng.random() < 0.03:
                self.manual_tags.append(("major_taxpayer", "organisation", row["id"]))
        # shop operators
        for shop in self.shops:
            chain = shop["attrs"]["chain"]
            self.org(OrgKind.SHOP_OPERATOR, shop["name"], shop,
                     credit_code=ident.credit_code("9", "1" if chain else "2"),
                     legal_person=nm.person_name(rng, rng.choice("MF"), rng.randint(1960, 1995),
                                                 local=rng.random() < 0.4),
                     contact_phone=ident.mobile(), industry=shop["attrs"]["industry"],
                     employees=rng.randint(1, 8 if not chain else 15))
            self.w.add("house", {"use": HouseUse.SHOP.value, "area_m2": round(rng.uniform(20, 120), 2),
                                 "rooms": None, "owner_name": nm.person_name(rng, "M", rng.randint(1950, 1980)),
                                 "source": "房屋管理", "attrs": {}, "place_id": shop["id"], **ancestry(shop)})
        for row in self.w.rows["organisation"]:
            row["contact_phone_mask"] = mask_phone(row["contact_phone"])

    def _premises(self, rng: random.Random, name: str, committee: Committee, x: float, y: float,
                  road_name: str | None, number: int | None, use: str) -> dict[str, Any]:
        road = next((r for r in self.roads if r.name == road_name), None)
        if road is not None and number is not None and number not in road.used:
            road.used.add(number)
        else:
            road = self.nearest_road(x, y)
            number = road.number_at(x, y)
        lon, lat = self.frame.lonlat(x, y)
        self.other_places += 1
        return self.place(PlaceKind.OTHER, f"OT{self.other_places:04d}", name, committee.row, geometry=self.frame.point(x, y),
                          lon=lon, lat=lat, address=parts(road.name, number=number), use=use)

    def memberships(self) -> None:
        """Party members in their committee's branch; volunteers in their committee's team;
        manual tags (低保, 残疾, 党员, 志愿者, 孤老, 重病, 加装电梯…)."""
        rng = _rng(self.seed, "memberships")
        w = self.w
        for branch in self.branch_of.values():
            branch["attrs"]["members"] = 0
        for hh_people in self._by_household():
            registered = hh_people[0]["residence_type"] != ResidenceType.RESIDENT.value
            hardship = registered and rng.random() < (0.035 if len(hh_people) == 1 else 0.01)
            if hardship:
                self.manual_tags.append(("hardship_household", "household", hh_people[0]["household_id"]))
            for p in hh_people:
                age = age_on(p["birth_date"])
                pid = p["id"]
                if hardship:
                    self.manual_tags.append(("low_income", "person", pid))
                if rng.random() < (0.015 + 0.0006 * max(0, age - 40)):
                    self.manual_tags.append(("disabled", "person", pid))
                if age >= 60 and len(hh_people) == 1 and rng.random() < 0.06:
                    self.manual_tags.append(("solitary_elderly", "person", pid))
                if age >= 45 and rng.random() < 0.006:
                    self.manual_tags.append(("serious_illness", "person", pid))
                committee = p["committee_id"]
                if committee is None or age < 18:
                    continue
                party_p = (0.10 if age >= 60 else 0.06) if registered else 0.02
                if rng.random() < party_p:
                    joined = p["birth_date"].year + rng.randint(20, min(45, max(20, age - 1)))
                    branch = self.branch_of[committee]
                    branch["attrs"]["members"] += 1
                    w.add("membership", {"person_id": pid, "organisation_id": branch["id"], "role": "member",
                                         "since": dt.date(min(joined, REF_DATE.year), rng.randint(1, 12), 1)})
                    self.manual_tags.append(("party_member", "person", pid))
                if p["residence_type"] == ResidenceType.REGISTERED_AWAY.value:
                    continue  # lives elsewhere: not in this committee's volunteer team
                vol_p = 0.09 if 55 <= age <= 75 and registered else 0.02 if age <= 75 else 0.0
                if rng.random() < vol_p:
                    w.add("membership", {"person_id": pid, "organisation_id": self.team_of[committee]["id"],
                                         "role": "volunteer",
                                         "since": dt.date(rng.randint(2012, 2026), rng.randint(1, 10), 1)})
                    self.manual_tags.append(("volunteer", "person", pid))

    def _by_household(self) -> Iterator[list[dict[str, Any]]]:
        group: list[dict[str, Any]] = []
        for p in self.people:
            if group and p["household_id"] != group[0]["household_id"]:
                yield group
                group = []
            group.append(p)
        if group:
            yield group

    # --- facilities ------------------------------------------------------------------------

    def facility(self, kind: FacilityKind, name: str, place: dict[str, Any], x: float, y: float,
                 **fields: Any) -> dict[str, Any]:
        counter = self.facility_counter
        counter[kind] = counter.get(kind, 0) + 1
        prefix = {FacilityKind.ELEVATOR: "DT", FacilityKind.CHARGING_STATION: "CD",
                  FacilityKind.PARKING_LOT: "TC", FacilityKind.GARBAGE_POINT: "LJ",
                  FacilityKind.HEALTH_HUT: "JK", FacilityKind.FITNESS_TRAIL: "JS",
                  FacilityKind.ACTIVITY_ROOM: "HD", FacilityKind.SERVICE_TERMINAL: "ZD",
                  FacilityKind.CANTEEN: "ST"}.get(kind, "QT")
        lon, lat = self.frame.lonlat(x, y)
        row: dict[str, Any] = {"kind": kind.value, "code": f"{prefix}{counter[kind]:05d}", "name": name,
                               "lon": lon, "lat": lat, "capacity": None, "operator_id": None,
                               "status": "in_service", "source": "城运中心", "attrs": {},
                               "place_id": place["id"]}
        row.update(fields)
        row.update(ancestry(place))
        return self.w.add("facility", row)

    def open_spot(self, rng: random.Random, compound: Compound) -> tuple[float, float]:
        """A point in the compound clear of every building."""
        inner = compound.rect.shrink(4)
        blocked = [b.rect.grow(3) for b in compound.buildings]
        for _ in range(300):
            x, y = rng.uniform(inner.x0, inner.x1), rng.uniform(inner.y0, inner.y1)
            if not any(r.contains(x, y) for r in blocked):
                return x, y
        return compound.rect.x0 + 2, compound.rect.y0 + 2

    def facilities(self) -> None:
        rng = _rng(self.seed, "facilities")
        sc = self.scale
        for compound in self.compounds:
            pc = compound.property_company
            op = pc["id"] if pc else None
            cname = compound.row["name"]
            for b in compound.buildings:
                units = b.unit_rows or [b.row]
                for u, unit in enumerate(units, start=1):
                    ux = b.rect.x0 + (u - 0.5) * b.rect.w / len(units)
                    label = f"{cname}{b.number}号" + (f"{u}单元" if b.unit_rows else "")
                    if b.tower:
                        for k in range(1, (2 if b.floors > 18 else 1) + 1):
                            self.facility(FacilityKind.ELEVATOR, f"{label}{k}号电梯", unit, ux, b.rect.cy,
                                          capacity=13, operator_id=op, source="市场监管",
                                          attrs={"load_kg": 1000, "stops": b.floors,
                                                 "made_year": b.row["built_year"]})
                    elif compound.estate != "new" and b.floors >= 5 and rng.random() < 0.05:
                        year = rng.randint(2019, 2026)
                        self.facility(FacilityKind.ELEVATOR, f"{label}加装电梯", unit, ux, b.rect.y1 + 2,
                                      capacity=8, operator_id=op, source="城建中心",
                                      attrs={"load_kg": 630, "stops": b.floors, "made_year": year,
                                             "retrofit": True})
                        b.row["attrs"]["elevator"] = True
                        self.manual_tags.append(("elevator_retrofit", "place", b.row["id"]))
            nb = len(compound.buildings)
            for k in range(1 + (nb > 10)):
                x, y = self.open_spot(rng, compound)
                self.facility(FacilityKind.CHARGING_STATION, f"{cname}非机动车充电棚{k + 1}", compound.row, x, y,
                              capacity=rng.choice((10, 12, 16, 20, 24, 30, 40)), operator_id=op,
                              attrs={"ports": "smart", "smoke_detector": True, "sprinkler": rng.random() < 0.6})
            x, y = self.open_spot(rng, compound)
            self.facility(FacilityKind.PARKING_LOT, f"{cname}停车场", compound.row, x, y,
                          capacity=max(20, nb * rng.randint(6, 14)), operator_id=op,
                          attrs={"type": "off_street", "gate": rng.random() < 0.8})
            for k in range(max(1, min(8, round(nb / 3)))):
                x, y = self.open_spot(rng, compound)
                self.facility(FacilityKind.GARBAGE_POINT, f"{cname}{k + 1}号垃圾厢房", compound.row, x, y,
                              capacity=rng.randint(4, 8), operator_id=op, source="城建中心",
                              attrs={"wet_waste_hours": "07:00-09:00,18:00-20:00"})
        for c in self.committees:
            first = c.compounds[0]
            x, y = self.open_spot(rng, first)
            self.facility(FacilityKind.ACTIVITY_ROOM, f"{c.name}居民区活动室", first.row, x, y,
                          capacity=rng.randint(30, 80), operator_id=self.branch_of[c.row["id"]]["id"],
                          source="社区服务办")
            x, y = self.open_spot(rng, first)
            self.facility(FacilityKind.SERVICE_TERMINAL, f"{c.name}居民区一网通办自助终端", first.row, x, y,
                          source="社区事务受理服务中心", attrs={"services": ["社保", "医保", "居住证", "老年综合津贴"]})
        big = sorted(self.compounds, key=lambda c: -len(c.buildings))
        for kind, n, label, cap in ((FacilityKind.HEALTH_HUT, sc.health_huts, "健康小屋", None),
                                    (FacilityKind.FITNESS_TRAIL, sc.fitness_trails, "健身步道", None),
                                    (FacilityKind.CANTEEN, sc.canteens, "长者食堂", (40, 120))):
            picks = big[: max(n * 2, n)]
            for compound in rng.sample(picks, min(n, len(picks))):
                x, y = self.open_spot(rng, compound)
                extra: dict[str, Any] = {}
                if kind == FacilityKind.CANTEEN:
                    extra = {"operator_id": self.canteen_operator["id"] if self.canteen_operator else None,
                             "source": "社区服务办",
                             "attrs": {"meals_per_day": rng.randint(150, 600), "delivery": True}}
                elif kind == FacilityKind.FITNESS_TRAIL:
                    extra = {"attrs": {"length_m": rng.randint(300, 900), "smart_lights": True}}
                else:
                    extra = {"source": "社区服务办", "attrs": {"devices": ["血压计", "血糖仪", "体脂秤"]}}
                self.facility(kind, f"{compound.row['name']}{label}", compound.row, x, y,
                              capacity=rng.randint(*cap) if cap else None, **extra)
        for road in self.roads:
            if road.main and road.cut.length > 900:
                cut = road.cut
                pos = cut.start + cut.length * rng.uniform(0.3, 0.7)
                x, y = (cut.at + 20, pos) if cut.vertical else (pos, cut.at + 20)
                self.facility(FacilityKind.PARKING_LOT, f"{road.name}公共停车场", self.street_rows[road.name],
                              x, y, capacity=rng.randint(30, 120), source="城建中心",
                              attrs={"type": "on_street"})

    # --- situations (情) ---------------------------------------------------------------------

    def situations(self) -> None:
        rng = _rng(self.seed, "situations")
        people = self.people
        towers = [b for b in self.buildings if b.tower and b.residents]
        walkups = [b for b in self.buildings if not b.tower and b.residents]
        inhabited = [b for b in self.buildings if b.residents]
        compounds = [c for c in self.compounds if any(b.residents for b in c.buildings)]
        main_roads = [r for r in self.roads if r.main] or self.roads
        sources = [s for s, _ in SOURCES]
        source_cum = list(accumulate(wt for _, wt in SOURCES))
        seq: dict[str, int] = {}
        for _ in range(self.scale.situations):
            day = rng.randrange(1, 366)
            when = REF_TIME - dt.timedelta(days=day)
            summer = 6 <= when.month <= 9
            cats = list(CATEGORIES)
            cat = rng.choices(cats, weights=[c.weight * (c.summer if summer else 1.0) for c in cats])[0]
            hour = rng.choices(range(7, 23), weights=[2, 5, 7, 7, 6, 4, 5, 6, 6, 5, 4, 5, 5, 4, 3, 2])[0]
            when = when.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
            source = rng.choices(sources, cum_weights=source_cum)[0]
            if source == SituationSource.GRID_PATROL and cat.name in NOT_ON_PATROL:
                source = SituationSource.COMMITTEE_VISIT
            where = cat.where
            pool = towers if where == "tower" else walkups if where == "walkup" else inhabited
            if where in ("tower", "walkup") and not pool:
                pool = inhabited
            reporter: dict[str, Any] | None = None
            if where == "street":
                road = rng.choice(main_roads)
                c = road.cut
                pos = rng.uniform(c.start, c.end)
                x, y = (c.at + rng.uniform(-12, 12), pos) if c.vertical else (pos, c.at + rng.uniform(-12, 12))
                place = self.street_rows[road.name]
                lon, lat = self.frame.lonlat(x, y)
                address = f"{road.name}{max(1, int((pos - c.start) / 4))}号附近"
                near = self.committee_at(x, y)
                area = {"grid_id": near.grid["id"] if near else None,
                        "committee_id": near.row["id"] if near else None,
                        "compound_id": None, "building_id": None}
                candidates = [p for b in (near.compounds[0].buildings if near else []) for p in b.residents]
                reporter = people[rng.choice(candidates)] if candidates else None
            elif where == "compound":
                compound = rng.choice(compounds)
                place = compound.row
                x, y = self.open_spot(rng, compound)
                lon, lat = self.frame.lonlat(x, y)
                address = f"{compound.row['name']}（{compound.row['address_text']}）"
                area = ancestry(place)
                b = rng.choice([b for b in compound.buildings if b.residents])
                reporter = people[rng.choice(b.residents)]
            else:
                b = rng.choice(pool)
                reporter = people[rng.choice(b.residents)]
                if where == "room" and reporter["place_id"] is not None:
                    place = next(r for r in b.rooms if r["id"] == reporter["place_id"])
                else:
                    place = b.row
                lon, lat = place["lon"], place["lat"]
                address = f"{b.compound.row['name']}{place['address_text']}"
                area = ancestry(place)
            if source == SituationSource.GRID_PATROL:
                reporter = None
            title, details = rng.choice(cat.items)
            detail = rng.choice(details)
            who = "网格员巡查发现" if source == SituationSource.GRID_PATROL else "居民反映"
            content = f"{address}{who}：{title}，{detail}。"
            external = None
            if source == SituationSource.HOTLINE_12345:
                seq["12345"] = seq.get("12345", 0) + 1
                external = f"{when:%Y%m%d}{seq['12345']:06d}"
            elif source == SituationSource.RESIDENT_APP:
                seq["app"] = seq.get("app", 0) + 1
                external = f"SSP{when:%Y%m%d}{seq['app']:05d}"
            r = rng.random()
            if day > 30:
                status = "closed" if r < 0.9 else "answered" if r < 0.98 else "open"
            elif day > 7:
                status = "closed" if r < 0.6 else "answered" if r < 0.85 else "open"
            else:
                status = "open" if r < 0.55 else "answered" if r < 0.85 else "closed"
            sentiment = cat.sentiment if rng.random() < 0.85 else "neutral"
            phone = reporter["phone"] if reporter and source in (
                SituationSource.HOTLINE_12345, SituationSource.RESIDENT_APP) else None
            self.w.add("situation", {
                "source": str(source), "external_id": external, "category": cat.name, "title": title,
                "content": content, "reporter_id": reporter["id"] if reporter else None,
                "contact_phone": phone, "lon": lon, "lat": lat,
                "occurred_at": when.astimezone(dt.UTC), "status": status, "sentiment": sentiment,
                "attrs": {"department": cat.department}, "place_id": place["id"], **area})

    # --- sources that disagree ----------------------------------------------------------------

    def source_facts(self) -> None:
        """For ~2% of people a second business line (民政) disagrees with the master record on
        the phone or the address; for another ~2% a second line agrees. Both sources are
        recorded, the main one (公安实有人口) with the master values."""
        rng = _rng(self.seed, "sources")
        room_address = {r["id"]: r["address_text"] for b in self.buildings for r in b.rooms}
        all_rooms = list(room_address.values())
        for p in self.people:
            if p["place_id"] is None or p["phone"] is None:
                continue
            r = rng.random()
            if r >= 0.045:  # (people without a phone or a place are skipped: ~2% of all disagree)
                continue
            conflict = r < 0.024
            other = rng.choice(OTHER_SOURCES) if not conflict else "民政"
            recorded = REF_TIME - dt.timedelta(days=rng.randint(1, 60))
            other_recorded = REF_TIME - dt.timedelta(days=rng.randint(90, 700))
            address = room_address[p["place_id"]]
            differ = rng.choice(("phone", "address")) if conflict else None
            for fname, value in (("phone", p["phone"]), ("address", address)):
                self._fact(p["id"], fname, MAIN_SOURCE, value, recorded)
                if differ == fname:
                    value = self.ident.mobile() if fname == "phone" else rng.choice(all_rooms)
                    if value == address:
                        value = all_rooms[(all_rooms.index(value) + 1) % len(all_rooms)]
                self._fact(p["id"], fname, other, value, other_recorded)

    def _fact(self, person_id: int, fname: str, source: str, value: str, at: dt.datetime) -> None:
        if fname == "phone":
            digest, shown = blind_index(value), mask_phone(value)
        else:
            digest, shown = fact_digest(value), value
        self.w.add("source_fact", {"entity": "person", "entity_id": person_id, "field": fname,
                                   "source": source, "digest": digest, "shown": shown,
                                   "recorded_at": at.astimezone(dt.UTC)}, stamped=False)

    def protect(self) -> None:
        """Blind indexes and masks of the people's personal data (ciphertext: the column type).

        The generated values are already in normal form (digits, upper-case X), so the keyed
        hash is computed directly: the same digest as ``blind_index`` (a test checks it).
        """
        key = keyring().index_key
        for p in self.people:
            value = p["id_number"]
            p["id_number_hash"] = hmac.digest(key, value.encode(), "sha256").hex()
            p["id_number_mask"] = value[:4] + "**********" + value[-4:]
            phone = p["phone"]
            if phone:
                p["phone_hash"] = hmac.digest(key, phone.encode(), "sha256").hex()
                p["phone_mask"] = phone[:3] + "****" + phone[-4:]


# --- the database side ----------------------------------------------------------------------

INSERT_ORDER = ("place", "house", "household", "person", "organisation", "membership", "facility",
                "situation", "source_fact")
COUNT_NAMES = {"house": "houses", "household": "households", "person": "persons",
               "organisation": "organisations", "membership": "memberships",
               "facility": "facilities", "situation": "situations", "source_fact": "source_facts"}


class _Progress:
    """A rich progress bar on stderr when asked for, else nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True))
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if self.bar is None:
            return lambda n: None
        tid = self.bar.add_task(description, total=total)
        return lambda n: self.bar.advance(tid, n)


def seed(*, scale: str, seed: int, tenant_code: str, progress: bool, reset: bool = True) -> SeedReport:
    """Generate the synthetic subdistrict for ``tenant_code`` and commit it; same seed, same data."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: small | full")
    sc = SCALES[scale]
    started = time.perf_counter()
    phases: dict[str, float] = {}
    mark = [started]

    def lap(name: str) -> None:
        now = time.perf_counter()
        phases[name] = round(now - mark[0], 3)
        mark[0] = now

    with session_scope(actor="seed") as session, _Progress(progress) as bar:
        tenant = get_tenant(session=session, code=tenant_code) or create_tenant(
            session=session, code=tenant_code, name=TENANT_NAME, district="闵行区", city="上海市",
            centre=CENTRE)
        tenant_id = tenant.id
        bind_context(session, tenant_id=tenant_id, actor="seed")
        conn = session.connection()
        existing = conn.scalar(select(func.count()).select_from(Place.__table__)
                               .where(Place.__table__.c.tenant_id == tenant_id))
        if existing and not reset:
            raise ValueError(f"租户 {tenant_code} 已有数据 (tenant already has data): seed with reset")
        if existing:
            store.reset_tenant(conn, tenant_id)
        lap("reset")

        world = World(tenant_id, store.next_ids(conn, INSERT_ORDER + ("tagging", "import_batch")), utcnow())
        gen = Generator(sc, seed, tenant_code, world)
        steps: tuple[tuple[str, Callable[[], None]], ...] = (
            ("layout", gen.layout), ("estates", gen.estates), ("streets", gen.streets),
            ("population", gen.population), ("organisations", gen.organisations),
            ("memberships", gen.memberships), ("facilities", gen.facilities),
            ("situations", gen.situations), ("source_facts", gen.source_facts), ("protect", gen.protect))
        advance = bar.task("生成 generating", len(steps))
        for name, step in steps:
            step()
            advance(1)
            lap(name)

        tables = store.tables()
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # a big page cache for the index updates of this transaction
            conn.exec_driver_sql("PRAGMA cache_size=-262144")
        try:
            for name in INSERT_ORDER:
                rows = world.rows.get(name, [])
                store.bulk_insert(conn, tables[name], rows, bar.task(f"写入 {name}", len(rows)))
                lap(f"write_{name}")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA cache_size=-2000")
        store.fix_sequences(conn, INSERT_ORDER)  # before anything else inserts through the ORM

        tag_advance = bar.task("标签 tags", 1)
        tag_count = _tag(session, conn, world, gen, tables)
        tag_advance(1)
        lap("tags")

        counts = _counts(world, gen)
        counts["taggings"] = tag_count
        for name in INSERT_ORDER:
            n = len(world.rows.get(name, []))
            world.add("import_batch", {
                "kind": name, "filename": f"seed:{scale}:seed={seed}", "source": "seed", "rows": n,
                "created": n, "updated": 0, "status": "done", "errors": [], "actor": "seed",
                "at": world.now}, stamped=False)
        store.bulk_insert(conn, tables["import_batch"], world.rows["import_batch"], lambda n: None)
        store.fix_sequences(conn, ("import_batch",))
        lap("finish")
    # Fresh statistics after a bulk load: without them SQLite's planner picks the tenant index
    # over the selective ones (a building profile took 1 s instead of 0.1 s).
    with get_engine().connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    lap("analyze")
    return SeedReport(counts=counts, seconds=round(time.perf_counter() - started, 2),
                      tenant_id=tenant_id, phases=phases)


def _tag(session: Session, conn: Connection, world: World, gen: Generator, tables: dict[str, Table]) -> int:
    """Install the default taxonomy, set the manual tags, compute the rule tags.

    Uses ``shequ.core.registry.tags``; returns the number of taggings of the tenant.
    """
    from shequ.core.registry import tags as tag_service

    session.info["defer_tag_recompute"] = True
    tag_service.install_default_tags(session=session)
    session.flush()
    tag_ids = dict(conn.execute(select(tables["tag"].c.code, tables["tag"].c.id)
                                .where(tables["tag"].c.tenant_id == world.tenant_id)).all())
    seen: set[tuple[int, str, int]] = set()
    at = REF_TIME.astimezone(dt.UTC)
    for code, entity, entity_id in gen.manual_tags:
        tag_id = tag_ids.get(code)
        if tag_id is None or (tag_id, entity, entity_id) in seen:
            continue
        seen.add((tag_id, entity, entity_id))
        world.add("tagging", {"tag_id": tag_id, "entity": entity, "entity_id": entity_id,
                              "origin": "manual", "by": "seed", "at": at}, stamped=False)
    rows = world.rows.get("tagging", [])
    store.bulk_insert(conn, tables["tagging"], rows, lambda n: None)
    store.fix_sequences(conn, ("tagging",))
    session.info["defer_tag_recompute"] = False
    tag_service.recompute_all(session=session, today=REF_DATE)
    session.flush()
    return conn.scalar(select(func.count()).select_from(tables["tagging"])
                       .where(tables["tagging"].c.tenant_id == world.tenant_id)) or 0


def _counts(world: World, gen: Generator) -> dict[str, int]:
    places = world.rows.get("place", [])
    by_kind: dict[str, int] = {}
    for p in places:
        by_kind[p["kind"]] = by_kind.get(p["kind"], 0) + 1
    counts = {f"{k}s" if k != "other" else "other_places": by_kind.get(k, 0)
              for k in ("grid", "committee", "compound", "building", "unit", "floor", "room", "street",
                        "shop", "other")}
    counts["places"] = len(places)
    for name in INSERT_ORDER[1:]:
        counts[COUNT_NAMES[name]] = len(world.rows.get(name, []))
    counts["persons_not_placed"] = sum(1 for p in gen.people if p["place_id"] is None)
    for kind, rows in gen.orgs.items():
        counts[f"organisations:{kind}"] = len(rows)
    return counts
