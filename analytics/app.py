"""Wires the click side into the app: the sink the redirect uses, and the analytics commands."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from analytics import api, cli
from analytics.report_cli import report_cli
from analytics.enrich import make_enricher
from analytics.sinks import BufferedSQLSink, RedisStreamSink
from shortener.clicks import ClickSink
from shortener.runtime import Runtime


def make_sink(rt: Runtime) -> ClickSink:
    """Redis stream when TOUCHLINK_REDIS_URL is set; otherwise the in-process buffer to SQL."""
    settings = rt.settings
    if rt.fast_redis is not None:
        return RedisStreamSink(
            rt.fast_redis,
            settings.stream,
            spool_dir=Path(settings.spool_dir),
            interval=settings.flush_interval,
            strict=settings.strict_capture,
        )
    return BufferedSQLSink(rt.sessions, lambda: make_enricher(settings.geoip_mmdb))


def init_app(app: Flask) -> None:
    app.register_blueprint(api.bp)
    app.cli.add_command(report_cli)
    cli.init_app(app)
