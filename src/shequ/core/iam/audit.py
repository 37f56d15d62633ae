"""The audit log of writes, and searching the audit log.

Every ORM flush that inserts, updates or deletes rows writes one ``audit_log`` row per
(tenant, table, action): who (``session.info["actor"]``), when, from where (the client address
of the web request, through ``REQUEST_IP``; empty for the CLI), the ids (at most ``ID_CAP``),
their count and, for updates, the names (never the values) of the changed columns. Nothing has
to remember to call it.

Not logged here, because another row already says it:
- a flush that itself adds an ``AuditLog`` row (a login with its failure counter, an import's
  final flush, …): the explicit row describes that flush;
- ``auth_session`` inserts: a browser session starts only with a login, which is logged;
- the change log and the audit log themselves.
ORM bulk statements (``session.execute(update(Model)…)``) get one row with the table and the
number of rows changed. Core writes bypass the ORM and are described elsewhere: the synthetic
seed leaves an ``ImportBatch`` per kind, an import its ``import`` row with the batch, source
facts belong to the audited record they describe, and rule tags are recomputed from audited
writes.

Rows of the audit log are never updated or deleted (database triggers refuse it, see migration
0002), except when their whole tenant is deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE

from shequ.core.changelog import ChangeLog
from shequ.core.iam.models import AuditLog, AuthSession
from shequ.core.paging import Page
from shequ.db import TenantScoped, utcnow

# the client address of the web request being served ("" outside a request: CLI, jobs)
REQUEST_IP: ContextVar[str] = ContextVar("shequ_request_ip", default="")
ID_CAP = 50
NOT_AUDITED = (AuditLog, ChangeLog)
IGNORED_FIELDS = frozenset({"updated_at", "created_at"})
MAX_PAGE = 100_000


@contextmanager
def client_address(ip: str) -> Iterator[None]:
    """Attribute the writes made inside the block to a client address."""
    token = REQUEST_IP.set(ip or "")
    try:
        yield
    finally:
        REQUEST_IP.reset(token)


def current_ip() -> str:
    return REQUEST_IP.get()


# --- writes ------------------------------------------------------------------------------


def _tenant_of(session: Session, obj: Any) -> int | None:
    if isinstance(obj, TenantScoped):
        return getattr(obj, "tenant_id", None)
    from shequ.core.places.models import Tenant

    if isinstance(obj, Tenant):
        return obj.id
    return session.info.get("tenant_id")


_COLUMNS: dict[type, frozenset[str]] = {}  # per class: its audited column attributes


def _changed_fields(obj: Any) -> list[str]:
    state = inspect(obj)
    committed = state.committed_state  # an attribute without an entry here has no changes
    if not committed:
        return []
    columns = _COLUMNS.get(type(obj))
    if columns is None:
        columns = _COLUMNS[type(obj)] = frozenset(
            attr.key for attr in state.mapper.column_attrs if attr.key not in IGNORED_FIELDS)
    return sorted(key for key in committed
                  if key in columns and state.get_history(key, PASSIVE_NO_INITIALIZE).has_changes())


def _write_entries(session: Session) -> list[tuple[Any, str, list[str]]]:
    """(object, action, changed fields) for every row the flush wrote that is audited here."""
    from shequ.core.places.models import Tenant

    entries: list[tuple[Any, str, list[str]]] = []
    for obj in session.new:
        if not isinstance(obj, NOT_AUDITED + (AuthSession,)):
            entries.append((obj, "create", []))
    for obj in session.dirty:
        if isinstance(obj, NOT_AUDITED):
            continue
        fields = _changed_fields(obj)  # empty for an object with no net change
        if fields:
            entries.append((obj, "update", fields))
    for obj in session.deleted:
        # a deleted tenant takes its audit log with it: there is no tenant left to log in
        if not isinstance(obj, NOT_AUDITED + (Tenant,)):
            entries.append((obj, "delete", []))
    return entries


def _ip_of_request(session: Session, _ctx: Any, _instances: Any) -> None:
    """Explicit audit rows (login, export, unmask…) get the request's address when not given."""
    ip = REQUEST_IP.get()
    if not ip:
        return
    for obj in session.new:
        if isinstance(obj, AuditLog) and not obj.ip:
            obj.ip = ip[:64]


def _audit_writes(session: Session, _ctx: Any) -> None:
    new = session.new
    if any(isinstance(obj, AuditLog) for obj in new):
        return  # the flush carries its own audit row, which describes it
    entries = _write_entries(session)
    if not entries:
        return
    groups: dict[tuple[int, str, str], tuple[list[int | None], set[str]]] = {}
    for obj, action, fields in entries:
        tenant_id = _tenant_of(session, obj)
        if tenant_id is None:
            continue  # a row of no tenant in a session of none: nowhere to log it
        ids, names = groups.setdefault((tenant_id, obj.__tablename__, action), ([], set()))
        ids.append(getattr(obj, "id", None))
        names.update(fields)
    if not groups:
        return
    actor = str(session.info.get("actor") or "system")[:100]
    ip = REQUEST_IP.get()[:64]
    now = utcnow()
    rows = []
    for (tenant_id, entity, action), (ids, names) in groups.items():
        known = sorted(i for i in ids if isinstance(i, int))
        detail: dict[str, Any] = {"entity": entity, "count": len(ids), "ids": known[:ID_CAP]}
        if names:
            detail["fields"] = sorted(names)
        target = f"{entity}:{known[0]}" if len(ids) == 1 and known else entity
        rows.append({"tenant_id": tenant_id, "at": now, "actor": actor, "action": action,
                     "target": target[:200], "purpose": "", "ip": ip, "detail": detail})
    session.connection().execute(insert(AuditLog), rows)


def _audit_bulk(state: ORMExecuteState) -> Any:
    """ORM bulk UPDATE/DELETE statements (``session.execute(update(Model)…)``) skip the flush:
    one row with the table and the number of rows they changed. Registered after the tenant
    filter of ``shequ.db``, so the statement run here is already limited to the tenant."""
    mapper = state.bind_mapper
    if not (state.is_update or state.is_delete) or mapper is None:
        return None
    from shequ.core.places.models import Tenant

    if issubclass(mapper.class_, NOT_AUDITED + (Tenant,)):
        return None  # a deleted tenant takes its audit log with it
    tenant_id = state.session.info.get("tenant_id")
    result = state.invoke_statement()
    count = getattr(result, "rowcount", -1)
    if tenant_id is not None and count:
        entity = str(getattr(mapper.class_, "__tablename__", mapper.class_.__name__))
        state.session.connection().execute(insert(AuditLog), [{
            "tenant_id": tenant_id, "at": utcnow(), "actor": str(state.session.info.get("actor") or "system")[:100],
            "action": "update" if state.is_update else "delete", "target": entity, "purpose": "",
            "ip": REQUEST_IP.get()[:64], "detail": {"entity": entity, "count": count, "bulk": True}}])
    return result


def install() -> None:
    """Register the listeners (idempotent; called when the models are imported)."""
    from sqlalchemy import event

    if not event.contains(Session, "before_flush", _ip_of_request):
        event.listen(Session, "before_flush", _ip_of_request)
    if not event.contains(Session, "after_flush", _audit_writes):
        event.listen(Session, "after_flush", _audit_writes)
    if not event.contains(Session, "do_orm_execute", _audit_bulk):
        event.listen(Session, "do_orm_execute", _audit_bulk)


install()


# --- search ------------------------------------------------------------------------------


@dataclass
class AuditQuery:
    """Filters of an audit search; every one optional. Times are zone-aware."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None  # text contained in the target
    ip: str | None = None
    since: dt.datetime | None = None  # at or after
    until: dt.datetime | None = None  # before
    page: int = 1
    size: int = 50


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(*, session: Session, query: AuditQuery) -> Page:
    """Audit rows of the session's tenant matching the filters, newest first.

    Raises ValueError naming the filter for naive times, a reversed range or a bad page.
    """
    for name, value in (("from", query.since), ("to", query.until)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name}: 时间须带时区，如 2024-05-01T08:00:00+08:00（a time zone is required）")
    if query.since and query.until and query.since > query.until:
        raise ValueError("from: 开始时间晚于结束时间（from is after to）")
    if not 1 <= query.page <= MAX_PAGE:
        raise ValueError(f"page: 应在 1 到 {MAX_PAGE} 之间（page must be 1–{MAX_PAGE}）")
    stmt = select(AuditLog)
    if query.actor:
        stmt = stmt.where(AuditLog.actor == query.actor.strip())
    if query.action:
        stmt = stmt.where(AuditLog.action == query.action.strip())
    if query.target:
        pattern = _like(query.target.strip())
        stmt = stmt.where(AuditLog.target.like(pattern, escape="\\"))
    if query.ip:
        stmt = stmt.where(AuditLog.ip == query.ip.strip())
    if query.since:
        stmt = stmt.where(AuditLog.at >= query.since)
    if query.until:
        stmt = stmt.where(AuditLog.at < query.until)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AuditLog.at.desc(), AuditLog.id.desc())
                           .offset((query.page - 1) * query.size).limit(query.size))
    return Page(items=list(rows), total=total, page=query.page, size=query.size)


def actions(*, session: Session) -> list[str]:
    """The actions present in the tenant's audit log (for a filter's choices)."""
    return list(session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)))
