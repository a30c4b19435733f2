"""Where the redirect hands its clicks: a Redis stream, or (embedded default) straight to SQL.

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
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import redis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from analytics import metrics
from analytics.enrich import Enricher
from analytics.events import click_from_json, click_payload, click_to_json
from analytics.ingest import KnownLinks, store_clicks
from shortener.clicks import RawClick
from shortener.db import write_session

log = logging.getLogger(__name__)


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
    """Pipelines clicks into a Redis stream; spools them to local files while Redis is away."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        *,
        spool_dir: Path,
        interval: float = 0.005,
        strict: bool = False,
    ) -> None:
        super().__init__(interval, "click-flusher")
        self._client = client
        self._stream = stream
        self._spool = Spool(spool_dir)
        self._strict = strict
        self._xadd_many = client.register_script(_XADD_MANY)
        self._next_spool_look = 0.0

    def emit(self, click: RawClick) -> None:
        metrics.CLICKS_CAPTURED.inc()
        if self._strict:
            # Group commit: the request holding the lock sends every click queued meanwhile by
            # the requests waiting for it, so each answers only once its click is in Redis (or
            # spooled) while concurrent requests share one round trip.
            self._queue.append(click)
            with self._lock:
                self._drain()
        else:
            self.put(click)

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
        try:
            self._xadd_all(clicks)
        except redis.RedisError as exc:
            log.warning("Redis unavailable (%s); spooling %d clicks locally", exc, len(clicks))
            self._spool.write(clicks)
            metrics.CLICKS_SPOOLED.inc(len(clicks))
            self._next_spool_look = 0.0

    def _replay_spool(self) -> None:
        # A click may reach the stream twice (written, then Redis fails before we delete the
        # file): harmless, since ingest keeps the first copy of each click id.
        for path in self._spool.claim():
            clicks = self._spool.read(path)
            try:
                self._xadd_all(clicks)
            except redis.RedisError:
                return  # the file keeps our pid in its name: retried on the next flush
            path.unlink()
            log.info("delivered %d spooled clicks from %s", len(clicks), path.name)

    def _xadd_all(self, clicks: list[RawClick]) -> None:
        """One XADD per click, all in one command: the script loops on the server side."""
        for start in range(0, len(clicks), _XADD_CHUNK):
            chunk = clicks[start : start + _XADD_CHUNK]
            self._xadd_many(keys=[self._stream], args=[click_payload(c) for c in chunk])

    def spooled(self) -> int:
        return self._spool.count()


class BufferedSQLSink(_Flusher):
    """The embedded default: buffers clicks in process and stores them in SQL in batches."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        make_enricher: Callable[[], Enricher],
        *,
        interval: float = 0.5,
    ) -> None:
        super().__init__(interval, "click-writer")
        self._sessions = sessions
        self._make_enricher = make_enricher
        self._enricher: Enricher | None = None
        self._known_links = KnownLinks()

    def emit(self, click: RawClick) -> None:
        metrics.CLICKS_CAPTURED.inc()
        self.put(click)

    def _drain(self) -> None:
        clicks = self._take()
        if not clicks:
            return
        if self._enricher is None:
            self._enricher = self._make_enricher()
        try:
            with write_session(self._sessions) as session, session.begin():
                result = store_clicks(
                    session,
                    clicks,
                    self._enricher,
                    now=datetime.now(UTC),
                    known_links=self._known_links,
                )
        except SQLAlchemyError:
            log.exception("could not store %d clicks; keeping them for the next try", len(clicks))
            self._queue.extendleft(reversed(clicks))
            time.sleep(1.0)
            return
        metrics.CLICKS_INGESTED.inc(result.inserted)
        if result.rejected:
            log.warning("dropped %d clicks of deleted links", len(result.rejected))


class Spool:
    """Clicks Redis could not take, as JSON lines: one file per process, fsynced per write.

    A process replays its own file, and the files of processes that died; never the file of a
    live process, which may still be appending to it.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._lock = threading.Lock()

    def write(self, clicks: list[RawClick]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._lock, self._own().open("a", encoding="utf-8") as out:
            out.write("".join(click_to_json(c) + "\n" for c in clicks))
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

    def read(self, path: Path) -> list[RawClick]:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [click_from_json(line) for line in lines if line.strip()]

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
