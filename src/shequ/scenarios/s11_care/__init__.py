"""S11 老人关怀 (Living-alone care), owned by 社区服务办."""

from __future__ import annotations

from pathlib import Path

from shequ.core.plugins import NavEntry, Scenario, Sweep
from shequ.scenarios.s11_care.rules import CASE_CLASSES

_PKG = "shequ.scenarios.s11_care"

SCENARIO = Scenario(
    id="S11", name="老人关怀", name_en="Living-alone care", owner="社区服务办",
    case_classes=CASE_CLASSES,
    router=f"{_PKG}.routes:router",
    nav=(NavEntry("老人关怀", "/care", "committee", "Living-alone care", "alarm.read"),),
    seed=f"{_PKG}.service:seed_demo",
    models_module=f"{_PKG}.models",
    templates=str(Path(__file__).parent / "templates"),
    migrations=str(Path(__file__).parent / "migrations"),
    handlers=(f"{_PKG}.service:on_batch",),
    sweeps=(Sweep(f"{_PKG}.service:sweep", every_s=15),),
    tile=f"{_PKG}.service:tile",
    anomalies=(("care_inactivity", f"{_PKG}.sim:inject_care_inactivity"),),
    demo_incidents=("care_inactivity",),
)
