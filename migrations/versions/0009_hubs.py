"""hubs: link-in-bio pages at a touchpoint, each with its own link, an avatar and ordered
buttons (each button a link of its own)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hubs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=True),
    sa.Column('avatar', sa.LargeBinary(), nullable=True),
    sa.Column('avatar_type', sa.String(length=16), nullable=True),
    sa.Column('avatar_digest', sa.String(length=16), nullable=True),
    sa.Column('archived', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], name=op.f('fk_hubs_link_id_links')),
    sa.ForeignKeyConstraint(['touchpoint_id'], ['touchpoints.id'], name=op.f('fk_hubs_touchpoint_id_touchpoints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hubs')),
    sa.UniqueConstraint('link_id', name=op.f('uq_hubs_link_id'))
    )
    op.create_index(op.f('ix_hubs_touchpoint_id'), 'hubs', ['touchpoint_id'])

    op.create_table('hub_buttons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hub_id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['hub_id'], ['hubs.id'], name=op.f('fk_hub_buttons_hub_id_hubs')),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], name=op.f('fk_hub_buttons_link_id_links')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_buttons')),
    sa.UniqueConstraint('link_id', name=op.f('uq_hub_buttons_link_id'))
    )
    op.create_index(op.f('ix_hub_buttons_hub_id'), 'hub_buttons', ['hub_id'])


def downgrade() -> None:
    # The hubs' links stay: they are links like any other, with their clicks.
    op.drop_table('hub_buttons')
    op.drop_table('hubs')
