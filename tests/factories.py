"""Small builders of a place tree for tests; they go through the services, like users do."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from sqlalchemy.orm import Session

from shequ.core.places.models import Place
from shequ.core.places.service import create_place


def square(lon: float, lat: float, d: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d],
                                                [lon, lat + d], [lon, lat]]]}


@dataclass
class Tree:
    grid: Place
    committee: Place
    compound: Place
    building: Place
    unit: Place
    floor: Place
    room: Place
    room2: Place


def place_tree(session: Session, *, lon: float = 121.40, lat: float = 31.00, tag: str = "A",
               committee_name: str = "北街居委会", lane: str = "258") -> Tree:
    """grid › committee › compound › building 12号 › unit 1 › floor 3 › rooms 301 and 302."""
    grid = create_place(session=session, kind="grid", code=f"G{tag}", name=f"第{tag}网格",
                        geometry=square(lon, lat, 0.02))
    committee = create_place(session=session, kind="committee", code=f"C{tag}", name=committee_name,
                             parent=grid, geometry=square(lon, lat, 0.01))
    compound = create_place(session=session, kind="compound", code=f"X{tag}", name="鹤庆新村",
                            parent=committee, geometry=square(lon + 0.001, lat + 0.001, 0.005),
                            address={"road": "鹤庆路", "lane": lane})
    building = create_place(session=session, kind="building", code=f"B{tag}", name="12号",
                            parent=compound, floors=6, geometry=square(lon + 0.002, lat + 0.002, 0.0005),
                            address={"road": "鹤庆路", "lane": lane, "number": "12"})
    unit = create_place(session=session, kind="unit", code=f"U{tag}", name="1单元", parent=building)
    floor = create_place(session=session, kind="floor", code=f"F{tag}", name="3层", parent=unit, floor_no=3)
    rooms = [
        create_place(session=session, kind="room", code=f"R{tag}{n}", name=f"{n}室", parent=floor,
                     floor_no=3, address={"road": "鹤庆路", "lane": lane, "number": "12", "room": str(n)})
        for n in (301, 302)
    ]
    return Tree(grid, committee, compound, building, unit, floor, rooms[0], rooms[1])


def png(width: int = 3, height: int = 2) -> bytes:
    """A real PNG image (RGB, red pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
