"""The one write path of the thematic database (主题数库): create, update and merge records of
every kind, and keep what each source said (SourceFact) so that disagreements stay visible.

Merge policy (``docs/import.md``): a blank value never erases anything; an empty field takes
the value; a value that another source gave is kept and the new one stays as this source's
fact (a conflict the quality report shows); a source may overwrite a value it gave itself; a
field that no source ever stated and that holds the column default yields to the first source
that states it. A manual edit (policy ``overwrite``) always overwrites. Birth date and sex
follow the ID number. Functions flush, never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

import shequ.models  # noqa: F401 - registers the PII, change-log and tag listeners
from shequ.core.iam.crypto import MASKS, blind_index
from shequ.core.iot.models import Device
from shequ.core.places.address import format_address, normalise_address, parse_address
from shequ.core.places.models import PARENT_KINDS, Place, PlaceKind
from shequ.core.places.service import Locator, build_locator, create_place
from shequ.core.registry import validators
from shequ.core.registry.kinds import LABELS, Column, Kind, get_kind
from shequ.core.registry.models import (
    Facility,
    House,
    Household,
    Organisation,
    Person,
    Relation,
    ResidenceType,
    Situation,
    SourceFact,
)
from shequ.db import utcnow

MANUAL = "manual"
DERIVED_SOURCE = "身份证号推算"  # the source of birth date and sex read from an ID number
MERGE = "merge"
OVERWRITE = "overwrite"
MASKED_REASON = "脱敏后的值（含 *）不能导入：导出的台账已脱敏，请删除该列或填入完整号码"
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)
# keys a caller may not set directly: derived, stamped or identity columns
PROTECTED = {"id", "tenant_id", "created_at", "updated_at", "grid_id", "committee_id",
             "compound_id", "building_id"}
VIRTUAL = {"address", "household_number", "parent_code", "address_text"}
VIRTUAL_LENGTH = {"address": 300, "household_number": 40, "parent_code": 64, "address_text": 300}
FLUSH_EVERY = 1000


class RecordInvalid(ValueError):
    """A value a record cannot take; ``field`` is the column key, ``reason`` Chinese."""

    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.value = value


@dataclass
class Note:
    """A remark on a written value that is not an error (e.g. birth date differs from the ID)."""

    field: str
    value: str
    reason: str


# --- cleaning: the checks every write path shares ------------------------------------------


def _max_length(kind: Kind, key: str) -> int | None:
    if key in VIRTUAL_LENGTH and (kind.key != "place" or key != "address_text"):
        return VIRTUAL_LENGTH[key]
    column = kind.model.__table__.c.get(key)
    length = getattr(getattr(column, "type", None), "length", None)
    # Encrypted columns hold ciphertext; their plaintext is checked by its own validator
    return None if column_pii(kind, key) else length


def _enum_code(group: str, value: str) -> str:
    if value in LABELS[group]:
        return str(value)
    allowed = "、".join(zh for zh, _ in LABELS[group].values())
    raise ValueError(f"不是可选值之一（可选：{allowed}）")


def _number(key: str, value: Any, kind_: type) -> Any:
    if isinstance(value, bool):
        raise ValueError("应为数字")
    if isinstance(value, str):
        text = value.replace(",", "")
        try:
            value = float(text)
        except ValueError:
            raise ValueError("应为数字") from None
    if not isinstance(value, int | float):
        raise ValueError("应为数字")
    if kind_ is int:
        if float(value) != int(value):
            raise ValueError("应为整数")
        value = int(value)
    else:
        value = float(value)
    if key == "lon" and not CHINA_LON[0] <= value <= CHINA_LON[1]:
        raise ValueError(f"经度应在 {CHINA_LON[0]:g}–{CHINA_LON[1]:g} 之间（是否与纬度填反了？）")
    if key == "lat" and not CHINA_LAT[0] <= value <= CHINA_LAT[1]:
        raise ValueError(f"纬度应在 {CHINA_LAT[0]:g}–{CHINA_LAT[1]:g} 之间（是否与经度填反了？）")
    if key not in ("lon", "lat") and value < 0:
        raise ValueError("不能为负数")
    return value


_COLUMNS: dict[int, tuple[Kind, dict[str, Column]]] = {}


def _columns(kind: Kind) -> dict[str, Column]:
    """The columns of a kind by key (the first of a key, as ``Kind.column``), built once."""
    cached = _COLUMNS.get(id(kind))
    if cached is None or cached[0] is not kind:
        by_key: dict[str, Column] = {}
        for col in kind.columns:
            by_key.setdefault(col.key, col)
        cached = _COLUMNS[id(kind)] = (kind, by_key)
    return cached[1]


def clean_value(kind: Kind, key: str, value: Any) -> Any:
    """The value as it is stored (None for blank), or RecordInvalid saying why in Chinese."""
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return None
    column = _columns(kind).get(key)
    if column is None:
        if key in PROTECTED or not hasattr(kind.model, key):
            raise RecordInvalid(key, f"{kind.zh}没有字段 {key}", value) from None
        return value  # a plain model attribute without a kind column (attrs, reporter_id…)
    try:
        return _clean_typed(kind, key, column.type, column.enum, value)
    except ValueError as exc:
        raise RecordInvalid(key, str(exc), value) from None


def _clean_typed(kind: Kind, key: str, type_: str, enum: str | None, value: Any) -> Any:
    if type_ in ("id_number", "phone", "uscc"):
        text = str(value)
        if "*" in text:
            raise ValueError(MASKED_REASON)
        check = {"id_number": validators.validate_id_number, "phone": validators.validate_phone,
                 "uscc": validators.validate_uscc}[type_]
        return check(text)
    if type_ == "enum" and enum:
        return _enum_code(enum, str(value))
    if type_ in ("int", "float"):
        return _number(key, value, int if type_ == "int" else float)
    if type_ == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        if not isinstance(value, dt.date):
            raise ValueError("应为日期，如 1990-01-31")
        if not dt.date(1880, 1, 1) <= value <= dt.date.today():
            raise ValueError("日期不合理")
        return value
    if type_ == "datetime":
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("应为带时区的时间，如 2024-05-01 09:30")
        return value
    text = str(value)
    if type_ == "address" or (kind.key == "place" and key == "address_text"):
        text = normalise_address(text)
    limit = _max_length(kind, key)
    if limit and len(text) > limit:
        raise ValueError(f"超过最大长度 {limit} 个字符")
    return text


def column_pii(kind: Kind, key: str) -> str | None:
    """The mask kind of a personal-data column, None for others and for non-columns."""
    column = _columns(kind).get(key)
    return column.pii if column is not None else None


# --- facts: what a source said, as a digest ------------------------------------------------


def canonical(value: Any) -> str:
    """One text per value, so that equal values from two sources give equal digests."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(round(value, 7))
    return str(value).strip()


def fact_digest(value: Any, pii: str | None = None) -> str:
    """blind_index for personal data, sha256 of the canonical text otherwise."""
    return _text_digest(canonical(value), pii)


def _text_digest(text: str, pii: str | None) -> str:
    if pii:
        return blind_index(text) or ""
    return hashlib.sha256(text.encode()).hexdigest()


def fact_shown(value: Any, pii: str | None = None) -> str:
    return _text_shown(canonical(value), pii)


def _text_shown(text: str, pii: str | None) -> str:
    return MASKS[pii](text) if pii else text[:200]


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- the writer -----------------------------------------------------------------------------


class Writer:
    """Writes records from one source under one policy (``merge`` or ``overwrite``).

    It caches places, houses, households and facts; a bulk import preloads them so that it
    issues no SELECT per row. Call ``finish()`` at the end (households, facts, flush).
    """

    def __init__(self, *, session: Session, source: str = MANUAL, policy: str = MERGE) -> None:
        if policy not in (MERGE, OVERWRITE):
            raise ValueError(f"unknown policy {policy!r}")
        source = (source or MANUAL).strip()
        if len(source) > 40:
            raise ValueError("数据来源名称不能超过40个字符")
        self.session = session
        self.source = source
        self.policy = policy
        self.notes: list[Note] = []
        self.conflicts = 0
        self._places: dict[int, Place] = {}  # strong references keep them in the identity map
        self._by_address: dict[str, int | None] = {}
        self._by_code: dict[str, list[Place]] = {}
        self._codes_loaded: set[str] = set()
        self._houses: dict[int, int | None] = {}  # place id → house id
        self._households: dict[str, Household] = {}
        self._households_by_id: dict[int, Household] = {}
        self._new_households: set[str] = set()
        self._members: dict[str, list[Person]] = {}
        self._facts: dict[tuple[str, int], dict[str, dict[str, tuple[int, str]]]] = {}
        self._pending: list[tuple[Any, str, str, str, str]] = []
        self._created: list[Any] = []
        self._locator: Locator | None = None

    # -- places ------------------------------------------------------------------------------

    def _keep(self, place: Place | None) -> Place | None:
        if place is not None:
            self._places[place.id] = place
        return place

    def place(self, place_id: int | None) -> Place | None:
        if place_id is None:
            return None
        if place_id not in self._places:
            self._keep(self.session.get(Place, place_id))
        return self._places.get(place_id)

    def preload_places(self, addresses: Iterable[str | None]) -> None:
        """Resolve many standard addresses with one query per 500 (blanks are skipped)."""
        wanted = sorted({normalise_address(a) for a in addresses if a} - set(self._by_address))
        for chunk in _chunks(wanted):
            rows = self.session.scalars(
                select(Place).where(Place.address_text.in_(chunk)).order_by(Place.id))
            for place in rows:
                self._keep(place)
                self._by_address.setdefault(place.address_text, place.id)
        for key in wanted:
            self._by_address.setdefault(key, None)

    def preload_place_ids(self, ids: Iterable[int | None]) -> None:
        wanted = sorted({i for i in ids if i} - set(self._places))
        for chunk in _chunks(wanted):
            for place in self.session.scalars(select(Place).where(Place.id.in_(chunk))):
                self._keep(place)

    def place_for(self, address: str | None) -> Place | None:
        """The place whose standard address this is, or None."""
        if not address:
            return None
        key = normalise_address(address)
        if key not in self._by_address:
            self.preload_places([key])
        return self.place(self._by_address.get(key))

    def preload_codes(self, codes: Iterable[str | None]) -> None:
        wanted = sorted({c for c in codes if c} - self._codes_loaded)
        for chunk in _chunks(wanted):
            for place in self.session.scalars(select(Place).where(Place.code.in_(chunk))):
                self._keep(place)
                self._by_code.setdefault(place.code, []).append(place)
        self._codes_loaded.update(wanted)

    def place_by_code(self, code: str, kinds: Iterable[PlaceKind | str | None] | None = None) -> Place | None:
        """A place by its code; with ``kinds``, only one of those kinds."""
        self.preload_codes([code])
        allowed = {str(k) for k in kinds if k} if kinds is not None else None
        for place in self._by_code.get(code, []):
            if allowed is None or place.kind in allowed:
                return place
        return None

    def point_place(self, lon: float, lat: float) -> Place | None:
        """The deepest area (compound, committee, grid) containing the point."""
        if self._locator is None:
            self._locator = build_locator(session=self.session)
        found = self._locator.locate(lon, lat)
        return self.place(found.compound_id or found.committee_id or found.grid_id)

    # -- houses and households -------------------------------------------------------------

    def preload_houses(self, place_ids: Iterable[int | None]) -> None:
        wanted = sorted({i for i in place_ids if i} - set(self._houses))
        for chunk in _chunks(wanted):
            for house_id, place_id in self.session.execute(
                    select(House.id, House.place_id).where(House.place_id.in_(chunk))):
                if place_id is not None:  # always, given the IN filter
                    self._houses[place_id] = house_id
        for pid in wanted:
            self._houses.setdefault(pid, None)

    def house_at(self, place_id: int | None) -> int | None:
        if place_id is None:
            return None
        if place_id not in self._houses:
            self.preload_houses([place_id])
        return self._houses.get(place_id)

    def preload_households(self, numbers: Iterable[str] = (), ids: Iterable[int | None] = ()) -> None:
        wanted_numbers = sorted({n for n in numbers if n} - set(self._households))
        for chunk in _chunks(wanted_numbers):
            for hh in self.session.scalars(select(Household).where(Household.number.in_(chunk))):
                self._remember_household(hh)
        wanted = sorted({i for i in ids if i} - set(self._households_by_id))
        for chunk in _chunks(wanted):
            for hh in self.session.scalars(select(Household).where(Household.id.in_(chunk))):
                self._remember_household(hh)

    def _remember_household(self, hh: Household) -> None:
        self._households[hh.number] = hh
        self._households_by_id[hh.id] = hh

    def household(self, number: str) -> Household:
        """The household with this 户号, created (and flushed) when new."""
        if number not in self._households:
            self.preload_households([number])
        if number not in self._households:
            self.ensure_households([number])
        return self._households[number]

    def ensure_households(self, numbers: Iterable[str]) -> int:
        """Create the households not known yet, in one flush; returns how many were new."""
        numbers = list(numbers)
        self.preload_households(numbers)
        new = [Household(number=n) for n in sorted(set(numbers)) if n and n not in self._households]
        if new:
            self.session.add_all(new)
            self.session.flush()
            for hh in new:
                self._remember_household(hh)
                self._new_households.add(hh.number)
        return len(new)

    def _household_number(self, household_id: int | None) -> str | None:
        if household_id is None:
            return None
        if household_id not in self._households_by_id:
            self.preload_households(ids=[household_id])
        hh = self._households_by_id.get(household_id)
        return hh.number if hh else None

    # -- facts -----------------------------------------------------------------------------

    def preload_facts(self, entity: str, ids: Iterable[int]) -> None:
        """Load every source's facts about these records (one query per 500 ids)."""
        wanted = sorted({i for i in ids if i is not None and (entity, i) not in self._facts})
        for i in wanted:
            self._facts[(entity, i)] = {}
        for chunk in _chunks(wanted):
            rows = self.session.execute(
                select(SourceFact.id, SourceFact.entity_id, SourceFact.field, SourceFact.source,
                       SourceFact.digest)
                .where(SourceFact.entity == entity, SourceFact.entity_id.in_(chunk)))
            for fid, eid, field, source, digest in rows:
                self._facts[(entity, eid)].setdefault(field, {})[source] = (fid, digest)

    def facts_of(self, obj: Any) -> dict[str, dict[str, tuple[int, str]]]:
        if obj.id is None:
            return {}
        key = (obj.__tablename__, obj.id)
        if key not in self._facts:
            self.preload_facts(obj.__tablename__, [obj.id])
        return self._facts[key]

    def _stage(self, obj: Any, field: str, source: str, value: Any, pii: str | None,
               digest: str | None = None, shown: str | None = None) -> None:
        digest = digest or fact_digest(value, pii)
        self._pending.append((obj, field, source, digest,
                              fact_shown(value, pii) if shown is None else shown))

    def _write_facts(self) -> None:
        if not self._pending:
            return
        tenant_id = self.session.info.get("tenant_id")
        now = utcnow()
        for obj in self._created:  # records created here have no facts yet: no query needed
            self._facts.setdefault((obj.__tablename__, obj.id), {})
        self._created.clear()
        # the records of consecutive facts are mostly the same: read their key once per record
        keyed: list[tuple[Any, str, int, str, str, str, str]] = []
        last: Any = None
        entity, eid = "", 0
        for obj, field, source, digest, shown in self._pending:
            if obj is not last:
                last, entity, eid = obj, obj.__tablename__, obj.id
            keyed.append((obj, entity, eid, field, source, digest, shown))
        unknown: dict[str, set[int]] = {}
        for _obj, entity, eid, *_ in keyed:
            if (entity, eid) not in self._facts:
                unknown.setdefault(entity, set()).add(eid)
        for entity, ids in unknown.items():
            self.preload_facts(entity, ids)
        inserts: dict[tuple[str, int, str, str], dict[str, Any]] = {}
        updates: dict[int, dict[str, Any]] = {}
        facts = self._facts
        for obj, entity, eid, field, source, digest, shown in keyed:
            known = facts.setdefault((entity, eid), {}).setdefault(field, {})
            old = known.get(source)
            if old is None:
                inserts[(entity, eid, field, source)] = {
                    "tenant_id": tenant_id or obj.tenant_id, "entity": entity, "entity_id": eid,
                    "field": field, "source": source, "digest": digest, "shown": shown,
                    "recorded_at": now}
                known[source] = (0, digest)
            elif old[1] != digest:
                if old[0]:
                    updates[old[0]] = {"fid": old[0], "d": digest, "s": shown, "t": now}
                else:  # inserted in this same batch: change the pending row
                    row = inserts[(entity, eid, field, source)]
                    row.update(digest=digest, shown=shown)
                known[source] = (old[0], digest)
        self._pending.clear()
        table = cast(Table, SourceFact.__table__)  # declarative types it as a FromClause
        if inserts:
            self.session.execute(insert(table), list(inserts.values()))
        if updates:
            self.session.execute(
                sa_update(table).where(table.c.id == bindparam("fid"))
                .values(digest=bindparam("d"), shown=bindparam("s"), recorded_at=bindparam("t")),
                list(updates.values()))
        # ids of new facts are needed only to update them again: fetched lazily, per record
        for entity, eid, _field, _source in inserts:
            self._facts.pop((entity, eid), None)

    # -- writing ---------------------------------------------------------------------------

    def _current(self, obj: Any, kind: Kind, key: str) -> Any:
        if key == "address" and kind.key != "place":
            place = self.place(obj.place_id)
            if place is not None:
                return place.address_text or place.name
            return (obj.attrs or {}).get("address")
        if key == "household_number":
            return self._household_number(obj.household_id)
        if key == "parent_code":
            parent = self.place(obj.parent_id)
            return parent.code if parent else None
        return getattr(obj, key, None)

    def _may_set(self, obj: Any, key: str, current: Any, current_digest: str, new_digest: str) -> bool:
        if _empty(current):
            return True
        if current_digest == new_digest:
            return False
        if self.policy == OVERWRITE:
            return True
        said = self.facts_of(obj).get(key, {})
        mine = said.get(self.source)
        if mine is not None and mine[1] == current_digest:
            return True  # the source corrects a value it gave itself
        column = obj.__table__.c.get(key)
        default = getattr(getattr(column, "default", None), "arg", None)
        # a default nobody stated yields to the first source that states the field
        return bool(not said and default is not None and not callable(default) and current == default)

    def _set(self, obj: Any, kind: Kind, key: str, value: Any) -> None:
        if key == "address" and kind.key != "place":
            attrs = dict(obj.attrs or {})
            attrs["address"] = value
            obj.attrs = attrs
            place = self.place_for(value)
            obj.place_id = place.id if place else None
        elif key == "household_number":
            hh = self.household(value)
            obj.household_id = hh.id
        elif key == "address_text":
            parts = parse_address(value) or {}
            obj.address = parts
            obj.address_text = format_address(parts) if parts else value
        elif key == "parent_code":
            self.notes.append(Note(key, value, "已有场所不会因导入而移动到新的上级，上级编码未改变"))
        else:
            setattr(obj, key, value)

    def clean(self, kind: Kind, values: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in values.items():
            out[key] = clean_value(kind, key, value)
        return out

    def write(self, kind: Kind | str, values: Mapping[str, Any], existing: Any = None, *,
              clean: bool = True) -> tuple[Any, bool]:
        """Create a record, or merge the values into ``existing``; returns (record, created).

        ``clean=False`` when the values were already checked with ``clean_value``.
        """
        kind = get_kind(kind) if isinstance(kind, str) else kind
        vals = self.clean(kind, values) if clean else dict(values)
        with self.session.no_autoflush:
            return self._write(kind, vals, existing)

    def _write(self, kind: Kind, vals: dict[str, Any], existing: Any) -> tuple[Any, bool]:
        model = kind.model
        created = existing is None
        if created and kind.key == "place":
            obj = self._new_place(vals)
        else:
            obj = existing if existing is not None else model()
        overrides: dict[str, list[tuple[str, Any]]] = {}
        if kind.key == "person":
            overrides = self._person_from_id(obj, vals)
        for key, new in vals.items():
            if new is None:
                continue
            pii = column_pii(kind, key)
            text = canonical(new)
            digest = _text_digest(text, pii)
            if created and kind.key != "place":
                self._set(obj, kind, key, new)
            elif not (created and kind.key == "place"):
                current = self._current(obj, kind, key)
                if _empty(current):
                    current_digest = ""
                else:  # equal texts give equal digests: no second keyed hash for them
                    current_text = canonical(current)
                    current_digest = digest if current_text == text else _text_digest(current_text, pii)
                if self._may_set(obj, key, current, current_digest, digest):
                    self._set(obj, kind, key, new)
                elif current_digest != digest:
                    self.conflicts += 1
            if key in overrides:
                for source, value in overrides[key]:
                    self._stage(obj, key, source, value, pii)
            else:
                self._stage(obj, key, self.source, new, pii, digest, _text_shown(text, pii))
        if created and hasattr(obj, "source") and kind.key != "situation":
            obj.source = self.source
        self._after(kind, obj, vals, created)
        if created:
            self.session.add(obj)
            self._created.append(obj)
        return obj, created

    def _person_from_id(self, obj: Any, vals: dict[str, Any]) -> dict[str, list[tuple[str, Any]]]:
        """Birth date and sex follow the ID number; a differing given value is kept as a fact."""
        number = vals.get("id_number") or getattr(obj, "id_number", None)
        overrides: dict[str, list[tuple[str, Any]]] = {}
        if not number:
            return overrides
        derived: dict[str, dt.date | str] = {"birth_date": validators.birth_date_from_id(number),
                   "sex": validators.sex_from_id(number)}
        for key, value in derived.items():
            given = vals.get(key)
            if given is not None and given != value:
                shown = value.isoformat() if isinstance(value, dt.date) else LABELS["sex"][value][0]
                self.notes.append(Note(key, canonical(given),
                                       f"与身份证号不符，以身份证号为准（{shown}）"))
                overrides[key] = [(self.source, given), (DERIVED_SOURCE, value)]
            vals[key] = value
            if given is None:
                overrides[key] = []  # derived, not stated by the source: no fact
        return overrides

    def _new_place(self, vals: dict[str, Any]) -> Place:
        kind = PlaceKind(vals["kind"])
        parent = None
        if vals.get("parent_code"):
            parent = self.place_by_code(vals["parent_code"], PARENT_KINDS[kind])
            if parent is None:
                raise RecordInvalid("parent_code", "找不到可作为上级的场所编码", vals["parent_code"])
        elif None not in PARENT_KINDS[kind]:
            raise RecordInvalid("parent_code", "该类型的场所必须填写上级编码", "")
        parts = parse_address(vals["address_text"]) if vals.get("address_text") else None
        place = create_place(session=self.session, kind=kind, code=vals["code"], name=vals["name"],
                             parent=parent, address=parts,
                             **{k: vals[k] for k in ("floors", "lon", "lat") if vals.get(k) is not None})
        if vals.get("address_text") and not parts:
            place.address_text = vals["address_text"]
        self._keep(place)
        self._by_code.setdefault(place.code, []).append(place)
        if place.address_text:
            self._by_address.setdefault(place.address_text, place.id)
        return place

    def _after(self, kind: Kind, obj: Any, vals: dict[str, Any], created: bool) -> None:
        """Links a record to what its values imply: coordinates, house, household."""
        if hasattr(obj, "lon") and kind.key != "place":
            if obj.place_id is None and obj.lon is not None and obj.lat is not None:
                area = self.point_place(obj.lon, obj.lat)
                obj.place_id = area.id if area else None
            place = self.place(obj.place_id)
            if created and obj.lon is None and place is not None and place.lon is not None:
                obj.lon, obj.lat = place.lon, place.lat
        if isinstance(obj, Person | Household) and obj.place_id and obj.house_id is None:
            obj.house_id = self.house_at(obj.place_id)
        if isinstance(obj, Person) and vals.get("household_number"):
            self._members.setdefault(vals["household_number"], []).append(obj)

    def flush(self) -> None:
        """Flush the records and write the staged facts."""
        self.session.flush()
        self._write_facts()

    def finish(self) -> None:
        """Complete the households (head, place, house, kind) and flush everything."""
        self.session.flush()
        for number, members in self._members.items():
            hh = self._households[number]
            head = next((p for p in members if p.relation == Relation.HEAD), None)
            if head is not None and hh.head_person_id != head.id:
                if hh.head_person_id is None or self.policy == OVERWRITE:
                    hh.head_person_id = head.id
                else:
                    self.notes.append(Note("relation", number, f"户号 {number} 已有户主，保留原户主"))
            anchor = head or members[0]
            if hh.place_id is None and anchor.place_id is not None:
                hh.place_id = anchor.place_id
            if hh.house_id is None and anchor.house_id is not None:
                hh.house_id = anchor.house_id
            if number in self._new_households and anchor.residence_type == ResidenceType.RESIDENT:
                hh.kind = "resident"
        self._members.clear()
        self.flush()


# --- finding a record by its natural key ----------------------------------------------------


KEY_FIELD = {"person": "id_number", "organisation": "credit_code", "house": "address", "place": "code",
             "situation": "external_id", "household": "number", "facility": "code", "device": "code"}


def natural_key(kind: Kind, vals: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The key a record is deduplicated by (see docs/import.md), or None when it has none."""
    key = kind.key
    if key == "person":
        return (vals["id_number"],) if vals.get("id_number") else None
    if key == "organisation":
        if vals.get("credit_code"):
            return ("code", vals["credit_code"])
        return ("name", vals.get("kind"), vals.get("name")) if vals.get("name") else None
    if key == "house":
        return (vals["address"],) if vals.get("address") else None
    if key == "place":
        return (vals.get("kind"), vals["code"]) if vals.get("code") else None
    if key == "situation":
        return (vals["external_id"],) if vals.get("external_id") else None
    field = {"household": "number", "facility": "code", "device": "code"}[key]
    return (vals[field],) if vals.get(field) else None


def _all_scopes(stmt: Any) -> Any:
    return stmt.execution_options(all_scopes=True)


def find_existing(*, session: Session, kind: Kind, keys: Sequence[tuple[Any, ...]],
                  writer: Writer | None = None) -> dict[tuple[Any, ...], Any]:
    """The existing records of a kind for many natural keys, with few queries.

    Looked up across the user's scope (a natural key is unique in the whole tenant), so that a
    scoped importer gets a clear row error instead of a duplicate-key failure."""
    out: dict[tuple[Any, ...], Any] = {}
    if not keys:
        return out
    model = kind.model
    if kind.key == "person":
        by_hash = {blind_index(k[0]): k for k in keys}
        for chunk in _chunks(list(by_hash)):
            for person in session.scalars(_all_scopes(select(Person)).where(Person.id_number_hash.in_(chunk))):
                out[by_hash[person.id_number_hash]] = person
    elif kind.key == "organisation":
        codes = [k[1] for k in keys if k[0] == "code"]
        for chunk in _chunks(codes):
            for org in session.scalars(_all_scopes(select(Organisation)).where(Organisation.credit_code.in_(chunk))):
                out[("code", org.credit_code)] = org
        names = [k[2] for k in keys if k[0] == "name"]
        for chunk in _chunks(names):
            for org in session.scalars(_all_scopes(select(Organisation)).where(
                    Organisation.name.in_(chunk), Organisation.credit_code.is_(None))):
                out.setdefault(("name", org.kind, org.name), org)
    elif kind.key == "house":
        w = writer or Writer(session=session)
        w.preload_places(k[0] for k in keys)
        placed = {w._by_address.get(normalise_address(k[0])): k for k in keys}
        placed.pop(None, None)
        for chunk in _chunks(list(placed)):
            for house in session.scalars(_all_scopes(select(House)).where(House.place_id.in_(chunk))):
                out[placed[house.place_id]] = house
        unplaced = {normalise_address(k[0]): k for k in keys if k not in out}
        if unplaced:
            for house in session.scalars(_all_scopes(select(House)).where(House.place_id.is_(None))):
                text = (house.attrs or {}).get("address")
                if text in unplaced:
                    out.setdefault(unplaced[text], house)
    elif kind.key == "place":
        codes = sorted({k[1] for k in keys})
        for chunk in _chunks(codes):
            for place in session.scalars(_all_scopes(select(Place)).where(Place.code.in_(chunk))):
                out[(place.kind, place.code)] = place
    else:
        field = {"household": "number", "facility": "code", "device": "code",
                 "situation": "external_id"}[kind.key]
        column = getattr(model, field)
        values = sorted({k[0] for k in keys})
        for chunk in _chunks(values):
            for obj in session.scalars(_all_scopes(select(model)).where(column.in_(chunk))):
                out[(getattr(obj, field),)] = obj
    wanted = set(keys)
    return {k: v for k, v in out.items() if k in wanted}


# --- the service functions -----------------------------------------------------------------


def create(*, session: Session, kind: str, values: Mapping[str, Any], source: str = MANUAL) -> Any:
    """Add a record of a kind; refuses one whose natural key is already taken."""
    k = get_kind(kind)
    writer = Writer(session=session, source=source, policy=OVERWRITE)
    vals = writer.clean(k, values)
    key = natural_key(k, vals)
    if key is not None and find_existing(session=session, kind=k, keys=[key], writer=writer):
        field = KEY_FIELD[k.key]
        if k.key == "organisation" and key[0] == "name":
            field = "name"
        raise RecordInvalid(field, f"{k.zh}已存在（{k.column(field).zh}重复）", vals.get(field))
    obj, _ = writer.write(k, vals)
    writer.finish()
    return obj


def update(*, session: Session, kind: str, record: Any, values: Mapping[str, Any],
           source: str = MANUAL) -> Any:
    """Change a record as a person means it: given values overwrite (blank ones erase nothing)."""
    writer = Writer(session=session, source=source, policy=OVERWRITE)
    writer.write(kind, values, existing=record)
    writer.finish()
    return record


def upsert(*, session: Session, kind: str, values: Mapping[str, Any], source: str,
           policy: str = MERGE) -> tuple[Any, bool]:
    """Create the record or merge into the one with the same natural key; (record, created)."""
    k = get_kind(kind)
    writer = Writer(session=session, source=source, policy=policy)
    vals = writer.clean(k, values)
    key = natural_key(k, vals)
    existing = find_existing(session=session, kind=k, keys=[key], writer=writer).get(key) if key else None
    obj, created = writer.write(k, vals, existing=existing)
    writer.finish()
    return obj, created


def create_person(*, session: Session, values: Mapping[str, Any], source: str = MANUAL) -> Person:
    """Register a person (人); birth date and sex come from the ID number when missing."""
    return create(session=session, kind="person", values=values, source=source)


def update_person(*, session: Session, person: Person, values: Mapping[str, Any],
                  source: str = MANUAL) -> Person:
    """Edit a person; the given values overwrite."""
    return update(session=session, kind="person", record=person, values=values, source=source)


def upsert_person(*, session: Session, values: Mapping[str, Any], source: str) -> tuple[Person, bool]:
    """Merge a person found by ID number (blind index), or create one."""
    return upsert(session=session, kind="person", values=values, source=source)


def create_household(*, session: Session, values: Mapping[str, Any], source: str = MANUAL) -> Household:
    """Register a household (户) by its 户号."""
    return create(session=session, kind="household", values=values, source=source)


def upsert_household(*, session: Session, values: Mapping[str, Any], source: str) -> tuple[Household, bool]:
    """Merge a household found by 户号, or create one."""
    return upsert(session=session, kind="household", values=values, source=source)


def create_house(*, session: Session, values: Mapping[str, Any], source: str = MANUAL) -> House:
    """Register a house (房) at its standard address."""
    return create(session=session, kind="house", values=values, source=source)


def update_house(*, session: Session, house: House, values: Mapping[str, Any], source: str = MANUAL) -> House:
    """Edit a house; the given values overwrite."""
    return update(session=session, kind="house", record=house, values=values, source=source)


def upsert_house(*, session: Session, values: Mapping[str, Any], source: str) -> tuple[House, bool]:
    """Merge a house found by address, or create one."""
    return upsert(session=session, kind="house", values=values, source=source)


def create_organisation(*, session: Session, values: Mapping[str, Any], source: str = MANUAL) -> Organisation:
    """Register an organisation (组织); the credit code is checked (GB 32100)."""
    return create(session=session, kind="organisation", values=values, source=source)


def update_organisation(*, session: Session, organisation: Organisation, values: Mapping[str, Any],
                        source: str = MANUAL) -> Organisation:
    """Edit an organisation; the given values overwrite."""
    return update(session=session, kind="organisation", record=organisation, values=values, source=source)


def upsert_organisation(*, session: Session, values: Mapping[str, Any], source: str) -> tuple[Organisation, bool]:
    """Merge an organisation found by credit code (or kind and name without one), or create it."""
    return upsert(session=session, kind="organisation", values=values, source=source)


def create_facility(*, session: Session, values: Mapping[str, Any], source: str = MANUAL) -> Facility:
    """Register a facility (设施) by its code."""
    return create(session=session, kind="facility", values=values, source=source)


def update_facility(*, session: Session, facility: Facility, values: Mapping[str, Any],
                    source: str = MANUAL) -> Facility:
    """Edit a facility; the given values overwrite."""
    return update(session=session, kind="facility", record=facility, values=values, source=source)


def upsert_facility(*, session: Session, values: Mapping[str, Any], source: str) -> tuple[Facility, bool]:
    """Merge a facility found by code, or create one."""
    return upsert(session=session, kind="facility", values=values, source=source)


def create_situation(*, session: Session, values: Mapping[str, Any], source: str = MANUAL) -> Situation:
    """Record a resident's request or opinion (情)."""
    return create(session=session, kind="situation", values=values, source=source)


def update_situation(*, session: Session, situation: Situation, values: Mapping[str, Any],
                     source: str = MANUAL) -> Situation:
    """Edit a situation; the given values overwrite."""
    return update(session=session, kind="situation", record=situation, values=values, source=source)


def upsert_situation(*, session: Session, values: Mapping[str, Any], source: str) -> tuple[Situation, bool]:
    """Merge a situation found by its reference (工单编号), or create one."""
    return upsert(session=session, kind="situation", values=values, source=source)


def create_device(*, session: Session, values: Mapping[str, Any], source: str = MANUAL) -> Device:
    """Register a device (物) by its code."""
    return create(session=session, kind="device", values=values, source=source)


def upsert_device(*, session: Session, values: Mapping[str, Any], source: str) -> tuple[Device, bool]:
    """Merge a device found by code, or create one."""
    return upsert(session=session, kind="device", values=values, source=source)


def upsert_place(*, session: Session, values: Mapping[str, Any], source: str) -> tuple[Place, bool]:
    """Merge a place found by kind and code, or create it under its parent (create_place)."""
    return upsert(session=session, kind="place", values=values, source=source)


def place_unplaced(*, session: Session, kind: str) -> int:
    """Try again to place the records of a kind whose address did not resolve; returns how many."""
    k = get_kind(kind)
    model = k.model
    rows = list(session.scalars(select(model).where(model.place_id.is_(None))))
    writer = Writer(session=session)
    texts = {obj.id: (obj.attrs or {}).get("address") for obj in rows}
    writer.preload_places(t for t in texts.values() if t)
    placed = 0
    for obj in rows:
        place = writer.place_for(texts[obj.id])
        if place is not None:
            obj.place_id = place.id
            placed += 1
    session.flush()
    return placed
