"""The thematic database (主题数库): 人 people, 房 houses, 组织 organisations, 设施 facilities,
情 situations, tags (标签), the facts each source reported, and import batches."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shequ.core.iam.crypto import Encrypted
from shequ.db import Base, ChangeLogged, Placed, TenantScoped, Timestamped, utcnow


class HouseUse(StrEnum):
    OWNER_OCCUPIED = "owner_occupied"  # 自住
    RENTED = "rented"  # 出租
    VACANT = "vacant"  # 空置
    SHOP = "shop"  # 商铺
    PUBLIC = "public"  # 公建配套
    OTHER = "other"


class ResidenceType(StrEnum):
    REGISTERED = "registered"  # 户籍人口(人户一致)
    REGISTERED_AWAY = "registered_away"  # 户籍人口(人户分离, 户在人不在)
    RESIDENT = "resident"  # 来沪/常住非户籍


class Relation(StrEnum):
    HEAD = "head"  # 户主
    SPOUSE = "spouse"  # 配偶
    CHILD = "child"  # 子女
    PARENT = "parent"  # 父母
    GRANDCHILD = "grandchild"  # 孙子女
    SIBLING = "sibling"  # 兄弟姐妹
    TENANT = "tenant"  # 租客
    OTHER = "other"  # 其他


class PersonStatus(StrEnum):
    ACTIVE = "active"
    MOVED_OUT = "moved_out"
    DECEASED = "deceased"


class OrgKind(StrEnum):
    PARTY_BRANCH = "party_branch"  # 党组织
    ENTERPRISE = "enterprise"  # 企业
    PROPERTY_COMPANY = "property_company"  # 物业公司
    SOCIAL_ORG = "social_org"  # 社会组织
    SHOP_OPERATOR = "shop_operator"  # 沿街商户
    PUBLIC_INSTITUTION = "public_institution"  # 事业单位/机关


class FacilityKind(StrEnum):
    ELEVATOR = "elevator"  # 电梯
    CHARGING_STATION = "charging_station"  # 充电站/充电棚
    PARKING_LOT = "parking_lot"  # 停车场
    GARBAGE_POINT = "garbage_point"  # 垃圾投放点
    HEALTH_HUT = "health_hut"  # 健康小屋
    FITNESS_TRAIL = "fitness_trail"  # 健身步道
    ACTIVITY_ROOM = "activity_room"  # 活动室
    SERVICE_TERMINAL = "service_terminal"  # 一网通办自助终端
    CANTEEN = "canteen"  # 长者食堂
    OTHER = "other"


class SituationSource(StrEnum):
    HOTLINE_12345 = "hotline_12345"
    RESIDENT_APP = "resident_app"  # 居民随手拍/小程序
    GRID_PATROL = "grid_patrol"  # 网格巡查
    COMMITTEE_VISIT = "committee_visit"  # 居委走访
    SURVEY = "survey"  # 民意调查
    MEETING = "meeting"  # 议事会/听证会
    OTHER = "other"


class Household(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """户: a registered or resident household living in a house."""

    __tablename__ = "household"
    __table_args__ = (UniqueConstraint("tenant_id", "number", name="uq_household_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40))  # 户号
    kind: Mapped[str] = mapped_column(String(20), default="registered")  # registered | resident
    house_id: Mapped[int | None] = mapped_column(ForeignKey("house.id", ondelete="SET NULL"), index=True)
    head_person_id: Mapped[int | None] = mapped_column(Integer)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Person(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """人: a person of the actual population (实有人口)."""

    __tablename__ = "person"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id_number_hash", name="uq_person_id_number"),
        Index("ix_person_phone_hash", "tenant_id", "phone_hash"),
        Index("ix_person_birth", "tenant_id", "birth_date"),
    )
    __pii__ = {"id_number": "id_number", "phone": "phone"}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    id_number: Mapped[str | None] = mapped_column(Encrypted())
    id_number_hash: Mapped[str | None] = mapped_column(String(64))
    id_number_mask: Mapped[str] = mapped_column(String(20), default="")
    phone: Mapped[str | None] = mapped_column(Encrypted())
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_mask: Mapped[str] = mapped_column(String(20), default="")
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1))  # M | F
    ethnicity: Mapped[str | None] = mapped_column(String(20))
    residence_type: Mapped[str] = mapped_column(String(20), default=ResidenceType.REGISTERED)
    status: Mapped[str] = mapped_column(String(20), default=PersonStatus.ACTIVE)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id", ondelete="SET NULL"), index=True)
    relation: Mapped[str | None] = mapped_column(String(20))
    house_id: Mapped[int | None] = mapped_column(ForeignKey("house.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(String(40), default="manual")
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class House(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """房: an actual house (实有房屋): a room or a shop with its use and area."""

    __tablename__ = "house"
    __table_args__ = (UniqueConstraint("tenant_id", "place_id", name="uq_house_place"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    use: Mapped[str] = mapped_column(String(20), default=HouseUse.OWNER_OCCUPIED)
    area_m2: Mapped[float | None] = mapped_column(Numeric(9, 2, asdecimal=False))
    rooms: Mapped[int | None] = mapped_column(Integer)  # 室 (bedrooms)
    owner_name: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(40), default="manual")
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Organisation(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """组织: party branches, enterprises, property companies, social organisations, shops."""

    __tablename__ = "organisation"
    __table_args__ = (
        UniqueConstraint("tenant_id", "credit_code", name="uq_org_credit_code"),
        Index("ix_org_kind", "tenant_id", "kind"),
    )
    __pii__ = {"contact_phone": "phone"}

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200), index=True)
    credit_code: Mapped[str | None] = mapped_column(String(18))  # 统一社会信用代码
    legal_person: Mapped[str | None] = mapped_column(String(50))
    contact_phone: Mapped[str | None] = mapped_column(Encrypted())
    contact_phone_mask: Mapped[str] = mapped_column(String(20), default="")
    industry: Mapped[str | None] = mapped_column(String(50))
    employees: Mapped[int | None] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="active")
    source: Mapped[str] = mapped_column(String(40), default="manual")
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Membership(Base, TenantScoped, Timestamped, ChangeLogged):
    """A person's tie to an organisation: party member of a branch, employee, volunteer…"""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("person_id", "organisation_id", "role", name="uq_membership"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(30), default="member")
    since: Mapped[dt.date | None] = mapped_column(Date)


class Facility(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """设施: elevators, charging stations, parking lots, garbage points, health hut…"""

    __tablename__ = "facility"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", name="uq_facility_code"),
        Index("ix_facility_kind", "tenant_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    capacity: Mapped[int | None] = mapped_column(Integer)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="in_service")
    source: Mapped[str] = mapped_column(String(40), default="manual")
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Situation(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """情: a resident's request or opinion (社情民意), with source and category."""

    __tablename__ = "situation"
    __table_args__ = (Index("ix_situation_occurred", "tenant_id", "occurred_at"),)
    __pii__ = {"contact_phone": "phone"}

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(30))
    external_id: Mapped[str | None] = mapped_column(String(64))  # e.g. the 12345 work-order number
    category: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text, default="")
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    contact_phone: Mapped[str | None] = mapped_column(Encrypted())
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | answered | closed
    sentiment: Mapped[str | None] = mapped_column(String(10))  # positive | neutral | negative
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Tag(Base, TenantScoped, Timestamped, ChangeLogged):
    """标签: a node of the tag taxonomy; a tag with a rule is computed, one without is manual."""

    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("tenant_id", "code", name="uq_tag_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(60))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"))
    applies_to: Mapped[str] = mapped_column(String(20), default="person")
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    color: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(300), default="")


class Tagging(Base, TenantScoped):
    """One tag on one record; origin says whether a person set it or a rule computed it."""

    __tablename__ = "tagging"
    __table_args__ = (
        UniqueConstraint("tag_id", "entity", "entity_id", name="uq_tagging"),
        Index("ix_tagging_entity", "entity", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), index=True)
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(10), default="manual")  # manual | rule
    by: Mapped[str] = mapped_column(String(100), default="system")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SourceFact(Base, TenantScoped):
    """What one source (business line) said about one field of one record.

    The master record keeps one value; these rows keep every source's value (PII as a keyed
    digest and a mask) so that the data-quality report can show where sources disagree.
    """

    __tablename__ = "source_fact"
    __table_args__ = (
        UniqueConstraint("entity", "entity_id", "field", "source", name="uq_source_fact"),
        Index("ix_source_fact_entity", "entity", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(40))
    digest: Mapped[str] = mapped_column(String(64))
    shown: Mapped[str] = mapped_column(String(200), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ImportBatch(Base, TenantScoped):
    """One import of a file: who, when, what, how many rows created and updated."""

    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(40))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="done")  # done | rejected
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Visit(Base, TenantScoped, Timestamped, ChangeLogged, Placed):
    """走访: a committee or grid worker's visit to a person of a special group (独居老人, 高龄…).

    The place is the person's, so a visit is seen by whoever may see the person. Which groups
    are due how often is the tenant's setting ``visit_days`` (see docs/platforms.md).
    """

    __tablename__ = "visit"
    __table_args__ = (Index("ix_visit_person", "tenant_id", "person_id", "visited_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    visited_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    visitor: Mapped[str] = mapped_column(String(100))  # the username of who visited
    way: Mapped[str] = mapped_column(String(10), default="home")  # home | phone | video
    result: Mapped[str] = mapped_column(String(12), default="well")  # well | needs_help | absent
    note: Mapped[str] = mapped_column(String(500), default="")
