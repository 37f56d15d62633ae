"""Routes of the indicators (KPIs): the API and the page, with XLSX export."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from shequ.core.cases import kpi
from shequ.core.cases.calendar import SHANGHAI
from shequ.core.errors import FieldError
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.web import i18n
from shequ.web.deps import SessionDep, client_ip, lang_of, render, require
from shequ.web.records import BadParam
from shequ.web.security import csrf_protect

api = APIRouter(tags=["kpi"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ApiKpiReader = Annotated[User, Depends(require(iam.KPI_READ, api=True))]
PageKpiReader = Annotated[User, Depends(require(iam.KPI_READ, api=False))]
Dimension = Literal["department", "grid", "committee", "source", "class", "none"]

i18n.extend({
    "kpi.title": ("考核指标", "Indicators"),
    "kpi.start": ("开始日期", "From"),
    "kpi.end": ("结束日期（不含）", "To (excluded)"),
    "kpi.by": ("分组", "Group by"),
    "kpi.apply": ("统计", "Compute"),
    "kpi.export": ("导出 XLSX", "Export XLSX"),
    "kpi.period": ("统计 {start} 至 {end}（不含）上报的案件；与上期 {prev_start} 至 {prev_end} 比较；"
                   "超期按 {as_of} 判断。",
                   "Cases reported from {start} to {end} (excluded), compared with {prev_start} to "
                   "{prev_end}; overdue judged at {as_of}."),
    "kpi.this_month": ("本月", "This month"),
    "kpi.last_month": ("上月", "Last month"),
    "kpi.last_30": ("近 30 天", "Last 30 days"),
    "kpi.this_year": ("本年", "This year"),
    "kpi.empty": ("该区间没有上报的案件。", "No cases were reported in this period."),
    "kpi.change_hint": ("▲▼ 为与上期相比的变化；比率的变化以百分点（pt）计。",
                        "▲▼ show the change from the previous period; rates change in percentage points (pt)."),
    "kpi.previous": ("上期", "previous"),
})


# --- schemas ---------------------------------------------------------------------------------

class IndicatorOut(BaseModel):
    key: str
    zh: str
    en: str
    kind: str = Field(description="count | rate (a fraction, 0.8 = 80%) | hours | score (1–5)")


class ChangeOut(BaseModel):
    abs: float | None = Field(description="current − previous")
    rel: float | None = Field(description="(current − previous) / previous; null when previous is 0 or null")


class KpiRowOut(BaseModel):
    key: str | None = Field(description="the group: department name, place id, source, class code; "
                                        "null for cases without it (not dispatched, not placed)")
    label: str
    values: dict[str, int | float | None]
    previous: dict[str, int | float | None]
    change: dict[str, ChangeOut]


class KpiOut(BaseModel):
    start: dt.date
    end: dt.date = Field(description="excluded: the period is [start, end)")
    previous_start: dt.date
    previous_end: dt.date
    by: str
    as_of: dt.datetime = Field(description="when open cases are judged overdue: the end or now, whichever is earlier")
    indicators: list[IndicatorOut]
    rows: list[KpiRowOut]
    total: KpiRowOut


# --- helpers ---------------------------------------------------------------------------------

def _report(session: Any, request: Request, start: dt.date | None, end: dt.date | None, by: str) -> kpi.Report:
    default_start, default_end = kpi.default_period()
    return kpi.indicators(session=session, start=start or default_start, end=end or default_end, by=by,
                          lang=lang_of(request))


def _xlsx(session: Any, request: Request, user: User, report: kpi.Report) -> Response:
    lang = lang_of(request)
    data = kpi.export_xlsx(session=session, report=report, actor=user.username, lang=lang, ip=client_ip(request))
    name = f"考核指标_{report.start.isoformat()}_{report.end.isoformat()}.xlsx"
    return Response(data, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"kpi-{report.start.isoformat()}.xlsx\"; "
                               f"filename*=UTF-8''{quote(name)}"})


def _date(field: str, raw: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadParam(field, f"应为日期 YYYY-MM-DD，收到 {raw[:20]!r}（must be a date）") from None


# --- API -------------------------------------------------------------------------------------

DESCRIPTION = ("The indicators of the cases reported in [start, end) (Asia/Shanghai dates; default this "
               "month) per group of `by`, beside the previous period of equal length. Definitions: docs/kpi.md. "
               "A user scoped to some areas counts only the cases of their areas.")


@api.get("/kpi", response_model=KpiOut, summary="Indicators (考核指标) of the case loop", description=DESCRIPTION)
def get_kpi(request: Request, session: SessionDep, user: ApiKpiReader,
            start: Annotated[dt.date | None, Query(description="first day (YYYY-MM-DD)")] = None,
            end: Annotated[dt.date | None, Query(description="day after the last (YYYY-MM-DD)")] = None,
            by: Dimension = "none") -> Any:
    return kpi.as_dict(_report(session, request, start, end, by))


@api.get("/kpi.xlsx", summary="The indicators as XLSX (same parameters; audited as an export)",
         description=DESCRIPTION, responses={200: {"content": {XLSX: {}}}})
def get_kpi_xlsx(request: Request, session: SessionDep, user: ApiKpiReader,
                 start: Annotated[dt.date | None, Query()] = None,
                 end: Annotated[dt.date | None, Query()] = None,
                 by: Dimension = "none") -> Response:
    return _xlsx(session, request, user, _report(session, request, start, end, by))


# --- the page --------------------------------------------------------------------------------

def _number(indicator: kpi.Indicator, value: kpi.Value) -> str:
    if value is None:
        return "—"
    if indicator.kind == "count":
        return f"{int(value):,}"
    if indicator.kind == "rate":
        return f"{value * 100:.1f}%"
    return f"{value:.2f}"


def _change(indicator: kpi.Indicator, change: kpi.Change) -> tuple[str, str]:
    """(arrow, text) of a change: ▲ up, ▼ down, ＝ unchanged, nothing when unknown."""
    if change.abs is None:
        return "", ""
    arrow = "▲" if change.abs > 0 else "▼" if change.abs < 0 else "＝"
    if indicator.kind == "count":
        text = f"{change.abs:+,.0f}"
        if change.rel is not None:
            text += f" ({change.rel * 100:+.0f}%)"
    elif indicator.kind == "rate":
        text = f"{change.abs * 100:+.1f}pt"
    else:
        text = f"{change.abs:+.2f}"
    return arrow, text


def _presets(today: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    month = today.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    last_month = (month - dt.timedelta(days=1)).replace(day=1)
    tomorrow = today + dt.timedelta(days=1)
    return [("kpi.this_month", month, next_month), ("kpi.last_month", last_month, month),
            ("kpi.last_30", tomorrow - dt.timedelta(days=30), tomorrow),
            ("kpi.this_year", today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1))]


@pages.get("/kpi")
def kpi_page(request: Request, session: SessionDep, user: PageKpiReader,
             start: Annotated[str, Query(max_length=20)] = "", end: Annotated[str, Query(max_length=20)] = "",
             by: Annotated[str, Query(max_length=20)] = "department") -> Response:
    lang = lang_of(request)
    error = ""
    try:
        report = _report(session, request, _date("start", start), _date("end", end), by)
    except FieldError as exc:  # a bad parameter, or a period the indicators refuse
        error = str(exc)
        by = by if by in kpi.DIMENSIONS else "department"
        report = _report(session, request, None, None, by)
    rows = []
    for r in (*report.rows, *([report.total] if report.by != "none" else [])):
        cells = []
        for i in kpi.INDICATORS:
            arrow, text = _change(i, r.change[i.key])
            cells.append({"value": _number(i, r.current[i.key]), "arrow": arrow, "change": text,
                          "previous": _number(i, r.previous[i.key])})
        rows.append({"label": r.label, "total": r is report.total, "cells": cells})
    query = {"start": report.start.isoformat(), "end": report.end.isoformat(), "by": report.by}
    today = dt.datetime.now(dt.UTC).astimezone(SHANGHAI).date()
    presets = [(key, urlencode({"start": a.isoformat(), "end": b.isoformat(), "by": report.by}))
               for key, a, b in _presets(today)]
    dimensions = [(d, pair[0] if lang.startswith("zh") else pair[1]) for d, pair in kpi.DIMENSION_LABELS.items()]
    return render(request, "kpi/index.html", report=report, rows=rows, error=error,
                  indicators=[(i.key, i.name(lang)) for i in kpi.INDICATORS], dimensions=dimensions,
                  presets=presets, xlsx_query=urlencode(query),
                  empty=not report.total.current["reported"] and not report.total.previous["reported"],
                  dimension_label=dict(dimensions)[report.by],
                  as_of=report.as_of.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"))


@pages.get("/kpi.xlsx")
def kpi_xlsx_page(request: Request, session: SessionDep, user: PageKpiReader,
                  start: Annotated[str, Query(max_length=20)] = "", end: Annotated[str, Query(max_length=20)] = "",
                  by: Annotated[str, Query(max_length=20)] = "none") -> Response:
    report = _report(session, request, _date("start", start), _date("end", end), by)
    return _xlsx(session, request, user, report)
