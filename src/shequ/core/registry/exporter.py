"""XLSX export of any filtered list (台账): the same rows a list page shows, masked unless the
caller may see personal data, with an audit row for every export."""

from __future__ import annotations

import io
import re
import unicodedata
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session

from shequ.core.iam.crypto import mask_id_number, mask_phone
from shequ.core.registry.kinds import Column, Kind
from shequ.core.registry.query import ListParams, iter_records, present_rows

MIN_WIDTH = 6
MAX_WIDTH = 60
SAMPLE_ROWS = 500


def _display_width(text: str) -> int:
    """Columns a text takes in Excel: a Chinese character counts twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def sheet_title(kind: Kind, lang: str = "zh-CN") -> str:
    """人口台账 / People ledger, cut to Excel's 31 characters without forbidden ones."""
    title = f"{kind.zh}台账" if lang.startswith("zh") else f"{kind.en} ledger"
    return re.sub(r"[\[\]:*?/\\]", " ", title)[:31]


def safe_query(q: str | None) -> str | None:
    """The search text as the audit log may keep it: ID numbers and phones masked."""
    if not q:
        return q
    q = re.sub(r"\d{17}[\dXx]|\d{15}", lambda m: mask_id_number(m.group()), q)
    return re.sub(r"(?<!\d)1\d{10}(?!\d)", lambda m: mask_phone(m.group()), q)


def _typed(col: Column, text: str, obj: Any) -> Any:
    """Numbers stay numbers in the sheet (so Excel can sum them), at full precision (the list
    shows coordinates shortened); everything else is the text a list shows."""
    if text == "" or col.type not in ("int", "float"):
        return text
    raw = getattr(obj, col.key, None)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return raw
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if col.type == "int" and number.is_integer() else number


def export_xlsx(*, session: Session, kind: Kind, params: ListParams, lang: str = "zh-CN",
                actor: str, unmasked: bool = False) -> tuple[bytes, int]:
    """An XLSX of every record of a filtered list, and how many rows it holds.

    Headers in the chosen language, enum labels, times in Asia/Shanghai, personal data masked
    unless ``unmasked``; a bold, frozen header row. Writes an audit row (action ``export``).
    """
    columns = list(kind.columns)
    headers = [col.header(lang) for col in columns]
    chunks = iter_records(session=session, kind=kind, params=params)
    first = next(chunks, [])
    first_rows = present_rows(session=session, kind=kind, items=first, lang=lang, unmasked=unmasked)

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet_title(kind, lang))
    for i, (col, header) in enumerate(zip(columns, headers, strict=True), start=1):
        sample = [_display_width(r.get(col.key, "")) for r in first_rows[:SAMPLE_ROWS]]
        width = max([_display_width(header) + 2, *sample]) + 2
        ws.column_dimensions[get_column_letter(i)].width = max(MIN_WIDTH, min(MAX_WIDTH, width))
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="EEF3FA")
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(ws, value=header)
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(vertical="center")
        header_cells.append(cell)
    ws.append(header_cells)

    count = 0

    def write(items: list[Any], rows: list[dict[str, str]]) -> None:
        nonlocal count
        for obj, row in zip(items, rows, strict=True):
            ws.append([_typed(col, row.get(col.key, ""), obj) for col in columns])
        count += len(rows)

    write(first, first_rows)
    for batch in chunks:
        write(batch, present_rows(session=session, kind=kind, items=batch, lang=lang, unmasked=unmasked))

    buf = io.BytesIO()
    wb.save(buf)

    from shequ.core.iam.service import audit

    audit(session=session, actor=actor, action="export", target=kind.key,
          purpose="导出未脱敏台账" if unmasked else "",
          detail={"kind": kind.key, "rows": count, "lang": lang, "unmasked": unmasked,
                  "filters": {"place_id": params.place_id, "tag": params.tag, "q": safe_query(params.q),
                              "filters": dict(params.filters), "sort": params.sort}})
    return buf.getvalue(), count
