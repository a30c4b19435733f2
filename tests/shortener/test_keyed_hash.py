import hmac
import os

import pytest

from shortener.keyed_hash import KeyedHash, keyed_hash


@pytest.mark.parametrize("key_size", [0, 1, 32, 63, 64, 65, 200])
@pytest.mark.parametrize("message", [b"", b"203.0.113.9\nMozilla/5.0", bytes(range(256)) * 4])
def test_digests_are_hmac_sha256s(key_size, message):
    key = os.urandom(key_size)
    assert KeyedHash(key).digest(message) == hmac.digest(key, message, "sha256")


def test_one_key_serves_many_messages_and_keys_do_not_mix():
    hashed = keyed_hash(b"k" * 32)
    assert keyed_hash(b"k" * 32) is hashed
    assert hashed.digest(b"a") == hmac.digest(b"k" * 32, b"a", "sha256")
    assert hashed.digest(b"b") == hmac.digest(b"k" * 32, b"b", "sha256")
    assert keyed_hash(b"j" * 32).digest(b"a") != hashed.digest(b"a")
