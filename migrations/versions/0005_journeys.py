"""journeys: their touches (human clicks with a journey), and the salts of cookieless ids

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

JOURNEY_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('journeys',
    sa.Column('id', JOURNEY_ID, nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('first_touch_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_touch_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('touches', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journeys')),
    sa.UniqueConstraint('key', name=op.f('uq_journeys_key'))
    )
    op.create_index(op.f('ix_journeys_last_touch_at'), 'journeys', ['last_touch_at'], unique=False)
    op.create_table('journey_touches',
    sa.Column('click_id', sa.String(length=32), nullable=False),
    sa.Column('journey_id', JOURNEY_ID, nullable=False),
    sa.Column('touched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('via_qr', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.PrimaryKeyConstraint('click_id', name=op.f('pk_journey_touches'))
    )
    op.create_index(op.f('ix_journey_touches_journey_id'), 'journey_touches', ['journey_id'], unique=False)
    op.create_index('ix_journey_touches_touched_at', 'journey_touches', ['touched_at'], unique=False)
    op.create_table('journey_salts',
    sa.Column('period', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('salt', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('period', name=op.f('pk_journey_salts'))
    )


def downgrade() -> None:
    op.drop_table('journey_salts')
    op.drop_index('ix_journey_touches_touched_at', table_name='journey_touches')
    op.drop_index(op.f('ix_journey_touches_journey_id'), table_name='journey_touches')
    op.drop_table('journey_touches')
    op.drop_index(op.f('ix_journeys_last_touch_at'), table_name='journeys')
    op.drop_table('journeys')
