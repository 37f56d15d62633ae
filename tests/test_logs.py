"""No personal data in logs: ID numbers and mobile numbers come out masked, wherever they are in
a record (message, arguments, exception, uvicorn's access line)."""

from __future__ import annotations

import logging

import pytest
from uvicorn.logging import AccessFormatter

from shequ import logs
from shequ.core.iam.crypto import mask_id_number, mask_phone

ID = "31011219600101123X"
PHONE = "13812345678"


@pytest.fixture(autouse=True)
def _masking() -> None:
    logs.install()


def test_mask_text_is_the_screen_mask_and_idempotent() -> None:
    text = f"身份证 {ID}, 手机 {PHONE}, +86 138-1234-5678, order 20240501123456789012"
    masked = logs.mask_text(text)
    assert mask_id_number(ID) in masked and mask_phone(PHONE) in masked
    assert ID not in masked and PHONE not in masked and "1234-5678" not in masked
    assert "20240501123456789012" in masked  # 20 digits: neither an ID number nor a phone
    assert logs.mask_text(masked) == masked


def test_message_arguments_and_exception_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("shequ.test")
    with caplog.at_level(logging.INFO):
        log.info("lookup %s by %s", ID, PHONE)
        log.info("as a number: %d", int(PHONE))
        log.info(f"inline {ID}")
        try:
            raise ValueError(f"no person with phone {PHONE}")
        except ValueError:
            log.exception("failed")
    text = caplog.text
    assert ID not in text and PHONE not in text
    assert mask_id_number(ID) in text and mask_phone(PHONE) in text
    assert "ValueError: no person with phone 138****5678" in text


def test_uvicorn_access_line_with_a_query_string_is_masked() -> None:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    handler = Keep()
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s',
                                         use_colors=False))
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.INFO)
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET",
                    f"/api/v1/people?q={PHONE}&id={ID}", "1.1", 200)
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    assert seen and "/api/v1/people?q=138****5678" in seen[0] and ID not in seen[0]
    assert seen[0].endswith("200 OK")
