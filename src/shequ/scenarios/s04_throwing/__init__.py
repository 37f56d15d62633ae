"""S04 高空抛物 (High-altitude throwing), owned by 城运中心."""

from __future__ import annotations

from shequ.core.plugins import Scenario

SCENARIO = Scenario(id="S04", name="高空抛物", name_en="High-altitude throwing", owner="城运中心")
