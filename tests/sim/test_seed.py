"""The synthetic subdistrict: counts, invariants, determinism, reset (small scale), and the
full-scale figures (slow).

``seed()`` commits through its own engine session, like the CLI: these tests do not use the
rolled-back ``session`` fixture but their own tenants, read back through committed sessions.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from shequ.core.places.models import Place
from shequ.core.registry.models import (
    Facility,
    Household,
    Membership,
    Organisation,
    Person,
    Situation,
    SourceFact,
    Tag,
    Tagging,
)
from shequ.db import session_scope
from shequ.sim.seed import SCALES, Generator, SeedReport, World, seed
from tests.sim.checks import check_organisations, check_people, check_places, count, digest

SMALL = "SIMSMALL"


@pytest.fixture(scope="module")
def small(engine: Engine) -> SeedReport:
    return seed(scale="small", seed=1, tenant_code=SMALL, progress=False)


def test_small_scale_has_the_shape_of_a_subdistrict(small: SeedReport) -> None:
    c = small.counts
    assert (c["grids"], c["committees"], c["compounds"], c["buildings"]) == (2, 4, 10, 60)
    assert 2_500 <= c["persons"] <= 3_600
    assert 900 <= c["households"] <= 1_500
    assert c["houses"] == c["rooms"] + c["shops"]
    assert c["shops"] >= 10 and c["streets"] >= 3
    with session_scope(tenant_id=small.tenant_id) as s:
        assert count(s, Person) == c["persons"]
        assert count(s, Place, Place.kind == "room") == c["rooms"]
        names = s.scalars(select(Place.name).where(Place.kind == "committee").order_by(Place.code)).all()
        assert names == ["北街居委会", "河东居委会", "华江新村第一居委会", "华江新村第二居委会"]
        streets = s.scalars(select(Place).where(Place.kind == "street")).all()
        assert all(p.geometry["type"] == "LineString" for p in streets)
        assert {"沪闵路", "鹤庆路", "江川路"} & {p.name for p in streets}
        # every household has a head who belongs to it
        heads = s.execute(select(Household.id, Person.household_id)
                          .join(Person, Person.id == Household.head_person_id)).all()
        assert len(heads) == c["households"] and all(a == b for a, b in heads)
        kinds = dict(s.execute(select(Facility.kind, func.count()).group_by(Facility.kind)).all())
        assert {"charging_station", "parking_lot", "garbage_point", "activity_room",
                "service_terminal"} <= set(kinds)
        assert kinds["garbage_point"] >= c["compounds"]
        sources = {src for (src,) in s.execute(select(Situation.source).distinct())}
        assert {"hotline_12345", "grid_patrol", "resident_app"} <= sources


def test_people_have_valid_unique_identities_and_an_old_age_structure(small: SeedReport) -> None:
    stats = check_people(small.tenant_id)
    assert 0.30 <= stats["share_60"] <= 0.45
    assert stats["share_80"] >= 0.03
    assert 0.002 <= stats["not_placed"] <= 0.03
    assert 0.05 <= stats["no_phone"] <= 0.35


def test_places_nest_and_footprints_do_not_overlap(small: SeedReport) -> None:
    check_places(small.tenant_id)


def test_organisations_have_valid_credit_codes_and_every_committee_a_branch(small: SeedReport) -> None:
    check_organisations(small.tenant_id)
    with session_scope(tenant_id=small.tenant_id) as s:
        members = count(s, Membership, Membership.role == "member")
        assert members > 0
        tagged = s.scalar(select(func.count()).select_from(Tagging).join(Tag, Tag.id == Tagging.tag_id)
                          .where(Tag.code == "party_member"))
        assert tagged == members
        elderly = s.scalar(select(func.count()).select_from(Tagging).join(Tag, Tag.id == Tagging.tag_id)
                           .where(Tag.code == "elderly", Tagging.origin == "rule"))
        assert elderly and elderly > members


def test_some_sources_disagree_with_the_master_record(small: SeedReport) -> None:
    with session_scope(tenant_id=small.tenant_id) as s:
        groups = s.execute(select(SourceFact.entity_id, SourceFact.field,
                                  func.count(func.distinct(SourceFact.digest)),
                                  func.count(func.distinct(SourceFact.source)))
                           .group_by(SourceFact.entity_id, SourceFact.field)).all()
        conflicts = [g for g in groups if g[2] > 1]
        assert conflicts and all(g[3] == 2 for g in conflicts)
        assert len(conflicts) < len(groups) / 2
        people = count(s, Person)
        assert 0.005 * people <= len({g[0] for g in conflicts}) <= 0.04 * people


def test_same_seed_same_data_and_reseeding_replaces_the_tenant(small: SeedReport) -> None:
    before = digest(small.tenant_id)
    again = seed(scale="small", seed=1, tenant_code=SMALL, progress=False, reset=True)
    assert again.tenant_id == small.tenant_id
    assert digest(small.tenant_id) == before
    with session_scope(tenant_id=small.tenant_id) as s:
        assert count(s, Person) == small.counts["persons"]
        assert count(s, Organisation) == small.counts["organisations"]


def test_reseeding_without_reset_is_refused(small: SeedReport) -> None:
    with pytest.raises(ValueError, match="reset"):
        seed(scale="small", seed=1, tenant_code=SMALL, progress=False, reset=False)


def _generated(seed_value: int) -> list[tuple[str, str]]:
    world = World(1, dict.fromkeys(("place", "house", "household", "person", "organisation"), 1), None)
    gen = Generator(SCALES["small"], seed_value, "X", world)
    gen.layout()
    gen.estates()
    gen.population()
    return [(p["name"], p["id_number"]) for p in gen.people]


def test_a_different_seed_gives_different_people() -> None:
    one, same, other = _generated(1), _generated(1), _generated(2)
    assert one == same
    assert one != other
    assert len({n for n, _ in one} & {n for n, _ in other}) < len(one)


@pytest.mark.slow
def test_full_scale_meets_the_figures(engine: Engine) -> None:
    report = seed(scale="full", seed=1, tenant_code="SIMFULL", progress=False)
    c = report.counts
    assert c["committees"] == 44 and 8 <= c["grids"] <= 10
    assert 140 <= c["compounds"] <= 160
    assert 1_400 <= c["buildings"] <= 1_600
    assert 45_000 <= c["households"] <= 55_000
    assert 120_000 <= c["persons"] <= 140_000
    assert 200 <= c["shops"] <= 500 and c["organisations:enterprise"] >= 200
    assert c["situations"] >= 2_000
    with session_scope(tenant_id=report.tenant_id) as s:
        names = set(s.scalars(select(Place.name).where(Place.kind == "committee")))
        for real in ("北街居委会", "河东居委会", "紫藤新园居委会", "富仕名邸居委会", "红旗新村第七居委会"):
            assert real in names
        assert count(s, Facility, Facility.kind == "elevator") > 100
    stats = check_people(report.tenant_id)
    assert 0.33 <= stats["share_60"] <= 0.42 and stats["share_80"] >= 0.04
    check_places(report.tenant_id)
    check_organisations(report.tenant_id)
