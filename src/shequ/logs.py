"""No personal data in logs: ID numbers and mobile numbers are masked in every log record.

``install()`` (called by ``create_app()`` and the CLI) masks, in every record made anywhere in
the process, the message, its arguments, the exception text and the stack: an 18-character
resident ID number keeps its first 4 and last 4 characters (like ``mask_id_number``), a mainland
mobile number its first 3 and last 4 (like ``mask_phone``). Uvicorn's access log carries query
strings (``/api/v1/people?q=13812345678``): its arguments are masked one by one, so its
formatter still finds them.

Masking happens when the record is made (a log-record factory), so handlers that a server adds
later (uvicorn configures its own) are covered too; a ``PiiFilter`` also sits on the root,
uvicorn and uvicorn.access loggers and their handlers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

# 17 digits and a check character; not part of a longer run of digits
ID_NUMBER = re.compile(r"(?<!\d)(\d{4})(\d{10})(\d{3}[\dXx])(?![\dXx])")
# a mainland mobile number, optionally +86 / 86 and with - or space between the groups
PHONE = re.compile(r"(?<!\d)((?:\+?86[-\s]?)?1[3-9]\d)([-\s]?)(\d{4})([-\s]?)(\d{4})(?!\d)")
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def _mask_id(match: re.Match[str]) -> str:
    return match.group(1) + "*" * 10 + match.group(3)[-4:]


def _mask_phone(match: re.Match[str]) -> str:
    return match.group(1) + match.group(2) + "****" + match.group(4) + match.group(5)


def mask_text(text: str) -> str:
    """The text with every ID number and mobile number masked (idempotent)."""
    if not any(ch.isdigit() for ch in text):
        return text
    return PHONE.sub(_mask_phone, ID_NUMBER.sub(_mask_id, text))


def _mask_arg(value: Any) -> Any:
    return mask_text(value) if isinstance(value, str) else value


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask a record in place: message, arguments, exception text, stack."""
    if getattr(record, "_pii_masked", False):
        return record
    if isinstance(record.msg, str):
        record.msg = mask_text(record.msg)
    elif record.msg is not None and mask_text(str(record.msg)) != str(record.msg):
        record.msg = mask_text(str(record.msg))
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_mask_arg(a) for a in args)
    elif isinstance(args, Mapping):
        record.args = {k: _mask_arg(v) for k, v in args.items()}
    if record.args:
        # arguments that are not text (a number, an object) may still print a phone
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's own error to report
            message = None
        if message is not None and mask_text(message) != message:
            record.msg, record.args = mask_text(message), None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        masked = mask_text(text)
        if masked != text:
            record.exc_text = masked
    elif record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    record._pii_masked = True
    return record


class PiiFilter(logging.Filter):
    """A logging filter that masks personal data in each record it sees and keeps them all."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


_FILTER = PiiFilter()


def _masking_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(previous(*args, **kwargs))

    factory._shequ_masking = True  # type: ignore[attr-defined]
    return factory


def install() -> None:
    """Mask personal data in every log record from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "_shequ_masking", False):
        logging.setLogRecordFactory(_masking_factory(current))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        targets: list[logging.Filterer] = [logger, *logger.handlers]
        for target in targets:
            if _FILTER not in target.filters:
                target.addFilter(_FILTER)
