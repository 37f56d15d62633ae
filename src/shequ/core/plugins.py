"""Scenario plug-ins: the spec every scenario package declares, and their discovery.

A scenario package exposes ``SCENARIO = Scenario(...)`` and registers it in the
``shequ.scenarios`` entry-point group, so a vendor can ship one as its own distribution
(揭榜挂帅). The kernel never imports a scenario by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

GROUP = "shequ.scenarios"
DEPARTMENTS = (
    "社区党建办", "城运中心", "安监所", "城建中心", "社区服务办", "社区自治办", "体育场",
    "社区事务受理服务中心", "社区党群服务中心", "营商办", "试点居村",
)


@dataclass(frozen=True)
class TagSpec:
    code: str
    name: str
    parent: str | None = None
    applies_to: str = "person"
    rule: dict[str, Any] | None = None
    description: str = ""


@dataclass(frozen=True)
class NavEntry:
    label: str
    path: str
    level: str  # brain | grid | committee | property | resident


@dataclass(frozen=True)
class Scenario:
    """What a scenario brings: its identity, owner, device types, rules, tags, pages, data."""

    id: str
    name: str
    owner: str
    name_en: str = ""
    device_types: tuple[Any, ...] = ()
    rules: tuple[Any, ...] = ()  # default rules: dicts as accepted by shequ.core.rules.service.save_rule
    case_classes: tuple[dict[str, Any], ...] = ()  # {"code": "S03-01", "name": …, "department": …}
    tags: tuple[TagSpec, ...] = ()
    router: Any = None
    nav: tuple[NavEntry, ...] = ()
    seed: Callable[..., Any] | None = None
    simulate: Callable[..., Any] | None = None
    models_module: str | None = None

    def validate(self) -> None:
        problems = []
        if not re.fullmatch(r"S\d{2}", self.id):
            problems.append(f"id {self.id!r} is not of the form S01…S20")
        if self.owner not in DEPARTMENTS:
            problems.append(f"owner {self.owner!r} is not a known department")
        if not self.name:
            problems.append("name is empty")
        if problems:
            raise ValueError(f"scenario {self.id}: " + "; ".join(problems))


@dataclass
class ScenarioRegistry:
    scenarios: dict[str, Scenario] = field(default_factory=dict)

    def add(self, spec: Scenario) -> None:
        spec.validate()
        if spec.id in self.scenarios:
            raise ValueError(f"scenario {spec.id} is registered twice")
        self.scenarios[spec.id] = spec


@lru_cache
def load_scenarios() -> ScenarioRegistry:
    """Every installed scenario, validated; a bad spec stops start-up with a clear message."""
    registry = ScenarioRegistry()
    for ep in entry_points(group=GROUP):
        spec = ep.load()
        if not isinstance(spec, Scenario):
            raise TypeError(f"entry point {ep.name} does not point at a Scenario")
        registry.add(spec)
    return registry
