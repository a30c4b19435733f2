"""Where the redirect hands its clicks: a Redis stream (the shard of each click's link), or
(embedded default) straight to SQL.

Neither makes the redirect wait: `emit` appends to an in-process queue that a background thread
flushes every few milliseconds, pipelining many clicks into one round trip. The price is the
window a hard-killed process loses (clicks queued but not yet flushed, at most `flush_interval`
of traffic); `strict` mode closes it by writing each click to Redis before the redirect answers.
"""

from __future__ import annotations

import logging
import multiprocessing.util
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from analytics.enrich import Enricher
from analytics.events import (
    OUTCOME_FIELD,
    click_payload,
    event_from_json,
    event_to_json,
    outcome_payload,
)
from analytics.ingest import StoreResult, store_clicks
from analytics.journeys import JourneyKeys, RetentionClock
from analytics.live import LiveHub, Names, publish_stored
from analytics.metrics import Metrics
from analytics.outcome_ingest import store_outcomes
from analytics.partitions import PARTITIONS_EVERY, keep_partitions_ahead
from analytics.retention import forget_old
from analytics.retry import Backoff, store_in_parts
from analytics.stream import shard_of, shard_streams
from shortener.clicks import RawClick
from shortener.errors import UnavailableError
from shortener.outcomes import Outcome
from shortener.ports import ClickSink
from shortener.redis_client import ERRORS, Client
from shortener.settings import Settings
from shortener.unit_of_work import transaction

log = logging.getLogger(__name__)

EMBEDDED_INTERVAL = 0.5  # seconds between batches of the embedded sink
DEAD_LETTER_FILE = "dead-clicks.jsonl"


class _Flusher:
    """A queue drained by one daemon thread per process, started on first use (fork-safe)."""

    def __init__(self, interval: float, name: str) -> None:
        self._interval = interval
        self._name = name
        self._queue: deque[RawClick] = deque()
        self._wake = threading.Event()
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._closing = False

    def put(self, click: RawClick) -> None:
        self._queue.append(click)
        if self._closing:
            self.flush()  # a request finishing after shutdown began: nobody else will flush
        elif self._pid != os.getpid():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._run, name=self._name, daemon=True).start()
            # Workers of multiprocessing-based servers (granian) leave through os._exit, which
            # skips atexit but runs these finalizers: flush the queue there too.
            multiprocessing.util.Finalize(self, self.close, exitpriority=100)

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                with self._lock:
                    self._drain()
            except Exception:
                # This thread must outlive any one bad flush, or every later click would be lost.
                log.exception("click flush failed; will retry")

    def _take(self) -> list[RawClick]:
        taken = []
        queue = self._queue
        while queue:
            taken.append(queue.popleft())
        return taken

    def _drain(self) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Hand on everything queued now, in the caller's thread."""
        with self._lock:
            self._drain()

    def close(self) -> None:
        """Flush what is queued; called at shutdown."""
        self._closing = True
        self._wake.set()
        with self._lock:
            self._drain()


# Sending N clicks as N pipelined XADDs costs the web process ~12 µs of Python per click to pack
# commands and parse replies; one script call carrying N payloads costs about one tenth of that.
_XADD_MANY = """
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'c', ARGV[i])
end
return #ARGV
"""
_XADD_CHUNK = 500  # clicks per script call, so one call never holds Redis for long


class RedisStreamSink(_Flusher):
    """Pipelines clicks into the shards of a Redis stream; spools them to local files while their
    shard's Redis (a node of a cluster, or the one server) is away."""

    def __init__(
        self,
        client: Client,
        stream: str,
        metrics: Metrics,
        *,
        spool_dir: Path,
        shards: int = 1,
        interval: float = 0.005,
        strict: bool = False,
    ) -> None:
        super().__init__(interval, "click-flusher")
        self._client = client
        self._metrics = metrics
        self._streams = shard_streams(stream, shards)
        self._spool = Spool(spool_dir)
        self._strict = strict
        self._xadd_many = client.register_script(_XADD_MANY)
        self._next_spool_look = 0.0

    def emit(self, click: RawClick) -> None:
        self._metrics.clicks_captured.inc()
        if self._strict:
            # Group commit: the request holding the lock sends every click queued meanwhile by
            # the requests waiting for it, so each answers only once its click is in Redis (or
            # spooled) while concurrent requests share one round trip.
            self._queue.append(click)
            with self._lock:
                self._drain()
        else:
            self.put(click)

    def record(self, outcome: Outcome) -> None:
        """In Redis before this returns, or (Redis away) in the spool: either way it is taken."""
        try:
            self._xadd_outcomes(self.stream_of(outcome), [outcome])
        except ERRORS as exc:
            log.warning("Redis unavailable (%s); spooling outcome %s locally", exc, outcome.id)
            self._spool.write([outcome])
            self._next_spool_look = 0.0

    def stream_of(self, event: RawClick | Outcome) -> str:
        """The shard an event goes to: its link's, or (a coupon's conversion, which has no link)
        its touchpoint's."""
        key = event.link_id if event.link_id is not None else event.touchpoint_id or 0
        return self._streams[shard_of(key, len(self._streams))]

    def flush(self) -> None:
        """Hand on everything queued now, spooled clicks included, in the caller's thread."""
        self._next_spool_look = 0.0
        super().flush()

    def _drain(self) -> None:
        clicks = self._take()
        if clicks:
            self._send(clicks)
        now = time.monotonic()
        if now >= self._next_spool_look:  # a directory listing, so not on every flush
            self._next_spool_look = now + 1.0
            if self._spool.has_files():
                self._replay_spool()

    def _send(self, clicks: list[RawClick]) -> None:
        left, error = self._deliver(clicks)
        if left:
            log.warning("Redis unavailable (%s); spooling %d clicks locally", error, len(left))
            self._spool.write(left)
            self._metrics.clicks_spooled.inc(len(left))
            self._next_spool_look = 0.0

    def _replay_spool(self) -> None:
        # An event may reach the stream twice (written, then Redis fails before we delete the
        # file): harmless, since ingest keeps the first copy of each id.
        for path in self._spool.claim():
            events = self._spool.read(path)
            left, _ = self._deliver(events)
            if events and len(left) == len(events):
                return  # nothing taken; the file keeps our pid in its name: retried later
            # Some shards took theirs: the rest wait in a spool file of their own, so that the
            # delivered ones are not sent again at every retry while a node is away.
            if left:
                self._spool.write(left)
            path.unlink()
            log.info("delivered %d spooled events from %s", len(events) - len(left), path.name)

    def _deliver(
        self, events: Sequence[RawClick | Outcome]
    ) -> tuple[list[RawClick | Outcome], Exception | None]:
        """XADD each event to its shard: the events of the shards that did not take them, and
        why (on a cluster, one node may be away while the others answer)."""
        by_stream: dict[str, list[RawClick | Outcome]] = {}
        for event in events:
            by_stream.setdefault(self.stream_of(event), []).append(event)
        left: list[RawClick | Outcome] = []
        error = None
        for stream, of_shard in by_stream.items():
            try:
                self._xadd_clicks(stream, [e for e in of_shard if isinstance(e, RawClick)])
                self._xadd_outcomes(stream, [e for e in of_shard if not isinstance(e, RawClick)])
            except ERRORS as exc:
                left += of_shard
                error = exc
        return left, error

    def _xadd_clicks(self, stream: str, clicks: Sequence[RawClick]) -> None:
        """One XADD per click, all in one command: the script loops on the server side."""
        for start in range(0, len(clicks), _XADD_CHUNK):
            chunk = clicks[start : start + _XADD_CHUNK]
            self._xadd_many(keys=[stream], args=[click_payload(c) for c in chunk])

    def _xadd_outcomes(self, stream: str, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            self._client.xadd(stream, {OUTCOME_FIELD: outcome_payload(outcome)})

    def spooled(self) -> int:
        return self._spool.count()


class BufferedSQLSink(_Flusher):
    """The embedded default: buffers clicks in process and stores them in SQL in batches.

    Failures are met as the worker meets them (see `analytics.retry`): while SQL is away the
    clicks wait in the queue and the thread pauses before trying again (never while holding the
    lock that requests take); a click that keeps failing goes to the dead-letter file in the
    spool folder. With `interval=None` each click is stored in the emitting thread (a runtime
    bound to one test connection, which only that thread may use).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        enricher: Enricher,
        metrics: Metrics,
        *,
        spool_dir: Path,
        interval: float | None = EMBEDDED_INTERVAL,
        max_deliveries: int = 5,
        zone: tzinfo = UTC,
        journeys: JourneyKeys | None = None,
        journey_retention_days: int = 90,
        raw_retention_days: int | None = None,
        live_viewers: int = 32,
    ) -> None:
        super().__init__(interval or EMBEDDED_INTERVAL, "click-writer")
        self._inline = interval is None
        self._sessions = sessions
        self._enricher = enricher
        self._metrics = metrics
        self._dead_letters = spool_dir / DEAD_LETTER_FILE
        self._max_deliveries = max_deliveries
        self._attempts: Counter[str] = Counter()
        self._backoff = Backoff()
        self._retry_at = 0.0
        self._zone = zone
        self._journeys = journeys
        self._journey_retention = journey_retention_days
        self._raw_retention = raw_retention_days
        self._retention = RetentionClock()
        self._partitions = RetentionClock(PARTITIONS_EVERY)
        # No Redis, so no channel: the live feed of this process is fed here, after each commit.
        self.live = LiveHub(max_viewers=live_viewers)
        self._live_names = Names()

    def emit(self, click: RawClick) -> None:
        self._metrics.clicks_captured.inc()
        if self._inline:
            self._queue.append(click)
            self.flush()
        else:
            self.put(click)

    def record(self, outcome: Outcome) -> None:
        """Stored in SQL before this returns; SQL away is a 503 for the caller to retry."""
        try:
            with transaction(self._sessions) as session:
                kept = store_outcomes(
                    session, [outcome], now=datetime.now(UTC), zone=self._zone,
                    journeys=self._journeys,
                )
        except SQLAlchemyError as exc:
            log.warning("could not store outcome %s: %s", outcome.id, exc)
            raise UnavailableError("The database is not answering; try again shortly.") from exc
        self._metrics.outcomes_ingested.labels("conversion").inc(kept.conversions)
        self._metrics.outcomes_ingested.labels("answer").inc(kept.answers)

    def _drain(self) -> None:
        if time.monotonic() < self._retry_at and not self._closing:
            return  # SQL was away a moment ago: the clicks wait in the queue
        clicks = self._take()
        if not clicks:
            self._maybe_forget_journeys()  # without traffic too
            return
        try:
            outcomes, failures = store_in_parts(self._store, clicks)
        except Exception as exc:  # SQL is away: store_in_parts lets nothing else through
            pause = self._backoff.next()
            log.warning(
                "SQL is not answering (%s); keeping %d clicks, retrying in %.1fs",
                exc, len(clicks), pause,
            )
            self._queue.extendleft(reversed(clicks))
            self._retry_at = time.monotonic() + pause
            return
        self._backoff.reset()
        self._retry_at = 0.0
        self._maybe_forget_journeys()
        rejected = [(c, "its link does not exist") for o in outcomes for c in o.rejected]
        retry = []
        for click, why in failures:
            self._attempts[click.click_id] += 1
            if self._attempts[click.click_id] >= self._max_deliveries:
                rejected.append((click, why))
            else:
                retry.append(click)
        self._queue.extendleft(reversed(retry))
        self._set_aside(rejected)

    def _maybe_forget_journeys(self) -> None:
        if self._partitions.due():  # PostgreSQL without Redis: no worker makes them
            keep_partitions_ahead(self._sessions)
        if not self._retention.due():
            return
        with transaction(self._sessions) as session:
            forgotten = forget_old(
                session, now=datetime.now(UTC), journey_days=self._journey_retention,
                raw_days=self._raw_retention, zone=self._zone,
            )
        self._metrics.journeys_forgotten.inc(forgotten.journeys)

    def _store(self, clicks: Sequence[RawClick]) -> StoreResult:
        with transaction(self._sessions) as session:
            result = store_clicks(
                session,
                list(clicks),
                self._enricher,
                now=datetime.now(UTC),
                zone=self._zone,
                journeys=self._journeys,
            )
        # Committed: the live feed.
        publish_stored(self.live, self._sessions, self._live_names, result.stored)
        self._metrics.clicks_ingested.inc(result.inserted)
        self._metrics.duplicates_skipped.inc(result.duplicates)
        self._metrics.journey_touches.inc(result.touches)
        return result

    def _set_aside(self, clicks: list[tuple[RawClick, str]]) -> None:
        """Dead letters: kept as JSON lines (with why) for someone to look at, never dropped."""
        if not clicks:
            return
        self._dead_letters.parent.mkdir(parents=True, exist_ok=True)
        with self._dead_letters.open("a", encoding="utf-8") as out:
            out.write("".join(f"{event_to_json(c)}\t{why}\n" for c, why in clicks))
        for click, _ in clicks:
            self._attempts.pop(click.click_id, None)
        self._metrics.dead_lettered.inc(len(clicks))
        log.error("set %d clicks aside in %s (first: %s)", len(clicks), self._dead_letters,
                  clicks[0][1])


def make_sink(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    redis_client: Client | None,
    fast_redis: Client | None,
    enricher: Enricher,
    metrics: Metrics,
    journey_keys: JourneyKeys | None = None,
    inline: bool = False,
) -> ClickSink:
    """A Redis stream when TOUCHLINK_REDIS_URL is set; otherwise the in-process buffer to SQL."""
    if redis_client is not None and fast_redis is not None:
        return RedisStreamSink(
            # The flusher thread is off the request path: give it the patient client, so that
            # a busy process (GIL contention) does not mistake a slow reply for a dead Redis.
            # Strict capture waits inside the request, so it gets the hot path's short timeout.
            fast_redis if settings.strict_capture else redis_client,
            settings.stream,
            metrics,
            spool_dir=Path(settings.spool_dir),
            shards=settings.stream_shards,
            interval=settings.flush_interval,
            strict=settings.strict_capture,
        )
    return BufferedSQLSink(
        sessions,
        enricher,
        metrics,
        spool_dir=Path(settings.spool_dir),
        interval=None if inline else EMBEDDED_INTERVAL,
        max_deliveries=settings.max_deliveries,
        zone=settings.zone,
        journeys=journey_keys,
        journey_retention_days=settings.journey_retention_days,
        raw_retention_days=settings.raw_retention_days,
        live_viewers=settings.live_viewers,
    )


class Spool:
    """Clicks and outcomes Redis could not take, as JSON lines: one file per process, fsynced
    per write.

    A process replays its own file, and the files of processes that died; never the file of a
    live process, which may still be appending to it.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._lock = threading.Lock()

    def write(self, events: Sequence[RawClick | Outcome]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._lock, self._own().open("a", encoding="utf-8") as out:
            out.write("".join(event_to_json(e) + "\n" for e in events))
            out.flush()
            os.fsync(out.fileno())

    def has_files(self) -> bool:
        return self._dir.is_dir() and any(self._dir.glob("clicks-*"))

    def claim(self) -> list[Path]:
        """Take the files this process may replay, renamed so that no other process takes them."""
        claimed = []
        with self._lock:
            for path in sorted(self._dir.glob("clicks-*")):
                owner = _owner_pid(path)
                if owner != os.getpid() and _alive(owner):
                    continue
                target = self._dir / f"clicks-{os.getpid()}-{time.time_ns()}.replay"
                try:
                    path.rename(target)
                except FileNotFoundError:
                    continue  # another process claimed it first
                claimed.append(target)
        return claimed

    def read(self, path: Path) -> list[RawClick | Outcome]:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [event_from_json(line) for line in lines if line.strip()]

    def count(self) -> int:
        if not self._dir.is_dir():
            return 0
        total = 0
        for path in self._dir.glob("clicks-*"):
            try:
                with path.open(encoding="utf-8") as lines:
                    total += sum(1 for _ in lines)
            except FileNotFoundError:
                continue  # replayed and deleted meanwhile
        return total

    def _own(self) -> Path:
        return self._dir / f"clicks-{os.getpid()}.jsonl"


def _owner_pid(path: Path) -> int:
    try:
        return int(path.name.split("-")[1].split(".")[0])
    except (IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
