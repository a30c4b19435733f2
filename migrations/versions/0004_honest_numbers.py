"""dated placements, archive times, first clicks and referrer sites in the rollups, the workspace
state (the time zone the rollups are cut in)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# The start of a click's UTC hour, as link_hourly_stats stores it.
HOUR_OF_CLICK = {
    'postgresql': "date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    'sqlite': "substr(occurred_at, 1, 13) || ':00:00.000000'",
}


def upgrade() -> None:
    bind = op.get_bind()
    _sqlite_foreign_keys(bind, on=False)
    op.add_column('touchpoints', sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('links', sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))
    # When they were archived is not known: as late as possible, so no past figure changes.
    op.execute("UPDATE touchpoints SET archived_at = CURRENT_TIMESTAMP WHERE archived")
    op.execute("UPDATE links SET archived_at = updated_at WHERE archived")

    op.create_table('placements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('touchpoint_id', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('count > 0', name=op.f('ck_placements_count_positive')),
    sa.CheckConstraint('ends_on IS NULL OR ends_on >= starts_on', name=op.f('ck_placements_ends_after_start')),
    sa.ForeignKeyConstraint(['touchpoint_id'], ['touchpoints.id'], name=op.f('fk_placements_touchpoint_id_touchpoints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_placements'))
    )
    op.create_index(op.f('ix_placements_touchpoint_id'), 'placements', ['touchpoint_id'], unique=False)
    # A touchpoint's exposure becomes its first placement, dated when the touchpoint was made
    # (the UTC day, as the rollups so far, whatever the server's TimeZone).
    op.execute(
        "INSERT INTO placements (touchpoint_id, count, starts_on, created_at)"
        " SELECT id, exposure, CAST(created_at AT TIME ZONE 'UTC' AS date), created_at"
        " FROM touchpoints"
        " WHERE exposure IS NOT NULL"
        if bind.dialect.name == 'postgresql' else
        "INSERT INTO placements (touchpoint_id, count, starts_on, created_at)"
        " SELECT id, exposure, date(created_at), created_at FROM touchpoints"
        " WHERE exposure IS NOT NULL"
    )
    with op.batch_alter_table('touchpoints') as batch:
        batch.drop_constraint(op.f('ck_touchpoints_exposure_positive'), type_='check')
        batch.drop_column('exposure')

    op.add_column('link_hourly_stats', sa.Column('first_click_at', sa.DateTime(timezone=True), nullable=True))
    hour = HOUR_OF_CLICK[bind.dialect.name]
    op.execute(
        "UPDATE link_hourly_stats SET first_click_at = f.first FROM ("
        f" SELECT {hour} AS hour, link_id, touchpoint_id, stage_id, min(occurred_at) AS first"
        "  FROM clicks WHERE NOT is_bot GROUP BY 1, 2, 3, 4) AS f"
        " WHERE f.hour = link_hourly_stats.hour AND f.link_id = link_hourly_stats.link_id"
        " AND f.touchpoint_id = link_hourly_stats.touchpoint_id"
        " AND f.stage_id = link_hourly_stats.stage_id"
    )

    op.add_column('clicks', sa.Column('referrer_site', sa.String(length=255), nullable=True))
    _fill_referrer_sites(bind)

    op.create_table('workspace_state',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_workspace_state'))
    )
    # Every rollup stored so far was cut in UTC days.
    op.execute("INSERT INTO workspace_state (key, value) VALUES ('rollup_timezone', 'UTC')")
    _sqlite_foreign_keys(bind, on=True)


def _sqlite_foreign_keys(bind: sa.Connection, *, on: bool) -> None:
    """SQLite drops a column by building the table again, and refuses to drop `touchpoints` or
    `links` while other rows point at them with foreign keys on; the switch only takes effect
    outside a transaction (what comes before it is committed). Back on, the rows are checked."""
    if bind.dialect.name != 'sqlite':
        return
    if on:
        broken = bind.execute(sa.text("PRAGMA foreign_key_check")).fetchall()
        if broken:
            raise RuntimeError(f"rows point at rows that do not exist: {broken[:5]}")
    with op.get_context().autocommit_block():
        # Our engines BEGIN every transaction themselves (shortener.db), even this one.
        driver = op.get_bind().connection.dbapi_connection
        if driver is not None and driver.in_transaction:
            driver.commit()
        op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _fill_referrer_sites(bind: sa.Connection) -> None:
    from analytics.referrers import referrer_site

    hosts = [h for (h,) in bind.execute(sa.text(
        "SELECT DISTINCT referrer_host FROM clicks WHERE referrer_host IS NOT NULL"
    ))]
    if not hosts:
        return
    op.execute("CREATE TEMPORARY TABLE referrer_sites (host VARCHAR(255) PRIMARY KEY, site VARCHAR(255))")
    bind.execute(
        sa.text("INSERT INTO referrer_sites (host, site) VALUES (:host, :site)"),
        [{"host": host, "site": referrer_site(host)} for host in hosts],
    )
    op.execute(
        "UPDATE clicks SET referrer_site ="
        " (SELECT site FROM referrer_sites WHERE host = clicks.referrer_host)"
        " WHERE referrer_host IS NOT NULL"
    )
    op.execute("DROP TABLE referrer_sites")


def downgrade() -> None:
    bind = op.get_bind()
    _sqlite_foreign_keys(bind, on=False)
    op.drop_table('workspace_state')
    with op.batch_alter_table('clicks') as batch:
        batch.drop_column('referrer_site')
    with op.batch_alter_table('link_hourly_stats') as batch:
        batch.drop_column('first_click_at')
    op.add_column('touchpoints', sa.Column('exposure', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE touchpoints SET exposure ="
        " (SELECT sum(count) FROM placements WHERE touchpoint_id = touchpoints.id)"
    )
    with op.batch_alter_table('touchpoints') as batch:
        batch.create_check_constraint(
            op.f('ck_touchpoints_exposure_positive'), 'exposure IS NULL OR exposure > 0'
        )
    op.drop_index(op.f('ix_placements_touchpoint_id'), table_name='placements')
    op.drop_table('placements')
    with op.batch_alter_table('links') as batch:
        batch.drop_column('archived_at')
    with op.batch_alter_table('touchpoints') as batch:
        batch.drop_column('archived_at')
    _sqlite_foreign_keys(bind, on=True)
