"""标准地址 standard addresses: structured parts and the display string, and parsing back."""

from __future__ import annotations

import re
from typing import Any

ORDER = ("road", "lane", "number", "unit", "room")
PATTERN = re.compile(
    r"^(?:上海市)?(?:[^区]{1,5}区)?(?:[^街]{1,8}街道)?"
    r"(?P<road>[\u4e00-\u9fa5]{1,12}?(?:路|街|道|大道|公路|巷))"
    r"(?:(?P<lane>\d+)弄)?"
    r"(?:(?P<number>\d+(?:-\d+)?)号)?"
    r"(?:(?P<unit>\d+)单元)?"
    r"(?:(?P<room>[A-Za-z]?\d+)室)?$"
)


def format_address(parts: dict[str, Any]) -> str:
    """鹤庆路258弄12号2单元301室 — road, lane, number, unit, room, each only when present."""
    out = parts.get("road", "")
    if parts.get("lane"):
        out += f"{parts['lane']}弄"
    if parts.get("number"):
        out += f"{parts['number']}号"
    if parts.get("unit"):
        out += f"{parts['unit']}单元"
    if parts.get("room"):
        out += f"{parts['room']}室"
    return out


def full_address(parts: dict[str, Any]) -> str:
    prefix = "".join(parts.get(k, "") for k in ("city", "district", "subdistrict"))
    return prefix + format_address(parts)


def normalise_address(text: str) -> str:
    """Fold the common ways people write the same address into the display form."""
    t = re.sub(r"\s+", "", text or "")
    t = t.translate(str.maketrans("０１２３４５６７８９－", "0123456789-"))
    t = t.replace("幢", "号").replace("栋", "号").replace("号楼", "号")
    m = PATTERN.match(t)
    if not m:
        return t
    parts = {k: v for k, v in m.groupdict().items() if v}
    return format_address(parts)


def parse_address(text: str) -> dict[str, str] | None:
    m = PATTERN.match(normalise_address(text))
    return {k: v for k, v in m.groupdict().items() if v} if m else None
