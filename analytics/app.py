"""Wires the click side into the app: the sink the redirect uses, and the analytics commands."""

from __future__ import annotations

import atexit
from pathlib import Path

from flask import Flask

from analytics import api, cli, dashboard, detail_api, health
from analytics.enrich import make_enricher
from analytics.report_cli import report_cli
from analytics.sinks import BufferedSQLSink, RedisStreamSink
from shortener.clicks import ClickSink
from shortener.runtime import Runtime


def make_sink(rt: Runtime) -> ClickSink:
    """Redis stream when TOUCHLINK_REDIS_URL is set; otherwise the in-process buffer to SQL."""
    settings = rt.settings
    sink: RedisStreamSink | BufferedSQLSink
    if rt.redis is not None and rt.fast_redis is not None:
        sink = RedisStreamSink(
            # The flusher thread is off the request path: give it the patient client, so that
            # a busy process (GIL contention) does not mistake a slow reply for a dead Redis.
            # Strict capture waits inside the request, so it gets the hot path's short timeout.
            rt.fast_redis if settings.strict_capture else rt.redis,
            settings.stream,
            spool_dir=Path(settings.spool_dir),
            interval=settings.flush_interval,
            strict=settings.strict_capture,
        )
    else:
        sink = BufferedSQLSink(rt.sessions, lambda: make_enricher(settings.geoip_mmdb))
    # Clicks queued in memory are handed on when the process exits normally (SIGTERM included).
    atexit.register(sink.close)
    return sink


def init_app(app: Flask) -> None:
    app.register_blueprint(api.bp)
    app.register_blueprint(detail_api.bp)
    app.register_blueprint(health.bp)
    dashboard.init_app(app)
    app.cli.add_command(report_cli)
    cli.init_app(app)
