"""The condition language of rule-based tags (规则标签): JSON data checked by Pydantic, never eval.

A condition is either a combinator or a leaf::

    {"all": [c, ...]}   {"any": [c, ...]}   {"not": c}
    {"field": "age", "op": "ge", "value": 80}

Fields are whitelisted per entity (the facts that ``tags.facts`` computes), operators are
whitelisted per field type, and values are checked against the field's type. A comparison
with a missing fact (e.g. no birth date) is false, whatever the operator, except
``is_null``/``not_null``. ``has_tag`` is true when the record carries the tag or any tag
beneath it in the taxonomy. Conditions compile to plain Python closures for fast evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shequ.core.registry.models import HouseUse, OrgKind, PersonStatus, ResidenceType

Op = Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "between", "is_null", "not_null",
             "has_tag"]
OPS: tuple[str, ...] = Op.__args__  # type: ignore[attr-defined]


class RuleError(ValueError):
    """A rule that cannot be saved; the message names the problem in Chinese and English."""


@dataclass(frozen=True)
class FactField:
    """One fact a rule may test: its type (int | float | str | bool | tags) and allowed values."""

    key: str
    type: str
    zh: str
    en: str
    choices: tuple[str, ...] = ()


NUMERIC_OPS = frozenset({"eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "between", "is_null",
                         "not_null"})
TYPE_OPS: dict[str, frozenset[str]] = {
    "int": NUMERIC_OPS,
    "float": NUMERIC_OPS,
    "str": frozenset({"eq", "ne", "in", "not_in", "is_null", "not_null"}),
    "bool": frozenset({"eq", "ne", "is_null", "not_null"}),
    "tags": frozenset({"has_tag"}),
}

# The whitelist: which facts each entity offers to rules (computed by tags.facts).
FACT_FIELDS: dict[str, dict[str, FactField]] = {
    "person": {f.key: f for f in (
        FactField("age", "int", "年龄", "age (years, Asia/Shanghai today)"),
        FactField("sex", "str", "性别", "sex", ("M", "F")),
        FactField("residence_type", "str", "人口类型", "residence type", tuple(ResidenceType)),
        FactField("status", "str", "状态", "status", tuple(PersonStatus)),
        FactField("household_size", "int", "同户在册人数", "active members of the household"),
        FactField("lives_alone", "bool", "独居", "the only person living in the household (人户分离 members do not count)"),
        FactField("tags", "tags", "标签", "tags"),
    )},
    "house": {f.key: f for f in (
        FactField("use", "str", "房屋用途", "use", tuple(HouseUse)),
        FactField("area_m2", "float", "建筑面积", "area (m²)"),
        FactField("residents", "int", "居住人数", "active residents living there (not 人户分离)"),
        FactField("tags", "tags", "标签", "tags"),
    )},
    "organisation": {f.key: f for f in (
        FactField("kind", "str", "组织类型", "kind", tuple(OrgKind)),
        FactField("employees", "int", "从业人数", "employees"),
        FactField("industry", "str", "行业", "industry"),
        FactField("tags", "tags", "标签", "tags"),
    )},
}


# --- the shape of a condition (Pydantic) ------------------------------------------------


class Leaf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Op
    value: Any = None


class AllOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all: list[Condition] = Field(min_length=1)


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    any: list[Condition] = Field(min_length=1)


class Not(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    not_: Condition = Field(alias="not")


Condition = AllOf | AnyOf | Not | Leaf


def _parse(data: Any, path: str) -> Condition:
    """Pick the node type from its keys first, so errors name one node, not four guesses."""
    if not isinstance(data, dict):
        raise RuleError(f"{path}: 条件必须是对象 (a condition must be a JSON object), got {data!r}")
    keys = set(data)
    try:
        if keys == {"all"} or keys == {"any"}:
            key = next(iter(keys))
            items = data[key]
            if not isinstance(items, list) or not items:
                raise RuleError(f"{path}.{key}: 需要非空列表 (needs a non-empty list)")
            children = [_parse(item, f"{path}.{key}[{i}]") for i, item in enumerate(items)]
            return AllOf(all=children) if key == "all" else AnyOf(any=children)
        if keys == {"not"}:
            return Not.model_validate({"not": _parse(data["not"], f"{path}.not")})
        if "field" in keys or "op" in keys:
            return Leaf.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "literal_error":
            raise RuleError(f"{path}.op: 不支持的运算符 {data.get('op')!r} (unknown operator; "
                            f"allowed: {', '.join(OPS)})") from None
        if first["type"] == "extra_forbidden":
            raise RuleError(f"{path}: 多余的键 {where!r} (unexpected key)") from None
        raise RuleError(f"{path}.{where}: {first['msg']}") from None
    raise RuleError(f"{path}: 无法识别的条件 {sorted(keys)} (expected all/any/not or "
                    f"field/op/value)")


def _check_value(leaf: Leaf, spec: FactField, path: str) -> None:
    op, value = leaf.op, leaf.value
    if op not in TYPE_OPS[spec.type]:
        allowed = ", ".join(sorted(TYPE_OPS[spec.type]))
        raise RuleError(f"{path}.op: 字段「{spec.zh}」({spec.key}) 不能用运算符 {op} "
                        f"(operator not allowed for this field; allowed: {allowed})")
    if op in ("is_null", "not_null"):
        if value is not None:
            raise RuleError(f"{path}.value: {op} 不需要取值 (takes no value)")
        return

    def scalar_ok(v: Any) -> bool:
        if spec.type == "int":
            return isinstance(v, int) and not isinstance(v, bool)
        if spec.type == "float":
            return isinstance(v, int | float) and not isinstance(v, bool)
        if spec.type == "bool":
            return isinstance(v, bool)
        if spec.type in ("str", "tags"):
            return isinstance(v, str) and (not spec.choices or v in spec.choices)
        return False

    zh, en = {"int": ("整数", "an integer"), "float": ("数值", "a number"),
              "bool": ("true/false", "true/false"), "str": ("文本", "text"),
              "tags": ("标签编码", "a tag code")}[spec.type]
    if spec.choices:
        zh += f"（可选 {', '.join(spec.choices)}）"
        en += f" in {{{', '.join(spec.choices)}}}"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(scalar_ok(v) for v in value):
            raise RuleError(f"{path}.value: {op} 需要非空列表，元素为{zh} "
                            f"(needs a non-empty list of {en}), got {value!r}")
    elif op == "between":
        if (not isinstance(value, list) or len(value) != 2 or not all(scalar_ok(v) for v in value)
                or value[0] > value[1]):
            raise RuleError(f"{path}.value: between 需要 [下限, 上限]，元素为{zh} "
                            f"(needs [low, high] of {en}), got {value!r}")
    elif not scalar_ok(value):
        raise RuleError(f"{path}.value: 字段「{spec.zh}」({spec.key}) 需要{zh} "
                        f"(value must be {en}), got {value!r}")


def validate_rule(rule: Any, entity: str, *, known_tags: Iterable[str] | None = None) -> Condition:
    """Parse and check a rule for an entity; raise RuleError naming the first problem.

    ``known_tags`` (codes), when given, is what ``has_tag`` may name.
    """
    fields = FACT_FIELDS.get(entity)
    if fields is None:
        raise RuleError(f"「{entity}」没有可用于规则的字段 (rules are available for "
                        f"{', '.join(FACT_FIELDS)} only)")
    cond = _parse(rule, "rule")
    known = set(known_tags) if known_tags is not None else None

    def walk(node: Condition, path: str) -> None:
        if isinstance(node, AllOf):
            for i, child in enumerate(node.all):
                walk(child, f"{path}.all[{i}]")
        elif isinstance(node, AnyOf):
            for i, child in enumerate(node.any):
                walk(child, f"{path}.any[{i}]")
        elif isinstance(node, Not):
            walk(node.not_, f"{path}.not")
        else:
            spec = fields.get(node.field)
            if spec is None:
                raise RuleError(f"{path}.field: 未知字段 {node.field!r} (unknown field for "
                                f"{entity}; allowed: {', '.join(fields)})")
            _check_value(node, spec, path)
            if node.op == "has_tag" and known is not None and node.value not in known:
                raise RuleError(f"{path}.value: 未知标签 {node.value!r} (unknown tag code)")

    walk(cond, "rule")
    return cond


def tags_named(cond: Condition) -> set[str]:
    """The tag codes a condition tests with has_tag (its dependencies)."""
    if isinstance(cond, AllOf):
        return set().union(*(tags_named(c) for c in cond.all))
    if isinstance(cond, AnyOf):
        return set().union(*(tags_named(c) for c in cond.any))
    if isinstance(cond, Not):
        return tags_named(cond.not_)
    return {cond.value} if cond.op == "has_tag" else set()


Facts = dict[str, Any]
Predicate = Callable[[Facts], bool]


def compile_condition(cond: Condition, subtrees: dict[str, frozenset[str]] | None = None) -> Predicate:
    """A closure evaluating the condition on a facts dict; ``subtrees`` maps a tag code to the
    codes of it and its descendants (for has_tag)."""
    subtrees = subtrees or {}
    if isinstance(cond, AllOf | AnyOf):
        parts = [compile_condition(c, subtrees) for c in (cond.all if isinstance(cond, AllOf) else cond.any)]
        # chained closures: cheaper than all()/any() over a generator, 130,000 times a rule
        out = parts[0]
        for nxt in parts[1:]:
            if isinstance(cond, AllOf):
                out = (lambda a, b: lambda f: a(f) and b(f))(out, nxt)
            else:
                out = (lambda a, b: lambda f: a(f) or b(f))(out, nxt)
        return out
    if isinstance(cond, Not):
        inner = compile_condition(cond.not_, subtrees)
        return lambda f: not inner(f)
    key, op, value = cond.field, cond.op, cond.value
    if op == "is_null":
        return lambda f: f.get(key) is None
    if op == "not_null":
        return lambda f: f.get(key) is not None
    if op == "has_tag":
        codes = subtrees.get(value, frozenset({value}))
        return lambda f: not codes.isdisjoint(f.get(key) or ())
    if op in ("in", "not_in"):
        members = frozenset(value)
        if op == "in":
            return lambda f: (v := f.get(key)) is not None and v in members
        return lambda f: (v := f.get(key)) is not None and v not in members
    if op == "between":
        low, high = value
        return lambda f: (v := f.get(key)) is not None and low <= v <= high
    if op == "eq":  # a validated eq value is never None
        return lambda f: f.get(key) == value
    compare: dict[str, Callable[[Any], bool]] = {
        "eq": lambda v: v == value, "ne": lambda v: v != value, "gt": lambda v: v > value,
        "ge": lambda v: v >= value, "lt": lambda v: v < value, "le": lambda v: v <= value,
    }
    test = compare[op]
    return lambda f: (v := f.get(key)) is not None and test(v)


for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def matching_ids(cond: Condition, column: Callable[[str], list[tuple[int, Any]]],
                 universe: set[int], tagged: Callable[[str], set[int]]) -> set[int]:
    """The ids of the records satisfying a condition, evaluated a whole column at a time.

    ``column(field)`` gives (id, value) pairs of every record, ``universe`` all their ids,
    ``tagged(code)`` the ids carrying the tag or a tag beneath it. Same meaning as
    ``compile_condition``, but one tight set comprehension per leaf instead of a function
    call per record and rule: this is how 150,000 people are tagged in well under a second.
    """
    if isinstance(cond, AllOf):
        result: set[int] | None = None
        for child in cond.all:
            found = matching_ids(child, column, universe if result is None else result, tagged)
            result = found if result is None else result & found
            if not result:
                break
        return result or set()
    if isinstance(cond, AnyOf):
        out: set[int] = set()
        for child in cond.any:
            out |= matching_ids(child, column, universe, tagged)
        return out
    if isinstance(cond, Not):
        return universe - matching_ids(cond.not_, column, universe, tagged)
    op, value = cond.op, cond.value
    if op == "has_tag":
        return tagged(value) & universe
    pairs = column(cond.field)
    if op == "is_null":
        return {i for i, v in pairs if v is None}
    if op == "not_null":
        return {i for i, v in pairs if v is not None}
    if op == "eq":
        return {i for i, v in pairs if v == value}
    if op == "ne":
        return {i for i, v in pairs if v is not None and v != value}
    if op == "gt":
        return {i for i, v in pairs if v is not None and v > value}
    if op == "ge":
        return {i for i, v in pairs if v is not None and v >= value}
    if op == "lt":
        return {i for i, v in pairs if v is not None and v < value}
    if op == "le":
        return {i for i, v in pairs if v is not None and v <= value}
    if op == "in":
        members = frozenset(value)
        return {i for i, v in pairs if v is not None and v in members}
    if op == "not_in":
        members = frozenset(value)
        return {i for i, v in pairs if v is not None and v not in members}
    if op == "between":
        low, high = value
        return {i for i, v in pairs if v is not None and low <= v <= high}
    raise RuleError(f"unknown operator {op!r}")
