"""links, touchpoints, stages, api keys, clicks and rollups

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('admin', 'marketer', 'analyst')", name=op.f('ck_api_keys_role_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_table('stages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stages')),
    sa.UniqueConstraint('key', name=op.f('uq_stages_key'))
    )
    op.create_table('touchpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=True),
    sa.Column('exposure', sa.Integer(), nullable=True),
    sa.Column('archived', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("channel IN ('digital', 'physical', 'human', 'hybrid')", name=op.f('ck_touchpoints_channel_known')),
    sa.CheckConstraint('exposure IS NULL OR exposure > 0', name=op.f('ck_touchpoints_exposure_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_touchpoints')),
    sa.UniqueConstraint('key', name=op.f('uq_touchpoints_key'))
    )
    op.create_table('visitor_salts',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('salt', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_visitor_salts'))
    )
    op.create_table('links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('destination', sa.Text(), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('campaign', sa.String(length=200), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=True),
    sa.Column('redirect_status', sa.Integer(), server_default='302', nullable=False),
    sa.Column('utm', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('archived', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('redirect_status IN (301, 302, 307, 308)', name=op.f('ck_links_redirect_status_known')),
    sa.ForeignKeyConstraint(['stage_id'], ['stages.id'], name=op.f('fk_links_stage_id_stages')),
    sa.ForeignKeyConstraint(['touchpoint_id'], ['touchpoints.id'], name=op.f('fk_links_touchpoint_id_touchpoints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_links')),
    sa.UniqueConstraint('domain', 'slug', name=op.f('uq_links_domain_slug'))
    )
    op.create_index(op.f('ix_links_campaign'), 'links', ['campaign'], unique=False)
    op.create_index(op.f('ix_links_stage_id'), 'links', ['stage_id'], unique=False)
    op.create_index(op.f('ix_links_touchpoint_id'), 'links', ['touchpoint_id'], unique=False)
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
    sa.PrimaryKeyConstraint('click_id', name=op.f('pk_clicks'))
    )
    op.create_table('daily_visitors',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('visitor_id', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('day', 'link_id', 'visitor_id', name=op.f('pk_daily_visitors'))
    )
    op.create_table('link_hourly_stats',
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('scans', sa.Integer(), nullable=False),
    sa.Column('bot_clicks', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.Column('last_click_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('hour', 'link_id', 'touchpoint_id', 'stage_id', name=op.f('pk_link_hourly_stats'))
    )
    op.create_index('ix_link_hourly_stats_hour_touchpoint_id', 'link_hourly_stats', ['hour', 'touchpoint_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_link_hourly_stats_hour_touchpoint_id', table_name='link_hourly_stats')
    op.drop_table('link_hourly_stats')
    op.drop_table('daily_visitors')
    op.drop_table('clicks')
    op.drop_index(op.f('ix_links_touchpoint_id'), table_name='links')
    op.drop_index(op.f('ix_links_stage_id'), table_name='links')
    op.drop_index(op.f('ix_links_campaign'), table_name='links')
    op.drop_table('links')
    op.drop_table('visitor_salts')
    op.drop_table('touchpoints')
    op.drop_table('stages')
    op.drop_table('api_keys')
