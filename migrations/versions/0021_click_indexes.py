"""click indexes: the raw clicks of one touchpoint, and of one link, in time order, for the
breakdowns of a touchpoint's and a link's page (the only readers of raw clicks by touchpoint or
link); on PostgreSQL each partition gets its own

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_clicks_touchpoint_id_occurred_at', 'clicks', ['touchpoint_id', 'occurred_at'])
    op.create_index('ix_clicks_link_id_occurred_at', 'clicks', ['link_id', 'occurred_at'])


def downgrade() -> None:
    op.drop_index('ix_clicks_link_id_occurred_at', table_name='clicks')
    op.drop_index('ix_clicks_touchpoint_id_occurred_at', table_name='clicks')
