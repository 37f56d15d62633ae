"""The indicators over a hand-built week of cases: every figure is derived by hand below.

The week under review is Monday 16 – Sunday 22 November 2026 (Asia/Shanghai), the period
[2026-11-16, 2026-11-23); the previous period is the week before, [2026-11-09, 2026-11-16). No
public holiday falls in either; working hours are 08:30–12:00 and 13:00–17:30.

Current week (c1…c10), each case's figures:

| case | class / department | grid | source | what happens | to dispatch | to close | sat. |
|------|--------------------|------|--------|--------------|-------------|----------|------|
| c1 | C0101 城建中心 | A | patrol | Mon 09:00 reported, 09:30 dispatched, handled on time, closed 15:30, rated 5 | 0.5 h | 6.5 h | 5 |
| c2 | C0101 城建中心 | B | patrol | Mon 10:00, 11:00 dispatched, handled, reworked Tue 09:00, handled again Tue 10:00 (due Tue 11:00), closed Tue 11:00, rated 3 | 1 h | 25 h | 3 |
| c3 | E0503 城运中心 | A | patrol | Tue 09:00 dispatched at once (due 14:00), sweep at 15:00 finds it overdue, handled 16:00 late, closed 17:00 | 0 h | 8 h | – |
| c4 | E0503 城运中心 | B | patrol | Wed 09:00, 10:00 dispatched, extended 8 h (due Thu 15:00), handled Thu 10:00, closed Fri 09:00 | 1 h | 48 h | – |
| c5 | C0101 (none) | A | patrol | Wed 14:00 reported, voided 14:30 | – | – | – |
| c6 | E0503 城运中心 | A | patrol | Thu 09:00 dispatched at once (due 14:00), never handled: open and past its deadline | 0 h | – | – |
| c7 | C0101 (none) | B | patrol | Fri 09:00 reported, registered 10:00 (stage due 11:00), never dispatched: overdue | – | – | – |
| c8 | C0101 (none) | A | patrol | Sun 20:00 reported; its stage is due Mon 23 09:30, after the period: not overdue | – | – | – |
| c9 | E0503 城运中心 | B | patrol | Thu 14:00, 14:30 dispatched (due Fri 09:30), handled, reworked, handled Fri 09:00, closed Fri 10:00, rated 4 | 0.5 h | 20 h | 4 |
| c10 | E0503 城运中心 | A | resident | Sat 10:00 dispatched at once (due Mon 23 13:30): open, not overdue | 0 h | – | – |

Previous week: p1 (C0101 城建中心, grid A: Mon 09:00, dispatched 10:00, handled on time, closed
13:00, rated 4) and p2 (E0503 城运中心, grid B: Tue 09:00 dispatched at once, swept overdue at
15:00, handled late, closed Wed 09:00). x1 is reported at Mon 23 00:00 — the end, excluded.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.cases import kpi
from shequ.core.cases import service as cases
from shequ.core.cases.calendar import SHANGHAI
from shequ.core.cases.models import Case
from shequ.core.iam.models import AuditLog
from shequ.core.iam.scope import Scope
from shequ.db import bind_context
from tests.factories import Tree, place_tree

START, END = dt.date(2026, 11, 16), dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 30, 4, 0, tzinfo=dt.UTC)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment of November 2026 in Shanghai, as UTC."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).astimezone(dt.UTC)


def _report(session: Session, tree: Tree, class_code: str, when: dt.datetime, source: str = "patrol") -> Case:
    return cases.open_case(session=session, title=f"{class_code} 测试", class_code=class_code, source=source,
                           actor="test", place_id=tree.building.id, now=when)


def _do(session: Session, case: Case, *steps: tuple[Any, ...]) -> Case:
    for action, when, *extra in steps:
        cases.act(session=session, case=case, action=action, actor="test", now=when, **(extra[0] if extra else {}))
    return case


def _close(session: Session, case: Case, when: dt.datetime) -> None:
    _do(session, case, ("feed_back", when - dt.timedelta(minutes=20)), ("verify", when - dt.timedelta(minutes=10)),
        ("close", when))


@pytest.fixture
def week(session: Session) -> dict[str, Any]:
    a = place_tree(session, tag="A")
    b = place_tree(session, tag="B", lon=121.45, committee_name="南街居委会")
    s = session
    # previous week
    p1 = _do(s, _report(s, a, "C0101", at(9, 9)), ("register", at(9, 10)), ("dispatch", at(9, 10)),
             ("handle", at(9, 11)))
    _close(s, p1, at(9, 13))
    _do(s, p1, ("evaluate", at(9, 14), {"satisfaction": 4}))
    p2 = _do(s, _report(s, b, "E0503", at(10, 9)), ("register", at(10, 9)), ("dispatch", at(10, 9)))
    cases.sweep_overdue(session=s, now=at(10, 15))
    _do(s, p2, ("handle", at(10, 16)))
    _close(s, p2, at(11, 9))
    # the week under review
    c1 = _do(s, _report(s, a, "C0101", at(16, 9)), ("register", at(16, 9, 30)), ("dispatch", at(16, 9, 30)),
             ("handle", at(16, 15)))
    _close(s, c1, at(16, 15, 30))
    _do(s, c1, ("evaluate", at(16, 16), {"satisfaction": 5}))
    c2 = _do(s, _report(s, b, "C0101", at(16, 10)), ("register", at(16, 11)), ("dispatch", at(16, 11)),
             ("handle", at(16, 16)), ("feed_back", at(16, 16, 10)), ("verify", at(16, 16, 20)),
             ("rework", at(17, 9)), ("handle", at(17, 10)))
    _close(s, c2, at(17, 11))
    _do(s, c2, ("evaluate", at(17, 11, 30), {"satisfaction": 3}))
    c3 = _do(s, _report(s, a, "E0503", at(17, 9)), ("register", at(17, 9)), ("dispatch", at(17, 9)))
    cases.sweep_overdue(session=s, now=at(17, 15))
    _do(s, c3, ("handle", at(17, 16)))
    _close(s, c3, at(17, 17))
    c4 = _do(s, _report(s, b, "E0503", at(18, 9)), ("register", at(18, 10)), ("dispatch", at(18, 10)),
             ("extend", at(18, 11), {"hours": 8, "note": "等配件"}), ("handle", at(19, 10)))
    _close(s, c4, at(20, 9))
    c5 = _do(s, _report(s, a, "C0101", at(18, 14)), ("void", at(18, 14, 30)))
    c6 = _do(s, _report(s, a, "E0503", at(19, 9)), ("register", at(19, 9)), ("dispatch", at(19, 9)))
    c7 = _do(s, _report(s, b, "C0101", at(20, 9)), ("register", at(20, 10)))
    c8 = _report(s, a, "C0101", at(22, 20))
    c9 = _do(s, _report(s, b, "E0503", at(19, 14)), ("register", at(19, 14, 30)), ("dispatch", at(19, 14, 30)),
             ("handle", at(19, 16)), ("feed_back", at(19, 16, 10)), ("rework", at(19, 16, 20)),
             ("handle", at(20, 9)))
    _close(s, c9, at(20, 10))
    _do(s, c9, ("evaluate", at(20, 10, 30), {"satisfaction": 4}))
    c10 = _do(s, _report(s, a, "E0503", at(21, 10), source="resident"), ("register", at(21, 10)),
              ("dispatch", at(21, 10)))
    x1 = _report(s, a, "C0101", at(23, 0))
    return {"a": a, "b": b, "p1": p1, "p2": p2, "c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5, "c6": c6,
            "c7": c7, "c8": c8, "c9": c9, "c10": c10, "x1": x1}


def _approx(expected: dict[str, Any]) -> dict[str, Any]:
    return {k: (pytest.approx(v, abs=1e-6) if isinstance(v, float) else v) for k, v in expected.items()}


# --- the figures, derived by hand from the table above ------------------------------------

TOTAL_NOW = {
    "reported": 10,                      # c1 … c10 (x1 is at the end, excluded)
    "registered": 8,                     # all but c5 (void) and c8 (only reported)
    "void": 1,                           # c5
    "dispatched": 7,                     # c1 c2 c3 c4 c6 c9 c10
    "handled": 5,                        # c1 c2 c3 c4 c9
    "handled_on_time": 4,                # c3 was handled late
    "on_time_handling_rate": 4 / 5,
    "overdue": 3,                        # c3 (swept), c6 and c7 (open, past their deadline at the end)
    "closed": 5,                         # c1 c2 c3 c4 c9 (c1, c2, c9 evaluated)
    "closure_rate": 5 / 8,               # closed / registered
    "on_time_closure_rate": 4 / 5,       # c3 closed after being overdue
    "rework_rate": 2 / 7,                # c2 c9 of 7 dispatched
    "extension_rate": 1 / 7,             # c4
    "mean_hours_to_dispatch": 3 / 7,     # (0.5 + 1 + 0 + 1 + 0 + 0.5 + 0) / 7
    "mean_hours_to_close": 21.5,         # (6.5 + 25 + 8 + 48 + 20) / 5
    "satisfaction": 4.0,                 # (5 + 3 + 4) / 3
}
TOTAL_BEFORE = {
    "reported": 2, "registered": 2, "void": 0, "dispatched": 2, "handled": 2,
    "handled_on_time": 1,                # p2 late
    "on_time_handling_rate": 0.5,
    "overdue": 1,                        # p2 (swept)
    "closed": 2, "closure_rate": 1.0, "on_time_closure_rate": 0.5,
    "rework_rate": 0.0, "extension_rate": 0.0,
    "mean_hours_to_dispatch": 0.5,       # (1 + 0) / 2
    "mean_hours_to_close": 14.0,         # (4 + 24) / 2
    "satisfaction": 4.0,                 # p1 only
}
CITY_WORKS_NOW = {  # 城建中心: c1, c2
    "reported": 2, "registered": 2, "void": 0, "dispatched": 2, "handled": 2, "handled_on_time": 2,
    "on_time_handling_rate": 1.0, "overdue": 0, "closed": 2, "closure_rate": 1.0, "on_time_closure_rate": 1.0,
    "rework_rate": 0.5,                  # c2
    "extension_rate": 0.0,
    "mean_hours_to_dispatch": 0.75,      # (0.5 + 1) / 2
    "mean_hours_to_close": 15.75,        # (6.5 + 25) / 2
    "satisfaction": 4.0,                 # (5 + 3) / 2
}
OPERATIONS_NOW = {  # 城运中心: c3, c4, c6, c9, c10
    "reported": 5, "registered": 5, "void": 0, "dispatched": 5,
    "handled": 3,                        # c3 c4 c9
    "handled_on_time": 2,                # c4 c9
    "on_time_handling_rate": 2 / 3,
    "overdue": 2,                        # c3 c6
    "closed": 3, "closure_rate": 3 / 5,
    "on_time_closure_rate": 2 / 3,       # c3 late
    "rework_rate": 1 / 5,                # c9
    "extension_rate": 1 / 5,             # c4
    "mean_hours_to_dispatch": 0.3,       # (0 + 1 + 0 + 0.5 + 0) / 5
    "mean_hours_to_close": 76 / 3,       # (8 + 48 + 20) / 3
    "satisfaction": 4.0,                 # c9 only
}
NOT_DISPATCHED_NOW = {  # c5, c7, c8 have no department yet
    "reported": 3, "registered": 1, "void": 1, "dispatched": 0, "handled": 0, "handled_on_time": 0,
    "on_time_handling_rate": None, "overdue": 1,  # c7
    "closed": 0, "closure_rate": 0.0,    # 0 of 1 registered
    "on_time_closure_rate": None, "rework_rate": None, "extension_rate": None,
    "mean_hours_to_dispatch": None, "mean_hours_to_close": None, "satisfaction": None,
}
CITY_WORKS_BEFORE = {  # p1
    "reported": 1, "registered": 1, "void": 0, "dispatched": 1, "handled": 1, "handled_on_time": 1,
    "on_time_handling_rate": 1.0, "overdue": 0, "closed": 1, "closure_rate": 1.0, "on_time_closure_rate": 1.0,
    "rework_rate": 0.0, "extension_rate": 0.0, "mean_hours_to_dispatch": 1.0, "mean_hours_to_close": 4.0,
    "satisfaction": 4.0,
}
OPERATIONS_BEFORE = {  # p2
    "reported": 1, "registered": 1, "void": 0, "dispatched": 1, "handled": 1, "handled_on_time": 0,
    "on_time_handling_rate": 0.0, "overdue": 1, "closed": 1, "closure_rate": 1.0, "on_time_closure_rate": 0.0,
    "rework_rate": 0.0, "extension_rate": 0.0, "mean_hours_to_dispatch": 0.0, "mean_hours_to_close": 24.0,
    "satisfaction": None,
}


def test_the_whole_subdistrict_by_hand(session: Session, week: dict[str, Any]) -> None:
    report = kpi.indicators(session=session, start=START, end=END, by="none", now=NOW)
    assert (report.previous_start, report.previous_end) == (dt.date(2026, 11, 9), START)
    assert report.as_of == at(23, 0)  # the end, which is before now
    assert len(report.rows) == 1
    row = report.rows[0]
    assert row.current == _approx(TOTAL_NOW)
    assert row.previous == _approx(TOTAL_BEFORE)
    assert report.total.current == _approx(TOTAL_NOW)
    # the change from the previous week
    assert (row.change["reported"].abs, row.change["reported"].rel) == (8, 4.0)        # 10 vs 2
    assert (row.change["void"].abs, row.change["void"].rel) == (1, None)                # from 0: no relative change
    assert row.change["overdue"].abs == 2 and row.change["overdue"].rel == 2.0          # 3 vs 1
    assert row.change["on_time_handling_rate"].abs == pytest.approx(0.3)                # 0.8 − 0.5
    assert row.change["on_time_handling_rate"].rel == pytest.approx(0.6)                # 0.3 / 0.5
    assert row.change["closure_rate"].abs == pytest.approx(-0.375)                      # 0.625 − 1
    assert row.change["rework_rate"].rel is None                                        # from 0
    assert row.change["mean_hours_to_dispatch"].abs == pytest.approx(3 / 7 - 0.5)
    assert row.change["mean_hours_to_close"].abs == pytest.approx(7.5)                  # 21.5 − 14
    assert row.change["mean_hours_to_close"].rel == pytest.approx(7.5 / 14)
    assert row.change["satisfaction"].abs == pytest.approx(0.0)


def test_by_department_by_hand(session: Session, week: dict[str, Any]) -> None:
    report = kpi.indicators(session=session, start=START, end=END, by="department", now=NOW)
    # most cases first; the cases not yet dispatched last
    assert [(r.key, r.label) for r in report.rows] == [("城运中心", "城运中心"), ("城建中心", "城建中心"),
                                                       (None, "未派遣")]
    operations, city_works, undispatched = report.rows
    assert operations.current == _approx(OPERATIONS_NOW)
    assert operations.previous == _approx(OPERATIONS_BEFORE)
    assert city_works.current == _approx(CITY_WORKS_NOW)
    assert city_works.previous == _approx(CITY_WORKS_BEFORE)
    assert undispatched.current == _approx(NOT_DISPATCHED_NOW)
    assert undispatched.previous["reported"] == 0 and undispatched.previous["closure_rate"] is None
    assert report.total.current == _approx(TOTAL_NOW)
    assert report.total.previous == _approx(TOTAL_BEFORE)
    # changes: 城建中心 2 vs 1, 城运中心 5 vs 1
    assert (city_works.change["reported"].abs, city_works.change["reported"].rel) == (1, 1.0)
    assert city_works.change["mean_hours_to_close"].abs == pytest.approx(11.75)        # 15.75 − 4
    assert city_works.change["mean_hours_to_dispatch"].rel == pytest.approx(-0.25)     # (0.75 − 1) / 1
    assert (operations.change["reported"].abs, operations.change["reported"].rel) == (4, 4.0)
    assert operations.change["on_time_handling_rate"].abs == pytest.approx(2 / 3)
    assert operations.change["on_time_handling_rate"].rel is None                       # from 0
    assert operations.change["satisfaction"].abs is None                                # no rating before
    assert undispatched.change["reported"].rel is None


def test_other_dimensions_count_and_name_their_groups(session: Session, week: dict[str, Any]) -> None:
    a, b = week["a"], week["b"]
    by_grid = kpi.indicators(session=session, start=START, end=END, by="grid", now=NOW)
    # grid A: c1 c3 c5 c6 c8 c10; grid B: c2 c4 c7 c9
    assert [(r.key, r.label, r.current["reported"]) for r in by_grid.rows] == [
        (str(a.grid.id), "第A网格", 6), (str(b.grid.id), "第B网格", 4)]
    assert by_grid.rows[1].current["overdue"] == 1  # c7
    by_committee = kpi.indicators(session=session, start=START, end=END, by="committee", now=NOW, lang="en")
    assert [(r.label, r.current["reported"]) for r in by_committee.rows] == [("北街居委会", 6), ("南街居委会", 4)]
    assert by_committee.total.label == "total"
    by_source = kpi.indicators(session=session, start=START, end=END, by="source", now=NOW)
    assert [(r.label, r.current["reported"], r.previous["reported"]) for r in by_source.rows] == [
        ("网格巡查", 9, 2), ("居民上报", 1, 0)]
    by_class = kpi.indicators(session=session, start=START, end=END, by="class", now=NOW)
    # C0101: c1 c2 c5 c7 c8; E0503: c3 c4 c6 c9 c10 (equal: the previous period decides, then the name)
    assert [(r.key, r.current["reported"]) for r in by_class.rows] == [("C0101", 5), ("E0503", 5)]
    assert by_class.rows[0].label == "C0101 井盖破损或缺失"


def test_a_scoped_session_counts_only_its_areas(session: Session, week: dict[str, Any]) -> None:
    a = week["a"]
    bind_context(session, tenant_id=session.info["tenant_id"], actor="g1", scope=Scope.areas(grids=[a.grid.id]))
    report = kpi.indicators(session=session, start=START, end=END, by="grid", now=NOW)
    assert [(r.label, r.current["reported"]) for r in report.rows] == [("第A网格", 6)]
    assert report.total.current["reported"] == 6 and report.total.previous["reported"] == 1  # p1


def test_overdue_is_judged_at_now_while_the_period_runs(session: Session, week: dict[str, Any]) -> None:
    # on Friday 20 at 10:30 the week is not over: c6 (due Thu 14:00) is past its deadline, c7
    # (registered 10:00, stage due 11:00) is not yet; cases reported later exist but are counted as
    # they stand now (the cohort is fixed by reported_at, the state is today's)
    report = kpi.indicators(session=session, start=START, end=END, now=at(20, 10, 30))
    assert report.as_of == at(20, 10, 30)
    assert report.total.current["overdue"] == 2  # c3 (swept) and c6


def test_bad_periods_name_their_field(session: Session) -> None:
    with pytest.raises(kpi.PeriodError) as bad:
        kpi.indicators(session=session, start=END, end=START)
    assert bad.value.field == "end"
    with pytest.raises(kpi.PeriodError) as bad:
        kpi.indicators(session=session, start=dt.date(1900, 1, 1), end=END)
    assert bad.value.field == "start"
    with pytest.raises(kpi.PeriodError) as bad:
        kpi.indicators(session=session, start=START, end=END, by="weather")
    assert bad.value.field == "by"


def test_no_cases_gives_zeros_and_no_rates(session: Session) -> None:
    report = kpi.indicators(session=session, start=START, end=END, by="none", now=NOW)
    assert report.rows[0].current["reported"] == 0
    assert report.rows[0].current["closure_rate"] is None
    assert report.rows[0].change["reported"].abs == 0 and report.rows[0].change["reported"].rel is None


def test_xlsx_holds_the_same_numbers_and_is_audited(session: Session, week: dict[str, Any]) -> None:
    report = kpi.indicators(session=session, start=START, end=END, by="department", now=NOW)
    data = kpi.export_xlsx(session=session, report=report, actor="leader1")
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["考核指标", "环比", "说明"]
    sheet = book["考核指标"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("责任部门", "上报数", "立案数")
    assert rows[1][:3] == ("department", "reported", "registered")
    keys = [i.key for i in kpi.INDICATORS]
    by_label = {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows[2:]}
    assert set(by_label) == {"城运中心", "城建中心", "未派遣", "合计"}
    for label, expected in (("城运中心", OPERATIONS_NOW), ("城建中心", CITY_WORKS_NOW),
                            ("未派遣", NOT_DISPATCHED_NOW), ("合计", TOTAL_NOW)):
        assert by_label[label] == _approx(expected), label
    # rates are shown as percentages
    rate_col = keys.index("closure_rate") + 2
    assert sheet.cell(row=3, column=rate_col).number_format == "0.0%"
    compare = list(book["环比"].iter_rows(values_only=True))
    reported_total = next(r for r in compare if r[0] == "合计" and r[1] == "上报数")
    assert reported_total[2:] == (10, 2, 8, 4.0)
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "export", AuditLog.target == "kpi")).one()
    assert audit.actor == "leader1" and audit.detail["by"] == "department"
