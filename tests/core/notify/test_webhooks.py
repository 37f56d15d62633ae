"""Webhook deliveries against a real local HTTP server: signed POSTs the receiver verifies with
the secret; a failing receiver is retried with back-off, then the delivery is failed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, select

from shequ.core.events import emit
from shequ.core.notify import webhooks
from shequ.core.notify.models import Webhook, WebhookDelivery
from shequ.core.places.service import create_tenant
from shequ.db import session_scope


@dataclass
class Receiver:
    """A local HTTP server that keeps what it was sent and answers with ``status``."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            box.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(box.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/shequ"
    yield box
    server.shutdown()
    server.server_close()


@pytest.fixture
def tenant(engine: Engine) -> tuple[int, str]:
    code = f"W{uuid.uuid4().hex[:8]}"
    with session_scope(engine=engine) as s:
        return create_tenant(session=s, code=code, name="钩子街道").id, code


def hook_and_event(engine: Engine, tenant: tuple[int, str], url: str) -> tuple[int, str]:
    """A webhook on alarm.*, and one alarm.raised event committed: (webhook id, secret)."""
    from shequ.core.notify import listeners

    listeners.install()
    with session_scope(tenant_id=tenant[0], actor="test", engine=engine) as s:
        hook, secret = webhooks.create_webhook(session=s, name="告警平台", url=url, events=["alarm.*"])
        emit(s, "alarm.raised", {"alarm_id": 9, "type": "gas", "severity": "CRITICAL", "title": "燃气泄漏",
                                 "grid_id": None, "committee_id": None, "compound_id": None, "actor": "system"})
        return hook.id, secret


def deliveries(engine: Engine, hook_id: int) -> list[WebhookDelivery]:
    with session_scope(engine=engine) as s:
        return list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id)))


def cleanup(engine: Engine, tenant_id: int, hook_id: int) -> None:
    with session_scope(tenant_id=tenant_id, engine=engine) as s:
        hook = s.get(Webhook, hook_id)
        if hook is not None:
            webhooks.delete_webhook(session=s, webhook=hook)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (docs/notifications.md)."""
    expected = "sha256=" + hmac.new(secret.encode(), headers["x-shequ-timestamp"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-shequ-signature"])


def test_a_delivery_is_signed_and_the_receiver_verifies_it(engine: Engine, tenant: tuple[int, str],
                                                          receiver: Receiver) -> None:
    hook_id, secret = hook_and_event(engine, tenant, receiver.url)
    now = dt.datetime.now(dt.UTC)
    assert webhooks.deliver_due(engine=engine, now=now) >= 1  # (every tenant's due deliveries)
    [(headers, body)] = receiver.received
    assert verify(secret, headers, body)
    assert not verify("whsec_wrong", headers, body)
    assert headers["x-shequ-event"] == "alarm.raised"
    assert headers["x-shequ-timestamp"] == str(int(now.timestamp()))
    [row] = deliveries(engine, hook_id)
    assert headers["x-shequ-delivery"] == str(row.id)
    sent = json.loads(body)
    assert sent["event"] == "alarm.raised" and sent["tenant"] == tenant[1]
    assert sent["data"]["alarm_id"] == 9 and sent["data"]["title"] == "燃气泄漏"
    assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)
    assert row.delivered_at is not None
    webhooks.deliver_due(engine=engine, now=now + dt.timedelta(days=1))
    assert len(receiver.received) == 1  # delivered once, never again
    cleanup(engine, tenant[0], hook_id)


def test_a_failing_receiver_is_retried_with_back_off_then_failed(engine: Engine, tenant: tuple[int, str],
                                                                receiver: Receiver) -> None:
    receiver.status = 500
    hook_id, _ = hook_and_event(engine, tenant, receiver.url)
    now = dt.datetime.now(dt.UTC)
    waits = [dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30),
             dt.timedelta(hours=2), dt.timedelta(hours=6)]
    for attempt, wait in enumerate(waits, start=1):
        webhooks.deliver_due(engine=engine, now=now)
        [row] = deliveries(engine, hook_id)
        assert (row.status, row.attempts, row.last_status) == ("pending", attempt, 500)
        assert row.next_at == now + wait and "HTTP 500" in row.last_error
        # not due before its time
        webhooks.deliver_due(engine=engine, now=now + wait - dt.timedelta(seconds=1))
        assert deliveries(engine, hook_id)[0].attempts == attempt
        now = now + wait
    webhooks.deliver_due(engine=engine, now=now)
    [row] = deliveries(engine, hook_id)
    assert (row.status, row.attempts) == ("failed", 6)
    assert len(receiver.received) == 6
    webhooks.deliver_due(engine=engine, now=now + dt.timedelta(days=2))
    assert len(receiver.received) == 6
    cleanup(engine, tenant[0], hook_id)


def test_an_unreachable_receiver_counts_as_a_failed_attempt(engine: Engine, tenant: tuple[int, str]) -> None:
    hook_id, _ = hook_and_event(engine, tenant, "http://127.0.0.1:9/nothing-listens")
    now = dt.datetime.now(dt.UTC)
    webhooks.deliver_due(engine=engine, now=now)
    [row] = deliveries(engine, hook_id)
    assert (row.status, row.attempts, row.last_status) == ("pending", 1, None)
    assert row.last_error and row.next_at == now + dt.timedelta(minutes=1)
    cleanup(engine, tenant[0], hook_id)


def test_urls_and_patterns_are_checked(engine: Engine, tenant: tuple[int, str]) -> None:
    with session_scope(tenant_id=tenant[0], engine=engine) as s:
        for url in ("ftp://example.org/x", "javascript:alert(1)", "http://", "example.org"):
            with pytest.raises(webhooks.WebhookError) as exc:
                webhooks.create_webhook(session=s, name="x", url=url, events=["alarm.*"])
            assert exc.value.field == "url"
        with pytest.raises(webhooks.WebhookError) as exc:
            webhooks.create_webhook(session=s, name="x", url="https://example.org", events=[])
        assert exc.value.field == "events"
        s.rollback()
