"""The composition root: `create_app()` builds every long-lived part of a process once (settings,
engine, sessions, Redis clients, link cache, enricher, click sink, metrics) into one frozen
runtime, and hands it to the link side and the click side to register their views and commands.

`app` (for WSGI servers: `granian --interface wsgi wsgi:app`) is built on first access, so that
importing this module connects to nothing and reads no environment.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from datetime import timedelta
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import Connection, Engine
from werkzeug.middleware.proxy_fix import ProxyFix

import analytics.app
import analytics.demo
import migrations
import shortener.app
from analytics import dimension_rollups, rollups
from analytics.enrich import is_bot, make_enricher
from analytics.figures import RollupFigures
from analytics.journeys import JourneyKeys
from analytics.metrics import Metrics
from analytics.runtime import Runtime, runtime
from analytics.sinks import make_sink
from shortener import demo, domains, stages
from shortener.db import make_engine, make_sessionmaker, utcnow
from shortener.domains import DomainMap
from shortener.journey_cookie import JourneyCapture
from shortener.outcomes import ClickTokens
from shortener.redis_client import connect
from shortener.resolver import LinkResolver
from shortener.settings import Settings, SettingsError
from shortener.signin_limiter import FAILURE_WINDOW, MAX_FAILURES, SignInLimiter
from shortener.unit_of_work import publish_changes_after_commit, transaction

# The redirect path must not hang on a sick Redis: it gives up after this and falls back.
HOT_PATH_REDIS_TIMEOUT = 0.05


def create_app(
    settings: Settings | None = None, *, bind: Engine | Connection | None = None
) -> Flask:
    """The app; `bind` (an Engine, or a test's Connection) replaces the configured database."""
    if settings is None:
        settings = Settings.from_env(os.environ)
    for package in ("shortener", "analytics"):
        logging.getLogger(package).setLevel(settings.log_level)
    rt = build_runtime(settings, bind=bind)
    # The link side owns the base templates and the static files.
    app = Flask("shortener", instance_path=os.path.abspath(settings.instance_path))
    shortener.app.init_app(app, rt)
    analytics.app.init_app(app)
    for command in (db_cli, init_command, run_command):
        app.cli.add_command(command)
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.proxy_hops,
            x_proto=settings.proxy_hops,
            x_host=settings.proxy_hops,
        )
    return app


def build_runtime(settings: Settings, *, bind: Engine | Connection | None = None) -> Runtime:
    engine = bind.engine if bind is not None else make_engine(settings.database_url)
    sessions = make_sessionmaker(bind if bind is not None else engine)
    report_sessions = (
        make_sessionmaker(make_engine(settings.reports_database_url))
        if settings.reports_database_url else sessions
    )
    client = fast = subscriber = None
    if settings.redis_url:
        url, cluster = settings.redis_url, settings.redis_cluster
        client = connect(url, cluster=cluster, socket_connect_timeout=2, socket_timeout=5)
        fast = connect(
            url,
            cluster=cluster,
            socket_connect_timeout=HOT_PATH_REDIS_TIMEOUT,
            socket_timeout=HOT_PATH_REDIS_TIMEOUT,
        )
        # Listening for edits blocks on its socket: no timeout at all.
        subscriber = connect(url, cluster=cluster)
    resolver = LinkResolver(sessions, fast, subscriber=subscriber, ttl=settings.cache_ttl)
    publish_changes_after_commit(sessions, resolver)
    metrics = Metrics()
    enricher = make_enricher(settings.geoip_mmdb)
    journey_keys = JourneyKeys.of(settings.secret_key, days=settings.journey_days)
    sink = make_sink(
        settings,
        sessions=sessions,
        redis_client=client,
        fast_redis=fast,
        enricher=enricher,
        metrics=metrics,
        journey_keys=journey_keys,
        # A Connection (a test's transaction) is used by one thread at a time: the embedded sink
        # stores each click in the thread that emits it rather than in a thread of its own.
        inline=isinstance(bind, Connection),
    )
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        report_sessions=report_sessions,
        redis=client,
        fast_redis=fast,
        resolver=resolver,
        domains=DomainMap(
            sessions, ttl=settings.cache_ttl, seeds=(settings.short_host, *settings.short_domains)
        ),
        signin_limiter=SignInLimiter(client, limit=MAX_FAILURES, window=FAILURE_WINDOW),
        journeys=JourneyCapture(
            settings.journeys, days=settings.journey_days, is_bot=is_bot,
            honour_signals=settings.privacy_signals == "count",
        ),
        is_bot=is_bot,
        click_tokens=ClickTokens(settings.secret_key),
        sink=sink,
        figures=RollupFigures(),
        enricher=enricher,
        metrics=metrics,
        journey_keys=journey_keys,
    )


def __getattr__(name: str) -> Any:
    if name == "app":
        return create_app()
    raise AttributeError(name)


db_cli = click.Group("db", help="The database schema.")


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the schema to the latest version (SQLite or PostgreSQL)."""
    rt = runtime()
    migrations.upgrade(rt.engine, revision)
    click.echo(f"Database at {migrations.current_revision(rt.engine)}.")
    if revision == "head":
        _cut_rollups_in_the_time_zone(rt)
        _seed_domains(rt)


def _seed_domains(rt: Runtime) -> None:
    """TOUCHLINK_BASE_URL's host and TOUCHLINK_SHORT_DOMAINS as short domains; what moved."""
    with transaction(rt.sessions) as session:
        for line in domains.seed(session, rt.settings.short_host, rt.settings.short_domains):
            click.echo(line)


def _cut_rollups_in_the_time_zone(rt: Runtime) -> None:
    with transaction(rt.sessions) as session:
        if rollups.ensure_zone(session, rt.settings.zone):
            click.echo(f"Rebuilt the daily rollups for the time zone {rt.settings.timezone}.")
        if dimension_rollups.ensure_dimension_zone(session, rt.settings.zone):
            click.echo(f"Counted the breakdowns in {rt.settings.timezone} from the clicks.")


def _init(preset: str, with_demo: bool) -> bool:
    """Migrate and create the stage model (and the demo); True when the demo account exists."""
    rt = runtime()
    migrations.upgrade(rt.engine)
    _cut_rollups_in_the_time_zone(rt)
    _seed_domains(rt)
    with transaction(rt.sessions) as session:
        stages.apply_preset(session, preset)
        if not with_demo:
            return False
        since = utcnow() - timedelta(days=analytics.demo.DAYS + 1)
        created = demo.seed_demo(
            session, domain=rt.settings.short_host, since=since, zone=rt.settings.zone
        )
        if created:
            clicks = analytics.demo.seed_demo_clicks(
                session, rt.enricher, now=utcnow(), zone=rt.settings.zone,
                journeys=rt.journey_keys,
            )
            click.echo(
                f"Seeded the demo workspace: {created} touchpoints with their links, "
                f"and {clicks:,} clicks over the last {analytics.demo.DAYS} days."
            )
        if demo.seed_demo_user(session):
            click.echo(f"Created the demo account {demo.DEMO_EMAIL}.")
        return demo.has_demo_user(session)


@click.command("init")
@click.option(
    "--stages",
    "preset",
    default="classic",
    show_default=True,
    type=click.Choice(sorted(stages.PRESETS)),
    help="The journey's stage model.",
)
@click.option("--demo", "with_demo", is_flag=True, help="Add demo touchpoints and links.")
@with_appcontext
def init_command(preset: str, with_demo: bool) -> None:
    """Migrate the database and create the stage model (and, with --demo, a demo workspace)."""
    _init(preset, with_demo)


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option(
    "--demo/--no-demo",
    "with_demo",
    default=True,
    show_default=True,
    help="Seed the demo workspace if the database has no touchpoints yet.",
)
def run_command(host: str, port: int, with_demo: bool) -> None:
    """Migrate, seed, and serve Touchlink (for production, see the README: granian)."""
    from flask import current_app
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    served = f"http://localhost:{port}"
    replaced = None
    if not os.environ.get("TOUCHLINK_BASE_URL") and runtime().settings.base_url != served:
        # Short URLs (and the banner) name the port really served.
        os.environ["TOUCHLINK_BASE_URL"] = served
        replaced, app = runtime(), create_app()
    with app.app_context():
        demo_account = _init(stages.DEFAULT_PRESET, with_demo)
        rt = runtime()
    if replaced is not None:
        replaced.close()  # once the schema is there: closing a sink looks after old journeys
    database = rt.engine.url.render_as_string(hide_password=True)
    click.echo(f"Touchlink is running at {rt.settings.base_url}  (database: {database})")
    if demo_account:
        click.echo(
            f"Sign in at {rt.settings.base_url}/signin as {demo.DEMO_EMAIL}, "
            f"password {demo.DEMO_PASSWORD}"
        )
    # SIGTERM's default action ends the process on the spot; exit through `finally` instead, so
    # that the clicks still queued in this process are handed on.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run_simple(host, port, app, threaded=True)
    finally:
        rt.close()


def main() -> None:
    """The `touchlink` console script."""
    group = FlaskGroup(create_app=_create_app_for_cli, add_default_commands=False)
    group.name = "touchlink"
    group.help = "Touchlink: branded short links, QR codes and click analytics."
    group.main(prog_name="touchlink")


def _create_app_for_cli() -> Flask:
    try:
        return create_app()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
