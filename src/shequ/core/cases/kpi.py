"""The indicators (考核指标) of the case loop: one definition each, counted in SQL over the cases
reported in a period, grouped by one dimension, beside the previous period of equal length.

The cohort of a period [start, end) (Asia/Shanghai dates) is every case whose ``reported_at``
falls in it; each indicator describes that cohort as it stands now (see docs/kpi.md for every
definition). Counts and sums come from one ``GROUP BY`` query per period, so a year of cases is
never loaded into Python; the session's scope limits the cases like any other query.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, extract, func, literal, or_, select
from sqlalchemy.orm import Session

from shequ.core.cases.calendar import SHANGHAI
from shequ.core.cases.models import CLOSED, EVALUATED, OPEN_STAGES, Case, CaseClass
from shequ.core.errors import FieldError
from shequ.core.places.models import Place

DIMENSIONS = ("department", "grid", "committee", "source", "class", "none")
DIMENSION_LABELS: dict[str, tuple[str, str]] = {
    "department": ("责任部门", "department"),
    "grid": ("网格", "grid"),
    "committee": ("居委会", "committee"),
    "source": ("来源", "source"),
    "class": ("案件分类", "class"),
    "none": ("全街道", "whole subdistrict"),
}
SOURCE_LABELS: dict[str, tuple[str, str]] = {
    "alarm": ("告警", "alarm"),
    "resident": ("居民上报", "resident"),
    "patrol": ("网格巡查", "patrol"),
    "hotline": ("12345 热线", "12345 hotline"),
    "department": ("部门上报", "department"),
    "open311": ("Open311", "Open311"),
}
MAX_DAYS = 3660  # about ten years: one period at most
FIRST_YEAR, LAST_YEAR = 2000, 2100


@dataclass(frozen=True)
class Indicator:
    key: str
    zh: str
    en: str
    kind: str  # count | rate | hours | score

    def name(self, lang: str = "zh-CN") -> str:
        return self.zh if lang.startswith("zh") else self.en


INDICATORS: tuple[Indicator, ...] = (
    Indicator("reported", "上报数", "reported", "count"),
    Indicator("registered", "立案数", "registered", "count"),
    Indicator("void", "作废数", "void", "count"),
    Indicator("dispatched", "派遣数", "dispatched", "count"),
    Indicator("handled", "处置数", "handled", "count"),
    Indicator("handled_on_time", "按期处置数", "handled on time", "count"),
    Indicator("on_time_handling_rate", "按期处置率", "on-time handling rate", "rate"),
    Indicator("overdue", "超期数", "overdue", "count"),
    Indicator("closed", "结案数", "closed", "count"),
    Indicator("closure_rate", "结案率", "closure rate", "rate"),
    Indicator("on_time_closure_rate", "按期结案率", "on-time closure rate", "rate"),
    Indicator("rework_rate", "返工率", "rework rate", "rate"),
    Indicator("extension_rate", "延期率", "extension rate", "rate"),
    Indicator("mean_hours_to_dispatch", "平均派遣时长（小时）", "mean hours to dispatch", "hours"),
    Indicator("mean_hours_to_close", "平均结案时长（小时）", "mean hours to close", "hours"),
    Indicator("satisfaction", "满意度（1–5）", "satisfaction (1–5)", "score"),
)
BY_KEY = {i.key: i for i in INDICATORS}

Value = int | float | None


@dataclass(frozen=True)
class Change:
    abs: float | None  # current − previous
    rel: float | None  # (current − previous) / previous; None when previous is 0 or unknown


@dataclass
class Row:
    """The indicators of one group (``key`` None: cases without that dimension, e.g. not yet
    dispatched), now and in the previous period."""

    key: str | None
    label: str
    current: dict[str, Value]
    previous: dict[str, Value]
    change: dict[str, Change] = field(default_factory=dict)


@dataclass
class Report:
    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    by: str
    as_of: dt.datetime  # the moment "open and past its deadline" is judged at: min(end, now)
    rows: list[Row]
    total: Row


class PeriodError(FieldError):
    """A period or dimension that cannot be used; names the parameter."""


# --- periods ---------------------------------------------------------------------------------

def local_midnight(day: dt.date) -> dt.datetime:
    """The start of a China day, in UTC."""
    return dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.UTC)


def default_period(*, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """This month (Asia/Shanghai): from its first day to the first day of the next."""
    today = (now or dt.datetime.now(dt.UTC)).astimezone(SHANGHAI).date()
    start = today.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def check_period(*, start: dt.date, end: dt.date) -> None:
    """Raise PeriodError unless start < end, both in 2000–2100 and at most MAX_DAYS apart."""
    for name, day in (("start", start), ("end", end)):
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise PeriodError(name, f"应在 {FIRST_YEAR}–{LAST_YEAR} 年之间（must be within {FIRST_YEAR}–{LAST_YEAR}）")
    if end <= start:
        raise PeriodError("end", "结束日期须晚于开始日期（end must be after start; the period is [start, end)）")
    if (end - start).days > MAX_DAYS:
        raise PeriodError("end", f"统计区间最长 {MAX_DAYS} 天（at most {MAX_DAYS} days）")


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period of equal length (in days) just before [start, end)."""
    return start - (end - start), start


# --- SQL -------------------------------------------------------------------------------------

def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _hours(session: Session, later: Any, earlier: Any) -> Any:
    """later − earlier in hours, in the database's own date arithmetic."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 24.0
    return extract("epoch", later - earlier) / 3600.0


def _group_key(by: str) -> Any:
    return {"department": Case.department, "grid": Case.grid_id, "committee": Case.committee_id,
            "source": Case.source, "class": Case.class_code, "none": literal("all")}[by]


def _raw(session: Session, *, start: dt.datetime, end: dt.datetime, by: str,
         as_of: dt.datetime) -> dict[Any, dict[str, Any]]:
    """The counts and sums of one period per group key: one GROUP BY query."""
    closed = Case.stage.in_((CLOSED, EVALUATED))
    dispatched = Case.dispatched_at.is_not(None)
    overdue = or_(Case.overdue_at.is_not(None),
                  and_(Case.stage.in_(OPEN_STAGES), Case.suspended_at.is_(None),
                       Case.stage_due_at.is_not(None), Case.stage_due_at < as_of))
    key = _group_key(by)
    columns = [
        func.count(Case.id).label("reported"),
        _count(Case.registered_at.is_not(None)).label("registered"),
        _count(Case.voided_at.is_not(None)).label("void"),
        _count(dispatched).label("dispatched"),
        _count(Case.handled_at.is_not(None)).label("handled"),
        _count(and_(Case.handled_at.is_not(None), Case.handled_on_time.is_(True))).label("handled_on_time"),
        _count(overdue).label("overdue"),
        _count(closed).label("closed"),
        _count(and_(closed, Case.closed_on_time.is_(True))).label("closed_on_time"),
        _count(and_(dispatched, Case.rework_count > 0)).label("reworked"),
        _count(and_(dispatched, Case.extension_count > 0)).label("extended"),
        func.sum(case((dispatched, _hours(session, Case.dispatched_at, Case.reported_at)),
                      else_=None)).label("hours_to_dispatch"),
        func.sum(case((and_(closed, Case.closed_at.is_not(None)),
                       _hours(session, Case.closed_at, Case.reported_at)), else_=None)).label("hours_to_close"),
        _count(and_(closed, Case.closed_at.is_not(None))).label("closed_timed"),
        func.count(Case.satisfaction).label("rated"),
        func.sum(Case.satisfaction).label("satisfaction_sum"),
    ]
    stmt = (select(key.label("key"), *columns).select_from(Case)
            .where(Case.reported_at >= start, Case.reported_at < end))
    if by != "none":
        stmt = stmt.group_by(key)
    out: dict[Any, dict[str, Any]] = {}
    for row in session.execute(stmt).mappings():
        if not row["reported"]:
            continue  # an aggregate over no rows (by none) is one row of zeros and NULLs
        group = "all" if by == "none" else row["key"]
        out[None if group is None else str(group)] = {k: row[k] for k in row if k != "key"}
    return out


def _ratio(numerator: float | int | None, denominator: float | int | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return float(numerator) / float(denominator)


def derive(raw: dict[str, Any] | None) -> dict[str, Value]:
    """Every indicator from a group's counts and sums (rates None when the denominator is 0)."""
    r = {k: (v or 0) for k, v in (raw or {}).items()}
    count = {k: int(r.get(k, 0)) for k in ("reported", "registered", "void", "dispatched", "handled",
                                          "handled_on_time", "overdue", "closed", "closed_on_time",
                                          "reworked", "extended", "closed_timed", "rated")}
    return {
        "reported": count["reported"],
        "registered": count["registered"],
        "void": count["void"],
        "dispatched": count["dispatched"],
        "handled": count["handled"],
        "handled_on_time": count["handled_on_time"],
        "on_time_handling_rate": _ratio(count["handled_on_time"], count["handled"]),
        "overdue": count["overdue"],
        "closed": count["closed"],
        "closure_rate": _ratio(count["closed"], count["registered"]),
        "on_time_closure_rate": _ratio(count["closed_on_time"], count["closed"]),
        "rework_rate": _ratio(count["reworked"], count["dispatched"]),
        "extension_rate": _ratio(count["extended"], count["dispatched"]),
        "mean_hours_to_dispatch": _ratio(r.get("hours_to_dispatch"), count["dispatched"]),
        "mean_hours_to_close": _ratio(r.get("hours_to_close"), count["closed_timed"]),
        "satisfaction": _ratio(r.get("satisfaction_sum"), count["rated"]),
    }


def change(current: Value, previous: Value) -> Change:
    """The absolute and relative change from the previous period."""
    if current is None or previous is None:
        return Change(None, None)
    diff = float(current) - float(previous)
    return Change(diff, diff / float(previous) if previous else None)


# --- labels ----------------------------------------------------------------------------------

def _labels(session: Session, by: str, keys: Sequence[str | None], lang: str) -> dict[str | None, str]:
    zh = lang.startswith("zh")
    out: dict[str | None, str] = {}
    if by in ("grid", "committee"):
        ids = [int(k) for k in keys if k is not None]
        places: dict[int, str] = dict(
            session.execute(select(Place.id, Place.name).where(Place.id.in_(ids))).all()) if ids else {}
        for k in keys:
            out[k] = places.get(int(k), f"#{k}") if k is not None else ("未落地" if zh else "not placed")
    elif by == "class":
        rows = session.execute(select(CaseClass.code, CaseClass.name, CaseClass.name_en)
                               .where(CaseClass.code.in_([k for k in keys if k]))).all()
        names = {code: (name if zh or not name_en else name_en) for code, name, name_en in rows}
        for k in keys:
            out[k] = f"{k} {names.get(k or '', '')}".strip() if k else "—"
    elif by == "source":
        for k in keys:
            pair = SOURCE_LABELS.get(k or "", (k or "—", k or "—"))
            out[k] = pair[0] if zh else pair[1]
    elif by == "department":
        for k in keys:
            out[k] = k if k is not None else ("未派遣" if zh else "not dispatched")
    else:
        for k in keys:
            out[k] = "全街道" if zh else "whole subdistrict"
    return out


# --- the report ------------------------------------------------------------------------------

def _row(key: str | None, label: str, now_raw: dict[str, Any] | None, before_raw: dict[str, Any] | None) -> Row:
    current, previous = derive(now_raw), derive(before_raw)
    return Row(key=key, label=label, current=current, previous=previous,
               change={k: change(current[k], previous[k]) for k in current})


def indicators(*, session: Session, start: dt.date, end: dt.date, by: str = "none",
               now: dt.datetime | None = None, lang: str = "zh-CN") -> Report:
    """The indicators of the cases reported in [start, end) per group of ``by``, beside the
    previous period of equal length, and the total over every group."""
    if by not in DIMENSIONS:
        raise PeriodError("by", f"应为 {' | '.join(DIMENSIONS)} 之一（must be one of them）")
    check_period(start=start, end=end)
    now = now or dt.datetime.now(dt.UTC)
    prev_start, prev_end = previous_period(start, end)
    bounds = [local_midnight(d) for d in (prev_start, start, end)]
    current_raw = _raw(session, start=bounds[1], end=bounds[2], by=by, as_of=min(bounds[2], now))
    previous_raw = _raw(session, start=bounds[0], end=bounds[1], by=by, as_of=min(bounds[1], now))
    if by == "none":
        total_now, total_before = current_raw.get("all"), previous_raw.get("all")
    else:
        total_now = _raw(session, start=bounds[1], end=bounds[2], by="none",
                         as_of=min(bounds[2], now)).get("all")
        total_before = _raw(session, start=bounds[0], end=bounds[1], by="none",
                            as_of=min(bounds[1], now)).get("all")
    total = _row(None, "合计" if lang.startswith("zh") else "total", total_now, total_before)
    if by == "none":
        rows = [_row("all", _labels(session, by, ["all"], lang)["all"], total_now, total_before)]
    else:
        keys = list(dict.fromkeys([*current_raw, *previous_raw]))
        labels = _labels(session, by, keys, lang)
        rows = [_row(k, labels[k], current_raw.get(k), previous_raw.get(k)) for k in keys]
        # most cases first; the group without a value (not dispatched, not placed) last
        rows.sort(key=lambda r: (r.key is None, -int(r.current["reported"] or 0),
                                 -int(r.previous["reported"] or 0), r.label))
    return Report(start=start, end=end, previous_start=prev_start, previous_end=prev_end, by=by,
                  as_of=min(bounds[2], now), rows=rows, total=total)


def as_dict(report: Report, *, digits: int = 4) -> dict[str, Any]:
    """The report as plain data for the API (rates as fractions, rounded to ``digits``)."""

    def num(value: Value) -> Value:
        return round(value, digits) if isinstance(value, float) else value

    def row(r: Row) -> dict[str, Any]:
        return {"key": r.key, "label": r.label,
                "values": {k: num(v) for k, v in r.current.items()},
                "previous": {k: num(v) for k, v in r.previous.items()},
                "change": {k: {"abs": num(c.abs), "rel": num(c.rel)} for k, c in r.change.items()}}

    return {"start": report.start, "end": report.end, "previous_start": report.previous_start,
            "previous_end": report.previous_end, "by": report.by, "as_of": report.as_of,
            "indicators": [{"key": i.key, "zh": i.zh, "en": i.en, "kind": i.kind} for i in INDICATORS],
            "rows": [row(r) for r in report.rows], "total": row(report.total)}


# --- XLSX ------------------------------------------------------------------------------------

def _cell_value(indicator: Indicator, value: Value) -> Value:
    if value is None:
        return None
    return int(value) if indicator.kind == "count" else float(value)


def _format(indicator: Indicator) -> str:
    return {"count": "0", "rate": "0.0%", "hours": "0.00", "score": "0.00"}[indicator.kind]


def export_xlsx(*, session: Session, report: Report, actor: str, lang: str = "zh-CN", ip: str = "") -> bytes:
    """The report as an XLSX: sheet 1 the figures (a Chinese header row, then an English one),
    sheet 2 the change from the previous period, sheet 3 what the file holds. Audited."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    from shequ.core.iam.service import audit

    zh_dim, en_dim = DIMENSION_LABELS[report.by]
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "考核指标"
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="EEF3FA")
    ws.append([zh_dim, *[i.zh for i in INDICATORS]])
    ws.append([en_dim, *[i.en for i in INDICATORS]])
    shown = report.rows if report.by == "none" else [*report.rows, report.total]
    for r in shown:
        ws.append([r.label, *[_cell_value(i, r.current[i.key]) for i in INDICATORS]])
    for row in ws.iter_rows(min_row=1, max_row=2):
        for cell in row:
            cell.font = bold
            cell.fill = fill
    for col, indicator in enumerate(INDICATORS, start=2):
        for (cell,) in ws.iter_rows(min_row=3, min_col=col, max_col=col):
            cell.number_format = _format(indicator)
        ws.column_dimensions[get_column_letter(col)].width = max(12, len(indicator.en) + 2)
    ws.column_dimensions["A"].width = 24
    ws.freeze_panes = "B3"

    cmp = wb.create_sheet("环比")
    cmp.append([zh_dim, "指标", "本期", "上期", "变化", "变化率"])
    cmp.append([en_dim, "indicator", "current", "previous", "change", "relative change"])
    for r in shown:
        for i in INDICATORS:
            c = r.change[i.key]
            cmp.append([r.label, i.zh, _cell_value(i, r.current[i.key]), _cell_value(i, r.previous[i.key]),
                        c.abs, c.rel])
    for row in cmp.iter_rows(min_row=1, max_row=2):
        for cell in row:
            cell.font = bold
            cell.fill = fill
    for row in cmp.iter_rows(min_row=3):
        indicator = next(i for i in INDICATORS if i.zh == row[1].value)
        for cell in row[2:5]:
            cell.number_format = _format(indicator)
        row[5].number_format = "0.0%"
    cmp.column_dimensions["A"].width = 24
    cmp.column_dimensions["B"].width = 22
    cmp.freeze_panes = "A3"

    about = wb.create_sheet("说明")
    for line in (
        ("统计区间 period", f"{report.start.isoformat()} – {report.end.isoformat()}（不含结束日 end excluded）"),
        ("上期 previous period", f"{report.previous_start.isoformat()} – {report.previous_end.isoformat()}"),
        ("分组 grouped by", f"{zh_dim} {en_dim}"),
        ("超期判断时点 overdue judged at", report.as_of.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")),
        ("口径 definitions", "docs/kpi.md"),
    ):
        about.append(list(line))
    about.column_dimensions["A"].width = 30
    about.column_dimensions["B"].width = 50

    buf = io.BytesIO()
    wb.save(buf)
    audit(session=session, actor=actor, action="export", target="kpi", ip=ip,
          detail={"start": report.start.isoformat(), "end": report.end.isoformat(), "by": report.by,
                  "rows": len(report.rows), "lang": lang})
    return buf.getvalue()
