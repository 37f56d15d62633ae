"""The migrations (the kernel's and every scenario package's branch) build exactly the schema
the models describe: a model changed without its migration fails here, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from shequ.core.migrate import alembic_config
from shequ.core.plugins import load_scenarios
from shequ.models import metadata


def test_the_migrated_database_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_each_scenario_with_models_ships_its_own_branch() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    head_dirs = {Path(script.get_revision(h).path).parent.resolve() for h in script.get_heads()}
    for spec in load_scenarios().scenarios.values():
        if spec.models_module:
            assert spec.migrations, f"{spec.id} has models but no migrations"
            assert Path(spec.migrations).resolve() in head_dirs, f"{spec.id}: no head revision in its migrations"
