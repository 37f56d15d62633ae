"""Notices: who receives a broadcast, who may publish where, and who may read which notice."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.notify import notices
from shequ.core.notify.models import Notification
from tests.core.notify.conftest import Staff


def _reached(session: Session, staff: Staff, notice_id: int) -> set[str]:
    ids = set(session.scalars(select(Notification.user_id).where(Notification.ref == f"notice:{notice_id}")))
    return {name for name, user in staff.users.items() if user.id in ids}


def test_a_subdistrict_notice_reaches_every_staff_user_and_the_residents(session: Session, staff: Staff) -> None:
    notice = notices.publish(session=session, user=staff["leader"], title="防汛通知", body="今晚暴雨")
    reached = _reached(session, staff, notice.id)
    assert reached == set(staff.users)
    assert notice.recipients == len(staff.users)


def test_a_committee_notice_reaches_its_own_area_only(session: Session, staff: Staff) -> None:
    notice = notices.publish(session=session, user=staff["committee_a"], title="停水通知", audience="all")
    assert notice.committee_id == staff.a.committee.id  # a committee publishes to its own
    reached = _reached(session, staff, notice.id)
    assert {"committee_a", "grid_a", "property_a", "resident", "leader", "dispatcher"} <= reached
    assert not reached & {"committee_b", "grid_b", "property_b"}


def test_audiences_split_staff_and_residents(session: Session, staff: Staff) -> None:
    to_residents = notices.publish(session=session, user=staff["dispatcher"], title="垃圾分类宣传",
                                   audience="residents", committee_id=staff.a.committee.id)
    assert _reached(session, staff, to_residents.id) == {"resident"}
    to_staff = notices.publish(session=session, user=staff["dispatcher"], title="内部会议", audience="staff")
    assert "resident" not in _reached(session, staff, to_staff.id)


@pytest.mark.parametrize(("field", "kwargs"), [
    ("title", {"title": "  "}),
    ("title", {"title": "长" * 201}),
    ("audience", {"title": "x", "audience": "everyone"}),
    ("committee_id", {"title": "x", "committee_id": -1}),
])
def test_a_bad_notice_names_its_field(session: Session, staff: Staff, field: str, kwargs: dict) -> None:
    with pytest.raises(notices.NoticeError) as err:
        notices.publish(session=session, user=staff["leader"], **kwargs)
    assert err.value.field == field


def test_a_committee_cannot_publish_to_another_committee(session: Session, staff: Staff) -> None:
    with pytest.raises(notices.NoticeError) as err:
        notices.publish(session=session, user=staff["committee_a"], title="越权",
                        committee_id=staff.b.committee.id)
    assert err.value.field == "committee_id"


def test_each_user_reads_the_notices_of_their_area(session: Session, staff: Staff) -> None:
    a = notices.publish(session=session, user=staff["committee_a"], title="甲通知")
    b = notices.publish(session=session, user=staff["committee_b"], title="乙通知")
    everyone = notices.publish(session=session, user=staff["leader"], title="全街道通知")
    staff_only = notices.publish(session=session, user=staff["leader"], title="内部", audience="staff")

    def titles(name: str) -> set[str]:
        return {n.title for n in notices.visible_to(session=session, user=staff[name])}

    assert titles("leader") >= {"甲通知", "乙通知", "全街道通知", "内部"}
    assert titles("committee_a") == {"甲通知", "全街道通知", "内部"}
    assert titles("grid_b") == {"乙通知", "全街道通知", "内部"}
    assert titles("resident") == {"甲通知", "全街道通知"}
    assert notices.get_visible(session=session, user=staff["committee_a"], notice_id=b.id) is None
    assert notices.get_visible(session=session, user=staff["resident"], notice_id=staff_only.id) is None
    assert notices.get_visible(session=session, user=staff["resident"], notice_id=a.id) is not None
    assert everyone.id


def test_a_resident_is_sent_to_their_own_notice_page(session: Session, staff: Staff) -> None:
    notice = notices.publish(session=session, user=staff["leader"], title="社区活动")
    rows = session.execute(select(Notification.user_id, Notification.link)
                           .where(Notification.ref == f"notice:{notice.id}")).all()
    links = {user_id: link for user_id, link in rows}
    assert links[staff["resident"].id] == f"/m/notices/{notice.id}"
    assert links[staff["committee_a"].id] == f"/notices/{notice.id}"
