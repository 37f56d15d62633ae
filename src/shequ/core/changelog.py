"""The change log: who changed which record when, with the values before and after.

Any model with the ChangeLogged mixin is logged here on flush; nothing else has to remember to.
Personal data is logged as its mask only. Placed rows inherit their area from their place here
too, so that the ancestry columns never drift from the place tree.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, event, insert, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import NO_VALUE

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


def _shown(obj: Any, key: str, value: Any) -> Any:
    kind = obj.__pii__.get(key)
    if kind and value is not None:
        return MASKS[kind](value)
    return _plain(value)


def _snapshot(obj: Any) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return {
        attr.key: _shown(obj, attr.key, getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in obj.__changelog_skip__ and not attr.key.endswith("_hash")
    }


def _diff(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in obj.__changelog_skip__ or key.endswith("_hash"):
            continue
        hist = state.attrs[key].history
        if not hist.has_changes():
            continue
        old = hist.deleted[0] if hist.deleted else None
        new = hist.added[0] if hist.added else None
        if old is NO_VALUE or old == new:
            continue
        before[key] = _shown(obj, key, old)
        after[key] = _shown(obj, key, new)
    return before, after


@event.listens_for(Session, "before_flush")
def _inherit_place(session: Session, _ctx: Any, _instances: Any) -> None:
    from shequ.core.places.models import Place

    new = session.new  # a fresh set on every access: take it once (bulk imports flush 1000s)
    for obj in list(new) + list(session.dirty):
        if not isinstance(obj, Placed):
            continue
        state = inspect(obj)
        if obj not in new and not state.attrs["place_id"].history.has_changes():
            continue
        if obj.place_id is None:
            obj.grid_id = obj.committee_id = obj.compound_id = obj.building_id = None
            continue
        place = session.get(Place, obj.place_id)
        if place is None:
            raise ValueError(f"place {obj.place_id} does not exist")
        for key, value in place.ancestry().items():
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
        if isinstance(obj, ChangeLogged) and session.is_modified(obj, include_collections=False):
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
