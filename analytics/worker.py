"""The ingest worker: click stream → enrich → one SQL transaction → acknowledge, each click once.

A batch is acknowledged only after its transaction commits, so a worker killed at any point
leaves its entries pending; it re-reads them on restart (or another worker reclaims them), and
the unique click id turns the replay into a no-op. The stream's side of this (reading, dead
letters, trimming) is `analytics.stream`; what a failure means is `analytics.retry`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from analytics.enrich import Enricher
from analytics.events import BadEventError, decode_entry, event_id
from analytics.ingest import store_clicks
from analytics.journeys import JourneyKeys, RetentionClock
from analytics.live import Names, RedisChannel, channel_of, publish_stored
from analytics.metrics import Metrics
from analytics.outcome_ingest import store_outcomes
from analytics.partitions import PARTITIONS_EVERY, keep_partitions_ahead
from analytics.retention import forget_old
from analytics.retry import Backoff, is_transient, store_in_parts
from analytics.scanners import BurstWatch, MultiLinkTouchpoints
from analytics.stream import ClickStream, Entry
from shortener.clicks import RawClick
from shortener.outcomes import Outcome
from shortener.redis_client import UNREACHABLE
from shortener.unit_of_work import transaction

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchResult:
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    outcomes: int = 0  # conversions and survey answers inserted
    dead_lettered: int = 0
    failed: int = 0  # left pending for a later try
    read_seconds: float = 0.0
    store_seconds: float = 0.0
    enrich_seconds: float = 0.0
    ack_seconds: float = 0.0


@dataclass(slots=True)
class _Batch:
    entries: list[Entry]
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


class IngestWorker:
    """Moves clicks from one consumer's view of the stream into SQL."""

    def __init__(
        self,
        stream: ClickStream,
        sessions: sessionmaker[Session],
        enricher: Enricher,
        metrics: Metrics,
        *,
        zone: tzinfo = UTC,
        journeys: JourneyKeys | None = None,
        journey_retention_days: int = 90,
        raw_retention_days: int | None = None,
    ) -> None:
        self.stream = stream
        self.sessions = sessions
        self.enricher = enricher
        self.metrics = metrics
        self.zone = zone
        self.journeys = journeys
        self.journey_retention_days = journey_retention_days
        self.raw_retention_days = raw_retention_days
        self._retention = RetentionClock()
        self._partitions = RetentionClock(PARTITIONS_EVERY)
        self.stats = WorkerStats()
        # Clicks that could be a mail scanner's burst wait, unacknowledged, until it would be over.
        self._bursts: BurstWatch[tuple[Entry, RawClick | Outcome]] = BurstWatch()
        self._multi_link = MultiLinkTouchpoints()
        self._live = RedisChannel(stream.client, channel_of(stream.client, stream.stream))
        self._live_names = Names()

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
        self.stream.ensure_group()
        self._maybe_make_partitions()  # the first round is due at once: at start
        bind = self.sessions.kw.get("bind")
        # A Connection (a test's transaction) belongs to one thread at a time.
        postgres_pool = isinstance(bind, Engine) and bind.dialect.name == "postgresql"
        overlap = 2 if postgres_pool else 1
        in_flight: deque[Future[BatchResult]] = deque()
        backoff = Backoff()
        with ThreadPoolExecutor(overlap, thread_name_prefix="ingest") as pool:
            while True:
                stopping = should_stop()
                try:
                    while in_flight and (
                        len(in_flight) >= overlap or stopping or in_flight[0].done()
                    ):
                        self.stats.add(in_flight.popleft().result())
                        self.stream.maybe_trim()
                    if stopping:
                        break
                    read = self._read_batch(block_ms=0 if drain else self._wait_ms(block_ms))
                except UNREACHABLE as exc:
                    pause = backoff.next()
                    log.warning("Redis is not answering (%s); retrying in %.1fs", exc, pause)
                    time.sleep(pause)
                    continue
                except Exception as exc:
                    # The batch stays pending: it is read again after the pause, nothing is lost.
                    pause = backoff.next()
                    if is_transient(exc):
                        log.warning("SQL is not answering (%s); retrying in %.1fs", exc, pause)
                    else:
                        log.exception("ingest batch failed; retrying in %.1fs", pause)
                    self.stream.read_pending_again()
                    time.sleep(pause)
                    continue
                backoff.reset()
                if read.entries:
                    in_flight.append(pool.submit(self._process, read))
                    continue
                self.stats.add(read.result)
                if in_flight:
                    wait(in_flight, timeout=1.0)  # nothing new: let the batches in hand finish
                    continue
                if len(self._bursts):
                    # Nothing new: store the held clicks now due, or all of them once drained.
                    self._release_held_when_idle(everything=drain and self.stream.caught_up)
                self._keep_tidy()  # without traffic too
                # Raw clicks (their IPs too) leave Redis soon after their commit, also when no
                # later batch comes to trim them.
                self.stream.maybe_trim()
                if drain and self.stream.caught_up:
                    # Done once nothing is pending anywhere: entries a dead consumer left behind
                    # are reclaimed when idle long enough, so wait for them too.
                    if not self.stream.pending():
                        break
                    time.sleep(0.2)
        if len(self._bursts):
            self._release_held_when_idle(everything=True)
        self.stream.trim()
        return self.stats

    def consume_batch(self, *, block_ms: int = 0) -> BatchResult:
        """Read a batch (own pending, reclaimed, then new entries), store all of it (held clicks
        included), acknowledge it."""
        read = self._read_batch(block_ms)
        return self._process(read, everything=True) if read.entries else read.result

    def _wait_ms(self, block_ms: int) -> int:
        """How long a read may block: not past the moment the next held click is due."""
        due = self._bursts.next_due()
        if due is None:
            return block_ms
        return max(1, min(block_ms, int((due - time.time()) * 1000) + 1))

    def _read_batch(self, block_ms: int) -> _Batch:
        result = BatchResult()
        started = time.perf_counter()
        entries, redelivered = self.stream.read(block_ms)
        result.read_seconds = time.perf_counter() - started
        result.read = len(entries)
        return _Batch(entries, redelivered, result)

    def _process(self, batch: _Batch, *, everything: bool = False) -> BatchResult:
        """Store a batch read from the stream, then acknowledge it (dead letters included). Clicks
        that could be part of a burst are held back, and those held now due join it."""
        good: list[tuple[Entry, RawClick | Outcome]] = []
        bad: list[Entry] = []
        clicks: list[tuple[tuple[Entry, RawClick | Outcome], RawClick]] = []
        for entry in batch.entries:
            event = _decode(entry)
            if event is None:
                bad.append(entry)
            elif isinstance(event, RawClick):
                clicks.append(((entry, event), event))
            else:
                good.append((entry, event))
        if clicks:
            good += self._bursts.hold(clicks, self._multi_link_touchpoints())
        return self._store_and_ack(good, bad, batch, everything=everything)

    def _release_held_when_idle(self, *, everything: bool) -> None:
        """Store the held clicks now due. If SQL or Redis fails, they are still pending on the
        stream: read again (and held again) by the next read, or at the next start."""
        try:
            self.stats.add(
                self._store_and_ack([], [], _Batch([], False, BatchResult()), everything=everything)
            )
        except Exception as exc:
            log.warning("storing the held clicks failed (%s); reading them again", exc)
            self.stream.read_pending_again()

    def _multi_link_touchpoints(self) -> frozenset[int]:
        with self.sessions() as session:
            return self._multi_link.ids(session)

    def _store_and_ack(
        self,
        good: list[tuple[Entry, RawClick | Outcome]],
        bad: list[Entry],
        batch: _Batch,
        *,
        everything: bool,
    ) -> BatchResult:
        result = batch.result
        released, bursts = self._bursts.release(time.time(), everything=everything)
        good += released
        if not good and not bad:
            return result
        stored, rejected, failed = self._store(good, result, bursts)
        bad += rejected
        if batch.redelivered and failed:
            worn_out = self.stream.worn_out(failed)
            bad += worn_out
            failed = [e for e in failed if e not in worn_out]
        result.failed = len(failed)
        if failed:
            self.stream.read_pending_again()  # try them again, one delivery later

        started = time.perf_counter()
        self.stream.dead_letter(bad)
        self.stream.ack([*stored, *bad])
        result.ack_seconds = time.perf_counter() - started
        result.dead_lettered = len(bad)
        self.metrics.dead_lettered.inc(len(bad))
        self._keep_tidy()
        self.metrics.batch_seconds.observe(
            time.perf_counter() - started + result.read_seconds + result.store_seconds
        )
        return result

    def _store(
        self, good: list[tuple[Entry, RawClick | Outcome]], result: BatchResult, bursts: set[str]
    ) -> tuple[list[Entry], list[Entry], list[Entry]]:
        """Store the clicks and outcomes: (entries stored, rejected for good, failed this time).

        A transient error (SQL away) propagates, so the loop waits and retries the same entries.
        """
        if not good:
            return [], [], []
        started = time.perf_counter()

        def store(part: Sequence[tuple[Entry, RawClick | Outcome]]) -> list[str]:
            """One transaction; the ids of the events that can never be stored."""
            clicks = [e for _, e in part if isinstance(e, RawClick)]
            outcomes = [e for _, e in part if not isinstance(e, RawClick)]
            now = datetime.now(UTC)
            with transaction(self.sessions) as session:
                stored = store_clicks(
                    session, clicks, self.enricher, now=now, zone=self.zone,
                    journeys=self.journeys, bursts=bursts,
                )
                kept = store_outcomes(
                    session, outcomes, now=now, zone=self.zone, journeys=self.journeys
                )
            # Committed: now the live feed, of the clicks stored this time (not a replay's).
            publish_stored(self._live, self.sessions, self._live_names, stored.stored)
            result.enrich_seconds += stored.enrich_seconds
            result.inserted += stored.inserted
            result.outcomes += kept.conversions + kept.answers
            result.duplicates += stored.duplicates + kept.duplicates
            self.metrics.clicks_ingested.inc(stored.inserted)
            self.metrics.outcomes_ingested.labels("conversion").inc(kept.conversions)
            self.metrics.outcomes_ingested.labels("answer").inc(kept.answers)
            self.metrics.duplicates_skipped.inc(stored.duplicates + kept.duplicates)
            self.metrics.journey_touches.inc(stored.touches)
            return [event_id(e) for e in (*stored.rejected, *kept.rejected)]

        done, failures = store_in_parts(store, good)
        result.store_seconds += time.perf_counter() - started
        gone = {event for rejected in done for event in rejected}
        failed = []
        for (entry, _), why in failures:
            entry.error = why
            failed.append(entry)
        stored, rejected = [], []
        for entry, event in good:
            if entry.error is not None:
                continue
            if event_id(event) in gone:
                entry.error = f"link {event.link_id} does not exist"
                rejected.append(entry)
            else:
                stored.append(entry)
        return stored, rejected, failed

    def _keep_tidy(self) -> None:
        """Now and then, after a batch or when idle: old journeys and raw clicks go, partitions
        ahead are made. A failure (SQL away, a partition's lock not had in time) is tried again
        at the next due; the batch in hand is acknowledged already."""
        try:
            self._maybe_forget_journeys()
        except Exception as exc:
            log.warning("forgetting old journeys failed (%s); trying again later", exc)
        self._maybe_make_partitions()

    def _maybe_make_partitions(self) -> None:
        """This month's partition of the raw clicks and the next ones (PostgreSQL), now and then,
        in the thread that stores batches (as `_maybe_forget_journeys`)."""
        if self._partitions.due():
            keep_partitions_ahead(self.sessions)

    def _maybe_forget_journeys(self) -> None:
        """Journeys past their retention go, touches and all, and raw clicks past theirs (now and
        then, in the thread that stores batches: a test's connection is one thread's)."""
        if not self._retention.due():
            return
        with transaction(self.sessions) as session:
            forgotten = forget_old(
                session, now=datetime.now(UTC), journey_days=self.journey_retention_days,
                raw_days=self.raw_retention_days, zone=self.zone,
            )
        if forgotten.journeys:
            log.info("forgot %d journeys past their retention", forgotten.journeys)
        if forgotten.clicks:
            log.info("deleted %d raw clicks past their retention", forgotten.clicks)
        self.metrics.journeys_forgotten.inc(forgotten.journeys)


def _decode(entry: Entry) -> RawClick | Outcome | None:
    if entry.fields is None:
        entry.error = "entry deleted from the stream"
        return None
    try:
        return decode_entry(entry.fields)
    except BadEventError as exc:
        entry.error = str(exc)
        return None
