"""touchpoint_stats: per touchpoint and stage per day, week and month, filled from link_hourly_stats

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# The first day of each period, from the hour of a link_hourly_stats row (UTC; weeks from Monday).
PERIOD_START = {
    'postgresql': {
        'day': "CAST(hour AT TIME ZONE 'UTC' AS date)",
        'week': "CAST(date_trunc('week', hour AT TIME ZONE 'UTC') AS date)",
        'month': "CAST(date_trunc('month', hour AT TIME ZONE 'UTC') AS date)",
    },
    'sqlite': {
        'day': "date(hour)",
        'week': "date(hour, '-6 days', 'weekday 1')",
        'month': "date(hour, 'start of month')",
    },
}


def upgrade() -> None:
    op.create_table('touchpoint_stats',
    sa.Column('period', sa.String(length=5), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('scans', sa.Integer(), nullable=False),
    sa.Column('bot_clicks', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.Column('last_click_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("period IN ('day', 'week', 'month')", name=op.f('ck_touchpoint_stats_period_known')),
    sa.PrimaryKeyConstraint('period', 'period_start', 'stage_id', 'touchpoint_id', name=op.f('pk_touchpoint_stats'))
    )
    # Existing installations keep their history: each period is the sum of its hourly rows.
    starts = PERIOD_START[op.get_bind().dialect.name]
    for period in ('day', 'week', 'month'):
        op.execute(
            "INSERT INTO touchpoint_stats (period, period_start, stage_id, touchpoint_id, clicks,"
            " scans, bot_clicks, visitors, last_click_at)"
            f" SELECT '{period}', {starts[period]}, stage_id, touchpoint_id, sum(clicks), sum(scans),"
            " sum(bot_clicks), sum(visitors), max(last_click_at)"
            f" FROM link_hourly_stats GROUP BY {starts[period]}, stage_id, touchpoint_id"
            # In key order: a period's rows side by side, as reports read them.
            f" ORDER BY {starts[period]}, stage_id, touchpoint_id"
        )


def downgrade() -> None:
    op.drop_table('touchpoint_stats')
