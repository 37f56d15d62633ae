"""S02 安全梯控 (Elevator e-bike block), owned by 城运中心."""

from __future__ import annotations

from pathlib import Path

from shequ.core.plugins import NavEntry, Scenario, Sweep
from shequ.scenarios.s02_elevator.rules import CASE_CLASSES, RULES

_PKG = "shequ.scenarios.s02_elevator"

SCENARIO = Scenario(
    id="S02", name="安全梯控", name_en="Elevator e-bike block", owner="城运中心",
    rules=RULES,
    case_classes=CASE_CLASSES,
    router=f"{_PKG}.routes:router",
    nav=(
        NavEntry("安全梯控", "/elevator", "grid", "Elevator e-bikes", "alarm.read"),
        NavEntry("安全梯控", "/elevator", "property", "Elevator e-bikes", "alarm.read"),
        NavEntry("安全梯控", "/elevator", "committee", "Elevator e-bikes", "alarm.read"),
    ),
    seed=f"{_PKG}.service:seed_demo",
    models_module=f"{_PKG}.models",
    templates=str(Path(__file__).parent / "templates"),
    migrations=str(Path(__file__).parent / "migrations"),
    handlers=(f"{_PKG}.service:on_batch",),
    sweeps=(Sweep(f"{_PKG}.service:sweep", every_s=10.0),),
    tile=f"{_PKG}.service:tile",
    anomalies=(("ebike_repeat", f"{_PKG}.sim:inject_ebike_repeat"),
               ("pram_in_elevator", f"{_PKG}.sim:inject_pram_in_elevator")),
    demo_incidents=("ebike_in_elevator", "ebike_repeat"),
)
