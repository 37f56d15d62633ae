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
from importlib import import_module
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


LEVELS = ("brain", "grid", "committee", "property", "resident")


@dataclass(frozen=True)
class NavEntry:
    """A menu entry of a page: shown at its level (see ``shequ.web.nav``) to users who hold
    ``permission`` (empty: anyone at that level), when its scenario is switched on."""

    label: str  # Chinese
    path: str
    level: str  # brain | grid | committee | property | resident
    label_en: str = ""
    permission: str = ""


@dataclass(frozen=True)
class Tile:
    """A scenario's tile on the brain (社区大脑): a title, a few figures and the page it opens."""

    title: str
    figures: tuple[tuple[str, str], ...]  # (label, value as shown), at most six
    link: str = ""
    alert: bool = False  # something needs attention now (the tile is highlighted)


@dataclass(frozen=True)
class Sweep:
    """Clock-driven work of a scenario (escalation steps, windows): ``fn(engine, now) -> count``
    every ``every_s`` seconds, in the worker's (or the demo's) sweep loop."""

    fn: str | Callable[..., int]
    every_s: float = 10.0


Ref = str | Callable[..., Any]  # a callable, or "package.module:attr" resolved on first use


def resolve(ref: Any) -> Any:
    """``"package.module:attr"`` → the object; anything else is returned as it is. Scenario
    specs name their routers, handlers and tiles this way, so that loading a spec (the entry
    point) imports no web or database code."""
    if isinstance(ref, str) and ":" in ref:
        module, _, attr = ref.partition(":")
        obj: Any = import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    return ref


@dataclass(frozen=True)
class Scenario:
    """What a scenario brings: its identity, owner, device types, rules, tags, pages, data.

    Beside the data, a package plugs into the kernel at these points (each a callable or a
    ``"module:attr"`` reference): ``router`` (its pages and API), ``handlers`` (change handlers
    run on every ingest batch inside its transaction, after the rule engine), ``sweeps``
    (clock-driven work), ``tile`` (``tile(session, lang) -> Tile`` for the brain),
    ``anomalies`` (simulator anomaly kind → ``fn(sim, t, device_code, params)``), and
    ``migrations`` (a directory of Alembic revisions on a branch of its own).
    """

    id: str
    name: str
    owner: str
    name_en: str = ""
    device_types: tuple[Any, ...] = ()
    rules: tuple[Any, ...] = ()  # default rules: dicts as accepted by shequ.core.rules.service.save_rule
    case_classes: tuple[dict[str, Any], ...] = ()  # {"code": "S03-01", "name": …, "department": …}
    tags: tuple[TagSpec, ...] = ()
    router: Any = None  # an APIRouter or "module:attr"
    nav: tuple[NavEntry, ...] = ()
    seed: Ref | None = None  # seed(session) -> None: the scenario's demo data on a seeded tenant
    simulate: Callable[..., Any] | None = None
    models_module: str | None = None  # imported with the kernel's models (metadata, migrations)
    templates: str | None = None  # a directory of the package's templates, found by name
    migrations: str | None = None  # a directory of the package's Alembic revisions
    handlers: tuple[Ref, ...] = ()
    sweeps: tuple[Sweep, ...] = ()
    tile: Ref | None = None
    anomalies: tuple[tuple[str, Ref], ...] = ()  # (kind, fn(sim, t, device_code, params))
    demo_incidents: tuple[str, ...] = ()  # anomaly kinds the demo stages for this scenario


    def validate(self) -> None:
        problems = []
        if not re.fullmatch(r"S\d{2}", self.id):
            problems.append(f"id {self.id!r} is not of the form S01…S20")
        if self.owner not in DEPARTMENTS:
            problems.append(f"owner {self.owner!r} is not a known department")
        if not self.name:
            problems.append("name is empty")
        problems += [f"nav entry {e.path!r}: level {e.level!r} is not one of {', '.join(LEVELS)}"
                     for e in self.nav if e.level not in LEVELS]
        refs = [self.router, self.seed, self.tile, *self.handlers, *(s.fn for s in self.sweeps),
                *(fn for _k, fn in self.anomalies)]
        problems += [f"reference {r!r} is not of the form package.module:attr"
                     for r in refs if isinstance(r, str) and not re.fullmatch(r"[\w.]+:[\w.]+", r)]
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


def enabled_ids(tenant_settings: dict[str, Any] | None) -> frozenset[str]:
    """The scenarios a tenant has switched on (成熟一个、启动一个): its ``scenarios`` setting,
    or every installed scenario when the tenant has not chosen."""
    installed = load_scenarios().scenarios
    chosen = (tenant_settings or {}).get("scenarios")
    if not isinstance(chosen, list):
        return frozenset(installed)
    return frozenset(str(s) for s in chosen if str(s) in installed)
