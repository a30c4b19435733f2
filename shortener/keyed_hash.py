"""HMAC-SHA256 under a key used for many short messages (a visitor salt, a journey secret).

`hmac.digest()` derives the padded key states again for every message, which costs more than
hashing a user agent: here they are hashed once per key, and each message only copies them. The
digests are HMAC-SHA256's exactly (RFC 2104).
"""

from __future__ import annotations

import functools
import hashlib
import hmac

_BLOCK = 64  # SHA-256's block size, in bytes


class KeyedHash:
    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(hmac.trans_36))
        self._outer = hashlib.sha256(key.translate(hmac.trans_5C))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


@functools.lru_cache(maxsize=64)  # a few salts and secrets live at a time
def keyed_hash(key: bytes) -> KeyedHash:
    return KeyedHash(key)
