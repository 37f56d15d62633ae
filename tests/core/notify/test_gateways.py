"""SMS and voice through the gateway adapter: the logging gateway records the message with a
masked number; the plaintext number stays out of the log (and out of the row's mask)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shequ.core.notify import gateways
from shequ.core.notify.models import OutboundMessage
from shequ.logs import install as install_log_masking

PHONE = "13812345678"


def test_the_logging_gateway_logs_a_masked_number(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    install_log_masking()
    caplog.set_level(logging.INFO, logger="shequ.notify.sms")
    message = gateways.send(session=session, channel="sms", to=PHONE, text=f"【社区】烟感报警，回电 {PHONE}",
                            user_id=None, ref="alarm:1")
    assert message.status == "sent" and message.provider == "log"
    assert message.provider_ref.startswith("log-") and message.to_mask == "138****5678"
    assert PHONE not in caplog.text
    assert "138****5678" in caplog.text and message.provider_ref in caplog.text
    # the number itself is stored encrypted
    raw = session.execute(text("SELECT \"to\" FROM outbound_message WHERE id = :id"), {"id": message.id}).scalar()
    assert raw and PHONE not in raw
    assert session.scalars(select(OutboundMessage)).one().to == PHONE


def test_a_voice_call_goes_through_the_same_gateway(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shequ.notify.sms")
    message = gateways.send(session=session, channel="voice", to=PHONE, text="燃气报警")
    assert message.channel == "voice" and message.status == "sent"
    assert PHONE not in caplog.text and "语音" in caplog.text


class FailingGateway:
    name = "broken"

    def send_sms(self, to: str, text: str) -> str:
        raise ConnectionError(f"provider down while sending to {to}")

    def call(self, to: str, text: str) -> str:
        raise ConnectionError("provider down")


def test_a_failing_gateway_marks_the_message_failed(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    install_log_masking()
    message = gateways.send(session=session, channel="sms", to=PHONE, text="x", via=FailingGateway())
    assert message.status == "failed" and message.provider == "broken"
    assert PHONE not in message.provider_ref and "138****5678" in message.provider_ref
    assert PHONE not in caplog.text


def test_the_setting_chooses_the_gateway() -> None:
    assert isinstance(gateways.load_gateway("log"), gateways.LoggingGateway)
    loaded = gateways.load_gateway("tests.core.notify.test_gateways:FailingGateway")
    assert loaded.name == "broken"
    with pytest.raises(ValueError, match="package.module:Class"):
        gateways.load_gateway("nonsense")
    with pytest.raises(ValueError, match="sms or voice"):
        gateways.send(session=None, channel="fax", to=PHONE, text="x")  # type: ignore[arg-type]
