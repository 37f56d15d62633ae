"""S09 noise: zones and judged minutes

Revision ID: s09_0001
Revises:
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shequ.db

revision = "s09_0001"
down_revision = None
branch_labels = ("s09",)
depends_on = "0004"


def upgrade() -> None:
    op.create_table(
        "s09_zone",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("place_id", sa.Integer(), nullable=False),
        sa.Column("noise_class", sa.String(length=2), nullable=False),
        sa.Column("buffer_m", sa.Float(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", shequ.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequ.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["place_id"], ["place.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "place_id", name="uq_s09_zone_place"),
    )
    with op.batch_alter_table("s09_zone", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_s09_zone_place_id"), ["place_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s09_zone_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "s09_minute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("ts", shequ.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("laeq", sa.Float(), nullable=False),
        sa.Column("lamax", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("noise_class", sa.String(length=2), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("period", sa.String(length=5), nullable=False),
        sa.Column("limit_db", sa.Float(), nullable=False),
        sa.Column("over", sa.Boolean(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
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
        sa.UniqueConstraint("device_id", "ts", name="uq_s09_minute"),
    )
    with op.batch_alter_table("s09_minute", schema=None) as batch_op:
        batch_op.create_index("ix_s09_minute_tenant_ts", ["tenant_id", "ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_s09_minute_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s09_minute_place_id"), ["place_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s09_minute_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s09_minute_committee_id"), ["committee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s09_minute_compound_id"), ["compound_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s09_minute_building_id"), ["building_id"], unique=False)


def downgrade() -> None:
    op.drop_table("s09_minute")
    op.drop_table("s09_zone")
