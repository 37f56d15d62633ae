"""Pydantic shapes of the case API: a report, an action, a case in a list and in detail, its
timeline steps and attachments, the class catalog and the answer of a 12345 hotline import."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_ID = 2**31 - 1
NUL_MESSAGE = "不能包含 NUL 字符（must not contain a NUL character）"


def _no_nul(value: str) -> str:
    # PostgreSQL refuses NUL in text: a 422 naming the field rather than a server error
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


def _no_nul_items(values: list[str]) -> list[str]:
    for value in values:
        _no_nul(value)
    return values


Text = Annotated[str, AfterValidator(_no_nul)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class CaseReportIn(BaseModel):
    """A report (上报). The place comes from ``place_id`` or is located from ``lon``/``lat``."""

    model_config = ConfigDict(extra="forbid")

    title: Text = Field(min_length=1, max_length=200)
    class_code: Text = Field(min_length=1, max_length=20, description="a code of GET /case-classes")
    description: Text = Field(default="", max_length=4000)
    place_id: Id | None = None
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    address_text: Text = Field(default="", max_length=300)
    priority: Literal["urgent", "normal"] = "normal"
    reporter_name: Text | None = Field(default=None, max_length=60)
    reporter_phone: Text | None = Field(default=None, max_length=30)
    source: Literal["resident", "patrol", "hotline", "department"] | None = Field(
        default=None, description="only a dispatcher may choose; otherwise it follows the role")
    dispatch: bool = Field(default=False, description="register and dispatch at once (dispatchers)")


class CaseActionIn(BaseModel):
    """The values an action may need; which ones depends on the action (see docs/cases.md)."""

    model_config = ConfigDict(extra="forbid")

    note: Text = Field(default="", max_length=2000)
    department: Text | None = Field(default=None, max_length=40, description="dispatch: overrides routing")
    departments: Annotated[list[Annotated[str, Field(max_length=40)]],
                           AfterValidator(_no_nul_items)] = Field(default_factory=list, max_length=10,
                                                                  description="dispatch, co_handle")
    hours: float | None = Field(default=None, description="extend: working hours, 0 < hours ≤ 400")
    satisfaction: int | None = Field(default=None, ge=1, le=5, description="evaluate: 1–5")
    assignee_id: Id | None = Field(default=None, description="assign, dispatch: a user id")


class StepOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    from_stage: str | None
    to_stage: str | None
    department: str | None
    note: str
    data: dict[str, Any]


class AttachmentOut(BaseModel):
    id: int
    name: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: dt.datetime
    step_id: int | None
    url: str = Field(description="the download path (API)")


class CaseOut(BaseModel):
    id: int
    code: str
    title: str
    stage: str
    source: str
    source_ref: str | None
    class_code: str
    class_name: str
    priority: str
    department: str | None
    co_departments: list[str]
    place_id: int | None
    grid_id: int | None
    committee_id: int | None
    address_text: str
    lon: float | None
    lat: float | None
    reported_at: dt.datetime
    due_at: dt.datetime | None = Field(description="the handling deadline (set at dispatch)")
    stage_due_at: dt.datetime | None = Field(description="the deadline of the current stage")
    overdue: bool = Field(description="open, not suspended, and past the current stage's deadline")
    escalation_level: int
    supervised: bool
    suspended: bool


class CaseDetail(CaseOut):
    description: str
    reporter_name: str | None
    reporter_phone_mask: str
    reporter_user_id: int | None
    assignee_id: int | None
    alarm_id: int | None
    registered_at: dt.datetime | None
    dispatched_at: dt.datetime | None
    handled_at: dt.datetime | None
    fed_back_at: dt.datetime | None
    verified_at: dt.datetime | None
    closed_at: dt.datetime | None
    evaluated_at: dt.datetime | None
    voided_at: dt.datetime | None
    suspended_at: dt.datetime | None
    suspended_minutes: int
    overdue_at: dt.datetime | None
    rework_count: int
    extension_count: int
    handled_on_time: bool | None
    closed_on_time: bool | None
    satisfaction: int | None
    satisfaction_note: str | None
    attrs: dict[str, Any]
    timeline: list[StepOut]
    attachments: list[AttachmentOut]
    allowed_actions: list[str] = Field(description="the actions this user may take now")


class CasePage(BaseModel):
    items: list[CaseOut]
    total: int
    page: int
    size: int


class CaseClassOut(BaseModel):
    code: str
    kind: str
    major: str
    name: str
    name_en: str
    department: str
    handle_hours: float
    urgent_hours: float
    scenario: str
    public: bool


class CaseClassList(BaseModel):
    items: list[CaseClassOut]


class HotlineCaseOut(BaseModel):
    row: int
    order_no: str
    case_id: int
    code: str
    class_code: str
    department: str = Field(description="the department routing proposes for dispatch")
    place_id: int | None


class HotlineImportOut(BaseModel):
    rows: int
    created: int
    already_imported: list[str] = Field(description="order numbers (工单编号) imported before: unchanged")
    cases: list[HotlineCaseOut]


class RoutingRuleIn(BaseModel):
    department: str = Field(description="who handles the matching cases")
    class_prefix: str = Field("", max_length=20, description="case class code prefix, e.g. E05")
    scenario: str = Field("", max_length=3, description="S01…S20")
    source: str = Field("", max_length=12, description="alarm | resident | patrol | hotline | department | open311")
    area_ids: list[int] = Field(default_factory=list, description="grids, committees or compounds")
    co_departments: list[str] = Field(default_factory=list)
    position: int = Field(100, ge=0, le=100_000, description="lower first; the first match wins")
    note: str = Field("", max_length=300)


class RoutingRuleOut(RoutingRuleIn):
    id: int
    active: bool


class RoutingRuleList(BaseModel):
    items: list[RoutingRuleOut]


class CaseClassPatch(BaseModel):
    department: str | None = None
    handle_hours: float | None = Field(None, gt=0, le=2000)
    urgent_hours: float | None = Field(None, gt=0, le=2000)
    public: bool | None = None
    active: bool | None = None
