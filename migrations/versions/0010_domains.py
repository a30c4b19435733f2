"""domains: the hosts that serve short links, one the default

Every host the links already use becomes a domain; the most used one is the default until the
service starts and seeds TOUCHLINK_BASE_URL's host.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def _hostname(host: str) -> str:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.strip("[]").rstrip(".").lower()


def upgrade() -> None:
    domains = op.create_table('domains',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('is_default', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('fallback_url', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domains')),
    sa.UniqueConstraint('host', name=op.f('uq_domains_host')),
    sa.UniqueConstraint('hostname', name=op.f('uq_domains_hostname'))
    )
    used = op.get_bind().execute(
        sa.text("SELECT domain, COUNT(*) FROM links GROUP BY domain ORDER BY COUNT(*) DESC, domain")
    ).all()
    by_name: dict[str, list[str]] = {}
    for host, _ in used:
        by_name.setdefault(_hostname(host), []).append(host)
    clash = {name: hosts for name, hosts in by_name.items() if len(hosts) > 1}
    if clash:
        raise RuntimeError(
            "links use hosts that differ only by port or letter case, which would be one domain: "
            + "; ".join(", ".join(hosts) for hosts in clash.values())
            + ". Move the links of all but one of each (UPDATE links SET domain = …) and retry."
        )
    op.bulk_insert(domains, [
        {"host": host, "hostname": _hostname(host), "is_default": i == 0}
        for i, (host, _) in enumerate(used)
    ])


def downgrade() -> None:
    op.drop_table('domains')
