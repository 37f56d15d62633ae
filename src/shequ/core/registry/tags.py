"""标签 tags: the taxonomy, manual tags, rule-based tags and their recomputation.

A tag with a rule (see ``tag_rules``) is computed from facts and never set by hand; a tag
without one is manual and never touched by recomputation. Rule tags follow their inputs:
after any flush that changes a person, household, house, organisation or a manual tagging,
the rule tags of the records affected are recomputed at the end of that same flush (Core
writes, inside the transaction), so a query after the flush already sees them.
``recompute_all`` recomputes everything (after a bulk load, and daily since ages change).

Audit: manual tag changes are written to change_log as an update of the tagged record
(key ``tag:<code>``), so they show in the record's history. Rule taggings are derived data
and are not logged row by row; the changes of their inputs are.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, case, delete, event, func, insert, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE

from shequ.core.changelog import ChangeLog
from shequ.core.places.models import Place, PlaceKind, Tenant
from shequ.core.registry.models import (
    Facility,
    House,
    Household,
    Organisation,
    Person,
    PersonStatus,
    ResidenceType,
    Situation,
    Tag,
    Tagging,
)
from shequ.core.registry.tag_rules import (
    FACT_FIELDS,
    Condition,
    Facts,
    RuleError,
    matching_ids,
    tags_named,
    validate_rule,
)
from shequ.db import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHUNK = 5000

# applies_to → the entity key stored on Tagging (the kind key that list filters use)
APPLIES_TO: dict[str, str] = {
    "person": "person", "household": "household", "house": "house",
    "organisation": "organisation", "facility": "facility", "situation": "situation",
    "building": "place", "place": "place",
}
MODELS: dict[str, type[Any]] = {
    "person": Person, "household": Household, "house": House, "organisation": Organisation,
    "facility": Facility, "situation": Situation, "place": Place,
}
RULE_ENTITIES = tuple(FACT_FIELDS)  # person, house, organisation


class TagError(ValueError):
    """A tag operation refused; the message says why in Chinese and English."""


@dataclass(frozen=True)
class DefaultTag:
    code: str
    zh: str
    en: str
    parent: str | None = None
    applies_to: str = "person"
    rule: dict[str, Any] | None = None
    color: str | None = None


ACTIVE = {"field": "status", "op": "eq", "value": PersonStatus.ACTIVE.value}


def _age_ge(years: int) -> dict[str, Any]:
    return {"field": "age", "op": "ge", "value": years}


# The default taxonomy. Thresholds marked (check) are sensible defaults a tenant may edit.
DEFAULT_TAGS: tuple[DefaultTag, ...] = (
    DefaultTag("special_groups", "特殊人群", "special groups", color="orange"),
    DefaultTag("elderly_alone", "独居老人", "elderly living alone", "special_groups",
               rule={"all": [_age_ge(60), {"field": "lives_alone", "op": "eq", "value": True}, ACTIVE]},
               color="red"),
    DefaultTag("very_old", "高龄", "aged 80 and over", "special_groups",
               rule={"all": [_age_ge(80), ACTIVE]}, color="orange"),
    DefaultTag("elderly", "老年人", "aged 60 and over", "special_groups",
               rule={"all": [_age_ge(60), ACTIVE]}, color="amber"),
    DefaultTag("minor", "未成年人", "minor (under 18)", "special_groups",
               rule={"all": [{"field": "age", "op": "lt", "value": 18}, ACTIVE]}),
    DefaultTag("disabled", "残疾", "disabled", "special_groups"),
    DefaultTag("low_income", "低保", "minimum living allowance", "special_groups"),
    DefaultTag("solitary_elderly", "孤老", "elderly without family", "special_groups"),
    DefaultTag("bereaved_parents", "失独", "parents who lost their only child", "special_groups"),
    DefaultTag("serious_illness", "重病", "serious illness", "special_groups"),
    DefaultTag("political_status", "政治面貌", "political status", color="red"),
    DefaultTag("party_member", "党员", "Communist Party member", "political_status", color="red"),
    DefaultTag("volunteer", "志愿者", "volunteer", color="green"),
    DefaultTag("household_groups", "家庭", "households", applies_to="household"),
    DefaultTag("hardship_household", "困难家庭", "household in hardship", "household_groups",
               applies_to="household"),
    DefaultTag("housing", "房屋", "housing", applies_to="house"),
    DefaultTag("rented_house", "出租房", "rented house", "housing", applies_to="house",
               rule={"field": "use", "op": "eq", "value": "rented"}),
    # (check) six or more residents in one rented flat is the usual 群租 warning threshold
    DefaultTag("overcrowded_rental", "群租风险", "overcrowded rental risk", "housing",
               applies_to="house", color="red",
               rule={"all": [{"field": "use", "op": "eq", "value": "rented"},
                             {"field": "residents", "op": "ge", "value": 6}]}),
    DefaultTag("vacant_house", "空置房", "vacant house", "housing", applies_to="house",
               rule={"field": "use", "op": "eq", "value": "vacant"}),
    DefaultTag("key_enterprises", "重点企业", "key enterprises", applies_to="organisation"),
    DefaultTag("large_enterprise", "规上企业", "enterprise above designated size",
               "key_enterprises", applies_to="organisation"),
    DefaultTag("major_taxpayer", "纳税大户", "major taxpayer", "key_enterprises",
               applies_to="organisation"),
    # (check) 100 employees taken as the labour-intensive threshold
    DefaultTag("labour_intensive", "劳动密集型", "labour-intensive (100+ employees)",
               "key_enterprises", applies_to="organisation",
               rule={"all": [{"field": "kind", "op": "eq", "value": "enterprise"},
                             {"field": "employees", "op": "ge", "value": 100}]}),
    DefaultTag("building_groups", "楼栋", "buildings", applies_to="building"),
    DefaultTag("elevator_retrofit", "加装电梯", "elevator retrofit", "building_groups",
               applies_to="building"),
)
EN_NAMES: dict[str, str] = {d.code: d.en for d in DEFAULT_TAGS}


def tag_name(tag: Tag, lang: str = "zh-CN") -> str:
    """The tag's name in a language (English known for the default tags)."""
    if lang.startswith("zh"):
        return tag.name
    return EN_NAMES.get(tag.code, tag.name)


def is_rule_tag(tag: Tag) -> bool:
    return bool(tag.rule)


def storage_entity(entity: str) -> str:
    try:
        return APPLIES_TO[entity]
    except KeyError:
        raise TagError(f"未知对象类型 {entity!r} (unknown entity; known: {', '.join(APPLIES_TO)})") from None


def today_shanghai() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


def _chunks(ids: Iterable[int], size: int = CHUNK) -> Iterator[list[int]]:
    items = sorted(i for i in ids if i is not None)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _tenant(session: Session) -> int:
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise TagError("会话没有绑定租户 (the session is bound to no tenant)")
    return int(tenant_id)


# --- taxonomy --------------------------------------------------------------------------------


def get_tag(*, session: Session, code: str) -> Tag | None:
    return session.scalar(select(Tag).where(Tag.code == code))


def _require_tag(session: Session, code: str) -> Tag:
    tag = get_tag(session=session, code=code)
    if tag is None:
        raise TagError(f"没有标签 {code!r} (unknown tag)")
    return tag


def list_tags(*, session: Session, entity: str | None = None) -> list[Tag]:
    """The tenant's tags (for an entity, when given), parents before children."""
    stmt = select(Tag).order_by(Tag.id)
    tags = list(session.scalars(stmt))
    if entity is not None:
        target = storage_entity(entity)
        tags = [t for t in tags if APPLIES_TO.get(t.applies_to) == target]
    by_parent: dict[int | None, list[Tag]] = defaultdict(list)
    ids = {t.id for t in tags}
    for t in tags:
        by_parent[t.parent_id if t.parent_id in ids else None].append(t)
    out: list[Tag] = []

    def walk(parent: int | None) -> None:
        for child in by_parent.get(parent, []):
            out.append(child)
            walk(child.id)

    walk(None)
    return out


def _subtrees(rows: Sequence[Any]) -> dict[str, frozenset[str]]:
    """code → codes of the tag and everything beneath it (rows need id, code, parent_id)."""
    children: dict[int | None, list[Any]] = defaultdict(list)
    for r in rows:
        children[r.parent_id].append(r)
    out: dict[str, frozenset[str]] = {}

    def collect(row: Any, seen: set[int]) -> set[str]:
        codes = {row.code}
        for child in children.get(row.id, []):
            if child.id not in seen:
                codes |= collect(child, seen | {child.id})
        return codes

    for r in rows:
        out[r.code] = frozenset(collect(r, {r.id}))
    return out


def _check_rule(session: Session, *, code: str, applies_to: str, rule: Any) -> dict[str, Any]:
    """Validate a rule for saving: fields, operators, values, known tags, no cycle."""
    if applies_to not in RULE_ENTITIES:
        raise RuleError(f"「{applies_to}」的标签不能设规则 (rule tags exist for "
                        f"{', '.join(RULE_ENTITIES)} only)")
    rows = list(session.execute(select(Tag.id, Tag.code, Tag.parent_id, Tag.rule, Tag.applies_to)))
    known = {r.code for r in rows} | {code}
    cond = validate_rule(rule, applies_to, known_tags=known)
    # dependency graph over rule tags (has_tag names a tag or its subtree) — refuse cycles
    rules = {r.code: r.rule for r in rows if r.rule and r.applies_to == applies_to}
    rules[code] = rule
    subtrees = _subtrees(rows)
    deps: dict[str, set[str]] = {}
    for other, other_rule in rules.items():
        try:
            deps[other] = _depends_on(cond if other == code else validate_rule(other_rule, applies_to),
                                      subtrees)
        except RuleError:
            deps[other] = set()
    if code in deps[code]:
        raise RuleError(f"rule.value: 标签 {code!r} 的规则不能依赖它自己 (a rule cannot depend "
                        f"on its own tag)")
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        if node in visiting:
            raise RuleError(f"rule: 规则之间形成循环依赖，涉及 {node!r} (rules depend on each "
                            f"other in a cycle)")
        visiting.add(node)
        for dep in deps.get(node, ()):
            if dep in rules:
                visit(dep)
        visiting.discard(node)
        done.add(node)

    for node in rules:
        visit(node)
    return rule


def _valid_code(code: str) -> str:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_]{1,59}", code or ""):
        raise TagError(f"标签编码 {code!r} 须为小写英文、数字和下划线 (code must be snake_case)")
    return code


def create_tag(*, session: Session, code: str, name: str, applies_to: str = "person",
               parent_code: str | None = None, rule: dict[str, Any] | None = None,
               color: str | None = None, description: str = "") -> Tag:
    """Add a tag to the taxonomy; a rule is validated and applied at once."""
    _valid_code(code)
    if applies_to not in APPLIES_TO:
        raise TagError(f"未知适用对象 {applies_to!r} (unknown applies_to; known: {', '.join(APPLIES_TO)})")
    if not name.strip():
        raise TagError("标签名称不能为空 (name is required)")
    if get_tag(session=session, code=code) is not None:
        raise TagError(f"标签编码 {code!r} 已存在 (code already exists)")
    parent = _require_tag(session, parent_code) if parent_code else None
    if parent is not None and parent.applies_to != applies_to:
        raise TagError(f"上级标签「{parent.name}」适用于 {parent.applies_to}，不是 {applies_to} "
                       f"(the parent tag applies to another entity)")
    if rule:
        _check_rule(session, code=code, applies_to=applies_to, rule=rule)
    tag = Tag(code=code, name=name.strip(), applies_to=applies_to, parent_id=parent.id if parent else None,
              rule=rule or None, color=color, description=description)
    session.add(tag)
    session.flush()
    if rule:
        recompute(session=session, entity=applies_to)
    return tag


_UNCHANGED: Any = object()


def update_tag(*, session: Session, code: str, name: str | None = None, rule: Any = _UNCHANGED,
               parent_code: Any = _UNCHANGED, color: Any = _UNCHANGED,
               description: str | None = None) -> Tag:
    """Change a tag. ``rule=None`` makes a rule tag manual (its taggings stay, now manual);
    a new rule turns a manual tag into a computed one (its taggings are recomputed)."""
    tag = _require_tag(session, code)
    if name is not None:
        if not name.strip():
            raise TagError("标签名称不能为空 (name is required)")
        tag.name = name.strip()
    if description is not None:
        tag.description = description
    if color is not _UNCHANGED:
        tag.color = color
    if parent_code is not _UNCHANGED:
        parent = _require_tag(session, parent_code) if parent_code else None
        if parent is not None:
            ancestor: Tag | None = parent
            while ancestor is not None:
                if ancestor.id == tag.id:
                    raise TagError("上级标签不能是自己或下级 (a tag cannot sit under itself)")
                ancestor = session.get(Tag, ancestor.parent_id) if ancestor.parent_id else None
        tag.parent_id = parent.id if parent else None
    recompute_needed = False
    if rule is not _UNCHANGED:
        if rule:
            _check_rule(session, code=code, applies_to=tag.applies_to, rule=rule)
            was_manual = not tag.rule
            tag.rule = rule
            session.flush()
            if was_manual:
                session.execute(update(Tagging).where(Tagging.tag_id == tag.id)
                                .values(origin="rule", by="rule")
                                .execution_options(synchronize_session=False))
            recompute_needed = True
        elif tag.rule:
            tag.rule = None
            session.flush()
            session.execute(update(Tagging).where(Tagging.tag_id == tag.id)
                            .values(origin="manual")
                            .execution_options(synchronize_session=False))
            recompute_needed = tag.applies_to in RULE_ENTITIES  # dependents may change
    session.flush()
    if recompute_needed:
        recompute(session=session, entity=tag.applies_to)
    return tag


def install_default_tags(*, session: Session) -> int:
    """Create the default taxonomy where missing (by code); returns how many were created.

    Existing tags are left as the tenant edited them. Rule tags are computed at once.
    """
    existing = {t.code: t for t in session.scalars(select(Tag))}
    created = 0
    for d in DEFAULT_TAGS:
        if d.code in existing:
            continue
        parent = existing.get(d.parent) if d.parent else None
        tag = Tag(code=d.code, name=d.zh, applies_to=d.applies_to, rule=d.rule,
                  parent_id=parent.id if parent else None, color=d.color, description=d.en)
        session.add(tag)
        session.flush()
        existing[d.code] = tag
        created += 1
    if created and not session.info.get("defer_tag_recompute"):
        for entity in RULE_ENTITIES:
            recompute(session=session, entity=entity)
    return created


# --- manual tags --------------------------------------------------------------------------


def _check_target(session: Session, tag: Tag, entity: str, entity_id: int) -> str:
    target = storage_entity(entity)
    if APPLIES_TO[tag.applies_to] != target:
        raise TagError(f"标签「{tag.name}」适用于 {tag.applies_to}，不能用于 {entity} "
                       f"(tag applies to another entity)")
    model = MODELS[target]
    row = session.execute(select(model.id, *([model.kind] if model is Place else []))
                          .where(model.id == entity_id)).first()
    if row is None:
        raise TagError(f"没有 {entity} #{entity_id} (no such record)")
    if tag.applies_to == "building" and row.kind != PlaceKind.BUILDING:
        raise TagError(f"标签「{tag.name}」只用于楼栋 (this tag applies to buildings only)")
    return target


def _log_tag_change(session: Session, *, entity: str, entity_id: int, tag: Tag, added: bool,
                    by: str) -> None:
    key = f"tag:{tag.code}"
    session.add(ChangeLog(entity=entity, entity_id=entity_id, action="update", actor=by,
                          before={key: None if added else tag.name},
                          after={key: tag.name if added else None}))


def add_tag(*, session: Session, code: str, entity: str, entity_id: int, by: str) -> Tagging:
    """Set a manual tag on a record (idempotent); refused for rule tags."""
    tag = _require_tag(session, code)
    if is_rule_tag(tag):
        raise TagError(f"「{tag.name}」是规则标签，由规则自动计算，不能手工设置 "
                       f"(a rule tag is computed, never set by hand)")
    target = _check_target(session, tag, entity, entity_id)
    existing = session.scalar(select(Tagging).where(
        Tagging.tag_id == tag.id, Tagging.entity == target, Tagging.entity_id == entity_id))
    if existing is not None:
        return existing
    tagging = Tagging(tag_id=tag.id, entity=target, entity_id=entity_id, origin="manual", by=by)
    session.add(tagging)
    _log_tag_change(session, entity=target, entity_id=entity_id, tag=tag, added=True, by=by)
    session.flush()
    return tagging


def remove_tag(*, session: Session, code: str, entity: str, entity_id: int, by: str) -> bool:
    """Take a manual tag off a record; returns whether it was there. Refused for rule tags."""
    tag = _require_tag(session, code)
    if is_rule_tag(tag):
        raise TagError(f"「{tag.name}」是规则标签，由规则自动计算，不能手工去除 "
                       f"(a rule tag is computed, never removed by hand)")
    target = storage_entity(entity)
    tagging = session.scalar(select(Tagging).where(
        Tagging.tag_id == tag.id, Tagging.entity == target, Tagging.entity_id == entity_id))
    if tagging is None:
        return False
    session.delete(tagging)
    _log_tag_change(session, entity=target, entity_id=entity_id, tag=tag, added=False, by=by)
    session.flush()
    return True


@dataclass(frozen=True)
class TagOn:
    """A tag as carried by one record: the tag and whether a person or a rule set it."""

    tag: Tag
    origin: str
    by: str
    at: dt.datetime


def taggings_of(*, session: Session, entity: str, ids: Iterable[int]) -> dict[int, list[TagOn]]:
    """Tags of many records with their origin, in one query per 5,000 ids."""
    target = storage_entity(entity)
    out: dict[int, list[TagOn]] = defaultdict(list)
    for chunk in _chunks(set(ids)):
        stmt = (select(Tagging.entity_id, Tagging.origin, Tagging.by, Tagging.at, Tag)
                .join(Tag, Tag.id == Tagging.tag_id)
                .where(Tagging.entity == target, Tagging.entity_id.in_(chunk))
                .order_by(Tagging.entity_id, Tag.id))
        for entity_id, origin, by, at, tag in session.execute(stmt):
            out[entity_id].append(TagOn(tag, origin, by, at))
    return dict(out)


def tags_of(*, session: Session, entity: str, ids: Iterable[int]) -> dict[int, list[Tag]]:
    """The tags of many records: {id: [Tag, …]} (records without tags are absent)."""
    return {k: [t.tag for t in v] for k, v in taggings_of(session=session, entity=entity, ids=ids).items()}


@dataclass(frozen=True)
class TagCount:
    """How many records carry a tag or any tag beneath it (for a browser's filter list)."""

    tag: Tag
    count: int
    depth: int


def tag_counts(*, session: Session, entity: str) -> list[TagCount]:
    """Every tag of an entity in taxonomy order with the number of distinct records under it."""
    target = storage_entity(entity)
    tags = list_tags(session=session, entity=entity)
    if not tags:
        return []
    direct = dict(session.execute(
        select(Tagging.tag_id, func.count()).where(Tagging.entity == target)
        .group_by(Tagging.tag_id)).all())
    children: dict[int, list[Tag]] = defaultdict(list)
    for t in tags:
        if t.parent_id is not None:
            children[t.parent_id].append(t)

    def subtree(t: Tag) -> list[int]:
        ids = [t.id]
        for c in children.get(t.id, []):
            ids += subtree(c)
        return ids

    by_id = {t.id: t for t in tags}
    out: list[TagCount] = []
    for t in tags:
        depth, p = 0, t.parent_id
        while p in by_id:
            depth, p = depth + 1, by_id[p].parent_id
        ids = subtree(t)
        if len(ids) == 1:
            count = int(direct.get(t.id, 0))
        else:
            count = session.scalar(select(func.count(func.distinct(Tagging.entity_id))).where(
                Tagging.entity == target, Tagging.tag_id.in_(ids))) or 0
        out.append(TagCount(t, int(count), depth))
    return out


# --- facts -------------------------------------------------------------------------------


def age_on(birth: dt.date | None, today: dt.date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


AWAY = ResidenceType.REGISTERED_AWAY.value


def _house_residents(session: Session, tenant_id: int, house_ids: set[int] | None) -> dict[int, int]:
    """Persons living in each house (active, and not registered here while living elsewhere —
    人户分离), a person living in their own house_id or else their household's house."""
    home = func.coalesce(Person.house_id, Household.house_id)
    stmt = (select(home, func.count()).select_from(Person)
            .outerjoin(Household, Household.id == Person.household_id)
            .where(Person.tenant_id == tenant_id, Person.status == PersonStatus.ACTIVE.value,
                   Person.residence_type != AWAY, home.is_not(None))
            .group_by(home))
    if house_ids is None:
        return {k: v for k, v in session.connection().execute(stmt).all()}
    # for some houses: two indexed queries (own house; else the household's) instead of
    # filtering on the coalesce, which no index serves
    # (only the id predicate in WHERE: the ids are the tenant's own, and SQLite's planner
    # otherwise picks the low-selectivity tenant or status index)
    active = func.sum(case(((Person.status == PersonStatus.ACTIVE.value) & (Person.residence_type != AWAY), 1),
                           else_=0))
    own = select(Person.house_id, active).group_by(Person.house_id)
    via = (select(Household.house_id, active).select_from(Person)
           .join(Household, Household.id == Person.household_id)
           .where(Person.house_id.is_(None))
           .group_by(Household.house_id))
    out: dict[int, int] = defaultdict(int)
    conn = session.connection()
    for chunk in _chunks(house_ids):
        for house_id, n in conn.execute(own.where(Person.house_id.in_(chunk))):
            out[house_id] += n
        for house_id, n in conn.execute(via.where(Household.house_id.in_(chunk))):
            out[house_id] += n
    return out


def _manual_codes(session: Session, tenant_id: int, entity: str, rule_tag_ids: set[int],
                  ids: set[int] | None) -> dict[int, set[str]]:
    stmt = (select(Tagging.entity_id, Tagging.tag_id, Tag.code).join(Tag, Tag.id == Tagging.tag_id)
            .where(Tagging.entity == entity))
    if ids is None:
        stmt = stmt.where(Tagging.tenant_id == tenant_id)
    out: dict[int, set[str]] = defaultdict(set)
    for eid, tag_id, code in _rows(session, stmt, Tagging.entity_id, ids):
        if tag_id not in rule_tag_ids:
            out[eid].add(code)
    return out


def _rows(session: Session, stmt: Any, column: Any, ids: set[int] | None) -> list[Any]:
    """Plain rows through the connection (no ORM loading: these are bulk reads; every
    statement here filters by tenant itself)."""
    conn = session.connection()
    if ids is None:
        return list(conn.execute(stmt).all())
    out: list[Any] = []
    for chunk in _chunks(ids):
        out += conn.execute(stmt.where(column.in_(chunk))).all()
    return out


def _person_facts(session: Session, tenant_id: int, ids: set[int] | None, today: dt.date) -> dict[int, Facts]:
    # rows are unpacked as tuples throughout: attribute access on 150,000 rows costs seconds
    rows = [tuple(r) for r in _rows(
        session, select(Person.id, Person.birth_date, Person.sex, Person.residence_type,
                        Person.status, Person.household_id, Person.house_id)
        .where(Person.tenant_id == tenant_id), Person.id, ids)]
    household_ids = {r[5] for r in rows if r[5]}
    active = PersonStatus.ACTIVE.value
    # household_size counts active members; lives_alone counts those who actually live there
    # (a member registered here but living elsewhere — 人户分离 — leaves the others alone)
    if ids is None:  # every person is loaded already: count in Python, no GROUP BY
        sizes: dict[int, int] = Counter(r[5] for r in rows if r[5] and r[4] == active)
        present: dict[int, int] = Counter(r[5] for r in rows if r[5] and r[4] == active and r[3] != AWAY)
    else:
        sizes, present = {}, {}
        is_active = Person.status == PersonStatus.ACTIVE.value
        for chunk in _chunks(household_ids):
            for hid, n_active, n_present in session.connection().execute(
                    select(Person.household_id, func.sum(case((is_active, 1), else_=0)),
                           func.sum(case((is_active & (Person.residence_type != AWAY), 1), else_=0)))
                    .where(Person.household_id.in_(chunk)).group_by(Person.household_id)):
                sizes[hid], present[hid] = n_active, n_present
    loose_houses = {r[6] for r in rows if not r[5] and r[6]}
    residents = _house_residents(session, tenant_id, None if ids is None else loose_houses) \
        if loose_houses else {}
    out: dict[int, Facts] = {}
    for pid, birth, sex, residence_type, status, household_id, house_id in rows:
        here = status == active and residence_type != AWAY
        if household_id:
            size: int | None = sizes.get(household_id, 0)
            alone: bool | None = here and present.get(household_id, 0) == 1
        else:
            size = None
            alone = (here and residents.get(house_id, 0) == 1) if house_id else None
        out[pid] = {"age": age_on(birth, today), "sex": sex, "residence_type": residence_type,
                    "status": status, "household_size": size, "lives_alone": alone}
    return out


def _house_facts(session: Session, tenant_id: int, ids: set[int] | None, today: dt.date) -> dict[int, Facts]:
    rows = [tuple(r) for r in _rows(session, select(House.id, House.use, House.area_m2)
                                    .where(House.tenant_id == tenant_id), House.id, ids)]
    residents = _house_residents(session, tenant_id, None if ids is None else {r[0] for r in rows})
    return {hid: {"use": use, "area_m2": area, "residents": residents.get(hid, 0)}
            for hid, use, area in rows}


def _organisation_facts(session: Session, tenant_id: int, ids: set[int] | None,
                        today: dt.date) -> dict[int, Facts]:
    rows = _rows(session, select(Organisation.id, Organisation.kind, Organisation.employees,
                                 Organisation.industry).where(Organisation.tenant_id == tenant_id),
                 Organisation.id, ids)
    return {oid: {"kind": kind, "employees": employees, "industry": industry}
            for oid, kind, employees, industry in (tuple(r) for r in rows)}


FACT_LOADERS = {"person": _person_facts, "house": _house_facts, "organisation": _organisation_facts}


def facts(*, session: Session, entity: str, ids: Iterable[int] | None = None,
          today: dt.date | None = None) -> dict[int, Facts]:
    """The facts rules test, per record (manual tag codes under ``tags``)."""
    tenant_id = _tenant(session)
    id_set = None if ids is None else set(ids)
    out = FACT_LOADERS[entity](session, tenant_id, id_set, today or today_shanghai())
    codes = _manual_codes(session, tenant_id, entity, set(), id_set)
    for eid, f in out.items():
        f["tags"] = codes.get(eid, set())
    return out


# --- recomputation -----------------------------------------------------------------------


def _depends_on(cond: Any, subtrees: dict[str, frozenset[str]]) -> set[str]:
    """Codes a condition depends on: every tag named by has_tag and the tags beneath it."""
    out: set[str] = set()
    for code in tags_named(cond):
        out |= subtrees.get(code, frozenset({code}))
    return out


@dataclass(frozen=True)
class _Step:
    tag_id: int
    code: str
    cond: Condition
    depends_on: frozenset[str]


def _rule_plan(session: Session, tenant_id: int, entity: str) -> tuple[list[_Step], dict[str, frozenset[str]]]:
    """The entity's rule tags in dependency order, and the taxonomy's subtrees. Invalid
    stored rules are skipped rather than sinking every write (they were refused when saved)."""
    rows = list(session.execute(select(Tag.id, Tag.code, Tag.parent_id, Tag.rule, Tag.applies_to)
                                .where(Tag.tenant_id == tenant_id)))
    subtrees = _subtrees(rows)
    steps: dict[str, _Step] = {}
    for r in rows:
        if not r.rule or r.applies_to != entity:
            continue
        try:
            cond = validate_rule(r.rule, entity)
        except RuleError:
            continue
        steps[r.code] = _Step(r.id, r.code, cond, frozenset(_depends_on(cond, subtrees)))
    order: list[_Step] = []
    done: set[str] = set()

    def visit(code: str, stack: frozenset[str]) -> None:
        if code in done or code in stack:
            return
        for dep in steps[code].depends_on:
            if dep in steps:
                visit(dep, stack | {code})
        done.add(code)
        order.append(steps[code])

    for code in steps:
        visit(code, frozenset())
    return order, subtrees


def _recompute_entity(session: Session, tenant_id: int, entity: str, ids: set[int] | None,
                      today: dt.date) -> int:
    """Bring the rule taggings of some (or all) records of an entity in line with the rules."""
    plan, subtrees = _rule_plan(session, tenant_id, entity)
    rule_tag_ids = {step.tag_id for step in plan}
    if not plan or (ids is not None and not ids):
        return 0
    records = FACT_LOADERS[entity](session, tenant_id, ids, today)
    universe = set(records)
    # who carries which tag: manual tags first, then each rule tag as it is computed
    members: dict[str, set[int]] = defaultdict(set)
    if any(step.depends_on for step in plan):
        for eid, codes in _manual_codes(session, tenant_id, entity, rule_tag_ids, ids).items():
            for code in codes:
                members[code].add(eid)
    columns: dict[str, list[tuple[int, Any]]] = {}

    def column(key: str) -> list[tuple[int, Any]]:
        if key not in columns:
            columns[key] = [(eid, f.get(key)) for eid, f in records.items()]
        return columns[key]

    def tagged(code: str) -> set[int]:
        out: set[int] = set()
        for c in subtrees.get(code, frozenset({code})):
            out |= members.get(c, set())
        return out

    desired: set[tuple[int, int]] = set()
    for step in plan:
        found = matching_ids(step.cond, column, universe, tagged)
        members[step.code] |= found
        desired.update((step.tag_id, eid) for eid in found)
    table: Table = Tagging.__table__  # type: ignore[assignment]
    existing_stmt = select(table.c.id, table.c.tag_id, table.c.entity_id).where(table.c.entity == entity)
    if ids is None:
        existing_stmt = existing_stmt.where(table.c.tenant_id == tenant_id,
                                            table.c.tag_id.in_(rule_tag_ids))
    existing: dict[tuple[int, int], int] = {}
    for row_id, tag_id, entity_id in (tuple(r) for r in _rows(session, existing_stmt,
                                                              table.c.entity_id, ids)):
        if tag_id in rule_tag_ids:
            existing[(tag_id, entity_id)] = row_id
    stale = [tid for key, tid in existing.items() if key not in desired]
    fresh = [key for key in desired if key not in existing]
    conn = session.connection()
    for chunk in _chunks(stale):
        conn.execute(delete(table).where(table.c.id.in_(chunk)))
    if fresh:
        now = utcnow()
        rows = [{"tenant_id": tenant_id, "tag_id": tag_id, "entity": entity, "entity_id": eid,
                 "origin": "rule", "by": "rule", "at": now} for tag_id, eid in sorted(fresh)]
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(table), rows[start:start + CHUNK])
    return len(stale) + len(fresh)


def recompute(*, session: Session, entity: str, ids: Iterable[int] | None = None,
              today: dt.date | None = None) -> int:
    """Recompute the rule tags of an entity (all records, or the ids given) in the session's
    tenant; returns how many taggings were added or removed."""
    entity = storage_entity(entity)
    if entity not in RULE_ENTITIES:
        return 0
    session.flush()
    return _recompute_entity(session, _tenant(session), entity, None if ids is None else set(ids),
                             today or today_shanghai())


def recompute_all(*, session: Session, today: dt.date | None = None) -> int:
    """Recompute every rule tag of every record (the session's tenant, or every tenant when
    the session has none); returns how many taggings were added or removed."""
    session.flush()
    today = today or today_shanghai()
    tenant_id = session.info.get("tenant_id")
    tenants = [tenant_id] if tenant_id is not None else list(session.scalars(select(Tenant.id)))
    changed = 0
    for tid in tenants:
        for entity in RULE_ENTITIES:
            changed += _recompute_entity(session, int(tid), entity, None, today)
    return changed


# --- following changes: session events -----------------------------------------------------

PERSON_INPUTS = ("birth_date", "status", "household_id", "house_id", "place_id", "sex",
                 "residence_type")
HOUSE_INPUTS = ("use", "area_m2")
ORG_INPUTS = ("kind", "employees", "industry")
PENDING = "_tags_pending"


@dataclass
class _Pending:
    person: set[int]
    house: set[int]
    organisation: set[int]
    households: set[int]
    gone: dict[str, set[int]]

    @classmethod
    def empty(cls) -> _Pending:
        return cls(set(), set(), set(), set(), defaultdict(set))


def _ids(*values: int | None) -> set[int]:
    return {v for v in values if v is not None}


def _changed(obj: Any, keys: Sequence[str]) -> bool:
    state = inspect(obj)
    committed = state.committed_state  # an attribute without an entry here has no changes
    return any(k in committed and state.get_history(k, PASSIVE_NO_INITIALIZE).has_changes() for k in keys)


def _old_and_new(obj: Any, key: str) -> set[int]:
    hist = inspect(obj).attrs[key].history
    values = set(hist.deleted or ()) | set(hist.added or ()) | set(hist.unchanged or ())
    return {v for v in values if isinstance(v, int)}


@event.listens_for(Session, "after_flush")
def _collect_tag_inputs(session: Session, _ctx: Any) -> None:
    if session.info.get("defer_tag_recompute") or session.info.get("_tags_busy"):
        return
    pending: dict[int, _Pending] = session.info.setdefault(PENDING, {})

    def bucket(obj: Any) -> _Pending:
        return pending.setdefault(obj.tenant_id, _Pending.empty())

    for obj in session.new:
        if isinstance(obj, Person):
            b = bucket(obj)
            b.person.add(obj.id)
            b.households |= _ids(obj.household_id)
            b.house |= _ids(obj.house_id)
        elif isinstance(obj, House):
            bucket(obj).house.add(obj.id)
        elif isinstance(obj, Organisation):
            bucket(obj).organisation.add(obj.id)
        elif isinstance(obj, Household):
            bucket(obj).households.add(obj.id)
        elif isinstance(obj, Tagging) and obj.entity in RULE_ENTITIES:
            getattr(bucket(obj), obj.entity).add(obj.entity_id)
    for obj in session.dirty:
        if isinstance(obj, Person) and _changed(obj, PERSON_INPUTS):
            b = bucket(obj)
            b.person.add(obj.id)
            # who lives where decides the others' lives_alone and the house's residents
            if _changed(obj, ("household_id", "status", "residence_type")):
                b.households |= _old_and_new(obj, "household_id")
            if _changed(obj, ("house_id", "household_id", "status", "residence_type")):
                b.house |= _old_and_new(obj, "house_id")
                b.households |= _old_and_new(obj, "household_id")
        elif isinstance(obj, House) and _changed(obj, HOUSE_INPUTS):
            bucket(obj).house.add(obj.id)
        elif isinstance(obj, Organisation) and _changed(obj, ORG_INPUTS):
            bucket(obj).organisation.add(obj.id)
        elif isinstance(obj, Household) and _changed(obj, ("house_id",)):
            b = bucket(obj)
            b.households.add(obj.id)
            b.house |= _old_and_new(obj, "house_id")
    for obj in session.deleted:
        if isinstance(obj, Person | House | Organisation | Household):
            b = bucket(obj)
            b.gone[obj.__tablename__].add(obj.id)
            if isinstance(obj, Person):
                b.households |= _ids(obj.household_id)
                b.house |= _ids(obj.house_id)
            elif isinstance(obj, Household):
                b.house |= _ids(obj.house_id)
        elif isinstance(obj, Tagging) and obj.entity in RULE_ENTITIES:
            getattr(bucket(obj), obj.entity).add(obj.entity_id)


@event.listens_for(Session, "after_flush_postexec")
def _recompute_after_flush(session: Session, _ctx: Any) -> None:
    pending: dict[int, _Pending] | None = session.info.pop(PENDING, None)
    if not pending or session.info.get("_tags_busy"):
        return
    session.info["_tags_busy"] = True
    try:
        today = today_shanghai()
        for tenant_id, p in pending.items():
            _apply_pending(session, tenant_id, p, today)
    finally:
        session.info.pop("_tags_busy", None)


def _apply_pending(session: Session, tenant_id: int, p: _Pending, today: dt.date) -> None:
    conn = session.connection()
    table: Table = Tagging.__table__  # type: ignore[assignment]
    for entity, ids in p.gone.items():
        # a deleted record keeps no tags, manual or computed
        for chunk in _chunks(ids):
            conn.execute(delete(table).where(table.c.entity == entity, table.c.entity_id.in_(chunk)))
    if p.households:
        for chunk in _chunks(p.households):
            # ids only in WHERE: they are the tenant's own, and the planner then uses their index
            p.person |= set(conn.execute(select(Person.id).where(
                Person.household_id.in_(chunk))).scalars())
            p.house |= {h for h in conn.execute(select(Household.house_id).where(
                Household.id.in_(chunk))).scalars() if h}
    if p.house:
        # people who live in an affected house without a household of their own
        for chunk in _chunks(p.house):
            p.person |= set(conn.execute(select(Person.id).where(
                Person.house_id.in_(chunk), Person.household_id.is_(None))).scalars())
    for entity, ids in (("person", p.person), ("house", p.house), ("organisation", p.organisation)):
        if ids:
            _recompute_entity(session, tenant_id, entity, ids, today)


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, _previous: Any) -> None:
    session.info.pop(PENDING, None)
