"""Demo devices for a seeded subdistrict: sensors, cameras, gates and terminals where they belong.

``seed_devices`` reads the tenant's places, facilities and tags (run it after ``shequ seed``)
and writes Device rows in bulk, deterministic for a seed like the seed itself: every random
draw comes from ``random.Random`` instances derived from the seed and a phase name, and every
iteration follows ids or codes. As in the seed, the change log is not written row by row: one
ImportBatch row (kind ``device``, source ``seed``) records what was created.

Where devices go (full scale, seed 1: about 20,000):
- rooms of elderly people living alone (tags ``elderly_alone``, ``solitary_elderly``): a smoke
  detector, a door magnet, a PIR sensor and a water meter each;
- shops: a smoke detector and a PIR sensor; a smart breaker; a gas detector where food is cooked;
- every elevator (facility): an e-bike camera; every tower of 11 floors or more: a facade camera
  with its calibration in ``attrs`` (see ``facade_calibration``);
- charging sites (facilities ``charging_station``): a pile per ten ports, a distribution box and
  a smoke detector;
- a few parking lots: a sensor per space and, for gated lots, an entry and an exit gate;
- garbage points: a camera and a fill sensor per two bins; street lights every 50 m along the
  roads; ~12 mobile noise monitors; the self-service terminals of the committees.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, select

from shequ.core.iot.credentials import PREFIX, token_digest
from shequ.db import session_scope, utcnow
from shequ.sim import store
from shequ.sim.seed import AREA_KEYS, ancestry

ELDERLY_TAGS = ("elderly_alone", "solitary_elderly")
CATERING = "住宿和餐饮业"
PORTS_PER_PILE = 10
LIGHT_SPACING_M = 50.0
M_PER_DEG_LAT = 110_540.0
M_PER_DEG_LON_EQ = 111_320.0


@dataclass(frozen=True)
class DeviceScale:
    noise_monitors: int
    parking_lots: int  # lots that get space sensors (the gated among them get gates too)
    light_roads: int | None  # roads that get lights (None: all)


SCALES = {
    "full": DeviceScale(noise_monitors=12, parking_lots=5, light_roads=None),
    "small": DeviceScale(noise_monitors=3, parking_lots=1, light_roads=None),
}

# prefixes of device codes: <prefix>-<place or facility code>-<n>
PREFIXES = {
    "smoke_detector": "SD", "gas_detector": "GD", "door_magnet": "DM", "pir": "PIR",
    "water_meter": "WM", "smart_breaker": "BK", "noise_monitor": "NM", "elevator_camera": "EC",
    "facade_camera": "FC", "charging_pile": "CP", "distribution_box": "DB",
    "parking_space_sensor": "PS", "parking_gate": "PG", "garbage_camera": "GC",
    "bin_fill_sensor": "BF", "smart_light": "SL", "service_terminal": "ST",
}
VENDORS = {
    "smoke_detector": ("申安消防", "浦江安防", "江川物联"), "gas_detector": ("申安消防", "浦江安防"),
    "door_magnet": ("江川物联", "沪联智感"), "pir": ("江川物联", "沪联智感"),
    "water_meter": ("申城水表", "沪联智感"), "smart_breaker": ("申城电气", "闵电科技"),
    "noise_monitor": ("沪环监测",), "elevator_camera": ("浦江视讯", "申瞳智能"),
    "facade_camera": ("浦江视讯", "申瞳智能"), "charging_pile": ("闵电科技", "申城电气"),
    "distribution_box": ("申城电气",), "parking_space_sensor": ("沪泊科技",), "parking_gate": ("沪泊科技",),
    "garbage_camera": ("浦江视讯",), "bin_fill_sensor": ("沪环监测", "江川物联"),
    "smart_light": ("闵电科技",), "service_terminal": ("一网通办终端",),
}
TYPE_LABELS = {
    "smoke_detector": "烟感", "gas_detector": "燃气报警器", "door_magnet": "门磁", "pir": "人体感应",
    "water_meter": "智能水表", "smart_breaker": "智能空开", "noise_monitor": "噪声监测仪",
    "elevator_camera": "电梯电动车识别摄像机", "facade_camera": "高空抛物摄像机",
    "charging_pile": "充电桩", "distribution_box": "配电箱", "parking_space_sensor": "车位检测器",
    "parking_gate": "道闸", "garbage_camera": "垃圾投放点摄像机", "bin_fill_sensor": "满溢传感器",
    "smart_light": "智慧路灯", "service_terminal": "自助终端",
}


def _rng(seed: int, phase: str) -> random.Random:
    return random.Random(f"jiangchuan/{seed}/devices/{phase}")


def _metres(lon0: float, lat0: float, lon1: float, lat1: float) -> tuple[float, float]:
    k = M_PER_DEG_LON_EQ * math.cos(math.radians(lat0))
    return (lon1 - lon0) * k, (lat1 - lat0) * M_PER_DEG_LAT


def _bounds(geometry: dict[str, Any] | None) -> tuple[float, float, float, float] | None:
    if not geometry or geometry.get("type") != "Polygon":
        return None
    ring = geometry["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return min(xs), min(ys), max(xs), max(ys)


def facade_calibration(building: dict[str, Any]) -> dict[str, Any]:
    """What a facade camera needs to turn a trajectory into a room: the facade's width, the
    height of the ground floor and of the floors above, and the columns of windows.

    The camera looks at the building's long (south) facade; x runs 0..facade_width_m from its
    west end, z is metres above the ground. Floor 1 spans z in [0, ground_floor_m); floor f ≥ 2
    spans [ground_floor_m + (f-2)·floor_height_m, ground_floor_m + (f-1)·floor_height_m).
    A column {x0, x1, unit, room} is the room numbered f·100 + room of that unit on floor f
    (unit None: a single-unit building), i.e. place code ``<building>U<unit>R<f·100+room>``
    or ``<building>R<f·100+room>``.
    """
    b = _bounds(building["geometry"])
    if b is None:
        width = 40.0
    else:
        width, _ = _metres(b[0], b[1], b[2], b[1])
    floors = building["floors"] or 1
    height = building["height_m"] or floors * 3.0
    floor_h = round(height / floors, 2)
    attrs = building["attrs"] or {}
    units = int(attrs.get("units", 1)) or 1
    rpf = int(attrs.get("rooms_per_floor", 2)) or 1
    col_w = width / (units * rpf)
    columns = []
    for u in range(1, units + 1):
        for n in range(1, rpf + 1):
            i = (u - 1) * rpf + n - 1
            columns.append({"x0": round(i * col_w, 2), "x1": round((i + 1) * col_w, 2),
                            "unit": u if units > 1 else None, "room": n})
    return {"facade_width_m": round(width, 2), "ground_floor_m": floor_h, "floor_height_m": floor_h,
            "floors": floors, "columns": columns}


@dataclass
class _Plan:
    """Device rows being built, with their codes counted per (prefix, anchor)."""

    tenant_id: int
    now: dt.datetime
    next_id: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)

    def add(self, type_code: str, anchor: str, name: str, place: dict[str, Any], rng: random.Random, *,
            lon: float | None = None, lat: float | None = None, facility: dict[str, Any] | None = None,
            attrs: dict[str, Any] | None = None) -> dict[str, Any]:
        prefix = PREFIXES[type_code]
        key = (prefix, anchor)
        n = self.counters[key] = self.counters.get(key, 0) + 1
        source = facility or place
        row: dict[str, Any] = {
            "id": self.next_id, "tenant_id": self.tenant_id, "created_at": self.now, "updated_at": self.now,
            "code": f"{prefix}-{anchor}-{n}", "name": name[:200], "type_code": type_code,
            "facility_id": facility["id"] if facility else None,
            "lon": lon if lon is not None else source["lon"], "lat": lat if lat is not None else source["lat"],
            "vendor": rng.choice(VENDORS[type_code]), "status": "active", "attrs": attrs or {},
            "token_hash": None, "token_hint": None, "token_issued_at": None, "token_revoked_at": None,
            "offline_after_s": None, "maintenance_note": None, "place_id": place["id"],
            **ancestry(place),
        }
        self.next_id += 1
        self.rows.append(row)
        self.by_type[type_code] = self.by_type.get(type_code, 0) + 1
        return row


PLACE_COLS = ("id", "kind", "code", "name", "parent_id", "lon", "lat", "floors", "floor_no", "height_m",
              "address_text", "geometry", "attrs") + AREA_KEYS
FACILITY_COLS = ("id", "kind", "code", "name", "lon", "lat", "capacity", "place_id", "attrs")


def _rows(conn: Connection, table: Table, cols: Iterable[str], *where: Any) -> list[dict[str, Any]]:
    stmt = select(*(table.c[c] for c in cols)).where(*where).order_by(table.c.id)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def _elderly_rooms(conn: Connection, t: dict[str, Table], tenant_id: int) -> list[int]:
    tag, tagging, person = t["tag"], t["tagging"], t["person"]
    stmt = (select(person.c.place_id).distinct()
            .select_from(tagging.join(tag, tag.c.id == tagging.c.tag_id)
                         .join(person, and_(tagging.c.entity == "person", person.c.id == tagging.c.entity_id)))
            .where(tag.c.tenant_id == tenant_id, tag.c.code.in_(ELDERLY_TAGS),
                   person.c.place_id.is_not(None), person.c.status == "active")
            .order_by(person.c.place_id))
    return [r[0] for r in conn.execute(stmt)]


def _along(coords: list[list[float]], spacing_m: float) -> list[tuple[float, float]]:
    """Points every ``spacing_m`` metres along a line (lon, lat), starting half a spacing in."""
    out: list[tuple[float, float]] = []
    carry = spacing_m / 2
    for (lon0, lat0), (lon1, lat1) in zip(coords, coords[1:], strict=False):
        dx, dy = _metres(lon0, lat0, lon1, lat1)
        length = math.hypot(dx, dy)
        pos = carry
        while pos <= length:
            f = pos / length
            out.append((round(lon0 + f * (lon1 - lon0), 7), round(lat0 + f * (lat1 - lat0), 7)))
            pos += spacing_m
        carry = pos - length
    return out


def plan_devices(conn: Connection, *, tenant_id: int, seed: int, scale: str, next_id: int,
                 now: dt.datetime) -> _Plan:
    """Build the device rows for the tenant's seeded world (nothing written)."""
    sc = SCALES[scale]
    t = store.tables()
    place, facility = t["place"], t["facility"]
    plan = _Plan(tenant_id, now, next_id)
    kinds = ("grid", "committee", "compound", "building", "unit", "street", "shop")
    places = _rows(conn, place, PLACE_COLS, place.c.tenant_id == tenant_id, place.c.kind.in_(kinds))
    by_id = {p["id"]: p for p in places}
    facilities = _rows(conn, facility, FACILITY_COLS, facility.c.tenant_id == tenant_id)

    # rooms of elderly people living alone
    rng = _rng(seed, "homes")
    room_ids = _elderly_rooms(conn, t, tenant_id)
    rooms: list[dict[str, Any]] = []
    for i in range(0, len(room_ids), 500):
        rooms += _rows(conn, place, PLACE_COLS, place.c.id.in_(room_ids[i:i + 500]), place.c.kind == "room")
    rooms.sort(key=lambda r: r["id"])
    for room in rooms:
        building = by_id.get(room["building_id"])
        anchor = building["code"] if building else room["code"]
        where = room["address_text"] or room["name"]
        attrs = {"room": room["code"], "care": "elderly_alone"}
        for type_code in ("smoke_detector", "door_magnet", "pir", "water_meter"):
            plan.add(type_code, anchor, f"{where}{TYPE_LABELS[type_code]}", room, rng, attrs=dict(attrs))

    # shops
    rng = _rng(seed, "shops")
    for shop in (p for p in places if p["kind"] == "shop"):
        industry = (shop["attrs"] or {}).get("industry")
        types = ["smoke_detector", "pir", "smart_breaker"] + (["gas_detector"] if industry == CATERING else [])
        for type_code in types:
            plan.add(type_code, shop["code"], f"{shop['name']}{TYPE_LABELS[type_code]}", shop, rng,
                     attrs={"hours": [8, 21] if industry == CATERING else [9, 21]})

    # elevators and towers
    rng = _rng(seed, "buildings")
    for fac in (f for f in facilities if f["kind"] == "elevator"):
        at = by_id.get(fac["place_id"])
        if at is not None:
            plan.add("elevator_camera", fac["code"], f"{fac['name']}{TYPE_LABELS['elevator_camera']}", at, rng,
                     facility=fac)
    compound_name = {p["id"]: p["name"] for p in places if p["kind"] == "compound"}
    for b in (p for p in places if p["kind"] == "building"):
        if (b["floors"] or 0) >= 11:
            name = f"{compound_name.get(b['compound_id'], '')}{b['name']}楼{TYPE_LABELS['facade_camera']}"
            plan.add("facade_camera", b["code"], name, b, rng, attrs=facade_calibration(b))

    # charging sites
    rng = _rng(seed, "charging")
    for fac in (f for f in facilities if f["kind"] == "charging_station"):
        at = by_id.get(fac["place_id"])
        if at is None:
            continue
        ports = fac["capacity"] or PORTS_PER_PILE
        for k in range(math.ceil(ports / PORTS_PER_PILE)):
            n = min(PORTS_PER_PILE, ports - k * PORTS_PER_PILE)
            plan.add("charging_pile", fac["code"], f"{fac['name']}{k + 1}号充电桩", at, rng, facility=fac,
                     attrs={"ports": n, "price_fen_per_kwh": 100})
        plan.add("distribution_box", fac["code"], f"{fac['name']}配电箱", at, rng, facility=fac)
        plan.add("smoke_detector", fac["code"], f"{fac['name']}烟感", at, rng, facility=fac)

    # parking: the largest lots get space sensors, the gated ones gates too
    rng = _rng(seed, "parking")
    lots = sorted((f for f in facilities if f["kind"] == "parking_lot" and f["place_id"] in by_id),
                  key=lambda f: (-(f["capacity"] or 0), f["id"]))[: sc.parking_lots]
    for fac in sorted(lots, key=lambda f: f["id"]):
        at = by_id[fac["place_id"]]
        spaces = fac["capacity"] or 20
        residential = (fac["attrs"] or {}).get("type") != "on_street"
        for k in range(1, spaces + 1):
            lon = fac["lon"] + rng.uniform(-0.0003, 0.0003) if fac["lon"] is not None else None
            lat = fac["lat"] + rng.uniform(-0.0002, 0.0002) if fac["lat"] is not None else None
            plan.add("parking_space_sensor", fac["code"], f"{fac['name']}{k}号车位", at, rng, facility=fac,
                     lon=lon, lat=lat, attrs={"space": k, "residential": residential})
        if (fac["attrs"] or {}).get("gate"):
            for direction, label in (("in", "入口"), ("out", "出口")):
                plan.add("parking_gate", fac["code"], f"{fac['name']}{label}道闸", at, rng, facility=fac,
                         attrs={"direction": direction, "capacity": spaces})

    # garbage points
    rng = _rng(seed, "garbage")
    for fac in (f for f in facilities if f["kind"] == "garbage_point"):
        at = by_id.get(fac["place_id"])
        if at is None:
            continue
        plan.add("garbage_camera", fac["code"], f"{fac['name']}{TYPE_LABELS['garbage_camera']}", at, rng,
                 facility=fac)
        for k in range(1, max(1, (fac["capacity"] or 2) // 2) + 1):
            plan.add("bin_fill_sensor", fac["code"], f"{fac['name']}{k}号桶满溢传感器", at, rng, facility=fac,
                     attrs={"bin": k})

    # street lights and noise monitors along the roads
    rng = _rng(seed, "streets")
    streets = [p for p in places if p["kind"] == "street" and p["geometry"]]
    if sc.light_roads is not None:
        streets = streets[: sc.light_roads]
    for street in streets:
        coords = street["geometry"].get("coordinates") or []
        for k, (lon, lat) in enumerate(_along(coords, LIGHT_SPACING_M), start=1):
            plan.add("smart_light", street["code"], f"{street['name']}{k}号路灯", street, rng, lon=lon, lat=lat)
    main = [s for s in streets if (s["attrs"] or {}).get("main")] or streets
    for k in range(sc.noise_monitors if main else 0):
        street = main[k % len(main)]
        coords = street["geometry"].get("coordinates") or []
        points = _along(coords, 200.0) or [(street["lon"], street["lat"])]
        lon, lat = points[rng.randrange(len(points))]
        plan.add("noise_monitor", street["code"], f"{street['name']}移动噪声监测仪{k + 1}", street, rng,
                 lon=lon, lat=lat, attrs={"mobile": True, "home": [lon, lat]})

    # committees' self-service terminals
    rng = _rng(seed, "service")
    for fac in (f for f in facilities if f["kind"] == "service_terminal"):
        at = by_id.get(fac["place_id"])
        if at is not None:
            plan.add("service_terminal", fac["code"], fac["name"], at, rng, facility=fac)
    return plan


IOT_TABLES = ("device_command", "device_state", "twin_change", "telemetry", "telemetry_rollup")


def _delete_devices(conn: Connection, tenant_id: int) -> None:
    t = store.tables()
    for name in IOT_TABLES:
        if name in t and "tenant_id" in t[name].c:
            conn.execute(delete(t[name]).where(t[name].c.tenant_id == tenant_id))
    conn.execute(delete(t["device"]).where(t["device"].c.tenant_id == tenant_id))


def seed_devices(*, tenant_id: int, seed: int = 1, scale: str = "full") -> dict[str, int]:
    """Place the demo devices in the tenant's seeded subdistrict, replacing any it has; same seed,
    same devices. Returns the number of devices in all (``devices``) and per type."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: small | full")
    with session_scope(tenant_id=tenant_id, actor="seed") as session:
        conn = session.connection()
        _delete_devices(conn, tenant_id)
        ids = store.next_ids(conn, ("device", "import_batch"))
        now = utcnow()
        plan = plan_devices(conn, tenant_id=tenant_id, seed=seed, scale=scale, next_id=ids["device"], now=now)
        t = store.tables()
        store.bulk_insert(conn, t["device"], plan.rows, lambda n: None)
        n = len(plan.rows)
        store.bulk_insert(conn, t["import_batch"], [{
            "id": ids["import_batch"], "tenant_id": tenant_id, "kind": "device",
            "filename": f"seed:{scale}:seed={seed}", "source": "seed", "rows": n, "created": n,
            "updated": 0, "status": "done", "errors": [], "actor": "seed", "at": now}], lambda n: None)
        store.fix_sequences(conn, ("device", "import_batch"))
    return {"devices": len(plan.rows), **dict(sorted(plan.by_type.items()))}


def issue_tokens(tenant_id: int) -> dict[str, str]:
    """Give every device of the tenant a new token (replacing the old ones) and return them by
    device code: the only time they are seen. For the simulator over HTTP and MQTT."""
    import secrets

    t = store.tables()
    device = t["device"]
    tokens: dict[str, str] = {}
    with session_scope(tenant_id=tenant_id, actor="simulator") as session:
        conn = session.connection()
        rows = conn.execute(select(device.c.id, device.c.code).where(
            device.c.tenant_id == tenant_id, device.c.status != "retired").order_by(device.c.id)).all()
        now = utcnow()
        params = []
        for dev_id, code in rows:
            token = PREFIX + secrets.token_urlsafe(24)
            tokens[code] = token
            params.append({"b_id": dev_id, "b_hash": token_digest(token), "b_hint": token[-4:]})
        if params:
            from sqlalchemy import bindparam, update

            stmt = (update(device).where(device.c.id == bindparam("b_id"))
                    .values(token_hash=bindparam("b_hash"), token_hint=bindparam("b_hint"),
                            token_issued_at=now, token_revoked_at=None))
            conn.execute(stmt, params)
    return tokens
