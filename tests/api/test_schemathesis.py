"""Schemathesis against a live server: every documented operation, called with inputs generated
from the document (valid ones and invalid ones), never answers a 500, and every answer matches
the document: its status, its media type, its body's schema.

The live feed (`GET /api/v1/live`) is a stream that ends only when its reader goes: each request
for it waits out `--request-timeout`, after its status and headers were checked (its events are
checked in tests/analytics/test_live.py).

One real `touchlink run` (the demo workspace seeded, so that paths name real touchpoints and
links now and then) and one `st run` over it, with an admin key; a failure prints schemathesis'
own report, each case with the curl command that replays it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.browser.serving import running

CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
))
EXAMPLES = 10  # per operation in the fuzzing phase (the coverage phase tries every edge anyway)


def test_every_operation_keeps_to_the_document(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        key = server.touchlink("keys", "create", "--name", "schemathesis", "--role", "admin")
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"), "run",
                f"{server.base}/api/v1/openapi.json",
                "--header", f"Authorization: Bearer {key.splitlines()[0].strip()}",
                "--checks", CHECKS,
                "--max-examples", str(EXAMPLES),
                "--seed", "1",
                "--workers", "2",
                "--request-timeout", "5",
                "--no-color",
            ],
            cwd=tmp_path, capture_output=True, text=True, timeout=1100, check=False,
        )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
