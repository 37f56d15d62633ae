"""What S02's API takes and answers: detections, verdicts, remote intercom and clearing, statistics."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Reason = Literal["pram", "wheelchair", "mobility_scooter", "bicycle", "other"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VerdictIn(_In):
    verdict: Literal["confirmed", "false"] = Field(description="confirmed: an e-bike; false: a false detection")
    reason: Reason | None = Field(None, description="why it is false (required for false): pram 婴儿车, "
                                                    "wheelchair 轮椅, mobility_scooter 代步车, bicycle, other")
    note: str = Field("", max_length=300)


class IntercomIn(_In):
    text: str = Field(min_length=1, max_length=200, description="what the car's speaker says (远程喊话)")


class ClearIn(_In):
    note: str = Field("", max_length=300, description="why the operator clears it (远程解除)")


class DetectionOut(BaseModel):
    id: int
    device_id: int
    elevator: str = Field(description="the elevator's name (or the camera's)")
    facility_id: int | None
    building_id: int | None
    building: str
    detected_at: dt.datetime
    confidence: float
    snapshot: str
    blocked: bool = Field(description="reached the confidence threshold: doors held, alarm raised")
    left_at: dt.datetime | None
    doors_held_at: dt.datetime | None
    released_at: dt.datetime | None
    released_by: str | None
    alarm_id: int | None
    verdict: str = Field(description="pending | confirmed | false")
    reason: str | None
    verdict_note: str
    verdict_by: str | None
    verdict_at: dt.datetime | None


class DetectionPage(BaseModel):
    items: list[DetectionOut]
    total: int
    page: int
    size: int


class CommandOut(BaseModel):
    id: int
    device_id: int
    name: str
    args: dict[str, Any]
    status: str
    created_at: dt.datetime
    actor: str


class ClearOut(BaseModel):
    command: CommandOut
    alarm_id: int | None = Field(description="the e-bike alarm cleared, if one was active")
    released: int = Field(description="detections marked released")


class BuildingCount(BaseModel):
    building_id: int | None
    building: str
    count: int


class CameraStats(BaseModel):
    device_id: int
    elevator: str
    building: str
    detections: int = Field(description="blocked detections not marked false")
    confirmed: int
    false: int
    pending: int
    precision: float | None = Field(description="confirmed / (confirmed + false); null until one is reviewed")


class StatsOut(BaseModel):
    start: dt.datetime
    end: dt.datetime
    total: int = Field(description="blocked detections not marked false")
    below_threshold: int
    confirmed: int
    false: int
    pending: int
    precision: float | None
    by_hour: list[int] = Field(description="24 counts by hour of day, Asia/Shanghai")
    by_building: list[BuildingCount]
    cameras: list[CameraStats]
    false_reasons: dict[str, int]
