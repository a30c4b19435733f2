"""The click stream as its consumers see it: one Redis consumer group, entries read in a fixed
order (this consumer's own pending ones first, then those a dead consumer left, then new ones),
acknowledged only after their commit, set aside as dead letters after too many deliveries, and
trimmed only below the oldest entry still pending.

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

log = logging.getLogger(__name__)

GROUP = "touchlink-ingest"
TRIM_EVERY = 5.0  # seconds between trims of acknowledged entries


def dead_letter_stream(stream: str) -> str:
    return f"{stream}:dead"


@dataclass(slots=True)
class Entry:
    entry_id: bytes
    fields: dict[Any, Any] | None  # None: deleted from the stream since it was delivered
    error: str | None = None  # why it cannot be stored, once known


class ClickStream:
    """One consumer of the click stream's group."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        *,
        consumer: str,
        batch_size: int = 1000,
        reclaim_idle: float = 60.0,
        max_deliveries: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.stream = stream
        self.consumer = consumer
        self.batch_size = batch_size
        self.max_deliveries = max_deliveries
        self._reclaim_idle_ms = int(reclaim_idle * 1000)
        self._clock = clock
        self._pending_from: str | None = "0"  # re-read our own pending entries first
        self._next_reclaim = 0.0
        self._next_trim = 0.0

    def ensure_group(self) -> None:
        try:
            # From id 0, so a group created after clicks arrived still reads all of them.
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --- reading -----------------------------------------------------------------------------

    def read(self, block_ms: int = 0) -> tuple[list[Entry], bool]:
        """The next entries, and whether they were delivered before: own pending entries first,
        then entries idle for too long at another consumer, then new ones."""
        if self._pending_from is not None:
            entries = self._xreadgroup(self._pending_from, block_ms=None)
            if entries:
                self._pending_from = entries[-1].entry_id.decode()
                return entries, True
            self._pending_from = None
        now = self._clock()
        if now >= self._next_reclaim:
            self._next_reclaim = now + max(self._reclaim_idle_ms / 2000, 0.5)
            claimed = self._reclaim()
            if claimed:
                return claimed, True
        return self._xreadgroup(">", block_ms=block_ms or None), False

    def read_pending_again(self) -> None:
        """Entries left pending (a failed store) are read again, one delivery later."""
        self._pending_from = "0"

    @property
    def caught_up(self) -> bool:
        """No own pending entry is waiting to be read again."""
        return self._pending_from is None

    def pending(self) -> int:
        """Entries delivered to any consumer of the group and not acknowledged."""
        return int(self.client.xpending(self.stream, GROUP)["pending"])

    def _xreadgroup(self, from_id: str, *, block_ms: int | None) -> list[Entry]:
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
        return [Entry(entry_id, fields or None) for entry_id, fields in messages]

    def _reclaim(self) -> list[Entry]:
        """Take over entries that another (dead) consumer left pending for too long."""
        try:
            reply: Any = self.client.xautoclaim(
                self.stream,
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
            log.info("reclaimed %d entries left pending by another consumer", len(messages))
        return [Entry(entry_id, fields or None) for entry_id, fields in messages]

    # --- settling ----------------------------------------------------------------------------

    def worn_out(self, entries: Sequence[Entry]) -> list[Entry]:
        """The entries already delivered `max_deliveries` times: their next stop is the dead
        letters."""
        if not entries:
            return []
        ids = [e.entry_id for e in entries]
        rows: Any = self.client.xpending_range(
            self.stream, GROUP, min=min(ids), max=max(ids), count=len(ids) * 2
        )
        counts = {row["message_id"]: row["times_delivered"] for row in rows}
        return [e for e in entries if counts.get(e.entry_id, 0) >= self.max_deliveries]

    def dead_letter(self, entries: Sequence[Entry]) -> None:
        """Copy the entries, with why, to `<stream>:dead` (acknowledging them is the caller's)."""
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

    def ack(self, entry_ids: Sequence[bytes]) -> None:
        if entry_ids:
            self.client.xack(self.stream, GROUP, *entry_ids)

    def maybe_trim(self) -> None:
        now = self._clock()
        if now >= self._next_trim:
            self._next_trim = now + TRIM_EVERY
            self.trim()

    def trim(self) -> int:
        return trim_below(self.client, self.stream)


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
