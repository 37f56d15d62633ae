"""S09 噪音管理 (Noise), owned by 城运中心."""

from __future__ import annotations

from pathlib import Path

from shequ.core.plugins import NavEntry, Scenario, Sweep

SCENARIO = Scenario(
    id="S09", name="噪音管理", name_en="Noise", owner="城运中心",
    router="shequ.scenarios.s09_noise.routes:router",
    nav=(NavEntry("噪音管理", "/noise", "grid", "Noise", "device.read"),),
    seed="shequ.scenarios.s09_noise.service:seed_demo",
    models_module="shequ.scenarios.s09_noise.models",
    templates=str(Path(__file__).parent / "templates"),
    migrations=str(Path(__file__).parent / "migrations"),
    handlers=("shequ.scenarios.s09_noise.service:on_batch",),
    sweeps=(Sweep("shequ.scenarios.s09_noise.service:sweep", every_s=60.0),),
    tile="shequ.scenarios.s09_noise.service:tile",
    anomalies=(("noise_burst", "shequ.scenarios.s09_noise.sim:inject_noise_burst"),),
    demo_incidents=("night_noise",),
)
