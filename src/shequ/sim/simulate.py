"""The device simulator: the demo devices of a tenant report like real ones, day and night.

``Simulator.step(t)`` advances simulated time to ``t`` (epoch seconds) and returns the messages
the devices sent meanwhile, as ``(device code, kind, JSON bytes)``; it does no I/O and, for a
seed, the same times give the same messages (every random draw comes from a ``random.Random``
seeded by the seed, the device and the hour or report slot, and everything happens in time
order). ``run`` steps in scaled real time and sends through a transport: ``inproc`` (the
pipeline in this process), ``http`` (``POST /api/v1/ingest`` with each device's token) or
``mqtt`` (QoS 1 on ``shequ/{tenant}/{device}/{kind}``, the token in ``tk``). Tokens for http
and mqtt are issued (rotated) for every device at start and kept in memory only.

Each device sends a heartbeat (``status`` online) and its readings (``telemetry``) every
``heartbeat_s`` of its type, at a fixed phase of its own; changes (a door opening, a car
leaving a space, a charging session) are sent when they happen. Patterns follow the local
time in Asia/Shanghai. ``inject`` queues an anomaly (see ``ANOMALIES``) for the next step; the
simulator answers commands (``downlink``) with a ``reply`` and changes the device's state.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import heapq
import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from shequ.core.iot.types import DeviceType, get_type

SHANGHAI = ZoneInfo("Asia/Shanghai")
G = 9.81
BOOT_SPREAD_S = 30.0  # every device reports once within this many seconds of the start
ANOMALIES = ("smoke", "gas_leak", "ebike_in_elevator", "object_fall", "night_noise", "no_water",
             "shop_night_presence", "over_temperature", "offline", "bin_full", "parking_full")
Message = tuple[str, str, bytes]  # device code, kind, JSON payload


def scenario_anomalies() -> dict[str, Callable[..., None]]:
    """The anomalies scenario packages add: kind → ``fn(sim, t, device_code, params)``."""
    from shequ.core.plugins import load_scenarios, resolve

    return {kind: resolve(fn) for spec in load_scenarios().scenarios.values() for kind, fn in spec.anomalies}


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _stable(text: str) -> int:
    """A hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(random.Random(text).randbytes(4), "big")


def local_hour(t: float) -> float:
    """Hours since local (Asia/Shanghai, UTC+8, no DST) midnight."""
    return ((t + 8 * 3600) % 86400) / 3600


def local_day(t: float) -> int:
    return int((t + 8 * 3600) // 86400)


def _bump(h: float, centre: float, width: float) -> float:
    d = min(abs(h - centre), 24 - abs(h - centre))
    return math.exp(-0.5 * (d / width) ** 2)


def water_use_share(h: float) -> float:
    """Share of the time a home's tap runs (~150 L a day): peaks mornings and evenings, ~0 at night."""
    return 0.001 + 0.06 * _bump(h, 7.3, 0.9) + 0.045 * _bump(h, 19.5, 1.3) + 0.012 * _bump(h, 12, 1.2) \
        + (0.008 if 8.5 <= h <= 22 else 0.0)


def at_home_active(h: float) -> float:
    """Chance a PIR in an elder's home sees movement in a slot."""
    if h < 5.5 or h >= 22.5:
        return 0.015
    if h < 6.5:
        return 0.25
    return 0.6 + 0.2 * _bump(h, 8, 1.5) + 0.15 * _bump(h, 19, 1.5)


def is_dark(t: float) -> bool:
    """Street lights: dark between sunset and sunrise (Shanghai, by the day of the year)."""
    h = local_hour(t)
    doy = dt.datetime.fromtimestamp(t, SHANGHAI).timetuple().tm_yday
    season = math.cos(2 * math.pi * (doy - 172) / 365)  # 1 at midsummer
    sunrise, sunset = 5.9 - 0.9 * season, 18.0 + 1.0 * season
    return h < sunrise or h >= sunset


def occupancy_share(h: float, residential: bool) -> float:
    if residential:
        return 0.93 - 0.45 * _bump(h, 13, 3.5)
    return 0.15 + 0.7 * _bump(h, 14, 4.0)


def charging_start_rate(h: float) -> float:
    """Chance per free port per hour that someone plugs in: evenings, then nights."""
    return 0.03 + 0.32 * _bump(h, 20, 2.0) + 0.06 * _bump(h, 8, 1.0)


def _plate(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    body = "".join(rng.choice("0123456789" + letters) for _ in range(5))
    return f"沪{rng.choice('ABCDEFGHJKLMN')}{body}"


@dataclass
class SimDevice:
    """One device being simulated and the state it reports."""

    idx: int
    code: str
    type: DeviceType
    place_kind: str = ""
    place_id: int | None = None
    facility_id: int | None = None
    lon: float | None = None
    lat: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    silent_until: float = 0.0  # offline anomaly
    overrides: dict[str, tuple[float, Any]] = field(default_factory=dict)  # name → (until, value)
    ports: list[float] = field(default_factory=list)  # charging pile: session end per port (0: free)
    port_start: list[float] = field(default_factory=list)
    port_power: list[float] = field(default_factory=list)  # W
    disabled: bool = False  # a charging pile told to stop, a box cut

    @property
    def type_code(self) -> str:
        return self.type.code


@dataclass(order=True)
class _Action:
    at: float
    order: int
    idx: int = field(compare=False)
    what: str = field(compare=False)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


HOURLY = frozenset({"door_magnet", "charging_pile", "parking_space_sensor", "parking_gate", "garbage_camera",
                    "elevator_camera", "service_terminal", "smoke_detector"})


class Simulator:
    """Simulated devices of one tenant (the demo devices of ``seed_devices``)."""

    def __init__(self, tenant_code: str, *, transport: str = "inproc", url: str | None = None,
                 speed: float = 1.0, seed: int = 1, engine: Engine | None = None,
                 devices: Sequence[SimDevice] | None = None) -> None:
        if transport not in ("inproc", "http", "mqtt"):
            raise ValueError(f"transport {transport!r}: inproc | http | mqtt")
        if transport != "inproc" and not url:
            raise ValueError(f"the {transport} transport needs a URL")
        self.tenant_code = tenant_code
        self.transport = transport
        self.url = url
        self.speed = speed
        self.seed = seed
        self.engine = engine
        self.tenant_id: int | None = None  # set by _load
        self.devices: list[SimDevice] = list(devices) if devices is not None else self._load()
        self.by_code = {d.code: d for d in self.devices}
        self.clock: float | None = None
        self._heap: list[_Action] = []
        self._order = 0
        self._out: list[tuple[float, int, Message]] = []
        self.pending: list[tuple[str, str | None, dict[str, Any]]] = []
        self.commands: collections.deque[tuple[str, bytes]] = collections.deque()
        self.injected = 0
        self.truth: list[dict[str, Any]] = []  # what the anomalies did (for tests and demos)
        self.tokens: dict[str, str] = {}
        self.sent = 0
        self._lock = threading.Lock()

    # --- devices --------------------------------------------------------------------------

    def _load(self) -> list[SimDevice]:
        from shequ.core.iot.models import Device
        from shequ.core.places.models import Place, Tenant
        from shequ.db import get_engine, session_scope

        self.engine = self.engine or get_engine()
        out: list[SimDevice] = []
        with session_scope(engine=self.engine) as session:
            tenant = session.scalar(select(Tenant).where(Tenant.code == self.tenant_code))
            if tenant is None:
                raise ValueError(f"no tenant {self.tenant_code!r}")
            self.tenant_id = tenant.id
            rows = session.execute(
                select(Device.code, Device.type_code, Place.kind, Device.place_id, Device.facility_id,
                       Device.lon, Device.lat, Device.attrs)
                .outerjoin(Place, Place.id == Device.place_id)
                .where(Device.tenant_id == tenant.id, Device.status != "retired")
                .order_by(Device.code)).all()
        for code, type_code, kind, place_id, facility_id, lon, lat, attrs in rows:
            dtype = get_type(type_code)
            if dtype is None:
                continue
            out.append(SimDevice(len(out), code, dtype, kind or "", place_id, facility_id, lon, lat, dict(attrs or {})))
        return out

    # --- the clock ------------------------------------------------------------------------

    def _push(self, at: float, dev: SimDevice, what: str, **data: Any) -> None:
        self._order += 1
        heapq.heappush(self._heap, _Action(at, self._order, dev.idx, what, data))

    def later(self, at: float, dev: SimDevice, fn: Callable[[SimDevice, float], None]) -> None:
        """Run ``fn(dev, t)`` at simulated time ``at`` (scenario anomalies schedule their steps here)."""
        self._push(at, dev, "call", fn=fn)

    def _do_call(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        data["fn"](dev, t)

    def _rng(self, dev: SimDevice, *parts: Any) -> random.Random:
        return random.Random(f"sim/{self.seed}/{dev.code}/" + "/".join(str(p) for p in parts))

    def _start(self, t0: float) -> None:
        for dev in self.devices:
            rng = self._rng(dev, "init")
            self._init_state(dev, rng, t0)
            hb = dev.type.heartbeat_s
            phase = _stable(f"{self.seed}/{dev.code}") % (hb * 1000) / 1000
            boot = t0 + phase % BOOT_SPREAD_S
            self._push(boot, dev, "report", once=True)
            first = t0 - (t0 - phase) % hb + hb  # the first regular slot after t0
            while first <= boot:
                first += hb
            self._push(first, dev, "report")
            if dev.type_code in HOURLY:
                self._push(t0, dev, "plan", hour=int(t0 // 3600), since=t0)

    def step(self, t: float | dt.datetime) -> list[Message]:
        """Advance to ``t`` and return the messages sent since the last step, in time order."""
        now = t.timestamp() if isinstance(t, dt.datetime) else float(t)
        with self._lock:
            if self.clock is None:
                self._start(now)
                self.clock = now
            now = max(now, self.clock)
            self._apply_injections(now)
            self._answer_commands(now)
            heap = self._heap
            while heap and heap[0].at <= now:
                action = heapq.heappop(heap)
                dev = self.devices[action.idx]
                getattr(self, f"_do_{action.what}")(dev, action.at, action.data)
            self.clock = now
            out = [m for _, _, m in sorted(self._out, key=lambda x: (x[0], x[1]))]
            self._out.clear()
            return out

    # --- emitting -------------------------------------------------------------------------

    def _emit(self, dev: SimDevice, t: float, kind: str, body: dict[str, Any]) -> None:
        if t < dev.silent_until and kind != "reply":
            return
        ts = int(t * 1000)
        dev.seq += 1
        msg = {"id": f"{dev.code}-{ts}-{dev.seq}", "ts": ts, **body}
        self._out.append((t, len(self._out), (dev.code, kind, _dumps(msg))))

    def _telemetry(self, dev: SimDevice, t: float, values: dict[str, Any]) -> None:
        if values:
            self._emit(dev, t, "telemetry", {"v": values})

    def _event(self, dev: SimDevice, t: float, name: str, data: dict[str, Any] | None = None) -> None:
        self._emit(dev, t, "event", {"type": name, "data": data or {}})

    def _set(self, dev: SimDevice, t: float, **values: Any) -> None:
        """Change state values and report the change at once."""
        changed = {k: v for k, v in values.items() if dev.state.get(k) != v}
        dev.state.update(values)
        self._telemetry(dev, t, changed)

    def _override(self, dev: SimDevice, name: str, t: float) -> Any:
        got = dev.overrides.get(name)
        if got is None:
            return None
        until, value = got
        if t >= until:
            del dev.overrides[name]
            return None
        return value

    # --- state ----------------------------------------------------------------------------

    def _init_state(self, dev: SimDevice, rng: random.Random, t0: float) -> None:
        c = dev.type_code
        s = dev.state
        h = local_hour(t0)
        if c in ("smoke_detector", "door_magnet", "pir"):
            s["battery_pct"] = rng.randint(55, 100)
        if c == "smoke_detector":
            s.update(smoke=False, tamper=False)
        elif c == "door_magnet":
            s["open"] = False
        elif c == "gas_detector":
            s.update(alarm=False, valve_open=True)
        elif c == "water_meter":
            s["total_m3"] = round(rng.uniform(20, 900), 3)
        elif c == "smart_breaker":
            s["on"] = True
        elif c == "distribution_box":
            s["power_on"] = True
        elif c == "charging_pile":
            n = int(dev.attrs.get("ports", 10)) or 1
            dev.ports, dev.port_start, dev.port_power = [0.0] * n, [0.0] * n, [0.0] * n
            for p in range(n):  # sessions already running at the start
                if rng.random() < min(0.8, 2 * charging_start_rate(h)):
                    dev.ports[p] = t0 + rng.uniform(600, 5 * 3600)
                    dev.port_start[p] = t0 - rng.uniform(0, 3 * 3600)
                    dev.port_power[p] = rng.uniform(180, 420)
                    self._push(dev.ports[p], dev, "unplug", port=p, end=dev.ports[p])
            s["charging"] = any(dev.ports)
        elif c == "parking_space_sensor":
            s["occupied"] = rng.random() < occupancy_share(h, bool(dev.attrs.get("residential", True)))
            s["battery_pct"] = rng.randint(60, 100)
        elif c == "parking_gate":
            s["gate_open"] = False
        elif c == "elevator_camera":
            s.update(doors_held=False, online=True)
        elif c in ("facade_camera", "garbage_camera"):
            s["online"] = True
        elif c == "service_terminal":
            s.update(online=True, in_use=False)
        elif c == "smart_light":
            s["on"] = is_dark(t0)
        elif c == "bin_fill_sensor":
            s["rate"] = rng.uniform(4.0, 8.0)  # fill % per hour of the day's use
        elif dev.type is not None and dev.type.scenario is not None:
            # a scenario's own type (a sprinkler): each field at its nominal value, read from the
            # type — booleans that are faulty when false start true, numbers mid-range
            for f in dev.type.telemetry:
                if f.type == "bool":
                    s.setdefault(f.name, False in f.fault_values)
                elif f.is_measure:
                    lo, hi = f.min if f.min is not None else 0.0, f.max if f.max is not None else 0.0
                    s.setdefault(f.name, round((lo + hi) / 2, 2) if f.type == "float" else int((lo + hi) // 2))

    def _readings(self, dev: SimDevice, t: float, rng: random.Random) -> dict[str, Any]:
        """The values a device reports at a heartbeat slot."""
        c, s, h = dev.type_code, dev.state, local_hour(t)
        indoor = round(22 + 3 * math.sin((h - 9) / 24 * 2 * math.pi) + rng.gauss(0, 0.4), 1)
        if c == "smoke_detector":
            return {"smoke": bool(self._override(dev, "smoke", t) or False), "temperature_c": indoor,
                    "battery_pct": s["battery_pct"], "tamper": s["tamper"]}
        if c == "gas_detector":
            lel = self._override(dev, "gas_lel", t)
            lel = round(max(0.0, rng.gauss(0.6, 0.4)), 1) if lel is None else lel
            s["alarm"] = lel >= 20
            return {"gas_lel": lel, "alarm": s["alarm"], "valve_open": s["valve_open"]}
        if c == "door_magnet":
            return {"open": s["open"], "battery_pct": s["battery_pct"]}
        if c == "pir":
            forced = self._override(dev, "motion", t)
            if forced is not None:
                motion = bool(forced)
            elif dev.place_kind == "shop":
                o, c2 = dev.attrs.get("hours", [9, 21])
                motion = o <= h < c2 and rng.random() < 0.9
            else:
                motion = rng.random() < at_home_active(h)
            count = (rng.randint(1, 12) if dev.place_kind != "shop" else rng.randint(5, 60)) if motion else 0
            if forced:
                count = rng.randint(3, 15)
            return {"motion": motion, "motion_count": count, "battery_pct": s["battery_pct"]}
        if c == "water_meter":
            hb = dev.type.heartbeat_s
            forced = self._override(dev, "flow", t)
            share = water_use_share(h)
            if forced is not None:
                flow, used = float(forced), 0.0
            else:
                flow = round(rng.uniform(3.0, 9.0), 2) if rng.random() < share else 0.0
                used = share * 6.0 * hb / 60 / 1000 * rng.uniform(0.5, 1.5)  # m³ since the last slot
            s["total_m3"] = round(s["total_m3"] + used, 4)
            return {"flow_lpm": flow, "total_m3": s["total_m3"]}
        if c == "smart_breaker":
            o, c2 = dev.attrs.get("hours", [9, 21])
            current = (rng.uniform(8, 25) if o <= h < c2 else rng.uniform(0.4, 2.0)) if s["on"] else 0.0
            voltage = round(rng.gauss(221, 2.5), 1)
            return {"current_a": round(current, 2), "voltage_v": voltage,
                    "power_w": round(current * voltage * 0.92, 1),
                    "temperature_c": round(indoor + current * 0.6, 1), "on": s["on"]}
        if c == "distribution_box":
            if not s["power_on"]:
                return {"current_a": 0.0, "temperature_c": indoor, "power_on": False}
            load = sum(sum(d.port_power[p] for p in range(len(d.ports)) if d.ports[p])
                       for d in self._site_piles(dev))
            current = round(load / 220 + rng.uniform(0.5, 1.5), 2)
            return {"current_a": current, "temperature_c": round(indoor + current * 0.3, 1), "power_on": True}
        if c == "charging_pile":
            return self._pile_values(dev, t, rng)
        if c == "noise_monitor":
            loud = self._override(dev, "laeq_db", t)
            base = (57 + 5 * _bump(h, 8, 1.5) + 4 * _bump(h, 18, 2) if 6 <= h < 22 else 45)
            laeq = round(loud + rng.gauss(0, 1.5) if loud is not None else base + rng.gauss(0, 2), 1)
            peak = laeq + rng.uniform(5, 12) + (rng.uniform(10, 25) if rng.random() < 0.05 else 0)
            home = dev.attrs.get("home") or [dev.lon or 121.41, dev.lat or 31.01]
            day_rng = self._rng(dev, "pos", local_day(t))
            # set up each day a few metres from its spot by the road (it stays within the road's
            # GB 3096 4a band, where its street levels belong)
            return {"laeq_db": min(140.0, max(20.0, laeq)), "lamax_db": round(min(140.0, peak), 1),
                    "lon": round(home[0] + day_rng.uniform(-0.0002, 0.0002), 6),
                    "lat": round(home[1] + day_rng.uniform(-0.0002, 0.0002), 6)}
        if c == "elevator_camera":
            return {"doors_held": s["doors_held"], "online": True}
        if c in ("facade_camera", "garbage_camera"):
            return {"online": True}
        if c == "parking_space_sensor":
            return {"occupied": s["occupied"], "battery_pct": s["battery_pct"]}
        if c == "parking_gate":
            return {"gate_open": s["gate_open"]}
        if c == "bin_fill_sensor":
            forced = self._override(dev, "fill_pct", t)
            return {"fill_pct": forced if forced is not None else self._fill(dev, t),
                    "temperature_c": round(indoor + 2 + rng.gauss(0, 1), 1)}
        if c == "smart_light":
            forced = self._override(dev, "level", t)
            if forced is not None:
                level = int(forced)
            elif is_dark(t):
                level = 100 if (h >= 12 or h < 0.5) else 50  # dimmed after half past midnight
            else:
                level = 0
            s["on"] = level > 0
            return {"on": level > 0, "level_pct": level,
                    "power_w": round(1.2 * level + (0.5 if level == 0 else 0), 1)}
        if c == "service_terminal":
            return {"online": True, "in_use": s["in_use"]}
        if dev.type is not None and dev.type.scenario is not None:  # its state as it stands
            return {f.name: s[f.name] for f in dev.type.telemetry if f.name in s}
        return {}

    def _fill(self, dev: SimDevice, t: float) -> float:
        """A bin fills through the day from its morning emptying (06:30–08:00)."""
        day = local_day(t)
        rng = self._rng(dev, "empty", day)
        emptied_h = rng.uniform(6.5, 8.0)
        h = local_hour(t)
        if h >= emptied_h:
            since = h - emptied_h
            residue = rng.uniform(2, 6)
        else:  # still yesterday's fill
            prev = self._rng(dev, "empty", day - 1)
            since = 24 - prev.uniform(6.5, 8.0) + h
            residue = prev.uniform(2, 6)
        rate = dev.state.get("rate", 5.0)
        # most of the waste comes in the morning and evening sorting hours
        fill = residue + rate * min(since, 14) * 0.55 + rate * max(0.0, since - 14) * 0.1
        return round(min(89.0, fill), 1)

    def _site_piles(self, dev: SimDevice) -> list[SimDevice]:
        if dev.facility_id is None:
            return []
        return [d for d in self._by_facility().get(dev.facility_id, []) if d.type_code == "charging_pile"]

    def _by_facility(self) -> dict[int, list[SimDevice]]:
        cached: dict[int, list[SimDevice]] | None = getattr(self, "_facilities", None)
        if cached is None:
            cached = {}
            for d in self.devices:
                if d.facility_id is not None:
                    cached.setdefault(d.facility_id, []).append(d)
            self._facilities = cached
        return cached

    def _pile_values(self, dev: SimDevice, t: float, rng: random.Random) -> dict[str, Any]:
        active = [p for p in range(len(dev.ports)) if dev.ports[p] > t]
        power = sum(dev.port_power[p] * rng.uniform(0.9, 1.05) for p in active)
        hot = self._override(dev, "temperature_c", t)
        temp = hot if hot is not None else round(24 + power / 120 + rng.gauss(0, 0.8), 1)
        energy = sum(self._energy(dev, p, t) for p in active)
        return {"power_w": round(power, 1), "current_a": round(power / 220, 2), "temperature_c": temp,
                "charging": bool(active), "energy_kwh": round(energy, 3)}

    # --- actions --------------------------------------------------------------------------

    @staticmethod
    def _energy(dev: SimDevice, p: int, t: float) -> float:
        return round(dev.port_power[p] * max(0.0, t - dev.port_start[p]) / 3.6e6, 3)

    def _do_report(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        if not data.get("once"):
            self._push(t + dev.type.heartbeat_s, dev, "report")
        values = self._readings(dev, t, self._rng(dev, "slot", int(t)))
        self._emit(dev, t, "status", {"online": True})  # the heartbeat
        self._telemetry(dev, t, {k: v for k, v in values.items() if k != "online"})
        dev.state.update(values)

    def _do_plan(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        """What happens at a device within one hour, drawn at the start of the hour."""
        hour, since = data["hour"], data["since"]
        self._push((hour + 1) * 3600, dev, "plan", hour=hour + 1, since=(hour + 1) * 3600)
        rng = self._rng(dev, "hour", hour)
        start, end = hour * 3600, (hour + 1) * 3600
        h = local_hour(start)
        c = dev.type_code

        def at() -> float:
            return rng.uniform(start, end)

        def later(when: float, what: str, **kw: Any) -> None:
            if when >= since:
                self._push(when, dev, what, **kw)

        if c == "door_magnet":
            rate = 0.02 if (h < 6 or h >= 22) else 0.35 + 0.3 * _bump(h, 9, 1.5) + 0.2 * _bump(h, 16, 2)
            for _ in range(1 if rng.random() < rate else 0):
                when = at()
                later(when, "door", open=True, duration=rng.randint(5, 40))
        elif c == "charging_pile":
            p_start = charging_start_rate(h)
            for p in range(len(dev.ports)):
                r, when = rng.random(), at()
                if r < p_start:
                    later(when, "plug", port=p, hours=rng.uniform(2, 8), power=rng.uniform(180, 420))
        elif c == "parking_space_sensor":
            share = occupancy_share(h, bool(dev.attrs.get("residential", True)))
            occupied = dev.state.get("occupied", False)
            flip = rng.random() < (0.5 * (1 - share) if occupied else 0.5 * share)
            when = at()
            if flip:
                later(when, "park", occupied=not occupied)
        elif c == "parking_gate":
            cap = int(dev.attrs.get("capacity", 50))
            peak = 7.8 if dev.attrs.get("direction") == "out" else 18.5  # out to work, home at night
            rate = cap * (0.01 + 0.08 * _bump(h, peak, 1.5))
            for _ in range(int(rate) + (1 if rng.random() < rate % 1 else 0)):
                later(at(), "vehicle", plate=_plate(rng))
        elif c == "garbage_camera":
            if 6 <= h < 21 and rng.random() < 0.04:
                later(at(), "happen", event=rng.choice(("mixed_waste", "mixed_waste", "dumping")),
                      data={"snapshot": f"sim://snapshot/{dev.code}/{hour}.jpg"})
        elif c == "elevator_camera":
            if rng.random() < 0.05 / 24 * (3 if 17 <= h < 23 else 0.5):
                when = at()
                later(when, "happen", event="ebike_detected",
                      data={"confidence": round(rng.uniform(0.75, 0.98), 2),
                            "snapshot": f"sim://snapshot/{dev.code}/{hour}.jpg"})
                later(when + rng.uniform(20, 60), "happen", event="ebike_left", data={})
        elif c == "service_terminal":
            if 9 <= h < 17:
                for _ in range(rng.randint(0, 3)):
                    when = at()
                    later(when, "use", on=True)
                    later(when + rng.uniform(120, 600), "use", on=False)
                if rng.random() < 0.03:
                    later(at(), "happen", event="help_request", data={"note": "需要工作人员协助"})
        elif c == "smoke_detector":
            day = local_day(start)
            if int(h) == 10 and (day + _stable(dev.code)) % 30 == 0:
                later(at(), "happen", event="self_test", data={"ok": True})

    def _do_door(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        if self._override(dev, "quiet", t):
            return
        if data["open"]:
            self._set(dev, t, open=True)
            self._event(dev, t, "door_opened", {"duration_s": data["duration"]})
            self._push(t + data["duration"], dev, "door", open=False, duration=0)
        else:
            self._set(dev, t, open=False)

    def _do_plug(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        p = data["port"]
        if dev.disabled or dev.ports[p] > t or self._box_off(dev):
            return
        end = t + data["hours"] * 3600
        dev.ports[p], dev.port_start[p], dev.port_power[p] = end, t, data["power"]
        self._event(dev, t, "session_start", {"port": p + 1, "energy_kwh": 0.0, "fee_fen": 0})
        self._set(dev, t, charging=True)
        self._push(end, dev, "unplug", port=p, end=end)

    def _do_unplug(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        p = data["port"]
        if dev.ports[p] and dev.ports[p] == data["end"]:  # not a session stopped and replaced since
            self._stop_port(dev, t, p)

    def _stop_ports(self, dev: SimDevice, t: float) -> None:
        """End every charging session still running on a pile (power cut, stop command)."""
        for p in range(len(dev.ports)):
            if dev.ports[p] > t:
                self._stop_port(dev, t, p)

    def _stop_port(self, dev: SimDevice, t: float, p: int) -> None:
        energy = self._energy(dev, p, t)
        price = int(dev.attrs.get("price_fen_per_kwh", 100))
        fee = max(100, round(energy * price)) if energy > 0 else 0  # at least 1 yuan a session
        dev.ports[p] = 0.0
        self._event(dev, t, "session_stop", {"port": p + 1, "energy_kwh": energy, "fee_fen": fee})
        self._set(dev, t, charging=any(x > t for x in dev.ports))

    def _box_off(self, dev: SimDevice) -> bool:
        return any(d.type_code == "distribution_box" and not d.state.get("power_on", True)
                   for d in self._by_facility().get(dev.facility_id or -1, []))

    def _do_park(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        if self._override(dev, "occupied", t) is not None:
            return
        self._set(dev, t, occupied=data["occupied"])

    def _do_vehicle(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        event = "vehicle_in" if dev.attrs.get("direction", "in") == "in" else "vehicle_out"
        self._event(dev, t, event, {"plate": data["plate"]})

    def _do_use(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        self._set(dev, t, in_use=data["on"])

    def _do_happen(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        self._event(dev, t, data["event"], data.get("data") or {})

    def _do_set(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        self._set(dev, t, **data["values"])

    def _do_silence(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        dev.silent_until = t + data["seconds"]

    def _do_reading(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        """An extra report now (an anomaly's values show at once, not at the next slot)."""
        rng = self._rng(dev, "extra", int(t * 1000))
        values = self._readings(dev, t, rng)
        self._telemetry(dev, t, {k: v for k, v in values.items() if k != "online"})

    # --- anomalies ------------------------------------------------------------------------

    def inject(self, kind: str, device_code: str | None = None, **params: Any) -> None:
        """Queue an anomaly for the next step (kinds: ``ANOMALIES`` and the scenarios')."""
        if kind not in ANOMALIES and kind not in scenario_anomalies():
            raise ValueError(f"unknown anomaly {kind!r}: {', '.join([*ANOMALIES, *scenario_anomalies()])}")
        if device_code is not None and device_code not in self.by_code:
            raise ValueError(f"no device {device_code!r} in {self.tenant_code}")
        with self._lock:
            self.pending.append((kind, device_code, params))

    def _pick(self, kind: str, code: str | None, want: Callable[[SimDevice], bool]) -> SimDevice | None:
        if code is not None:
            return self.by_code[code]
        choices = [d for d in self.devices if want(d)]
        if not choices:
            return None
        return random.Random(f"sim/{self.seed}/anomaly/{kind}/{self.injected}").choice(choices)

    def _apply_injections(self, t: float) -> None:
        pending, self.pending = self.pending, []
        for kind, code, params in pending:
            self.injected += 1
            if kind in ANOMALIES:
                getattr(self, f"_inject_{kind}")(t, code, params)
            else:
                scenario_anomalies()[kind](self, t, code, params)

    def _note(self, kind: str, dev: SimDevice, t: float, **extra: Any) -> None:
        self.truth.append({"kind": kind, "device": dev.code, "t": t, **extra})

    def _inject_smoke(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("smoke", code, lambda d: d.type_code == "smoke_detector"
                         and (d.place_kind == "shop" or d.facility_id is not None))
        if dev is None:
            return
        until = t + float(p.get("duration_s", 600))
        dev.overrides["smoke"] = (until, True)
        self._set(dev, t, smoke=True)
        self._event(dev, t, "smoke_alarm", {"density_db_m": round(float(p.get("density", 0.35)), 2)})
        self._push(until, dev, "set", values={"smoke": False})
        self._note("smoke", dev, t, until=until)

    def _inject_gas_leak(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("gas_leak", code, lambda d: d.type_code == "gas_detector")
        if dev is None:
            return
        peak = float(p.get("lel", 35.0))
        until = t + float(p.get("duration_s", 900))
        for k, frac in enumerate((0.2, 0.6, 1.0)):  # rising over two minutes
            self._push(t + 60 * k, dev, "gas", lel=round(peak * frac, 1), until=until)
        self._push(until, dev, "gas", lel=0.4, until=until)
        self._note("gas_leak", dev, t, until=until)

    def _do_gas(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        if t < data["until"]:
            dev.overrides["gas_lel"] = (data["until"], data["lel"])
        alarm = data["lel"] >= 20
        was = dev.state.get("alarm")
        self._set(dev, t, gas_lel=data["lel"], alarm=alarm)
        if alarm and not was:
            self._event(dev, t, "gas_alarm", {"gas_lel": data["lel"]})

    def _inject_ebike_in_elevator(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("ebike_in_elevator", code, lambda d: d.type_code == "elevator_camera")
        if dev is None:
            return
        self._event(dev, t, "ebike_detected", {"confidence": float(p.get("confidence", 0.93)),
                                               "snapshot": f"sim://snapshot/{dev.code}/{int(t)}.jpg"})
        self._push(t + float(p.get("stay_s", 45)), dev, "happen", event="ebike_left", data={})
        self._note("ebike_in_elevator", dev, t)

    def _inject_object_fall(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("object_fall", code, lambda d: d.type_code == "facade_camera" and "columns" in d.attrs)
        if dev is None:
            return
        a = dev.attrs
        rng = random.Random(f"sim/{self.seed}/fall/{dev.code}/{self.injected}")
        floors = int(a.get("floors", 11))
        floor = int(p.get("floor") or rng.randint(3, floors))
        columns = a.get("columns") or [{"x0": 0.0, "x1": a.get("facade_width_m", 30.0), "unit": None, "room": 1}]
        col = columns[int(p["column"]) % len(columns)] if "column" in p else rng.choice(columns)
        ground, fh = float(a.get("ground_floor_m", 3.0)), float(a.get("floor_height_m", 3.0))
        z0 = ground + (floor - 2) * fh + fh * 0.4 if floor >= 2 else ground * 0.5  # a window sill
        x0 = rng.uniform(col["x0"] + 0.3, col["x1"] - 0.3)
        vx = rng.uniform(-0.6, 0.6)
        points = []
        k = 0
        while True:
            ft = k * 0.04  # 25 frames a second
            z = z0 - 0.5 * G * ft * ft
            if z < 0:
                break
            points.append({"t": round(ft, 3), "x": round(x0 + vx * ft + rng.gauss(0, 0.05), 2),
                           "z": round(z + rng.gauss(0, 0.05), 2)})
            k += 1
        self._event(dev, t, "object_fall", {"points": points, "video": f"sim://video/{dev.code}/{int(t)}.mp4"})
        self._note("object_fall", dev, t, floor=floor, unit=col.get("unit"), room=floor * 100 + int(col["room"]))

    def _inject_night_noise(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("night_noise", code, lambda d: d.type_code == "noise_monitor")
        if dev is None:
            return
        until = t + float(p.get("duration_s", 1800))
        dev.overrides["laeq_db"] = (until, float(p.get("laeq_db", 74.0)))
        self._push(t, dev, "reading")
        k = 1
        while t + 60 * k < until:  # a loud minute every minute while it lasts
            self._push(t + 60 * k, dev, "reading")
            k += 1
        self._note("night_noise", dev, t, until=until)

    def _room_devices(self, dev: SimDevice) -> list[SimDevice]:
        room = dev.attrs.get("room")
        return [d for d in self.devices if room and d.attrs.get("room") == room]

    def _inject_no_water(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("no_water", code, lambda d: d.type_code == "water_meter" and d.attrs.get("care") == "elderly_alone")
        if dev is None:
            return
        until = t + float(p.get("duration_s", 2 * 86400))
        for d in self._room_devices(dev) or [dev]:
            if d.type_code == "water_meter":
                d.overrides["flow"] = (until, 0.0)
            elif d.type_code == "pir":
                d.overrides["motion"] = (until, False)
            elif d.type_code == "door_magnet":
                d.overrides["quiet"] = (until, True)
        self._note("no_water", dev, t, until=until, room=dev.attrs.get("room"))

    def _inject_shop_night_presence(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("shop_night_presence", code, lambda d: d.type_code == "pir" and d.place_kind == "shop")
        if dev is None:
            return
        until = t + float(p.get("duration_s", 3600))
        dev.overrides["motion"] = (until, True)
        k = 0
        while t + 300 * k < until:
            self._push(t + 300 * k, dev, "reading")
            k += 1
        self._note("shop_night_presence", dev, t, until=until)

    def _inject_over_temperature(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("over_temperature", code, lambda d: d.type_code == "charging_pile")
        if dev is None:
            return
        until = t + float(p.get("duration_s", 1800))
        peak = float(p.get("temperature_c", 82.0))
        if not any(x > t for x in dev.ports) and dev.ports:
            dev.ports[0], dev.port_start[0], dev.port_power[0] = until, t, 400.0
            self._event(dev, t, "session_start", {"port": 1, "energy_kwh": 0.0, "fee_fen": 0})
            self._set(dev, t, charging=True)
            self._push(until, dev, "unplug", port=0, end=until)
        for k, frac in enumerate((0.6, 0.8, 1.0)):  # heating up over ten minutes
            self._push(t + 300 * k, dev, "heat", value=round(peak * frac, 1), until=until)
        self._note("over_temperature", dev, t, until=until)

    def _do_heat(self, dev: SimDevice, t: float, data: dict[str, Any]) -> None:
        dev.overrides["temperature_c"] = (data["until"], data["value"])
        self._do_reading(dev, t, {})

    def _inject_offline(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("offline", code, lambda d: True)
        if dev is None:
            return
        seconds = float(p.get("duration_s", 10 * 365 * 86400))
        dev.silent_until = t + seconds
        self._note("offline", dev, t, until=dev.silent_until)

    def _inject_bin_full(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        dev = self._pick("bin_full", code, lambda d: d.type_code == "bin_fill_sensor")
        if dev is None:
            return
        until = t + float(p.get("duration_s", 4 * 3600))
        dev.overrides["fill_pct"] = (until, float(p.get("fill_pct", 97.0)))
        self._push(t, dev, "reading")
        for cam in self._by_facility().get(dev.facility_id or -1, []):
            if cam.type_code == "garbage_camera":
                self._event(cam, t + 30, "overflow", {"snapshot": f"sim://snapshot/{cam.code}/{int(t)}.jpg"})
        self._note("bin_full", dev, t, until=until)

    def _inject_parking_full(self, t: float, code: str | None, p: dict[str, Any]) -> None:
        first = self._pick("parking_full", code, lambda d: d.type_code == "parking_space_sensor")
        if first is None:
            return
        until = t + float(p.get("duration_s", 3 * 3600))
        lot = [d for d in self._by_facility().get(first.facility_id or -1, [first])
               if d.type_code == "parking_space_sensor"] or [first]
        rng = random.Random(f"sim/{self.seed}/parking_full/{self.injected}")
        for d in lot:
            if not d.state.get("occupied"):
                when = t + rng.uniform(0, 600)
                self._push(when, d, "set", values={"occupied": True})
                for gate in self._by_facility().get(d.facility_id or -1, []):
                    if gate.type_code == "parking_gate" and gate.attrs.get("direction") == "in":
                        self._push(when - 20, gate, "vehicle", plate=_plate(rng))
            d.overrides["occupied"] = (until, True)
        self._note("parking_full", first, t, until=until, facility_id=first.facility_id)

    # --- commands -------------------------------------------------------------------------

    def downlink(self, tenant_code: str, device_code: str, payload: bytes) -> None:
        """A command for a device (the local downlink's subscriber; MQTT commands come here too)."""
        if tenant_code == self.tenant_code and device_code in self.by_code:
            self.commands.append((device_code, payload))

    def _answer_commands(self, t: float) -> None:
        while self.commands:
            code, payload = self.commands.popleft()
            dev = self.by_code[code]
            try:
                cmd = json.loads(payload)
                cmd_id, name, args = cmd["id"], cmd["name"], cmd.get("args") or {}
            except (ValueError, KeyError, TypeError):
                continue
            ok, result, error = self._command(dev, t, name, args)
            body: dict[str, Any] = {"cmd": cmd_id, "ok": ok, "result": result}
            if error:
                body["error"] = error
            self._emit(dev, t, "reply", body)

    def _command(self, dev: SimDevice, t: float, name: str, args: dict[str, Any]) -> tuple[bool, dict[str, Any], str]:
        spec = dev.type.commands_by_name.get(name)
        if spec is None:
            return False, {}, f"unknown command {name}"
        problem = spec.check(args)
        if problem:
            return False, {}, problem
        c = dev.type_code
        if c == "smoke_detector" and name == "silence":
            return True, {"silenced": True}, ""
        if c == "gas_detector" and name == "close_valve":
            self._set(dev, t, valve_open=False)
            return True, {"valve_open": False}, ""
        if c == "smart_breaker":
            on = name == "close"
            self._set(dev, t, on=on)
            return True, {"on": on}, ""
        if c == "elevator_camera":
            if name == "hold_doors":
                self._set(dev, t, doors_held=True)
                seconds = int(args.get("seconds") or 60)
                self._push(t + seconds, dev, "set", values={"doors_held": False})
                return True, {"doors_held": True, "seconds": seconds}, ""
            if name == "release_doors":
                self._set(dev, t, doors_held=False)
                return True, {"doors_held": False}, ""
            return True, {"played": True}, ""
        if c == "charging_pile":
            if name == "stop_charging":
                dev.disabled = True
                self._stop_ports(dev, t)
                self._set(dev, t, charging=False, power_w=0.0, current_a=0.0)
                return True, {"charging": False}, ""
            dev.disabled = False
            return True, {"enabled": True}, ""
        if c == "distribution_box":
            on = name == "restore_power"
            self._set(dev, t, power_on=on, **({} if on else {"current_a": 0.0}))
            if not on:
                for pile in self._site_piles(dev):
                    self._stop_ports(pile, t)
            return True, {"power_on": on}, ""
        if c == "parking_gate":
            is_open = name == "open_gate"
            self._set(dev, t, gate_open=is_open)
            return True, {"gate_open": is_open}, ""
        if c == "smart_light":
            level = int(args["level_pct"])
            dev.state["level_set"] = level
            dev.overrides["level"] = (t + 12 * 3600, level)  # until the schedule takes over again
            self._set(dev, t, level_pct=level, on=level > 0, power_w=round(1.2 * level, 1))
            return True, {"level_pct": level}, ""
        if c == "service_terminal":
            return True, {"shown": True}, ""
        return True, {}, ""

    # --- running --------------------------------------------------------------------------

    def pump(self, start: float, end: float, *, tick_s: float = 1.0, send: bool = True) -> int:
        """Step from ``start`` to ``end`` (simulated epoch seconds) in ticks and send each tick's
        messages; no waiting. Returns the number of messages."""
        total = 0
        t = start
        while True:
            msgs = self.step(t)
            total += len(msgs)
            if send and msgs:
                self.send(msgs)
            if t >= end:
                return total
            t = min(end, t + tick_s)

    def open(self) -> None:
        """Prepare the transport: tokens for http and mqtt, the command subscription."""
        if self.transport != "inproc" and not self.tokens:
            from shequ.sim.devices import issue_tokens

            if self.tenant_id is None:
                raise ValueError("tokens need the tenant's devices from the database")
            self.tokens = issue_tokens(self.tenant_id)
        if self.transport == "inproc":
            from shequ.core.iot.downlink import local_downlink

            local_downlink().subscribe(self.downlink)
        elif self.transport == "http":
            import httpx

            self._http = httpx.Client(base_url=self.url or "", timeout=30.0)
        else:
            import os

            from shequ.core.iot.mqtt import MqttClient

            self._mqtt = MqttClient(self.url or "", f"shequ-sim-{os.getpid()}")
            self._mqtt.connect()
            self._mqtt_cmd = MqttClient(self.url or "", f"shequ-sim-cmd-{os.getpid()}")
            self._mqtt_cmd.connect()
            self._mqtt_cmd.subscribe([f"shequ/{self.tenant_code}/+/command"], qos=1)

    def close(self) -> None:
        if self.transport == "inproc":
            from shequ.core.iot.downlink import local_downlink

            local_downlink().unsubscribe(self.downlink)
        elif self.transport == "http" and hasattr(self, "_http"):
            self._http.close()
        elif self.transport == "mqtt" and hasattr(self, "_mqtt"):
            self._mqtt.close()
            self._mqtt_cmd.close()

    def send(self, msgs: Sequence[Message]) -> None:
        if self.transport == "inproc":
            self._send_inproc(msgs)
        elif self.transport == "http":
            self._send_http(msgs)
        else:
            self._send_mqtt(msgs)
        self.sent += len(msgs)

    def _send_inproc(self, msgs: Sequence[Message], batch: int = 500) -> None:
        from shequ.core.iot.pipeline import Inbound, default_pipeline
        from shequ.db import get_engine

        pipeline = default_pipeline(self.engine or get_engine())
        for i in range(0, len(msgs), batch):
            pipeline.process([Inbound(payload, kind, self.tenant_code, code, transport="inproc")
                              for code, kind, payload in msgs[i:i + batch]])

    def _send_http(self, msgs: Sequence[Message]) -> None:
        by_device: dict[str, list[dict[str, Any]]] = {}
        for code, kind, payload in msgs:
            by_device.setdefault(code, []).append({"kind": kind, **json.loads(payload)})
        for code, messages in by_device.items():
            token = self.tokens.get(code)
            if token is None:
                continue
            self._http.post("/api/v1/ingest", json={"messages": messages},
                            headers={"Authorization": f"Bearer {token}"})

    def _send_mqtt(self, msgs: Sequence[Message]) -> None:
        client = self._mqtt
        for code, kind, payload in msgs:
            token = self.tokens.get(code)
            if token is None:
                continue
            with_token = payload[:-1] + b',"tk":' + json.dumps(token).encode() + b"}"
            client.publish(f"shequ/{self.tenant_code}/{code}/{kind}", with_token, qos=1, flush=False)
        client.flush()
        client.wait_acked(timeout=30)

    def _poll_commands(self) -> None:
        if self.transport != "mqtt":
            return
        got = self._mqtt_cmd.poll(0.0)
        for m in got:
            parts = m.topic.split("/")
            if len(parts) == 4 and parts[3] == "command":
                self.downlink(parts[1], parts[2], m.payload)
        self._mqtt_cmd.ack(m.packet_id for m in got if m.packet_id)

    def sim_start(self, duration_s: float | None, now: float | None = None) -> float:
        """Where simulated time starts: now, or, faster than real time, in the past so that it
        catches up with the clock (messages are never stamped in the future)."""
        from shequ.config import get_settings

        now = time.time() if now is None else now
        if self.speed <= 1:
            return now
        limit = max(0.0, get_settings().ingest_max_age_s - 3600)
        back = (duration_s * (self.speed - 1)) if duration_s is not None else limit
        return now - min(back, limit)

    def run(self, duration_s: float | None = None, stop_event: threading.Event | None = None,
            *, tick_s: float = 1.0, on_tick: Callable[[float, int], None] | None = None) -> int:
        """Step in (scaled) real time and send until ``duration_s`` of real time has passed or
        ``stop_event`` is set. Returns the number of messages sent."""
        stop = stop_event or threading.Event()
        self.open()
        try:
            started = time.monotonic()
            start = self.sim_start(duration_s)
            while not stop.is_set():
                elapsed = time.monotonic() - started
                sim_t = min(start + elapsed * self.speed, time.time())
                self._poll_commands()
                msgs = self.step(sim_t)
                if msgs:
                    self.send(msgs)
                if on_tick:
                    on_tick(sim_t, len(msgs))
                if duration_s is not None and elapsed >= duration_s:
                    break
                stop.wait(tick_s)
        finally:
            self.close()
        return self.sent


def parse_injections(specs: Iterable[str]) -> list[tuple[str, str | None]]:
    """``kind[@device]`` → (kind, device code or None)."""
    out = []
    for spec in specs:
        kind, _, device = spec.partition("@")
        if kind not in ANOMALIES:
            raise ValueError(f"unknown anomaly {kind!r}: {', '.join(ANOMALIES)}")
        out.append((kind, device or None))
    return out


def simulate_command(*, tenant_code: str, transport: str = "inproc", url: str | None = None,
                     speed: float = 1.0, duration_s: float | None = None, inject: Sequence[str] = (),
                     seed: int = 1, echo: Callable[[str], None] = print) -> dict[str, int]:
    """`shequ simulate`: run the tenant's devices until the duration is over or Ctrl-C."""
    injections = parse_injections(inject)
    sim = Simulator(tenant_code, transport=transport, url=url, speed=speed, seed=seed)
    for kind, device in injections:
        sim.inject(kind, device)
    echo(f"模拟 {len(sim.devices)} 台设备 simulating {len(sim.devices)} devices of {tenant_code} "
         f"via {transport}, speed ×{speed:g}")
    last = [time.monotonic()]

    def tick(sim_t: float, n: int) -> None:
        if time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            when = dt.datetime.fromtimestamp(sim_t, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
            echo(f"{when}  已发送 sent {sim.sent}")

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a run without a duration
        sim.run(duration_s, tick_s=1.0, on_tick=tick)
    for note in sim.truth:
        echo(f"异常 anomaly {note['kind']} @ {note['device']}")
    return {"devices": len(sim.devices), "sent": sim.sent, "anomalies": len(sim.truth)}
