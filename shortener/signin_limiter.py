"""Failed sign-ins counted per email address and per client IP, so that guessing is slow."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import deque

from shortener.redis_client import ERRORS, Client

log = logging.getLogger(__name__)

MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60  # seconds


class SignInLimiter:
    """Counts failed sign-ins per email address and per client IP over a window.

    In Redis when one is configured, so every web process sees the same counts; otherwise in this
    process's memory. A Redis that does not answer falls back to memory rather than lock people out.
    """

    def __init__(self, client: Client | None, *, limit: int, window: int) -> None:
        self._redis = client
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._memory: dict[str, deque[float]] = {}

    def retry_after(self, keys: list[str]) -> int:
        """Seconds until another attempt is allowed for all of `keys`; 0 when allowed now."""
        wait = 0.0
        for key in keys:
            wait = max(wait, self._wait(key))
        return math.ceil(wait)

    def record_failure(self, keys: list[str]) -> None:
        for key in keys:
            self._add(key)

    def forget(self, key: str) -> None:
        if self._redis is not None:
            try:
                self._redis.delete(_redis_key(key))
                return
            except ERRORS as exc:
                log.warning("sign-in limiter: Redis unavailable (%s); using memory", exc)
        with self._lock:
            self._memory.pop(key, None)

    def _wait(self, key: str) -> float:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline(transaction=False)
                pipe.get(_redis_key(key))
                pipe.ttl(_redis_key(key))
                count, ttl = pipe.execute()
                return float(max(ttl, 1)) if count is not None and int(count) >= self.limit else 0
            except ERRORS as exc:
                log.warning("sign-in limiter: Redis unavailable (%s); using memory", exc)
        now = time.monotonic()
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.limit:
                return 0
            return times[-self.limit] + self.window - now

    def _add(self, key: str) -> None:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline(transaction=True)
                pipe.incr(_redis_key(key))
                # The window starts at the first failure; later failures do not extend it.
                pipe.expire(_redis_key(key), self.window, nx=True)
                pipe.execute()
                return
            except ERRORS as exc:
                log.warning("sign-in limiter: Redis unavailable (%s); using memory", exc)
        now = time.monotonic()
        with self._lock:
            times = self._recent(key, now)
            times.append(now)
            self._memory[key] = times

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._memory.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._memory.pop(key, None)
        return times


def _redis_key(key: str) -> str:
    # Hashed: neither addresses nor IPs are stored in Redis in the clear.
    return "touchlink:signin:" + hashlib.sha256(key.encode()).hexdigest()[:40]
