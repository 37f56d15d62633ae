"""画像 profiles: everything known about one person, household, house, building or organisation.

A profile is generic data (title, subtitle, tags, sections, links, change history) that pages
and the API render the same way. Sections come from providers registered per entity with
``register_section``; the built-in sections below use the same mechanism, so a scenario adds
its own (e.g. health data for a person) without touching this file. Providers load what they
show with a few set-based queries (no query per row). Personal data is shown masked.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.changelog import history
from shequ.core.iam.crypto import MASKS
from shequ.core.places.models import Place, PlaceKind
from shequ.core.registry.kinds import label
from shequ.core.registry.models import (
    Facility,
    House,
    Household,
    Membership,
    Organisation,
    Person,
    PersonStatus,
    Situation,
    Tag,
    Tagging,
)
from shequ.core.registry.query import fmt_value
from shequ.core.registry.tags import age_on, tag_name, taggings_of, today_shanghai

HISTORY_LIMIT = 100


@dataclass(frozen=True)
class Link:
    """A pointer to another profile."""

    label: str
    entity: str
    id: int


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    links: list[Link | None] = field(default_factory=list)  # one per row: where the row leads

    def add(self, cells: Iterable[Any], link: Link | None = None) -> None:
        self.rows.append([_text(c) for c in cells])
        self.links.append(link)


@dataclass
class Section:
    """A titled part of a profile: key/value rows, a table, or both, and links."""

    key: str
    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    table: Table | None = None
    links: list[Link] = field(default_factory=list)
    order: int = 100


@dataclass(frozen=True)
class ProfileTag:
    code: str
    name: str
    origin: str  # manual | rule
    color: str | None


@dataclass(frozen=True)
class HistoryEntry:
    at: dt.datetime
    actor: str
    action: str
    changes: list[tuple[str, Any, Any]]  # (field, before, after)


@dataclass
class Profile:
    entity: str
    id: int
    title: str
    subtitle: str
    tags: list[ProfileTag]
    sections: list[Section]
    links: list[Link]
    history: list[HistoryEntry]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


@dataclass
class ProfileContext:
    """What a section provider gets: the session, the record, the language and a shared cache."""

    session: Session
    entity: str
    record: Any
    lang: str
    today: dt.date
    cache: dict[str, Any] = field(default_factory=dict)

    def t(self, zh: str, en: str) -> str:
        return zh if self.lang.startswith("zh") else en

    def places(self, ids: Iterable[int | None]) -> dict[int, Place]:
        """Places by id, fetched once per profile."""
        known: dict[int, Place] = self.cache.setdefault("places", {})
        missing = {i for i in ids if i and i not in known}
        if missing:
            for p in self.session.scalars(select(Place).where(Place.id.in_(missing))):
                known[p.id] = p
        return known

    def place_text(self, place_id: int | None) -> str:
        place = self.places([place_id]).get(place_id or -1)
        return (place.address_text or place.name) if place else ""

    def place_name(self, place_id: int | None) -> str:
        place = self.places([place_id]).get(place_id or -1)
        return place.name if place else ""


SectionProvider = Callable[[ProfileContext], Section | Iterable[Section] | None]
_SECTIONS: dict[str, list[tuple[int, SectionProvider]]] = defaultdict(list)
_HEADERS: dict[str, Callable[[ProfileContext], tuple[str, str, list[Link]]]] = {}
ENTITIES = ("person", "household", "house", "building", "place", "organisation", "facility",
            "situation")


def register_section(entity: str, provider: SectionProvider, *, order: int = 100) -> SectionProvider:
    """Add a section to every profile of an entity (person, household, house, building,
    place, organisation, facility, situation); lower ``order`` comes first."""
    if entity not in ENTITIES:
        raise ValueError(f"unknown profile entity {entity!r}; known: {', '.join(ENTITIES)}")
    _SECTIONS[entity].append((order, provider))
    return provider


def section(entity: str, *, order: int = 100) -> Callable[[SectionProvider], SectionProvider]:
    """Decorator form of register_section."""
    return lambda fn: register_section(entity, fn, order=order)


def _text(value: Any) -> str:
    return fmt_value(value)


MODELS: dict[str, type[Any]] = {
    "person": Person, "household": Household, "house": House, "building": Place, "place": Place,
    "organisation": Organisation, "facility": Facility, "situation": Situation,
}


def profile(*, session: Session, entity: str, entity_id: int, lang: str = "zh-CN") -> Profile | None:
    """The profile of one record of the session's tenant, or None when there is no such record."""
    model = MODELS.get(entity)
    if model is None:
        raise ValueError(f"unknown profile entity {entity!r}; known: {', '.join(ENTITIES)}")
    record = session.scalar(select(model).where(model.id == entity_id))
    if record is None:
        return None
    if model is Place:
        is_building = record.kind == PlaceKind.BUILDING
        if entity == "building" and not is_building:
            return None
        entity = "building" if is_building else "place"
    ctx = ProfileContext(session=session, entity=entity, record=record, lang=lang, today=today_shanghai())
    title, subtitle, links = _HEADERS[entity](ctx)
    sections: list[Section] = []
    for order, provider in sorted(_SECTIONS[entity], key=lambda item: item[0]):
        produced = provider(ctx)
        if produced is None:
            continue
        for sec in [produced] if isinstance(produced, Section) else produced:
            sec.order = order
            sections.append(sec)
    tag_entity = "place" if entity in ("building", "place") else entity
    tags = [ProfileTag(t.tag.code, tag_name(t.tag, lang), t.origin, t.tag.color)
            for t in taggings_of(session=session, entity=tag_entity, ids=[record.id]).get(record.id, [])]
    log_entity = model.__tablename__
    entries = [HistoryEntry(at=c.at, actor=c.actor, action=c.action, changes=_changes(c.before, c.after))
               for c in history(session, log_entity, record.id)[:HISTORY_LIMIT]]
    return Profile(entity=entity, id=record.id, title=title, subtitle=subtitle, tags=tags,
                   sections=sections, links=links, history=entries)


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, Any, Any]]:
    keys = list(dict.fromkeys([*(after or {}), *(before or {})]))
    return [(k, (before or {}).get(k), (after or {}).get(k)) for k in keys]


# --- shared pieces --------------------------------------------------------------------------


def _age(ctx: ProfileContext, birth: dt.date | None) -> str:
    age = age_on(birth, ctx.today)
    return "" if age is None else ctx.t(f"{age}岁", f"{age}")


def _area_rows(ctx: ProfileContext, obj: Any) -> list[tuple[str, str]]:
    return [(ctx.t("地址", "address"), ctx.place_text(obj.place_id)),
            (ctx.t("居委会", "committee"), ctx.place_name(obj.committee_id)),
            (ctx.t("网格", "grid"), ctx.place_name(obj.grid_id))]


def _warm_places(ctx: ProfileContext, *objs: Any) -> None:
    ids: set[int | None] = set()
    for obj in objs:
        for attr in ("place_id", "committee_id", "grid_id", "compound_id", "building_id"):
            ids.add(getattr(obj, attr, None))
    ctx.places(ids)


def _person_link(p: Person) -> Link:
    return Link(p.name, "person", p.id)


def _members(ctx: ProfileContext, household_id: int | None) -> list[Person]:
    if not household_id:
        return []
    key = f"members:{household_id}"
    if key not in ctx.cache:
        ctx.cache[key] = list(ctx.session.scalars(
            select(Person).where(Person.household_id == household_id).order_by(Person.id)))
    return ctx.cache[key]


def _tag_names(ctx: ProfileContext, entity: str, ids: list[int]) -> dict[int, str]:
    found = taggings_of(session=ctx.session, entity=entity, ids=ids)
    return {k: "、".join(tag_name(t.tag, ctx.lang) for t in v) for k, v in found.items()}


# --- person ---------------------------------------------------------------------------------


def _person_header(ctx: ProfileContext) -> tuple[str, str, list[Link]]:
    p: Person = ctx.record
    hh = ctx.session.get(Household, p.household_id) if p.household_id else None
    ctx.cache["household"] = hh
    _warm_places(ctx, p, *([hh] if hh else []))
    parts = [label("sex", p.sex, ctx.lang), _age(ctx, p.birth_date), ctx.place_name(p.committee_id),
             ctx.place_text(p.place_id)]
    links = []
    if hh:
        links.append(Link(ctx.t(f"户 {hh.number}", f"household {hh.number}"), "household", hh.id))
    if p.house_id:
        links.append(Link(ctx.t("房屋", "house"), "house", p.house_id))
    if p.building_id:
        links.append(Link(ctx.place_name(p.building_id) or ctx.t("楼栋", "building"), "building",
                          p.building_id))
    return p.name, " · ".join(x for x in parts if x), links


@section("person", order=10)
def _person_basic(ctx: ProfileContext) -> Section:
    p: Person = ctx.record
    t = ctx.t
    return Section("basic", t("基本信息", "Basic facts"), rows=[
        (t("姓名", "name"), p.name),
        (t("性别", "sex"), label("sex", p.sex, ctx.lang)),
        (t("出生日期", "birth date"), _text(p.birth_date)),
        (t("年龄", "age"), _age(ctx, p.birth_date)),
        (t("身份证号", "ID number"), p.id_number_mask or ""),
        (t("联系电话", "phone"), p.phone_mask or ""),
        (t("民族", "ethnicity"), p.ethnicity or ""),
        (t("人口类型", "residence type"), label("residence_type", p.residence_type, ctx.lang)),
        (t("状态", "status"), label("person_status", p.status, ctx.lang)),
        (t("数据来源", "source"), p.source),
    ])


def _members_table(ctx: ProfileContext, members: list[Person], *, with_tags: bool) -> Table:
    t = ctx.t
    headers = [t("姓名", "name"), t("与户主关系", "relation"), t("性别", "sex"), t("年龄", "age"),
               t("状态", "status")]
    tags = _tag_names(ctx, "person", [m.id for m in members]) if with_tags else {}
    if with_tags:
        headers.append(t("标签", "tags"))
    table = Table(headers)
    for m in members:
        cells = [m.name, label("relation", m.relation, ctx.lang), label("sex", m.sex, ctx.lang),
                 _age(ctx, m.birth_date), label("person_status", m.status, ctx.lang)]
        if with_tags:
            cells.append(tags.get(m.id, ""))
        table.add(cells, _person_link(m))
    return table


@section("person", order=20)
def _person_household(ctx: ProfileContext) -> Section | None:
    p: Person = ctx.record
    hh: Household | None = ctx.cache.get("household")
    if hh is None:
        return None
    t = ctx.t
    members = _members(ctx, hh.id)
    return Section("household", t("家庭成员", "Household"), rows=[
        (t("户号", "household number"), hh.number),
        (t("户类型", "kind"), label("household_kind", hh.kind, ctx.lang)),
        (t("与户主关系", "relation to head"), label("relation", p.relation, ctx.lang)),
        (t("在册人数", "active members"), str(sum(m.status == PersonStatus.ACTIVE for m in members))),
    ], table=_members_table(ctx, members, with_tags=False),
        links=[Link(t(f"户 {hh.number}", f"household {hh.number}"), "household", hh.id)])


@section("person", order=30)
def _person_home(ctx: ProfileContext) -> Section:
    p: Person = ctx.record
    hh: Household | None = ctx.cache.get("household")
    house_id = p.house_id or (hh.house_id if hh else None)
    house = ctx.session.get(House, house_id) if house_id else None
    t = ctx.t
    rows = _area_rows(ctx, p)
    links: list[Link] = []
    if house is not None:
        rows[1:1] = [(t("房屋用途", "house use"), label("house_use", house.use, ctx.lang)),
                     (t("建筑面积(㎡)", "area (m²)"), _text(house.area_m2))]
        links.append(Link(t("房屋画像", "house profile"), "house", house.id))
    if p.building_id:
        links.append(Link(ctx.place_name(p.building_id), "building", p.building_id))
    return Section("home", t("居住地", "Home"), rows=rows, links=links)


@section("person", order=40)
def _person_organisations(ctx: ProfileContext) -> Section | None:
    p: Person = ctx.record
    rows = ctx.session.execute(
        select(Membership, Organisation).join(Organisation, Organisation.id == Membership.organisation_id)
        .where(Membership.person_id == p.id).order_by(Organisation.name)).all()
    if not rows:
        return None
    t = ctx.t
    table = Table([t("组织", "organisation"), t("类型", "kind"), t("角色", "role"), t("加入时间", "since")])
    for m, org in rows:
        table.add([org.name, label("org_kind", org.kind, ctx.lang), m.role, m.since],
                  Link(org.name, "organisation", org.id))
    return Section("organisations", t("所属组织", "Organisations"), table=table)


@section("person", order=50)
def _person_situations(ctx: ProfileContext) -> Section | None:
    p: Person = ctx.record
    found = list(ctx.session.scalars(select(Situation).where(Situation.reporter_id == p.id)
                                     .order_by(Situation.occurred_at.desc()).limit(50)))
    if not found:
        return None
    t = ctx.t
    table = Table([t("反映时间", "reported at"), t("来源", "source"), t("类别", "category"),
                   t("标题", "title"), t("状态", "status")])
    for s in found:
        table.add([s.occurred_at, label("situation_source", s.source, ctx.lang), s.category, s.title,
                   label("situation_status", s.status, ctx.lang)], Link(s.title, "situation", s.id))
    return Section("situations", t("反映的社情民意", "Requests and opinions"), table=table)


# --- household ------------------------------------------------------------------------------


def _household_header(ctx: ProfileContext) -> tuple[str, str, list[Link]]:
    hh: Household = ctx.record
    _warm_places(ctx, hh)
    members = _members(ctx, hh.id)
    head = next((m for m in members if m.id == hh.head_person_id), None) or next(
        (m for m in members if m.relation == "head"), None)
    ctx.cache["head"] = head
    links = [Link(ctx.t("房屋", "house"), "house", hh.house_id)] if hh.house_id else []
    if hh.building_id:
        links.append(Link(ctx.place_name(hh.building_id), "building", hh.building_id))
    title = ctx.t(f"户 {hh.number}", f"Household {hh.number}")
    sub = " · ".join(x for x in (head.name if head else "", ctx.place_text(hh.place_id)) if x)
    return title, sub, links


@section("household", order=10)
def _household_basic(ctx: ProfileContext) -> Section:
    hh: Household = ctx.record
    t = ctx.t
    head: Person | None = ctx.cache.get("head")
    members = _members(ctx, hh.id)
    return Section("basic", t("基本信息", "Basic facts"), rows=[
        (t("户号", "household number"), hh.number),
        (t("户类型", "kind"), label("household_kind", hh.kind, ctx.lang)),
        (t("户主", "head"), head.name if head else ""),
        (t("在册人数", "active members"), str(sum(m.status == PersonStatus.ACTIVE for m in members))),
        *_area_rows(ctx, hh),
    ], links=[_person_link(head)] if head else [])


@section("household", order=20)
def _household_members(ctx: ProfileContext) -> Section:
    members = _members(ctx, ctx.record.id)
    return Section("members", ctx.t("家庭成员", "Members"),
                   table=_members_table(ctx, members, with_tags=True))


# --- house ----------------------------------------------------------------------------------


def _house_header(ctx: ProfileContext) -> tuple[str, str, list[Link]]:
    h: House = ctx.record
    _warm_places(ctx, h)
    links = [Link(ctx.place_name(h.building_id), "building", h.building_id)] if h.building_id else []
    sub = " · ".join(x for x in (label("house_use", h.use, ctx.lang), ctx.place_name(h.committee_id)) if x)
    return ctx.place_text(h.place_id) or ctx.t(f"房屋 {h.id}", f"House {h.id}"), sub, links


@section("house", order=10)
def _house_basic(ctx: ProfileContext) -> Section:
    h: House = ctx.record
    t = ctx.t
    return Section("basic", t("基本信息", "Basic facts"), rows=[
        (t("房屋用途", "use"), label("house_use", h.use, ctx.lang)),
        (t("建筑面积(㎡)", "area (m²)"), _text(h.area_m2)),
        (t("居室数", "rooms"), _text(h.rooms)),
        (t("产权人", "owner"), h.owner_name or ""),
        *_area_rows(ctx, h),
    ])


@section("house", order=20)
def _house_residents(ctx: ProfileContext) -> Section:
    h: House = ctx.record
    t = ctx.t
    households = list(ctx.session.scalars(select(Household).where(Household.house_id == h.id)))
    hh_ids = [x.id for x in households]
    people = list(ctx.session.scalars(select(Person).where(
        (Person.house_id == h.id) | (Person.household_id.in_(hh_ids) & Person.house_id.is_(None))
        if hh_ids else Person.house_id == h.id).order_by(Person.household_id, Person.id)))
    table = _members_table(ctx, people, with_tags=True)
    links = [Link(t(f"户 {x.number}", f"household {x.number}"), "household", x.id) for x in households]
    return Section("residents", t("居住人员", "Residents"), rows=[
        (t("在册居住人数", "active residents"), str(sum(p.status == PersonStatus.ACTIVE for p in people))),
        (t("户数", "households"), str(len(households))),
    ], table=table, links=links)


# --- building -------------------------------------------------------------------------------

AGE_BANDS: tuple[tuple[int, int | None, str, str], ...] = (
    (0, 17, "0–17岁", "0–17"), (18, 59, "18–59岁", "18–59"), (60, 79, "60–79岁", "60–79"),
    (80, None, "80岁及以上", "80+"),
)


def _building_header(ctx: ProfileContext) -> tuple[str, str, list[Link]]:
    b: Place = ctx.record
    _warm_places(ctx, b)
    compound = ctx.place_name(b.compound_id)
    title = b.address_text or (f"{compound}{b.name}" if compound else b.name)
    sub = " · ".join(x for x in (compound, ctx.place_name(b.committee_id), ctx.place_name(b.grid_id)) if x)
    return title, sub, []


def _residents_of_building(ctx: ProfileContext) -> list[tuple[int, dt.date | None]]:
    if "residents" not in ctx.cache:
        ctx.cache["residents"] = ctx.session.execute(
            select(Person.id, Person.birth_date).where(
                Person.building_id == ctx.record.id, Person.status == PersonStatus.ACTIVE.value)).all()
    return ctx.cache["residents"]


@section("building", order=10)
def _building_basic(ctx: ProfileContext) -> Section:
    b: Place = ctx.record
    t = ctx.t
    s = ctx.session
    kinds = dict(s.execute(select(Place.kind, func.count()).where(Place.building_id == b.id)
                           .group_by(Place.kind)).all())
    households = s.scalar(select(func.count()).select_from(Household).where(Household.building_id == b.id))
    houses = s.scalar(select(func.count()).select_from(House).where(House.building_id == b.id))
    return Section("basic", t("楼栋概况", "Building"), rows=[
        (t("地址", "address"), b.address_text or b.name),
        (t("小区", "compound"), ctx.place_name(b.compound_id)),
        (t("居委会", "committee"), ctx.place_name(b.committee_id)),
        (t("网格", "grid"), ctx.place_name(b.grid_id)),
        (t("地上层数", "storeys"), _text(b.floors)),
        (t("建成年份", "built"), _text(b.built_year)),
        (t("用途", "use"), label("place_use", b.use, ctx.lang)),
        (t("单元数", "units"), str(kinds.get(PlaceKind.UNIT.value, 0))),
        (t("房间数", "rooms"), str(kinds.get(PlaceKind.ROOM.value, 0))),
        (t("房屋数", "houses"), str(houses or 0)),
        (t("户数", "households"), str(households or 0)),
        (t("在册居住人数", "active residents"), str(len(_residents_of_building(ctx)))),
    ])


@section("building", order=20)
def _building_ages(ctx: ProfileContext) -> Section:
    t = ctx.t
    counts: Counter[str] = Counter()
    unknown = 0
    for _, birth in _residents_of_building(ctx):
        age = age_on(birth, ctx.today)
        if age is None:
            unknown += 1
            continue
        for low, high, zh, _en in AGE_BANDS:
            if age >= low and (high is None or age <= high):
                counts[zh] += 1
                break
    total = len(_residents_of_building(ctx))
    table = Table([t("年龄段", "age band"), t("人数", "people"), t("占比", "share")])
    for _, _, zh, en in AGE_BANDS:
        n = counts[zh]
        table.add([t(zh, en), n, f"{100 * n / total:.1f}%" if total else "–"])
    if unknown:
        table.add([t("出生日期不详", "unknown"), unknown, f"{100 * unknown / total:.1f}%"])
    return Section("ages", t("年龄结构", "Age structure"), table=table)


@section("building", order=30)
def _building_special_groups(ctx: ProfileContext) -> Section:
    t = ctx.t
    resident_ids = [pid for pid, _ in _residents_of_building(ctx)]
    counts: dict[int, int] = {}
    if resident_ids:
        counts = dict(ctx.session.execute(
            select(Tagging.tag_id, func.count(func.distinct(Tagging.entity_id)))
            .where(Tagging.entity == "person", Tagging.entity_id.in_(resident_ids))
            .group_by(Tagging.tag_id)).all())
    tags = list(ctx.session.scalars(select(Tag).where(Tag.id.in_(counts)).order_by(Tag.id))) if counts else []
    rows = [(tag, counts[tag.id]) for tag in tags]
    table = Table([t("标签", "tag"), t("人数", "people"), t("类型", "kind")])
    for tag, n in rows:
        table.add([tag_name(tag, ctx.lang), n, t("规则", "rule") if tag.rule else t("人工", "manual")])
    return Section("tags", t("重点人群", "Groups by tag"), table=table)


@section("building", order=40)
def _building_organisations(ctx: ProfileContext) -> Section | None:
    t = ctx.t
    orgs = list(ctx.session.scalars(select(Organisation).where(Organisation.building_id == ctx.record.id)
                                    .order_by(Organisation.name)))
    facilities = list(ctx.session.scalars(select(Facility).where(Facility.building_id == ctx.record.id)
                                          .order_by(Facility.kind, Facility.code)))
    if not orgs and not facilities:
        return None
    table = Table([t("名称", "name"), t("类别", "category"), t("类型", "kind")])
    for o in orgs:
        table.add([o.name, t("组织", "organisation"), label("org_kind", o.kind, ctx.lang)],
                  Link(o.name, "organisation", o.id))
    for f in facilities:
        table.add([f.name, t("设施", "facility"), label("facility_kind", f.kind, ctx.lang)],
                  Link(f.name, "facility", f.id))
    return Section("located", t("楼内组织与设施", "Organisations and facilities"), table=table)


# --- organisation ---------------------------------------------------------------------------


def _organisation_header(ctx: ProfileContext) -> tuple[str, str, list[Link]]:
    o: Organisation = ctx.record
    _warm_places(ctx, o)
    links = []
    if o.parent_id:
        parent = ctx.session.get(Organisation, o.parent_id)
        if parent is not None:
            links.append(Link(parent.name, "organisation", parent.id))
    if o.building_id:
        links.append(Link(ctx.place_name(o.building_id), "building", o.building_id))
    sub = " · ".join(x for x in (label("org_kind", o.kind, ctx.lang), ctx.place_name(o.committee_id)) if x)
    return o.name, sub, links


@section("organisation", order=10)
def _organisation_basic(ctx: ProfileContext) -> Section:
    o: Organisation = ctx.record
    t = ctx.t
    return Section("basic", t("基本信息", "Basic facts"), rows=[
        (t("名称", "name"), o.name),
        (t("组织类型", "kind"), label("org_kind", o.kind, ctx.lang)),
        (t("统一社会信用代码", "credit code"), o.credit_code or ""),
        (t("法定代表人/负责人", "legal representative"), o.legal_person or ""),
        (t("联系电话", "phone"), o.contact_phone_mask or ""),
        (t("行业", "industry"), o.industry or ""),
        (t("从业人数", "employees"), _text(o.employees)),
        (t("状态", "status"), o.status),
        *_area_rows(ctx, o),
    ])


@section("organisation", order=20)
def _organisation_members(ctx: ProfileContext) -> Section | None:
    t = ctx.t
    by_role = ctx.session.execute(
        select(Membership.role, func.count()).where(Membership.organisation_id == ctx.record.id)
        .group_by(Membership.role).order_by(Membership.role)).all()
    if not by_role:
        return None
    table = Table([t("角色", "role"), t("人数", "people")])
    for role, n in by_role:
        table.add([role, n])
    total = sum(n for _, n in by_role)
    return Section("members", t("成员", "Members"), rows=[(t("成员总数", "members"), str(total))],
                   table=table)


@section("organisation", order=30)
def _organisation_facilities(ctx: ProfileContext) -> Section | None:
    t = ctx.t
    found = list(ctx.session.scalars(select(Facility).where(Facility.operator_id == ctx.record.id)
                                     .order_by(Facility.kind, Facility.code)))
    if not found:
        return None
    _warm_places(ctx, *found)
    table = Table([t("编号", "code"), t("名称", "name"), t("类型", "kind"), t("位置", "location")])
    for f in found:
        table.add([f.code, f.name, label("facility_kind", f.kind, ctx.lang), ctx.place_text(f.place_id)],
                  Link(f.name, "facility", f.id))
    return Section("facilities", t("运营的设施", "Facilities operated"), table=table)


# --- facility, situation, other places (short profiles) ------------------------------------


def _facility_header(ctx: ProfileContext) -> tuple[str, str, list[Link]]:
    f: Facility = ctx.record
    _warm_places(ctx, f)
    links = []
    if f.operator_id:
        op = ctx.session.get(Organisation, f.operator_id)
        if op is not None:
            links.append(Link(op.name, "organisation", op.id))
    if f.building_id:
        links.append(Link(ctx.place_name(f.building_id), "building", f.building_id))
    return f.name, " · ".join(x for x in (label("facility_kind", f.kind, ctx.lang), f.code) if x), links


@section("facility", order=10)
def _facility_basic(ctx: ProfileContext) -> Section:
    f: Facility = ctx.record
    t = ctx.t
    coords = f"{f.lon:.6f}, {f.lat:.6f}" if f.lon is not None and f.lat is not None else ""
    return Section("basic", t("基本信息", "Basic facts"), rows=[
        (t("设施编号", "code"), f.code), (t("名称", "name"), f.name),
        (t("设施类型", "kind"), label("facility_kind", f.kind, ctx.lang)),
        (t("容量", "capacity"), _text(f.capacity)), (t("状态", "status"), f.status),
        (t("经纬度", "coordinates"), coords), *_area_rows(ctx, f),
    ])


def _situation_header(ctx: ProfileContext) -> tuple[str, str, list[Link]]:
    s: Situation = ctx.record
    _warm_places(ctx, s)
    links = []
    if s.reporter_id:
        reporter = ctx.session.get(Person, s.reporter_id)
        if reporter is not None:
            links.append(_person_link(reporter))
    sub = " · ".join(x for x in (label("situation_source", s.source, ctx.lang), s.category,
                                 _text(s.occurred_at)) if x)
    return s.title, sub, links


@section("situation", order=10)
def _situation_basic(ctx: ProfileContext) -> Section:
    s: Situation = ctx.record
    t = ctx.t
    return Section("basic", t("基本信息", "Basic facts"), rows=[
        (t("工单编号", "reference"), s.external_id or ""),
        (t("反映时间", "reported at"), _text(s.occurred_at)),
        (t("来源", "source"), label("situation_source", s.source, ctx.lang)),
        (t("类别", "category"), s.category), (t("标题", "title"), s.title),
        (t("内容", "content"), s.content),
        (t("联系电话", "phone"), MASKS["phone"](s.contact_phone) if s.contact_phone else ""),
        (t("状态", "status"), label("situation_status", s.status, ctx.lang)),
        *_area_rows(ctx, s),
    ])


def _place_header(ctx: ProfileContext) -> tuple[str, str, list[Link]]:
    p: Place = ctx.record
    _warm_places(ctx, p)
    links = [Link(ctx.place_name(p.building_id), "building", p.building_id)] if p.building_id else []
    return p.address_text or p.name, label("place_kind", p.kind, ctx.lang), links


@section("place", order=10)
def _place_basic(ctx: ProfileContext) -> Section:
    p: Place = ctx.record
    t = ctx.t
    children = ctx.session.scalar(select(func.count()).select_from(Place).where(Place.parent_id == p.id))
    return Section("basic", t("基本信息", "Basic facts"), rows=[
        (t("名称", "name"), p.name), (t("类型", "kind"), label("place_kind", p.kind, ctx.lang)),
        (t("编码", "code"), p.code), (t("标准地址", "standard address"), p.address_text),
        (t("居委会", "committee"), ctx.place_name(p.committee_id)),
        (t("网格", "grid"), ctx.place_name(p.grid_id)),
        (t("下级数", "children"), str(children or 0)),
    ])


_HEADERS.update({
    "person": _person_header, "household": _household_header, "house": _house_header,
    "building": _building_header, "organisation": _organisation_header,
    "facility": _facility_header, "situation": _situation_header, "place": _place_header,
})
