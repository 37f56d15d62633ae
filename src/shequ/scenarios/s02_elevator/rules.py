"""S02's default rules and case class as pure data (the spec imports this; nothing else)."""

from __future__ import annotations

from typing import Any

EBIKE_RULE = "s02_ebike"  # rule code and alarm type: an e-bike in the elevator now
REPEAT_RULE = "s02_ebike_repeat"  # rule code and alarm type: e-bikes taken up repeatedly
CASE_CLASS = "S02-01"
THRESHOLD = 0.6  # the default confidence from which a detection blocks the elevator
REPEAT_COUNT = 3  # detections at one elevator …
REPEAT_WINDOW_S = 86400  # … within a day open a case
HOLD_S = 300  # how long the doors are held at most (the camera keeps them open until released)
QUIET_S = 300  # no ebike_left within this long: the rule clears by itself and releases the doors
VOICE_TEXT = "电动自行车禁止进入电梯，请立即推出轿厢。Electric bikes are not allowed in the lift; please take it out."

RULES: tuple[dict[str, Any], ...] = (
    {
        "code": EBIKE_RULE, "name": "电动车进电梯", "kind": "event", "severity": "MAJOR", "alarm_type": EBIKE_RULE,
        "description": "电梯摄像机识别到电动车（置信度不低于阈值）：保持梯门开启、语音劝离、告警并短信通知物业与居委；"
                       "电动车离开后释放梯门、告警消除 (an e-bike recognised in the car: hold the doors, "
                       "warn by voice, alarm and text property and committee staff; released when it leaves)",
        "target": {"device_types": ["elevator_camera"]},
        "spec": {"event": "ebike_detected", "where": {"field": "confidence", "op": ">=", "value": THRESHOLD},
                 "clear_event": "ebike_left", "clear_after_s": QUIET_S},
        "actions": [
            {"do": "alarm", "severity": "MAJOR"},
            {"do": "command", "name": "hold_doors", "args": {"seconds": HOLD_S}},
            {"do": "command", "name": "voice_warning", "args": {"text": VOICE_TEXT}},
            {"do": "command", "name": "release_doors", "on": "clear"},
            {"do": "notify", "roles": ["property", "committee"], "channels": ["sms"]},
        ],
    },
    {
        "code": REPEAT_RULE, "name": "电动车反复进电梯", "kind": "rate", "severity": "MAJOR",
        "alarm_type": REPEAT_RULE,
        "description": f"同一部电梯一天内识别到电动车 {REPEAT_COUNT} 次：告警并派单 (the same elevator "
                       f"{REPEAT_COUNT} times within a day: alarm and a case)",
        "target": {"device_types": ["elevator_camera"]},
        "spec": {"match": {"event": "ebike_detected",
                           "where": {"field": "confidence", "op": ">=", "value": THRESHOLD}},
                 "count": REPEAT_COUNT, "window_s": REPEAT_WINDOW_S},
        "actions": [{"do": "alarm"}, {"do": "case", "class_code": CASE_CLASS, "priority": "normal"}],
    },
)

CASE_CLASSES: tuple[dict[str, Any], ...] = (
    {"code": CASE_CLASS, "name": "电动车反复进电梯", "name_en": "E-bike taken into an elevator repeatedly",
     "department": "城运中心", "handle_hours": 24, "urgent_hours": 4, "major": "安全梯控",
     "description": "同一电梯一天内多次识别到电动车：物业与居委上门劝导，核查楼道充电 "
                    "(property and committee staff call on the owner; check for charging indoors)"},
)

# why an operator marks a detection false (误报原因)
FALSE_REASONS: tuple[tuple[str, str, str], ...] = (
    ("pram", "婴儿车", "pram"),
    ("wheelchair", "轮椅", "wheelchair"),
    ("mobility_scooter", "老年代步车", "mobility scooter"),
    ("bicycle", "自行车", "bicycle"),
    ("other", "其他", "other"),
)
VERDICTS = ("pending", "confirmed", "false")
