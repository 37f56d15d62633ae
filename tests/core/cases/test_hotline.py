"""The 12345 import by the service: category mapping, times, all-or-nothing, re-import."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.cases import hotline
from shequ.core.cases.attachments import sniff
from shequ.core.cases.models import Case
from tests.factories import place_tree

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize(("category", "code"), [
    ("噪音扰民", "E0503"), ("噪声", "E0503"), ("生活垃圾", "E0101"), ("占道经营", "E0501"),
    ("违法搭建", "E0301"), ("违建", "E0301"), ("井盖缺失", "C0101"), ("路灯不亮", "C0102"),
    ("飞线充电", "E0504"), ("电动车进电梯", "E0504"), ("高空抛物", "E0505"), ("物业服务", "E0601"),
    ("其他", "E0699"), ("咨询", "E0699"),
])
def test_categories_map_to_classes(category: str, code: str) -> None:
    assert hotline.class_for(category) == code


def test_times_read_as_shanghai() -> None:
    assert hotline.parse_time("2026-11-27 09:30") == dt.datetime(2026, 11, 27, 9, 30, tzinfo=SHANGHAI)
    assert hotline.parse_time("2026年11月27日 9:30:15") == dt.datetime(2026, 11, 27, 9, 30, 15, tzinfo=SHANGHAI)
    assert hotline.parse_time("2026/12/01", end_of_day=True) == dt.datetime(2026, 12, 1, 23, 59, 59, tzinfo=SHANGHAI)
    assert hotline.parse_time(46353.5) == dt.datetime(2026, 11, 27, 12, 0, tzinfo=SHANGHAI)  # an Excel serial
    for bad in ("昨天", "2026-02-30 09:00", "2026-11-27 25:00"):
        with pytest.raises(ValueError):
            hotline.parse_time(bad)


def test_import_is_all_or_nothing_and_idempotent(session: Session) -> None:
    tree = place_tree(session)
    head = "工单编号,来电时间,诉求类别,诉求内容,地址,联系人,联系电话\n"
    good = head + "A1,2026-11-27 09:00,路灯,路灯不亮,鹤庆路258弄12号,王,13912345678\n"
    done = hotline.import_hotline(session=session, filename="x.csv", data=good.encode("gb18030"), actor="d",
                                  now=dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC))
    (row, case, department), = done.created
    assert (row.row, case.class_code, department, case.place_id) == (2, "C0102", "城建中心", tree.building.id)
    assert case.stage == "registered" and case.reported_at == dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)
    assert case.attrs["hotline"]["category"] == "路灯"
    bad = good + "A2,2026-11-27 10:00,垃圾,暴露垃圾,,,1391234\nA1,2026-11-27 10:00,垃圾,重复,,,\n"
    with pytest.raises(hotline.HotlineRejected) as rejected:
        hotline.import_hotline(session=session, filename="x.csv", data=bad.encode(), actor="d")
    assert [(e.row, e.column) for e in rejected.value.errors] == [(3, "联系电话"), (4, "工单编号")]
    assert session.scalar(select(func.count(Case.id))) == 1
    again = hotline.import_hotline(session=session, filename="x.csv", data=good.encode(), actor="d")
    assert again.created == [] and again.already_imported == ["A1"]


def test_attachment_types_come_from_the_bytes() -> None:
    assert sniff(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff(b"\x89PNG\r\n\x1a\nrest") == "image/png"
    assert sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff(b"GIF89a") is None and sniff(b"<svg/>") is None and sniff(b"") is None
