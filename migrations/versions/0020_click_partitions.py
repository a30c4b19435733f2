"""click partitions: on PostgreSQL, clicks partitioned by UTC month of occurred_at (a partition
for every month holding clicks, this month and the next two, and a default one), its rows copied
over; the key of clicks becomes (click_id, occurred_at) on both backends, since a partitioned
table's key must hold the partition key; SQLite keeps a plain table

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

# In the order the table has them on an installation at 0019.
COLUMNS = (
    'click_id, occurred_at, link_id, touchpoint_id, stage_id, via_qr, is_bot, bot_reason, device,'
    ' os, browser, country, referrer_host, language, visitor_id, referrer_site, is_test'
)
AHEAD = 2  # months made ahead of this one (the worker makes them from here on)


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        with op.batch_alter_table('clicks', recreate='always') as batch_op:
            batch_op.drop_constraint('pk_clicks', type_='primary')
            batch_op.create_primary_key(op.f('pk_clicks'), ['click_id', 'occurred_at'])
        return
    op.rename_table('clicks', 'clicks_unpartitioned')
    op.execute('ALTER TABLE clicks_unpartitioned RENAME CONSTRAINT pk_clicks TO pk_clicks_unpartitioned')
    _create_clicks(['click_id', 'occurred_at'], postgresql_partition_by='RANGE (occurred_at)')
    op.execute('CREATE TABLE clicks_default PARTITION OF clicks DEFAULT')
    # Months of UTC, whatever the session's time zone.
    stored = op.get_bind().execute(sa.text(
        "SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')"
        " FROM clicks_unpartitioned"
    )).scalars()
    months = {month.replace(tzinfo=UTC) for month in stored}
    month = _month_start(datetime.now(UTC))
    for _ in range(AHEAD + 1):
        months.add(month)
        month = _month_after(month)
    for start in sorted(months):
        end = _month_after(start)
        op.execute(
            f"CREATE TABLE clicks_{start:%Y_%m} PARTITION OF clicks FOR VALUES"
            f" FROM ('{start:%Y-%m-%d %H:%M:%S}+00') TO ('{end:%Y-%m-%d %H:%M:%S}+00')"
        )
    op.execute(f'INSERT INTO clicks ({COLUMNS}) SELECT {COLUMNS} FROM clicks_unpartitioned')
    op.drop_table('clicks_unpartitioned')


def downgrade() -> None:
    # Keyed by the click id alone again: of two rows of one id (at two times), the earliest stays.
    op.execute(
        'DELETE FROM clicks WHERE EXISTS (SELECT 1 FROM clicks AS earlier'
        ' WHERE earlier.click_id = clicks.click_id AND earlier.occurred_at < clicks.occurred_at)'
    )
    if op.get_bind().dialect.name != 'postgresql':
        with op.batch_alter_table('clicks', recreate='always') as batch_op:
            batch_op.drop_constraint('pk_clicks', type_='primary')
            batch_op.create_primary_key(op.f('pk_clicks'), ['click_id'])
        return
    op.rename_table('clicks', 'clicks_partitioned')
    op.execute('ALTER TABLE clicks_partitioned RENAME CONSTRAINT pk_clicks TO pk_clicks_partitioned')
    _create_clicks(['click_id'])
    op.execute(f'INSERT INTO clicks ({COLUMNS}) SELECT {COLUMNS} FROM clicks_partitioned')
    op.drop_table('clicks_partitioned')  # and its partitions with it


def _create_clicks(key: list[str], **options: str) -> None:
    op.create_table('clicks',
    sa.Column('click_id', sa.String(length=32), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('via_qr', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_bot', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('bot_reason', sa.String(length=64), nullable=True),
    sa.Column('device', sa.String(length=16), nullable=False),
    sa.Column('os', sa.String(length=64), nullable=False),
    sa.Column('browser', sa.String(length=64), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('referrer_host', sa.String(length=255), nullable=True),
    sa.Column('language', sa.String(length=35), nullable=True),
    sa.Column('visitor_id', sa.String(length=32), nullable=False),
    sa.Column('referrer_site', sa.String(length=255), nullable=True),
    sa.Column('is_test', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.PrimaryKeyConstraint(*key, name=op.f('pk_clicks')),
    **options,
    )


def _month_start(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def _month_after(start: datetime) -> datetime:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
