"""S11's defaults as plain data: alarm types, per-plan thresholds, escalation timing, its case class."""

from __future__ import annotations

from typing import Any

SCENARIO_ID = "S11"
CASE_CLASS = "S11-01"
OWNER = "社区服务办"

# the alarm types of the package's own judgement (raised by its sweep, not by kernel rules)
NO_MOTION, NO_DOOR, LOW_WATER = "s11_no_motion", "s11_no_door", "s11_low_water"
INACTIVITY_TYPES = (NO_MOTION, NO_DOOR, LOW_WATER)
# the kernel's fire and gas alarms whose escalation runs the plan's chain when they sound in a home
LINKED_TYPES = ("smoke", "gas")
ALARM_TITLES: dict[str, tuple[str, str]] = {
    NO_MOTION: ("白天长时间无人活动", "no motion for hours in the daytime"),
    NO_DOOR: ("长时间未开门", "door not opened for a long time"),
    LOW_WATER: ("用水量异常偏低", "water use unusually low"),
}
SEVERITY = {NO_MOTION: "MAJOR", NO_DOOR: "MAJOR", LOW_WATER: "MAJOR"}

# Per-plan thresholds (a plan overrides any of them). Hours of "no motion" and of the water
# window count only the day window (07:00–21:00 Asia/Shanghai): a night's sleep never adds up.
DEFAULT_THRESHOLDS: dict[str, Any] = {
    "no_motion_hours": 6.0,
    "day_start": "07:00",
    "day_end": "21:00",
    "no_door_hours": 24.0,
    "away_hours": 48.0,
    "water_hours": 12.0,
    "water_min_m3": 0.01,
}
CALL_WAIT_MIN = 5  # minutes to wait for an answer before the next call
COMMITTEE_WAIT_MIN = 15  # minutes the committee has before a case is opened

# people a care plan is for: tags of the registry (独居老人, 孤老, 高龄 = aged 80 and over)
GROUPS: dict[str, tuple[str, str]] = {
    "elderly_alone": ("独居老人", "elderly living alone"),
    "solitary_elderly": ("孤老", "elderly without family"),
    "very_old": ("高龄", "aged 80 and over"),
}
PAUSE_REASONS: dict[str, tuple[str, str]] = {
    "away": ("外出", "away from home"),
    "hospital": ("住院", "in hospital"),
    "other": ("其他", "other"),
}
CHECKIN_WAYS: dict[str, tuple[str, str]] = {
    "sensors": ("传感器显示活动", "sensors showed activity"),
    "phone": ("电话", "by phone"),
    "visit": ("上门", "visit"),
}

CASE_CLASSES: tuple[dict[str, Any], ...] = (
    {"code": CASE_CLASS, "name": "独居老人异常无人应答", "name_en": "Elder living alone: no activity, no answer",
     "department": OWNER, "handle_hours": 2, "urgent_hours": 0.5, "major": "社区服务", "kind": "event"},
)
