"""Benchmark of the person import: a synthetic XLSX of N rows imported into a scratch tenant,
first as new records, then again as updates (the dedupe path); the tenant is deleted after."""

from __future__ import annotations

import datetime as dt
import io
import random
import time
import uuid
from typing import Any

from openpyxl import Workbook
from sqlalchemy import delete

from shequ.core.places.models import Tenant
from shequ.core.places.service import create_place, create_tenant
from shequ.core.registry.importer import import_bytes
from shequ.core.registry.kinds import PERSON
from shequ.core.registry.validators import make_id_number
from shequ.db import get_engine, session_scope

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"
RELATIONS = ["户主", "配偶", "子女", "父母"]


def person_sheet(rows: int, seed: int = 1, rooms: int = 2000) -> bytes:
    """An XLSX of ``rows`` people in households of up to 4 on 鹤庆路 (cells as Excel writes them)."""
    rng = random.Random(seed)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("人口")
    headers = [c.zh for c in PERSON.columns if c.importable]
    ws.append(headers)
    used: set[str] = set()
    for n in range(rows):
        while True:
            birth = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(0, 33000))
            number = make_id_number("310112", birth, rng.randrange(0, 1000))
            if number not in used:
                used.add(number)
                break
        household = n // 4
        room = household % rooms
        values = {
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
            "id_number": number,
            "sex": "",
            "birth_date": birth,  # a date cell, as Excel stores it
            "phone": float(f"13{rng.randrange(10**8, 10**9)}"),  # a phone typed as a number
            "ethnicity": "汉族",
            "residence_type": "户籍人口",
            "household_number": f"H{household:07d}",
            "relation": RELATIONS[n % 4],
            "address": f"鹤庆路{100 + room // 100}弄{room % 100 // 10 + 1}号{room % 10 + 1}01室",
            "status": "在册",
        }
        ws.append([values.get(c.key, "") for c in PERSON.columns if c.importable])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _rooms(session: Any, rooms: int) -> None:
    """A grid, a committee and the rooms the sheet's addresses name."""
    grid = create_place(session=session, kind="grid", code="BG", name="基准网格")
    committee = create_place(session=session, kind="committee", code="BC", name="基准居委会", parent=grid)
    lanes: dict[int, Any] = {}
    buildings: dict[tuple[int, int], Any] = {}
    for room in range(rooms):
        lane, number, flat = 100 + room // 100, room % 100 // 10 + 1, room % 10 + 1
        road = {"road": "鹤庆路", "lane": str(lane)}
        if lane not in lanes:
            lanes[lane] = create_place(session=session, kind="compound", code=f"BX{lane}", name=f"{lane}弄",
                                       parent=committee, address=road)
        if (lane, number) not in buildings:
            buildings[(lane, number)] = create_place(
                session=session, kind="building", code=f"BB{lane}-{number}", name=f"{number}号",
                parent=lanes[lane], address={**road, "number": str(number)})
        floor = create_place(session=session, kind="floor", code=f"BF{room}", name=f"{flat}层",
                             parent=buildings[(lane, number)], floor_no=flat)
        create_place(session=session, kind="room", code=f"BR{room}", name=f"{flat}01室", parent=floor,
                     address={**road, "number": str(number), "room": f"{flat}01"})


def bench_import(*, rows: int = 20_000, console: Any = None, seed: int = 1) -> dict[str, float]:
    """Time the import of a ``rows``-row person XLSX (create, then update) and print the figures."""
    say = console.print if console is not None else print
    rooms = max(1, min(2000, rows // 10))
    started = time.perf_counter()
    data = person_sheet(rows, seed=seed, rooms=rooms)
    made = time.perf_counter() - started
    code = f"B{uuid.uuid4().hex[:8]}"
    with session_scope(actor="bench") as session:
        tenant_id = create_tenant(session=session, code=code, name="导入基准", city="上海市").id
    figures: dict[str, float] = {"rows": rows, "sheet_seconds": round(made, 2), "bytes": len(data)}
    try:
        with session_scope(tenant_id=tenant_id, actor="bench") as session:
            _rooms(session, rooms)
        for label in ("create", "update"):
            start = time.perf_counter()
            with session_scope(tenant_id=tenant_id, actor="bench") as session:
                result = import_bytes(session=session, kind="person", filename="bench.xlsx", data=data,
                                      source="基准" if label == "create" else "基准复核", actor="bench")
            seconds = time.perf_counter() - start
            figures[f"{label}_seconds"] = round(seconds, 2)
            figures[f"{label}_rows_per_s"] = round(rows / seconds)
            say(f"import {label}: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s); "
                f"created {result.created:,}, updated {result.updated:,}, unplaced {result.unplaced:,}")
    finally:
        with get_engine().begin() as conn:
            conn.execute(delete(Tenant).where(Tenant.id == tenant_id))
    say(f"sheet of {rows:,} rows ({len(data) / 1e6:.1f} MB) generated in {made:.1f} s; "
        f"database {get_engine().url.get_backend_name()}")
    return figures
