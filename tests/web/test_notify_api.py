"""The notify API and pages: one's inbox (read, read all), webhooks (secret shown once, checked
URLs, 404 before 403), one's alarm subscription, the inbox page and the stream's refusals."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.changelog import ChangeLog
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.notify import service
from shequ.core.notify.models import Webhook
from shequ.core.notify.service import Message
from tests.web.conftest import PASSWORD, csrf_of, login

API = "/api/v1"


def note(session: Session, user: User, title: str) -> int:
    [row] = service.notify(session=session, user_ids=[user.id],
                           message=Message(kind="alarm", title=title, severity="MAJOR", link="/alarms/1", ref="alarm:1"))
    return row.id


def other_user(session: Session, role: str = "dispatcher") -> tuple[User, dict[str, str]]:
    user = iam.create_user(session=session, username=f"u_{role}", password=PASSWORD, role=role,
                           scope={"department": "城运中心"} if role in ("dispatcher", "department") else {})
    return user, {"Authorization": f"Bearer {iam.create_api_token(session=session, user=user, days=1)}"}


def test_the_inbox_lists_reads_and_marks_read(client: TestClient, session: Session, admin: User,
                                               auth: dict[str, str]) -> None:
    ids = [note(session, admin, f"告警 {n}") for n in range(3)]
    dispatcher, _ = other_user(session)
    foreign = note(session, dispatcher, "别人的")
    page = client.get(f"{API}/notifications", headers=auth, params={"size": 2}).json()
    assert [x["id"] for x in page["items"]] == [ids[2], ids[1]]
    assert page["total"] == 3 and page["unread"] == 3
    assert page["items"][0]["title"] == "告警 2" and page["items"][0]["read_at"] is None
    read = client.post(f"{API}/notifications/{ids[0]}/read", headers=auth)
    assert read.status_code == 200 and read.json()["read_at"]
    unread = client.get(f"{API}/notifications", headers=auth, params={"unread": "true"}).json()
    assert [x["id"] for x in unread["items"]] == [ids[2], ids[1]] and unread["unread"] == 2
    assert client.post(f"{API}/notifications/{foreign}/read", headers=auth).status_code == 404
    assert client.post(f"{API}/notifications/read-all", headers=auth).json() == {"marked": 2, "unread": 0}
    assert client.get(f"{API}/notifications", headers=auth).json()["unread"] == 0


def test_webhooks_are_managed_with_the_secret_shown_once(client: TestClient, session: Session,
                                                         auth: dict[str, str]) -> None:
    made = client.post(f"{API}/webhooks", headers=auth,
                       json={"name": "区城运平台", "url": "https://example.org/hook", "events": ["alarm.*"]})
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["secret"].startswith("whsec_") and hook["active"] is True
    listed = client.get(f"{API}/webhooks", headers=auth).json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    # the secret is stored encrypted and kept out of the change log
    assert session.get(Webhook, hook["id"]).secret == hook["secret"]
    logged = session.scalars(select(ChangeLog).where(ChangeLog.entity_id == hook["id"])).all()
    assert hook["secret"] not in json.dumps([row.after for row in logged], ensure_ascii=False)
    changed = client.patch(f"{API}/webhooks/{hook['id']}", headers=auth,
                           json={"events": ["case.dispatch", "case.close"], "active": False})
    assert changed.status_code == 200 and changed.json()["events"] == ["case.close", "case.dispatch"]
    assert changed.json()["active"] is False
    deliveries = client.get(f"{API}/webhooks/{hook['id']}/deliveries", headers=auth).json()
    assert deliveries == {"items": [], "total": 0, "page": 1, "size": 50}
    assert client.delete(f"{API}/webhooks/{hook['id']}", headers=auth).status_code == 204
    assert client.get(f"{API}/webhooks/{hook['id']}/deliveries", headers=auth).status_code == 404


def test_webhook_input_is_checked(client: TestClient, auth: dict[str, str]) -> None:
    for body, field in (({"name": "x", "url": "ftp://example.org", "events": ["alarm.*"]}, "url"),
                        ({"name": "x", "url": "https://example.org", "events": []}, "events"),
                        ({"name": "x", "url": "https://example.org", "events": ["alarm raised"]}, "events")):
        answer = client.post(f"{API}/webhooks", headers=auth, json=body)
        assert answer.status_code == 422, body
        assert answer.json()["errors"][0]["field"] == field
    assert client.patch(f"{API}/webhooks/999999", headers=auth, json={"url": "ftp://x"}).status_code == 404


def test_webhooks_need_the_permission_and_hide_existence_first(client: TestClient, session: Session,
                                                               auth: dict[str, str]) -> None:
    hook = client.post(f"{API}/webhooks", headers=auth,
                       json={"name": "x", "url": "https://example.org", "events": ["*"]}).json()
    _, dispatcher = other_user(session)
    assert client.get(f"{API}/webhooks", headers=dispatcher).status_code == 403
    assert client.post(f"{API}/webhooks", headers=dispatcher,
                       json={"name": "x", "url": "https://example.org", "events": ["*"]}).status_code == 403
    assert client.delete(f"{API}/webhooks/{hook['id']}", headers=dispatcher).status_code == 403
    assert client.delete(f"{API}/webhooks/{hook['id'] + 1000}", headers=dispatcher).status_code == 404


def test_ones_alarm_subscription(client: TestClient, session: Session, auth: dict[str, str]) -> None:
    default = client.get(f"{API}/me/alarm-subscription", headers=auth).json()
    assert default == {"min_severity": "INDETERMINATE", "types": [], "scenarios": [], "channels": ["inapp"],
                       "custom": False}
    put = client.put(f"{API}/me/alarm-subscription", headers=auth,
                     json={"min_severity": "MAJOR", "types": ["smoke", "gas"], "scenarios": ["S01"],
                           "channels": ["inapp", "sms"]})
    assert put.status_code == 200
    assert put.json() == {"min_severity": "MAJOR", "types": ["gas", "smoke"], "scenarios": ["S01"],
                          "channels": ["inapp", "sms"], "custom": True}
    assert client.get(f"{API}/me/alarm-subscription", headers=auth).json()["custom"] is True
    for body, field in (({"min_severity": "HUGE"}, "min_severity"),
                        ({"min_severity": "MAJOR", "channels": ["pigeon"]}, "channels")):
        answer = client.put(f"{API}/me/alarm-subscription", headers=auth, json=body)
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == field


def test_the_stream_refuses_plain_gets_and_strangers(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get(f"{API}/notifications/stream", headers=auth).status_code == 406
    assert client.get(f"{API}/notifications/stream", headers={"Accept": "text/event-stream"}).status_code == 401
    bad = client.get(f"{API}/notifications/stream", headers={**auth, "Accept": "text/event-stream",
                                                              "Last-Event-ID": "abc"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "Last-Event-ID"


def test_the_inbox_page(browser: TestClient, session: Session, admin: User) -> None:
    first = note(session, admin, "烟感报警")
    note(session, admin, "燃气报警")
    page = browser.get("/notifications")
    assert page.status_code == 200
    assert "烟感报警" in page.text and "燃气报警" in page.text and "未读 2 条" in page.text
    assert 'data-live-count' in page.text and "/static/live.js" in page.text
    csrf = csrf_of(browser, "/notifications")
    opened = browser.post(f"/notifications/{first}/read", data={"csrf_token": csrf, "go": "1"},
                          follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/alarms/1"
    assert "未读 1 条" in browser.get("/notifications").text
    assert "烟感报警" not in browser.get("/notifications?unread=1").text
    done = browser.post("/notifications/read-all", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert "暂无消息" in browser.get("/notifications?unread=1").text
    assert browser.post("/notifications/read-all", data={}, follow_redirects=False).status_code == 403


def test_the_page_stream_needs_a_signed_in_user(client: TestClient) -> None:
    answer = client.get("/notifications/stream", headers={"Accept": "text/event-stream"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_another_users_inbox_page_is_theirs(client: TestClient, session: Session, admin: User) -> None:
    dispatcher, _ = other_user(session)
    note(session, admin, "管理员的消息")
    login(client, "u_dispatcher")
    assert "管理员的消息" not in client.get("/notifications").text
