"""S04 高空抛物 (High-altitude throwing), owned by 城运中心."""

from __future__ import annotations

from pathlib import Path

from shequ.core.plugins import NavEntry, Scenario, Sweep
from shequ.scenarios.s04_throwing.rules import CASE_CLASSES, RULES

_HERE = Path(__file__).parent
_PKG = "shequ.scenarios.s04_throwing"

SCENARIO = Scenario(
    id="S04", name="高空抛物", name_en="High-altitude throwing", owner="城运中心",
    rules=RULES,
    case_classes=CASE_CLASSES,
    router=f"{_PKG}.routes:router",
    nav=(
        NavEntry("高空抛物", "/throwing", "grid", "Throwing", "alarm.read"),
        NavEntry("高空抛物", "/throwing", "property", "Throwing", "alarm.read"),
    ),
    models_module=f"{_PKG}.models",
    templates=str(_HERE / "templates"),
    migrations=str(_HERE / "migrations"),
    handlers=(f"{_PKG}.service:on_batch",),
    sweeps=(Sweep(f"{_PKG}.service:sweep", every_s=30.0),),
    tile=f"{_PKG}.service:tile",
    anomalies=(("object_throw", f"{_PKG}.sim:inject_object_throw"),),
    demo_incidents=("object_fall",),
)
