"""Inactivity judgement of one home from its signs of life: pure functions shared by the sweep and the simulator."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from shequ.scenarios.s11_care.rules import DEFAULT_THRESHOLDS, LOW_WATER, NO_DOOR, NO_MOTION

HOUR_MS = 3_600_000
LOCAL_OFFSET_MS = 8 * HOUR_MS  # Asia/Shanghai, no daylight saving
# A PIR reports motion for the slot before its report (15 min): motion reported up to this long
# after a door opening is still the person on their way out.
OUT_GRACE_MS = 20 * 60_000
SAMPLE_EVERY_MS = 10 * 60_000  # water meter readings kept for the window: one per 10 minutes
KEEP_MS = 60 * HOUR_MS
WATER_STEP_M3 = 0.0005  # a rise of the meter's total at least this large is water used


class SignsLike(Protocol):
    last_motion_ms: int | None
    last_door_ms: int | None
    last_water_ms: int | None
    since_ms: int
    water: list[list[float]]
    reset: dict[str, int]


@dataclass
class Signs:
    """The signs of life of one home (in memory; ``models.Signs`` is the stored twin of it)."""

    since_ms: int
    last_motion_ms: int | None = None
    last_door_ms: int | None = None
    last_water_ms: int | None = None
    water: list[list[float]] = field(default_factory=list)  # [[ts_ms, total_m3], …], oldest first
    reset: dict[str, int] = field(default_factory=dict)  # alarm type → ms it was last cleared


@dataclass(frozen=True)
class Thresholds:
    no_motion_hours: float = DEFAULT_THRESHOLDS["no_motion_hours"]
    day_start: str = DEFAULT_THRESHOLDS["day_start"]
    day_end: str = DEFAULT_THRESHOLDS["day_end"]
    no_door_hours: float = DEFAULT_THRESHOLDS["no_door_hours"]
    away_hours: float = DEFAULT_THRESHOLDS["away_hours"]
    water_hours: float = DEFAULT_THRESHOLDS["water_hours"]
    water_min_m3: float = DEFAULT_THRESHOLDS["water_min_m3"]

    @classmethod
    def of(cls, obj: Any) -> Thresholds:
        """The thresholds of a plan (any object with the same attribute names)."""
        return cls(**{k: getattr(obj, k) for k in DEFAULT_THRESHOLDS})


def hhmm(text: str) -> float:
    """``"07:30"`` → 7.5; ValueError for anything else."""
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"{text!r} is not HH:MM")
    value = int(hours) + int(minutes) / 60
    if not 0 <= value <= 24 or int(minutes) >= 60:
        raise ValueError(f"{text!r} is not a time of day")
    return value


def day_hours(start_ms: int, end_ms: int, th: Thresholds) -> float:
    """Hours between two instants that fall inside the day window (local time)."""
    if end_ms <= start_ms:
        return 0.0
    lo, hi = hhmm(th.day_start) * HOUR_MS, hhmm(th.day_end) * HOUR_MS
    a, b = start_ms + LOCAL_OFFSET_MS, end_ms + LOCAL_OFFSET_MS
    day = a // (24 * HOUR_MS)
    total = 0.0
    while day * 24 * HOUR_MS < b:
        w0, w1 = day * 24 * HOUR_MS + lo, day * 24 * HOUR_MS + hi
        total += max(0, min(b, w1) - max(a, w0))
        day += 1
    return total / HOUR_MS


def back_day_hours(end_ms: int, hours: float, th: Thresholds) -> int:
    """The instant before ``end_ms`` from which ``hours`` of day window lead up to it."""
    lo, hi = hhmm(th.day_start) * HOUR_MS, hhmm(th.day_end) * HOUR_MS
    need = hours * HOUR_MS
    b = end_ms + LOCAL_OFFSET_MS
    day = b // (24 * HOUR_MS)
    for _ in range(400):
        w0, w1 = day * 24 * HOUR_MS + lo, day * 24 * HOUR_MS + hi
        span = max(0, min(b, w1) - w0)
        if span >= need:
            return int(min(b, w1) - need - LOCAL_OFFSET_MS)
        need -= span
        day -= 1
    return int(end_ms - 400 * 24 * HOUR_MS)


# --- observing ------------------------------------------------------------------------------


def observe(signs: SignsLike, *, type_code: str, ts_ms: int, values: dict[str, Any] | None = None,
            event: str | None = None) -> bool:
    """Take one reading or event of a home's device into its signs; whether it was a sign of life."""
    values = values or {}
    alive = False
    if type_code == "pir" and (values.get("motion") is True or (values.get("motion_count") or 0) > 0):
        signs.last_motion_ms = max(signs.last_motion_ms or 0, ts_ms)
        alive = True
    elif type_code == "door_magnet" and (event == "door_opened" or values.get("open") is True):
        signs.last_door_ms = max(signs.last_door_ms or 0, ts_ms)
        alive = True
    elif type_code == "water_meter":
        total = values.get("total_m3")
        if isinstance(total, int | float) and not isinstance(total, bool):
            alive = _water_sample(signs, ts_ms, float(total))
        flow = values.get("flow_lpm")
        if isinstance(flow, int | float) and not isinstance(flow, bool) and flow > 0:
            signs.last_water_ms = max(signs.last_water_ms or 0, ts_ms)
            alive = True
    return alive


def _water_sample(signs: SignsLike, ts_ms: int, total: float) -> bool:
    """Keep the latest reading of each 10-minute bucket; whether the total rose (water used)."""
    samples = list(signs.water)
    if samples and ts_ms < samples[-1][0]:
        return False  # a late reading: the samples already go past it
    used = bool(samples) and total - samples[-1][1] >= WATER_STEP_M3
    if used:
        signs.last_water_ms = max(signs.last_water_ms or 0, ts_ms)
    if samples and samples[-1][0] // SAMPLE_EVERY_MS == ts_ms // SAMPLE_EVERY_MS:
        samples[-1] = [ts_ms, total]
    else:
        samples.append([ts_ms, total])
    cut = ts_ms - KEEP_MS
    while len(samples) > 2 and samples[1][0] <= cut:
        samples.pop(0)
    signs.water = samples
    return used


# --- judging --------------------------------------------------------------------------------


def presumed_out(signs: SignsLike) -> bool:
    """The door opened and nothing inside moved or drew water after it: the person went out."""
    door = signs.last_door_ms
    if door is None:
        return False
    inside = max(signs.last_motion_ms or 0, signs.last_water_ms or 0)
    return inside <= door + OUT_GRACE_MS


def water_used(signs: SignsLike, start_ms: int, end_ms: int) -> float | None:
    """m³ drawn between two instants; None when the readings do not reach back to ``start_ms``."""
    samples = signs.water
    i = bisect.bisect_right(samples, float(start_ms), key=lambda s: s[0])
    k = bisect.bisect_right(samples, float(end_ms), key=lambda s: s[0])
    if i == 0 or k == 0:
        return None
    return samples[k - 1][1] - samples[i - 1][1]


def judge(th: Thresholds, signs: SignsLike, now_ms: int) -> dict[str, str]:
    """The inactivity alarms that hold now, each with its reason (Chinese, then English)."""
    out: dict[str, str] = {}
    away = presumed_out(signs)

    def since(kind: str, *marks: int | None) -> int:
        return max(signs.since_ms, signs.reset.get(kind, 0), *(m or 0 for m in marks))

    if not away:
        start = since(NO_MOTION, signs.last_motion_ms)
        quiet = day_hours(start, now_ms, th)
        if quiet >= th.no_motion_hours:
            out[NO_MOTION] = f"白天 {quiet:.1f} 小时无人活动 (no motion for {quiet:.1f} daytime hours)"
        window = back_day_hours(now_ms, th.water_hours, th)
        if window >= since(LOW_WATER, signs.last_door_ms):
            used = water_used(signs, window, now_ms)
            if used is not None and used < th.water_min_m3:
                out[LOW_WATER] = (f"{th.water_hours:g} 小时（白天）用水 {used:.3f} m³ "
                                  f"(water {used:.3f} m³ in {th.water_hours:g} daytime hours)")
    door_since = since(NO_DOOR, signs.last_door_ms)
    hours = (now_ms - door_since) / HOUR_MS
    if away and th.away_hours and hours >= th.away_hours:
        out[NO_DOOR] = f"外出 {hours:.0f} 小时未归 (out for {hours:.0f} h, not back)"
    elif not away and th.no_door_hours and hours >= th.no_door_hours \
            and max(signs.last_motion_ms or 0, signs.last_water_ms or 0) <= door_since:
        out[NO_DOOR] = f"{hours:.0f} 小时未开门且无其他活动 (door shut {hours:.0f} h, no other sign)"
    return out


def cleared(kind: str, signs: SignsLike, raised_ms: int) -> bool:
    """Whether a sign of life since an alarm was raised ends it."""
    if kind == NO_MOTION:
        return (signs.last_motion_ms or 0) > raised_ms
    if kind == LOW_WATER:
        return (signs.last_water_ms or 0) > raised_ms
    if kind == NO_DOOR:
        return max(signs.last_door_ms or 0, signs.last_motion_ms or 0, signs.last_water_ms or 0) > raised_ms
    return False


def local_day(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp((ms + LOCAL_OFFSET_MS) / 1000, dt.UTC).date()
