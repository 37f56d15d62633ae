"""Scenario plug-ins: a bad spec stops start-up with a message saying what is wrong."""

from __future__ import annotations

import pytest

from shequ.core.plugins import Scenario, ScenarioRegistry, load_scenarios


def test_a_valid_spec_registers() -> None:
    registry = ScenarioRegistry()
    registry.add(Scenario(id="S11", name="老人关怀", owner="社区服务办"))
    assert list(registry.scenarios) == ["S11"]


@pytest.mark.parametrize("spec, message", [
    (Scenario(id="11", name="老人关怀", owner="社区服务办"), "not of the form"),
    (Scenario(id="S11", name="老人关怀", owner="某公司"), "not a known department"),
    (Scenario(id="S11", name="", owner="社区服务办"), "name is empty"),
])
def test_a_bad_spec_is_refused(spec: Scenario, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScenarioRegistry().add(spec)


def test_the_same_scenario_twice_is_refused() -> None:
    registry = ScenarioRegistry()
    registry.add(Scenario(id="S02", name="安全梯控", owner="城运中心"))
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(Scenario(id="S02", name="安全梯控", owner="城运中心"))


def test_installed_scenarios_load() -> None:
    # No scenario is installed by this issue; discovery must still work and validate.
    assert all(spec.id.startswith("S") for spec in load_scenarios().scenarios.values())
