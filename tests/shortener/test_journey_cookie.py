"""Fresh journey ids: 32 hex digits, never repeated, in a forked worker as in its parent."""

from __future__ import annotations

import os
import re

from shortener.journey_cookie import cookie_journey, fresh_id

JOURNEY_ID = re.compile(r"[0-9a-f]{32}")


def test_fresh_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [fresh_id() for _ in range(20_000)]
    assert all(JOURNEY_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_process_draws_ids_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a pre-forking server's worker would hand out
        os.write(write, "".join(fresh_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    sent = os.read(read, 100 * 32 + 1).decode()
    os.close(read)
    child = {sent[i : i + 32] for i in range(0, len(sent), 32)}
    parent = {fresh_id() for _ in range(100)}
    assert len(child) == 100
    assert not child & parent


def test_a_missing_or_malformed_cookie_gets_a_fresh_id() -> None:
    kept = "0123456789abcdef0123456789abcdef"
    assert cookie_journey({"HTTP_COOKIE": f"a=1; tl_j={kept}"}) == kept
    for header in ("", f"tl_j={kept}; tl_j={kept}", "tl_j=XYZ", f"tl_j={kept}0"):
        fresh = cookie_journey({"HTTP_COOKIE": header})
        assert JOURNEY_ID.fullmatch(fresh) and fresh != kept, header
