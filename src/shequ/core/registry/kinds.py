"""The kinds of the thematic database and their columns: one description that list pages,
exports (台账), imports and the API all read, with Chinese and English headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shequ.core.iot.models import Device
from shequ.core.places.models import Place
from shequ.core.registry.models import (
    Facility,
    FacilityKind,
    House,
    Household,
    HouseUse,
    Organisation,
    OrgKind,
    Person,
    Relation,
    ResidenceType,
    Situation,
    SituationSource,
)

# value → (zh, en) for every enumerated field
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "sex": {"M": ("男", "male"), "F": ("女", "female")},
    "residence_type": {
        ResidenceType.REGISTERED: ("户籍人口", "registered"),
        ResidenceType.REGISTERED_AWAY: ("人户分离", "registered, living elsewhere"),
        ResidenceType.RESIDENT: ("来沪人员", "non-registered resident"),
    },
    "relation": {
        Relation.HEAD: ("户主", "head"), Relation.SPOUSE: ("配偶", "spouse"),
        Relation.CHILD: ("子女", "child"), Relation.PARENT: ("父母", "parent"),
        Relation.GRANDCHILD: ("孙子女", "grandchild"), Relation.SIBLING: ("兄弟姐妹", "sibling"),
        Relation.TENANT: ("租客", "tenant"), Relation.OTHER: ("其他", "other"),
    },
    "person_status": {"active": ("在册", "active"), "moved_out": ("迁出", "moved out"),
                      "deceased": ("死亡", "deceased")},
    "house_use": {
        HouseUse.OWNER_OCCUPIED: ("自住", "owner-occupied"), HouseUse.RENTED: ("出租", "rented"),
        HouseUse.VACANT: ("空置", "vacant"), HouseUse.SHOP: ("商铺", "shop"),
        HouseUse.PUBLIC: ("公建配套", "public"), HouseUse.OTHER: ("其他", "other"),
    },
    "org_kind": {
        OrgKind.PARTY_BRANCH: ("党组织", "party branch"), OrgKind.ENTERPRISE: ("企业", "enterprise"),
        OrgKind.PROPERTY_COMPANY: ("物业公司", "property company"),
        OrgKind.SOCIAL_ORG: ("社会组织", "social organisation"),
        OrgKind.SHOP_OPERATOR: ("沿街商户", "shop operator"),
        OrgKind.PUBLIC_INSTITUTION: ("机关事业单位", "public institution"),
    },
    "facility_kind": {
        FacilityKind.ELEVATOR: ("电梯", "elevator"),
        FacilityKind.CHARGING_STATION: ("充电站", "charging station"),
        FacilityKind.PARKING_LOT: ("停车场", "parking lot"),
        FacilityKind.GARBAGE_POINT: ("垃圾投放点", "garbage point"),
        FacilityKind.HEALTH_HUT: ("健康小屋", "health hut"),
        FacilityKind.FITNESS_TRAIL: ("健身步道", "fitness trail"),
        FacilityKind.ACTIVITY_ROOM: ("活动室", "activity room"),
        FacilityKind.SERVICE_TERMINAL: ("自助服务终端", "service terminal"),
        FacilityKind.CANTEEN: ("长者食堂", "elderly canteen"),
        FacilityKind.OTHER: ("其他", "other"),
    },
    "situation_source": {
        SituationSource.HOTLINE_12345: ("12345热线", "12345 hotline"),
        SituationSource.RESIDENT_APP: ("居民随手拍", "resident app"),
        SituationSource.GRID_PATROL: ("网格巡查", "grid patrol"),
        SituationSource.COMMITTEE_VISIT: ("居委走访", "committee visit"),
        SituationSource.SURVEY: ("民意调查", "survey"),
        SituationSource.MEETING: ("议事会", "residents' meeting"),
        SituationSource.OTHER: ("其他", "other"),
    },
    "situation_status": {"open": ("待办", "open"), "answered": ("已答复", "answered"),
                         "closed": ("已办结", "closed")},
    "place_use": {"residential": ("住宅", "residential"), "commercial": ("商业", "commercial"),
                  "mixed": ("商住混合", "mixed"), "public": ("公共建筑", "public"),
                  "industrial": ("工业", "industrial"), "office": ("办公", "office")},
    "household_kind": {"registered": ("户籍户", "registered"), "resident": ("居住户", "resident")},
    "place_kind": {
        "grid": ("网格", "grid"), "committee": ("居委会", "residents' committee"),
        "compound": ("小区", "compound"), "building": ("楼栋", "building"),
        "unit": ("单元", "unit"), "floor": ("楼层", "floor"), "room": ("房间", "room"),
        "street": ("道路", "street"), "shop": ("沿街商铺", "shop"), "other": ("其他", "other"),
    },
}


def label(group: str, value: Any, lang: str = "zh-CN") -> str:
    pair = LABELS.get(group, {}).get(value)
    if pair is None:
        return "" if value is None else str(value)
    return pair[0] if lang.startswith("zh") else pair[1]


@dataclass(frozen=True)
class Column:
    """One column of a kind: attribute key, headers, type, and how it is shown and imported.

    type: str | int | float | date | datetime | enum | id_number | phone | uscc | address | ref
    A column whose key is not an attribute of the model is virtual (e.g. address, committee):
    the importer resolves it and the list shows it through ``show``.
    """

    key: str
    zh: str
    en: str
    type: str = "str"
    required: bool = False
    enum: str | None = None  # group in LABELS
    pii: str | None = None  # mask kind: id_number | phone
    in_list: bool = True
    importable: bool = True
    aliases: tuple[str, ...] = ()
    sortable: bool = False

    def header(self, lang: str = "zh-CN") -> str:
        return self.zh if lang.startswith("zh") else self.en


@dataclass(frozen=True)
class Kind:
    key: str
    model: type[Any]
    zh: str
    en: str
    columns: tuple[Column, ...]
    dedupe: str | None = None  # natural key used to merge imports (id_number, credit_code, code)
    search: tuple[str, ...] = ("name",)
    filters: tuple[str, ...] = ()  # enumerated columns offered as list filters
    default_sort: str = "id"
    extra: dict[str, Any] = field(default_factory=dict)

    def column(self, key: str) -> Column:
        for col in self.columns:
            if col.key == key:
                return col
        raise KeyError(key)

    def label(self, lang: str = "zh-CN") -> str:
        return self.zh if lang.startswith("zh") else self.en


AREA_COLUMNS = (
    Column("committee", "居委会", "committee", "ref", importable=False),
    Column("grid", "网格", "grid", "ref", importable=False, in_list=False),
)

PERSON = Kind(
    key="person", model=Person, zh="人口", en="People", dedupe="id_number",
    search=("name", "id_number", "phone"), filters=("sex", "residence_type", "status"),
    columns=(
        Column("name", "姓名", "name", required=True, sortable=True),
        Column("id_number", "身份证号", "ID number", "id_number", required=True, pii="id_number",
               aliases=("公民身份号码", "证件号码")),
        Column("sex", "性别", "sex", "enum", enum="sex", sortable=True),
        Column("birth_date", "出生日期", "birth date", "date", sortable=True),
        Column("phone", "联系电话", "phone", "phone", pii="phone", aliases=("手机号", "电话")),
        Column("ethnicity", "民族", "ethnicity", in_list=False),
        Column("residence_type", "人口类型", "residence type", "enum", enum="residence_type"),
        Column("household_number", "户号", "household number", in_list=False),
        Column("relation", "与户主关系", "relation to head", "enum", enum="relation", in_list=False),
        Column("address", "居住地址", "address", "address", aliases=("现住址", "地址")),
        *AREA_COLUMNS,
        Column("status", "状态", "status", "enum", enum="person_status", in_list=False),
    ),
)

HOUSEHOLD = Kind(
    key="household", model=Household, zh="户", en="Households", dedupe="number",
    search=("number",), filters=("kind",),
    columns=(
        Column("number", "户号", "household number", required=True, sortable=True),
        Column("kind", "户类型", "kind", "enum", enum="household_kind"),
        Column("address", "地址", "address", "address"),
        Column("head", "户主", "head", "ref", importable=False),
        Column("size", "人数", "members", "int", importable=False),
        *AREA_COLUMNS,
    ),
)

HOUSE = Kind(
    key="house", model=House, zh="房屋", en="Houses", dedupe="address",
    search=("owner_name",), filters=("use",),
    columns=(
        Column("address", "房屋地址", "address", "address", required=True, aliases=("地址",)),
        Column("use", "房屋用途", "use", "enum", enum="house_use", required=True),
        Column("area_m2", "建筑面积(㎡)", "area (m²)", "float", aliases=("面积", "建筑面积")),
        Column("rooms", "居室数", "rooms", "int", in_list=False),
        Column("owner_name", "产权人", "owner", in_list=False),
        *AREA_COLUMNS,
    ),
)

ORGANISATION = Kind(
    key="organisation", model=Organisation, zh="组织", en="Organisations", dedupe="credit_code",
    search=("name", "credit_code"), filters=("kind", "status"),
    columns=(
        Column("name", "名称", "name", required=True, sortable=True, aliases=("单位名称", "企业名称")),
        Column("kind", "组织类型", "kind", "enum", enum="org_kind", required=True),
        Column("credit_code", "统一社会信用代码", "unified social credit code", "uscc"),
        Column("legal_person", "法定代表人/负责人", "legal representative", aliases=("负责人", "法定代表人")),
        Column("contact_phone", "联系电话", "phone", "phone", pii="phone"),
        Column("industry", "行业", "industry"),
        Column("employees", "从业人数", "employees", "int", in_list=False),
        Column("address", "地址", "address", "address", aliases=("经营地址", "注册地址")),
        *AREA_COLUMNS,
    ),
)

FACILITY = Kind(
    key="facility", model=Facility, zh="设施", en="Facilities", dedupe="code",
    search=("name", "code"), filters=("kind", "status"),
    columns=(
        Column("code", "设施编号", "code", required=True, sortable=True),
        Column("name", "名称", "name", required=True, sortable=True),
        Column("kind", "设施类型", "kind", "enum", enum="facility_kind", required=True),
        Column("capacity", "容量", "capacity", "int"),
        Column("address", "位置", "location", "address", aliases=("地址",)),
        Column("lon", "经度", "longitude", "float", in_list=False),
        Column("lat", "纬度", "latitude", "float", in_list=False),
        *AREA_COLUMNS,
    ),
)

SITUATION = Kind(
    key="situation", model=Situation, zh="社情民意", en="Situations", dedupe="external_id",
    search=("title", "content", "external_id"), filters=("source", "status", "category"),
    default_sort="-occurred_at",
    columns=(
        Column("external_id", "工单编号", "reference", aliases=("编号",)),
        Column("occurred_at", "反映时间", "reported at", "datetime", required=True, sortable=True),
        Column("source", "来源", "source", "enum", enum="situation_source", required=True),
        Column("category", "类别", "category", required=True),
        Column("title", "标题", "title", required=True),
        Column("content", "内容", "content", in_list=False),
        Column("contact_phone", "联系电话", "phone", "phone", pii="phone", in_list=False),
        Column("status", "状态", "status", "enum", enum="situation_status"),
        Column("address", "地址", "address", "address"),
        Column("lon", "经度", "longitude", "float", in_list=False),
        Column("lat", "纬度", "latitude", "float", in_list=False),
        *AREA_COLUMNS,
    ),
)

PLACE = Kind(
    key="place", model=Place, zh="地址与场所", en="Places", dedupe="code",
    search=("name", "address_text", "code"), filters=("kind",),
    columns=(
        Column("code", "编码", "code", required=True, sortable=True),
        Column("name", "名称", "name", required=True, sortable=True),
        Column("kind", "类型", "kind", "enum", enum="place_kind", required=True),
        Column("parent_code", "上级编码", "parent code", in_list=False),
        Column("address_text", "标准地址", "standard address"),
        Column("floors", "层数", "storeys", "int"),
        Column("lon", "经度", "longitude", "float", in_list=False),
        Column("lat", "纬度", "latitude", "float", in_list=False),
        *AREA_COLUMNS,
    ),
)

DEVICE = Kind(
    key="device", model=Device, zh="物联设备", en="Devices", dedupe="code",
    search=("name", "code"), filters=("type_code", "status"),
    columns=(
        Column("code", "设备编号", "code", required=True, sortable=True),
        Column("name", "名称", "name", required=True),
        Column("type_code", "设备类型", "type", required=True),
        Column("address", "位置", "location", "address"),
        Column("lon", "经度", "longitude", "float", in_list=False),
        Column("lat", "纬度", "latitude", "float", in_list=False),
        *AREA_COLUMNS,
    ),
)

KINDS: dict[str, Kind] = {
    k.key: k for k in (PERSON, HOUSEHOLD, HOUSE, ORGANISATION, FACILITY, SITUATION, PLACE, DEVICE)
}


def get_kind(key: str) -> Kind:
    try:
        return KINDS[key]
    except KeyError:
        raise KeyError(f"unknown kind {key!r}; known: {', '.join(KINDS)}") from None
