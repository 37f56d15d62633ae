"""The error every service raises for bad input: it names the field (``spec.op``,
``actions[1].name``, ``department``) so that the API answers 422 pointing at it."""

from __future__ import annotations


class FieldError(ValueError):
    """Input a service refuses; ``field`` names the culprit, ``message`` says why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
