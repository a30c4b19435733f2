"""printed codes: slugs unique whatever their letter case, the slugs a link had, fallback URLs

A code printed in capitals, or with a slug renamed since, keeps working: `links.slug_key` is
the slug in lower case (unique per domain, what resolution looks up) and `slug_history` keeps
each slug a link gave up. Refuses to run while two links of one domain have slugs that differ
only in letter case, and lists them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    clashes = op.get_bind().execute(sa.text(
        "SELECT domain, lower(slug) FROM links GROUP BY domain, lower(slug) "
        "HAVING COUNT(*) > 1 ORDER BY domain, lower(slug)"
    )).all()
    if clashes:
        listed = []
        for domain, key in clashes[:20]:
            slugs = op.get_bind().execute(sa.text(
                "SELECT id, slug FROM links WHERE domain = :domain AND lower(slug) = :key "
                "ORDER BY id"
            ), {"domain": domain, "key": key}).all()
            listed.append(f"{domain}: " + ", ".join(f"{slug} (link {id_})" for id_, slug in slugs))
        raise RuntimeError(
            "slugs are now the same whatever their letter case, and these links' slugs differ "
            "only in case: " + "; ".join(listed)
            + (f" (and {len(clashes) - 20} more)" if len(clashes) > 20 else "")
            + ". Rename all but one of each (touchlink links edit SLUG --slug NEW) and retry."
        )
    with op.batch_alter_table('links') as batch:
        batch.add_column(sa.Column('slug_key', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('fallback_url', sa.Text(), nullable=True))
    op.execute("UPDATE links SET slug_key = lower(slug)")
    with op.batch_alter_table('links') as batch:
        batch.alter_column('slug_key', existing_type=sa.String(length=64), nullable=False)
        batch.drop_constraint('uq_links_domain_slug', type_='unique')
        batch.create_unique_constraint(op.f('uq_links_domain_slug_key'), ['domain', 'slug_key'])
    op.create_table('slug_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('slug_key', sa.String(length=64), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['link_id'], ['links.id'], name=op.f('fk_slug_history_link_id_links')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slug_history')),
    sa.UniqueConstraint('domain', 'slug_key', name=op.f('uq_slug_history_domain_slug_key'))
    )
    op.create_index(op.f('ix_slug_history_link_id'), 'slug_history', ['link_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_slug_history_link_id'), table_name='slug_history')
    op.drop_table('slug_history')
    with op.batch_alter_table('links') as batch:
        batch.drop_constraint('uq_links_domain_slug_key', type_='unique')
        batch.create_unique_constraint(op.f('uq_links_domain_slug'), ['domain', 'slug'])
        batch.drop_column('fallback_url')
        batch.drop_column('slug_key')
