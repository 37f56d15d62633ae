"""Device credentials: one random token per device, stored only as a keyed hash.

A token is shown once, when it is issued or rotated; rotating replaces it at once and revoking
clears it, so the old token is refused from the next batch on (workers cache device records
for at most ``DEVICE_CACHE_S`` seconds).
"""

from __future__ import annotations

import hmac
import secrets

from shequ.core.iam.crypto import keyring
from shequ.core.iot.models import Device
from shequ.db import utcnow

PREFIX = "sqd_"


def token_digest(token: str) -> str:
    return hmac.digest(keyring().index_key, b"device-token:" + token.encode(), "sha256").hex()


def issue_token(device: Device) -> str:
    """Give the device a new token (replacing any old one) and return it, the only time it is seen."""
    token = PREFIX + secrets.token_urlsafe(24)
    device.token_hash = token_digest(token)
    device.token_hint = token[-4:]
    device.token_issued_at = utcnow()
    device.token_revoked_at = None
    return token


def revoke_token(device: Device) -> None:
    device.token_hash = None
    device.token_revoked_at = utcnow()
