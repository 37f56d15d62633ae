"""What a seeded tenant must satisfy, shared by the small- and full-scale tests; and a digest of
its contents as users see them (decrypted, without storage ids), to compare two runs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from shapely import STRtree
from shapely.geometry import Point, shape
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from shequ.core.iam.crypto import blind_index
from shequ.core.places.address import format_address, parse_address
from shequ.core.places.models import Place
from shequ.core.registry.models import (
    Facility,
    House,
    Household,
    Organisation,
    Person,
    Situation,
    SourceFact,
)
from shequ.core.registry.validators import (
    birth_date_from_id,
    sex_from_id,
    validate_id_number,
    validate_uscc,
)
from shequ.db import session_scope
from shequ.sim.population import REF_DATE, age_on


def count(session: Session, model: Any, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def check_people(tenant_id: int) -> dict[str, float]:
    """Every ID number valid, unique, consistent with birth date and sex; blind index and mask
    right; nothing stored in clear. Returns the age structure of registered residents."""
    with session_scope(tenant_id=tenant_id) as s:
        people = s.scalars(select(Person)).all()
        seen: set[str] = set()
        registered_ages = []
        for p in people:
            assert p.id_number is not None
            assert validate_id_number(p.id_number) == p.id_number
            assert p.id_number not in seen, f"duplicate ID number {p.id_number}"
            seen.add(p.id_number)
            assert birth_date_from_id(p.id_number) == p.birth_date
            assert sex_from_id(p.id_number) == p.sex
            assert p.id_number_hash == blind_index(p.id_number)
            assert p.id_number_mask == p.id_number[:4] + "*" * 10 + p.id_number[-4:]
            if p.phone:
                assert p.phone_hash == blind_index(p.phone) and p.phone_mask == p.phone[:3] + "****" + p.phone[-4:]
            if p.residence_type != "resident":
                registered_ages.append(age_on(p.birth_date, REF_DATE))
        raw = s.execute(text("SELECT id_number, phone FROM person WHERE tenant_id = :t LIMIT 50"),
                        {"t": tenant_id}).all()
        assert all(r.id_number.startswith("enc1:") for r in raw)
        assert all(r.phone is None or r.phone.startswith("enc1:") for r in raw)
        n = len(registered_ages)
        return {"people": len(people), "share_60": sum(a >= 60 for a in registered_ages) / n,
                "share_80": sum(a >= 80 for a in registered_ages) / n,
                "not_placed": sum(p.place_id is None for p in people) / len(people),
                "no_phone": sum(p.phone is None for p in people) / len(people)}


def check_places(tenant_id: int) -> None:
    """Containment grid › committee › compound › building, no overlapping footprints, every
    placed person's room exists inside the person's committee, room addresses unique and
    parseable."""
    with session_scope(tenant_id=tenant_id) as s:
        places = {p.id: p for p in s.scalars(select(Place))}
        geoms = {pid: shape(p.geometry) for pid, p in places.items()
                 if p.geometry and p.kind in ("grid", "committee", "compound", "building")}
        for pid, geom in geoms.items():
            p = places[pid]
            if p.kind == "grid":
                continue
            parent = geoms[p.parent_id]
            assert parent.buffer(1e-9).covers(geom), f"{p.kind} {p.name} outside its {places[p.parent_id].kind}"
            assert geom.area > 0
        buildings = [g for pid, g in geoms.items() if places[pid].kind == "building"]
        tree = STRtree(buildings)
        for i, g in enumerate(buildings):
            others = [int(j) for j in tree.query(g, predicate="intersects") if int(j) != i]
            assert not others, f"building footprints overlap: {g.wkt}"

        committees = {pid: g for pid, g in geoms.items() if places[pid].kind == "committee"}
        rows = s.execute(select(Person.place_id, Person.committee_id).where(Person.place_id.is_not(None))).all()
        for place_id, committee_id in rows:
            room = places[place_id]
            assert room.kind == "room"
            assert committee_id == room.committee_id
            assert committees[committee_id].contains(Point(room.lon, room.lat))

        addresses = [p.address_text for p in places.values() if p.kind == "room"]
        assert len(addresses) == len(set(addresses)), "room addresses must be unique"
        for text_ in addresses:
            parts = parse_address(text_)
            assert parts is not None and format_address(parts) == text_, text_
        for p in places.values():
            if p.kind == "room":
                assert 1 <= int(p.address["room"]) % 100 <= 4 and int(p.address["room"]) // 100 == p.floor_no
        lats = [p.lat for p in places.values() if p.lat is not None]
        assert min(lats) > 31.0005  # north of the Huangpu


def check_organisations(tenant_id: int) -> None:
    with session_scope(tenant_id=tenant_id) as s:
        codes = [c for (c,) in s.execute(select(Organisation.credit_code).where(
            Organisation.credit_code.is_not(None)))]
        assert codes and len(codes) == len(set(codes))
        for c in codes:
            assert validate_uscc(c) == c
        committees = count(s, Place, Place.kind == "committee")
        branches = s.scalars(select(Organisation).where(Organisation.kind == "party_branch",
                                                       Organisation.place_id.is_not(None))).all()
        assert len({b.place_id for b in branches}) == committees


def digest(tenant_id: int) -> str:
    """A digest of what the seed put in a tenant, independent of row ids and ciphertexts."""
    h = hashlib.sha256()

    def feed(*values: Any) -> None:
        h.update(json.dumps(values, ensure_ascii=False, default=str, sort_keys=True).encode())

    with session_scope(tenant_id=tenant_id) as s:
        places = {p.id: p for p in s.scalars(select(Place))}
        code = {pid: p.code for pid, p in places.items()}
        code[None] = None  # type: ignore[index]
        for p in sorted(places.values(), key=lambda p: (p.kind, p.code)):
            feed(p.kind, p.code, code[p.parent_id], p.name, p.address_text, p.geometry, p.lon, p.lat,
                 p.floors, p.floor_no, p.height_m, p.use, p.built_year, p.attrs,
                 [code.get(p.grid_id), code.get(p.committee_id), code.get(p.compound_id), code.get(p.building_id)])
        households = {hh.id: hh.number for hh in s.scalars(select(Household))}
        person_key: dict[int | None, str | None] = {None: None}
        for p in sorted(s.scalars(select(Person)), key=lambda p: p.id_number or ""):
            person_key[p.id] = p.id_number
            feed(p.name, p.id_number, p.phone, p.birth_date, p.sex, p.ethnicity, p.residence_type,
                 p.relation, households.get(p.household_id), code.get(p.place_id), p.attrs, p.source)
        for x in sorted(s.scalars(select(House)), key=lambda x: code[x.place_id] or ""):
            feed(code[x.place_id], x.use, x.area_m2, x.rooms, x.owner_name)
        orgs = sorted(s.scalars(select(Organisation)), key=lambda o: (o.kind, o.name))
        for o in orgs:
            feed(o.kind, o.name, o.credit_code, o.legal_person, o.contact_phone, o.industry, o.employees,
                 code.get(o.place_id), o.attrs)
        for f in sorted(s.scalars(select(Facility)), key=lambda f: f.code):
            feed(f.kind, f.code, f.name, f.lon, f.lat, f.capacity, code.get(f.place_id), f.attrs)
        for x in sorted(s.scalars(select(Situation)), key=lambda x: (x.occurred_at, x.title)):
            feed(x.source, x.external_id, x.category, x.title, x.content, person_key.get(x.reporter_id),
                 x.contact_phone, x.lon, x.lat, x.occurred_at.astimezone(dt.UTC), x.status, x.sentiment,
                 code.get(x.place_id))
        for f in sorted(s.scalars(select(SourceFact)),
                        key=lambda f: (person_key.get(f.entity_id) or "", f.field, f.source)):
            feed(person_key.get(f.entity_id), f.field, f.source, f.digest, f.shown, f.recorded_at)
    return h.hexdigest()
