"""S09's API shapes: a zone to set, the settings, the monitor report."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NoiseClass = Literal["0", "1", "2", "3", "4a", "4b"]


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    noise_class: NoiseClass = Field(description="GB 3096-2008 class of the area")
    buffer_m: float | None = Field(None, ge=1, le=500, description="streets: the band's half width from the centre line, m")
    note: str = Field("", max_length=200)


class ZoneOut(BaseModel):
    place_id: int
    kind: str
    code: str
    name: str
    noise_class: str | None
    buffer_m: float | None
    limit_day: float | None
    limit_night: float | None


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_min: int = Field(10, ge=1, le=120, description="minutes of the energy-mean window of the over-limit alarm")
    default_class: NoiseClass = "2"
    night_burst_db: float = Field(15.0, ge=0, le=40, description="a night reading above limit + this alarms at once")
    case_after: int = Field(3, ge=0, le=100, description="night bursts on one alarm before a 噪声扰民 case; 0: never")
    complaint_radius_m: int = Field(300, ge=10, le=5000)


class ClassFigures(BaseModel):
    noise_class: str
    minutes: int
    laeq: float | None
    ld: float | None
    ln: float | None
    limit_day: float
    limit_night: float
    minutes_over: int


class ReportOut(BaseModel):
    """Levels in dB(A) over [start, end); null when the monitor sent nothing in the period."""

    device: str
    device_id: int
    start: str
    end: str
    laeq: float | None = Field(description="energy mean of the minutes: 10·log10(mean(10^(L/10)))")
    lamax: float | None = Field(description="max of the minutes' LAmax (a minute without one counts its LAeq)")
    l10: float | None
    l50: float | None
    l90: float | None
    ld: float | None = Field(description="energy mean of the day minutes (06–22 Asia/Shanghai)")
    ln: float | None = Field(description="energy mean of the night minutes (22–06)")
    limit_day: float | None = Field(description="day limit of the class with most day minutes")
    limit_night: float | None = Field(description="night limit of the class with most night minutes")
    minutes_over: int = Field(description="minutes above their own applicable limit")
    readings: int = Field(description="judged minutes in the period")
    day_minutes: int
    night_minutes: int
    noise_class: str | None
    class_day: str | None
    class_night: str | None
    by_class: list[ClassFigures]
