"""The menu: by role, by permission and by the scenarios switched on for the tenant.

Three sources feed one list: the kernel's pages (below), the platform levels (each
``shequ.platforms.<level>`` package declares ``NAV``) and the scenario packages (their
``Scenario.nav``, only while the tenant has the scenario on). An entry shows when the user's
role works at the entry's level and the role holds the entry's permission. The rules are
written down in docs/platforms.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shequ.core.iam import service as iam
from shequ.core.iam.models import Role
from shequ.core.plugins import NavEntry, enabled_ids, load_scenarios

# which roles work at which level; "staff" is every level but the resident's
STAFF = frozenset({Role.ADMIN, Role.LEADER, Role.DISPATCHER, Role.DEPARTMENT, Role.GRID_WORKER,
                   Role.COMMITTEE, Role.PROPERTY})
LEVEL_ROLES: dict[str, frozenset[str]] = {
    "brain": frozenset({Role.ADMIN, Role.LEADER, Role.DISPATCHER}),
    "grid": frozenset({Role.ADMIN, Role.LEADER, Role.DISPATCHER, Role.DEPARTMENT, Role.GRID_WORKER}),
    "committee": frozenset({Role.ADMIN, Role.COMMITTEE, Role.GRID_WORKER}),
    "property": frozenset({Role.ADMIN, Role.PROPERTY}),
    "resident": frozenset({Role.RESIDENT}),
    "staff": STAFF,
}
# where each role lands after signing in (``/`` sends them there)
LANDING: dict[str, str] = {Role.LEADER: "/brain", Role.DISPATCHER: "/grid", Role.GRID_WORKER: "/grid",
                           Role.DEPARTMENT: "/grid", Role.COMMITTEE: "/committee", Role.RESIDENT: "/m"}


def _k(label: str, label_en: str, path: str, permission: str = "", level: str = "staff") -> NavEntry:
    return NavEntry(label=label, label_en=label_en, path=path, level=level, permission=permission)


# the kernel's own pages (the levels come first, from the platform packages)
KERNEL: tuple[NavEntry, ...] = (
    _k("主题数库", "Registry", "/registry/people", iam.READ),
    _k("数据导入", "Import", "/import", iam.IMPORT),
    _k("数据质量", "Data quality", "/quality", iam.READ),
    _k("设备", "Devices", "/iot/devices", iam.DEVICE_READ),
    _k("死信", "Dead letters", "/iot/dead-letters", iam.DEAD_LETTERS),
    _k("告警", "Alarms", "/alarms", iam.ALARM_READ),
    _k("事件工单", "Cases", "/cases", iam.CASE_READ),
    _k("规则", "Rules", "/rules", iam.RULE_READ),
    _k("考核指标", "Indicators", "/kpi", iam.KPI_READ),
    _k("审计日志", "Audit log", "/audit", iam.AUDIT_READ),
)


@dataclass(frozen=True)
class MenuItem:
    label: str
    path: str
    level: str
    current: bool


def platform_entries() -> tuple[NavEntry, ...]:
    from shequ.platforms import PLATFORMS

    return tuple(entry for platform in PLATFORMS for entry in platform.NAV)


def scenario_entries(tenant_settings: dict[str, Any] | None) -> tuple[NavEntry, ...]:
    scenarios = load_scenarios().scenarios
    on = enabled_ids(tenant_settings)
    return tuple(entry for sid in sorted(on) for entry in scenarios[sid].nav)


def visible(user: Any, entries: Iterable[NavEntry]) -> list[NavEntry]:
    """The entries a user sees: their role works at the level and holds the permission."""
    if user is None:
        return []
    return [e for e in entries if user.role in LEVEL_ROLES.get(e.level, frozenset())
            and (not e.permission or iam.can(user, e.permission))]


def _current(entry_path: str, path: str) -> bool:
    base = entry_path.rstrip("/") or "/"
    return path == base or (base != "/" and path.startswith(base + "/"))


def menu(user: Any, *, lang: str, path: str, tenant_settings: dict[str, Any] | None,
         level: str | None = None) -> list[MenuItem]:
    """The menu of a page for ``user``: the platform levels first, then the scenario pages, then
    the kernel pages; ``level`` keeps only one level's entries (the resident's tab bar)."""
    entries = [*platform_entries(), *scenario_entries(tenant_settings), *KERNEL]
    if level is not None:
        entries = [e for e in entries if e.level == level]
    english = not lang.startswith("zh")
    seen: set[str] = set()
    out = []
    for e in visible(user, entries):
        if e.path in seen:  # a page offered at several levels shows once, at the first the user has
            continue
        seen.add(e.path)
        out.append(MenuItem(label=(e.label_en or e.label) if english else e.label, path=e.path, level=e.level,
                            current=_current(e.path, path)))
    return out


def landing(user: Any) -> str | None:
    """The page a role starts on, when it has one of its own."""
    return LANDING.get(user.role) if user is not None else None
