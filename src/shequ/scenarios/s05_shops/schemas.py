"""S05's validated inputs (tenant settings, forms and API bodies) and API answers."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shequ.scenarios.s05_shops.rules import DEFAULTS

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
Severity = Literal["CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class S05Settings(BaseModel):
    """``tenant.settings["s05"]``: every key optional, defaults in ``rules.DEFAULTS``."""

    model_config = ConfigDict(extra="ignore")

    night_start: str = Field(DEFAULTS["night_start"], pattern=HHMM)
    night_end: str = Field(DEFAULTS["night_end"], pattern=HHMM)
    sustain_min: int = Field(DEFAULTS["sustain_min"], ge=0, le=600)
    gap_min: int = Field(DEFAULTS["gap_min"], ge=1, le=600)
    coincide_min: int = Field(DEFAULTS["coincide_min"], ge=1, le=600)
    severity: Severity = DEFAULTS["severity"]
    escalated_severity: Severity = DEFAULTS["escalated_severity"]
    inspect_within_days: int = Field(DEFAULTS["inspect_within_days"], ge=0, le=90)
    rectify_days: int = Field(DEFAULTS["rectify_days"], ge=1, le=365)
    incident_days: int = Field(DEFAULTS["incident_days"], ge=1, le=730)


class InspectionIn(_Strict):
    """A new inspection task at a shop."""

    place_id: int = Field(ge=1, le=2**31 - 1, description="the shop (a place of kind shop)")
    planned_date: dt.date = Field(description="the day of the inspection (Asia/Shanghai), today or later")
    inspector_id: int | None = Field(None, ge=1, le=2**31 - 1, description="the inspector (a user)")


class AssignIn(_Strict):
    inspector_id: int = Field(ge=1, le=2**31 - 1)
    planned_date: dt.date | None = None


class ResultIn(_Strict):
    """The result of an inspection: pass (合格), rectify (限期整改) or fail (不合格)."""

    result: Literal["pass", "rectify", "fail"]
    findings: str = Field("", max_length=1000, description="what was found; required unless pass")
    rectify_by: dt.date | None = Field(None, description="the rectification deadline (rectify/fail); "
                                                         "default: today + the tenant's rectify_days")


class RectificationIn(_Strict):
    note: str = Field("", max_length=500)


class RegistrationIn(_Strict):
    registered_residence: bool
    risk_level: Literal["low", "medium", "high"] = "low"
    notes: str = Field("", max_length=500)


class ReasonOut(BaseModel):
    key: str
    points: int
    label: str


class ShopOut(BaseModel):
    place_id: int
    name: str
    address: str
    committee_id: int | None
    industry: str
    registered_residence: bool
    base_level: str
    incidents: dict[str, int]
    last_inspection: dt.date | None
    last_result: str | None
    rectification: str  # none | pending | overdue | done
    open_inspection_id: int | None
    score: int
    level: str
    reasons: list[ReasonOut]


class ShopPage(BaseModel):
    items: list[ShopOut]
    total: int
    page: int
    size: int


class InspectionOut(BaseModel):
    id: int
    place_id: int | None
    shop: str
    planned_date: dt.date
    inspector_id: int | None
    inspector: str
    status: str
    overdue: bool
    reason: str
    alarm_id: int | None
    result: str | None
    findings: str
    done_at: dt.datetime | None
    done_by: str | None
    rectify_by: dt.date | None
    rectified_at: dt.datetime | None
    rectified_by: str | None
    rectification: str


class InspectionPage(BaseModel):
    items: list[InspectionOut]
    total: int
    page: int
    size: int
