"""S11 on simulated homes: a behaviour model of elders living alone, falls injected, and the demo's inactivity anomaly.

``python -m shequ.scenarios.s11_care.sim --homes 200 --weeks 8 --seed 1`` runs the same judgement the
sweep runs (``judge.judge`` / ``judge.cleared`` on each home's signs, in memory) over weeks of
simulated life and prints the detection rate of falls, the median time to alarm and the false
alarms per home per 50 days.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shequ.scenarios.s11_care import judge as j
from shequ.scenarios.s11_care.rules import DEFAULT_THRESHOLDS, INACTIVITY_TYPES

MIN_MS = 60_000
H = j.HOUR_MS
DAY = 24 * H
PIR_EVERY = 15 * MIN_MS  # the PIR's heartbeat (device_types.toml)
WATER_EVERY = 5 * MIN_MS  # the water meter's heartbeat
JUDGE_EVERY = 15 * MIN_MS  # the sweep runs every 15 s; hours-long thresholds need no finer step here
START_MS = 1_767_196_800_000  # 2026-01-01 00:00 Asia/Shanghai
AWAKE, NAP, ASLEEP, OUT, FALLEN = "awake", "nap", "asleep", "out", "fallen"


@dataclass
class Life:
    """One home's simulated weeks: what the person did, and what the sensors reported."""

    segments: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, state)
    doors: list[int] = field(default_factory=list)
    water: list[tuple[int, float]] = field(default_factory=list)  # (ms, m³ drawn)
    night_moves: list[int] = field(default_factory=list)
    pauses: list[tuple[int, int]] = field(default_factory=list)  # reported absences (plan paused)
    absences: list[tuple[int, int]] = field(default_factory=list)  # every night away, reported or not


def _clip(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def live(rng: random.Random, days: int, *, housebound: bool) -> Life:
    """A person's days: sleep, meals and water, outings, naps (some long), trips away (reported or not)."""
    life = Life()
    away_until = -1
    d = 0
    while d < days:
        base = START_MS + d * DAY
        wake = base + int(_clip(rng.gauss(6.5, 0.6), 5, 9) * H)
        bed = base + int(_clip(rng.gauss(21.4, 0.7), 19.5, 23.5) * H)
        if d <= away_until:
            d += 1
            continue
        day: list[tuple[int, int, str]] = []
        cursor = wake
        plans: list[tuple[int, int, str]] = []
        if rng.random() < (0.12 if housebound else 0.8):
            s = base + int(rng.uniform(8, 10.5) * H)
            plans.append((s, s + int(rng.uniform(1, 3) * H), OUT))
            if rng.random() < 0.4:
                s = base + int(rng.uniform(14.5, 16) * H)
                plans.append((s, s + int(rng.uniform(0.5, 2.5) * H), OUT))
        if rng.random() < 0.6:
            s = base + int(rng.uniform(12.4, 13.5) * H)
            long_nap = rng.random() < 0.15
            plans.append((s, s + int((rng.uniform(2, 3.5) if long_nap else rng.uniform(0.4, 1.8)) * H), NAP))
        trip = d > 0 and rng.random() < 1 / 30
        if trip:
            nights = rng.choice((1, 1, 2, 2, 3, 5))
            leave = base + int(rng.uniform(8, 11) * H)
            back = base + nights * DAY + int(rng.uniform(14, 18) * H)
            plans = [p for p in plans if p[1] < leave] + [(leave, back, OUT)]
            life.absences.append((leave, back))
            if rng.random() < 0.6:
                life.pauses.append((leave - int(rng.uniform(0, 12) * H), back))
            away_until = d + nights
        plans.sort()
        for s, e, state in plans:
            if s < cursor:
                continue
            day.append((cursor, s, AWAKE))
            day.append((s, e, state))
            if state == OUT:
                life.doors += [s, e]
            cursor = e
        if cursor < bed:
            day.append((cursor, bed, AWAKE))
            next_wake = base + DAY + int(_clip(rng.gauss(6.5, 0.6), 5, 9) * H)
            day.append((bed, next_wake, ASLEEP))
            for _ in range(rng.choice((0, 1, 1, 2))):
                life.night_moves.append(rng.randint(bed + H, next_wake - 30 * MIN_MS))
        life.segments += day
        for s, e, state in day:  # water: washing, meals, flushes while awake at home
            if state != AWAKE:
                continue
            t = s + rng.randint(5, 40) * MIN_MS
            while t < e:
                life.water.append((t, rng.uniform(0.004, 0.012)))
                t += int(rng.uniform(1.5, 3.5) * H)
        life.water.append((wake + rng.randint(5, 30) * MIN_MS, rng.uniform(0.01, 0.025)))
        for _ in range(rng.choice((0, 1, 1, 2))):  # rubbish out, a delivery: the door, nobody leaves
            awake = [seg for seg in day if seg[2] == AWAKE and seg[1] - seg[0] > 40 * MIN_MS]
            if awake:
                s, e, _ = rng.choice(awake)
                life.doors.append(rng.randint(s + 10 * MIN_MS, e - 10 * MIN_MS))
        d += 1
    life.water += [(t, rng.uniform(0.004, 0.008)) for t in life.night_moves]
    life.segments.sort()
    life.doors.sort()
    life.water.sort()
    return life


def fall(life: Life, at: int) -> None:
    """From ``at`` the person lies still: no motion, no water, no door."""
    life.segments = [(s, min(e, at), st) for s, e, st in life.segments if s < at] + [(at, at + 365 * DAY, FALLEN)]
    life.doors = [t for t in life.doors if t < at]
    life.water = [w for w in life.water if w[0] < at]
    life.night_moves = [t for t in life.night_moves if t < at]


def _state_share(segments: list[tuple[int, int, str]], starts: list[int], a: int, b: int) -> dict[str, float]:
    out: dict[str, float] = {}
    i = max(0, bisect.bisect_right(starts, a) - 1)
    while i < len(segments) and segments[i][0] < b:
        s, e, st = segments[i]
        overlap = min(b, e) - max(a, s)
        if overlap > 0:
            out[st] = out.get(st, 0.0) + overlap / (b - a)
        i += 1
    return out


def readings(life: Life, rng: random.Random, end: int) -> Iterator[tuple[int, str, dict[str, Any], str | None]]:
    """The home's device messages in time order: (ms, device type, values, event)."""
    starts = [s[0] for s in life.segments]
    out: list[tuple[int, str, dict[str, Any], str | None]] = []
    moves = set(t // PIR_EVERY for t in life.night_moves)
    t = START_MS + PIR_EVERY
    while t <= end:
        share = _state_share(life.segments, starts, t - PIR_EVERY, t)
        p = 0.92 * share.get(AWAKE, 0.0) + 0.03 * (share.get(NAP, 0.0) + share.get(ASLEEP, 0.0))
        motion = rng.random() < p or (t - 1) // PIR_EVERY in moves
        out.append((t, "pir", {"motion": motion, "motion_count": rng.randint(1, 9) if motion else 0}, None))
        t += PIR_EVERY
    out += [(d, "door_magnet", {}, "door_opened") for d in life.doors if d <= end]
    total, k = rng.uniform(20, 900), 0
    t = START_MS + WATER_EVERY
    while t <= end:
        used = 0.0
        while k < len(life.water) and life.water[k][0] <= t:
            used += life.water[k][1]
            k += 1
        total += used
        out.append((t, "water_meter", {"flow_lpm": round(rng.uniform(3, 9), 1) if used else 0.0,
                                       "total_m3": round(total, 4)}, None))
        t += WATER_EVERY
    out.sort(key=lambda x: x[0])
    yield from out


def watch(life: Life, rng: random.Random, th: j.Thresholds, end: int) -> list[tuple[int, str]]:
    """Run the sweep's judgement over the home's messages; the alarms raised (ms, type)."""
    signs = j.Signs(since_ms=START_MS)
    active: dict[str, int] = {}
    raised: list[tuple[int, str]] = []
    msgs = list(readings(life, rng, end))
    pauses = sorted(life.pauses)
    m = 0
    t = START_MS + JUDGE_EVERY
    paused_at: int | None = None
    while t <= end:
        while m < len(msgs) and msgs[m][0] <= t:
            ts, kind, values, event = msgs[m]
            j.observe(signs, type_code=kind, ts_ms=ts, values=values if event is None else None, event=event)
            m += 1
        pause = next((p for p in pauses if p[0] <= t < p[1]), None)
        if pause is not None:
            if paused_at is None:  # a reported absence: the plan pauses, its alarms clear
                paused_at = t
                active.clear()
            t += JUDGE_EVERY
            continue
        if paused_at is not None:  # back: watched again from now
            paused_at = None
            signs.reset = {**signs.reset, **{k: t for k in INACTIVITY_TYPES}}
        for kind, at in list(active.items()):
            if j.cleared(kind, signs, at):
                del active[kind]
                signs.reset = {**signs.reset, kind: t}
        for kind in j.judge(th, signs, t):
            if kind not in active:
                active[kind] = t
                raised.append((t, kind))
        t += JUDGE_EVERY
    return raised


@dataclass
class Result:
    homes: int
    days: int
    falls: int
    caught: int
    minutes: list[float]
    false_alarms: int
    by_type: dict[str, int]

    @property
    def detection_rate(self) -> float:
        return self.caught / self.falls if self.falls else 0.0

    @property
    def median_minutes(self) -> float:
        return statistics.median(self.minutes) if self.minutes else float("nan")

    @property
    def false_per_home_50d(self) -> float:
        return self.false_alarms / (self.homes * self.days) * 50

    def lines(self) -> list[str]:
        return [f"homes {self.homes}, {self.days} days each ({self.homes * self.days} home-days)",
                f"falls injected {self.falls}, caught {self.caught} within 72 h: "
                f"detection rate {self.detection_rate:.1%}",
                f"time to alarm: median {self.median_minutes / 60:.1f} h, "
                f"90th percentile {_pct(self.minutes, 0.9) / 60:.1f} h, max {max(self.minutes or [0]) / 60:.1f} h",
                f"false alarms {self.false_alarms} ({', '.join(f'{k} {v}' for k, v in sorted(self.by_type.items()))}): "
                f"{self.false_per_home_50d:.2f} per home per 50 days"]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(*, homes: int, weeks: int, seed: int, thresholds: dict[str, Any] | None = None) -> Result:
    """Normal life in every home (false alarms) and one fall per home on another run (detection)."""
    th = j.Thresholds(**{**DEFAULT_THRESHOLDS, **(thresholds or {})})
    days = weeks * 7
    end = START_MS + days * DAY
    false_alarms, by_type = 0, {k: 0 for k in INACTIVITY_TYPES}
    caught, minutes = 0, []
    for h in range(homes):
        housebound = h % 10 == 0
        life = live(random.Random(f"s11/{seed}/{h}/life"), days, housebound=housebound)
        for _, kind in watch(life, random.Random(f"s11/{seed}/{h}/sensors"), th, end):
            false_alarms += 1
            by_type[kind] += 1
        # the same person falls one day, at a moment they are up and about at home
        rng = random.Random(f"s11/{seed}/{h}/fall")
        awake = [s for s in life.segments if s[2] == AWAKE and s[1] - s[0] > 30 * MIN_MS
                 and START_MS + 3 * DAY < s[0] < end - 4 * DAY]
        seg = rng.choice(awake)
        at = rng.randint(seg[0] + 5 * MIN_MS, seg[1] - 5 * MIN_MS)
        fell = live(random.Random(f"s11/{seed}/{h}/life"), days, housebound=housebound)
        fall(fell, at)
        fell.pauses = [p for p in fell.pauses if p[0] < at]
        alarms = [t for t, _ in watch(fell, random.Random(f"s11/{seed}/{h}/sensors"), th, min(end, at + 72 * H))
                  if t >= at]
        if alarms:
            caught += 1
            minutes.append((alarms[0] - at) / MIN_MS)
    return Result(homes, days, homes, caught, minutes, false_alarms, by_type)


# --- the demo's anomaly ---------------------------------------------------------------------


def inject_care_inactivity(sim: Any, t: float, device_code: str | None, params: dict[str, Any]) -> None:
    """A care home goes quiet: replay its last quiet hours with their real timestamps, then keep it quiet.

    The demo cannot wait hours, so the home's recent past is sent now (the pipeline takes messages
    up to seven days old): the person was last seen moving so many daytime hours ago that the
    plan's no-motion threshold is already passed; its PIR, door and water meter stay quiet after.
    A home whose PIR has reported no motion since the simulator started is chosen, so the replay
    does not contradict what was already sent.
    """
    def quiet(d: Any) -> bool:
        return d.type_code == "pir" and d.attrs.get("care") and not d.state.get("motion")

    dev = sim._pick("care_inactivity", device_code, quiet) or sim._pick(
        "care_inactivity", device_code, lambda d: d.type_code == "pir" and d.attrs.get("care"))
    if dev is None:
        return
    hours = float(params.get("hours", DEFAULT_THRESHOLDS["no_motion_hours"])) + 0.5
    now_ms = int(t * 1000)
    last_seen = j.back_day_hours(now_ms, hours, j.Thresholds())
    room = sim._room_devices(dev) or [dev]
    until = t + float(params.get("duration_s", 3 * 3600))
    for d in room:
        if d.type_code == "pir":
            d.overrides["motion"] = (until, False)
            sim._telemetry(d, last_seen / 1000, {"motion": True, "motion_count": 4})
            k = last_seen + PIR_EVERY
            while k < now_ms:
                sim._telemetry(d, k / 1000, {"motion": False, "motion_count": 0})
                k += PIR_EVERY
        elif d.type_code == "door_magnet":
            d.overrides["quiet"] = (until, True)
            sim._event(d, (last_seen - 2 * H) / 1000, "door_opened", {"duration_s": 8})
        elif d.type_code == "water_meter":
            d.overrides["flow"] = (until, 0.0)
    sim._note("care_inactivity", dev, t, until=until, room=dev.attrs.get("room"), last_seen=last_seen / 1000)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--homes", type=int, default=200)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-motion-hours", type=float, default=DEFAULT_THRESHOLDS["no_motion_hours"])
    args = parser.parse_args(argv)
    result = measure(homes=args.homes, weeks=args.weeks, seed=args.seed,
                     thresholds={"no_motion_hours": args.no_motion_hours})
    print(f"S11 living-alone care, seed {args.seed}, no-motion threshold {args.no_motion_hours:g} daytime h")
    for line in result.lines():
        print("  " + line)


if __name__ == "__main__":
    main()
