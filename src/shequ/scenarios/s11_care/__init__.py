"""S11 老人关怀 (Living-alone care), owned by 社区服务办."""

from __future__ import annotations

from shequ.core.plugins import Scenario

SCENARIO = Scenario(id="S11", name="老人关怀", name_en="Living-alone care", owner="社区服务办")
