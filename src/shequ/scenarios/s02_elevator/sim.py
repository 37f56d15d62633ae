"""S02's simulator anomalies: an e-bike taken up again and again, and a pram the camera mistakes for one."""

from __future__ import annotations

from typing import Any

CAMERA = "elevator_camera"


def inject_ebike_repeat(sim: Any, t: float, device_code: str | None, params: dict[str, Any]) -> None:
    """The same elevator sees an e-bike ``times`` times (default 3), ``gap_s`` apart; each time the
    rider leaves after ``stay_s`` — enough for the repeat rule to open a case."""
    dev = sim._pick("ebike_repeat", device_code, lambda d: d.type_code == CAMERA)
    if dev is None:
        return
    times = int(params.get("times", 3))
    gap = float(params.get("gap_s", 90))
    stay = float(params.get("stay_s", 30))
    for k in range(times):
        at = t + k * gap
        data = {"confidence": float(params.get("confidence", 0.9)),
                "snapshot": f"sim://snapshot/{dev.code}/{int(at)}.jpg"}
        if k == 0:
            sim._event(dev, at, "ebike_detected", data)
        else:
            sim._push(at, dev, "happen", event="ebike_detected", data=data)
        sim._push(at + stay, dev, "happen", event="ebike_left", data={})
    sim._note("ebike_repeat", dev, t, times=times)


def inject_pram_in_elevator(sim: Any, t: float, device_code: str | None, params: dict[str, Any]) -> None:
    """A pram recognised as an e-bike (a false detection for an operator to mark)."""
    dev = sim._pick("pram_in_elevator", device_code, lambda d: d.type_code == CAMERA)
    if dev is None:
        return
    sim._event(dev, t, "ebike_detected", {"confidence": float(params.get("confidence", 0.66)),
                                          "snapshot": f"sim://snapshot/{dev.code}/{int(t)}.jpg"})
    sim._push(t + float(params.get("stay_s", 40)), dev, "happen", event="ebike_left", data={})
    sim._note("pram_in_elevator", dev, t)
