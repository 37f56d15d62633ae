"""Notifications: the in-app inbox, webhooks and their deliveries, SMS and voice messages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shequ.core.iam.crypto import Encrypted
from shequ.db import Base, ChangeLogged, TenantScoped, Timestamped, utcnow


class Notification(Base, TenantScoped):
    """One in-app message to one user (the live stream sends new rows; the inbox lists them)."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # alarm | case | notice | reminder | escalation
    severity: Mapped[str] = mapped_column(String(14), default="")
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(1000), default="")
    link: Mapped[str] = mapped_column(String(300), default="")
    ref: Mapped[str] = mapped_column(String(40), default="")  # "alarm:12", "case:7"
    read_at: Mapped[dt.datetime | None] = mapped_column()


class Notice(Base, TenantScoped):
    """A notice broadcast from the brain or a committee (通知公告): to staff, residents or both,
    of the whole subdistrict (``committee_id`` None) or of one committee. Each recipient also
    gets an in-app notification of kind ``notice``."""

    __tablename__ = "notice"
    __table_args__ = (Index("ix_notice_at", "tenant_id", "published_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(2000), default="")
    audience: Mapped[str] = mapped_column(String(10), default="all")  # staff | residents | all
    committee_id: Mapped[int | None] = mapped_column(Integer, index=True)
    published_by: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recipients: Mapped[int] = mapped_column(Integer, default=0)


class Webhook(Base, TenantScoped, Timestamped, ChangeLogged):
    """An outside system told of events (alarm.raised, case.dispatched …), each POST signed
    with HMAC-SHA256 over the body with the webhook's secret."""

    __tablename__ = "webhook"
    # the secret never goes to the change log (it is shown once, at creation)
    __changelog_skip__ = frozenset({"updated_at", "created_at", "secret"})

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(Encrypted())
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # patterns: "alarm.*", "case.closed"
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(Base, TenantScoped):
    """One event to one webhook: pending until delivered, retried with back-off, then failed."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column()
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(500), default="")


class OutboundMessage(Base, TenantScoped):
    """An SMS or voice call handed to the gateway adapter, and what the adapter said."""

    __tablename__ = "outbound_message"
    __pii__ = {"to": "phone"}

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms | voice
    to: Mapped[str] = mapped_column(Encrypted())
    to_mask: Mapped[str] = mapped_column(String(20), default="")
    user_id: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(500))
    ref: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued | sent | failed | answered
    provider: Mapped[str] = mapped_column(String(40), default="log")
    provider_ref: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
