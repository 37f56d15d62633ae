"""The kernel's default rules, given to every tenant (scenario packages ship their own through
``Scenario.rules``). Each is a rule body as ``service.save_rule`` takes it."""

from __future__ import annotations

from typing import Any

KERNEL_RULES: tuple[dict[str, Any], ...] = (
    {
        "code": "smoke", "name": "烟感报警", "kind": "threshold", "severity": "CRITICAL", "alarm_type": "smoke",
        "description": "烟感探测到烟雾：立即告警并派单城运中心 (smoke detected: alarm and a case to 城运中心)",
        "target": {"device_types": ["smoke_detector"]},
        "spec": {"field": "smoke", "op": "==", "value": True},
        "actions": [{"do": "alarm"}, {"do": "case", "class_code": "E0401", "priority": "urgent"}],
    },
    {
        "code": "smoke_event", "name": "烟感报警事件", "kind": "event", "severity": "CRITICAL", "alarm_type": "smoke",
        "description": "烟感上报报警事件：与烟感报警同一告警（重复计数）(the smoke_alarm event counts on the same alarm)",
        "target": {"device_types": ["smoke_detector"]},
        "spec": {"event": "smoke_alarm"},
        "actions": [{"do": "alarm", "auto_clear": False},
                    {"do": "case", "class_code": "E0401", "priority": "urgent"}],
    },
    {
        "code": "gas", "name": "燃气泄漏报警", "kind": "threshold", "severity": "CRITICAL", "alarm_type": "gas",
        "description": "可燃气体报警：关阀、告警并派单 (gas alarm: close the valve, alarm and a case)",
        "target": {"device_types": ["gas_detector"]},
        "spec": {"field": "alarm", "op": "==", "value": True},
        "actions": [{"do": "alarm"}, {"do": "command", "name": "close_valve"},
                    {"do": "case", "class_code": "E0402", "priority": "urgent"}],
    },
)
