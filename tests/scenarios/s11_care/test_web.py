"""S11 pages and API: today's homes for the committee, a plan with masked phones, unmasking audited, false alarms."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.iam import service as iam
from shequ.core.iam.models import AuditLog
from shequ.core.registry.models import Person
from shequ.scenarios.s11_care import service
from shequ.scenarios.s11_care.models import Review
from tests.factories import place_tree
from tests.web.conftest import PASSWORD, csrf_of, login


def _plan(session: Session):
    tree = place_tree(session)
    person = Person(name="王老伯", phone="13712345678", birth_date=dt.date(1940, 1, 1), place_id=tree.room.id)
    session.add(person)
    session.flush()
    plan = service.create_plan(session=session, person_id=person.id)
    service.add_contact(session=session, plan=plan, name="王小明", relation="子女", phone="13600002222")
    return tree, plan


def test_committee_sees_its_homes_and_checks_in(client, session):
    tree, plan = _plan(session)
    iam.create_user(session=session, username="jw1", password=PASSWORD, role="committee",
                    scope={"committees": [tree.committee.id]})
    login(client, "jw1")
    page = client.get("/care")
    assert page.status_code == 200 and "王老伯" in page.text and f'data-plan="{plan.id}"' in page.text
    csrf = csrf_of(client, "/care")
    answer = client.post(f"/care/plans/{plan.id}/checkin", data={"how": "phone", "csrf_token": csrf},
                         follow_redirects=False)
    assert answer.status_code == 303
    assert 'data-checkin="phone"' in client.get("/care").text
    bad = client.post(f"/care/plans/{plan.id}/checkin", data={"how": "telepathy", "csrf_token": csrf})
    assert bad.status_code == 422 and "how" in bad.text


def test_plan_page_masks_phones_and_unmasking_is_audited(client, session, admin):
    _tree, plan = _plan(session)
    login(client)
    page = client.get(f"/care/plans/{plan.id}")
    assert page.status_code == 200 and "136****2222" in page.text and "13600002222" not in page.text
    [contact] = service.contacts_of(session=session, plan_id=plan.id)
    csrf = csrf_of(client, f"/care/plans/{plan.id}")
    shown = client.post(f"/care/contacts/{contact.id}/unmask", data={"purpose": "联系家属", "csrf_token": csrf})
    assert shown.status_code == 200 and "13600002222" in shown.text
    logged = session.scalars(select(AuditLog).where(AuditLog.action == "unmask")).all()
    assert [(a.target, a.purpose) for a in logged] == [(f"s11_contact:{contact.id}", "联系家属")]
    empty = client.post(f"/care/contacts/{contact.id}/unmask", data={"purpose": " ", "csrf_token": csrf})
    assert empty.status_code == 422 and "purpose" in empty.text


def test_plan_thresholds_are_checked_and_saved(client, session, admin):
    _tree, plan = _plan(session)
    login(client)
    csrf = csrf_of(client, f"/care/plans/{plan.id}")
    bad = client.post(f"/care/plans/{plan.id}", data={"no_motion_hours": "abc", "csrf_token": csrf})
    assert bad.status_code == 422 and "no_motion_hours" in bad.text
    ok = client.post(f"/care/plans/{plan.id}", data={"no_motion_hours": "8", "day_start": "06:30",
                                                      "csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303
    session.refresh(plan)
    assert (plan.no_motion_hours, plan.day_start) == (8.0, "06:30")
    paused = client.post(f"/care/plans/{plan.id}/pause", data={"reason": "away", "until": "2099-01-02",
                                                                "csrf_token": csrf}, follow_redirects=False)
    assert paused.status_code == 303
    session.refresh(plan)
    assert plan.status == "paused" and plan.paused_until is not None


def test_false_alarm_counts_in_the_home_rate(client, session, admin):
    _tree, plan = _plan(session)
    plan.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=25)
    alarm, _ = service.raise_inactivity(session=session, plan=plan, kind="s11_no_motion", reason="test")
    login(client)
    csrf = csrf_of(client, "/care")
    done = client.post(f"/care/alarms/{alarm.id}/false", data={"reason": "在卧室看电视，探头看不到",
                                                                "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    [review] = session.scalars(select(Review)).all()
    assert review.false_alarm and review.plan_id == plan.id
    assert alarms.get_alarm(session=session, alarm_id=alarm.id).active_key is None
    page = client.get("/care")
    assert 'data-rate="2.00"' in page.text  # one false alarm in 25 days: 2 per 50 days


def test_api_lists_plans_masked_and_checkins(client, session, admin):
    _tree, plan = _plan(session)
    service.check_in(session=session, plan=plan, how="visit", actor="jw1")
    token = iam.create_api_token(session=session, user=admin, name="t", days=1)
    auth = {"Authorization": f"Bearer {token}"}
    [item] = client.get("/api/v1/care/plans", headers=auth).json()
    assert item["person_name"] == "王老伯" and item["contacts"][0]["phone_mask"] == "136****2222"
    assert "13600002222" not in str(item)
    [row] = client.get("/api/v1/care/checkins", headers=auth).json()
    assert (row["plan_id"], row["how"], row["by"]) == (plan.id, "visit", "jw1")
    assert client.get("/api/v1/care/checkins?day=yesterday", headers=auth).status_code == 422
