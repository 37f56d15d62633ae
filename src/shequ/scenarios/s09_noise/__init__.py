"""S09 噪音管理 (Noise), owned by 城运中心."""

from __future__ import annotations

from shequ.core.plugins import Scenario

SCENARIO = Scenario(id="S09", name="噪音管理", name_en="Noise", owner="城运中心")
