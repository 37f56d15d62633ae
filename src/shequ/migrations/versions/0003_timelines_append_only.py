"""The timelines of cases and alarms are append-only, like the audit log: triggers refuse UPDATE
always and DELETE while the row's tenant exists (a deleted tenant still cascades).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("case_step", "alarm_event")


def _sqlite(table: str) -> tuple[str, ...]:
    message = f"{table} is append-only"
    return (
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{message}: UPDATE refused'); END""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        WHEN EXISTS (SELECT 1 FROM tenant WHERE tenant.id = OLD.tenant_id)
        BEGIN SELECT RAISE(ABORT, '{message}: DELETE refused'); END""",
    )


def _postgres(table: str) -> tuple[str, ...]:
    message = f"{table} is append-only"
    return (
        f"""CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM tenant WHERE tenant.id = OLD.tenant_id) THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION '{message}: % refused', TG_OP USING ERRCODE = 'integrity_constraint_violation';
        END
        $$""",
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""",
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        for statement in (_sqlite(table) if dialect == "sqlite" else _postgres(table)):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
