"""S02 elevator e-bike block: the detection ledger

Revision ID: s02_0001
Revises:
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shequ.db

revision = "s02_0001"
down_revision = None
branch_labels = ("s02",)
depends_on = "0004"

PLACED = ("place_id", "grid_id", "committee_id", "compound_id", "building_id")


def upgrade() -> None:
    op.create_table(
        "s02_detection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("detected_at", shequ.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("snapshot", sa.String(length=500), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("left_at", shequ.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("doors_held_at", shequ.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("hold_command_id", sa.Integer(), nullable=True),
        sa.Column("released_at", shequ.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=100), nullable=True),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("verdict_note", sa.String(length=300), nullable=False),
        sa.Column("verdict_by", sa.String(length=100), nullable=True),
        sa.Column("verdict_at", shequ.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", shequ.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequ.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("place_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("committee_id", sa.Integer(), nullable=True),
        sa.Column("compound_id", sa.Integer(), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["place_id"], ["place.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("s02_detection", schema=None) as batch_op:
        batch_op.create_index("ix_s02_detection_at", ["tenant_id", "detected_at"], unique=False)
        batch_op.create_index("ix_s02_detection_device", ["device_id", "detected_at"], unique=False)
        batch_op.create_index("ix_s02_detection_open", ["tenant_id", "left_at", "released_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_s02_detection_tenant_id"), ["tenant_id"], unique=False)
        for column in PLACED:
            batch_op.create_index(batch_op.f(f"ix_s02_detection_{column}"), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("s02_detection", schema=None) as batch_op:
        for column in PLACED:
            batch_op.drop_index(batch_op.f(f"ix_s02_detection_{column}"))
        batch_op.drop_index(batch_op.f("ix_s02_detection_tenant_id"))
        batch_op.drop_index("ix_s02_detection_open")
        batch_op.drop_index("ix_s02_detection_device")
        batch_op.drop_index("ix_s02_detection_at")
    op.drop_table("s02_detection")
