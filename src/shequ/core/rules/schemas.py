"""What the rules API takes and answers: rule bodies (whole or partial), versions, the dry run,
and the catalogue of rule kinds and actions with their JSON Schemas (for forms and clients)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCENARIO_PATTERN = r"^(S(0[1-9]|1\d|20))?$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RulePatch(_Body):
    """A partial rule body: only the fields given change (``PUT /rules/{id}``)."""

    code: str | None = Field(None, max_length=60, description="lower-case letters, digits, _ . -")
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=1000)
    scenario: str | None = Field(None, pattern=SCENARIO_PATTERN, description='S01…S20, or "" for the kernel')
    kind: str | None = Field(None, max_length=20, description="threshold | event | absence | stale | rate | "
                                                              "geofence | composite")
    enabled: bool | None = None
    target: dict[str, Any] | None = Field(None, description='{"device_types": [...], "devices": [ids], '
                                                            '"places": [ids], "facility_kinds": [...]}')
    spec: dict[str, Any] | None = Field(None, description="the kind's condition (see GET /rule-kinds)")
    window: dict[str, Any] | None = Field(None, description='only fire within {"start": "22:00", "end": "06:00", '
                                                            '"days": "all|workdays|offdays"}')
    severity: str | None = Field(None, max_length=14, description="CRITICAL | MAJOR | MINOR | WARNING | "
                                                                  "INDETERMINATE")
    alarm_type: str | None = Field(None, max_length=60, description="the alarm this rule raises (default: code)")
    actions: list[dict[str, Any]] | None = Field(None, max_length=20,
                                                 description='[{"do": "alarm"}, {"do": "case", ...}, ...]')

    def changes(self) -> dict[str, Any]:
        """The fields the client sent; null means "not given", except for ``window`` (null
        removes the window)."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None or k == "window"}


class RuleIn(RulePatch):
    """A whole new rule (``POST /rules``)."""

    code: str = Field(max_length=60, description="lower-case letters, digits, _ . -")
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20, description="threshold | event | absence | stale | rate | "
                                                 "geofence | composite")


class DryRunIn(RulePatch):
    """A rule body, saved or not, to replay over the stored telemetry of the last ``days``."""

    kind: str = Field(max_length=20)
    days: float = Field(7.0, gt=0, le=30, description="how far back (at most 30 days)")


class RuleOut(BaseModel):
    id: int
    code: str
    name: str
    description: str
    scenario: str
    origin: str = Field(description="tenant | default (shipped)")
    kind: str
    enabled: bool
    version: int
    target: dict[str, Any]
    spec: dict[str, Any]
    window: dict[str, Any] | None
    severity: str
    alarm_type: str
    actions: list[dict[str, Any]]
    created_at: dt.datetime
    updated_at: dt.datetime


class RuleVersionOut(BaseModel):
    version: int
    body: dict[str, Any] = Field(description="the whole rule as saved")
    saved_at: dt.datetime
    saved_by: str
    note: str


class RuleDetail(RuleOut):
    versions: list[RuleVersionOut] = Field(description="newest first")


class RuleList(BaseModel):
    items: list[RuleOut]
    total: int


class DryRunEvent(BaseModel):
    device_id: int
    what: str = Field(description="fire | clear")
    at: dt.datetime
    value: Any = None


class DryRunOut(BaseModel):
    start: dt.datetime
    end: dt.datetime
    devices: int = Field(description="devices the rule targets")
    messages: int = Field(description="stored messages replayed")
    fired: int
    cleared: int
    events: list[DryRunEvent] = Field(description="the first fire/clear moments (at most 200)")
    truncated: bool = Field(description="the replay stopped at its row limit")


class KindOut(BaseModel):
    code: str
    label: str
    label_en: str
    timed: bool = Field(description="evaluated on the clock too (silences, durations)")
    spec_schema: dict[str, Any] = Field(description="JSON Schema of the kind's spec")


class ActionKindOut(BaseModel):
    do: str
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the action")

    model_config = ConfigDict(populate_by_name=True)


class RuleKindsOut(BaseModel):
    kinds: list[KindOut]
    actions: list[ActionKindOut]
    severities: list[str]
    window_schema: dict[str, Any] = Field(description="JSON Schema of a rule's time window")


class InstalledOut(BaseModel):
    installed: list[str] = Field(description="codes of the rules added (those the tenant had are left as they are)")
