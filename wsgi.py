"""The composition root: `create_app()` wires the link side and the click side together.

`app` (for WSGI servers: `granian --interface wsgi wsgi:app`) is built on first access, so that
importing this module connects to nothing and reads no environment.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from werkzeug.middleware.proxy_fix import ProxyFix

import analytics.app
import analytics.demo
import migrations
import shortener.app
from analytics.enrich import make_enricher
from shortener import demo, stages
from shortener.db import utcnow, write_session
from shortener.runtime import Runtime, runtime
from shortener.settings import Settings, SettingsError


def default_instance_path() -> Path:
    """Where the embedded database, secret key and spool live unless configured otherwise."""
    configured = os.environ.get("TOUCHLINK_INSTANCE_PATH")
    return Path(configured) if configured else Path.cwd() / "instance"


def create_app(settings: Settings | None = None, *, bind: Any = None) -> Flask:
    if settings is None:
        settings = Settings.from_env(os.environ, instance_path=default_instance_path())
    app = shortener.app.create_app(settings, make_sink=analytics.app.make_sink, bind=bind)
    analytics.app.init_app(app)
    app.cli.add_command(db_cli)
    app.cli.add_command(init_command)
    app.cli.add_command(run_command)
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.proxy_hops,
            x_proto=settings.proxy_hops,
            x_host=settings.proxy_hops,
        )
    return app


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
    from flask import current_app

    migrations.upgrade(runtime(current_app).engine, revision)
    click.echo(f"Database at {migrations.current_revision(runtime(current_app).engine)}.")


def _init(preset: str, with_demo: bool) -> bool:
    """Migrate and create the stage model (and the demo); True when the demo account exists."""
    rt = runtime()
    migrations.upgrade(rt.engine)
    with write_session(rt.sessions) as session, session.begin():
        stages.apply_preset(session, preset)
        if not with_demo:
            return False
        created = demo.seed_demo(session, domain=rt.settings.short_host)
        if created:
            clicks = analytics.demo.seed_demo_clicks(
                session, make_enricher(rt.settings.geoip_mmdb), now=utcnow()
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

    demo_account = _init(stages.DEFAULT_PRESET, with_demo)
    rt = runtime()
    click.echo(f"Touchlink is running at {rt.settings.base_url}  (database: {_safe_url(rt)})")
    if demo_account:
        click.echo(
            f"Sign in at {rt.settings.base_url}/signin as {demo.DEMO_EMAIL}, "
            f"password {demo.DEMO_PASSWORD}"
        )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # SIGTERM's default action ends the process on the spot; exit through `finally` instead, so
    # that the clicks still queued in this process are handed on.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run_simple(host, port, app, threaded=True)
    finally:
        rt.sink.close()


def _safe_url(rt: Runtime) -> str:
    return str(rt.engine.url.render_as_string(hide_password=True))


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
