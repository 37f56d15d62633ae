"""Working time: deadlines in working hours on the Chinese public-holiday calendar.

Working days come from ``chinese_calendar`` (official holidays and the weekend days made
working days, 调休); for a year it does not know, Monday to Friday are working days. Working
hours are periods of the local (Asia/Shanghai) day, by default 08:30–12:00 and 13:00–17:30
(8 hours), set per tenant in ``tenant.settings["working_hours"]`` as ``[["08:30", "12:00"], …]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_PERIODS = (("08:30", "12:00"), ("13:00", "17:30"))


@lru_cache(maxsize=4096)
def is_workday(day: dt.date) -> bool:
    """A working day by the official calendar; Monday–Friday for years it does not know."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= 24 * 60:
        raise ValueError(f"working hours: {hhmm!r} is not a time of day")
    return value


@dataclass(frozen=True)
class WorkCalendar:
    """Working periods of a working day, in minutes after local midnight; ``every_day`` for a
    duty that knows no holidays (a 24-hour operations centre)."""

    periods: tuple[tuple[int, int], ...]
    every_day: bool = False

    @classmethod
    def of(cls, periods: Sequence[Sequence[str]] | None = None, every_day: bool = False) -> WorkCalendar:
        spans = tuple(sorted((_minutes(a), _minutes(b)) for a, b in (periods or DEFAULT_PERIODS)))
        if not spans or any(a >= b for a, b in spans) or any(
                spans[i][1] > spans[i + 1][0] for i in range(len(spans) - 1)):
            raise ValueError("working hours: periods must be non-empty, ordered and not overlap")
        return cls(spans, every_day)

    @property
    def hours_per_day(self) -> float:
        return sum(b - a for a, b in self.periods) / 60

    def _day_spans(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        if not self.every_day and not is_workday(day):
            return []
        midnight = dt.datetime.combine(day, dt.time(), SHANGHAI)
        return [(midnight + dt.timedelta(minutes=a), midnight + dt.timedelta(minutes=b))
                for a, b in self.periods]

    def add(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The moment ``hours`` working hours after ``start`` (a zone-aware time; UTC back)."""
        if start.tzinfo is None:
            raise ValueError("a zone-aware time is needed")
        left = dt.timedelta(hours=hours)
        local = start.astimezone(SHANGHAI)
        day = local.date()
        if left <= dt.timedelta(0):
            return start.astimezone(dt.UTC)
        for _ in range(3700):  # ten years of days at most
            for a, b in self._day_spans(day):
                begin = max(a, local)
                if begin >= b:
                    continue
                if begin + left <= b:
                    return (begin + left).astimezone(dt.UTC)
                left -= b - begin
            day += dt.timedelta(days=1)
        raise ValueError("deadline beyond ten years")

    def between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Working hours from ``start`` to ``end`` (negative when end is earlier)."""
        if end < start:
            return -self.between(end, start)
        a_local, b_local = start.astimezone(SHANGHAI), end.astimezone(SHANGHAI)
        total = dt.timedelta(0)
        day = a_local.date()
        while day <= b_local.date():
            for a, b in self._day_spans(day):
                lo, hi = max(a, a_local), min(b, b_local)
                if hi > lo:
                    total += hi - lo
            day += dt.timedelta(days=1)
        return total.total_seconds() / 3600


def calendar_for(settings: dict[str, object] | None, department: str | None = None) -> WorkCalendar:
    """The calendar of a tenant (its ``working_hours`` setting, or the default), or of one of its
    departments where ``department_calendars`` names it, e.g. a 24-hour duty:
    ``{"城运中心": {"periods": [["00:00", "24:00"]], "every_day": true}}``."""
    settings = settings or {}
    own = (settings.get("department_calendars") or {}) if department else {}
    entry = own.get(department) if isinstance(own, dict) else None
    if isinstance(entry, dict):
        return WorkCalendar.of(entry.get("periods"), bool(entry.get("every_day", False)))
    periods = settings.get("working_hours")
    return WorkCalendar.of(periods if isinstance(periods, list) else None)
