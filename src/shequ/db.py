"""Database engine, sessions, the declarative base and the mixins every domain model shares."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.types import TypeDecorator

from shequ.config import Settings, get_settings

UTC = dt.UTC


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A zone-aware timestamp, stored in UTC on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; shequ stores zone-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON}


class TenantScoped:
    """Rows that belong to one tenant (subdistrict); queries see only the session's tenant."""

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Placed:
    """Rows located at a place; the ancestry columns are filled from the place on flush.

    Grid, committee, compound and building are kept on the row so that lists, scopes and
    reports filter by area without walking the place tree.
    """

    @declared_attr
    def place_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("place.id", ondelete="SET NULL"), index=True)

    @declared_attr
    def grid_id(cls) -> Mapped[int | None]:
        return mapped_column(Integer, index=True)

    @declared_attr
    def committee_id(cls) -> Mapped[int | None]:
        return mapped_column(Integer, index=True)

    @declared_attr
    def compound_id(cls) -> Mapped[int | None]:
        return mapped_column(Integer, index=True)

    @declared_attr
    def building_id(cls) -> Mapped[int | None]:
        return mapped_column(Integer, index=True)


class ChangeLogged:
    """Rows whose every insert, update and delete is written to change_log (see core.changelog).

    ``__pii__`` names attributes whose values are personal data: the log keeps only their mask.
    """

    __pii__: dict[str, str] = {}
    __changelog_skip__: frozenset[str] = frozenset({"updated_at", "created_at"})


def name_str(length: int = 200) -> Any:
    return mapped_column(String(length))


# --- engine and sessions -------------------------------------------------------------------

_engines: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin, so that
    # SAVEPOINTs nest properly (SQLAlchemy's documented recipe for pysqlite).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # A writer that reads first must take the write lock at BEGIN (IMMEDIATE): in WAL mode a
    # deferred transaction that another process wrote past cannot upgrade and fails at once.
    immediate = conn.get_execution_options().get("sqlite_immediate")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    # Importing every model registers the flush listeners (change log, PII columns, tags):
    # no code path that touches the database can miss them.
    import shequ.models  # noqa: F401

    settings = settings or get_settings()
    url = settings.database_url
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextlib.contextmanager
def session_scope(
    *, tenant_id: int | None = None, actor: str = "system", engine: Engine | None = None
) -> Iterator[Session]:
    """A session bound to one tenant and one actor; commits on success, rolls back on error."""
    session = session_factory(engine)()
    bind_context(session, tenant_id=tenant_id, actor=actor)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_KEEP: Any = object()


def bind_context(session: Session, *, tenant_id: int | None, actor: str, scope: Any = _KEEP) -> Session:
    """Tell a session whose tenant it serves and who acts through it (for the change log).

    ``scope`` (a ``shequ.core.iam.scope.Scope``, or None for no limit within the tenant) limits
    what the session sees further; left out, the session keeps the scope it has.
    """
    session.info["tenant_id"] = tenant_id
    session.info["actor"] = actor
    if scope is not _KEEP:
        session.info["scope"] = scope
    return session


# --- tenant isolation and scopes: one place, at the data layer ---------------------------


@event.listens_for(Session, "do_orm_execute")
def _limit_to_tenant(state: ORMExecuteState) -> None:
    """Every ORM SELECT/UPDATE/DELETE sees only the session's tenant and, within it, its scope.

    The scope (``session.info["scope"]``, see ``shequ.core.iam.scope``) adds its own loader
    criteria; ``execution_options(all_scopes=True)`` skips them (the tenant limit stays), for
    code that must reason over the whole tenant on a scoped user's behalf (rules, uniqueness).
    """
    if not (state.is_select or state.is_update or state.is_delete):
        return
    tenant_id = state.session.info.get("tenant_id")
    if tenant_id is not None and not state.execution_options.get("all_tenants"):
        state.statement = state.statement.options(
            with_loader_criteria(
                TenantScoped,
                lambda cls: cls.tenant_id == tenant_id,
                include_aliases=True,
            )
        )
    scope = state.session.info.get("scope")
    if scope is not None and not state.execution_options.get("all_scopes"):
        options = scope.loader_options()
        if options:
            state.statement = state.statement.options(*options)


@event.listens_for(Session, "before_flush")
def _stamp_tenant(session: Session, _ctx: Any, _instances: Any) -> None:
    tenant_id = session.info.get("tenant_id")
    for obj in session.new:
        if isinstance(obj, TenantScoped):
            current = getattr(obj, "tenant_id", None)
            if current is None:
                if tenant_id is None:
                    raise ValueError(f"{type(obj).__name__} has no tenant and the session none")
                obj.tenant_id = tenant_id
            elif tenant_id is not None and current != tenant_id:
                raise PermissionError("a row of another tenant cannot be written in this session")
