"""The change log: who changed which record when, with the values before and after.

Any model with the ChangeLogged mixin is logged here on flush; nothing else has to remember to.
Personal data is logged as its mask only. Placed rows inherit their area from their place here
too, so that the ancestry columns never drift from the place tree.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, event, insert, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import NO_VALUE, PASSIVE_NO_INITIALIZE

from shequ.core.iam.crypto import MASKS
from shequ.db import Base, ChangeLogged, Placed, TenantScoped, utcnow


class ChangeLog(Base, TenantScoped):
    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))  # create | update | delete
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


# per class: the logged column attributes in mapper order, each with its mask (None: plain);
# worked out once, not per object and flush (a bulk import logs thousands of rows per flush)
_LOGGED: dict[type, tuple[tuple[str, Callable[[str], str] | None], ...]] = {}


def _logged(obj: Any) -> tuple[tuple[str, Callable[[str], str] | None], ...]:
    cls = type(obj)
    logged = _LOGGED.get(cls)
    if logged is None:
        mapper = inspect(cls)
        pii = obj.__pii__
        logged = tuple(
            (attr.key, MASKS[pii[attr.key]] if pii.get(attr.key) else None)
            for attr in mapper.column_attrs
            if attr.key not in obj.__changelog_skip__ and not attr.key.endswith("_hash")
        )
        _LOGGED[cls] = logged
    return logged


def _show(mask: Callable[[str], str] | None, value: Any) -> Any:
    if mask is not None and value is not None:
        return mask(value)
    return _plain(value)


def _snapshot(obj: Any) -> dict[str, Any]:
    loaded = obj.__dict__
    return {
        key: _show(mask, loaded[key] if key in loaded else getattr(obj, key))
        for key, mask in _logged(obj)
    }


def _diff(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(obj)
    committed = state.committed_state  # an attribute without an entry here has no changes
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if not committed:
        return before, after
    for key, mask in _logged(obj):
        if key not in committed:
            continue
        # what state.attrs[key].history gives, without building every attribute's AttributeState
        hist = state.get_history(key, PASSIVE_NO_INITIALIZE)
        if not hist.has_changes():
            continue
        old = hist.deleted[0] if hist.deleted else None
        new = hist.added[0] if hist.added else None
        if old is NO_VALUE or old == new:
            continue
        before[key] = _show(mask, old)
        after[key] = _show(mask, new)
    return before, after


@event.listens_for(Session, "before_flush")
def _inherit_place(session: Session, _ctx: Any, _instances: Any) -> None:
    from shequ.core.places.models import Place

    new = session.new  # a fresh set on every access: take it once (bulk imports flush 1000s)
    ancestries: dict[int, dict[str, int | None]] = {}  # per place, once per flush
    for obj in list(new) + list(session.dirty):
        if not isinstance(obj, Placed):
            continue
        if obj not in new:
            state = inspect(obj)
            if "place_id" not in state.committed_state or not state.get_history("place_id", PASSIVE_NO_INITIALIZE).has_changes():
                continue
        if obj.place_id is None:
            obj.grid_id = obj.committee_id = obj.compound_id = obj.building_id = None
            continue
        ancestry = ancestries.get(obj.place_id)
        if ancestry is None:
            place = session.get(Place, obj.place_id)
            if place is None:
                raise ValueError(f"place {obj.place_id} does not exist")
            ancestry = ancestries[obj.place_id] = place.ancestry()
        for key, value in ancestry.items():
            setattr(obj, key, value)


@event.listens_for(Session, "after_flush")
def _write_change_log(session: Session, _ctx: Any) -> None:
    if session.info.get("skip_change_log"):
        return
    actor = session.info.get("actor", "system")
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for obj in session.new:
        if isinstance(obj, ChangeLogged):
            rows.append(_row(obj, "create", actor, now, None, _snapshot(obj)))
    for obj in session.dirty:
        if isinstance(obj, ChangeLogged):  # _diff is empty for an object with no net change
            before, after = _diff(obj)
            if after:
                rows.append(_row(obj, "update", actor, now, before, after))
    for obj in session.deleted:
        if isinstance(obj, ChangeLogged):
            rows.append(_row(obj, "delete", actor, now, _snapshot(obj), None))
    if rows:
        session.connection().execute(insert(ChangeLog), rows)


def _row(obj: Any, action: str, actor: str, now: dt.datetime, before: Any, after: Any) -> dict[str, Any]:
    return {
        "tenant_id": obj.tenant_id,
        "entity": obj.__tablename__,
        "entity_id": obj.id,
        "action": action,
        "actor": actor,
        "at": now,
        "before": before,
        "after": after,
    }


def history(session: Session, entity: str, entity_id: int) -> list[ChangeLog]:
    """The change log of one record, newest first."""
    stmt = (
        select(ChangeLog)
        .where(ChangeLog.entity == entity, ChangeLog.entity_id == entity_id)
        .order_by(ChangeLog.at.desc(), ChangeLog.id.desc())
    )
    return list(session.scalars(stmt))
