"""The rule pages and the alarm console as a dispatcher uses them: lists, the JSON editor (errors
name the field, every save a version), the dry run button, enabling, and handling an alarm
with the console's buttons (form post → redirect → the new status on the page)."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shequ.core.alarms import service as alarms
from shequ.core.alarms.models import Alarm
from shequ.core.iam import service as iam
from shequ.core.rules import service as rules
from shequ.core.rules.models import Rule
from tests.factories import Tree, place_tree
from tests.web.conftest import PASSWORD, csrf_of, login

HOT = {"code": "hot", "name": "温度过高", "kind": "threshold", "severity": "MAJOR",
       "target": {"device_types": ["smoke_detector"]}, "spec": {"field": "temperature_c", "op": ">", "value": 60}}


@pytest.fixture
def tree(session: Session) -> Tree:
    return place_tree(session)


@pytest.fixture
def dispatcher(client: TestClient, session: Session, tree: Tree) -> TestClient:
    iam.create_user(session=session, username="disp1", password=PASSWORD, role="dispatcher",
                    scope={"department": "城运中心"}, display_name="调度员")
    login(client, "disp1")
    return client


def _rule(session: Session) -> Rule:
    return rules.save_rule(session=session, body=HOT, actor="test")


def _alarm(session: Session, tree: Tree, **kw: object) -> Alarm:
    alarm, _ = alarms.raise_alarm(session=session, type="smoke", source="d:1", severity="CRITICAL",
                                  title="烟感报警 · 12号301室", place_id=tree.room.id, **kw)  # type: ignore[arg-type]
    return alarm


def test_rule_list_detail_and_new_render(dispatcher: TestClient, session: Session) -> None:
    rule = _rule(session)
    page = dispatcher.get("/rules")
    assert page.status_code == 200 and 'data-rule="hot"' in page.text and "温度过高" in page.text
    assert "v1" in page.text and 'data-enabled="yes"' in page.text
    detail = dispatcher.get(f"/rules/{rule.id}")
    assert detail.status_code == 200 and 'data-version="1"' in detail.text
    assert "&#34;temperature_c&#34;" in detail.text or '"temperature_c"' in detail.text
    assert "/static/rules.js" in detail.text
    new = dispatcher.get("/rules/new")
    assert new.status_code == 200 and 'action="/rules/new"' in new.text
    assert dispatcher.get("/rules?kind=telepathy").status_code == 200  # refused filter shown, list kept


def test_json_editor_saves_versions_and_names_the_bad_field(dispatcher: TestClient, session: Session) -> None:
    rule = _rule(session)
    csrf = csrf_of(dispatcher, f"/rules/{rule.id}")
    bad = dispatcher.post(f"/rules/{rule.id}", data={"csrf_token": csrf, "body": json.dumps(
        {**HOT, "spec": {"field": "temperature_c", "op": "=~", "value": 60}})})
    assert bad.status_code == 422 and "spec.op" in bad.text and "=~" in bad.text  # the edit is kept
    broken = dispatcher.post(f"/rules/{rule.id}", data={"csrf_token": csrf, "body": "{not json"})
    assert broken.status_code == 422 and "body:" in broken.text
    too_long = dispatcher.post(f"/rules/{rule.id}", data={"csrf_token": csrf, "body": json.dumps(
        {**HOT, "scenario": "S999"})})
    assert too_long.status_code == 422 and "scenario:" in too_long.text
    saved = dispatcher.post(f"/rules/{rule.id}", data={"csrf_token": csrf, "body": json.dumps(
        {**HOT, "spec": {"field": "temperature_c", "op": ">", "value": 55}})}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/rules/{rule.id}?saved=2"
    shown = dispatcher.get(saved.headers["location"])
    assert 'data-version="2"' in shown.text and 'data-version="1"' in shown.text and "第 2 版" in shown.text

    created = dispatcher.post("/rules/new", data={"csrf_token": csrf, "body": json.dumps({**HOT, "code": "hot2"})},
                              follow_redirects=False)
    assert created.status_code == 303
    assert rules.get_rule_by_code(session=session, code="hot2") is not None


def test_dry_run_button_and_enable_disable(dispatcher: TestClient, session: Session) -> None:
    rule = _rule(session)
    csrf = csrf_of(dispatcher, f"/rules/{rule.id}")
    dry = dispatcher.post(f"/rules/{rule.id}/dry-run", data={"csrf_token": csrf, "days": "3",
                                                             "body": json.dumps(HOT)})
    assert dry.status_code == 200 and 'data-fired="0"' in dry.text and 'data-cleared="0"' in dry.text
    bad_days = dispatcher.post(f"/rules/{rule.id}/dry-run", data={"csrf_token": csrf, "days": "99",
                                                                  "body": json.dumps(HOT)})
    assert bad_days.status_code == 422 and "days:" in bad_days.text
    off = dispatcher.post(f"/rules/{rule.id}/disable", data={"csrf_token": csrf, "next": "/rules"},
                          follow_redirects=False)
    assert off.status_code == 303 and off.headers["location"] == "/rules"
    assert 'data-enabled="no"' in dispatcher.get("/rules").text
    session.refresh(rule)
    assert rule.enabled is False and rule.version == 2


def test_console_lists_alarms_and_the_ack_button_works(dispatcher: TestClient, session: Session,
                                                      tree: Tree) -> None:
    alarm = _alarm(session, tree)
    alarms.raise_alarm(session=session, type="smoke", source="d:1", severity="CRITICAL", title="again")
    console = dispatcher.get("/alarms")
    assert console.status_code == 200
    row = re.search(rf'<tr data-alarm="{alarm.id}" data-status="ACTIVE_UNACK" data-severity="CRITICAL">.*?</tr>',
                    console.text, re.S)
    assert row and "×2" in row.group(0) and "紧急" in row.group(0) and "301" in row.group(0)
    assert 'hx-trigger="every 10s"' in console.text
    # the poll answers the table alone
    fragment = dispatcher.get("/alarms", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and f'data-alarm="{alarm.id}"' in fragment.text

    csrf = csrf_of(dispatcher, "/alarms")
    acked = dispatcher.post(f"/alarms/{alarm.id}/ack", data={"csrf_token": csrf, "next": "/alarms"},
                            follow_redirects=False)
    assert acked.status_code == 303 and acked.headers["location"] == "/alarms"
    after = dispatcher.get("/alarms")
    assert f'<tr data-alarm="{alarm.id}" data-status="ACTIVE_ACK"' in after.text and "已确认" in after.text
    assert 'data-acked-by="disp1"' in dispatcher.get(f"/alarms/{alarm.id}").text
    # a second acknowledgement is refused on the page, naming the field
    again = dispatcher.post(f"/alarms/{alarm.id}/ack", data={"csrf_token": csrf})
    assert again.status_code == 422 and "status:" in again.text
    filtered = dispatcher.get("/alarms?status=CLEARED_ACK")
    assert f'data-alarm="{alarm.id}"' not in filtered.text


def test_detail_comment_and_case_from_the_console(dispatcher: TestClient, session: Session, tree: Tree) -> None:
    alarm = _alarm(session, tree)
    detail = dispatcher.get(f"/alarms/{alarm.id}")
    assert detail.status_code == 200 and 'data-action="raised"' in detail.text and "E0401" in detail.text
    csrf = csrf_of(dispatcher, f"/alarms/{alarm.id}")
    commented = dispatcher.post(f"/alarms/{alarm.id}/comment", data={"csrf_token": csrf, "note": "已通知物业"},
                                follow_redirects=False)
    assert commented.status_code == 303 and commented.headers["location"] == f"/alarms/{alarm.id}"
    no_class = dispatcher.post(f"/alarms/{alarm.id}/case", data={"csrf_token": csrf, "class_code": ""})
    assert no_class.status_code == 422 and "class_code:" in no_class.text
    opened = dispatcher.post(f"/alarms/{alarm.id}/case", data={"csrf_token": csrf, "class_code": "E0401",
                                                               "dispatch": "1"}, follow_redirects=False)
    assert opened.status_code == 303
    shown = dispatcher.get(f"/alarms/{alarm.id}")
    assert "已通知物业" in shown.text and 'data-action="case"' in shown.text
    session.refresh(alarm)
    assert alarm.case_id is not None and f'href="/cases/{alarm.case_id}"' in shown.text


def test_another_committee_does_not_see_the_alarm(client: TestClient, session: Session, tree: Tree) -> None:
    other = place_tree(session, tag="B", lon=121.45, committee_name="南街居委会")
    alarm = _alarm(session, tree)
    iam.create_user(session=session, username="comm_b", password=PASSWORD, role="committee",
                    scope={"committees": [other.committee.id]})
    login(client, "comm_b")
    assert client.get(f"/alarms/{alarm.id}").status_code == 404
    assert f'data-alarm="{alarm.id}"' not in client.get("/alarms").text
    csrf = csrf_of(client, "/alarms")
    assert client.post(f"/alarms/{alarm.id}/ack", data={"csrf_token": csrf}).status_code == 404
