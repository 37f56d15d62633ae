"""Webhooks: outside systems told of events by signed HTTP POSTs, retried with back-off.

An event whose name matches one of an active webhook's patterns (fnmatch: ``alarm.*``,
``case.dispatch``) becomes a WebhookDelivery row in the event's own transaction; the sweep
``deliver_due`` (run by the worker) POSTs it::

    POST <url>
    Content-Type: application/json
    X-Shequ-Event: alarm.raised
    X-Shequ-Delivery: 42
    X-Shequ-Timestamp: 1764300000
    X-Shequ-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

    {"event": "alarm.raised", "at": "...", "tenant": "310112001", "data": {...}}

A 2xx answer delivers it; anything else (or no answer within 5 s) retries after 1 min, 5 min,
30 min, 2 h and 6 h, then the delivery is failed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from shequ.core.errors import FieldError
from shequ.core.events import Event
from shequ.core.notify.models import Webhook, WebhookDelivery
from shequ.core.paging import Page
from shequ.core.places.models import Tenant
from shequ.db import session_scope, utcnow

log = logging.getLogger("shequ.notify.webhooks")
BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30),
           dt.timedelta(hours=2), dt.timedelta(hours=6))
MAX_ATTEMPTS = len(BACKOFF) + 1
TIMEOUT_S = 5.0
LEASE = dt.timedelta(minutes=5)  # a claimed delivery is not picked again while it is being sent
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookError(FieldError):
    """A webhook value that is refused; names the field."""


# --- signing ---------------------------------------------------------------------------------

def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``, as sent in X-Shequ-Signature."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


# --- managing webhooks -----------------------------------------------------------------------

def _check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("url", "must be an http:// or https:// address with a host")
    if len(url) > 500:
        raise WebhookError("url", "at most 500 characters")
    return url


def _check_events(events: Sequence[str]) -> list[str]:
    out = []
    for pattern in events:
        if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > 60:
            raise WebhookError("events", "each pattern is a non-empty text of at most 60 characters")
        if not all(ch.isalnum() or ch in "._*?[]-!" for ch in pattern.strip()):
            raise WebhookError("events", f"{pattern!r}: letters, digits, '.', '_', '-' and wildcards only")
        out.append(pattern.strip())
    if not out:
        raise WebhookError("events", "name at least one event pattern, e.g. alarm.* or case.dispatch")
    return sorted(set(out))


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise WebhookError("name", "1 to 100 characters")
    return name


def create_webhook(*, session: Session, name: str, url: str, events: Sequence[str],
                   active: bool = True) -> tuple[Webhook, str]:
    """A new webhook and its secret (returned this once; stored encrypted)."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    hook = Webhook(name=_check_name(name), url=_check_url(url), events=_check_events(events),
                   active=active, secret=secret)
    session.add(hook)
    session.info.pop("_webhooks", None)
    session.flush()
    return hook, secret


def update_webhook(*, session: Session, webhook: Webhook, name: str | None = None, url: str | None = None,
                   events: Sequence[str] | None = None, active: bool | None = None) -> Webhook:
    """Change what is given of a webhook (its secret stays)."""
    if name is not None:
        webhook.name = _check_name(name)
    if url is not None:
        webhook.url = _check_url(url)
    if events is not None:
        webhook.events = _check_events(events)
    if active is not None:
        webhook.active = active
    session.flush()
    session.info.pop("_webhooks", None)
    return webhook


def delete_webhook(*, session: Session, webhook: Webhook) -> None:
    session.delete(webhook)
    session.info.pop("_webhooks", None)
    session.flush()


def get_webhook(*, session: Session, webhook_id: int) -> Webhook | None:
    return session.scalar(select(Webhook).where(Webhook.id == webhook_id))


def list_webhooks(*, session: Session) -> list[Webhook]:
    return list(session.scalars(select(Webhook).order_by(Webhook.id)))


def deliveries(*, session: Session, webhook_id: int, status: str | None = None, page: int = 1,
               size: int = 50) -> Page:
    """A webhook's deliveries, newest first."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = list(session.scalars(stmt.order_by(WebhookDelivery.id.desc()).offset((page - 1) * size).limit(size)))
    return Page(items=items, total=total, page=page, size=size)


# --- enqueueing (a listener on every event) --------------------------------------------------

def matches(patterns: Sequence[str], name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns or ())


def enqueue(*, session: Session, event: Event) -> list[WebhookDelivery]:
    """A pending delivery of the event to every active webhook whose patterns match it."""
    # the active webhooks, read once per session (an ingest batch may emit many events)
    cache: dict[int, list[Webhook]] = session.info.setdefault("_webhooks", {})
    if event.tenant_id not in cache:
        cache[event.tenant_id] = list(session.scalars(select(Webhook).where(Webhook.active.is_(True))
                                                      .execution_options(all_scopes=True)))
    hooks = [h for h in cache[event.tenant_id] if matches(h.events, event.name)]
    if not hooks:
        return []
    tenant = session.get(Tenant, event.tenant_id)
    payload = {"event": event.name, "at": event.at.isoformat(), "tenant": tenant.code if tenant else "",
               "data": json.loads(json.dumps(event.payload, default=str))}
    rows = [WebhookDelivery(webhook_id=h.id, event=event.name[:40], payload=payload, status=PENDING,
                            attempts=0, created_at=event.at, next_at=event.at) for h in hooks]
    session.add_all(rows)
    session.flush()
    return rows


# --- delivering (the sweep) ------------------------------------------------------------------

def _claim(engine: Engine, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Take up to ``limit`` due deliveries (every tenant), leasing them while they are sent."""
    with session_scope(engine=engine, actor="webhooks") as session:
        stmt = (select(WebhookDelivery, Webhook).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_at <= now)
                .order_by(WebhookDelivery.next_at, WebhookDelivery.id).limit(limit))
        if engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
        else:
            session.connection(execution_options={"sqlite_immediate": True})
        out = []
        for delivery, hook in session.execute(stmt).all():
            delivery.next_at = now + LEASE
            out.append({"id": delivery.id, "event": delivery.event, "payload": delivery.payload,
                        "url": hook.url, "secret": hook.secret, "active": hook.active})
        return out


def _send(client: httpx.Client, item: dict[str, Any], now: dt.datetime) -> tuple[int | None, str]:
    body = body_of(item["payload"])
    timestamp = str(int(now.timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": "shequ-webhooks/1",
               "X-Shequ-Event": item["event"], "X-Shequ-Delivery": str(item["id"]),
               "X-Shequ-Timestamp": timestamp,
               "X-Shequ-Signature": signature(item["secret"], timestamp, body)}
    try:
        response = client.post(item["url"], content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


def _record(engine: Engine, item: dict[str, Any], status: int | None, error: str, now: dt.datetime) -> str:
    with session_scope(engine=engine, actor="webhooks") as session:
        delivery = session.get(WebhookDelivery, item["id"])
        if delivery is None:  # its webhook was deleted meanwhile
            return "gone"
        delivery.attempts += 1
        delivery.last_status = status
        delivery.last_error = error[:500]
        if not error:
            delivery.status = DELIVERED
            delivery.delivered_at = now
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = FAILED
            delivery.next_at = now
        else:
            delivery.next_at = now + BACKOFF[delivery.attempts - 1]
        return delivery.status


def deliver_due(*, engine: Engine, now: dt.datetime | None = None, limit: int = 100) -> int:
    """Send the pending deliveries that are due (every tenant); how many were attempted."""
    now = now or utcnow()
    items = _claim(engine, now, limit)
    if not items:
        return 0
    outcomes = {DELIVERED: 0, PENDING: 0, FAILED: 0}
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
        for item in items:
            if not item["active"]:
                status, error = None, "webhook inactive"
            else:
                status, error = _send(client, item, now)
            outcome = _record(engine, item, status, error, now)
            if outcome in outcomes:
                outcomes[outcome] += 1
            if error:
                log.info("webhook delivery %s (%s): %s", item["id"], item["event"], error)
    log.info("webhook deliveries: %s delivered, %s to retry, %s failed",
             outcomes[DELIVERED], outcomes[PENDING], outcomes[FAILED])
    return len(items)
