"""The ingest worker: Redis stream → enrich → one SQL transaction → XACK, each click exactly once.

A batch is acknowledged only after its transaction commits, so a worker killed at any point
leaves its entries pending; it re-reads them on restart (or another worker reclaims them), and
the unique click id turns the replay into a no-op. The stream is trimmed only below the oldest
pending entry, never by length, which would delete entries read but not yet acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from analytics import metrics
from analytics.enrich import Enricher
from analytics.events import BadEventError, decode_click
from analytics.ingest import KnownLinks, store_clicks
from shortener.clicks import RawClick
from shortener.db import write_session

log = logging.getLogger(__name__)

GROUP = "touchlink-ingest"
TRIM_EVERY = 5.0  # seconds between trims of acknowledged entries


def dead_letter_stream(stream: str) -> str:
    return f"{stream}:dead"


@dataclass(slots=True)
class BatchResult:
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: int = 0  # left pending for a later try
    read_seconds: float = 0.0
    store_seconds: float = 0.0
    enrich_seconds: float = 0.0
    ack_seconds: float = 0.0


@dataclass(slots=True)
class _Entry:
    entry_id: bytes
    fields: dict[Any, Any] | None
    click: RawClick | None = None
    error: str | None = None


@dataclass(slots=True)
class _Batch:
    entries: list[_Entry]
    redelivered: bool
    result: BatchResult


@dataclass(slots=True)
class WorkerStats:
    batches: int = 0
    totals: BatchResult = field(default_factory=BatchResult)

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        for name in BatchResult.__slots__:
            setattr(self.totals, name, getattr(self.totals, name) + getattr(result, name))


def _transient(exc: BaseException) -> bool:
    """SQL is away (down, restarting, unreachable): wait and retry; the data is not at fault."""
    if isinstance(exc, OperationalError | DisconnectionError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class IngestWorker:
    """One consumer of the click stream's consumer group."""

    def __init__(
        self,
        client: redis.Redis,
        sessions: sessionmaker[Session],
        enricher: Enricher,
        *,
        stream: str,
        consumer: str,
        batch_size: int = 1000,
        reclaim_idle: float = 60.0,
        max_deliveries: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.enricher = enricher
        self.stream = stream
        self.consumer = consumer
        self.batch_size = batch_size
        self.reclaim_idle_ms = int(reclaim_idle * 1000)
        self.max_deliveries = max_deliveries
        self._clock = clock
        self._pending_from: str | None = "0"  # re-read our own pending entries first
        self._next_reclaim = 0.0
        self._next_trim = 0.0
        self.stats = WorkerStats()
        self._known_links = KnownLinks()

    # --- the loop ------------------------------------------------------------------------------

    def run(
        self,
        *,
        drain: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        block_ms: int = 1000,
    ) -> WorkerStats:
        """Consume until `should_stop()`; with `drain`, stop once nothing is left to read.

        On PostgreSQL two batches are in flight: while one waits on the database, the next is
        enriched. Each is still its own transaction, acknowledged after its commit, and rollup
        rows are upserted in sorted order, so the two never deadlock.
        """
        self.ensure_group()
        bind = self.sessions.kw.get("bind")
        overlap = 2 if getattr(getattr(bind, "dialect", None), "name", "") == "postgresql" else 1
        in_flight: deque[Future[BatchResult]] = deque()
        backoff = 0.5
        with ThreadPoolExecutor(overlap, thread_name_prefix="ingest") as pool:
            while True:
                stopping = should_stop()
                try:
                    while in_flight and (
                        len(in_flight) >= overlap or stopping or in_flight[0].done()
                    ):
                        self.stats.add(in_flight.popleft().result())
                        self._maybe_trim()
                    if stopping:
                        break
                    read = self._read_batch(block_ms=0 if drain else block_ms)
                except redis.ConnectionError as exc:
                    log.warning("Redis is not answering (%s); retrying in %.1fs", exc, backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                except Exception as exc:
                    # The batch stays pending: it is read again after the pause, nothing is lost.
                    if _transient(exc):
                        log.warning("SQL is not answering (%s); retrying in %.1fs", exc, backoff)
                    else:
                        log.exception("ingest batch failed; retrying in %.1fs", backoff)
                    self._pending_from = "0"
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                backoff = 0.5
                if read.entries:
                    in_flight.append(pool.submit(self._process, read))
                    continue
                self.stats.add(read.result)
                if in_flight:
                    wait(in_flight, timeout=1.0)  # nothing new: let the batches in hand finish
                elif drain and self._pending_from is None:
                    # Done once nothing is pending anywhere: entries a dead consumer left behind
                    # are reclaimed when idle long enough (see _read), so wait for them too.
                    if not self.client.xpending(self.stream, GROUP)["pending"]:
                        break
                    time.sleep(0.2)
        trim_below(self.client, self.stream)
        return self.stats

    def ensure_group(self) -> None:
        try:
            # From id 0, so a group created after clicks arrived still reads all of them.
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def consume_batch(self, *, block_ms: int = 0) -> BatchResult:
        """Read a batch (own pending, reclaimed, then new entries), store it, acknowledge it."""
        read = self._read_batch(block_ms)
        return self._process(read) if read.entries else read.result

    def _read_batch(self, block_ms: int) -> _Batch:
        result = BatchResult()
        started = time.perf_counter()
        entries, redelivered = self._read(block_ms)
        result.read_seconds = time.perf_counter() - started
        result.read = len(entries)
        return _Batch(entries, redelivered, result)

    def _process(self, batch: _Batch) -> BatchResult:
        """Store a batch read from the stream, then acknowledge it (dead letters included)."""
        result = batch.result
        for entry in batch.entries:
            self._decode(entry)
        good = [e for e in batch.entries if e.click is not None]
        bad = [e for e in batch.entries if e.click is None]

        stored, rejected, failed = self._store(good, result, allow_split=True)
        bad += rejected
        if batch.redelivered and failed:
            counts = self._delivery_counts([e.entry_id for e in failed])
            worn_out = [e for e in failed if counts.get(e.entry_id, 0) >= self.max_deliveries]
            bad += worn_out
            failed = [e for e in failed if e not in worn_out]
        result.failed = len(failed)
        if failed:
            self._pending_from = "0"  # try them again, one delivery later

        started = time.perf_counter()
        self._dead_letter(bad)
        done = [e.entry_id for e in stored] + [e.entry_id for e in bad]
        if done:
            self.client.xack(self.stream, GROUP, *done)
        result.ack_seconds = time.perf_counter() - started
        result.dead_lettered = len(bad)
        metrics.DEAD_LETTERED.inc(len(bad))
        metrics.BATCH_SECONDS.observe(
            time.perf_counter() - started + result.read_seconds + result.store_seconds
        )
        return result

    # --- reading -------------------------------------------------------------------------------

    def _read(self, block_ms: int) -> tuple[list[_Entry], bool]:
        if self._pending_from is not None:
            entries = self._xreadgroup(self._pending_from, block_ms=None)
            if entries:
                self._pending_from = entries[-1].entry_id.decode()
                return entries, True
            self._pending_from = None
        now = self._clock()
        if now >= self._next_reclaim:
            self._next_reclaim = now + max(self.reclaim_idle_ms / 2000, 0.5)
            claimed = self._reclaim()
            if claimed:
                return claimed, True
        return self._xreadgroup(">", block_ms=block_ms or None), False

    def _xreadgroup(self, from_id: str, *, block_ms: int | None) -> list[_Entry]:
        try:
            reply: Any = self.client.xreadgroup(
                GROUP, self.consumer, {self.stream: from_id}, count=self.batch_size, block=block_ms
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.error(
                "The consumer group %s on %s is gone (Redis restarted without persistence?). "
                "Recreating it from the start of the stream; clicks already stored are skipped. "
                "Clicks that were only in the lost stream cannot be recovered: give Redis "
                "persistence (appendonly yes) in production.",
                GROUP,
                self.stream,
            )
            self.ensure_group()
            self._pending_from = None
            return []
        if not reply:
            return []
        _, messages = reply[0]
        return [_Entry(entry_id, fields or None) for entry_id, fields in messages]

    def _reclaim(self) -> list[_Entry]:
        """Take over entries that another (dead) consumer left pending for too long."""
        try:
            reply: Any = self.client.xautoclaim(
                self.stream,
                GROUP,
                self.consumer,
                self.reclaim_idle_ms,
                "0-0",
                count=self.batch_size,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                return []
            raise
        messages = reply[1]
        if messages:
            log.info("reclaimed %d entries left pending by another consumer", len(messages))
        return [_Entry(entry_id, fields or None) for entry_id, fields in messages]

    def _delivery_counts(self, ids: list[bytes]) -> dict[bytes, int]:
        low, high = min(ids), max(ids)
        rows: Any = self.client.xpending_range(
            self.stream, GROUP, min=low, max=high, count=len(ids) * 2
        )
        return {row["message_id"]: row["times_delivered"] for row in rows}

    @staticmethod
    def _decode(entry: _Entry) -> None:
        if entry.fields is None:
            entry.error = "entry deleted from the stream"
            return
        try:
            entry.click = decode_click(entry.fields)
        except BadEventError as exc:
            entry.error = str(exc)

    # --- storing -------------------------------------------------------------------------------

    def _store(
        self, entries: list[_Entry], result: BatchResult, *, allow_split: bool
    ) -> tuple[list[_Entry], list[_Entry], list[_Entry]]:
        """Store the entries in one transaction: (stored, rejected for good, failed this time).

        A transient error (SQL away) propagates, so the loop waits and retries the same entries;
        any other error splits the batch, so that one bad entry cannot hold back the rest.
        """
        if not entries:
            return [], [], []
        started = time.perf_counter()
        try:
            with write_session(self.sessions) as session, session.begin():
                outcome = store_clicks(
                    session,
                    [e.click for e in entries if e.click],
                    self.enricher,
                    now=datetime.now(UTC),
                    known_links=self._known_links,
                )
        except Exception as exc:
            if _transient(exc):
                raise
            if not allow_split or len(entries) == 1:
                log.warning("click %s failed: %s", entries[0].entry_id, exc)
                for entry in entries:
                    entry.error = f"{type(exc).__name__}: {str(exc)[:300]}"
                return [], [], entries
            log.exception("a batch of %d clicks failed; storing them one by one", len(entries))
            stored: list[_Entry] = []
            rejected: list[_Entry] = []
            failed: list[_Entry] = []
            for entry in entries:
                ok, gone, bad = self._store([entry], result, allow_split=False)
                stored += ok
                rejected += gone
                failed += bad
            return stored, rejected, failed
        result.store_seconds += time.perf_counter() - started
        result.enrich_seconds += outcome.enrich_seconds
        result.inserted += outcome.inserted
        result.duplicates += outcome.duplicates
        metrics.CLICKS_INGESTED.inc(outcome.inserted)
        metrics.DUPLICATES_SKIPPED.inc(outcome.duplicates)
        gone_ids = {c.click_id for c in outcome.rejected}
        stored, rejected = [], []
        for entry in entries:
            assert entry.click is not None
            if entry.click.click_id in gone_ids:
                entry.error = f"link {entry.click.link_id} does not exist"
                rejected.append(entry)
            else:
                stored.append(entry)
        return stored, rejected, []

    def _dead_letter(self, entries: list[_Entry]) -> None:
        if not entries:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                payload = {
                    b"entry_id": entry.entry_id,
                    b"error": (entry.error or "failed too often").encode(),
                    **{
                        k if isinstance(k, bytes) else str(k).encode(): v
                        for k, v in (entry.fields or {}).items()
                    },
                }
                pipe.xadd(dead_letter_stream(self.stream), payload)  # type: ignore[arg-type]
            pipe.execute()
        log.error(
            "moved %d entries to %s (first: %s)",
            len(entries),
            dead_letter_stream(self.stream),
            entries[0].error,
        )

    # --- trimming ------------------------------------------------------------------------------

    def _maybe_trim(self) -> None:
        now = self._clock()
        if now < self._next_trim:
            return
        self._next_trim = now + TRIM_EVERY
        trim_below(self.client, self.stream)


def trim_below(client: redis.Redis, stream: str) -> int:
    """Delete acknowledged entries: everything below the oldest pending or undelivered one."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return 0
    floor: bytes | None = None
    for group in groups:
        summary = client.xpending(stream, group["name"])
        if summary["pending"]:
            candidate = summary["min"]
        else:
            last = group["last-delivered-id"]
            ms, seq = last.split(b"-")
            candidate = b"%s-%d" % (ms, int(seq) + 1)
        floor = candidate if floor is None else min(floor, candidate, key=_entry_key)
    if floor is None:
        return 0
    trimmed: Any = client.xtrim(stream, minid=floor)
    return int(trimmed)


def _entry_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)
