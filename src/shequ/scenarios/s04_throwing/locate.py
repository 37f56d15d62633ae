"""Where a falling object was thrown from: fit its fall, go back to the release, find floor and room."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

G = 9.81  # m/s², known: the fit has no free acceleration
MIN_POINTS = 5  # a third of a second at 15 frames a second
MIN_DESCENT_M = 0.5  # the object must come down at least this much in view
MAX_RMS_M = 0.6  # residuals above this: the points do not follow a free fall
MIN_SIGMA_M = 0.03  # a floor under the measured noise, so that a lucky fit is not over-trusted
RELEASE_MODEL_SD_M = 0.15  # the apex is above the hand by u²/2g: ≤ 0.46 m for u ≤ 3 m/s
COLUMN_MODEL_SD_M = 0.10  # the object's centre vs the window it came out of
FACADE_MARGIN_M = 1.0  # a release this far beyond the facade's sides is still this facade
CANDIDATE_P = 0.15  # rooms at least this likely are listed beside the best one


class LocateError(ValueError):
    """A trajectory or calibration that cannot be located, with a reason code and a message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Point:
    t: float  # seconds since the first detection (any origin)
    x: float  # metres along the facade from its left edge
    z: float  # metres above the ground


@dataclass(frozen=True)
class Column:
    x0: float
    x1: float
    unit: int | None
    room: int  # the room number on floor f is f·100 + room


@dataclass(frozen=True)
class Camera:
    """Where the camera stands, in the facade's frame: x along it, distance in front, height."""

    x_m: float
    distance_m: float
    height_m: float


@dataclass(frozen=True)
class Calibration:
    """One facade as its camera sees it (see ``shequ.sim.devices.facade_calibration``); with the
    camera's position (optional ``camera: {x_m, distance_m, height_m}``) the perspective of an
    object in front of the facade is undone."""

    facade_width_m: float
    ground_floor_m: float
    floor_height_m: float
    floors: int
    columns: tuple[Column, ...]
    camera: Camera | None = None

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Calibration:
        """The calibration kept in a facade camera's ``attrs`` (raises LocateError naming the field)."""
        try:
            width = float(attrs["facade_width_m"])
            floor_h = float(attrs["floor_height_m"])
            ground = float(attrs.get("ground_floor_m", floor_h))
            floors = int(attrs["floors"])
        except KeyError as exc:
            raise LocateError("calibration", f"{exc.args[0]} is missing") from exc
        except (TypeError, ValueError) as exc:
            raise LocateError("calibration", f"a number is not valid: {exc}") from exc
        if width <= 0 or floor_h <= 0 or ground <= 0 or floors < 1:
            raise LocateError("calibration", "facade_width_m, floor_height_m, ground_floor_m, floors must be > 0")
        raw = attrs.get("columns") or [{"x0": 0.0, "x1": width, "unit": None, "room": 1}]
        columns = []
        for n, c in enumerate(raw):
            try:
                col = Column(float(c["x0"]), float(c["x1"]), None if c.get("unit") is None else int(c["unit"]),
                             int(c["room"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise LocateError("calibration", f"columns[{n}] is not {{x0, x1, unit, room}}") from exc
            if col.x1 <= col.x0:
                raise LocateError("calibration", f"columns[{n}]: x1 must be greater than x0")
            columns.append(col)
        columns.sort(key=lambda c: c.x0)
        camera = None
        if attrs.get("camera"):
            cam = attrs["camera"]
            try:
                camera = Camera(float(cam["x_m"]), float(cam["distance_m"]), float(cam["height_m"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise LocateError("calibration", "camera is not {x_m, distance_m, height_m}") from exc
            if camera.distance_m < 5:
                raise LocateError("calibration", "camera.distance_m must be at least 5 m")
        return cls(width, ground, floor_h, floors, tuple(columns), camera)

    @property
    def top_m(self) -> float:
        """The roof: the top of the highest floor."""
        return self.ground_floor_m + (self.floors - 1) * self.floor_height_m

    def floor_bounds(self, floor: int) -> tuple[float, float]:
        """z range of a floor; the lowest open below and the highest open above (thrown from the roof)."""
        if floor <= 1:
            lo, hi = -math.inf, self.ground_floor_m
        else:
            lo = self.ground_floor_m + (floor - 2) * self.floor_height_m
            hi = lo + self.floor_height_m
        return lo, (math.inf if floor >= self.floors else hi)

    def floor_at(self, z: float) -> int:
        if z < self.ground_floor_m:
            return 1
        return min(self.floors, 2 + int((z - self.ground_floor_m) // self.floor_height_m))

    def column_bounds(self, index: int) -> tuple[float, float]:
        """x range of a column, widened to the middle of the gaps; open at the facade's ends."""
        cols = self.columns
        lo = -math.inf if index == 0 else (cols[index - 1].x1 + cols[index].x0) / 2
        hi = math.inf if index == len(cols) - 1 else (cols[index].x1 + cols[index + 1].x0) / 2
        return lo, hi

    def column_at(self, x: float) -> int:
        for i in range(len(self.columns)):
            lo, hi = self.column_bounds(i)
            if lo <= x < hi:
                return i
        return len(self.columns) - 1


@dataclass(frozen=True)
class Room:
    floor: int
    column: int  # index into the calibration's columns
    unit: int | None
    number: int  # floor·100 + room
    probability: float

    def code(self, building_code: str) -> str:
        """The room's place code, as the place tree names it."""
        if self.unit is None:
            return f"{building_code}R{self.number}"
        return f"{building_code}U{self.unit}R{self.number}"


@dataclass(frozen=True)
class Estimate:
    """Where the object was released, and how sure we are."""

    floor: int
    column: int
    unit: int | None
    rooms: tuple[Room, ...]  # the best first, then other rooms at least CANDIDATE_P likely
    release_t: float
    release_x: float
    release_z: float
    confidence: float
    fit: dict[str, Any] = field(default_factory=dict)

    @property
    def room(self) -> Room:
        return self.rooms[0]

    def note(self, building_code: str | None = None) -> str:
        """The timeline line, e.g. "推算 12 层 3 列 1203 室 置信度 0.86"."""
        unit = f"{self.unit} 单元 " if self.unit is not None else ""
        return (f"推算 {self.floor} 层 {self.column + 1} 列 {unit}{self.room.number} 室 "
                f"置信度 {self.confidence:.2f}")


def parse_points(raw: Any) -> list[Point]:
    """A device's ``points`` ([{t, x, z}] in s and m) as points sorted by time (raises LocateError)."""
    if not isinstance(raw, list):
        raise LocateError("points", "is not a list")
    out = []
    for n, p in enumerate(raw):
        if not isinstance(p, Mapping):
            raise LocateError("points", f"points[{n}] is not an object {{t, x, z}}")
        try:
            values = [p[k] for k in ("t", "x", "z")]
        except KeyError as exc:
            raise LocateError("points", f"points[{n}].{exc.args[0]} is missing") from exc
        for k, v in zip(("t", "x", "z"), values, strict=True):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise LocateError("points", f"points[{n}].{k} is not a finite number")
        out.append(Point(float(values[0]), float(values[1]), float(values[2])))
    out.sort(key=lambda q: q.t)
    for a, b in zip(out, out[1:], strict=False):
        if b.t == a.t:
            raise LocateError("points", f"two points at t = {a.t}")
    return out


def _line_fit(ts: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float, float, float]:
    """Least squares y = a + b·t: (a, b, var a, var b, cov ab) per unit noise variance."""
    n = len(ts)
    st, stt = sum(ts), sum(t * t for t in ts)
    sy, sty = sum(ys), sum(t * y for t, y in zip(ts, ys, strict=True))
    det = n * stt - st * st
    a = (stt * sy - st * sty) / det
    b = (n * sty - st * sy) / det
    return a, b, stt / det, n / det, -st / det


def _free_acceleration(ts: Sequence[float], zs: Sequence[float]) -> tuple[float, float]:
    """The downward acceleration of a free quadratic fit and its standard error per unit noise
    (a check that the object falls at all)."""
    n = len(ts)
    s = [sum(t ** k for t in ts) for k in range(5)]
    r = [sum(z * t ** k for t, z in zip(ts, zs, strict=True)) for k in range(3)]
    m = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]]

    def det3(q: list[list[float]]) -> float:
        return (q[0][0] * (q[1][1] * q[2][2] - q[1][2] * q[2][1]) - q[0][1] * (q[1][0] * q[2][2] - q[1][2] * q[2][0])
                + q[0][2] * (q[1][0] * q[2][1] - q[1][1] * q[2][0]))

    d = det3(m)
    if n < 3 or abs(d) < 1e-12:
        return float("nan"), float("inf")
    c = det3([[m[i][0], m[i][1], r[i]] for i in range(3)]) / d
    var_c = (s[0] * s[2] - s[1] * s[1]) / d
    return -2.0 * c, 2.0 * math.sqrt(max(0.0, var_c))


def _solve(a: list[list[float]], b: list[float]) -> list[float] | None:
    """Solve a·x = b (small, symmetric positive) by Gaussian elimination; None when singular."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for i in range(n):
        piv = max(range(i, n), key=lambda r: abs(m[r][i]))
        if abs(m[piv][i]) < 1e-12:
            return None
        m[i], m[piv] = m[piv], m[i]
        for r in range(i + 1, n):
            f = m[r][i] / m[i][i]
            for c in range(i, n + 1):
                m[r][c] -= f * m[i][c]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (m[i][n] - sum(m[i][c] * x[c] for c in range(i + 1, n))) / m[i][i]
    return x


def _inverse(a: list[list[float]]) -> list[list[float]] | None:
    n = len(a)
    cols = [_solve(a, [1.0 if r == c else 0.0 for r in range(n)]) for c in range(n)]
    if any(col is None for col in cols):
        return None
    return [[cols[c][r] for c in range(n)] for r in range(n)]  # type: ignore[index]


# the depth (metres in front of the calibrated plane) is weakly seen: a prior keeps it sane
DEPTH_PRIOR = ((0.3, 0.5), (0.5, 1.5))  # (mean, sd) of the depth at release and of vy


def _perspective_fit(ts: Sequence[float], xs: Sequence[float], zs: Sequence[float], cam: Camera,
                     start: list[float]) -> tuple[list[float], list[list[float]], float, float]:
    """Fit x, depth y and z of a fall seen by a camera in front of the facade (Levenberg–Marquardt).

    θ = (x0, y_r, z0, vx, vy, vz), y_r the depth at the release (the apex, t = vz/g), never
    negative, nor vy (thrown out of a window, not into the wall); the camera projects the object onto the facade plane along its
    ray: scale s = D / (D − y), x' = cx + (x − cx)·s, z' = ch + (z − ch)·s. Returns θ, its
    covariance per unit noise variance, and the rms of the x and z residuals.
    """
    d, cx, ch = cam.distance_m, cam.x_m, cam.height_m
    theta = start[:]
    lam = 1e-3

    def residuals(th: list[float]) -> tuple[list[float], list[list[float]]]:
        res, jac = [], []
        ta = th[5] / G  # the release (apex): depth is counted from there
        for t, xo, zo in zip(ts, xs, zs, strict=True):
            x = th[0] + th[3] * t
            y = min(th[1] + th[4] * (t - ta), d / 2)
            z = th[2] + th[5] * t - 0.5 * G * t * t
            sc = d / (d - y)
            ds = sc * sc / d
            dyx, dyz = (x - cx) * ds, (z - ch) * ds
            res.append(xo - (cx + (x - cx) * sc))
            jac.append([sc, dyx, 0.0, sc * t, dyx * (t - ta), -dyx * th[4] / G])
            res.append(zo - (ch + (z - ch) * sc))
            jac.append([0.0, dyz, sc, 0.0, dyz * (t - ta), sc * t - dyz * th[4] / G])
        return res, jac

    w = 1.0 / 0.1  # prior pseudo-observations weighted against a 0.1 m camera noise
    priors = ((1, DEPTH_PRIOR[0]), (4, DEPTH_PRIOR[1]))

    def cost(th: list[float]) -> float:
        res, _ = residuals(th)
        return sum(r * r for r in res) + sum(((th[i] - m) / sd / w) ** 2 for i, (m, sd) in priors)

    current = cost(theta)
    for _ in range(30):
        res, jac = residuals(theta)
        jtj = [[sum(row[i] * row[j] for row in jac) for j in range(6)] for i in range(6)]
        jtr = [sum(row[i] * r for row, r in zip(jac, res, strict=True)) for i in range(6)]
        for i, (m, sd) in priors:
            jtj[i][i] += 1.0 / (sd * w) ** 2
            jtr[i] -= (theta[i] - m) / (sd * w) ** 2
        step = _solve([[jtj[i][j] * (1 + lam if i == j else 1) for j in range(6)] for i in range(6)], jtr)
        if step is None:
            break
        trial = [a + b for a, b in zip(theta, step, strict=True)]
        trial[1], trial[4] = max(0.0, trial[1]), max(0.0, trial[4])  # out of a window, not into the wall
        trial_cost = cost(trial)
        if trial_cost < current:
            theta, current, lam = trial, trial_cost, lam / 3
            if max(abs(v) for v in step) < 1e-5:
                break
        else:
            lam *= 10
            if lam > 1e6:
                break
    res, jac = residuals(theta)
    jtj = [[sum(row[i] * row[j] for row in jac) for j in range(6)] for i in range(6)]
    for i, (_m, sd) in priors:
        jtj[i][i] += 1.0 / (sd * w) ** 2
    cov = _inverse(jtj) or [[0.0] * 6 for _ in range(6)]
    n = len(ts)
    rms_x = math.sqrt(sum(r * r for r in res[0::2]) / n)
    rms_z = math.sqrt(sum(r * r for r in res[1::2]) / n)
    return theta, cov, rms_x, rms_z


def _mass(mean: float, sd: float, lo: float, hi: float) -> float:
    """Probability that a normal(mean, sd) value lies in [lo, hi)."""
    def cdf(v: float) -> float:
        if v == math.inf:
            return 1.0
        if v == -math.inf:
            return 0.0
        return 0.5 * (1.0 + math.erf((v - mean) / (sd * math.sqrt(2.0))))

    return max(0.0, cdf(hi) - cdf(lo))


def locate(points: Sequence[Point], calibration: Calibration) -> Estimate:
    """Fit the fall, go back to the release and name floor, column and rooms with a confidence.

    Release model: the release is taken at the apex of the fitted parabola (vertical speed 0).
    A dropped object is released at its apex; one thrown upward passes its apex u²/2g above the
    hand (≤ 0.46 m for u ≤ 3 m/s, within the floor a hand at a sill or rail is on); one thrown
    down or out was released below the apex by as little. The apex needs no guess of how late
    the camera first saw the object: it is extrapolated from the fit, bounded by the facade top
    (higher than a floor above the roof is not this building: rejected).
    """
    if len(points) < MIN_POINTS:
        raise LocateError("too_few_points", f"{len(points)} points, at least {MIN_POINTS} are needed")
    t0 = points[0].t
    ts = [p.t - t0 for p in points]
    span = ts[-1]
    if span <= 0:
        raise LocateError("points", "the points span no time")
    # z + g·t²/2 = z0 + vz·t: linear in (z0, vz), gravity known
    zfit = _line_fit(ts, [p.z + 0.5 * G * t * t for p, t in zip(points, ts, strict=True)])
    xfit = _line_fit(ts, [p.x for p in points])
    z0, vz = zfit[0], zfit[1]
    x0, vx = xfit[0], xfit[1]
    n = len(points)
    rz = [p.z - (z0 + vz * t - 0.5 * G * t * t) for p, t in zip(points, ts, strict=True)]
    rx = [p.x - (x0 + vx * t) for p, t in zip(points, ts, strict=True)]
    rms_z = math.sqrt(sum(r * r for r in rz) / n)
    rms_x = math.sqrt(sum(r * r for r in rx) / n)
    acc, acc_se = _free_acceleration(ts, [p.z for p in points])
    t_apex = vz / G
    z_end = z0 + vz * span - 0.5 * G * span * span
    descent = (z0 + vz * max(0.0, t_apex) - 0.5 * G * max(0.0, t_apex) ** 2) - z_end
    if t_apex >= span or descent < MIN_DESCENT_M:
        raise LocateError("not_falling", f"the object does not come down in view (descent {descent:.2f} m)")
    camera = calibration.camera
    y_r = 0.0
    if camera is None:
        # sz: the noise as measured, never below what a camera gives
        sz = max(MIN_SIGMA_M, rms_z * math.sqrt(n / max(1, n - 2)))
        sx = max(MIN_SIGMA_M, rms_x * math.sqrt(n / max(1, n - 2)))
        acc_se *= sz
        # seen flat, an object off the plane looks accelerated by the camera's scale: allow for it
        if rms_z > MAX_RMS_M or (math.isfinite(acc) and abs(acc - G) > max(0.7 * G, 4 * acc_se)):
            raise LocateError("not_falling", f"the points do not follow a free fall (rms {rms_z:.2f} m, "
                                             f"acceleration {acc:.1f} m/s²)")
        z_r = z0 + vz * vz / (2 * G)
        x_r = x0 + vx * t_apex
        var_z0, var_vz, cov_z = zfit[2] * sz * sz, zfit[3] * sz * sz, zfit[4] * sz * sz
        k = vz / G  # d z_r / d vz
        var_zr = var_z0 + k * k * var_vz + 2 * k * cov_z
        var_xr = (xfit[2] + t_apex * t_apex * xfit[3] + 2 * t_apex * xfit[4]) * sx * sx + (vx / G) ** 2 * var_vz
        acc_dev = max(0.0, abs(acc - G) - 3 * acc_se) if math.isfinite(acc) else 0.0
    else:
        # two starts (thrown gently, flung out): the fit may stall in a bad valley from one of them
        fits = [_perspective_fit(ts, [p.x for p in points], [p.z for p in points], camera,
                                 [x0, DEPTH_PRIOR[0][0], z0, vx, vy0, vz]) for vy0 in (DEPTH_PRIOR[1][0], 2.0)]
        theta, cov, rms_x, rms_z = min(fits, key=lambda f: f[2] ** 2 + f[3] ** 2)
        x0, y_r, z0, vx, vy, vz = theta
        sz = max(MIN_SIGMA_M, math.sqrt((rms_x ** 2 + rms_z ** 2) / 2 * 2 * n / max(1, 2 * n - 6)))
        sx = sz
        if rms_z > MAX_RMS_M or not (0.3 * G <= acc <= 3.0 * G):
            raise LocateError("not_falling", f"the points do not follow a free fall (rms {rms_z:.2f} m, "
                                             f"acceleration {acc:.1f} m/s²)")
        t_apex = vz / G
        z_r = z0 + vz * vz / (2 * G)
        x_r = x0 + vx * t_apex
        # gradients of z_r over (z0, vz) and of x_r over (x0, vx, vz)
        gz = {2: 1.0, 5: vz / G}
        gx = {0: 1.0, 3: t_apex, 5: vx / G}
        var_zr = sum(a * b * cov[i][j] for i, a in gz.items() for j, b in gz.items()) * sz * sz
        var_xr = sum(a * b * cov[i][j] for i, a in gx.items() for j, b in gx.items()) * sx * sx
        acc_dev = 0.0  # the apparent acceleration is the camera's doing, explained by the fit
    sd_z = math.sqrt(max(0.0, var_zr) + RELEASE_MODEL_SD_M ** 2)
    sd_x = math.sqrt(max(0.0, var_xr) + COLUMN_MODEL_SD_M ** 2)
    cal = calibration
    if z_r > cal.top_m + cal.floor_height_m + 3 * sd_z:
        raise LocateError("out_of_facade", f"the release ({z_r:.1f} m) is above the facade top ({cal.top_m:.1f} m)")
    if x_r < -FACADE_MARGIN_M - 3 * sd_x or x_r > cal.facade_width_m + FACADE_MARGIN_M + 3 * sd_x:
        raise LocateError("out_of_facade", f"the release (x = {x_r:.1f} m) is beside the facade "
                                           f"(0–{cal.facade_width_m:.1f} m)")
    floor = cal.floor_at(z_r)
    column = cal.column_at(x_r)
    p_floor = {f: _mass(z_r, sd_z, *cal.floor_bounds(f)) for f in range(max(1, floor - 1), min(cal.floors, floor + 1) + 1)}
    p_col = {c: _mass(x_r, sd_x, *cal.column_bounds(c))
             for c in range(max(0, column - 1), min(len(cal.columns) - 1, column + 1) + 1)}
    cells = sorted(((pf * pc, f, c) for f, pf in p_floor.items() for c, pc in p_col.items()),
                   key=lambda x: (-x[0], abs(x[1] - floor) + abs(x[2] - column)))
    best_p, floor, column = cells[0]
    rooms = tuple(
        Room(f, c, cal.columns[c].unit, f * 100 + cal.columns[c].room, round(p, 3))
        for p, f, c in cells if (f, c) == (floor, column) or p >= CANDIDATE_P)
    # confidence: how much of the release's probability falls in the named room, lowered when
    # the fit is poor (noisy beyond what cameras give, or an acceleration far from g)
    quality = math.exp(-max(0.0, rms_z - 0.2) ** 2 / 0.1)
    # an acceleration off g by more than its noise explains: drag, or an object off the plane
    quality *= math.exp(-acc_dev ** 2 / (0.3 * G) ** 2)
    confidence = round(max(0.0, min(1.0, best_p * quality)), 2)
    fit = {
        "points": n, "span_s": round(span, 3), "z0": round(z0, 3), "vz": round(vz, 3), "x0": round(x0, 3),
        "vx": round(vx, 3), "rms_z": round(rms_z, 3), "rms_x": round(rms_x, 3),
        "acceleration": round(acc, 2) if math.isfinite(acc) else None,
        "acceleration_se": round(acc_se, 2) if math.isfinite(acc_se) else None, "late_s": round(max(0.0, -t_apex), 3),
        "release_y": round(y_r, 3), "sd_z": round(sd_z, 3), "sd_x": round(sd_x, 3), "p_floor": round(p_floor[floor], 3),
        "p_column": round(p_col[column], 3), "model": "apex" if camera is None else "apex+perspective",
    }
    return Estimate(floor, column, cal.columns[column].unit, rooms, round(t0 + t_apex, 3), round(x_r, 3),
                    round(z_r, 3), confidence, fit)
