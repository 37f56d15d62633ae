"""S05's pure data: tenant-setting defaults, risk weights, case classes (no imports beyond typing)."""

from __future__ import annotations

from typing import Any

SCENARIO_ID = "S05"
OWNER = "安监所"
ALARM_TYPE = "s05_live_in"  # 三合一 suspicion: someone living in a shop not registered as a residence

# tenant.settings["s05"] overrides any of these (see docs/scenarios/s05.md)
DEFAULTS: dict[str, Any] = {
    "night_start": "22:00",  # Asia/Shanghai; the night window may wrap midnight
    "night_end": "06:00",
    "sustain_min": 30,  # motion on readings spanning at least this long → suspicion
    "gap_min": 30,  # a longer silence between motion readings starts a new span
    "coincide_min": 20,  # smoke within this many minutes of night motion counts as "at the same time"
    "severity": "MINOR",  # the suspicion alone
    "escalated_severity": "MAJOR",  # smoke while someone is there at night: lives at risk
    "inspect_within_days": 3,  # the planned date of an inspection opened by the alarm
    "rectify_days": 15,  # default deadline of a rectification (整改期限)
    "incident_days": 90,  # incidents counted in the risk ledger
}

# the risk score (explained on the ledger page): points per finding, and the level bands
RISK_BASE = {"low": 0, "medium": 10, "high": 20}  # the registry's base risk level (基础风险)
RISK_POINTS: dict[str, Any] = {
    "fire": 20, "fire_max": 40,  # each smoke or gas alarm in the period
    "live_in": 15, "live_in_max": 45,  # each night of 三合一 suspicion (alarm repeats count)
    "other": 5, "other_max": 15,  # any other alarm at the shop
    "residence": 10,  # registered as a residence: people sleep there
    "fail": 30, "rectify": 15, "pass": -10,  # the result of the latest inspection
    "rectify_overdue": 20,  # a rectification past its deadline
    "inspection_overdue": 10,  # a planned inspection past its date
    "never_inspected": 10,  # no inspection done in the last 365 days
}
RISK_LEVELS = (("high", 50), ("medium", 25), ("low", -10_000))  # score ≥ threshold
FIRE_TYPES = ("smoke", "gas")

CASE_CLASSES: tuple[dict[str, Any], ...] = (
    {"code": "S05-01", "name": "三合一场所隐患", "name_en": "Living, storage and business in one room",
     "department": OWNER, "handle_hours": 40, "urgent_hours": 8, "major": "场所监管", "kind": "event"},
    {"code": "S05-02", "name": "沿街商铺消防隐患整改", "name_en": "Shop fire-safety rectification",
     "department": OWNER, "handle_hours": 80, "urgent_hours": 16, "major": "场所监管", "kind": "event"},
)
