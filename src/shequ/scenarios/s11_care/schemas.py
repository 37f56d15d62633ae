"""S11's API shapes: care plans (phones masked) and check-ins."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class ContactOut(BaseModel):
    id: int
    name: str
    relation: str
    phone_mask: str
    order: int


class PlanOut(BaseModel):
    id: int
    person_id: int
    person_name: str
    group: str
    place_id: int | None
    committee_id: int | None
    status: str
    pause_reason: str
    paused_until: dt.datetime | None
    no_motion_hours: float
    day_start: str
    day_end: str
    no_door_hours: float
    away_hours: float
    water_hours: float
    water_min_m3: float
    call_wait_min: int
    committee_wait_min: int
    last_motion_at: dt.datetime | None
    last_door_at: dt.datetime | None
    water_24h_m3: float | None
    active_alarms: list[str]
    false_alarms: int
    false_alarms_per_50_days: float | None
    contacts: list[ContactOut]


class CheckinOut(BaseModel):
    id: int
    plan_id: int
    person_id: int
    day: dt.date
    how: str
    by: str
    note: str
    at: dt.datetime
