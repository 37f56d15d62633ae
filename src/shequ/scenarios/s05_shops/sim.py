"""S05's simulator anomaly: a night of presence in a shop, shown honestly whatever the hour of the demo."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
STEP_S = 300  # a reading every 5 minutes while someone is there (as shop_night_presence sends)


def _registered_places(sim: Any) -> set[int]:
    """Shops registered as residences (none known without a database)."""
    if sim.engine is None:
        return set()
    from sqlalchemy import select

    from shequ.core.places.models import Tenant
    from shequ.scenarios.s05_shops.models import Shop

    with sim.engine.connect() as conn:
        # Simulator.__init__ resets tenant_id after loading the devices: look it up by code
        tenant_id = sim.tenant_id or conn.execute(select(Tenant.id).where(Tenant.code == sim.tenant_code)).scalar()
        return set(conn.execute(select(Shop.place_id).where(Shop.tenant_id == tenant_id,
                                                             Shop.registered_residence.is_(True))).scalars())


def replay_window(t: float, duration_s: float) -> tuple[float, float]:
    """When the presence happened: the last ``duration_s`` before now when it is night (past
    23:00 or before 05:00), else last night from 02:00 — real times, in the pipeline's 7 days."""
    local = dt.datetime.fromtimestamp(t, SHANGHAI)
    if local.hour >= 23 or local.hour < 5:
        return t - duration_s, t
    start = dt.datetime.combine(local.date(), dt.time(2, 0), SHANGHAI).timestamp()  # early this morning
    return start, start + duration_s


def inject_night_replay(sim: Any, t: float, device_code: str | None, params: dict[str, Any]) -> None:
    """Someone stays in a shop not registered as a residence at night: a PIR reports motion every
    5 minutes for ``duration_s`` (default 45 min). By day the device sends last night's readings
    with their real timestamps (as a sensor flushing its buffer after a reconnect would)."""
    registered = _registered_places(sim)
    dev = sim._pick("s05_night_replay", device_code,
                    lambda d: d.type_code == "pir" and d.place_kind == "shop" and d.place_id not in registered)
    if dev is None:
        return
    duration = float(params.get("duration_s", 2700))
    start, end = replay_window(t, duration)
    k = 0
    while start + STEP_S * k <= end:
        at = start + STEP_S * k
        count = 3 + (k * 7) % 12
        sim._emit(dev, at, "telemetry", {"v": {"motion": True, "motion_count": count,
                                                "battery_pct": dev.state.get("battery_pct", 80)}})
        k += 1
    sim._note("s05_night_replay", dev, t, start=start, end=end, readings=k)
