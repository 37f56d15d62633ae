"""S09's simulator anomaly: a single loud burst at one noise monitor (a shout, a horn, a slammed shutter)."""

from __future__ import annotations

from typing import Any


def inject_noise_burst(sim: Any, t: float, device_code: str | None, params: dict[str, Any]) -> None:
    """One reading of ``laeq_db`` (default 92 dB(A)) now; at night it exceeds every limit by more than 15 dB."""
    dev = sim._pick("noise_burst", device_code, lambda d: d.type_code == "noise_monitor")
    if dev is None:
        return
    laeq = float(params.get("laeq_db", 92.0))
    dev.overrides["laeq_db"] = (t + 1.0, laeq)
    sim._push(t, dev, "reading")
    sim._note("noise_burst", dev, t, laeq_db=laeq)
