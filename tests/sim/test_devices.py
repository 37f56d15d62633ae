"""Demo devices in the seeded subdistrict: where they go, their codes, determinism, tokens.

``seed`` and ``seed_devices`` commit through their own sessions, like the CLI: these tests use
their own tenant, read back through committed sessions.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from shequ.core.iot.credentials import token_digest
from shequ.core.iot.models import Device
from shequ.core.iot.types import load_catalog
from shequ.core.places.models import Place
from shequ.core.registry.models import Facility, ImportBatch, Person, Tag, Tagging
from shequ.db import session_scope
from shequ.sim.devices import seed_devices
from shequ.sim.seed import seed

TENANT = "SIMDEV"


@pytest.fixture(scope="module")
def seeded(engine: Engine) -> tuple[int, dict[str, int]]:
    report = seed(scale="small", seed=1, tenant_code=TENANT, progress=False)
    return report.tenant_id, seed_devices(tenant_id=report.tenant_id, seed=1, scale="small")


def _devices(tenant_id: int) -> list[tuple[str, str, int | None, str, dict]]:
    with session_scope(tenant_id=tenant_id) as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(Device.code, Device.type_code, Device.place_id, Device.name, Device.attrs)
            .where(Device.tenant_id == tenant_id).order_by(Device.code))]


def test_every_kernel_type_is_placed_and_counted(seeded: tuple[int, dict[str, int]]) -> None:
    tenant_id, counts = seeded
    catalog = load_catalog()
    devices = _devices(tenant_id)
    assert counts["devices"] == len(devices) and 300 <= len(devices) <= 2_000
    placed = {type_code for _, type_code, _, _, _ in devices}
    assert placed <= set(catalog)
    assert placed >= set(catalog) - {"parking_gate"}  # gates only where a chosen lot has one
    assert len({code for code, *_ in devices}) == len(devices)
    assert all(place_id is not None for _, _, place_id, _, _ in devices)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in name) for _, _, _, name, _ in devices)
    with session_scope(tenant_id=tenant_id) as s:
        batch = s.scalars(select(ImportBatch).where(ImportBatch.tenant_id == tenant_id,
                                                    ImportBatch.kind == "device")).one()
        assert batch.created == len(devices) and batch.source == "seed"
        # the area ids come from the place, as for any placed record
        rows = s.execute(select(Device.building_id, Device.compound_id, Device.committee_id, Place.kind,
                                Place.building_id, Place.compound_id, Place.committee_id, Place.id)
                         .join(Place, Place.id == Device.place_id).where(Device.tenant_id == tenant_id)).all()
        for d_b, d_c, d_cm, kind, p_b, p_c, p_cm, pid in rows:
            assert d_c == (pid if kind == "compound" else p_c)
            assert d_cm == (pid if kind == "committee" else p_cm)
            assert d_b == (pid if kind == "building" else p_b)


def test_elderly_living_alone_get_the_four_home_sensors(seeded: tuple[int, dict[str, int]]) -> None:
    tenant_id, _ = seeded
    with session_scope(tenant_id=tenant_id) as s:
        rooms = set(s.scalars(
            select(Person.place_id).join(Tagging, (Tagging.entity == "person") & (Tagging.entity_id == Person.id))
            .join(Tag, Tag.id == Tagging.tag_id)
            .where(Tag.tenant_id == tenant_id, Tag.code.in_(("elderly_alone", "solitary_elderly")),
                   Person.status == "active")))
        homes = s.execute(select(Device.place_id, Device.type_code).where(
            Device.tenant_id == tenant_id, Device.type_code.in_(("door_magnet", "water_meter")))).all()
    rooms.discard(None)
    assert rooms and {p for p, _ in homes} == rooms
    by_room: dict[int, set[str]] = {}
    for place_id, type_code, *_ in [(d[2], d[1]) for d in _devices(tenant_id)]:
        by_room.setdefault(place_id, set()).add(type_code)
    for room in rooms:
        assert by_room[room] == {"smoke_detector", "door_magnet", "pir", "water_meter"}


def test_cameras_sit_at_elevators_and_towers_with_a_facade_calibration(seeded: tuple[int, dict[str, int]]) -> None:
    tenant_id, counts = seeded
    with session_scope(tenant_id=tenant_id) as s:
        elevators = s.scalar(select(func.count()).select_from(Facility).where(
            Facility.tenant_id == tenant_id, Facility.kind == "elevator"))
        towers = s.scalar(select(func.count()).select_from(Place).where(
            Place.tenant_id == tenant_id, Place.kind == "building", Place.floors >= 11))
        facade = s.scalars(select(Device).where(Device.tenant_id == tenant_id,
                                                Device.type_code == "facade_camera")).all()
    assert counts["elevator_camera"] == elevators and counts["facade_camera"] == towers == len(facade)
    for cam in facade:
        a = cam.attrs
        assert a["facade_width_m"] > 5 and a["floor_height_m"] > 2 and a["floors"] >= 11
        cols = a["columns"]
        assert cols[0]["x0"] == 0 and abs(cols[-1]["x1"] - a["facade_width_m"]) < 0.1
        assert all(c["x0"] < c["x1"] for c in cols)


def test_same_seed_same_devices_and_a_rerun_replaces_them(seeded: tuple[int, dict[str, int]]) -> None:
    tenant_id, counts = seeded
    before = [(c, t, p, n) for c, t, p, n, _ in _devices(tenant_id)]
    again = seed_devices(tenant_id=tenant_id, seed=1, scale="small")
    assert again == counts
    assert [(c, t, p, n) for c, t, p, n, _ in _devices(tenant_id)] == before


def test_issue_tokens_gives_every_device_a_working_token(seeded: tuple[int, dict[str, int]]) -> None:
    from shequ.sim.devices import issue_tokens

    tenant_id, counts = seeded
    tokens = issue_tokens(tenant_id)
    assert len(tokens) == counts["devices"] and len(set(tokens.values())) == len(tokens)
    with session_scope(tenant_id=tenant_id) as s:
        stored = dict(s.execute(select(Device.code, Device.token_hash).where(Device.tenant_id == tenant_id)).all())
    assert all(stored[code] == token_digest(token) for code, token in tokens.items())
    rotated = issue_tokens(tenant_id)
    code = next(iter(tokens))
    assert rotated[code] != tokens[code]


def test_an_unknown_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        seed_devices(tenant_id=1, scale="huge")
