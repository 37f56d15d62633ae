"""Simulated throws: noisy, late-detected trajectories to measure the locator, and a demo anomaly."""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from shequ.scenarios.s04_throwing.locate import Calibration, G, LocateError, Point, locate


@dataclass(frozen=True)
class Throw:
    """One simulated throw: what really happened and what the camera reported."""

    calibration: dict[str, Any]
    floor: int
    column: int
    kind: str  # drop | up | out
    release_x: float
    release_z: float
    vx: float
    vz: float
    late_s: float
    noise_m: float
    fps: float
    points: list[dict[str, float]]


def random_calibration(rng: random.Random) -> dict[str, Any]:
    """A facade as the demo world and real towers have them: 11–33 floors, 1–3 units, 2–4 rooms a floor."""
    floors = rng.randint(11, 33)
    floor_h = round(rng.uniform(2.8, 3.2), 2)
    ground = round(rng.choice([floor_h, floor_h, rng.uniform(3.3, 4.5)]), 2)
    units = rng.randint(1, 3)
    rpf = rng.randint(2, 4)
    col_w = rng.uniform(3.5, 6.0)
    columns = []
    for u in range(1, units + 1):
        for n in range(1, rpf + 1):
            i = (u - 1) * rpf + n - 1
            columns.append({"x0": round(i * col_w, 2), "x1": round((i + 1) * col_w, 2),
                            "unit": u if units > 1 else None, "room": n})
    width = round(units * rpf * col_w, 2)
    camera = {"x_m": round(width * rng.uniform(0.3, 0.7), 1), "distance_m": round(rng.uniform(15.0, 50.0), 1),
              "height_m": round(rng.uniform(1.0, 8.0), 1)}
    return {"facade_width_m": width, "ground_floor_m": ground, "floor_height_m": floor_h,
            "floors": floors, "columns": columns, "camera": camera}


def trajectory(rng: random.Random, cal: dict[str, Any], *, floor: int | None = None,
               column: int | None = None, kind: str | None = None) -> Throw:
    """A throw from a hand at a sill or rail (0.8–1.6 m above the floor slab) inside a window's
    column: dropped, tossed up (0.5–3 m/s) or flung out/sideways (up to 1.5 m/s along the
    facade); first seen 0.1–1.0 s after release; 15–30 frames a second with noise σ 0.05–0.15 m
    on x and z, a few frames lost, until it hits the ground or leaves the view below."""
    c = Calibration.from_attrs(cal)
    floor = floor if floor is not None else rng.randint(3, c.floors)
    column = column if column is not None else rng.randrange(len(c.columns))
    kind = kind or rng.choice(["drop", "up", "out"])
    slab = c.floor_bounds(floor)[0] if floor > 1 else 0.0
    height = min(c.floor_height_m if floor > 1 else c.ground_floor_m, c.floor_height_m)
    z_r = slab + rng.uniform(0.8, min(1.6, height - 0.4))
    col = c.columns[column]
    x_r = rng.uniform(col.x0 + 0.4, col.x1 - 0.4)
    vx, vz, vy = 0.0, 0.0, 0.0  # vy: away from the facade, towards the camera
    if kind == "up":
        vz, vx, vy = rng.uniform(0.5, 3.0), rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.5)
    elif kind == "out":
        vz, vx, vy = rng.uniform(-1.0, 1.0), rng.choice([-1, 1]) * rng.uniform(0.3, 1.5), rng.uniform(0.5, 2.0)
    # the camera stands in front of the facade and sees the object projected on the calibrated
    # (window) plane: an object in front of that plane (a hand out of the window, a throw
    # outward) looks higher and further out from the camera's axis than it is
    y_r = rng.uniform(0.0, 0.5)
    cam = c.camera
    # first seen 0.1–1.0 s late, but while it is still well above the ground (a camera that
    # misses most of a fall from a low floor sees no throw at all)
    fall_s = (vz + (vz * vz + 2 * G * z_r) ** 0.5) / G
    late = rng.uniform(0.1, min(1.0, 0.5 * fall_s))
    noise = rng.uniform(0.05, 0.15)
    fps = rng.choice([15.0, 25.0, 30.0])
    bottom = rng.uniform(0.0, 3.0)  # the view may end above the ground
    points = []
    k = 0
    while True:
        t = late + k / fps
        z = z_r + vz * t - 0.5 * G * t * t
        if z < bottom:
            break
        if rng.random() > 0.05:
            px, pz = x_r + vx * t, z
            if cam is not None:  # without a camera position: a camera far away, no perspective
                scale = cam.distance_m / (cam.distance_m - min(cam.distance_m / 2, y_r + vy * t))
                px, pz = cam.x_m + (px - cam.x_m) * scale, cam.height_m + (pz - cam.height_m) * scale
            points.append({"t": round(k / fps, 3), "x": round(px + rng.gauss(0, noise), 2),
                           "z": round(pz + rng.gauss(0, noise), 2)})
        k += 1
    return Throw(cal, floor, column, kind, x_r, z_r, vx, vz, late, noise, fps, points)


def throws(n: int, seed: int) -> Iterator[Throw]:
    """``n`` throws over a handful of calibrations (a new facade every 50 throws), reproducible by seed."""
    rng = random.Random(f"s04/{seed}")
    cal: dict[str, Any] = {}
    for i in range(n):
        if i % 50 == 0:
            cal = random_calibration(rng)
        yield trajectory(rng, cal)


@dataclass
class Score:
    n: int = 0
    rejected: int = 0
    floor_exact: int = 0
    floor_within_1: int = 0
    column_exact: int = 0
    worst_floor: int = 0
    worst_column: int = 0
    confidence_sum: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)  # rejections by reason

    def line(self) -> str:
        n = max(1, self.n)
        why = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items()))
        return (f"throws {self.n}, refused {self.rejected}{f' ({why})' if why else ''}; "
                f"floor exact {100 * self.floor_exact / n:.2f} %, within ±1 {100 * self.floor_within_1 / n:.2f} %, "
                f"column exact {100 * self.column_exact / n:.2f} %; of those located: worst floor error "
                f"{self.worst_floor}, worst column error {self.worst_column}, "
                f"mean confidence {self.confidence_sum / max(1, n - self.rejected):.2f}")


def measure(n: int, seed: int, *, use_camera: bool = True) -> Score:
    """Locate ``n`` simulated throws and count how often floor and column are right
    (``use_camera=False``: the locator is not told where the camera stands)."""
    score = Score()
    for throw in throws(n, seed):
        score.n += 1
        cal = Calibration.from_attrs(throw.calibration)
        if not use_camera:
            cal = replace(cal, camera=None)
        try:
            est = locate([Point(p["t"], p["x"], p["z"]) for p in throw.points], cal)
        except LocateError as exc:
            score.rejected += 1
            score.reasons[exc.reason] = score.reasons.get(exc.reason, 0) + 1
            continue
        err_f, err_c = abs(est.floor - throw.floor), abs(est.column - throw.column)
        score.floor_exact += err_f == 0
        score.floor_within_1 += err_f <= 1
        score.column_exact += err_c == 0
        score.worst_floor = max(score.worst_floor, err_f)
        score.worst_column = max(score.worst_column, err_c)
        score.confidence_sum += est.confidence
    return score


def inject_object_throw(sim: Any, t: float, device_code: str | None, params: dict[str, Any]) -> None:
    """Demo anomaly ``object_throw``: a realistic throw (tossed up or out, seen late) at a facade camera."""
    dev = sim._pick("object_throw", device_code, lambda d: d.type_code == "facade_camera" and "columns" in d.attrs)
    if dev is None:
        return
    rng = random.Random(f"sim/{sim.seed}/throw/{dev.code}/{sim.injected}")
    cal = Calibration.from_attrs(dev.attrs)
    floor = int(params.get("floor") or rng.randint(3, cal.floors))
    column = int(params["column"]) % len(cal.columns) if "column" in params else None
    throw = trajectory(rng, dev.attrs, floor=floor, column=column, kind=params.get("kind"))
    sim._event(dev, t, "object_fall", {"points": throw.points, "video": f"sim://video/{dev.code}/{int(t)}.mp4"})
    col = cal.columns[throw.column]
    sim._note("object_throw", dev, t, floor=floor, unit=col.unit, room=floor * 100 + col.room, kind=throw.kind)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure the S04 locator on simulated throws.")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print("with the camera's position:   ", measure(args.n, args.seed).line())
    print("without (a flat projection):  ", measure(args.n, args.seed, use_camera=False).line())


if __name__ == "__main__":
    main()
