"""S02 安全梯控 (Elevator e-bike block), owned by 城运中心."""

from __future__ import annotations

from shequ.core.plugins import Scenario

SCENARIO = Scenario(id="S02", name="安全梯控", name_en="Elevator e-bike block", owner="城运中心")
