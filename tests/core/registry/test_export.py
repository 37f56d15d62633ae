"""XLSX export (台账) of filtered lists: exactly the rows asked for, masked, audited, and an
export that imports back for columns without personal data."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.iam.models import AuditLog
from shequ.core.registry import service
from shequ.core.registry.exporter import export_xlsx
from shequ.core.registry.importer import ImportRejected, import_bytes
from shequ.core.registry.kinds import FACILITY, PERSON
from shequ.core.registry.query import ListParams, list_records, present_rows
from shequ.core.registry.validators import make_id_number
from tests.factories import place_tree


def sheet(data: bytes) -> tuple[str, list[list[str]], object]:
    wb = load_workbook(io.BytesIO(data))
    ws = wb.worksheets[0]
    rows = [["" if v is None else v for v in row] for row in ws.iter_rows(values_only=True)]
    return ws.title, rows, ws


@pytest.fixture
def people(session: Session) -> dict[str, object]:
    north = place_tree(session, tag="A", committee_name="北街居委会")
    south = place_tree(session, tag="B", lon=121.45, committee_name="南街居委会")
    south.room.address_text = "鹤庆路300弄1号301室"
    session.flush()
    names = {"张一": north, "张二": north, "李三": north, "张四": south, "王五": south}
    for i, (name, tree) in enumerate(names.items()):
        service.create_person(session=session, source="公安", values={
            "name": name, "id_number": make_id_number("310112", dt.date(1960, 1, 1 + i), 11 + i),
            "phone": f"1380000000{i}", "address": tree.room.address_text})
    return {"north": north, "south": south}


def test_export_by_committee_has_exactly_its_rows_masked_with_chinese_headers(
        session: Session, people: dict[str, object]) -> None:
    committee = people["north"].committee
    data, count = export_xlsx(session=session, kind=PERSON, params=ListParams(place_id=committee.id),
                              actor="test-user")
    title, rows, ws = sheet(data)
    assert title == "人口台账" and count == 3
    assert rows[0] == [c.zh for c in PERSON.columns]
    assert sorted(r[0] for r in rows[1:]) == sorted(["张一", "张二", "李三"])
    ids = [r[1] for r in rows[1:]]
    assert all(i.startswith("3101") and "**********" in i for i in ids)
    assert all(r[4].startswith("138****") for r in rows[1:])
    assert {r[PERSON.columns.index(PERSON.column("committee"))] for r in rows[1:]} == {"北街居委会"}
    assert ws.freeze_panes == "A2" and ws["A1"].font.b
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "export")).one()
    assert audit.actor == "test-user" and audit.detail["rows"] == 3
    assert audit.detail["filters"]["place_id"] == committee.id and audit.detail["kind"] == "person"


def test_export_by_text_and_in_english(session: Session, people: dict[str, object]) -> None:
    data, count = export_xlsx(session=session, kind=PERSON, params=ListParams(q="张"), lang="en", actor="t")
    title, rows, _ = sheet(data)
    assert title == "People ledger" and count == 3
    assert rows[0][:2] == ["name", "ID number"]
    assert sorted(r[0] for r in rows[1:]) == ["张一", "张二", "张四"]
    number = make_id_number("310112", dt.date(1960, 1, 5), 15)
    data, count = export_xlsx(session=session, kind=PERSON, params=ListParams(q=number), actor="t")
    assert count == 1 and sheet(data)[1][1][0] == "王五"
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "export").order_by(AuditLog.id.desc())).first()
    assert number not in str(audit.detail) and audit.detail["filters"]["q"].startswith("3101")


def test_an_exported_person_sheet_cannot_be_imported_back(session: Session, people: dict[str, object]) -> None:
    data, _ = export_xlsx(session=session, kind=PERSON, params=ListParams(), actor="t")
    with pytest.raises(ImportRejected) as rejected:
        import_bytes(session=session, kind="person", filename="人口台账.xlsx", data=data, source="公安", actor="t")
    errors = {(e.row, e.column): e.reason for e in rejected.value.errors}
    assert "脱敏" in errors[(2, "身份证号")] and "脱敏" in errors[(2, "联系电话")]


def test_export_then_import_of_facilities_round_trips(session: Session) -> None:
    tree = place_tree(session)
    for n in range(3):
        service.create_facility(session=session, source="房管", values={
            "code": f"EV-{n}", "name": f"{n}号充电桩", "kind": "charging_station", "capacity": 4 + n,
            "address": tree.building.address_text})
    before = present_rows(session=session, kind=FACILITY,
                          items=list_records(session=session, kind=FACILITY, params=ListParams()).items)
    data, count = export_xlsx(session=session, kind=FACILITY, params=ListParams(), actor="t")
    result = import_bytes(session=session, kind="facility", filename="设施台账.xlsx", data=data,
                          source="房管", actor="t")
    assert (count, result.created, result.updated, result.conflicts) == (3, 0, 3, 0)
    after = present_rows(session=session, kind=FACILITY,
                         items=list_records(session=session, kind=FACILITY, params=ListParams()).items)
    assert after == before
