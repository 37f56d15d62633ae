"""Import of CSV and XLSX files (导入) into the thematic database.

Every row is checked first; one bad row rejects the whole file and nothing changes. The
errors name the row as the spreadsheet shows it (the header is row 1), the column as the file
writes it, and the reason in Chinese. Accepted files are written through ``service.Writer``
under the merge policy of ``docs/import.md``, inside a SAVEPOINT.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import posixpath
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from shequ.core.iam.crypto import MASKS
from shequ.core.iam.scope import Scope
from shequ.core.places.models import PARENT_KINDS, PlaceKind
from shequ.core.places.service import locate
from shequ.core.registry.kinds import KINDS, LABELS, Column, Kind, get_kind
from shequ.core.registry.models import ImportBatch, Relation
from shequ.core.registry.schemas import ImportResult, RowError
from shequ.core.registry.service import (
    FLUSH_EVERY,
    MERGE,
    RecordInvalid,
    Writer,
    clean_value,
    find_existing,
    natural_key,
)

__all__ = ["ImportRejected", "ImportResult", "RowError", "import_bytes", "import_file",
           "import_template", "read_table", "columns_markdown", "bench_import"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCIENTIFIC = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")
DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
TIME_RE = re.compile(r"^(\d{1,2})[:：](\d{2})(?:[:：](\d{2})(?:\.\d+)?)?$")
UNITS_RE = re.compile(r"(平方米|㎡|m2|m²|米|人|个|层|辆|间|室)$", re.IGNORECASE)
IDENTIFIER_KEYS = {"code", "number", "household_number", "external_id", "parent_code"}
HEADER_SCAN_ROWS = 10
MAX_ROWS = 500_000


class ImportRejected(Exception):
    """The file was not imported; ``errors`` say where and why. Nothing was changed."""

    def __init__(self, errors: list[RowError], kind: str = "", filename: str = "") -> None:
        self.errors = errors
        self.kind = kind
        self.filename = filename
        head = "；".join(str(e) for e in errors[:5])
        more = f"；另有 {len(errors) - 5} 处" if len(errors) > 5 else ""
        super().__init__(f"导入被拒绝，未做任何修改：{len(errors)} 处错误：{head}{more}")


# --- reading the file ------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise ImportRejected([RowError(row=0, reason="无法识别文件编码（应为 UTF-8 或 GBK/GB18030）")])


def _read_csv(data: bytes) -> list[tuple[int, list[Any]]]:
    text, _ = _decode(data)
    first = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";", "，"), key=first.count)
    if first.count(delimiter) == 0:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [(n, list(cells)) for n, cells in enumerate(reader, start=1)]


def _read_xlsx(data: bytes) -> list[tuple[int, list[Any]]]:
    try:
        return _read_xlsx_fast(data)
    except Exception:  # noqa: BLE001 - anything unusual: let openpyxl read it
        return _read_xlsx_openpyxl(data)


def _read_xlsx_openpyxl(data: bytes) -> list[tuple[int, list[Any]]]:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the user's file problem
        raise ImportRejected([RowError(row=0, reason=f"无法读取 XLSX 文件（{type(exc).__name__}）")]) from None
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # some programs write a wrong dimension; read every row
        rows = []
        for n, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            if any(c is not None for c in cells):
                rows.append((n, list(cells)))
            if n > MAX_ROWS + HEADER_SCAN_ROWS:
                break
        return rows
    finally:
        workbook.close()


_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_INT_RE = re.compile(r"^-?\d+$")


def _attr(el: ElementTree.Element | None, name: str) -> str:
    """A required attribute of a workbook part; a missing one means an unusual file."""
    value = el.get(name) if el is not None else None
    if value is None:
        raise ValueError(f"workbook element without {name!r}")
    return value


def _column_index(ref: str) -> int:
    n = 0
    for ch in ref:
        if ch.isalpha():
            n = n * 26 + (ord(ch.upper()) - 64)
        else:
            break
    return n - 1


def _shared_text(si: Any) -> str:
    """Text of a shared string: plain <t> or rich-text runs <r><t>, without phonetic <rPh>."""
    parts = []
    for child in si:
        if child.tag == f"{_NS}t":
            parts.append(child.text or "")
        elif child.tag == f"{_NS}r":
            parts.extend(t.text or "" for t in child.iter(f"{_NS}t"))
    return "".join(parts)


def _read_xlsx_fast(data: bytes) -> list[tuple[int, list[Any]]]:
    """The first sheet's values, read with expat directly: several times faster than openpyxl's
    read-only mode on large sheets. Same values as openpyxl (numbers, strings, dates by style)."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = set(zf.namelist())
    book = ElementTree.fromstring(zf.read("xl/workbook.xml"))
    props = book.find(f"{_NS}workbookPr")
    epoch = CALENDAR_MAC_1904 if props is not None and props.get("date1904") in ("1", "true") \
        else CALENDAR_WINDOWS_1900
    first = book.find(f"{_NS}sheets/{_NS}sheet")
    rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    sheet_rel = _attr(first, f"{_REL}id")
    target = next(_attr(r, "Target") for r in rels if r.get("Id") == sheet_rel)
    path = target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)
    strings: list[str] = []
    if "xl/sharedStrings.xml" in names:
        for _, el in ElementTree.iterparse(zf.open("xl/sharedStrings.xml")):
            if el.tag == f"{_NS}si":
                strings.append(_shared_text(el))
                el.clear()
    date_styles: set[int] = set()
    if "xl/styles.xml" in names:
        styles = ElementTree.fromstring(zf.read("xl/styles.xml"))
        custom = {int(_attr(f, "numFmtId")): f.get("formatCode") for f in styles.iter(f"{_NS}numFmt")}
        xfs = styles.find(f"{_NS}cellXfs")
        for i, xf in enumerate(xfs if xfs is not None else []):
            fid = int(xf.get("numFmtId", 0))
            fmt = custom.get(fid) or BUILTIN_FORMATS.get(fid)
            if fmt and is_date_format(fmt):
                date_styles.add(i)
    rows: list[tuple[int, list[Any]]] = []
    c_tag, v_tag, row_tag, t_tag = f"{_NS}c", f"{_NS}v", f"{_NS}row", f"{_NS}t"
    for _, el in ElementTree.iterparse(zf.open(path)):
        if el.tag != row_tag:
            continue
        row_ref = el.get("r")
        number = int(row_ref) if row_ref else (rows[-1][0] + 1 if rows else 1)
        cells: list[Any] = []
        for c in el.iter(c_tag):
            ref = c.get("r")
            col = _column_index(ref) if ref else len(cells)
            kind = c.get("t", "n")
            v = c.find(v_tag)
            text = v.text if v is not None else None
            value: Any = None
            if kind == "s" and text is not None:
                value = strings[int(text)]
            elif kind == "inlineStr":
                value = "".join(t.text or "" for t in c.iter(t_tag))
            elif kind in ("str", "e"):
                value = text
            elif kind == "b":
                value = text == "1"
            elif kind == "d" and text:
                value = dt.datetime.fromisoformat(text)
            elif text is not None:
                value = int(text) if _INT_RE.match(text) else float(text)
                if int(c.get("s", 0)) in date_styles:
                    value = from_excel(value, epoch)
            if value is None or value == "":
                continue
            cells.extend([None] * (col + 1 - len(cells)))
            cells[col] = value
        el.clear()
        if cells:
            rows.append((number, cells))
        if len(rows) > MAX_ROWS + HEADER_SCAN_ROWS:
            break
    return rows


def read_table(filename: str, data: bytes) -> list[tuple[int, list[Any]]]:
    """The rows of the first sheet (or the CSV) with their numbers as the user sees them."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".xls" or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportRejected([RowError(row=0, reason="不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV")])
    if suffix in (".xlsx", ".xlsm") or data.startswith(b"PK\x03\x04"):
        return _read_xlsx(data)
    return _read_csv(data)


# --- headers ---------------------------------------------------------------------------------


def _norm_header(text: Any) -> str:
    t = str(text or "").replace("\ufeff", "").strip().rstrip("*＊").strip()
    t = t.translate(str.maketrans("（）：", "():"))
    return re.sub(r"\s+", "", t).lower()


def _header_names(kind: Kind) -> dict[str, Column]:
    names: dict[str, Column] = {}
    for col in kind.columns:
        for name in (col.zh, col.en, col.key, *col.aliases):
            names.setdefault(_norm_header(name), col)
    return names


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _find_header(kind: Kind, rows: list[tuple[int, list[Any]]]) -> int:
    """Index in ``rows`` of the header row: the first of the first rows that names columns.

    Ledgers often carry a title line above the header; its row number still counts.
    """
    names = _header_names(kind)
    first_filled = None
    for i, (_, cells) in enumerate(rows[:HEADER_SCAN_ROWS]):
        filled = [c for c in cells if not _blank(c)]
        if not filled:
            continue
        if first_filled is None:
            first_filled = i
        known = sum(1 for c in filled if _norm_header(c) in names)
        if known and known * 2 >= len(filled):
            return i
    if first_filled is None:
        raise ImportRejected([RowError(row=0, reason="文件是空的：没有列名行")])
    return first_filled


def _map_headers(kind: Kind, row_no: int, header: list[Any]) -> dict[int, Column]:
    names = _header_names(kind)
    mapping: dict[int, Column] = {}
    seen: dict[str, str] = {}
    errors: list[RowError] = []
    allowed = "、".join(c.zh for c in kind.columns if c.importable)
    for i, cell in enumerate(header):
        if _blank(cell):
            continue
        written = str(cell).strip()
        col = names.get(_norm_header(cell))
        if col is None:
            errors.append(RowError(row=row_no, column=written, value=written,
                                   reason=f"未知的列名；{kind.zh}可导入的列：{allowed}"))
            continue
        if col.key in seen:
            errors.append(RowError(row=row_no, column=written, value=written,
                                   reason=f"与列「{seen[col.key]}」重复（同一字段）"))
            continue
        seen[col.key] = written
        if col.importable:
            mapping[i] = col
    for col in kind.columns:
        if col.required and col.importable and col.key not in seen:
            errors.append(RowError(row=row_no, column=col.zh, reason="缺少必填列"))
    if errors:
        raise ImportRejected(errors, kind=kind.key)
    return mapping


# --- cells -----------------------------------------------------------------------------------


def _shown(cell: Any, col: Column) -> str:
    """The cell as the user would recognise it; personal data masked."""
    if cell is None:
        return ""
    if isinstance(cell, float):
        text = f"{cell:.6G}" if abs(cell) >= 1e11 else f"{cell:g}"
    elif isinstance(cell, dt.datetime):
        text = cell.strftime("%Y-%m-%d %H:%M")
    elif isinstance(cell, dt.date):
        text = cell.isoformat()
    else:
        text = str(cell).strip()
    if col.pii and "*" not in text and len(text) > 8:
        return MASKS[col.pii](text)
    return text[:100]


def _mangled(col: Column) -> str:
    what = {"id_number": "身份证号", "uscc": "统一社会信用代码", "phone": "电话号码"}.get(col.type, "编号")
    return (f"{what}被 Excel 当作数字并改写（科学计数法或末位变成0），原值已丢失；"
            f"请把该列设置为“文本”格式后重新录入")


def _enum_lookup(group: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for code, (zh, en) in LABELS[group].items():
        out[str(code).lower()] = str(code)
        out[zh] = str(code)
        out[en.lower()] = str(code)
    if group == "sex":
        out.update({"男性": "M", "女性": "F"})
    return out


ENUMS = {group: _enum_lookup(group) for group in LABELS}


def _parse_date(cell: Any) -> dt.date:
    if isinstance(cell, dt.datetime):
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        if 18000101 <= cell <= 21001231 and float(cell).is_integer():
            cell = str(int(cell))
        elif 1 <= cell < 80000:
            return from_excel(cell).date()
        else:
            raise ValueError("应为日期，如 1990-01-31")
    text = str(cell).strip().split(" ")[0].split("T")[0]
    m = DATE_RE.match(text) or COMPACT_DATE_RE.match(text)
    if not m:
        raise ValueError("应为日期，如 1990-01-31")
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise ValueError("日期不存在") from None


def _parse_datetime(cell: Any) -> dt.datetime:
    if isinstance(cell, dt.datetime):
        value = cell
    elif isinstance(cell, dt.date):
        value = dt.datetime.combine(cell, dt.time())
    elif isinstance(cell, int | float) and not isinstance(cell, bool) and 1 <= cell < 80000:
        value = from_excel(cell)
    else:
        text = str(cell).strip().replace("T", " ")
        date_part, _, time_part = text.partition(" ")
        day = _parse_date(date_part)
        clock = dt.time()
        if time_part.strip():
            m = TIME_RE.match(time_part.strip())
            if not m:
                raise ValueError("应为时间，如 2024-05-01 09:30")
            try:
                clock = dt.time(int(m[1]), int(m[2]), int(m[3] or 0))
            except ValueError:
                raise ValueError("时间不存在") from None
        value = dt.datetime.combine(day, clock)
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)  # a time in a sheet is Shanghai time
    return value


def parse_cell(col: Column, cell: Any) -> Any:
    """A spreadsheet cell as a Python value for the column (ValueError with a Chinese reason)."""
    if _blank(cell):
        return None
    if isinstance(cell, str):
        cell = cell.strip()
    kind_ = col.type
    identifier = kind_ in ("id_number", "uscc", "phone") or col.key in IDENTIFIER_KEYS
    if isinstance(cell, str) and identifier and SCIENTIFIC.match(cell):
        raise ValueError(_mangled(col))
    if kind_ in ("id_number", "uscc"):
        if isinstance(cell, int | float):
            raise ValueError(_mangled(col))
        return str(cell)
    if isinstance(cell, float) and identifier:
        if not cell.is_integer() or abs(cell) >= 1e15:
            raise ValueError(_mangled(col))
        return str(int(cell))
    if kind_ == "date":
        return _parse_date(cell)
    if kind_ == "datetime":
        return _parse_datetime(cell)
    if kind_ == "enum" and col.enum:
        text = str(cell).strip()
        code = ENUMS[col.enum].get(text) or ENUMS[col.enum].get(text.lower())
        if code is None:
            allowed = "、".join(zh for zh, _ in LABELS[col.enum].values())
            raise ValueError(f"不是可选值之一（可选：{allowed}）")
        return code
    if kind_ in ("int", "float"):
        if isinstance(cell, str):
            return UNITS_RE.sub("", cell).strip()
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, dt.datetime | dt.date):
        return cell.isoformat()
    return str(cell)


# --- checking every row ----------------------------------------------------------------------


@dataclass
class ParsedRow:
    row: int
    values: dict[str, Any]
    key: tuple[Any, ...] | None = None
    cells: list[Any] = field(default_factory=list)
    mapping: dict[int, Column] = field(default_factory=dict)
    _shown: dict[str, str] | None = None

    @property
    def shown(self) -> dict[str, str]:
        """The cells as the user would recognise them (worked out only for an error message)."""
        if self._shown is None:
            cells = self.cells
            self._shown = {col.key: _shown(cells[i] if i < len(cells) else None, col)
                           for i, col in self.mapping.items()}
        return self._shown


def _check_rows(kind: Kind, rows: list[tuple[int, list[Any]]], mapping: dict[int, Column],
                header: list[Any], header_row: int) -> tuple[list[ParsedRow], list[RowError]]:
    errors: list[RowError] = []
    parsed: list[ParsedRow] = []
    written = {i: str(header[i]).strip() for i in mapping}
    unnamed_reported: set[int] = set()
    named = [not _blank(h) for h in header]
    for row_no, cells in rows:
        if all(_blank(c) for c in cells):
            continue
        for i, cell in enumerate(cells):
            unnamed = i >= len(named) or not named[i]
            if unnamed and i not in unnamed_reported and not _blank(cell):
                unnamed_reported.add(i)
                errors.append(RowError(row=row_no, column=f"第 {get_column_letter(i + 1)} 列",
                                       value=str(cell)[:50], reason="该列没有列名，数据无法归属"))
        values: dict[str, Any] = {}
        bad: set[str] = set()
        for i, col in mapping.items():
            cell = cells[i] if i < len(cells) else None
            try:
                values[col.key] = clean_value(kind, col.key, parse_cell(col, cell))
            except RecordInvalid as exc:
                errors.append(RowError(row=row_no, column=written[i], value=_shown(cell, col), reason=exc.reason))
                bad.add(col.key)
            except ValueError as exc:
                errors.append(RowError(row=row_no, column=written[i], value=_shown(cell, col), reason=str(exc)))
                bad.add(col.key)
        for i, col in mapping.items():
            if col.required and values.get(col.key) is None and col.key not in bad:
                errors.append(RowError(row=row_no, column=written[i], reason="必填项为空"))
                bad.add(col.key)
        if bad:
            continue
        parsed.append(ParsedRow(row=row_no, values=values, key=natural_key(kind, values), cells=cells,
                                mapping=mapping))
    if len(parsed) > MAX_ROWS:
        errors.append(RowError(row=0, reason=f"一次最多导入 {MAX_ROWS:,} 行，请拆分文件"))
    header_of = {col.key: written[i] for i, col in mapping.items()}
    errors.extend(_duplicates(kind, parsed, header_of))
    if kind.key == "person":
        errors.extend(_two_heads(parsed, header_of))
    if kind.key == "place":
        errors.extend(_place_parents(parsed, header_of))
    position = {name: i for i, name in enumerate(written.values())}
    errors.sort(key=lambda e: (e.row, position.get(e.column, len(position))))
    return parsed, errors


def _duplicates(kind: Kind, parsed: list[ParsedRow], header_of: dict[str, str]) -> list[RowError]:
    errors = []
    first: dict[tuple[Any, ...], ParsedRow] = {}
    for row in parsed:
        if row.key is None:
            continue
        if row.key in first:
            other = first[row.key]
            key_field = {"person": "id_number", "household": "number", "house": "address",
                         "facility": "code", "device": "code", "place": "code",
                         "situation": "external_id"}.get(kind.key)
            if kind.key == "organisation":
                key_field = "credit_code" if row.key[0] == "code" else "name"
            column = header_of.get(key_field or "", "")
            reason = f"与第 {other.row} 行重复（同一{kind.column(key_field).zh if key_field else '记录'}）"
            if kind.key == "organisation" and row.key[0] == "name":
                reason = f"与第 {other.row} 行重复（同名同类型组织且都没有统一社会信用代码，无法区分）"
            errors.append(RowError(row=row.row, column=column, value=row.shown.get(key_field or "", ""),
                                   reason=reason))
        else:
            first[row.key] = row
    return errors


def _two_heads(parsed: list[ParsedRow], header_of: dict[str, str]) -> list[RowError]:
    errors = []
    heads: dict[str, int] = {}
    for row in parsed:
        number = row.values.get("household_number")
        if number and row.values.get("relation") == Relation.HEAD:
            if number in heads:
                errors.append(RowError(row=row.row, column=header_of.get("relation", "与户主关系"),
                                       value="户主", reason=f"户号 {number} 已在第 {heads[number]} 行有户主，一户只能有一位户主"))
            else:
                heads[number] = row.row
    return errors


def _place_parents(parsed: list[ParsedRow], header_of: dict[str, str]) -> list[RowError]:
    """Only the parent's kind is checked here; whether it exists is checked against the
    database in ``_check_place_parents_exist``."""
    errors = []
    in_file = {row.values["code"]: row for row in parsed}
    for row in parsed:
        kind = PlaceKind(row.values["kind"])
        parent_code = row.values.get("parent_code")
        if parent_code and parent_code in in_file:
            parent_kind = PlaceKind(in_file[parent_code].values["kind"])
            if parent_kind not in PARENT_KINDS[kind]:
                errors.append(RowError(row=row.row, column=header_of.get("parent_code", "上级编码"),
                                       value=parent_code, reason=f"上级是{LABELS['place_kind'][parent_kind][0]}，"
                                       f"{LABELS['place_kind'][kind][0]}不能放在它下面"))
    return errors


def _check_place_parents_exist(writer: Writer, parsed: list[ParsedRow], existing: dict[Any, Any],
                               header_of: dict[str, str]) -> list[RowError]:
    errors = []
    in_file = {row.values["code"] for row in parsed}
    writer.preload_codes({r.values.get("parent_code") for r in parsed} - {None})
    for row in parsed:
        if row.key in existing:
            continue  # an existing place keeps its parent
        kind = PlaceKind(row.values["kind"])
        parent_code = row.values.get("parent_code")
        column = header_of.get("parent_code", "上级编码")
        if not parent_code:
            if None not in PARENT_KINDS[kind]:
                errors.append(RowError(row=row.row, column=column,
                                       reason=f"新的{LABELS['place_kind'][kind][0]}必须填写上级编码"))
        elif parent_code not in in_file and writer.place_by_code(parent_code, PARENT_KINDS[kind]) is None:
            errors.append(RowError(row=row.row, column=column, value=parent_code,
                                   reason="上级编码不存在，或该场所不能放在这种上级下面"))
    return errors


def _parents_first(parsed: list[ParsedRow]) -> list[ParsedRow]:
    by_code = {row.values["code"]: row for row in parsed}
    done: set[str] = set()
    out: list[ParsedRow] = []

    def visit(row: ParsedRow, depth: int = 0) -> None:
        code = row.values["code"]
        if code in done or depth > 20:
            return
        parent = by_code.get(row.values.get("parent_code") or "")
        if parent is not None and parent is not row:
            visit(parent, depth + 1)
        if code not in done:
            done.add(code)
            out.append(row)

    for row in parsed:
        visit(row)
    return out


def _outside_scope(session: Session, kind: Kind, parsed: list[ParsedRow], existing: dict[Any, Any],
                   writer: Writer, header_of: dict[str, str]) -> list[RowError]:
    """Rows a user bound to some areas may not write: records of other areas, and new records
    that would land outside their areas (or nowhere, where they could not see them again)."""
    scope: Scope | None = session.info.get("scope")
    if scope is None or scope.whole_tenant:
        return []
    if kind.key in ("place", "device") or scope.kind != "areas":
        return [RowError(row=0, value=kind.zh, reason=f"只有全街道范围的用户可以导入{kind.zh}")]
    errors = []
    address_col = header_of.get("address", kind.column("address").zh)
    for row in parsed:
        record = existing.get(row.key) if row.key is not None else None
        if record is not None:
            if not scope.covers_area(grid_id=record.grid_id, committee_id=record.committee_id,
                                     compound_id=record.compound_id):
                key = next((c for c in kind.columns if c.key in row.values and c.key == kind.dedupe), None)
                errors.append(RowError(row=row.row, column=header_of.get(key.key, key.zh) if key else "",
                                       value=row.shown.get(key.key, "") if key else "",
                                       reason="该记录不在您的管辖范围内，不能导入或修改"))
            continue
        address = row.values.get("address")
        place = writer.place_for(address) if address else None
        if place is None and row.values.get("lon") is not None and row.values.get("lat") is not None:
            where = locate(session=session, lon=row.values["lon"], lat=row.values["lat"])
            covered = scope.covers_area(grid_id=where.grid_id, committee_id=where.committee_id,
                                        compound_id=where.compound_id)
        elif place is not None:
            covered = scope.covers_area(**{k: v for k, v in place.ancestry().items() if k != "building_id"})
        else:
            covered = False
        if not covered:
            errors.append(RowError(row=row.row, column=address_col, value=address or "",
                                   reason="新记录的地址必须是您管辖范围内的标准地址"))
    return errors


# --- writing ---------------------------------------------------------------------------------


def import_bytes(*, session: Session, kind: str, filename: str, data: bytes, source: str,
                 actor: str) -> ImportResult:
    """Check every row of a CSV/XLSX file, then create or merge its records; on any error raise
    ImportRejected and change nothing."""
    started = time.perf_counter()
    try:
        k = get_kind(kind)
    except KeyError:
        raise ImportRejected([RowError(row=0, value=kind, reason=f"未知的数据类型；可选：{'、'.join(KINDS)}")]) from None
    source = (source or "").strip()
    if not source or len(source) > 40:
        raise ImportRejected([RowError(row=0, value=source, reason="数据来源必须填写，且不超过40个字符")], kind=kind)
    rows = read_table(filename, data)
    h = _find_header(k, rows)
    header_row, header = rows[h]
    mapping = _map_headers(k, header_row, header)
    parsed, errors = _check_rows(k, rows[h + 1:], mapping, header, header_row)
    header_of = {col.key: str(header[i]).strip() for i, col in mapping.items()}

    writer = Writer(session=session, source=source, policy=MERGE)
    keys = [row.key for row in parsed if row.key is not None]
    existing = find_existing(session=session, kind=k, keys=keys, writer=writer)
    if k.key == "place":
        errors.extend(_check_place_parents_exist(writer, parsed, existing, header_of))
    errors.extend(_outside_scope(session, k, parsed, existing, writer, header_of))
    errors.sort(key=lambda e: e.row)
    if errors:
        raise ImportRejected(errors, kind=kind, filename=filename)
    if not parsed:
        raise ImportRejected([RowError(row=header_row + 1, reason="没有数据行")], kind=kind, filename=filename)

    # a real write before the SAVEPOINT: pysqlite would otherwise let the SAVEPOINT open the
    # transaction, and releasing it would commit
    batch = ImportBatch(kind=k.key, filename=filename[:300], source=source, rows=len(parsed),
                        actor=actor[:100])
    session.add(batch)
    session.flush()

    writer.preload_place_ids(getattr(obj, "place_id", None) for obj in existing.values())
    writer.preload_facts(k.model.__tablename__, [obj.id for obj in existing.values()])
    addresses = [row.values.get("address") for row in parsed if row.values.get("address")]
    writer.preload_places(addresses)
    if k.key in ("person", "household"):
        writer.preload_houses(writer._by_address.values())
    if k.key == "person":
        writer.preload_households(ids=[obj.household_id for obj in existing.values()])
    ordered = _parents_first(parsed) if k.key == "place" else parsed

    created = updated = 0
    unplaced = 0
    warnings: list[RowError] = []
    chunk_start = ordered[0].row
    current = chunk_start
    savepoint = session.begin_nested()
    try:
        if k.key == "person":
            writer.ensure_households(r.values["household_number"] for r in parsed
                                     if r.values.get("household_number"))
        for n, row in enumerate(ordered, start=1):
            current = row.row
            before = len(writer.notes)
            obj, was_created = writer.write(k, row.values, existing=existing.get(row.key) if row.key else None,
                                            clean=False)
            created += was_created
            updated += not was_created
            for note in writer.notes[before:]:
                warnings.append(RowError(row=row.row, column=header_of.get(note.field, k.column(note.field).zh
                                                                           if note.field in {c.key for c in k.columns} else note.field),
                                         value=note.value, reason=note.reason))
            if hasattr(obj, "place_id") and k.key != "place":
                unplaced += obj.place_id is None
            if n % FLUSH_EVERY == 0:
                writer.flush()
                chunk_start = ordered[n].row if n < len(ordered) else current
        writer.finish()
        savepoint.commit()
    except (SQLAlchemyError, RecordInvalid, ValueError) as exc:
        savepoint.rollback()
        where = f"第 {chunk_start}–{current} 行之间" if chunk_start != current else f"第 {current} 行"
        reason = exc.reason if isinstance(exc, RecordInvalid) else str(exc).splitlines()[0][:300]
        error = RowError(row=current, reason=f"写入失败（{where}），已全部撤销：{reason}")
        batch.status = "rejected"
        batch.errors = [error.model_dump()]
        session.flush()
        raise ImportRejected([error], kind=kind, filename=filename) from exc

    batch.created, batch.updated = created, updated
    from shequ.core.iam.service import audit

    audit(session=session, actor=actor, action="import", target=f"{k.key}:{filename}"[:200],
          detail={"kind": k.key, "filename": filename, "source": source, "batch_id": batch.id,
                  "rows": len(parsed), "created": created, "updated": updated,
                  "unplaced": unplaced, "conflicts": writer.conflicts})
    session.flush()
    return ImportResult(kind=k.key, filename=filename, source=source, batch_id=batch.id,
                        rows=len(parsed), created=created, updated=updated, unplaced=unplaced,
                        conflicts=writer.conflicts, warnings=warnings,
                        seconds=round(time.perf_counter() - started, 3))


def import_file(*, session: Session, kind: str, path: Path, source: str, actor: str) -> ImportResult:
    """Import a CSV or XLSX file from disk (see ``import_bytes``)."""
    path = Path(path)
    return import_bytes(session=session, kind=kind, filename=path.name, data=path.read_bytes(),
                        source=source, actor=actor)


# --- templates and column descriptions -------------------------------------------------------

TYPE_ZH = {
    "str": "文本", "int": "整数", "float": "数字", "date": "日期，如 1990-01-31",
    "datetime": "时间，如 2024-05-01 09:30（上海时间）", "enum": "可选值", "id_number": "18位身份证号（文本格式）",
    "phone": "手机号或座机（文本格式）", "uscc": "18位统一社会信用代码（文本格式）",
    "address": "标准地址，如 鹤庆路258弄12号301室", "ref": "",
}
TYPE_EN = {
    "str": "text", "int": "whole number", "float": "number", "date": "date, e.g. 1990-01-31",
    "datetime": "time, e.g. 2024-05-01 09:30 (Shanghai)", "enum": "one of", "id_number": "18-character ID number (text)",
    "phone": "mobile or landline (text)", "uscc": "18-character credit code (text)",
    "address": "standard address, e.g. 鹤庆路258弄12号301室", "ref": "",
}


def describe_columns(kind: Kind, lang: str = "zh-CN") -> list[dict[str, str]]:
    """The importable columns of a kind: header, English header, required, format, aliases."""
    zh = lang.startswith("zh")
    out = []
    for col in kind.columns:
        if not col.importable:
            continue
        fmt = (TYPE_ZH if zh else TYPE_EN)[col.type]
        if col.type == "enum" and col.enum:
            labels = [pair[0 if zh else 1] for pair in LABELS[col.enum].values()]
            fmt = f"{fmt}：{'、'.join(labels)}" if zh else f"{fmt}: {', '.join(labels)}"
        out.append({"header": col.header(lang), "other": col.en if zh else col.zh,
                    "required": ("是" if zh else "yes") if col.required else "",
                    "format": fmt, "aliases": "、".join(col.aliases)})
    return out


def columns_markdown(lang: str = "zh-CN") -> str:
    """Markdown tables of the importable columns of every kind (docs/import.md is made of it)."""
    zh = lang.startswith("zh")
    parts = []
    for kind in KINDS.values():
        title = f"### {kind.zh}（{kind.key}）" if zh else f"### {kind.en} (`{kind.key}`)"
        head = ("| 列名 | English | 必填 | 格式 | 别名 |" if zh
                else "| header | 中文 | required | format | aliases |")
        lines = [title, "", head, "|---|---|---|---|---|"]
        for d in describe_columns(kind, lang):
            lines.append(f"| {d['header']} | {d['other']} | {d['required']} | {d['format']} | {d['aliases']} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def import_template(kind: str, lang: str = "zh-CN") -> bytes:
    """An XLSX with the headers of a kind (identifier columns formatted as text) and a sheet
    that explains each column."""
    k = get_kind(kind)
    zh = lang.startswith("zh")
    wb = Workbook()
    ws = wb.active
    ws.title = (f"{k.zh}导入" if zh else f"{k.en} import")[:31]
    columns = [c for c in k.columns if c.importable]
    bold = Font(bold=True)
    required = Font(bold=True, color="C00000")
    for i, col in enumerate(columns, start=1):
        cell = ws.cell(row=1, column=i, value=col.header(lang))
        cell.font = required if col.required else bold
        cell.fill = PatternFill("solid", fgColor="EEF3FA")
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = max(12, len(col.header(lang)) * (2.2 if zh else 1.2) + 4)
        if col.type in ("id_number", "uscc", "phone") or col.key in IDENTIFIER_KEYS:
            ws.column_dimensions[letter].number_format = "@"  # Excel keeps typed digits as text
    ws.freeze_panes = "A2"
    notes = wb.create_sheet("说明" if zh else "notes")
    head = ["列名", "English", "必填", "格式", "别名"] if zh else ["header", "中文", "required", "format", "aliases"]
    notes.append(head)
    for cell in notes[1]:
        cell.font = bold
    for d in describe_columns(k, lang):
        notes.append([d["header"], d["other"], d["required"], d["format"], d["aliases"]])
    for letter, width in zip("ABCDE", (18, 24, 6, 60, 24), strict=True):
        notes.column_dimensions[letter].width = width
        for cell in notes[letter]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def bench_import(*, rows: int = 20_000, console: Any = None, seed: int = 1) -> dict[str, float]:
    """Time a person import of ``rows`` rows (see shequ.sim.bench_import)."""
    from shequ.sim.bench_import import bench_import as run

    return run(rows=rows, console=console, seed=seed)
