"""Households and people of the synthetic subdistrict, with an old-town age structure.

Every occupied room gets a household of a type drawn from weights tuned to Jiangchuan (an
old industrial satellite town): many elderly couples and widows in the walk-ups, three
generations under one roof, young migrant tenants (来沪人员) in rented rooms, registered
households that live elsewhere (人户分离). Ages are computed on a fixed reference date so
that the same seed gives the same people on every run.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from shequ.core.registry.models import Relation, ResidenceType
from shequ.sim.identity import IdentityMaker
from shequ.sim.names import (
    NATIONAL_SURNAME,
    SHANGHAI_SURNAME,
    WeightedChoice,
    choice,
    given_name,
    randint,
)

# plain strings (the enums' values): cheaper to compare and store than enum members
HEAD, SPOUSE, CHILD, PARENT, GRANDCHILD, TENANT, OTHER = (
    r.value for r in (Relation.HEAD, Relation.SPOUSE, Relation.CHILD, Relation.PARENT,
                      Relation.GRANDCHILD, Relation.TENANT, Relation.OTHER))
REGISTERED, AWAY, RESIDENT = (ResidenceType.REGISTERED.value, ResidenceType.REGISTERED_AWAY.value,
                              ResidenceType.RESIDENT.value)

REF_DATE = dt.date(2026, 11, 1)  # every age and date of the synthetic data is relative to this

# Five-year bands of the elderly, relative weights (the 1950s baby boom is now 65–74).
ELDERLY_BANDS = ((60, 1.0), (65, 1.15), (70, 0.95), (75, 0.6), (80, 0.42), (85, 0.27),
                 (90, 0.1), (95, 0.025), (100, 0.003))

REGISTERED_TYPES = (("elder_alone", 0.11), ("elder_couple", 0.23), ("elder_with_child", 0.06),
                    ("empty_nest", 0.11), ("nuclear", 0.23), ("three_gen", 0.16),
                    ("young_couple", 0.05), ("single", 0.05))
MIGRANT_TYPES = (("worker", 0.35), ("couple", 0.25), ("family", 0.20), ("roommates", 0.15),
                 ("group_rental", 0.05))
AWAY_TYPES = (("moved_family", 0.85), ("in_care", 0.15))
ETHNIC = (("汉族", 985), ("回族", 4), ("满族", 3), ("蒙古族", 1), ("壮族", 2), ("土家族", 2),
          ("朝鲜族", 1), ("苗族", 2))


@dataclass
class Member:
    relation: str
    sex: str
    age: int
    local: bool = True
    surname: str | None = None  # inherited from the father when known
    residence: str = REGISTERED


@dataclass
class PersonDraft:
    name: str
    sex: str
    age: int
    birth: dt.date
    id_number: str
    phone: str | None
    relation: str
    residence_type: str
    ethnicity: str


@dataclass
class HouseholdDraft:
    kind: str  # registered | resident
    htype: str
    members: list[PersonDraft] = field(default_factory=list)


_BIRTH_SPANS: dict[int, tuple[int, int]] = {}


def birth_for_age(rng: random.Random, age: int) -> dt.date:
    """A birth date at which a person is exactly ``age`` on the reference date."""
    span = _BIRTH_SPANS.get(age)
    if span is None:
        latest = REF_DATE.replace(year=REF_DATE.year - age).toordinal()
        earliest = REF_DATE.replace(year=REF_DATE.year - age - 1).toordinal() + 1
        span = _BIRTH_SPANS[age] = (earliest, latest - earliest + 1)
    return dt.date.fromordinal(span[0] + int(rng.random() * span[1]))


def age_on(birth: dt.date, today: dt.date = REF_DATE) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


class PopulationMaker:
    """Draws households and turns them into people with names, ID numbers and phones."""

    def __init__(self, rng: random.Random, ident: IdentityMaker) -> None:
        self.rng = rng
        self.ident = ident
        self._band = WeightedChoice(ELDERLY_BANDS)
        self._ethnic = WeightedChoice(ETHNIC)
        self._registered = WeightedChoice(REGISTERED_TYPES)
        self._migrant = WeightedChoice(MIGRANT_TYPES)
        self._away = WeightedChoice(AWAY_TYPES)

    # --- ages ---
    def elderly(self, lo: int = 60, hi: int = 104) -> int:
        rng = self.rng
        while True:
            age = self._band(rng) + int(rng.random() * 5)
            if lo <= age <= hi:
                return age

    def spouse_age(self, husband: int, lo: int = 18) -> int:
        return max(lo, min(104, round(husband - self.rng.gauss(2.5, 2.5))))

    def child_age(self, mother: int, lo: int = 23, hi: int = 38) -> int:
        return mother - randint(self.rng, lo, hi)

    # --- household compositions ---
    def registered(self) -> tuple[str, list[Member]]:
        rng = self.rng
        htype = self._registered(rng)
        sur = SHANGHAI_SURNAME(rng)
        m: list[Member] = []
        if htype == "elder_alone":
            m.append(Member(HEAD, "F" if rng.random() < 0.68 else "M", self.elderly(65)))
        elif htype == "elder_couple":
            h = self.elderly(62)
            m += [Member(HEAD, "M", h, surname=sur),
                  Member(SPOUSE, "F", self.spouse_age(h, 56))]
        elif htype == "elder_with_child":
            h = self.elderly(62)
            wife = self.spouse_age(h, 56)
            widowed = rng.random() < 0.4
            if widowed:
                m.append(Member(HEAD, "F", wife))
                child_sur = None
            else:
                m += [Member(HEAD, "M", h, surname=sur), Member(SPOUSE, "F", wife)]
                child_sur = sur
            c = max(22, min(self.child_age(wife, 24, 36), 60))
            m.append(Member(CHILD, choice(rng, "MF"), c, surname=child_sur))
        elif htype == "empty_nest":
            h = randint(rng, 47, 66)
            m += [Member(HEAD, "M", h, surname=sur),
                  Member(SPOUSE, "F", self.spouse_age(h, 44))]
        elif htype == "nuclear":
            h = randint(rng, 30, 57)
            w = self.spouse_age(h, 26)
            m += [Member(HEAD, "M" if rng.random() < 0.8 else "F", h, surname=sur),
                  Member(SPOUSE, "F", w)]
            if m[0].sex == "F":
                m[1].sex = "M"
            kids = 1 if rng.random() < 0.85 else 2
            for _ in range(kids):
                c = self.child_age(w, 23, 38)
                if c < 0:
                    c = randint(rng, 0, 6)
                m.append(Member(CHILD, choice(rng, "MF"), min(c, 30), surname=sur))
        elif htype == "three_gen":
            g = self.elderly(60, 92)
            gw = self.spouse_age(g, 58)
            both = rng.random() < 0.6
            mid = max(28, min(self.child_age(gw, 24, 32), 62))
            mid_sex = "M" if rng.random() < 0.6 else "F"
            in_law = self.spouse_age(mid, 26) if mid_sex == "M" else mid + round(rng.gauss(2.5, 2))
            in_law_sur = SHANGHAI_SURNAME(rng)
            kid_sur = sur if mid_sex == "M" else in_law_sur
            mother = in_law if mid_sex == "M" else mid
            kid_ages = [max(0, self.child_age(mother, 24, 36)) for _ in range(1 if rng.random() < 0.8 else 2)]
            elder_head = rng.random() < 0.5
            if elder_head:
                m.append(Member(HEAD, "M", g, surname=sur) if both
                         else Member(HEAD, "F", gw))
                if both:
                    m.append(Member(SPOUSE, "F", gw))
                m.append(Member(CHILD, mid_sex, mid, surname=sur if both else None))
                m.append(Member(OTHER, "F" if mid_sex == "M" else "M", in_law, surname=in_law_sur))
                m += [Member(GRANDCHILD, choice(rng, "MF"), k, surname=kid_sur) for k in kid_ages]
            else:
                m.append(Member(HEAD, mid_sex, mid, surname=sur if both else None))
                m.append(Member(SPOUSE, "F" if mid_sex == "M" else "M", in_law, surname=in_law_sur))
                if both:
                    m.append(Member(PARENT, "M", g, surname=sur))
                m.append(Member(PARENT, "F", gw))
                m += [Member(CHILD, choice(rng, "MF"), k, surname=kid_sur) for k in kid_ages]
        elif htype == "young_couple":
            h = randint(rng, 25, 37)
            m += [Member(HEAD, "M", h, surname=sur),
                  Member(SPOUSE, "F", self.spouse_age(h, 23))]
        else:  # single
            m.append(Member(HEAD, choice(rng, "MF"), randint(rng, 25, 59)))
        return htype, m

    def migrant(self) -> tuple[str, list[Member]]:
        rng = self.rng
        htype = self._migrant(rng)
        res = RESIDENT
        sur = NATIONAL_SURNAME(rng)
        m: list[Member] = []
        if htype == "worker":
            m.append(Member(HEAD, "M" if rng.random() < 0.6 else "F", randint(rng, 19, 52),
                            local=False, residence=res))
        elif htype in ("couple", "family"):
            h = randint(rng, 23, 50)
            w = self.spouse_age(h, 21)
            m += [Member(HEAD, "M", h, False, sur, res), Member(SPOUSE, "F", w, False, None, res)]
            if htype == "family":
                for _ in range(1 if rng.random() < 0.7 else 2):
                    c = max(0, min(self.child_age(w, 21, 34), 16))
                    m.append(Member(CHILD, choice(rng, "MF"), c, False, sur, res))
                if rng.random() < 0.12:  # a grandparent who came to help
                    m.append(Member(PARENT, "F", min(85, h + randint(rng, 24, 32)), False, None, res))
        else:
            n = randint(rng, 2, 4) if htype == "roommates" else randint(rng, 6, 9)
            hi = 35 if htype == "roommates" else 48
            for i in range(n):
                m.append(Member(HEAD if i == 0 else TENANT,
                                "M" if rng.random() < 0.65 else "F", randint(rng, 18, hi), False, None, res))
        return htype, m

    def away(self) -> tuple[str, list[Member]]:
        """A registered household whose members live elsewhere (人户分离, 户在人不在)."""
        rng = self.rng
        htype = self._away(rng)
        away = AWAY
        sur = SHANGHAI_SURNAME(rng)
        if htype == "in_care":  # in a nursing home or with children
            return htype, [Member(HEAD, "F" if rng.random() < 0.7 else "M", self.elderly(80),
                                  residence=away)]
        h = randint(rng, 35, 72)
        w = self.spouse_age(h, 32)
        m = [Member(HEAD, "M", h, True, sur, away), Member(SPOUSE, "F", w, True, None, away)]
        if rng.random() < 0.45:
            m.append(Member(CHILD, choice(rng, "MF"), max(0, min(self.child_age(w), 40)),
                            True, sur, away))
        return htype, m

    # --- people ---
    def has_phone(self, age: int, residence: str) -> bool:
        r = self.rng.random()
        if age < 12:
            return False
        if age < 18:
            return r < 0.4
        if residence == RESIDENT:
            return r < 0.995
        if age < 70:
            return r < 0.96
        if age < 80:
            return r < 0.85
        if age < 90:
            return r < 0.6
        return r < 0.35

    def realise(self, members: list[Member]) -> list[PersonDraft]:
        rng = self.rng
        out: list[PersonDraft] = []
        family_region = self.ident.region(members[0].local)
        for mem in members:
            birth = birth_for_age(rng, mem.age)
            if mem.surname is None:
                surname = (SHANGHAI_SURNAME if mem.local else NATIONAL_SURNAME)(rng)
            else:
                surname = mem.surname
            name = surname + given_name(rng, mem.sex, birth.year)
            # migrants and in-laws often come from another county than the family
            own_region = (mem.relation == TENANT
                          or (mem.relation == HEAD and not mem.local)
                          or (mem.relation in (SPOUSE, OTHER) and rng.random() < 0.5))
            region = self.ident.region(mem.local) if own_region else family_region
            id_number = self.ident.id_number(region, birth, mem.sex)
            phone = self.ident.mobile() if self.has_phone(mem.age, mem.residence) else None
            ethnicity = self._ethnic(rng)
            out.append(PersonDraft(name, mem.sex, mem.age, birth, id_number, phone, mem.relation,
                                   mem.residence, ethnicity))
        return out
