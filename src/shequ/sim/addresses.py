"""Shanghai standard addresses for the synthetic subdistrict: road › 弄 › 号 › 单元 › 室.

Door numbers follow the road: they grow along it (west to east, south to north), odd on the
north or west side and even on the other, about one number every four metres; a compound
takes its lane (弄) number from where its gate meets the road, and shops and enterprises take
their 号 from the same sequence, so no two places on a road share a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shequ.core.places.address import format_address
from shequ.sim.geo import Cut

METRES_PER_NUMBER = 4.0


@dataclass
class Road:
    """A named road of the subdistrict and the numbers already given out on it."""

    name: str
    cut: Cut
    main: bool
    used: set[int] = field(default_factory=set)

    def along(self, x: float, y: float) -> float:
        return (y if self.cut.vertical else x) - self.cut.start

    def side_is_odd(self, x: float, y: float) -> bool:
        """North side (horizontal roads) and west side (vertical roads) carry odd numbers."""
        return x < self.cut.at if self.cut.vertical else y > self.cut.at

    def number_at(self, x: float, y: float) -> int:
        """The free door number nearest to the point's position along the road, on its side."""
        base = max(1, int(self.along(x, y) / METRES_PER_NUMBER) + 1)
        odd = self.side_is_odd(x, y)
        if (base % 2 == 1) != odd:
            base += 1
        for step in range(0, 100_000):
            for candidate in (base + 2 * step, base - 2 * step):
                if candidate >= 1 and candidate not in self.used:
                    self.used.add(candidate)
                    return candidate
        raise RuntimeError(f"no free number on {self.name}")


def parts(road: str, lane: int | None = None, number: int | str | None = None,
          unit: int | None = None, room: int | None = None) -> dict[str, Any]:
    """Structured address parts as the place model stores them (strings)."""
    out: dict[str, Any] = {"road": road}
    if lane is not None:
        out["lane"] = str(lane)
    if number is not None:
        out["number"] = str(number)
    if unit is not None:
        out["unit"] = str(unit)
    if room is not None:
        out["room"] = str(room)
    return out


def text(address: dict[str, Any]) -> str:
    """The display form, e.g. 鹤庆路258弄12号2单元301室."""
    return format_address(address)
