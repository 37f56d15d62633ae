"""S04's default rule and case class (pure data, read by the scenario spec)."""

from __future__ import annotations

from typing import Any

RULES: tuple[dict[str, Any], ...] = (
    {
        "code": "s04_object_fall", "name": "高空抛物", "kind": "event", "severity": "MAJOR",
        "alarm_type": "object_fall",
        "description": "外立面摄像机发现坠落物：告警物业、推算抛出楼层与房间并派单城运中心跟进 "
                       "(a falling object: alarm the property manager, locate the room, a case to 城运中心)",
        "target": {"device_types": ["facade_camera"]},
        # re-armed after two quiet minutes; the alarm itself stays until a person clears it
        "spec": {"event": "object_fall", "clear_after_s": 120},
        "actions": [
            {"do": "alarm", "auto_clear": False},
            {"do": "notify", "roles": ["property"], "channels": ["inapp", "sms"],
             "text": "高空抛物告警：请物业立即查看现场与录像"},
            {"do": "case", "class_code": "S04-01", "department": "城运中心", "priority": "urgent"},
        ],
    },
)

CASE_CLASSES: tuple[dict[str, Any], ...] = (
    {"code": "S04-01", "name": "高空抛物", "name_en": "High-altitude throwing", "department": "城运中心",
     "handle_hours": 24, "urgent_hours": 4, "kind": "event", "major": "突发事件"},
)
