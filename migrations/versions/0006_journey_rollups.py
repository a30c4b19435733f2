"""journey rollups: journeys counted by the days of their first and last touch

They start empty; the first ingest batch or worker start builds them from the touches.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('journey_funnel_days',
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('depth', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('reached', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('continued', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('journeys', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('first_day', 'last_day', 'depth', 'reached', 'continued', name=op.f('pk_journey_funnel_days'))
    )
    op.create_table('journey_next_days',
    sa.Column('touchpoint_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('next_touchpoint_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('journeys', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('touchpoint_id', 'first_day', 'last_day', 'next_touchpoint_id', name=op.f('pk_journey_next_days'))
    )
    op.create_table('journey_path_days',
    sa.Column('path_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('journeys', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('path_id', 'first_day', 'last_day', name=op.f('pk_journey_path_days'))
    )
    op.create_table('journey_paths',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('touchpoints', sa.Text(), nullable=False),
    sa.Column('journeys', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journey_paths')),
    sa.UniqueConstraint('key', name=op.f('uq_journey_paths_key'))
    )
    op.create_index(op.f('ix_journey_paths_journeys'), 'journey_paths', ['journeys'], unique=False)
    op.create_table('journey_stop_days',
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('journeys', sa.Integer(), nullable=False),
    sa.Column('moved_on', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('first_day', 'last_day', 'touchpoint_id', name=op.f('pk_journey_stop_days'))
    )
    op.create_index(op.f('ix_journeys_first_touch_at'), 'journeys', ['first_touch_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_journeys_first_touch_at'), table_name='journeys')
    op.drop_table('journey_stop_days')
    op.drop_index(op.f('ix_journey_paths_journeys'), table_name='journey_paths')
    op.drop_table('journey_paths')
    op.drop_table('journey_path_days')
    op.drop_table('journey_next_days')
    op.drop_table('journey_funnel_days')
