"""S11 living-alone care: care plans, contacts, signs of life, escalation steps, check-ins, reviews

Revision ID: s11_0001
Revises:
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shequ.core.iam.crypto
import shequ.db

revision = "s11_0001"
down_revision = None
branch_labels = ("s11",)
depends_on = "0004"


def upgrade() -> None:
    op.create_table('s11_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('group', sa.String(length=20), nullable=False),
    sa.Column('no_motion_hours', sa.Float(), nullable=False),
    sa.Column('day_start', sa.String(length=5), nullable=False),
    sa.Column('day_end', sa.String(length=5), nullable=False),
    sa.Column('no_door_hours', sa.Float(), nullable=False),
    sa.Column('away_hours', sa.Float(), nullable=False),
    sa.Column('water_hours', sa.Float(), nullable=False),
    sa.Column('water_min_m3', sa.Float(), nullable=False),
    sa.Column('call_wait_min', sa.Integer(), nullable=False),
    sa.Column('committee_wait_min', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('pause_reason', sa.String(length=10), nullable=False),
    sa.Column('paused_until', shequ.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pause_note', sa.String(length=200), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('created_at', shequ.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shequ.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('place_id', sa.Integer(), nullable=True),
    sa.Column('grid_id', sa.Integer(), nullable=True),
    sa.Column('committee_id', sa.Integer(), nullable=True),
    sa.Column('compound_id', sa.Integer(), nullable=True),
    sa.Column('building_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'person_id', name='uq_s11_plan_person'),
    )
    with op.batch_alter_table('s11_plan', schema=None) as batch_op:
        batch_op.create_index('ix_s11_plan_building_id', ['building_id'], unique=False)
        batch_op.create_index('ix_s11_plan_committee_id', ['committee_id'], unique=False)
        batch_op.create_index('ix_s11_plan_compound_id', ['compound_id'], unique=False)
        batch_op.create_index('ix_s11_plan_grid_id', ['grid_id'], unique=False)
        batch_op.create_index('ix_s11_plan_place_id', ['place_id'], unique=False)
        batch_op.create_index('ix_s11_plan_tenant_id', ['tenant_id'], unique=False)

    op.create_table('s11_contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('relation', sa.String(length=20), nullable=False),
    sa.Column('phone', shequ.core.iam.crypto.Encrypted(length=255), nullable=True),
    sa.Column('phone_hash', sa.String(length=64), nullable=True),
    sa.Column('phone_mask', sa.String(length=20), nullable=False),
    sa.Column('order', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('created_at', shequ.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', shequ.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['s11_plan.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('s11_contact', schema=None) as batch_op:
        batch_op.create_index('ix_s11_contact_phone_hash', ['tenant_id', 'phone_hash'], unique=False)
        batch_op.create_index('ix_s11_contact_plan', ['plan_id', 'order'], unique=False)
        batch_op.create_index('ix_s11_contact_tenant_id', ['tenant_id'], unique=False)

    op.create_table('s11_signs',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('place_id', sa.Integer(), nullable=True),
    sa.Column('since_ms', sa.BigInteger(), nullable=False),
    sa.Column('last_motion_ms', sa.BigInteger(), nullable=True),
    sa.Column('last_door_ms', sa.BigInteger(), nullable=True),
    sa.Column('last_water_ms', sa.BigInteger(), nullable=True),
    sa.Column('water', sa.JSON(), nullable=False),
    sa.Column('reset', sa.JSON(), nullable=False),
    sa.Column('checked_day', sa.Date(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['s11_plan.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_id'),
    )
    with op.batch_alter_table('s11_signs', schema=None) as batch_op:
        batch_op.create_index('ix_s11_signs_place_id', ['place_id'], unique=False)
        batch_op.create_index('ix_s11_signs_tenant_id', ['tenant_id'], unique=False)

    op.create_table('s11_escalation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alarm_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('target', sa.String(length=100), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('at', shequ.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', shequ.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('ref', sa.String(length=100), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('place_id', sa.Integer(), nullable=True),
    sa.Column('grid_id', sa.Integer(), nullable=True),
    sa.Column('committee_id', sa.Integer(), nullable=True),
    sa.Column('compound_id', sa.Integer(), nullable=True),
    sa.Column('building_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarm.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['plan_id'], ['s11_plan.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('s11_escalation', schema=None) as batch_op:
        batch_op.create_index('ix_s11_escalation_alarm', ['alarm_id', 'step'], unique=False)
        batch_op.create_index('ix_s11_escalation_building_id', ['building_id'], unique=False)
        batch_op.create_index('ix_s11_escalation_committee_id', ['committee_id'], unique=False)
        batch_op.create_index('ix_s11_escalation_compound_id', ['compound_id'], unique=False)
        batch_op.create_index('ix_s11_escalation_due', ['tenant_id', 'due_at'], unique=False)
        batch_op.create_index('ix_s11_escalation_grid_id', ['grid_id'], unique=False)
        batch_op.create_index('ix_s11_escalation_place_id', ['place_id'], unique=False)
        batch_op.create_index('ix_s11_escalation_plan_id', ['plan_id'], unique=False)
        batch_op.create_index('ix_s11_escalation_tenant_id', ['tenant_id'], unique=False)

    op.create_table('s11_checkin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('how', sa.String(length=10), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.Column('at', shequ.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('place_id', sa.Integer(), nullable=True),
    sa.Column('grid_id', sa.Integer(), nullable=True),
    sa.Column('committee_id', sa.Integer(), nullable=True),
    sa.Column('compound_id', sa.Integer(), nullable=True),
    sa.Column('building_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['plan_id'], ['s11_plan.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plan_id', 'day', 'how', name='uq_s11_checkin'),
    )
    with op.batch_alter_table('s11_checkin', schema=None) as batch_op:
        batch_op.create_index('ix_s11_checkin_building_id', ['building_id'], unique=False)
        batch_op.create_index('ix_s11_checkin_committee_id', ['committee_id'], unique=False)
        batch_op.create_index('ix_s11_checkin_compound_id', ['compound_id'], unique=False)
        batch_op.create_index('ix_s11_checkin_day', ['tenant_id', 'day'], unique=False)
        batch_op.create_index('ix_s11_checkin_grid_id', ['grid_id'], unique=False)
        batch_op.create_index('ix_s11_checkin_place_id', ['place_id'], unique=False)
        batch_op.create_index('ix_s11_checkin_tenant_id', ['tenant_id'], unique=False)

    op.create_table('s11_review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alarm_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('false_alarm', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('at', shequ.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('place_id', sa.Integer(), nullable=True),
    sa.Column('grid_id', sa.Integer(), nullable=True),
    sa.Column('committee_id', sa.Integer(), nullable=True),
    sa.Column('compound_id', sa.Integer(), nullable=True),
    sa.Column('building_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarm.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['plan_id'], ['s11_plan.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('alarm_id', name='uq_s11_review_alarm'),
    )
    with op.batch_alter_table('s11_review', schema=None) as batch_op:
        batch_op.create_index('ix_s11_review_building_id', ['building_id'], unique=False)
        batch_op.create_index('ix_s11_review_committee_id', ['committee_id'], unique=False)
        batch_op.create_index('ix_s11_review_compound_id', ['compound_id'], unique=False)
        batch_op.create_index('ix_s11_review_grid_id', ['grid_id'], unique=False)
        batch_op.create_index('ix_s11_review_place_id', ['place_id'], unique=False)
        batch_op.create_index('ix_s11_review_plan_id', ['plan_id'], unique=False)
        batch_op.create_index('ix_s11_review_tenant_id', ['tenant_id'], unique=False)


def downgrade() -> None:
    for table in ("s11_review", "s11_checkin", "s11_escalation", "s11_signs", "s11_contact", "s11_plan"):
        op.drop_table(table)
