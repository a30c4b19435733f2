"""outcomes: conversions, coupons, survey answers; links that track conversions or ask a
question; tracker keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

ROLES = "'admin', 'marketer', 'analyst'"


def upgrade() -> None:
    op.create_table('conversions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value_micros', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('click_id', sa.String(length=32), nullable=True),
    sa.Column('clicked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('coupon', sa.String(length=40), nullable=True),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversions')),
    sa.UniqueConstraint('external_id', name=op.f('uq_conversions_external_id'))
    )
    op.create_index(op.f('ix_conversions_click_id'), 'conversions', ['click_id'])
    op.create_index(op.f('ix_conversions_occurred_at'), 'conversions', ['occurred_at'])
    op.create_index('ix_conversions_touchpoint_id_occurred_at', 'conversions',
                    ['touchpoint_id', 'occurred_at'])

    op.create_table('feedback_answers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('once', sa.String(length=32), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_answers')),
    sa.UniqueConstraint('once', name=op.f('uq_feedback_answers_once'))
    )
    op.create_index(op.f('ix_feedback_answers_answered_at'), 'feedback_answers', ['answered_at'])
    op.create_index('ix_feedback_answers_touchpoint_id_answered_at', 'feedback_answers',
                    ['touchpoint_id', 'answered_at'])

    op.create_table('coupons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['touchpoint_id'], ['touchpoints.id'], name=op.f('fk_coupons_touchpoint_id_touchpoints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_code'))
    )
    op.create_index(op.f('ix_coupons_touchpoint_id'), 'coupons', ['touchpoint_id'])

    with op.batch_alter_table('links') as batch:
        batch.add_column(sa.Column('track_conversions', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('survey_kind', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('survey_question', sa.String(length=300), nullable=True))
        batch.add_column(sa.Column('survey_then', sa.String(length=8), nullable=True))

    _role_check(f"{ROLES}, 'tracker'")


def _role_check(roles: str) -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_constraint(op.f('ck_api_keys_role_known'), type_='check')
        batch.create_check_constraint(op.f('ck_api_keys_role_known'), f"role IN ({roles})")


def downgrade() -> None:
    op.execute("DELETE FROM api_keys WHERE role = 'tracker'")
    _role_check(ROLES)
    with op.batch_alter_table('links') as batch:
        batch.drop_column('survey_then')
        batch.drop_column('survey_question')
        batch.drop_column('survey_kind')
        batch.drop_column('track_conversions')
    op.drop_table('coupons')
    op.drop_table('feedback_answers')
    op.drop_table('conversions')
