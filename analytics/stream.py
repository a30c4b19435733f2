"""The click stream as its consumers see it: one or more shards (TOUCHLINK_STREAM_SHARDS), each a
Redis stream with its own consumer group, entries of a shard read in a fixed order (this
consumer's own pending ones first, then those a dead consumer left, then new ones), acknowledged
only after their commit, set aside as dead letters after too many deliveries, and trimmed only
below the oldest entry still pending.

A click goes to the shard of its link (`shard_of`), so a link's clicks stay in order. With one
shard the stream is `<stream>` as it always was; with more, shard i is `{<stream>:<i>}`: the
braces are a Redis Cluster hash tag, so a shard, its dead letters (`{<stream>:<i>}:dead`) and
its group live in one slot, and every command on them goes to one node. A worker reads every
shard; workers share them through each shard's group.

Trimming by length would delete entries read but not yet acknowledged; MINID below the oldest
pending (or undelivered) entry deletes only what every group has acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from shortener.redis_client import UNREACHABLE, Client

log = logging.getLogger(__name__)

GROUP = "touchlink-ingest"
TRIM_EVERY = 5.0  # seconds between trims of acknowledged entries
AWAY_PAUSE = 1.0  # seconds a shard that did not answer is left alone while others are read


def shard_streams(stream: str, shards: int) -> list[str]:
    """The streams of the shards, in shard order: `stream` itself while there is one shard (the
    name existing installations keep their backlog under)."""
    if shards == 1:
        return [stream]
    return [f"{{{stream}:{i}}}" for i in range(shards)]


def shard_of(link_id: int, shards: int) -> int:
    return link_id % shards


def dead_letter_stream(stream: str) -> str:
    return f"{stream}:dead"


@dataclass(slots=True)
class Entry:
    entry_id: bytes
    fields: dict[Any, Any] | None  # None: deleted from the stream since it was delivered
    error: str | None = None  # why it cannot be stored, once known
    stream: str = ""  # the shard it was read from, where it is acknowledged


@dataclass(slots=True)
class _Shard:
    """What a consumer keeps of one shard between reads."""

    stream: str
    pending_from: str | None = "0"  # re-read our own pending entries first
    next_reclaim: float = 0.0
    away_until: float = 0.0  # its Redis did not answer: not asked again before then
    grouped: bool = False  # its group is known to exist


class ClickStream:
    """One consumer of the click stream: of every shard's group."""

    def __init__(
        self,
        client: Client,
        stream: str,
        *,
        consumer: str,
        shards: int = 1,
        batch_size: int = 1000,
        reclaim_idle: float = 60.0,
        max_deliveries: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.stream = stream  # the name of the whole, as configured
        self.shards = [_Shard(name) for name in shard_streams(stream, shards)]
        self.consumer = consumer
        self.batch_size = batch_size
        self.max_deliveries = max_deliveries
        self._reclaim_idle_ms = int(reclaim_idle * 1000)
        self._clock = clock
        self._turn = 0  # the shard the next read starts from
        self._next_trim = 0.0

    @property
    def streams(self) -> list[str]:
        return [shard.stream for shard in self.shards]

    def ensure_group(self) -> None:
        """Each shard's group, from the start of its stream. A shard that does not answer (its
        node away as the worker starts) gets it before it is first read."""
        for shard in self.shards:
            try:
                self._ensure_group(shard)
            except UNREACHABLE as exc:
                log.warning("%s is not answering (%s); its group is checked later", shard.stream,
                            exc)

    def _ensure_group(self, shard: _Shard) -> None:
        try:
            # From id 0, so a group created after clicks arrived still reads all of them.
            self.client.xgroup_create(shard.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        shard.grouped = True

    # --- reading -----------------------------------------------------------------------------

    def read(self, block_ms: int = 0) -> tuple[list[Entry], bool]:
        """The next entries of one shard, and whether they were delivered before.

        The shards are asked in turn, each read starting one further on so that a busy shard
        cannot starve the others. Only the last one asked may block, for its share of
        `block_ms`: an entry arriving in any shard waits at most that long (with one shard, all
        of it). A shard whose Redis does not answer (a cluster node away) is left alone for
        AWAY_PAUSE while the others are read; only when none answers does the error reach the
        caller.
        """
        count = len(self.shards)
        start, self._turn = self._turn, (self._turn + 1) % count
        in_turn = [self.shards[(start + step) % count] for step in range(count)]
        now = self._clock()
        asked = [shard for shard in in_turn if shard.away_until <= now] or in_turn
        failures: list[Exception] = []
        for shard in asked:
            wait = block_ms // count if shard is asked[-1] else 0
            try:
                entries, redelivered = self._read_shard(shard, wait)
            except UNREACHABLE as exc:
                shard.away_until = self._clock() + AWAY_PAUSE
                log.warning("%s is not answering (%s); reading the other shards", shard.stream, exc)
                failures.append(exc)
                continue
            if entries:
                return entries, redelivered
        if len(failures) == len(asked):
            raise failures[-1]
        return [], False

    def _read_shard(self, shard: _Shard, block_ms: int) -> tuple[list[Entry], bool]:
        """Own pending entries first, then entries idle for too long at another consumer, then
        new ones."""
        if not shard.grouped:
            self._ensure_group(shard)
        if shard.pending_from is not None:
            entries = self._xreadgroup(shard, shard.pending_from, block_ms=None)
            if entries:
                shard.pending_from = entries[-1].entry_id.decode()
                return entries, True
            shard.pending_from = None
        now = self._clock()
        if now >= shard.next_reclaim:
            shard.next_reclaim = now + max(self._reclaim_idle_ms / 2000, 0.5)
            claimed = self._reclaim(shard)
            if claimed:
                return claimed, True
        return self._xreadgroup(shard, ">", block_ms=block_ms or None), False

    def read_pending_again(self) -> None:
        """Entries left pending (a failed store) are read again, one delivery later."""
        for shard in self.shards:
            shard.pending_from = "0"

    @property
    def caught_up(self) -> bool:
        """No own pending entry is waiting to be read again, in any shard."""
        return all(shard.pending_from is None for shard in self.shards)

    def pending(self) -> int:
        """Entries delivered to any consumer and not acknowledged, over every shard."""
        return sum(int(self.client.xpending(s, GROUP)["pending"]) for s in self.streams)

    def _xreadgroup(self, shard: _Shard, from_id: str, *, block_ms: int | None) -> list[Entry]:
        try:
            reply: Any = self.client.xreadgroup(
                GROUP, self.consumer, {shard.stream: from_id}, count=self.batch_size,
                block=block_ms,
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
                shard.stream,
            )
            self._ensure_group(shard)
            shard.pending_from = None
            return []
        if not reply:
            return []
        _, messages = reply[0]
        return _entries(messages, shard.stream)

    def _reclaim(self, shard: _Shard) -> list[Entry]:
        """Take over entries that another (dead) consumer left pending for too long."""
        try:
            reply: Any = self.client.xautoclaim(
                shard.stream,
                GROUP,
                self.consumer,
                self._reclaim_idle_ms,
                "0-0",
                count=self.batch_size,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                return []
            raise
        messages = reply[1]
        if messages:
            log.info(
                "reclaimed %d entries of %s left pending by another consumer",
                len(messages), shard.stream,
            )
        return _entries(messages, shard.stream)

    # --- settling ----------------------------------------------------------------------------

    def worn_out(self, entries: Sequence[Entry]) -> list[Entry]:
        """The entries already delivered `max_deliveries` times: their next stop is the dead
        letters."""
        worn = []
        for stream, of_shard in _by_stream(entries).items():
            ids = [e.entry_id for e in of_shard]
            rows: Any = self.client.xpending_range(
                stream, GROUP, min=min(ids, key=_entry_key), max=max(ids, key=_entry_key),
                count=len(ids) * 2,
            )
            counts = {row["message_id"]: row["times_delivered"] for row in rows}
            worn += [e for e in of_shard if counts.get(e.entry_id, 0) >= self.max_deliveries]
        return worn

    def dead_letter(self, entries: Sequence[Entry]) -> None:
        """Copy the entries, with why, to their shard's `<stream>:dead` (acknowledging them is
        the caller's)."""
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
                pipe.xadd(dead_letter_stream(entry.stream), payload)  # type: ignore[arg-type]
            pipe.execute()
        log.error(
            "moved %d entries to %s (first: %s)",
            len(entries),
            ", ".join(sorted({dead_letter_stream(e.stream) for e in entries})),
            entries[0].error,
        )

    def ack(self, entries: Sequence[Entry]) -> None:
        """Acknowledge each entry in its shard's group."""
        for stream, of_shard in _by_stream(entries).items():
            self.client.xack(stream, GROUP, *[e.entry_id for e in of_shard])

    def maybe_trim(self) -> None:
        now = self._clock()
        if now >= self._next_trim:
            self._next_trim = now + TRIM_EVERY
            self.trim()

    def trim(self) -> int:
        """Trim every shard that answers; one that does not is trimmed at a later round."""
        trimmed = 0
        for stream in self.streams:
            try:
                trimmed += trim_below(self.client, stream)
            except UNREACHABLE as exc:
                log.warning("could not trim %s (%s); trying again later", stream, exc)
        return trimmed


def _entries(messages: Any, stream: str) -> list[Entry]:
    return [Entry(entry_id, fields or None, stream=stream) for entry_id, fields in messages]


def _by_stream(entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(entry.stream, []).append(entry)
    return grouped


@dataclass(frozen=True, slots=True)
class ShardBacklog:
    """How far ingest is behind on one shard."""

    stream: str
    length: int  # entries in the stream: pending, undelivered, or acknowledged and not trimmed
    pending: int  # delivered and not acknowledged
    oldest_pending_seconds: float


def shard_backlog(client: Client, stream: str) -> ShardBacklog:
    """One shard's backlog; the client's errors propagate (its Redis is away)."""
    length = int(client.xlen(stream))
    try:
        summary: Any = client.xpending(stream, GROUP)
    except redis.ResponseError:  # no stream or no group yet
        summary = {"pending": 0, "min": None}
    oldest = 0.0
    if summary["pending"] and summary["min"]:
        oldest = max(0.0, time.time() - int(summary["min"].split(b"-")[0]) / 1000)
    return ShardBacklog(stream, length, int(summary["pending"]), round(oldest, 1))


def trim_below(client: Client, stream: str) -> int:
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
