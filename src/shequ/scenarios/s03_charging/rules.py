"""S03 data: the sprinkler device type, the default rules, the case classes and the thresholds."""

from __future__ import annotations

from typing import Any

# 飞线充电 (flying-wire charging) suspicion: a circuit that feeds no charger draws a charger's
# steady current at night. Judged by ``service.on_batch`` (a rule cannot look at the
# breaker's ``feeds_charger`` attribute nor at how steady the current is).
FLYING_WIRE_TYPE = "s03_flying_wire"
FLYING_WIRE_MIN_A = 0.5  # an e-bike charger draws 0.5–4 A (110–880 W at 220 V)
FLYING_WIRE_MAX_A = 4.0
FLYING_WIRE_SPREAD_A = 0.3  # steady: every reading within 0.3 A of the others
FLYING_WIRE_FOR_S = 30 * 60  # … for at least 30 minutes
FLYING_WIRE_MAJOR_S = 2 * 3600  # still drawing after 2 hours: MAJOR
FLYING_WIRE_GAP_S = 15 * 60  # readings further apart than this break the run
FLYING_WIRE_NIGHT = ("22:00", "06:00")  # Asia/Shanghai

SPRINKLER: dict[str, Any] = {
    "code": "sprinkler",
    "name": "自动喷淋",
    "name_en": "Sprinkler",
    "category": "safety",
    "heartbeat_s": 3600,
    "placed_at": ["facility", "building"],
    "telemetry": [
        {"name": "armed", "type": "bool", "label": "系统待命", "fault_values": [False]},
        {"name": "flowing", "type": "bool", "label": "喷淋中"},
        {"name": "pressure_mpa", "type": "float", "unit": "MPa", "label": "管网压力", "min": 0, "max": 2.5},
    ],
    "events": [{"name": "discharge", "label": "喷淋启动"}],
}

CASE_CLASSES: tuple[dict[str, Any], ...] = (
    {"code": "S03-01", "name": "充电设施异常", "name_en": "Charging equipment fault",
     "major": "放心充电", "department": "城运中心", "handle_hours": 8, "urgent_hours": 2, "scenario": "S03",
     "description": "充电桩过温、过流：已自动停充，需运维检查后恢复"},
    {"code": "S03-02", "name": "疑似飞线充电", "name_en": "Suspected flying-wire charging",
     "major": "放心充电", "department": "城运中心", "handle_hours": 24, "urgent_hours": 4, "scenario": "S03",
     "description": "夜间非充电回路持续小电流：网格员上门核查、劝导"},
)

RULES: tuple[dict[str, Any], ...] = (
    {
        "code": "s03_pile_over_temperature", "name": "充电桩过温", "kind": "threshold", "severity": "MAJOR",
        "alarm_type": "s03_pile_over_temperature",
        "description": "充电桩温度超过 65 ℃：停止该桩充电并告警，降到 55 ℃ 以下告警清除 "
                       "(pile above 65 °C: stop that pile, alarm; clears below 55 °C)",
        "target": {"device_types": ["charging_pile"]},
        "spec": {"field": "temperature_c", "op": ">", "value": 65, "clear_value": 55},
        "actions": [{"do": "alarm"}, {"do": "command", "name": "stop_charging"},
                    {"do": "case", "class_code": "S03-01", "priority": "normal"}],
    },
    {
        "code": "s03_pile_over_current", "name": "充电桩过流", "kind": "threshold", "severity": "MAJOR",
        "alarm_type": "s03_pile_over_current",
        "description": "充电桩总电流超过 20 A 持续 10 秒（十口桩的供电回路额定值）：停止该桩充电并告警 "
                       "(pile current above 20 A for 10 s: stop that pile, alarm)",
        "target": {"device_types": ["charging_pile"]},
        "spec": {"field": "current_a", "op": ">", "value": 20, "clear_value": 18, "for_s": 10},
        "actions": [{"do": "alarm"}, {"do": "command", "name": "stop_charging"},
                    {"do": "case", "class_code": "S03-01", "priority": "normal"}],
    },
    {
        "code": "s03_site_smoke_cut_power", "name": "充电场所烟感联动断电", "kind": "threshold",
        "severity": "CRITICAL", "alarm_type": "smoke",
        "description": "充电场所烟感报警：切断本场所配电箱电源（告警与工单由内核烟感规则发出，不重复告警）"
                       "(smoke at a charging site: cut that site's power box; the kernel's smoke rule "
                       "raises the alarm and the case)",
        "target": {"device_types": ["smoke_detector"], "facility_kinds": ["charging_station"]},
        "spec": {"field": "smoke", "op": "==", "value": True},
        "actions": [{"do": "command", "name": "cut_power",
                     "target": {"device_type": "distribution_box", "at": "facility"}}],
    },
    {
        "code": "s03_sprinkler_not_armed", "name": "充电场所喷淋未待命", "kind": "threshold", "severity": "MAJOR",
        "alarm_type": "s03_sprinkler_not_armed",
        "description": "喷淋系统退出待命（关阀、失压）：告警并派单安监所 (sprinkler not armed: alarm, case to 安监所)",
        "target": {"device_types": ["sprinkler"]},
        "spec": {"field": "armed", "op": "==", "value": False},
        "actions": [{"do": "alarm"}, {"do": "case", "class_code": "C0103", "priority": "normal"}],
    },
)
