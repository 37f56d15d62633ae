"""SMS and voice: the gateway adapter (a logging one by default, a real one by setting) and
``send``, which hands one message to it and keeps an OutboundMessage row of what it said.

``SHEQU_SMS_GATEWAY`` chooses the adapter: ``log`` (the default) writes each message to the
log, its number masked; ``package.module:Class`` loads a class with the ``Gateway`` methods
(built without arguments; it reads its own settings).
"""

from __future__ import annotations

import importlib
import logging
import uuid
from functools import lru_cache
from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

from shequ.config import get_settings
from shequ.core.iam.crypto import mask_phone
from shequ.core.notify.models import OutboundMessage
from shequ.db import utcnow
from shequ.logs import mask_text

log = logging.getLogger("shequ.notify.sms")
SMS, VOICE = "sms", "voice"


@runtime_checkable
class Gateway(Protocol):
    """What an SMS/voice provider's adapter offers; each call returns the provider's reference."""

    name: str

    def send_sms(self, to: str, text: str) -> str: ...

    def call(self, to: str, text: str) -> str: ...


class LoggingGateway:
    """Sends nothing: writes each message to the log (the number masked) and calls it sent."""

    name = "log"

    def send_sms(self, to: str, text: str) -> str:
        ref = f"log-{uuid.uuid4().hex[:12]}"
        log.info("短信 SMS to %s: %s [%s]", mask_phone(to), text, ref)
        return ref

    def call(self, to: str, text: str) -> str:
        ref = f"log-{uuid.uuid4().hex[:12]}"
        log.info("语音 voice call to %s: %s [%s]", mask_phone(to), text, ref)
        return ref


@lru_cache
def load_gateway(spec: str) -> Gateway:
    """The gateway a setting names: ``log`` or ``package.module:Class``."""
    if spec in ("", "log"):
        return LoggingGateway()
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"SHEQU_SMS_GATEWAY={spec!r}: expected 'log' or 'package.module:Class'")
    gateway = getattr(importlib.import_module(module_name), class_name)()
    if not isinstance(gateway, Gateway):
        raise TypeError(f"SHEQU_SMS_GATEWAY={spec!r}: {class_name} lacks send_sms/call/name")
    return gateway


def gateway() -> Gateway:
    """The configured gateway."""
    return load_gateway(get_settings().sms_gateway)


def send(*, session: Session, channel: str, to: str, text: str, user_id: int | None = None,
         ref: str = "", via: Gateway | None = None) -> OutboundMessage:
    """Hand one SMS or voice call to the gateway; the row keeps its status and reference."""
    if channel not in (SMS, VOICE):
        raise ValueError(f"channel {channel!r} is not sms or voice")
    via = via or gateway()
    message = OutboundMessage(channel=channel, to=to, to_mask=mask_phone(to), user_id=user_id,
                              text=text[:500], ref=ref[:40], status="queued", provider=via.name[:40],
                              at=utcnow())
    try:
        provider_ref = via.send_sms(to, text) if channel == SMS else via.call(to, text)
    except Exception as exc:  # noqa: BLE001 - a provider's failure must not undo the event
        log.warning("%s to %s failed: %s", channel, mask_phone(to), exc)
        message.status = "failed"
        message.provider_ref = mask_text(str(exc))[:100]  # no plaintext number in the row
    else:
        message.status = "sent"
        message.provider_ref = str(provider_ref)[:100]
    session.add(message)
    session.flush()
    return message
