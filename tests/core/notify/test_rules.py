"""Who is told of an alarm or a case: an event emitted in a session writes notifications for
exactly the users the rules name (docs/notifications.md), filtered by alarm subscriptions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.cases import service as cases
from shequ.core.events import emit
from shequ.core.notify import service
from shequ.core.notify.models import Notification, OutboundMessage, WebhookDelivery
from shequ.core.notify.webhooks import create_webhook
from tests.core.notify.conftest import PHONE, Staff


def alarm_payload(staff: Staff, *, severity: str = "MAJOR", area: str = "a", **extra: Any) -> dict[str, Any]:
    tree = staff.a if area == "a" else staff.b
    return {"alarm_id": 77, "type": "smoke", "severity": severity, "status": "ACTIVE_UNACK",
            "title": "12号楼烟感报警", "scenario": "S01", "device_id": 5, "place_id": tree.room.id,
            "grid_id": tree.grid.id, "committee_id": tree.committee.id, "compound_id": tree.compound.id,
            "building_id": tree.building.id, "count": 1, "escalation_level": 0, "assignee_id": None,
            "actor": "system", **extra}


def told(session: Session, staff: Staff) -> dict[str, int]:
    """username → how many notifications the user has."""
    names = {u.id: name for name, u in staff.users.items()}
    out: dict[str, int] = {}
    for n in session.scalars(select(Notification)):
        out[names[n.user_id]] = out.get(names[n.user_id], 0) + 1
    return out


def test_an_alarm_reaches_its_areas_staff_and_the_dispatchers(session: Session, staff: Staff) -> None:
    emit(session, "alarm.raised", alarm_payload(staff))
    assert told(session, staff) == {"grid_a": 1, "committee_a": 1, "property_a": 1, "dispatcher": 1}
    note = session.scalars(select(Notification).where(Notification.user_id == staff["grid_a"].id)).one()
    assert note.kind == "alarm" and note.severity == "MAJOR"
    assert note.title == "新告警：12号楼烟感报警"
    assert note.link == "/alarms/77" and note.ref == "alarm:77"


def test_an_alarm_of_another_area_reaches_that_areas_staff_only(session: Session, staff: Staff) -> None:
    emit(session, "alarm.raised", alarm_payload(staff, area="b"))
    assert told(session, staff) == {"grid_b": 1, "committee_b": 1, "property_b": 1, "dispatcher": 1}


def test_a_subscription_filters_severity_type_and_scenario(session: Session, staff: Staff) -> None:
    service.set_subscription(session=session, user_id=staff["property_a"].id, min_severity="CRITICAL")
    service.set_subscription(session=session, user_id=staff["grid_a"].id, min_severity="WARNING",
                             types=["gas"])
    service.set_subscription(session=session, user_id=staff["committee_a"].id, min_severity="WARNING",
                             scenarios=["S07"])
    emit(session, "alarm.raised", alarm_payload(staff, severity="MAJOR"))
    assert told(session, staff) == {"dispatcher": 1}
    emit(session, "alarm.raised", alarm_payload(staff, severity="CRITICAL", type="gas"))
    assert told(session, staff) == {"dispatcher": 2, "property_a": 1, "grid_a": 1}


def test_escalation_reaches_the_leaders_from_level_2(session: Session, staff: Staff) -> None:
    emit(session, "alarm.escalated", alarm_payload(staff, escalation_level=1))
    assert "leader" not in told(session, staff)
    emit(session, "alarm.escalated", alarm_payload(staff, escalation_level=2))
    counts = told(session, staff)
    assert counts["leader"] == 1 and counts["dispatcher"] == 2
    latest = session.scalars(select(Notification).where(Notification.user_id == staff["leader"].id)).one()
    assert latest.kind == "escalation"


def test_an_assignment_reaches_the_assignee_whatever_their_filter(session: Session, staff: Staff) -> None:
    service.set_subscription(session=session, user_id=staff["grid_b"].id, min_severity="CRITICAL")
    emit(session, "alarm.assigned", alarm_payload(staff, assignee_id=staff["grid_b"].id, actor="dispatcher"))
    assert told(session, staff) == {"grid_b": 1}


def test_the_actor_is_not_told_of_their_own_action(session: Session, staff: Staff) -> None:
    emit(session, "alarm.acked", alarm_payload(staff, status="ACTIVE_ACK", actor="grid_a"))
    assert told(session, staff) == {"committee_a": 1, "property_a": 1, "dispatcher": 1}


def test_a_critical_alarm_goes_by_sms_to_users_with_a_phone(session: Session, staff: Staff) -> None:
    emit(session, "alarm.raised", alarm_payload(staff, severity="CRITICAL"))
    sent = session.scalars(select(OutboundMessage)).all()
    assert [(m.channel, m.user_id, m.to, m.to_mask, m.status) for m in sent] == [
        ("sms", staff["committee_a"].id, PHONE, "139****5678", "sent")]
    assert sent[0].ref == "alarm:77" and "12号楼烟感报警" in sent[0].text
    emit(session, "alarm.raised", alarm_payload(staff, severity="MAJOR"))
    assert len(session.scalars(select(OutboundMessage)).all()) == 1  # MAJOR: in-app only


def test_channels_of_a_subscription_choose_sms_and_voice(session: Session, staff: Staff) -> None:
    service.set_subscription(session=session, user_id=staff["committee_a"].id, min_severity="MAJOR",
                             channels=["sms", "voice"])
    emit(session, "alarm.raised", alarm_payload(staff, severity="MAJOR"))
    sent = session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
    assert [m.channel for m in sent] == ["sms", "voice"]
    assert "committee_a" not in told(session, staff)  # no in-app channel chosen


def test_a_dispatched_patrol_case_reaches_its_department_and_area(session: Session, staff: Staff) -> None:
    case = cases.open_case(session=session, title="井盖缺失", class_code="C0101", source="patrol",
                           actor="operator", place_id=staff.a.building.id, dispatch=True)
    assert case.department == "城建中心"
    # reported, registered, dispatched: the area's grid worker and committee staff see each stage;
    # the department hears of the dispatch; other areas and departments hear nothing
    assert told(session, staff) == {"grid_a": 3, "committee_a": 3, "dept_build": 1}
    note = session.scalars(select(Notification).where(Notification.user_id == staff["dept_build"].id)).one()
    assert note.title == "事件派遣：井盖缺失" and note.link == f"/cases/{case.id}"
    assert note.ref == f"case:{case.id}" and case.code in note.body


def test_co_departments_hear_of_the_dispatch(session: Session, staff: Staff) -> None:
    case = cases.open_case(session=session, title="井盖缺失", class_code="C0101", source="hotline",
                           actor="operator", place_id=staff.a.building.id, register=True)
    assert told(session, staff) == {}  # not a patrol case, no reporter: nobody yet
    cases.act(session=session, case=case, action="dispatch", actor="operator", departments=["安监所"],
              assignee_id=staff["grid_b"].id)
    assert told(session, staff) == {"dept_build": 1, "dept_safety": 1, "grid_b": 1}


def test_a_reporter_hears_of_every_change(session: Session, staff: Staff) -> None:
    resident = staff["resident"]
    case = cases.open_case(session=session, title="路灯坏了", class_code="C0102", source="resident",
                           actor="operator", place_id=staff.a.building.id,
                           reporter_user_id=resident.id, dispatch=True)
    assert told(session, staff) == {"resident": 3, "dept_build": 1}
    cases.act(session=session, case=case, action="comment", actor="operator", note="已联系维修")
    assert told(session, staff)["resident"] == 4


def test_case_escalation_reaches_dispatchers_then_leaders(session: Session, staff: Staff) -> None:
    case = cases.open_case(session=session, title="井盖缺失", class_code="C0101", source="hotline",
                           actor="operator", place_id=staff.a.building.id, dispatch=True)
    base = told(session, staff)
    cases.act(session=session, case=case, action="escalate", actor="operator")
    assert told(session, staff) == {**base, "dispatcher": 1}
    cases.act(session=session, case=case, action="escalate", actor="operator")
    cases.act(session=session, case=case, action="escalate", actor="operator")
    assert told(session, staff) == {**base, "dispatcher": 3, "leader": 1}


def test_matching_webhooks_get_a_delivery_in_the_same_transaction(session: Session, staff: Staff) -> None:
    alarms, _ = create_webhook(session=session, name="告警平台", url="http://127.0.0.1:9/a", events=["alarm.*"])
    dispatched, _ = create_webhook(session=session, name="派单", url="https://example.org/hook",
                                   events=["case.dispatch", "case.close"])
    create_webhook(session=session, name="停用", url="https://example.org/off", events=["*"], active=False)
    emit(session, "alarm.raised", alarm_payload(staff))
    cases.open_case(session=session, title="井盖缺失", class_code="C0101", source="hotline",
                    actor="operator", place_id=staff.a.building.id, dispatch=True)
    rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(r.webhook_id, r.event, r.status) for r in rows] == [
        (alarms.id, "alarm.raised", "pending"), (dispatched.id, "case.dispatch", "pending")]
    body = rows[0].payload
    assert body["event"] == "alarm.raised" and body["tenant"] == session.info["tenant"].code
    assert body["data"]["alarm_id"] == 77 and body["at"]
