"""S03 放心充电 (Safe charging), owned by 城运中心."""

from __future__ import annotations

from shequ.core.plugins import Scenario

SCENARIO = Scenario(id="S03", name="放心充电", name_en="Safe charging", owner="城运中心")
