"""scanner clicks: the rollups count mail scanners' fetches (bot_reason `scanner:…`) apart, as a
part of their bot clicks

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('link_hourly_stats', 'touchpoint_stats'):
        op.add_column(table, sa.Column('scanner_clicks', sa.Integer(), server_default='0',
                                       nullable=False))


def downgrade() -> None:
    for table in ('touchpoint_stats', 'link_hourly_stats'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('scanner_clicks')
