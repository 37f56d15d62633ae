"""Deadlines on a frozen clock: extension by working hours, suspension stops the clock, and the
overdue sweep escalates level by level with a ``case.escalated`` event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from shequ.core import events
from shequ.core.cases import service
from shequ.core.cases.calendar import SHANGHAI as SHANGHAI_TZ
from shequ.core.cases.models import Case
from tests.factories import place_tree

UTC = dt.UTC


def shanghai(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A time in November 2026, given in Shanghai (UTC+8), as UTC."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.timezone(dt.timedelta(hours=8))).astimezone(UTC)


@pytest.fixture
def case(session: Session) -> Case:
    tree = place_tree(session)
    # Friday 27 November 2026, 09:00: a missing manhole cover (8 working hours to handle)
    return service.open_case(session=session, title="井盖缺失", class_code="C0101", source="patrol",
                             actor="g1", place_id=tree.building.id, now=shanghai(27, 9), dispatch=True)


@pytest.fixture
def escalations() -> Iterator[list[events.Event]]:
    seen: list[events.Event] = []

    def keep(_session: Session, event: events.Event) -> None:
        seen.append(event)

    events.listen("case.escalated", keep)
    yield seen
    events.unlisten("case.escalated", keep)


def test_dispatch_sets_the_deadline_in_working_hours(case: Case) -> None:
    # 7.5 h on Friday (09:00–12:00, 13:00–17:30), 0.5 h on Monday from 08:30
    assert case.due_at == shanghai(30, 9) and case.stage_due_at == shanghai(30, 9)


def test_extension_moves_the_deadline_by_working_hours(session: Session, case: Case) -> None:
    service.act(session=session, case=case, action="extend", actor="d", hours=4, note="等待配件",
                now=shanghai(27, 10))
    # Monday 09:00 + 4 working hours: 09:00–12:00 and 13:00–14:00
    assert case.stage_due_at == shanghai(30, 14) and case.due_at == shanghai(30, 14)
    assert case.extension_count == 1


def test_suspension_stops_the_clock(session: Session, case: Case) -> None:
    # suspended on Friday at 16:30: 1 h left on Friday, 0.5 h on Monday -> 1.5 h remain
    service.act(session=session, case=case, action="suspend", actor="d", note="等待产权单位", now=shanghai(27, 16, 30))
    with pytest.raises(service.CaseError) as refused:
        service.act(session=session, case=case, action="handle", actor="x", now=shanghai(30, 9))
    assert refused.value.field == "action"
    assert "handle" not in service.allowed_actions(case) and "resume" in service.allowed_actions(case)
    # on Monday afternoon, past the old deadline, the sweep leaves it alone: the clock stands still
    assert service.sweep_overdue(session=session, now=shanghai(30, 15)) == []
    # resumed on Wednesday 2 December 10:00: the 1.5 h remaining run from then
    service.act(session=session, case=case, action="resume", actor="d",
                now=dt.datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
    assert case.stage_due_at == dt.datetime(2026, 12, 2, 3, 30, tzinfo=UTC)  # 11:30 Shanghai
    assert case.due_at == case.stage_due_at and case.suspended_at is None
    assert case.suspended_minutes == int((dt.datetime(2026, 12, 2, 2, 0, tzinfo=UTC) - shanghai(27, 16, 30))
                                         .total_seconds() // 60)


def test_the_sweep_escalates_level_by_level(session: Session, case: Case,
                                            escalations: list[events.Event]) -> None:
    assert service.sweep_overdue(session=session, now=shanghai(30, 8, 45)) == []  # before the deadline
    # Monday 10:00: one working hour late -> level 1
    assert service.sweep_overdue(session=session, now=shanghai(30, 10)) == [case]
    assert case.escalation_level == 1 and case.overdue_at == shanghai(30, 10)
    # still level 1 an hour later: nothing new
    assert service.sweep_overdue(session=session, now=shanghai(30, 11)) == []
    # 14:30: 4.5 working hours late -> level 2
    assert service.sweep_overdue(session=session, now=shanghai(30, 14, 30)) == [case]
    assert case.escalation_level == 2
    steps = [s for s in service.timeline(session=session, case_id=case.id) if s.action == "escalate"]
    assert [s.data["level"] for s in steps] == [1, 2] and all(s.actor == "system" for s in steps)
    assert [e.payload["escalation_level"] for e in escalations] == [1, 2]
    assert escalations[0].payload["case_id"] == case.id and escalations[0].name == "case.escalated"
    # handled late: not on time, and a closed case is never swept again
    for action in ("handle", "feed_back", "verify", "close"):
        service.act(session=session, case=case, action=action, actor="x", now=shanghai(30, 15))
    assert case.handled_on_time is False and case.closed_on_time is False
    assert service.sweep_overdue(session=session, now=dt.datetime(2026, 12, 31, tzinfo=UTC)) == []


def test_a_hotline_time_limit_earlier_than_the_class_deadline_binds(session) -> None:
    tree = place_tree(session)
    friday_9 = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)  # 09:00 Shanghai
    limit = "2026-11-27T11:00:00+08:00"  # the 12345 centre wants it handled by 11:00
    case = service.open_case(session=session, title="噪音", class_code="E0503", source="hotline", actor="d",
                             place_id=tree.building.id, register=True, now=friday_9,
                             attrs={"hotline": {"limit_at": limit}})
    service.act(session=session, case=case, action="dispatch", actor="d", now=friday_9)
    assert case.due_at == dt.datetime.fromisoformat(limit)  # not 4 working hours (14:00)
    other = service.open_case(session=session, title="噪音", class_code="E0503", source="hotline", actor="d",
                              place_id=tree.building.id, register=True, now=friday_9,
                              attrs={"hotline": {"limit_at": "2026-12-04T17:00:00+08:00"}})
    service.act(session=session, case=other, action="dispatch", actor="d", now=friday_9)
    assert other.due_at == dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.UTC)  # 09:00–12:00 and 13:00–14:00


def test_a_department_on_24_hour_duty_has_deadlines_around_the_clock(session) -> None:
    tenant = session.info["tenant"]
    tenant.settings = {"department_calendars": {"城运中心": {"periods": [["00:00", "24:00"]], "every_day": True}}}
    session.flush()
    tree = place_tree(session)
    sunday_3am = dt.datetime(2026, 11, 29, 3, 0, tzinfo=SHANGHAI_TZ)
    fire = service.open_case(session=session, title="烟感报警", class_code="E0401", source="alarm", actor="r",
                             place_id=tree.building.id, priority="urgent", dispatch=True, now=sunday_3am)
    assert fire.department == "城运中心" and fire.due_at == sunday_3am + dt.timedelta(minutes=30)
    # other departments keep office hours on the holiday calendar: Monday 08:30 + 8 h → 17:30
    cover = service.open_case(session=session, title="井盖缺失", class_code="C0101", source="patrol", actor="g",
                              place_id=tree.building.id, dispatch=True, now=sunday_3am)
    assert cover.department == "城建中心"
    assert cover.due_at == dt.datetime(2026, 11, 30, 17, 30, tzinfo=SHANGHAI_TZ)
