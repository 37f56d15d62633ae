"""What the S03 API answers: charging sites with their figures, and a site's sessions."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class SiteDeviceOut(BaseModel):
    id: int
    code: str
    name: str
    type_code: str = Field(description="charging_pile | distribution_box | smoke_detector | sprinkler | …")
    online: bool | None
    condition: str = Field(description="alarm | fault | offline | maintenance | ok | unknown")
    state: dict[str, object] = Field(description="the twin's latest values")


class SiteOut(BaseModel):
    id: int = Field(description="the facility id of the charging site")
    code: str
    name: str
    ports: int
    piles_charging: int
    power_on: bool | None = Field(description="the distribution box's supply (null: not reported)")
    sprinkler: str = Field(description="none | armed | flowing | not_armed | offline | unknown")
    sessions: int = Field(description="sessions that ended in the period")
    energy_kwh: float
    fee_fen: int = Field(description="fees of those sessions, in fen")
    utilisation: float = Field(description="port-hours charging / port-hours available in the period (0–1)")
    incidents: dict[str, int] = Field(description="alarms raised in the period at the site, by alarm type")
    active_alarms: int
    devices: list[SiteDeviceOut]


class SiteList(BaseModel):
    start: dt.datetime
    end: dt.datetime
    items: list[SiteOut]
    total: int


class SessionOut(BaseModel):
    id: int
    device_id: int
    pile: str
    port: int
    started_at: dt.datetime | None = Field(description="null when the start was not heard")
    stopped_at: dt.datetime | None = Field(description="null while charging")
    energy_kwh: float
    fee_fen: int = Field(description="in fen (1/100 yuan)")
    ended_by: str = Field(description="normal | stopped | power_cut | unknown | \"\" while running")


class SessionList(BaseModel):
    facility_id: int
    start: dt.datetime
    end: dt.datetime
    items: list[SessionOut]
    total: int
