"""Prometheus metrics of click capture and ingest (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CLICKS_CAPTURED = Counter("touchlink_clicks_captured", "Clicks handed to the sink by redirects")
CLICKS_SPOOLED = Counter("touchlink_clicks_spooled", "Clicks spooled locally while Redis was away")
CLICKS_INGESTED = Counter("touchlink_clicks_ingested", "Clicks newly stored in SQL")
DUPLICATES_SKIPPED = Counter(
    "touchlink_clicks_duplicates_skipped", "Clicks already stored, skipped on replay"
)
DEAD_LETTERED = Counter(
    "touchlink_clicks_dead_lettered", "Stream entries moved to the dead-letter stream"
)
BATCH_SECONDS = Histogram(
    "touchlink_ingest_batch_seconds",
    "Time to read, enrich and store one ingest batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
