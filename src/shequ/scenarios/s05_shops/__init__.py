"""S05 场所监管 (Shop safety), owned by 安监所."""

from __future__ import annotations

from pathlib import Path

from shequ.core.plugins import NavEntry, Scenario, Sweep
from shequ.scenarios.s05_shops import rules

_HERE = Path(__file__).parent
_PKG = "shequ.scenarios.s05_shops"

SCENARIO = Scenario(
    id="S05", name="场所监管", name_en="Shop safety", owner="安监所",
    # the judgement needs the shop's registration (商住登记), which rules cannot see: the
    # handler judges night presence itself and raises the alarm (docs/scenarios/s05.md)
    rules=(),
    case_classes=rules.CASE_CLASSES,
    router=f"{_PKG}.routes:router",
    nav=(
        NavEntry("场所监管", "/shops", "grid", "Shop safety", "alarm.read"),
        NavEntry("场所检查", "/shops/inspections", "grid", "Shop inspections", "alarm.read"),
        NavEntry("沿街商铺", "/shops", "committee", "Shops", "alarm.read"),
    ),
    seed=f"{_PKG}.service:seed_demo",
    models_module=f"{_PKG}.models",
    templates=str(_HERE / "templates"),
    migrations=str(_HERE / "migrations"),
    handlers=(f"{_PKG}.service:on_batch",),
    sweeps=(Sweep(f"{_PKG}.service:sweep", every_s=600.0),),
    tile=f"{_PKG}.service:tile",
    anomalies=(("s05_night_replay", f"{_PKG}.sim:inject_night_replay"),),
    demo_incidents=("s05_night_replay",),
)
