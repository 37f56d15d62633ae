"""Notifications: writing in-app messages (and waking the live streams), the inbox, SMS/voice by
the recipient's channels, and each user's alarm subscription (which alarms, which channels).

Who receives what is decided in ``listeners.py``; this module delivers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shequ.core.alarms.models import CHANNELS, SEVERITIES, SEVERITY_RANK, AlarmSubscription
from shequ.core.errors import FieldError
from shequ.core.iam.models import User
from shequ.core.notify import gateways
from shequ.core.notify.bus import get_bus
from shequ.core.notify.models import Notification
from shequ.core.paging import Page
from shequ.db import utcnow

INAPP, SMS, VOICE = "inapp", "sms", "voice"
KINDS = ("alarm", "case", "notice", "reminder", "escalation")
DEFAULT_SMS_SEVERITY = "CRITICAL"  # without a subscription, SMS only for CRITICAL alarms


class NotifyError(FieldError):
    """A value the notify services do not accept; names the field."""


@dataclass(frozen=True)
class Message:
    """What one event tells its recipients."""

    kind: str
    title: str
    body: str = ""
    severity: str = ""
    link: str = ""
    ref: str = ""
    resident_link: str = ""  # where a resident opens it (their own pages); empty: ``link``

    def text(self) -> str:
        """The message as one line of an SMS or a voice call."""
        return f"【社区】{self.title}" + (f"：{self.body}" if self.body else "")


# --- writing ---------------------------------------------------------------------------------

def notify(*, session: Session, user_ids: Iterable[int], message: Message,
           at: dt.datetime | None = None) -> list[Notification]:
    """One in-app notification per user; the live streams of these users wake on commit."""
    ids = sorted(set(user_ids))
    if not ids:
        return []
    at = at or utcnow()
    residents: set[int] = set()
    if message.resident_link:
        residents = set(session.scalars(select(User.id).where(User.id.in_(ids), User.role == "resident")))
    rows = [Notification(user_id=uid, at=at, kind=message.kind, severity=message.severity,
                         title=message.title[:200], body=message.body[:1000],
                         link=(message.resident_link if uid in residents else message.link)[:300],
                         ref=message.ref[:40]) for uid in ids]
    session.add_all(rows)
    session.flush()
    get_bus(session.get_bind()).publish(session.connection(), int(session.info["tenant_id"]), ids)
    return rows


def phone_of(user: User) -> str:
    """A user's mobile number for SMS and voice: ``user.scope["phone"]`` (users have no phone column)."""
    value = (user.scope or {}).get("phone")
    return str(value).strip() if value else ""


def send_outbound(*, session: Session, user: User, channels: Iterable[str], message: Message) -> list[Any]:
    """SMS and/or voice to one user on the channels given, when the user has a phone."""
    phone = phone_of(user)
    if not phone:
        return []
    return [gateways.send(session=session, channel=ch, to=phone, text=message.text(), user_id=user.id,
                          ref=message.ref) for ch in (SMS, VOICE) if ch in set(channels)]


# --- the inbox -------------------------------------------------------------------------------

def inbox(*, session: Session, user_id: int, unread: bool = False, page: int = 1, size: int = 20) -> Page:
    """A user's notifications, newest first."""
    stmt = select(Notification).where(Notification.user_id == user_id)
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = list(session.scalars(stmt.order_by(Notification.id.desc()).offset((page - 1) * size).limit(size)))
    return Page(items=items, total=total, page=page, size=size)


def unread_count(*, session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def since(*, session: Session, user_id: int, after_id: int, limit: int = 100) -> list[Notification]:
    """A user's notifications after ``after_id``, oldest first (what a live stream sends next)."""
    return list(session.scalars(select(Notification).where(
        Notification.user_id == user_id, Notification.id > after_id).order_by(Notification.id).limit(limit)))


def latest_id(*, session: Session, user_id: int) -> int:
    return session.scalar(select(func.max(Notification.id)).where(Notification.user_id == user_id)) or 0


def get_notification(*, session: Session, user_id: int, notification_id: int) -> Notification | None:
    """One of the user's own notifications (None for anybody else's)."""
    return session.scalar(select(Notification).where(Notification.id == notification_id,
                                                     Notification.user_id == user_id))


def mark_read(*, session: Session, notification: Notification, now: dt.datetime | None = None) -> Notification:
    if notification.read_at is None:
        notification.read_at = now or utcnow()
        session.flush()
    return notification


def mark_all_read(*, session: Session, user_id: int, now: dt.datetime | None = None) -> int:
    """Mark every unread notification of the user read; how many were."""
    result = session.execute(update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)).values(read_at=now or utcnow())
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def as_dict(n: Notification) -> dict[str, Any]:
    """A notification as the API and the live stream show it."""
    return {"id": n.id, "at": n.at.isoformat(), "kind": n.kind, "severity": n.severity, "title": n.title,
            "body": n.body, "link": n.link, "ref": n.ref, "read_at": n.read_at.isoformat() if n.read_at else None}


# --- alarm subscriptions ---------------------------------------------------------------------

@dataclass(frozen=True)
class Preference:
    """A user's alarm subscription, or the defaults when the user has none."""

    min_severity: str = SEVERITIES[-1]
    types: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ()
    channels: tuple[str, ...] = (INAPP,)
    stored: bool = False

    def wants(self, *, severity: str, type: str, scenario: str) -> bool:
        """Whether an alarm of this severity, type and scenario reaches the user at all."""
        if SEVERITY_RANK.get(severity, len(SEVERITIES)) > SEVERITY_RANK.get(self.min_severity, len(SEVERITIES)):
            return False
        if self.types and type not in self.types:
            return False
        return not (self.scenarios and scenario not in self.scenarios)

    def channels_for(self, severity: str) -> tuple[str, ...]:
        """The channels an alarm of this severity goes out on (defaults: SMS for CRITICAL only)."""
        if self.stored:
            return tuple(ch for ch in self.channels if ch in (INAPP, SMS, VOICE))
        return (INAPP, SMS) if severity == DEFAULT_SMS_SEVERITY else (INAPP,)


def preferences(*, session: Session, user_ids: Sequence[int]) -> dict[int, Preference]:
    """Every user's preference (defaults for users without a subscription row)."""
    out = {uid: Preference() for uid in user_ids}
    if not user_ids:
        return out
    for sub in session.scalars(select(AlarmSubscription).where(AlarmSubscription.user_id.in_(list(user_ids)))):
        out[sub.user_id] = Preference(sub.min_severity, tuple(sub.types or ()), tuple(sub.scenarios or ()),
                                      tuple(sub.channels or ()), stored=True)
    return out


def get_subscription(*, session: Session, user_id: int) -> AlarmSubscription | None:
    return session.scalar(select(AlarmSubscription).where(AlarmSubscription.user_id == user_id))


def _strings(field: str, values: Any, *, limit: int) -> list[str]:
    if not isinstance(values, list | tuple):
        raise NotifyError(field, "must be a list of strings")
    out = []
    for v in values:
        if not isinstance(v, str) or not v.strip() or len(v) > limit:
            raise NotifyError(field, f"every entry must be a non-empty text of at most {limit} characters")
        out.append(v.strip())
    return sorted(set(out))


def set_subscription(*, session: Session, user_id: int, min_severity: str, types: Sequence[str] = (),
                     scenarios: Sequence[str] = (), channels: Sequence[str] = (INAPP,)) -> AlarmSubscription:
    """Set which alarms reach a user and on which channels; NotifyError names a bad field."""
    if min_severity not in SEVERITIES:
        raise NotifyError("min_severity", f"{min_severity!r} is not one of {', '.join(SEVERITIES)}")
    chosen = _strings("channels", list(channels), limit=10)
    unknown = [ch for ch in chosen if ch not in CHANNELS]
    if unknown:
        raise NotifyError("channels", f"{', '.join(unknown)} not among {', '.join(CHANNELS)}")
    sub = get_subscription(session=session, user_id=user_id)
    if sub is None:
        sub = AlarmSubscription(user_id=user_id)
        session.add(sub)
    sub.min_severity = min_severity
    sub.types = _strings("types", list(types), limit=60)
    sub.scenarios = _strings("scenarios", list(scenarios), limit=3)
    sub.channels = chosen
    session.flush()
    return sub
