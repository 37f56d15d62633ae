"""S05 shop safety: shop registry, inspections, night presence

Revision ID: s05_0001
Revises:
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shequ.db

revision = "s05_0001"
down_revision = None
branch_labels = ("s05",)
depends_on = "0004"

PLACED = ("place_id", "grid_id", "committee_id", "compound_id", "building_id")


def _placed() -> list[sa.Column]:
    return [sa.Column("place_id", sa.Integer(), nullable=True),
            sa.Column("grid_id", sa.Integer(), nullable=True),
            sa.Column("committee_id", sa.Integer(), nullable=True),
            sa.Column("compound_id", sa.Integer(), nullable=True),
            sa.Column("building_id", sa.Integer(), nullable=True)]


def _stamps() -> list[sa.Column]:
    return [sa.Column("created_at", shequ.db.UTCDateTime(timezone=True), nullable=False),
            sa.Column("updated_at", shequ.db.UTCDateTime(timezone=True), nullable=False)]


def _common_fks() -> list[sa.ForeignKeyConstraint]:
    return [sa.ForeignKeyConstraint(["place_id"], ["place.id"], ondelete="SET NULL"),
            sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE")]


def _indexes(table: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for col in (*PLACED, "tenant_id"):
            batch_op.create_index(batch_op.f(f"ix_{table}_{col}"), [col], unique=False)


def upgrade() -> None:
    op.create_table(
        "s05_shop",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registered_residence", sa.Boolean(), nullable=False),
        sa.Column("risk_level", sa.String(length=10), nullable=False),
        sa.Column("notes", sa.String(length=500), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        *_stamps(), *_placed(), *_common_fks(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "place_id", name="uq_s05_shop_place"),
    )
    _indexes("s05_shop")

    op.create_table(
        "s05_inspection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("planned_date", sa.Date(), nullable=False),
        sa.Column("inspector_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=10), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("result", sa.String(length=10), nullable=True),
        sa.Column("findings", sa.String(length=1000), nullable=False),
        sa.Column("done_at", shequ.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=100), nullable=True),
        sa.Column("rectify_by", sa.Date(), nullable=True),
        sa.Column("rectified_at", shequ.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rectified_by", sa.String(length=100), nullable=True),
        sa.Column("rectify_note", sa.String(length=500), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        *_stamps(), *_placed(), *_common_fks(),
        sa.ForeignKeyConstraint(["inspector_id"], ["app_user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes("s05_inspection")
    with op.batch_alter_table("s05_inspection", schema=None) as batch_op:
        batch_op.create_index("ix_s05_inspection_status", ["tenant_id", "status", "planned_date"], unique=False)

    op.create_table(
        "s05_presence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("first_ms", sa.BigInteger(), nullable=False),
        sa.Column("span_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("sustained", sa.Boolean(), nullable=False),
        sa.Column("smoke_ms", sa.BigInteger(), nullable=True),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        *_placed(), *_common_fks(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "place_id", "night", name="uq_s05_presence_night"),
    )
    _indexes("s05_presence")


def downgrade() -> None:
    for table in ("s05_presence", "s05_inspection", "s05_shop"):
        op.drop_table(table)
