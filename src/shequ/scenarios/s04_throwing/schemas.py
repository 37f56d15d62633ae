"""S04's API shapes: an incident as the API lists it."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class IncidentOut(BaseModel):
    id: int
    at: dt.datetime
    device: str | None = Field(None, description="the facade camera's code")
    building: int | None = Field(None, description="the building's place id")
    building_name: str = ""
    located: bool
    reason: str = Field("", description="why the trajectory could not be located")
    floor: int | None
    column: int | None = Field(None, description="window column, 1-based from the facade's left edge")
    unit: int | None
    rooms: list[str] = Field(description="room place codes, the most likely first")
    room_numbers: list[int]
    confidence: float | None = Field(None, ge=0, le=1)
    video: str
    verdict: str
    alarm_id: int | None
    case_id: int | None


class IncidentList(BaseModel):
    items: list[IncidentOut]
    total: int
