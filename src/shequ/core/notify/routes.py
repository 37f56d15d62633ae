"""Routes of the notify package: the inbox and its live stream (SSE), webhooks and their
deliveries, and one's own alarm subscription — the API (under /api/v1) and the pages.

The live stream is served twice: ``/api/v1/notifications/stream`` for a bearer token and
``/notifications/stream`` for the browser's cookie session (``live.js``). It asks for
``Accept: text/event-stream`` (every EventSource sends it) and answers 406 otherwise, so that a
plain GET never hangs on an endless body. A stream ends after STREAM_MAX_S; EventSource then
reconnects by itself with ``Last-Event-ID``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Form, Header, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.responses import RedirectResponse, Response

from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.notify import service, webhooks
from shequ.core.notify.bus import get_bus
from shequ.core.notify.models import Notification, Webhook, WebhookDelivery
from shequ.db import get_engine, session_scope
from shequ.web import i18n
from shequ.web.deps import ApiUser, PageUser, SessionDep, render, require
from shequ.web.records import MAX_ID, BadParam
from shequ.web.security import csrf_protect

api = APIRouter(tags=["notify"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

HEARTBEAT_S = 15.0
# a stream ends after this long and the browser reconnects (with Last-Event-ID, losing nothing):
# a server being stopped for a deploy waits for open responses, so none may last forever
STREAM_MAX_S = 300.0
RETRY_MS = 3000
BATCH = 100
NotificationId = Annotated[int, Path(ge=1, le=MAX_ID, description="notification id")]
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="webhook id")]
ApiNotifyManager = Annotated[User, Depends(require(iam.NOTIFY_MANAGE, api=True))]

i18n.extend({
    "notify.inbox": ("消息", "Messages"),
    "notify.unread_only": ("只看未读", "Unread only"),
    "notify.all": ("全部", "All"),
    "notify.read_all": ("全部标为已读", "Mark all read"),
    "notify.mark_read": ("标为已读", "Mark read"),
    "notify.open": ("查看", "Open"),
    "notify.unread": ("未读", "unread"),
    "notify.unread_total": ("未读 {n} 条", "{n} unread"),
    "notify.empty": ("暂无消息", "No messages"),
    "notify.live_hint": ("新消息会实时出现在这里和顶栏。", "New messages appear here and in the top bar as they arrive."),
    "notify.kind.alarm": ("告警", "alarm"),
    "notify.kind.case": ("事件", "case"),
    "notify.kind.notice": ("通知", "notice"),
    "notify.kind.reminder": ("提醒", "reminder"),
    "notify.kind.escalation": ("升级", "escalation"),
})


# --- schemas ---------------------------------------------------------------------------------

class NotificationOut(BaseModel):
    id: int
    at: dt.datetime
    kind: str = Field(description="alarm | case | notice | reminder | escalation")
    severity: str
    title: str
    body: str
    link: str
    ref: str = Field(description='what it is about: "alarm:12", "case:7"')
    read_at: dt.datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    page: int
    size: int
    unread: int = Field(description="the user's unread notifications (all of them, not this page's)")


class ReadAllOut(BaseModel):
    marked: int
    unread: int


class WebhookIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=500, description="http:// or https://")
    events: list[str] = Field(min_length=1, max_length=50, description='fnmatch patterns: "alarm.*", "case.dispatch"')
    active: bool = True


class WebhookPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    url: str | None = Field(default=None, min_length=1, max_length=500)
    events: list[str] | None = Field(default=None, min_length=1, max_length=50)
    active: bool | None = None


class WebhookOut(BaseModel):
    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="shown this once: sign-check each delivery with it (stored encrypted)")


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event: str
    status: str = Field(description="pending | delivered | failed")
    attempts: int
    created_at: dt.datetime
    next_at: dt.datetime
    delivered_at: dt.datetime | None
    last_status: int | None
    last_error: str
    payload: dict[str, Any]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    page: int
    size: int


class SubscriptionIn(BaseModel):
    min_severity: str = Field(max_length=14, description="CRITICAL | MAJOR | MINOR | WARNING | INDETERMINATE")
    types: list[str] = Field(default_factory=list, max_length=100, description="alarm types; empty: every type")
    scenarios: list[str] = Field(default_factory=list, max_length=50, description="scenario ids; empty: every one")
    channels: list[str] = Field(default_factory=lambda: ["inapp"], max_length=4,
                                description="inapp | sms | voice | webhook")


class SubscriptionOut(BaseModel):
    min_severity: str
    types: list[str]
    scenarios: list[str]
    channels: list[str]
    custom: bool = Field(description="false: the user has none and gets the defaults (in-app for every "
                                     "severity, SMS for CRITICAL when a phone is on record)")


def _webhook_out(hook: Webhook) -> dict[str, Any]:
    return {"id": hook.id, "name": hook.name, "url": hook.url, "events": list(hook.events or []),
            "active": hook.active, "created_at": hook.created_at, "updated_at": hook.updated_at}


def _delivery_out(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "webhook_id": d.webhook_id, "event": d.event, "status": d.status, "attempts": d.attempts,
            "created_at": d.created_at, "next_at": d.next_at, "delivered_at": d.delivered_at,
            "last_status": d.last_status, "last_error": d.last_error, "payload": d.payload or {}}


def _not_found(what: str, ident: object) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} {ident} 不存在 (not found)")


# --- the live stream -------------------------------------------------------------------------

def _fetch(tenant_id: int, user_id: int, after: int) -> tuple[list[dict[str, Any]], int]:
    with session_scope(tenant_id=tenant_id, actor="stream") as session:
        rows = service.since(session=session, user_id=user_id, after_id=after, limit=BATCH)
        unread = service.unread_count(session=session, user_id=user_id) if rows else -1
        return [service.as_dict(n) for n in rows], unread


def _start_id(tenant_id: int, user_id: int) -> int:
    with session_scope(tenant_id=tenant_id, actor="stream") as session:
        return service.latest_id(session=session, user_id=user_id)


def _unread(tenant_id: int, user_id: int) -> int:
    with session_scope(tenant_id=tenant_id, actor="stream") as session:
        return service.unread_count(session=session, user_id=user_id)


def _sse(event: str, data: dict[str, Any], ident: int | None = None) -> str:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _events(tenant_id: int, user_id: int, after: int | None) -> AsyncIterator[str]:
    """New notifications of one user as SSE, woken by the bus, with a heartbeat."""
    bus = get_bus(get_engine())
    with bus.subscribe(tenant_id, user_id) as waiter:  # before the first read: no notice is lost
        if after is None:
            after = await anyio.to_thread.run_sync(_start_id, tenant_id, user_id)
        unread = await anyio.to_thread.run_sync(_unread, tenant_id, user_id)
        yield f"retry: {RETRY_MS}\n" + _sse("unread", {"unread": unread})
        last_write = started = time.monotonic()
        while time.monotonic() - started < STREAM_MAX_S:
            rows, unread = await anyio.to_thread.run_sync(_fetch, tenant_id, user_id, after)
            for row in rows:
                after = row["id"]
                yield _sse("notification", {**row, "unread": unread}, row["id"])
            if rows:
                last_write = time.monotonic()
                if len(rows) == BATCH:
                    continue  # more waiting
            elif time.monotonic() - last_write >= HEARTBEAT_S:
                yield ": ping\n\n"
                last_write = time.monotonic()
            await waiter.wait(min(HEARTBEAT_S - (time.monotonic() - last_write),
                                  STREAM_MAX_S - (time.monotonic() - started)))


def _stream(request: Request, user: User, last_event_id: str | None) -> StreamingResponse:
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise HTTPException(status_code=406, detail="请以 Accept: text/event-stream 连接 "
                                                    "(send Accept: text/event-stream)")
    after: int | None = None
    if last_event_id:
        if not last_event_id.strip().isdigit():
            raise BadParam("Last-Event-ID", "must be a notification id")
        after = int(last_event_id.strip())
    return StreamingResponse(_events(user.tenant_id, user.id, after), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "server-sent events: `event: notification` (id: the notification's id, data: "
                         "the notification and the unread count), `event: unread` at the start, "
                         "`: ping` every 15 s", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    406: {"description": "the request does not accept text/event-stream"},
}
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=20,
                                           description="resume after this notification id")]


@api.get("/notifications/stream", summary="Live stream of one's new notifications (SSE)",
         response_class=StreamingResponse, responses=STREAM_DOC)
async def api_stream(request: Request, user: ApiUser, last_event_id: LastEventId = None) -> Response:
    return _stream(request, user, last_event_id)


@pages.get("/notifications/stream")
async def page_stream(request: Request, user: PageUser, last_event_id: LastEventId = None) -> Response:
    return _stream(request, user, last_event_id)


# --- the inbox (API) -------------------------------------------------------------------------

@api.get("/notifications", response_model=NotificationPage, summary="One's notifications, newest first")
def list_notifications(session: SessionDep, user: ApiUser, unread: bool = False,
                       page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                       size: Annotated[int, Query(ge=1, le=200)] = 20) -> Any:
    found = service.inbox(session=session, user_id=user.id, unread=unread, page=page, size=size)
    return {"items": [service.as_dict(n) for n in found.items], "total": found.total, "page": found.page,
            "size": found.size, "unread": service.unread_count(session=session, user_id=user.id)}


@api.post("/notifications/read-all", response_model=ReadAllOut, summary="Mark all one's notifications read")
def read_all(session: SessionDep, user: ApiUser) -> Any:
    marked = service.mark_all_read(session=session, user_id=user.id)
    return {"marked": marked, "unread": service.unread_count(session=session, user_id=user.id)}


@api.post("/notifications/{notification_id}/read", response_model=NotificationOut,
          summary="Mark one of one's notifications read")
def read_one(notification_id: NotificationId, session: SessionDep, user: ApiUser) -> Any:
    found = service.get_notification(session=session, user_id=user.id, notification_id=notification_id)
    if found is None:
        raise _not_found("消息", notification_id)
    return service.as_dict(service.mark_read(session=session, notification=found))


# --- alarm subscription ----------------------------------------------------------------------

def _subscription_out(session: SessionDep, user: User) -> dict[str, Any]:
    sub = service.get_subscription(session=session, user_id=user.id)
    if sub is None:
        default = service.Preference()
        return {"min_severity": default.min_severity, "types": [], "scenarios": [],
                "channels": ["inapp", "sms"] if service.phone_of(user) else ["inapp"], "custom": False}
    return {"min_severity": sub.min_severity, "types": list(sub.types or []), "scenarios": list(sub.scenarios or []),
            "channels": list(sub.channels or []), "custom": True}


@api.get("/me/alarm-subscription", response_model=SubscriptionOut, summary="Which alarms reach me, on which channels")
def get_subscription(session: SessionDep, user: ApiUser) -> Any:
    return _subscription_out(session, user)


@api.put("/me/alarm-subscription", response_model=SubscriptionOut, summary="Set which alarms reach me")
def put_subscription(body: SubscriptionIn, session: SessionDep, user: ApiUser) -> Any:
    service.set_subscription(session=session, user_id=user.id, min_severity=body.min_severity,
                             types=body.types, scenarios=body.scenarios, channels=body.channels)
    return _subscription_out(session, user)


# --- webhooks --------------------------------------------------------------------------------

def _webhook(webhook_id: WebhookId, session: SessionDep, user: ApiUser) -> Webhook:
    """The webhook named in the path: 404 when it is not there, then 403 without the permission."""
    hook = webhooks.get_webhook(session=session, webhook_id=webhook_id)
    if hook is None:
        raise _not_found("Webhook", webhook_id)
    if not iam.can(user, iam.NOTIFY_MANAGE):
        raise HTTPException(status_code=403, detail=f"无权限 (permission {iam.NOTIFY_MANAGE} required)")
    return hook


ApiWebhook = Annotated[Webhook, Depends(_webhook)]


@api.get("/webhooks", response_model=list[WebhookOut], summary="The tenant's webhooks")
def list_webhooks(session: SessionDep, user: ApiNotifyManager) -> Any:
    return [_webhook_out(h) for h in webhooks.list_webhooks(session=session)]


@api.post("/webhooks", response_model=WebhookCreated, status_code=201,
          summary="Add a webhook; its secret is shown this once")
def create_webhook(body: WebhookIn, session: SessionDep, user: ApiNotifyManager) -> Any:
    hook, secret = webhooks.create_webhook(session=session, name=body.name, url=body.url, events=body.events,
                                           active=body.active)
    return {**_webhook_out(hook), "secret": secret}


@api.patch("/webhooks/{webhook_id}", response_model=WebhookOut, summary="Change a webhook")
def patch_webhook(body: WebhookPatch, hook: ApiWebhook, session: SessionDep) -> Any:
    webhooks.update_webhook(session=session, webhook=hook, name=body.name, url=body.url, events=body.events,
                            active=body.active)
    return _webhook_out(hook)


@api.delete("/webhooks/{webhook_id}", status_code=204, response_class=Response, summary="Remove a webhook")
def delete_webhook(hook: ApiWebhook, session: SessionDep) -> Response:
    webhooks.delete_webhook(session=session, webhook=hook)
    return Response(status_code=204)


@api.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage, summary="A webhook's deliveries")
def list_deliveries(hook: ApiWebhook, session: SessionDep,
                    status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
                    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                    size: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    found = webhooks.deliveries(session=session, webhook_id=hook.id, status=status, page=page, size=size)
    return {"items": [_delivery_out(d) for d in found.items], "total": found.total, "page": found.page,
            "size": found.size}


# --- pages -----------------------------------------------------------------------------------

@pages.get("/notifications")
def inbox_page(request: Request, session: SessionDep, user: PageUser, unread: Annotated[str, Query(max_length=3)] = "",
               page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    only_unread = unread in ("1", "yes")
    found = service.inbox(session=session, user_id=user.id, unread=only_unread, page=page, size=30)
    query = "unread=1&" if only_unread else ""
    return render(request, "notify/inbox.html", page=found, items=found.items, only_unread=only_unread,
                  unread_total=service.unread_count(session=session, user_id=user.id),
                  prev_href=f"/notifications?{query}page={page - 1}",
                  next_href=f"/notifications?{query}page={page + 1}")


@pages.post("/notifications/read-all")
def read_all_page(session: SessionDep, user: PageUser) -> Response:
    service.mark_all_read(session=session, user_id=user.id)
    return RedirectResponse("/notifications", status_code=303)


@pages.post("/notifications/{notification_id}/read")
def read_one_page(notification_id: NotificationId, session: SessionDep, user: PageUser,
                  go: Annotated[str, Form(max_length=3)] = "") -> Response:
    found: Notification | None = service.get_notification(session=session, user_id=user.id,
                                                           notification_id=notification_id)
    if found is None:
        raise _not_found("消息", notification_id)
    service.mark_read(session=session, notification=found)
    target = found.link if go and found.link.startswith("/") and not found.link.startswith("//") else "/notifications"
    return RedirectResponse(target, status_code=303)
