"""S03 放心充电 (Safe charging), owned by 城运中心."""

from __future__ import annotations

from pathlib import Path

from shequ.core.plugins import NavEntry, Scenario
from shequ.scenarios.s03_charging import rules

_HERE = Path(__file__).parent

SCENARIO = Scenario(
    id="S03", name="放心充电", name_en="Safe charging", owner="城运中心",
    device_types=(rules.SPRINKLER,),
    rules=rules.RULES,
    case_classes=rules.CASE_CLASSES,
    router="shequ.scenarios.s03_charging.routes:router",
    nav=(NavEntry("放心充电", "/charging", "grid", "Safe charging", "device.read"),),
    seed="shequ.scenarios.s03_charging.service:seed_demo",
    models_module="shequ.scenarios.s03_charging.models",
    templates=str(_HERE / "templates"),
    migrations=str(_HERE / "migrations"),
    handlers=("shequ.scenarios.s03_charging.service:on_batch",),
    tile="shequ.scenarios.s03_charging.service:tile",
    anomalies=(("flying_wire", "shequ.scenarios.s03_charging.sim:inject_flying_wire"),
               ("charging_smoke", "shequ.scenarios.s03_charging.sim:inject_charging_smoke")),
    demo_incidents=("over_temperature", "charging_smoke", "flying_wire"),
)
