"""Reading alarms: the filtered, paged list in the session's scope, place names, and the counts
the consoles and the big screen show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.alarms.models import ACTIVE_ACK, ACTIVE_UNACK, SEVERITIES, STATUSES, Alarm
from shequ.core.alarms.schemas import AlarmSummary
from shequ.core.cases.calendar import SHANGHAI
from shequ.core.paging import Page
from shequ.core.places.service import labels

ACTIVE = (ACTIVE_UNACK, ACTIVE_ACK)
PAGE_SIZE = 50


@dataclass
class Filters:
    statuses: list[str]
    severities: list[str]
    type: str | None = None
    scenario: str | None = None
    device_id: int | None = None
    active: bool | None = None
    since: dt.datetime | None = None
    sort: str = "time"


def _where(f: Filters) -> list[Any]:
    cond: list[Any] = []
    if f.statuses:
        cond.append(Alarm.status.in_(f.statuses))
    if f.severities:
        cond.append(Alarm.severity.in_(f.severities))
    if f.type:
        cond.append(Alarm.type == f.type)
    if f.scenario:
        cond.append(Alarm.scenario == f.scenario)
    if f.device_id is not None:
        cond.append(Alarm.device_id == f.device_id)
    if f.active is True:
        cond.append(Alarm.status.in_(ACTIVE))
    elif f.active is False:
        cond.append(Alarm.status.not_in(ACTIVE))
    if f.since is not None:
        cond.append(Alarm.raised_at >= f.since)
    return cond


def find_alarms(*, session: Session, filters: Filters, page: int = 1, size: int = PAGE_SIZE) -> Page:
    """One page of the alarms in the session's scope, newest first (or the most severe first)."""
    cond = _where(filters)
    total = session.scalar(select(func.count(Alarm.id)).where(*cond)) or 0
    order: list[Any] = []
    if filters.sort == "severity":
        order.append(sql_case({s: i for i, s in enumerate(SEVERITIES)}, value=Alarm.severity, else_=len(SEVERITIES)))
    order += [Alarm.raised_at.desc(), Alarm.id.desc()]
    items = list(session.scalars(select(Alarm).where(*cond).order_by(*order)
                                 .offset((page - 1) * size).limit(size)))
    return Page(items=items, total=total, page=page, size=size)


def place_names(session: Session, alarms: Sequence[Alarm]) -> dict[int, str]:
    """The address (or name) of each alarm's place, in one query."""
    return labels(session=session, ids=(a.place_id for a in alarms))


def summary(*, session: Session, now: dt.datetime | None = None) -> AlarmSummary:
    """Counts by status (all), by severity (active ones) and by type (raised today, Asia/Shanghai)."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(SHANGHAI).date()
    midnight = dt.datetime.combine(today, dt.time(), SHANGHAI).astimezone(dt.UTC)
    by_status = dict.fromkeys(STATUSES, 0)
    for status, n in session.execute(select(Alarm.status, func.count(Alarm.id)).group_by(Alarm.status)):
        by_status[status] = n
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for severity, n in session.execute(select(Alarm.severity, func.count(Alarm.id))
                                       .where(Alarm.status.in_(ACTIVE)).group_by(Alarm.severity)):
        by_severity[severity] = n
    today_by_type = {t: n for t, n in session.execute(
        select(Alarm.type, func.count(Alarm.id)).where(Alarm.raised_at >= midnight)
        .group_by(Alarm.type).order_by(func.count(Alarm.id).desc(), Alarm.type))}
    return AlarmSummary(date=today, active=by_status[ACTIVE_UNACK] + by_status[ACTIVE_ACK],
                        unacknowledged=by_status[ACTIVE_UNACK], by_status=by_status, by_severity=by_severity,
                        today=sum(today_by_type.values()), today_by_type=today_by_type)
