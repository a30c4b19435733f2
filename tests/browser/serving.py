"""A real Touchlink for the browser tests: `touchlink run` on a free port over a fresh instance
folder, and the `touchlink` commands run against that same instance."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def touchlink_command() -> str:
    # The console script next to this interpreter first: the one `pip install -e .` made.
    touchlink = shutil.which("touchlink", path=str(Path(sys.executable).parent))
    touchlink = touchlink or shutil.which("touchlink")
    if touchlink is None:
        raise RuntimeError("the `touchlink` command is not installed: pip install -e '.[test]'")
    return touchlink


@dataclass(frozen=True, slots=True)
class Server:
    base: str
    output: Path
    instance: Path
    env: dict[str, str]

    def touchlink(self, *args: str, stdin: str = "") -> str:
        """Run a `touchlink` command on the server's instance; its output, or a failure."""
        done = subprocess.run(
            [touchlink_command(), *args], env=self.env, cwd=self.instance, input=stdin,
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout


def instance_env(instance: Path, base: str, **extra: str) -> dict[str, str]:
    """The environment of a fresh embedded instance: none of the caller's TOUCHLINK_* settings,
    and this checkout's code whatever `pip install -e` pointed at."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOUCHLINK_")}
    env.update(
        TOUCHLINK_INSTANCE_PATH=str(instance),
        TOUCHLINK_BASE_URL=base,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        **extra,
    )
    return env


@contextmanager
def running(instance: Path, *, name: str = "127.0.0.1", **extra: str) -> Iterator[Server]:
    """`touchlink run` on a free port over `instance`, its short URLs on `name`, stopped at the
    end."""
    port = free_port()
    base = f"http://{name}:{port}"
    env = instance_env(instance, base, **extra)
    output = instance / "server.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            [touchlink_command(), "run", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=instance, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(base, process, output)
        yield Server(base, output, instance, env)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(base: str, process: subprocess.Popen[bytes], output: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"touchlink run exited with {process.returncode}:\n{output.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"touchlink run did not answer within {STARTUP_SECONDS} s:\n{output.read_text()}"
    )
