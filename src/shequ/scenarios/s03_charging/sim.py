"""S03 simulator anomalies: smoke at a charging site (with its sprinkler), flying-wire charging."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from shequ.scenarios.s03_charging import rules

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
REPORT_S = 300  # a breaker reports every five minutes


def _site_devices(sim: Any, facility_id: int | None) -> list[Any]:
    return [d for d in sim.devices if facility_id is not None and d.facility_id == facility_id]


def inject_charging_smoke(sim: Any, t: float, device_code: str | None, params: dict[str, Any]) -> None:
    """Smoke at a charging site: its sprinkler reports armed, the detector smoke (the kernel's
    smoke anomaly), and a minute later the sprinkler discharges until the smoke is gone."""
    sites = {d.facility_id for d in sim.devices if d.type_code == "charging_pile"}
    dev = sim._pick("charging_smoke", device_code,
                    lambda d: d.type_code == "smoke_detector" and d.facility_id in sites)
    if dev is None:
        return
    duration = float(params.get("duration_s", 600))
    for sp in _site_devices(sim, dev.facility_id):
        if sp.type_code == "sprinkler":
            sim._set(sp, t, armed=True, flowing=False, pressure_mpa=0.35)
            sim._push(t + 60, sp, "set", values={"flowing": True, "pressure_mpa": 0.22})
            sim._push(t + duration, sp, "set", values={"flowing": False, "pressure_mpa": 0.35})
    sim._inject_smoke(t, dev.code, {"duration_s": duration, **params})
    sim._note("charging_smoke", dev, t, facility_id=dev.facility_id)


def _night_start(t: float) -> float:
    """23:00 (Asia/Shanghai) of the night now running, or of last night in the daytime."""
    local = dt.datetime.fromtimestamp(t, SHANGHAI)
    day = local.date() if local.hour >= 23 else local.date() - dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(23, 0), SHANGHAI).timestamp()


def _emit_reading(sim: Any, dev: Any, t: float, data: dict[str, Any]) -> None:
    """One breaker report of the charger's draw (bypassing the breaker's own, muted reports)."""
    until = dev.silent_until
    dev.silent_until = 0.0
    try:
        current = float(data["current"])
        voltage = round(221 + data.get("dv", 0.0), 1)
        sim._telemetry(dev, t, {"current_a": current, "voltage_v": voltage,
                                "power_w": round(current * voltage * 0.95, 1), "on": True})
    finally:
        dev.silent_until = until


def inject_flying_wire(sim: Any, t: float, device_code: str | None, params: dict[str, Any]) -> None:
    """飞线充电: an e-bike charger on a corridor circuit that feeds no charger, drawing a steady
    1–2 A for ``duration_s`` (default 90 min) from 23:00.

    At night it happens now: the breaker's own reports are muted while the charger's draw is
    reported every five minutes. In the daytime the demo cannot wait for the night, so the
    breaker replays last night's reports (23:00 on) at once, stamped with their real times
    (the pipeline takes messages up to seven days old) — the alarm then says what was found
    for last night, as a meter read in the morning would.
    """
    dev = sim._pick("flying_wire", device_code,
                    lambda d: d.type_code == "smart_breaker" and d.attrs.get("feeds_charger") is False)
    if dev is None:
        return
    duration = float(params.get("duration_s", 90 * 60))
    rng = random.Random(f"sim/{sim.seed}/flying_wire/{dev.code}/{sim.injected}")
    draw = round(float(params.get("current_a", rng.uniform(1.2, 2.0))), 2)
    local_h = dt.datetime.fromtimestamp(t, SHANGHAI).hour
    night_now = local_h >= 22 or local_h < 6
    if night_now:
        start = t
        dev.silent_until = max(dev.silent_until, t + duration)
        k = 0
        while k * REPORT_S <= duration:
            data = {"current": round(draw + rng.gauss(0, 0.03), 2), "dv": rng.gauss(0, 1.5)}
            sim.later(t + k * REPORT_S, dev, lambda d, when, data=data: _emit_reading(sim, d, when, data))
            k += 1
    else:
        start = _night_start(t)
        k = 0
        while k * REPORT_S <= duration and start + k * REPORT_S < t:
            _emit_reading(sim, dev, start + k * REPORT_S, {"current": round(draw + rng.gauss(0, 0.03), 2),
                                                            "dv": rng.gauss(0, 1.5)})
            k += 1
    sim._note("flying_wire", dev, t, since=start, current_a=draw, replayed=not night_now,
              min_a=rules.FLYING_WIRE_MIN_A)
