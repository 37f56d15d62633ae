"""S03 safe charging: the charging sessions ledger

Revision ID: s03_0001
Revises:
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shequ.db

revision = "s03_0001"
down_revision = None
branch_labels = ("s03",)
depends_on = "0004"


def upgrade() -> None:
    op.create_table(
        "s03_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("started_at", shequ.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", shequ.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("energy_kwh", sa.Float(), nullable=False),
        sa.Column("fee_fen", sa.Integer(), nullable=False),
        sa.Column("ended_by", sa.String(length=12), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("place_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("committee_id", sa.Integer(), nullable=True),
        sa.Column("compound_id", sa.Integer(), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["place_id"], ["place.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("s03_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_s03_session_building_id"), ["building_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s03_session_committee_id"), ["committee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s03_session_compound_id"), ["compound_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s03_session_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s03_session_place_id"), ["place_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s03_session_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_s03_session_site", ["tenant_id", "facility_id", "started_at"], unique=False)
        batch_op.create_index("ix_s03_session_open", ["device_id", "port", "stopped_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("s03_session", schema=None) as batch_op:
        for name in ("ix_s03_session_open", "ix_s03_session_site"):
            batch_op.drop_index(name)
        for col in ("tenant_id", "place_id", "grid_id", "compound_id", "committee_id", "building_id"):
            batch_op.drop_index(batch_op.f(f"ix_s03_session_{col}"))
    op.drop_table("s03_session")
