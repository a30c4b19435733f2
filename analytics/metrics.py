"""Prometheus metrics of click capture and ingest, in a registry of the process's own."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from analytics.stream import shard_backlog
from shortener.redis_client import ERRORS, Client


class Metrics:
    """The collectors of one runtime. Built by the composition root, never at import, so that two
    runtimes in one process (tests, a command beside the app) never clash in a global registry."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.clicks_captured = Counter(
            "touchlink_clicks_captured", "Clicks handed to the sink by redirects", registry=registry
        )
        self.clicks_spooled = Counter(
            "touchlink_clicks_spooled", "Clicks spooled locally while Redis was away",
            registry=registry,
        )
        self.clicks_ingested = Counter(
            "touchlink_clicks_ingested", "Clicks newly stored in SQL", registry=registry
        )
        self.duplicates_skipped = Counter(
            "touchlink_clicks_duplicates_skipped", "Clicks already stored, skipped on replay",
            registry=registry,
        )
        self.journey_touches = Counter(
            "touchlink_journey_touches", "Human clicks stored as touches of a journey",
            registry=registry,
        )
        self.outcomes_ingested = Counter(
            "touchlink_outcomes_ingested", "Conversions and survey answers newly stored in SQL",
            labelnames=("kind",), registry=registry,
        )
        self.journeys_forgotten = Counter(
            "touchlink_journeys_forgotten", "Journeys deleted past their retention",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "touchlink_clicks_dead_lettered", "Clicks set aside as dead letters", registry=registry
        )
        self.batch_seconds = Histogram(
            "touchlink_ingest_batch_seconds",
            "Time to read, enrich and store one ingest batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )


class BacklogCollector(Collector):
    """Each shard's backlog, read from Redis when the worker's metrics are scraped: the stream's
    length, its pending entries and the age of the oldest. A shard whose Redis does not answer
    is left out of that scrape (and `touchlink_stream_up` says 0 for it)."""

    def __init__(self, client: Client, streams: Sequence[str]) -> None:
        self._client = client
        self._streams = list(streams)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "touchlink_stream_up", "Whether the shard's Redis answered", labels=["stream"]
        )
        length = GaugeMetricFamily(
            "touchlink_stream_length", "Entries in the shard's stream", labels=["stream"]
        )
        pending = GaugeMetricFamily(
            "touchlink_stream_pending", "Entries delivered and not acknowledged",
            labels=["stream"],
        )
        oldest = GaugeMetricFamily(
            "touchlink_stream_oldest_pending_seconds", "Age of the oldest pending entry",
            labels=["stream"],
        )
        for stream in self._streams:
            try:
                backlog = shard_backlog(self._client, stream)
            except ERRORS:
                up.add_metric([stream], 0)
                continue
            up.add_metric([stream], 1)
            length.add_metric([stream], backlog.length)
            pending.add_metric([stream], backlog.pending)
            oldest.add_metric([stream], backlog.oldest_pending_seconds)
        yield from (up, length, pending, oldest)
