"""What ingest does when storing fails, the same for the worker and the embedded sink.

SQL away (down, restarting, unreachable) is transient: keep everything and try again after a
pause that doubles up to ten seconds. Any other failure is the data's: the batch is stored one
click at a time, so that one bad click cannot hold back the rest; a click that keeps failing is
set aside as a dead letter after TOUCHLINK_MAX_DELIVERIES tries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

FIRST_PAUSE = 0.5
LONGEST_PAUSE = 10.0


def is_transient(exc: BaseException) -> bool:
    """SQL is away: wait and retry; the data is not at fault."""
    if isinstance(exc, OperationalError | DisconnectionError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Backoff:
    """Pauses that double after each failure, back to the first after a success."""

    def __init__(self, first: float = FIRST_PAUSE, longest: float = LONGEST_PAUSE) -> None:
        self._first = first
        self._longest = longest
        self._next = first

    def next(self) -> float:
        pause = self._next
        self._next = min(self._next * 2, self._longest)
        return pause

    def reset(self) -> None:
        self._next = self._first


def store_in_parts(
    store: Callable[[Sequence[T]], R], items: Sequence[T]
) -> tuple[list[R], list[tuple[T, str]]]:
    """`store(items)` in one go or, if that fails for a reason other than SQL being away, one
    item at a time: what each call returned, and the items that still failed, with why.

    A transient failure propagates, for the caller to keep everything and retry after a pause
    (items stored meanwhile are skipped then: storing is idempotent by click id).
    """
    try:
        return [store(items)], []
    except Exception as exc:
        if is_transient(exc):
            raise
        if len(items) == 1:
            log.warning("storing failed: %s", exc)
            return [], [(items[0], _why(exc))]
        log.exception("a batch of %d failed; storing them one by one", len(items))
    done: list[R] = []
    failed: list[tuple[T, str]] = []
    for item in items:
        try:
            done.append(store([item]))
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("storing one failed: %s", exc)
            failed.append((item, _why(exc)))
    return done, failed


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
