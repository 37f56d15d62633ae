"""Import of a 12345 hotline export (市民服务热线工单, XLSX or CSV) as registered cases.

Columns (Chinese headers, a title line above them is allowed): 工单编号, 来电时间, 诉求类别,
诉求内容, 地址, 联系人, 联系电话, 办理时限 (optional). Every row is checked first; one bad row
rejects the whole file and nothing changes. An order number imported before is left as it is
and reported as already imported.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from openpyxl.utils.datetime import from_excel
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.cases import service
from shequ.core.cases.calendar import SHANGHAI
from shequ.core.cases.models import Case
from shequ.core.iam.crypto import MASKS
from shequ.core.places.service import find_by_address
from shequ.core.registry.importer import ImportRejected, read_table
from shequ.core.registry.schemas import RowError
from shequ.core.registry.validators import validate_phone

ORDER_NO, CALLED_AT, CATEGORY, CONTENT, ADDRESS, CONTACT, PHONE, LIMIT = (
    "工单编号", "来电时间", "诉求类别", "诉求内容", "地址", "联系人", "联系电话", "办理时限")
COLUMNS = (ORDER_NO, CALLED_AT, CATEGORY, CONTENT, ADDRESS, CONTACT, PHONE, LIMIT)
REQUIRED = (ORDER_NO, CALLED_AT, CATEGORY, CONTENT)
ALIASES = {"工单号": ORDER_NO, "受理时间": CALLED_AT, "诉求分类": CATEGORY, "问题描述": CONTENT,
           "事发地址": ADDRESS, "来电人": CONTACT, "来电号码": PHONE, "办结时限": LIMIT}
HEADER_SCAN_ROWS = 10
MAX_ROWS = 5_000

# 诉求类别 → case class: the first keyword found in the category wins; none found: 其他
CATEGORY_CLASSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("噪音", "噪声", "扰民"), "E0503"),
    (("垃圾",), "E0101"),
    (("占道", "摆摊"), "E0501"),
    (("违建", "违法搭建", "违章搭建"), "E0301"),
    (("井盖",), "C0101"),
    (("路灯",), "C0102"),
    (("飞线充电", "电动车", "电动自行车"), "E0504"),
    (("高空抛物",), "E0505"),
    (("物业",), "E0601"),
    (("其他",), "E0699"),
)
OTHER_CLASS = "E0699"
_TIME_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
                      r"(?:[\sT]+(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2}))?(?:\.\d+)?秒?)?$")


class HotlineRejected(ImportRejected):
    """The file was not imported; ``errors`` name the row and column. Nothing was changed."""


@dataclass
class HotlineRow:
    row: int
    order_no: str
    called_at: dt.datetime
    category: str
    content: str
    address: str = ""
    contact: str | None = None
    phone: str | None = None
    limit_at: dt.datetime | None = None


@dataclass
class HotlineImport:
    """What an accepted import did: the cases it opened and the order numbers it skipped."""

    rows: int
    created: list[tuple[HotlineRow, Case, str]] = field(default_factory=list)  # row, case, routed department
    already_imported: list[str] = field(default_factory=list)


def class_for(category: str) -> str:
    """The case class of a 12345 category (诉求类别), 其他 when no keyword matches."""
    for keywords, code in CATEGORY_CLASSES:
        if any(k in category for k in keywords):
            return code
    return OTHER_CLASS


def _text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def parse_time(cell: Any, *, end_of_day: bool = False) -> dt.datetime:
    """A time cell (an Excel time, a serial number or text like 2026-11-27 09:30) in Shanghai time."""
    if isinstance(cell, dt.datetime):
        value = cell
    elif isinstance(cell, dt.date):
        value = dt.datetime.combine(cell, dt.time(23, 59, 59) if end_of_day else dt.time())
    elif isinstance(cell, int | float) and not isinstance(cell, bool) and 1 <= cell < 80000:
        value = from_excel(cell)
    else:
        m = _TIME_RE.match(_text(cell))
        if not m:
            raise ValueError("应为时间，如 2026-11-27 09:30")
        try:
            if m[4] is None:
                clock = dt.time(23, 59, 59) if end_of_day else dt.time()
            else:
                clock = dt.time(int(m[4]), int(m[5]), int(m[6] or 0))
            value = dt.datetime.combine(dt.date(int(m[1]), int(m[2]), int(m[3])), clock)
        except ValueError:
            raise ValueError("日期或时间不存在") from None
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


def _norm(cell: Any) -> str:
    name = re.sub(r"\s+", "", _text(cell)).rstrip("*＊")
    return ALIASES.get(name, name)


def _header(rows: list[tuple[int, list[Any]]]) -> tuple[int, dict[str, int]]:
    """Index of the header row among ``rows`` and the column index of each known column."""
    for i, (row_no, cells) in enumerate(rows[:HEADER_SCAN_ROWS]):
        names = [_norm(c) for c in cells]
        if ORDER_NO not in names:
            continue
        positions: dict[str, int] = {}
        errors = []
        for pos, name in enumerate(names):
            if name in COLUMNS:
                if name in positions:
                    errors.append(RowError(row=row_no, column=name, reason="列名重复"))
                positions[name] = pos
        errors += [RowError(row=row_no, column=name, reason="缺少必填列")
                   for name in REQUIRED if name not in positions]
        if errors:
            raise HotlineRejected(errors)
        return i, positions
    raise HotlineRejected([RowError(row=rows[0][0] if rows else 0, column=ORDER_NO,
                                    reason=f"找不到列名行（应含 {'、'.join(REQUIRED)}）")])


def read_rows(filename: str, data: bytes) -> list[HotlineRow]:
    """The rows of an export, every one checked; HotlineRejected naming each bad cell."""
    try:
        rows = read_table(filename, data)
    except ImportRejected as rejected:
        raise HotlineRejected(rejected.errors) from None
    if not rows:
        raise HotlineRejected([RowError(row=0, reason="文件是空的")])
    at, pos = _header(rows)
    body = rows[at + 1:]
    if len(body) > MAX_ROWS:
        raise HotlineRejected([RowError(row=0, reason=f"一次最多导入 {MAX_ROWS} 行")])
    out: list[HotlineRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}

    def cell(cells: list[Any], name: str) -> Any:
        i = pos.get(name)
        return cells[i] if i is not None and i < len(cells) else None

    for row_no, cells in body:
        if all(_text(c) == "" for c in cells):
            continue
        problems: list[RowError] = []

        def bad(name: str, reason: str, value: Any = None, row_no: int = row_no,
                problems: list[RowError] = problems) -> None:
            shown = _text(value)
            if name == PHONE and len(shown) > 8:  # as the registry import shows personal data
                shown = MASKS["phone"](shown)
            problems.append(RowError(row=row_no, column=name, value=shown[:100], reason=reason))

        order_no = _text(cell(cells, ORDER_NO))
        if not order_no:
            bad(ORDER_NO, "必填")
        elif len(order_no) > 60:
            bad(ORDER_NO, "超过 60 个字符", order_no)
        elif order_no in seen:
            bad(ORDER_NO, f"与第 {seen[order_no]} 行重复", order_no)
        else:
            seen[order_no] = row_no
        content = _text(cell(cells, CONTENT))
        if not content:
            bad(CONTENT, "必填")
        category = _text(cell(cells, CATEGORY))[:60]
        called_at = None
        raw_called = cell(cells, CALLED_AT)
        if _text(raw_called) == "":
            bad(CALLED_AT, "必填")
        else:
            try:
                called_at = parse_time(raw_called)
            except ValueError as exc:
                bad(CALLED_AT, str(exc), raw_called)
        limit_at = None
        raw_limit = cell(cells, LIMIT)
        if _text(raw_limit):
            try:
                limit_at = parse_time(raw_limit, end_of_day=True)
            except ValueError as exc:
                bad(LIMIT, str(exc), raw_limit)
        phone = None
        raw_phone = _text(cell(cells, PHONE))
        if raw_phone:
            try:
                phone = validate_phone(raw_phone)
            except ValueError as exc:
                bad(PHONE, str(exc), raw_phone)
        contact = _text(cell(cells, CONTACT))[:60] or None
        address = _text(cell(cells, ADDRESS))[:300]
        if any("\x00" in _text(c) for c in cells):
            bad(CONTENT, "含 NUL 字符")
        if problems:
            errors += problems
            continue
        assert called_at is not None
        out.append(HotlineRow(row=row_no, order_no=order_no, called_at=called_at, category=category,
                              content=content, address=address, contact=contact, phone=phone,
                              limit_at=limit_at))
    if errors:
        raise HotlineRejected(errors)
    if not out:
        raise HotlineRejected([RowError(row=0, reason="没有数据行")])
    return out


def _title(row: HotlineRow) -> str:
    head = row.content.splitlines()[0] if row.content else ""
    head = head if len(head) <= 40 else head[:40] + "…"
    return f"12345 {row.category}：{head}" if row.category else f"12345：{head}"


def import_hotline(*, session: Session, filename: str, data: bytes, actor: str,
                   now: dt.datetime | None = None) -> HotlineImport:
    """Open a registered case (source hotline) for every new order of an export; all or nothing."""
    now = now or dt.datetime.now(dt.UTC)
    rows = read_rows(filename, data)
    refs = [r.order_no for r in rows]
    existing = set(session.scalars(select(Case.source_ref).where(Case.source == "hotline",
                                                                 Case.source_ref.in_(refs))
                                   .execution_options(all_scopes=True)))
    result = HotlineImport(rows=len(rows))
    with session.begin_nested():
        for row in rows:
            if row.order_no in existing:
                result.already_imported.append(row.order_no)
                continue
            place = find_by_address(session=session, text=row.address) if row.address else None
            attrs = {"hotline": {"order_no": row.order_no, "category": row.category, "row": row.row,
                                 "called_at": row.called_at.isoformat(),
                                 "limit_at": row.limit_at.isoformat() if row.limit_at else None,
                                 "placed": place is not None}}
            case = service.open_case(session=session, title=_title(row), class_code=class_for(row.category),
                                     source="hotline", source_ref=row.order_no, actor=actor,
                                     description=row.content, place_id=place.id if place else None,
                                     address_text=row.address, reporter_name=row.contact,
                                     reporter_phone=row.phone, attrs=attrs,
                                     now=min(row.called_at, now))
            service.act(session=session, case=case, action="register", actor=actor, now=now,
                        note=f"12345 工单 {row.order_no} 导入")
            routed = service.route(session=session, case=case)
            result.created.append((row, case, routed.department))
    return result
