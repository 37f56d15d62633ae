"""The pieces of the generator: committee and compound names, door numbering, packing, IDs."""

from __future__ import annotations

import datetime as dt
import random

from shequ.core.registry.validators import birth_date_from_id, sex_from_id, validate_id_number
from shequ.sim.addresses import Road
from shequ.sim.geo import Cut, Footprint, Rect, pack_rows, place_blocks
from shequ.sim.identity import IdentityMaker
from shequ.sim.names import REAL_COMMITTEES, cn_number, committee_names, compound_names


def test_all_real_committees_and_nine_plausible_ones() -> None:
    names = committee_names(random.Random(1), 44)
    assert len(names) == len(set(names)) == 44
    assert set(REAL_COMMITTEES) <= set(names)
    extra = [n for n in names if n not in REAL_COMMITTEES]
    assert len(extra) == 9
    assert all(n.endswith(("新村", "苑")) or "新村第" in n for n in extra)
    # a generated 第N sits among its namesakes, in order
    for n in extra:
        if "新村第" in n:
            i = names.index(n)
            assert names[i - 1].split("新村")[0] == n.split("新村")[0] or names[i + 1].split("新村")[0] == n.split("新村")[0]


def test_compound_names_follow_the_committee_and_never_repeat() -> None:
    used: set[str] = set()
    first = compound_names(random.Random(1), "红旗新村第五", ["old", "old", "new"], used)
    assert first[0] == "红旗五村" and first[1].startswith("红旗五村") and first[2].startswith("红旗")
    again = compound_names(random.Random(1), "红旗新村第五", ["old"], used)
    assert again[0] not in first
    assert compound_names(random.Random(1), "紫藤新园", ["new"], set()) == ["紫藤新园"]
    assert cn_number(7) == "七" and cn_number(12) == "十二" and cn_number(20) == "二十"


def test_door_numbers_grow_along_the_road_odd_north_even_south() -> None:
    road = Road("江川路", Cut(False, 0.0, -1000.0, 1000.0, 0), True)
    north = road.number_at(-500, 30)
    south = road.number_at(-500, -30)
    east = road.number_at(600, 30)
    assert north % 2 == 1 and south % 2 == 0 and east > north
    assert road.number_at(-500, 30) != north  # the same spot again takes the next free number


def test_packed_footprints_never_overlap() -> None:
    rng = random.Random(3)
    items = [Footprint(rng.choice((24.0, 36.0, 48.0)), 11.0, 17.0) for _ in range(25)]
    rects, w, d = pack_rows(items, 200.0, rng)
    assert all(r.x1 <= w + 1e-9 and r.y1 <= d + 1e-9 for r in rects)
    for i, a in enumerate(rects):
        assert not any(a.intersects(b) for b in rects[i + 1:])
    blocks = place_blocks([(120, 90), (80, 150), (200, 60)], Rect(0, 0, 500, 400), rng)
    assert blocks is not None
    for i, a in enumerate(blocks):
        assert Rect(0, 0, 500, 400).covers(a) and not any(a.intersects(b) for b in blocks[i + 1:])
    assert place_blocks([(600, 10)], Rect(0, 0, 500, 400), rng) is None


def test_id_numbers_are_valid_and_never_repeat() -> None:
    maker = IdentityMaker(random.Random(1))
    birth = dt.date(1956, 2, 29)
    values = [maker.id_number("310112", birth, "F") for _ in range(400)]
    assert len(set(values)) == 400
    for v in values:
        assert validate_id_number(v) == v and birth_date_from_id(v) == birth and sex_from_id(v) == "F"
