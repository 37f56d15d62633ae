"""Keeps the blind index and the mask of every personal-data column in step with its value.

A model lists its personal columns in ``__pii__`` (column → mask kind); where it has columns
named ``<column>_hash`` and ``<column>_mask`` they are filled here on flush.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE

from shequ.core.iam.crypto import MASKS, blind_index
from shequ.db import ChangeLogged


def derive(obj: Any, column: str) -> None:
    value = getattr(obj, column)
    kind = obj.__pii__[column]
    if hasattr(obj, f"{column}_hash"):
        setattr(obj, f"{column}_hash", blind_index(value))
    if hasattr(obj, f"{column}_mask"):
        setattr(obj, f"{column}_mask", MASKS[kind](value))


@event.listens_for(Session, "before_flush")
def _derive_pii_columns(session: Session, _ctx: Any, _instances: Any) -> None:
    new = session.new  # a fresh set on every access: take it once (bulk imports flush 1000s)
    for obj in list(new) + list(session.dirty):
        if not isinstance(obj, ChangeLogged) or not obj.__pii__:
            continue
        is_new = obj in new
        state = inspect(obj)
        committed = state.committed_state  # an attribute without an entry here has no changes
        for column in obj.__pii__:
            if is_new or (column in committed and state.get_history(column, PASSIVE_NO_INITIALIZE).has_changes()):
                derive(obj, column)
