"""go-live window: a link's `starts_at`; clicks before it are flagged `is_test` and counted in
the rollups' `test_clicks` only

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('links', sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('clicks', sa.Column('is_test', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))
    for table in ('link_hourly_stats', 'touchpoint_stats'):
        op.add_column(table, sa.Column('test_clicks', sa.Integer(), server_default='0',
                                       nullable=False))


def downgrade() -> None:
    for table in ('touchpoint_stats', 'link_hourly_stats'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('test_clicks')
    with op.batch_alter_table('clicks') as batch:
        batch.drop_column('is_test')
    with op.batch_alter_table('links') as batch:
        batch.drop_column('starts_at')
