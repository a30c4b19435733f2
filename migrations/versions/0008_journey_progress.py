"""journey progress: each journey's summary so far, which later touches extend

Existing journeys start without one: the first touch they get summarizes them from their touches.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('journeys') as batch:
        batch.add_column(sa.Column('progress', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('journeys') as batch:
        batch.drop_column('progress')
