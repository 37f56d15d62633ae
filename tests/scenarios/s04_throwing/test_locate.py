"""The locator on its own: known throws give their floor and room; nonsense is refused with a reason."""

from __future__ import annotations

import random

import pytest

from shequ.scenarios.s04_throwing.locate import (
    Calibration,
    G,
    LocateError,
    Point,
    locate,
    parse_points,
)
from shequ.scenarios.s04_throwing.sim import measure, random_calibration, trajectory

CAL = {"facade_width_m": 24.0, "ground_floor_m": 3.0, "floor_height_m": 3.0, "floors": 18,
       "columns": [{"x0": 0, "x1": 6, "unit": 1, "room": 1}, {"x0": 6, "x1": 12, "unit": 1, "room": 2},
                   {"x0": 12, "x1": 18, "unit": 2, "room": 1}, {"x0": 18, "x1": 24, "unit": 2, "room": 2}]}


def fall(z0: float, x0: float, *, vz: float = 0.0, vx: float = 0.0, late: float = 0.0, noise: float = 0.0,
         seed: int = 0, fps: float = 25.0) -> list[Point]:
    rng = random.Random(seed)
    out, k = [], 0
    while (z := z0 + vz * (t := late + k / fps) - 0.5 * G * t * t) > 0:
        out.append(Point(k / fps, x0 + vx * t + rng.gauss(0, noise), z + rng.gauss(0, noise)))
        k += 1
    return out


def test_a_drop_from_a_sill_of_floor_12_is_floor_12_in_its_column():
    # floor 12 spans 33–36 m; a sill 1.2 m above its slab; column 3 is unit 2, room 1
    est = locate(fall(34.2, 14.0, noise=0.08, seed=1), Calibration.from_attrs(CAL))
    assert (est.floor, est.column, est.unit, est.room.number) == (12, 2, 2, 1201)
    assert est.room.code("B7") == "B7U2R1201"
    assert est.confidence >= 0.8
    assert est.note().startswith("推算 12 层 3 列 2 单元 1201 室 置信度")


def test_a_throw_upward_seen_a_second_late_is_traced_back_to_its_floor():
    est = locate(fall(22.0, 3.0, vz=2.5, vx=0.4, late=1.0, noise=0.12, seed=2), Calibration.from_attrs(CAL))
    assert est.floor == 8 and est.column == 0  # 22 m is 1 m above floor 8's slab (21 m)
    # the apex (0.25 s after the release, at 2.5 m/s up) is found 0.75 s before the first point
    assert 0.65 < est.fit["late_s"] < 0.85


def test_rooms_near_a_boundary_are_listed_with_the_best_first_and_less_confidence():
    near = locate(fall(34.2, 11.95, noise=0.1, seed=3), Calibration.from_attrs(CAL))
    assert [r.number for r in near.rooms][:2] in ([1202, 1201], [1201, 1202])
    clear = locate(fall(34.2, 9.0, noise=0.1, seed=3), Calibration.from_attrs(CAL))
    assert near.confidence < clear.confidence


@pytest.mark.parametrize(("points", "reason"), [
    (fall(30.0, 5.0)[:4], "too_few_points"),
    ([Point(k * 0.04, 5.0, 20.0 + 0.01 * k) for k in range(30)], "not_falling"),  # a bird, rising
    ([Point(k * 0.04, 5.0, 20.0 - 0.3 * k) for k in range(30)], "not_falling"),  # constant speed: no gravity
    (fall(80.0, 5.0), "out_of_facade"),  # from far above the roof (57 m)
    (fall(20.0, 40.0), "out_of_facade"),  # beside the facade
])
def test_nonsense_is_refused_with_a_reason(points, reason):
    with pytest.raises(LocateError) as exc:
        locate(points, Calibration.from_attrs(CAL))
    assert exc.value.reason == reason


@pytest.mark.parametrize(("raw", "message"), [
    ("12", "is not a list"),
    ([{"t": 0, "x": 1}], "points[0].z is missing"),
    ([{"t": 0, "x": 1, "z": "high"}], "points[0].z is not a finite number"),
    ([1, 2, 3], "points[0] is not an object"),
    ([{"t": 0, "x": 1, "z": 3}, {"t": 0, "x": 1, "z": 2}], "two points at t = 0.0"),
])
def test_bad_point_lists_are_named(raw, message):
    with pytest.raises(LocateError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_points(raw)


def test_a_calibration_without_its_floors_is_refused():
    with pytest.raises(LocateError, match="floors is missing"):
        Calibration.from_attrs({"facade_width_m": 20, "floor_height_m": 3})


def test_the_kernel_simulator_throw_is_located_on_a_demo_calibration():
    # the demo world's calibration has no camera position: the flat model applies
    rng = random.Random(5)
    cal = {**random_calibration(rng)}
    cal.pop("camera")
    for _ in range(20):
        throw = trajectory(rng, cal)
        est = locate([Point(**p) for p in throw.points], Calibration.from_attrs(cal))
        assert abs(est.floor - throw.floor) <= 1


def test_the_target_floor_within_one_always_and_exact_in_most_cases():
    # 300 noisy (σ 0.05–0.15 m), late (0.1–1 s) throws, dropped, tossed up and flung out, over 6 facades
    score = measure(300, 7)
    # a throw is refused only when too little of its fall was seen (a low floor seen late at 15 fps)
    assert set(score.reasons) <= {"too_few_points"} and score.rejected <= 0.01 * score.n
    assert score.worst_floor <= 1 and score.floor_within_1 == score.n - score.rejected
    assert score.floor_exact >= 0.95 * score.n
    assert score.column_exact >= 0.97 * score.n
