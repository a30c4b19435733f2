"""`touchlink worker`: the ingest worker, as a command."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from typing import Any

import click
import prometheus_client
from flask import Flask

from analytics import journey_rollups, rollups
from analytics.alert_watch import AlertWatch
from analytics.alerts import Notify
from analytics.dimension_rollups import ensure_dimension_zone
from analytics.mail import MailSettings
from analytics.metrics import BacklogCollector
from analytics.retry import Backoff, is_transient
from analytics.runtime import Runtime, runtime
from analytics.stream import ClickStream
from analytics.webhook_delivery import WebhookSender
from analytics.worker import IngestWorker
from shortener.unit_of_work import transaction

log = logging.getLogger(__name__)


@click.command("worker")
@click.option("--drain", is_flag=True, help="Process until the stream is empty, then exit.")
@click.option(
    "--consumer",
    default=socket.gethostname,
    show_default="the host name",
    help="This worker's name in the consumer group; give each worker its own.",
)
@click.option("--batch-size", type=click.IntRange(1, 100_000), help="Clicks per transaction.")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve this worker's Prometheus metrics on this port.",
)
def worker_command(
    drain: bool, consumer: str, batch_size: int | None, metrics_port: int | None
) -> None:
    """Move clicks from the Redis stream (every shard of it) into SQL (the embedded default needs
    no worker)."""
    rt = runtime()
    settings = rt.settings
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    notify = Notify(MailSettings.of(settings), settings.base_url)
    sender = WebhookSender(
        rt.sessions, secret_key=settings.secret_key, allow_private=settings.webhook_allow_private,
        notify=notify,
    )
    # Alerts are evaluated every minute, and their mail sent, beside the ingest.
    watch = AlertWatch(rt.sessions, zone=settings.zone, notify=notify)
    if rt.redis is None:
        click.echo(
            "TOUCHLINK_REDIS_URL is not set: the web process stores clicks itself; this "
            "worker only sends webhooks and evaluates alerts."
        )
        if drain:
            watch.round(force=True)
            sender.send_due()
        else:
            watch.start()
            _send_webhooks_until_stopped(sender)
            watch.stop()
        return
    rt.enricher.load()  # a bad TOUCHLINK_GEOIP_MMDB stops the worker here, not each click
    stream = ClickStream(
        rt.redis,
        settings.stream,
        shards=settings.stream_shards,
        consumer=consumer,
        batch_size=batch_size or settings.batch_size,
        reclaim_idle=settings.reclaim_idle,
        max_deliveries=settings.max_deliveries,
    )
    if metrics_port:
        rt.metrics.registry.register(BacklogCollector(rt.redis, stream.streams))
        prometheus_client.start_http_server(
            metrics_port, addr="127.0.0.1", registry=rt.metrics.registry
        )
    stop = threading.Event()

    def finish_batch_then_exit(signum: int, _frame: Any) -> None:
        logging.getLogger(__name__).info("signal %d: finishing the batch in hand", signum)
        stop.set()

    signal.signal(signal.SIGTERM, finish_batch_then_exit)
    signal.signal(signal.SIGINT, finish_batch_then_exit)
    _cut_rollups_in_the_time_zone(rt, stop)
    worker = IngestWorker(
        stream,
        rt.sessions,
        rt.enricher,
        rt.metrics,
        zone=settings.zone,
        journeys=rt.journey_keys,
        journey_retention_days=settings.journey_retention_days,
        raw_retention_days=settings.raw_retention_days,
    )
    started = time.perf_counter()
    sender.start()
    watch.start()
    try:
        stats = worker.run(drain=drain, should_stop=stop.is_set).totals
    finally:
        watch.stop()
        sender.stop()
    if drain:
        watch.round(force=True)  # and with the alerts evaluated, their mail sent
        sender.send_due()  # a drain ends with nothing due left unsent
    elapsed = time.perf_counter() - started
    click.echo(
        f"worker {consumer}: {stats.inserted} clicks stored, {stats.outcomes} outcomes stored, "
        f"{stats.duplicates} duplicates "
        f"skipped, {stats.dead_lettered} dead-lettered in {elapsed:.1f}s (read "
        f"{stats.read_seconds:.1f}s, enrich {stats.enrich_seconds:.1f}s, write "
        f"{stats.store_seconds - stats.enrich_seconds:.1f}s, ack {stats.ack_seconds:.1f}s)"
    )


def _send_webhooks_until_stopped(sender: WebhookSender) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sender.start()
    stop.wait()
    sender.stop()


def _cut_rollups_in_the_time_zone(rt: Runtime, stop: threading.Event) -> None:
    """Rebuild the daily rollups if TOUCHLINK_TIMEZONE changed, and the journey rollups if it or
    the stages did; SQL away at start is waited for, as the worker waits for it later."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            with transaction(rt.sessions) as session:
                if rollups.ensure_zone(session, rt.settings.zone):
                    click.echo(f"Rebuilt the daily rollups for {rt.settings.timezone}.")
                if ensure_dimension_zone(session, rt.settings.zone):
                    click.echo(f"Counted the breakdowns in {rt.settings.timezone} from the clicks.")
                if journey_rollups.ensure(session, rt.settings.zone):
                    click.echo("Rebuilt the journey rollups.")
            return
        except Exception as exc:
            if not is_transient(exc):
                raise
            pause = backoff.next()
            log.warning("SQL is not answering (%s); retrying in %.1fs", exc, pause)
            stop.wait(pause)


def init_app(app: Flask) -> None:
    app.cli.add_command(worker_command)
