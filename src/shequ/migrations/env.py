"""Alembic environment: migrates the database named by SHEQU_DATABASE_URL (or the given engine)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from shequ.db import get_engine
from shequ.models import metadata

config = context.config


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        with get_engine().connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
