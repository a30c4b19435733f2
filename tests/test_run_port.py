"""`touchlink run --port N` on a fresh machine serves, and writes short URLs for, the port it
really listens on (TOUCHLINK_BASE_URL unset)."""

from __future__ import annotations

import http.client
import signal
import subprocess
from pathlib import Path

from tests.browser.serving import _wait_until_up, free_port, instance_env, touchlink_command


def test_run_on_another_port_names_it_and_its_links_use_it(tmp_path: Path) -> None:
    port = free_port()
    env = instance_env(tmp_path, "unused")
    del env["TOUCHLINK_BASE_URL"]
    output = tmp_path / "server.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            [touchlink_command(), "run", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(f"http://localhost:{port}", process, output)
        conn = http.client.HTTPConnection("localhost", port, timeout=10)
        conn.request("GET", "/fb-spring")
        assert conn.getresponse().status == 302
        listing = subprocess.run(
            [touchlink_command(), "links", "list"], env=env, cwd=tmp_path,
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert f"Touchlink is running at http://localhost:{port}" in output.read_text()
    assert f"http://localhost:{port}/fb-spring" in listing
