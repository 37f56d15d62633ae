"""S04 high-altitude throwing: the incident ledger

Revision ID: s04_0001
Revises:
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shequ.db

revision = "s04_0001"
down_revision = None
branch_labels = ("s04",)
depends_on = "0004"


def upgrade() -> None:
    op.create_table(
        "s04_incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("at", shequ.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("located", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=True),
        sa.Column("column", sa.Integer(), nullable=True),
        sa.Column("unit", sa.Integer(), nullable=True),
        sa.Column("rooms", sa.JSON(), nullable=False),
        sa.Column("room_numbers", sa.JSON(), nullable=False),
        sa.Column("room_place_ids", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("video", sa.String(length=300), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("fit", sa.JSON(), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(length=12), nullable=False),
        sa.Column("verdict_by", sa.String(length=100), nullable=True),
        sa.Column("verdict_note", sa.String(length=500), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", shequ.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequ.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("place_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("committee_id", sa.Integer(), nullable=True),
        sa.Column("compound_id", sa.Integer(), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["place_id"], ["place.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("s04_incident", schema=None) as batch_op:
        batch_op.create_index("ix_s04_incident_at", ["tenant_id", "at"], unique=False)
        batch_op.create_index("ix_s04_incident_building", ["tenant_id", "building_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_s04_incident_alarm_id"), ["alarm_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s04_incident_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s04_incident_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s04_incident_place_id"), ["place_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s04_incident_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s04_incident_committee_id"), ["committee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s04_incident_compound_id"), ["compound_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_s04_incident_building_id"), ["building_id"], unique=False)


def downgrade() -> None:
    op.drop_table("s04_incident")
