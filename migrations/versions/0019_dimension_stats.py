"""dimension stats: clicks per day by device, OS, browser, country, referrer and scan or click,
for the breakdowns, the chart and the campaigns, filled from the raw clicks kept by the worker's
first start (`workspace_state.dimension_timezone` is not set yet); touchpoint_stats indexed by
touchpoint

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dimension_stats',
    sa.Column('dimension', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('campaign', sa.String(length=200), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('bot_clicks', sa.Integer(), nullable=False),
    sa.Column('scanner_clicks', sa.Integer(), nullable=False),
    sa.Column('test_clicks', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.Column('first_click_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_click_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('dimension', 'day', 'stage_id', 'channel', 'campaign', 'value', name=op.f('pk_dimension_stats'))
    )
    op.create_index('ix_touchpoint_stats_touchpoint_id', 'touchpoint_stats', ['touchpoint_id', 'period', 'period_start'])


def downgrade() -> None:
    op.drop_index('ix_touchpoint_stats_touchpoint_id', table_name='touchpoint_stats')
    op.drop_table('dimension_stats')
