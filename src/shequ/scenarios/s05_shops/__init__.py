"""S05 场所监管 (Shop safety), owned by 安监所."""

from __future__ import annotations

from shequ.core.plugins import Scenario

SCENARIO = Scenario(id="S05", name="场所监管", name_en="Shop safety", owner="安监所")
