"""What the alarms API takes and answers: alarms with their place, timeline and case link, the
handling actions' bodies, and the counts of the summary."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2**31 - 1


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlarmOut(BaseModel):
    id: int
    type: str
    source: str = Field(description='"d:<device id>" | "p:<place id>" …')
    severity: str = Field(description="CRITICAL | MAJOR | MINOR | WARNING | INDETERMINATE")
    status: str = Field(description="ACTIVE_UNACK | ACTIVE_ACK | CLEARED_UNACK | CLEARED_ACK")
    active: bool
    title: str
    scenario: str
    device_id: int | None
    rule_id: int | None
    rule_version: int | None
    place_id: int | None
    place: str = Field(description="the place's address or name")
    grid_id: int | None
    committee_id: int | None
    compound_id: int | None
    building_id: int | None
    count: int = Field(description="occurrences while active (repeats count up)")
    raised_at: dt.datetime
    last_at: dt.datetime
    acked_at: dt.datetime | None
    acked_by: str | None
    cleared_at: dt.datetime | None
    cleared_by: str | None
    assignee_id: int | None
    escalation_level: int
    reminders: int
    case_id: int | None
    context: dict[str, Any] = Field(description="what caused it: rule, version, message, values, event")


class AlarmEventOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str = Field(description="raised | severity | acked | cleared | assigned | commented | case | "
                                    "escalated | reminder | linkage")
    note: str
    data: dict[str, Any]


class CaseLink(BaseModel):
    id: int
    code: str
    stage: str
    department: str | None


class AlarmDetail(AlarmOut):
    timeline: list[AlarmEventOut] = Field(description="oldest first")
    case: CaseLink | None = Field(description="the case opened from it (转工单), if any")


class AlarmPage(BaseModel):
    items: list[AlarmOut]
    total: int
    page: int
    size: int


class NoteIn(_Body):
    note: str = Field(default="", max_length=1000)


class AssignIn(_Body):
    assignee_id: int = Field(ge=1, le=MAX_ID, description="a user of the tenant")
    note: str = Field(default="", max_length=1000)


class CommentIn(_Body):
    note: str = Field(min_length=1, max_length=1000)


class CaseIn(_Body):
    class_code: str = Field(min_length=1, max_length=20, description="a case class (GET /case-classes)")
    department: str | None = Field(default=None, max_length=40, description="dispatch here instead of the routed department")
    dispatch: bool = Field(default=True, description="register and dispatch at once")
    title: str | None = Field(default=None, max_length=200, description="default: the alarm's title")
    priority: Literal["urgent", "normal"] | None = Field(default=None, description="default: urgent for CRITICAL and MAJOR")


class AlarmSummary(BaseModel):
    date: dt.date = Field(description="today in Asia/Shanghai")
    active: int = Field(description="alarms still active")
    unacknowledged: int = Field(description="active alarms nobody has acknowledged")
    by_status: dict[str, int] = Field(description="every alarm in scope, by status")
    by_severity: dict[str, int] = Field(description="active alarms, by severity")
    today: int = Field(description="alarms raised today")
    today_by_type: dict[str, int] = Field(description="alarms raised today, by type")
