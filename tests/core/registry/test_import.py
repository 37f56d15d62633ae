"""CSV/XLSX import: every row checked first, one bad row changes nothing, dedupe, sources,
Excel's habits (GBK CSV, date cells, numbers for phones and ID numbers), every kind."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import Engine, delete, func, inspect, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from shequ.core.changelog import ChangeLog
from shequ.core.iam.crypto import blind_index
from shequ.core.iam.models import AuditLog
from shequ.core.iot.models import Device
from shequ.core.places.models import Place, Tenant
from shequ.core.places.service import create_tenant
from shequ.core.registry.importer import (
    ImportRejected,
    _read_xlsx_fast,
    _read_xlsx_openpyxl,
    columns_markdown,
    import_bytes,
    import_template,
)
from shequ.core.registry.kinds import PERSON
from shequ.core.registry.models import (
    Facility,
    House,
    Household,
    ImportBatch,
    Organisation,
    Person,
    Situation,
    SourceFact,
)
from shequ.core.registry.query import ListParams, list_records
from shequ.core.registry.validators import make_id_number, make_uscc
from shequ.db import session_scope
from tests.factories import place_tree

PERSON_HEADERS = ["姓名", "身份证号", "性别", "出生日期", "联系电话", "人口类型", "户号", "与户主关系", "居住地址"]
ROOM = "鹤庆路258弄12号301室"


def xlsx(headers: list[str], rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(headers)
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(headers: list[str], rows: list[list[Any]], encoding: str = "utf-8-sig") -> bytes:
    lines = [",".join(headers)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def id_no(n: int) -> str:
    return make_id_number("310112", dt.date(1940, 1, 1) + dt.timedelta(days=n * 7), n % 1000)


def person_rows(n: int, start: int = 0) -> list[list[Any]]:
    rows = []
    for i in range(start, start + n):
        household = f"H{i // 3:05d}"
        rows.append([f"居民{i}", id_no(i), "", "", f"139{i:08d}", "户籍人口", household,
                     "户主" if i % 3 == 0 else "子女", ROOM])
    return rows


def counts(session: Session) -> dict[str, int]:
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Person, Household, ChangeLog, SourceFact, ImportBatch)}


def run(session: Session, kind: str, data: bytes, filename: str = "x.xlsx", source: str = "公安实有人口"):
    return import_bytes(session=session, kind=kind, filename=filename, data=data, source=source, actor="test")


# --- the acceptance test of the issue --------------------------------------------------------


def test_one_bad_id_number_at_row_812_changes_nothing_and_is_named(session: Session) -> None:
    place_tree(session)
    run(session, "person", xlsx(PERSON_HEADERS, person_rows(10, start=5000)))
    before = counts(session)
    rows = person_rows(1000)
    good = rows[810][1]
    rows[810][1] = good[:-1] + ("0" if good[-1] != "0" else "1")  # row 812 of the sheet
    with pytest.raises(ImportRejected) as rejected:
        run(session, "person", xlsx(PERSON_HEADERS, rows))
    assert counts(session) == before
    [error] = rejected.value.errors
    assert (error.row, error.column) == (812, "身份证号")
    assert "校验位" in error.reason and good[-4:] not in error.value[:4]


@pytest.fixture
def committed_tenant(engine: Engine) -> Iterator[tuple[str, int]]:
    """A committed tenant with a place tree, for code that opens its own sessions (the CLI)."""
    code = f"I{uuid.uuid4().hex[:8]}"
    with session_scope(engine=engine, actor="test") as session:
        tenant_id = create_tenant(session=session, code=code, name="导入测试街道").id
    with session_scope(tenant_id=tenant_id, engine=engine, actor="test") as session:
        place_tree(session)
    yield code, tenant_id
    with engine.begin() as conn:
        conn.execute(delete(Tenant).where(Tenant.id == tenant_id))


def test_the_cli_exits_non_zero_and_prints_row_and_column(committed_tenant: tuple[str, int],
                                                          tmp_path: Path, engine: Engine) -> None:
    from shequ.cli import app

    code, tenant_id = committed_tenant
    rows = person_rows(1000)
    rows[810][1] = rows[810][1][:-1] + ("0" if rows[810][1][-1] != "0" else "1")
    bad = tmp_path / "人口.xlsx"
    bad.write_bytes(xlsx(PERSON_HEADERS, rows))
    result = CliRunner().invoke(app, ["import", "person", str(bad), "--tenant", code, "--source", "公安"])
    assert result.exit_code != 0
    assert "第 812 行" in result.output and "身份证号" in result.output and "校验位" in result.output
    with session_scope(tenant_id=tenant_id, engine=engine) as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 0

    good = tmp_path / "good.xlsx"
    good.write_bytes(xlsx(PERSON_HEADERS, person_rows(5)))
    result = CliRunner().invoke(app, ["import", "person", str(good), "--tenant", code, "--source", "公安"])
    assert result.exit_code == 0, result.output
    with session_scope(tenant_id=tenant_id, engine=engine) as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 5


# --- dedupe, sources, conflicts --------------------------------------------------------------


def test_a_second_import_updates_and_another_source_leaves_a_conflict(session: Session) -> None:
    tree = place_tree(session)
    data = xlsx(PERSON_HEADERS, person_rows(9))
    first = run(session, "person", data)
    assert (first.rows, first.created, first.updated, first.unplaced) == (9, 9, 0, 0)
    assert session.scalar(select(func.count()).select_from(Household)) == 3
    head = session.scalar(select(Person).where(Person.id_number_hash == blind_index(id_no(0))))
    household = session.get(Household, head.household_id)
    assert household.head_person_id == head.id and household.place_id == tree.room.id
    assert head.committee_id == tree.committee.id

    again = run(session, "person", data)
    assert (again.created, again.updated) == (0, 9)
    assert session.scalar(select(func.count()).select_from(Person)) == 9
    assert session.scalar(select(func.count()).select_from(Household)) == 3

    rows = person_rows(9)
    rows[0][4] = "13600000000"
    other = run(session, "person", xlsx(PERSON_HEADERS, rows), source="卫健")
    assert (other.created, other.updated, other.conflicts) == (0, 9, 1)
    session.refresh(head)
    assert head.phone == "13900000000"  # the first source's value stays
    phones = dict(session.execute(select(SourceFact.source, SourceFact.digest).where(
        SourceFact.entity == "person", SourceFact.entity_id == head.id, SourceFact.field == "phone")).all())
    assert phones == {"公安实有人口": blind_index("13900000000"), "卫健": blind_index("13600000000")}
    batches = session.scalars(select(ImportBatch).order_by(ImportBatch.id)).all()
    assert [(b.source, b.created, b.updated) for b in batches] == [
        ("公安实有人口", 9, 0), ("公安实有人口", 0, 9), ("卫健", 0, 9)]
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "import")).all()
    assert len(audit) == 3 and audit[-1].detail["batch_id"] == batches[-1].id


def test_duplicates_inside_the_file_name_both_rows(session: Session) -> None:
    rows = person_rows(3)
    rows[2][1] = rows[0][1]
    with pytest.raises(ImportRejected) as rejected:
        run(session, "person", xlsx(PERSON_HEADERS, rows))
    [error] = rejected.value.errors
    assert (error.row, error.column) == (4, "身份证号") and "第 2 行" in error.reason


def test_an_unresolved_address_imports_the_record_unplaced(session: Session) -> None:
    rows = person_rows(2)
    rows[1][8] = "不存在路1号"
    result = run(session, "person", xlsx(PERSON_HEADERS, rows))
    assert (result.created, result.unplaced) == (2, 2)  # no place tree in this tenant at all
    person = session.scalar(select(Person).where(Person.id_number_hash == blind_index(id_no(1))))
    assert person.place_id is None and person.attrs["address"] == "不存在路1号"


# --- what Excel does to files ----------------------------------------------------------------


def test_a_gbk_csv_from_excel_imports(session: Session) -> None:
    place_tree(session)
    data = csv_bytes(PERSON_HEADERS, person_rows(3), encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    result = run(session, "person", data, filename="人口.csv")
    assert result.created == 3
    assert sorted(session.scalars(select(Person.name))) == ["居民0", "居民1", "居民2"]


def test_excel_date_cells_and_phone_numbers_as_floats(session: Session) -> None:
    place_tree(session)
    number = id_no(7)
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=49)
    rows = [["李华", number, "男", dt.datetime.combine(birth, dt.time()), 13812345678.0, "户籍人口", "", "", ROOM],
            ["李梅", id_no(8), "", dt.datetime(1999, 9, 9), 13812345679, "", "", "", ROOM]]
    result = run(session, "person", xlsx(PERSON_HEADERS, rows))
    person = session.scalar(select(Person).where(Person.id_number_hash == blind_index(number)))
    assert person.birth_date == birth and person.phone == "13812345678"
    # row 3's birth date disagrees with its ID number: imported, with a warning on that cell
    [warning] = result.warnings
    assert (warning.row, warning.column) == (3, "出生日期") and "身份证号" in warning.reason

    situation = xlsx(["工单编号", "反映时间", "来源", "类别", "标题"],
                     [["GD-1", dt.datetime(2024, 5, 1, 9, 30), "12345热线", "环境", "垃圾未清运"]])
    run(session, "situation", situation)
    occurred = session.scalar(select(Situation.occurred_at))
    assert occurred == dt.datetime(2024, 5, 1, 1, 30, tzinfo=dt.UTC)  # 09:30 in Shanghai


@pytest.mark.parametrize("cell", [3.10112e17, 310112194001010000, "3.10112E+17"])
def test_an_id_number_mangled_by_excel_is_a_clear_error(session: Session, cell: Any) -> None:
    with pytest.raises(ImportRejected) as rejected:
        run(session, "person", xlsx(["姓名", "身份证号"], [["王五", cell]]))
    [error] = rejected.value.errors
    assert (error.row, error.column) == (2, "身份证号")
    assert "文本" in error.reason and "Excel" in error.reason


def test_an_unknown_header_and_a_missing_required_column_are_named(session: Session) -> None:
    with pytest.raises(ImportRejected) as rejected:
        run(session, "person", xlsx(["姓名", "身份证号", "备注信息"], [["王五", id_no(1), "x"]]))
    [error] = rejected.value.errors
    assert (error.row, error.column) == (1, "备注信息") and "未知的列名" in error.reason
    with pytest.raises(ImportRejected) as rejected:
        run(session, "person", xlsx(["身份证号", "电话"], [[id_no(1), "13800000000"]]))
    [error] = rejected.value.errors
    assert (error.row, error.column, error.reason) == (1, "姓名", "缺少必填列")


def test_english_headers_aliases_and_enum_codes_are_accepted(session: Session) -> None:
    data = csv_bytes(["name", "公民身份号码", "SEX", "手机号", "residence type"],
                     [["Li Lei", id_no(3), "male", "13800000003", "resident"],
                      ["韩梅梅", id_no(4), "F", "13800000004", "来沪人员"]])
    assert run(session, "person", data, filename="p.csv").created == 2
    assert sorted(session.scalars(select(Person.residence_type))) == ["resident", "resident"]


def test_every_error_of_every_row_is_reported_at_once(session: Session) -> None:
    rows = [["", id_no(1), "未知", "1990-02-30", "12345"], ["王五", id_no(2), "男", "", ""]]
    with pytest.raises(ImportRejected) as rejected:
        run(session, "person", xlsx(["姓名", "身份证号", "性别", "出生日期", "联系电话"], rows))
    assert [(e.row, e.column) for e in rejected.value.errors] == [
        (2, "姓名"), (2, "性别"), (2, "出生日期"), (2, "联系电话")]


# --- every kind ------------------------------------------------------------------------------


def test_every_kind_imports_a_valid_file(session: Session) -> None:
    places = xlsx(["编码", "名称", "类型", "上级编码", "标准地址", "层数"], [
        ["BLD1", "1号", "楼栋", "CMP1", "鹤庆路258弄1号", 6],  # before its parent: ordered
        ["G1", "第一网格", "网格", "", "", ""],
        ["C1", "北街居委会", "居委会", "G1", "", ""],
        ["CMP1", "鹤庆新村", "小区", "C1", "鹤庆路258弄", ""],
    ])
    assert run(session, "place", places).created == 4
    building = session.scalar(select(Place).where(Place.code == "BLD1"))
    committee = session.scalar(select(Place).where(Place.code == "C1"))
    assert building.committee_id == committee.id and building.floors == 6

    files = {
        "house": (["房屋地址", "房屋用途", "建筑面积（㎡）", "产权人"], [["鹤庆路258弄1号", "自住", "89.5㎡", "张三"]]),
        "household": (["户号", "户类型", "地址"], [["HH-1", "居住户", "鹤庆路258弄1号"]]),
        "organisation": (["名称", "组织类型", "统一社会信用代码", "联系电话", "从业人数", "地址"],
                         [["鹤庆便利店", "沿街商户", make_uscc("9", "2", "310112", "MA1FL0Q5"),
                           "021-64301234", 3, "鹤庆路258弄1号"]]),
        "facility": (["设施编号", "名称", "设施类型", "容量", "位置"], [["ELV-1", "1号楼电梯", "电梯", "8人", "鹤庆路258弄1号"]]),
        "situation": (["工单编号", "反映时间", "来源", "类别", "标题", "联系电话", "地址"],
                      [["12345-1", "2024-05-01 09:30", "12345热线", "噪声", "夜间施工", "13800001111", "鹤庆路258弄1号"]]),
        "device": (["设备编号", "名称", "设备类型", "位置"], [["SD-1", "烟感", "smoke_detector", "鹤庆路258弄1号"]]),
        "person": (PERSON_HEADERS, [["张三", id_no(9), "", "", "13800000009", "户籍人口", "HH-1", "户主", "鹤庆路258弄1号"]]),
    }
    models = {"house": House, "household": Household, "organisation": Organisation, "facility": Facility,
              "situation": Situation, "device": Device, "person": Person}
    for kind, (headers, rows) in files.items():
        result = run(session, kind, xlsx(headers, rows))
        assert (result.created, result.unplaced) == (1, 0), kind
        record = session.scalar(select(models[kind]))
        assert record.building_id == building.id and record.committee_id == committee.id, kind
    assert session.scalar(select(House.area_m2)) == 89.5
    assert session.scalar(select(Facility.capacity)) == 8
    assert session.scalar(select(Household.kind)) == "resident"
    assert session.scalar(select(Organisation.contact_phone)) == "021-64301234"


def test_a_place_under_an_unknown_or_wrong_parent_is_refused(session: Session) -> None:
    with pytest.raises(ImportRejected) as rejected:
        run(session, "place", xlsx(["编码", "名称", "类型", "上级编码"], [
            ["R1", "101室", "房间", "NOPE"], ["G1", "网格", "网格", ""], ["B1", "1号", "楼栋", "G1"]]))
    assert [(e.row, e.column) for e in rejected.value.errors] == [(2, "上级编码"), (4, "上级编码")]


# --- personal data never in plaintext --------------------------------------------------------


def _plaintext_rows(engine: Engine, needle: str) -> list[str]:
    found = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for column in inspect(engine).get_columns(table):
                name = str(column["type"]).lower()
                if not any(t in name for t in ("char", "text", "json")):
                    continue
                hit = conn.execute(text(f'SELECT count(*) FROM "{table}" WHERE CAST("{column["name"]}" AS TEXT) LIKE :p'),
                                   {"p": f"%{needle}%"}).scalar()
                if hit:
                    found.append(f"{table}.{column['name']}")
    return found


def test_no_plaintext_id_number_or_phone_anywhere_in_the_database_or_the_logs(
        committed_tenant: tuple[str, int], engine: Engine, db_kind: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    from shequ.cli import app

    code, tenant_id = committed_tenant
    number, phone = id_no(321), "13912345678"
    sheet = tmp_path / "人口.xlsx"
    sheet.write_bytes(xlsx(PERSON_HEADERS, [["陈十", number, "", "", phone, "户籍人口", "H9", "户主", ROOM]]))
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # SQL with its parameters
    result = CliRunner().invoke(app, ["import", "person", str(sheet), "--tenant", code, "--source", "公安"])
    caplog.set_level(logging.WARNING, logger="sqlalchemy.engine")
    assert result.exit_code == 0, result.output
    assert any("INSERT INTO person" in r.getMessage() for r in caplog.records)
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records) + result.output
    assert number not in logged and phone not in logged
    if db_kind == "sqlite":
        path = Path(engine.url.database)
        blob = path.read_bytes() + (Path(f"{path}-wal").read_bytes() if Path(f"{path}-wal").exists() else b"")
        assert number.encode() not in blob and phone.encode() not in blob
        assert number[-8:].encode() not in blob
    assert _plaintext_rows(engine, number) == [] and _plaintext_rows(engine, phone) == []
    with session_scope(tenant_id=tenant_id, engine=engine) as session:
        from shequ.core.registry.kinds import PERSON as kind

        for q in (number, phone):
            page = list_records(session=session, kind=kind, params=ListParams(q=q))
            assert [p.name for p in page.items] == ["陈十"]


# --- templates, readers, docs ----------------------------------------------------------------


def test_the_template_has_the_headers_and_imports_once_filled(session: Session) -> None:
    data = import_template("person")
    wb = load_workbook(io.BytesIO(data))
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[1]]
    assert headers == [c.zh for c in PERSON.columns if c.importable]
    assert ws.column_dimensions["B"].number_format == "@"
    with pytest.raises(ImportRejected, match="没有数据行"):
        run(session, "person", data)
    ws.append(["王五", id_no(5)])
    buf = io.BytesIO()
    wb.save(buf)
    assert run(session, "person", buf.getvalue()).created == 1


def test_the_fast_reader_reads_what_openpyxl_reads() -> None:
    data = xlsx(["a", "b", "c", "d"], [["文字", 1.5, dt.datetime(2024, 1, 2, 3, 4), 13812345678],
                                       [None, "x", None, 3.10112e17], [], ["末行", True, dt.date(2020, 2, 29), -7]])
    assert _read_xlsx_fast(data) == _read_xlsx_openpyxl(data)


def test_the_import_notes_show_the_columns_of_every_kind() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "import.md").read_text(encoding="utf-8")
    assert columns_markdown("zh-CN") in doc and columns_markdown("en") in doc
    assert re.search(r"shequ import-template", doc)


def test_a_committee_user_imports_only_into_their_own_committee(session: Session) -> None:
    """A scoped importer: records of other committees and addresses outside the scope are row
    errors (not a crash on the unique ID number, and no record created where they cannot see it)."""
    from shequ.core.iam.scope import Scope
    from shequ.db import bind_context

    mine = place_tree(session, tag="A", committee_name="甲居委会")
    other = place_tree(session, lon=121.43, tag="B", committee_name="乙居委会", lane="88")
    headers = ["姓名", "身份证号", "居住地址"]
    run(session, "person", xlsx(headers, [["乙区居民", id_no(1), other.room.address_text]]))
    tenant_id = session.info["tenant_id"]
    bind_context(session, tenant_id=tenant_id, actor="committee-a",
                 scope=Scope.areas(committees=[mine.committee.id], ancestors=[mine.grid.id]))
    before = counts(session)
    with pytest.raises(ImportRejected) as rejected:
        run(session, "person", xlsx(headers, [
            ["甲区居民", id_no(2), mine.room.address_text],
            ["乙区居民", id_no(1), mine.room.address_text],  # exists in committee B
            ["新乙区居民", id_no(3), other.room2.address_text],  # an address outside the scope
            ["无地址", id_no(4), ""],
        ]))
    assert [(e.row, e.column, e.reason) for e in rejected.value.errors] == [
        (3, "身份证号", "该记录不在您的管辖范围内，不能导入或修改"),
        (4, "居住地址", "新记录的地址必须是您管辖范围内的标准地址"),
        (5, "居住地址", "新记录的地址必须是您管辖范围内的标准地址"),
    ]
    assert counts(session) == before
    result = run(session, "person", xlsx(headers, [["甲区居民", id_no(2), mine.room.address_text]]))
    assert result.created == 1
    with pytest.raises(ImportRejected, match="只有全街道范围的用户可以导入"):
        run(session, "place", xlsx(["编码", "名称", "类型"], [["P1", "新楼", "楼栋"]]))
