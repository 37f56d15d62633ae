"""Layout of the synthetic subdistrict in metres (x east, y north from the centre), converted
to WGS84 GeoJSON at the end.

The subdistrict rectangle is cut into responsibility grids, each grid into committee areas
(recursive bisection); every cut becomes a road, so roads run between areas and never
through a compound. Compounds are packed inside their committee away from its edges, and
buildings in rows inside their compound (south-facing slabs with sunlight spacing), so no
two footprints ever overlap.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

M_PER_DEG_LAT = 110_574.0


@dataclass(frozen=True)
class Frame:
    """A local metric frame centred on (lon0, lat0); accurate to centimetres over a few km."""

    lon0: float
    lat0: float

    @property
    def m_per_deg_lon(self) -> float:
        return 111_320.0 * math.cos(math.radians(self.lat0))

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        return (round(self.lon0 + x / self.m_per_deg_lon, 7), round(self.lat0 + y / M_PER_DEG_LAT, 7))

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return ((lon - self.lon0) * self.m_per_deg_lon, (lat - self.lat0) * M_PER_DEG_LAT)

    def polygon(self, rect: Rect) -> dict[str, Any]:
        ring = [self.lonlat(x, y) for x, y in
                ((rect.x0, rect.y0), (rect.x1, rect.y0), (rect.x1, rect.y1), (rect.x0, rect.y1))]
        ring.append(ring[0])
        return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}

    def line(self, points: list[tuple[float, float]]) -> dict[str, Any]:
        return {"type": "LineString", "coordinates": [list(self.lonlat(x, y)) for x, y in points]}

    def point(self, x: float, y: float) -> dict[str, Any]:
        return {"type": "Point", "coordinates": list(self.lonlat(x, y))}


@dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    def shrink(self, d: float) -> Rect:
        return Rect(self.x0 + d, self.y0 + d, self.x1 - d, self.y1 - d)

    def grow(self, d: float) -> Rect:
        return self.shrink(-d)

    def moved(self, dx: float, dy: float) -> Rect:
        return Rect(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    def covers(self, other: Rect) -> bool:
        return (self.x0 <= other.x0 and self.y0 <= other.y0
                and other.x1 <= self.x1 and other.y1 <= self.y1)

    def intersects(self, other: Rect) -> bool:
        return not (other.x0 >= self.x1 or other.x1 <= self.x0
                    or other.y0 >= self.y1 or other.y1 <= self.y0)

    def split_x(self, x: float) -> tuple[Rect, Rect]:
        return Rect(self.x0, self.y0, x, self.y1), Rect(x, self.y0, self.x1, self.y1)

    def split_y(self, y: float) -> tuple[Rect, Rect]:
        return Rect(self.x0, self.y0, self.x1, y), Rect(self.x0, y, self.x1, self.y1)


@dataclass(frozen=True)
class Cut:
    """A straight cut between two areas; ``level`` 0 between grids, 1 inside a grid."""

    vertical: bool
    at: float  # x for a vertical cut, y for a horizontal one
    start: float
    end: float
    level: int

    @property
    def length(self) -> float:
        return self.end - self.start

    def points(self) -> list[tuple[float, float]]:
        if self.vertical:
            return [(self.at, self.start), (self.at, self.end)]
        return [(self.start, self.at), (self.end, self.at)]


def bisect(rect: Rect, n: int, rng: random.Random, level: int, cuts: list[Cut],
           min_side: float = 120.0) -> list[Rect]:
    """Split ``rect`` into ``n`` rectangles of roughly proportional area, recording the cuts.

    The longer side is cut, at the share of the pieces on each side with a little jitter,
    snapped to 10 m; the pieces come out in a spatially coherent order (neighbours adjacent).
    """
    if n <= 1:
        return [rect]
    n1 = n // 2
    n2 = n - n1
    if rng.random() < 0.5:
        n1, n2 = n2, n1
    frac = n1 / n + rng.uniform(-0.04, 0.04)
    if rect.w >= rect.h:
        at = float(round((rect.x0 + rect.w * frac) / 10) * 10)
        at = min(max(at, rect.x0 + min_side), rect.x1 - min_side)
        a, b = rect.split_x(at)
        cuts.append(Cut(True, at, rect.y0, rect.y1, level))
    else:
        at = float(round((rect.y0 + rect.h * frac) / 10) * 10)
        at = min(max(at, rect.y0 + min_side), rect.y1 - min_side)
        a, b = rect.split_y(at)
        cuts.append(Cut(False, at, rect.x0, rect.x1, level))
    return bisect(a, n1, rng, level, cuts, min_side) + bisect(b, n2, rng, level, cuts, min_side)


def merge_cuts(cuts: list[Cut]) -> list[Cut]:
    """Join collinear cuts that touch end to end into one road."""
    by_line: dict[tuple[bool, float], list[Cut]] = {}
    for c in cuts:
        by_line.setdefault((c.vertical, c.at), []).append(c)
    out: list[Cut] = []
    for (vertical, at), group in sorted(by_line.items()):
        group.sort(key=lambda c: c.start)
        cur = group[0]
        for c in group[1:]:
            if c.start <= cur.end + 1e-6:
                cur = Cut(vertical, at, cur.start, max(cur.end, c.end), min(cur.level, c.level))
            else:
                out.append(cur)
                cur = c
        out.append(cur)
    return out


def distance_to_cut(cut: Cut, x: float, y: float) -> float:
    along, across = (y, x) if cut.vertical else (x, y)
    d_across = abs(across - cut.at)
    if along < cut.start:
        return math.hypot(d_across, cut.start - along)
    if along > cut.end:
        return math.hypot(d_across, along - cut.end)
    return d_across


# --- buildings in a compound, compounds in a committee area --------------------------------


@dataclass(frozen=True)
class Footprint:
    w: float  # east–west
    d: float  # north–south
    height: float


def pack_rows(items: list[Footprint], max_width: float, rng: random.Random,
              gap_x: tuple[float, float] = (8.0, 16.0)) -> tuple[list[Rect], float, float]:
    """Place footprints in east–west rows, south to north, each row spaced by the sunlight
    distance of the row in front of it. Returns the rectangles (origin at 0, 0), the width
    and the depth used."""
    target = math.sqrt(sum((f.w + 12) * (f.d + max(18.0, 0.9 * f.height)) for f in items)) * 1.15
    width = max(min(max_width, target), max(f.w for f in items))
    rects: list[Rect] = []
    x = y = row_depth = row_shadow = 0.0
    for f in items:
        if x > 0 and x + f.w > width:
            y += row_depth + min(45.0, max(18.0, 0.9 * row_shadow)) + rng.uniform(0, 6)
            x = row_depth = row_shadow = 0.0
        rects.append(Rect(x, y, x + f.w, y + f.d))
        x += f.w + rng.uniform(*gap_x)
        row_depth = max(row_depth, f.d)
        row_shadow = max(row_shadow, f.height)
    used_w = max(r.x1 for r in rects)
    used_d = max(r.y1 for r in rects)
    return rects, used_w, used_d


def place_blocks(sizes: list[tuple[float, float]], area: Rect, rng: random.Random,
                 gap: float = 25.0) -> list[Rect] | None:
    """Shelf-pack blocks of the given (w, h) into ``area`` with at least ``gap`` between
    them; spare room is spread at random between blocks and shelves so the result does not
    look machine-made. None when they do not fit."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i][1])
    shelves: list[list[int]] = []
    widths: list[float] = []
    for i in order:
        w, _ = sizes[i]
        for s, shelf in enumerate(shelves):
            if widths[s] + gap + w <= area.w:
                shelf.append(i)
                widths[s] += gap + w
                break
        else:
            if w > area.w:
                return None
            shelves.append([i])
            widths.append(w)
    heights = [max(sizes[i][1] for i in shelf) for shelf in shelves]
    spare_y = area.h - sum(heights) - gap * (len(shelves) - 1)
    if spare_y < 0:
        return None
    out: list[Rect | None] = [None] * len(sizes)
    cuts_y = sorted(rng.uniform(0, spare_y) for _ in range(len(shelves)))
    y = area.y0
    prev = 0.0
    for s, shelf in enumerate(shelves):
        y += cuts_y[s] - prev
        prev = cuts_y[s]
        spare_x = area.w - widths[s]
        cuts_x = sorted(rng.uniform(0, spare_x) for _ in range(len(shelf)))
        x = area.x0
        prev_x = 0.0
        rng.shuffle(shelf)
        for k, i in enumerate(shelf):
            x += cuts_x[k] - prev_x
            prev_x = cuts_x[k]
            w, h = sizes[i]
            dy = rng.uniform(0, heights[s] - h)
            out[i] = Rect(x, y + dy, x + w, y + dy + h)
            x += w + gap
        y += heights[s] + gap
    return [r for r in out if r is not None]
