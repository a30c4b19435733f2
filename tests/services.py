"""The PostgreSQL and Redis the tests run against.

The machine's own servers when the environment names them or they answer on their usual
addresses (CI's case); otherwise private servers started from the installed binaries on free
ports, for the whole test session, and stopped after it. The conftest's `pytest_configure` calls
`provide()` in the controlling process only, before xdist starts its workers: they inherit the
URLs it puts in the environment.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

from tests.faults import RedisServer, free_port, wait_until

POSTGRES_VARIABLE = "TOUCHLINK_TEST_POSTGRES_URL"
REDIS_VARIABLE = "TOUCHLINK_TEST_REDIS_URL"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Each xdist worker takes the database below the previous one's: 15, 14, 13, …
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


def provide() -> Callable[[], None]:
    """Set both variables, starting a private server for each that nothing answers for.
    Returns what stops the servers it started."""
    stops: list[Callable[[], None]] = []
    if POSTGRES_VARIABLE not in os.environ and not _postgres_answers(DEFAULT_POSTGRES):
        postgres = PostgresServer()
        postgres.start()
        stops.append(postgres.stop)
        os.environ[POSTGRES_VARIABLE] = postgres.url
    if REDIS_VARIABLE not in os.environ and not _redis_answers(DEFAULT_REDIS):
        directory = Path(tempfile.mkdtemp(prefix="touchlink-redis-"))
        server = RedisServer(directory)
        server.start()
        stops.append(server.stop)
        stops.append(lambda: shutil.rmtree(directory, ignore_errors=True))
        os.environ[REDIS_VARIABLE] = server.url.removesuffix("/0") + "/15"

    def stop() -> None:
        for each in stops:
            each()

    return stop


def _postgres_answers(url: str) -> bool:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        psycopg.connect(plain, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def _redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


class PostgresServer:
    """A throwaway cluster: initdb into a temporary folder, trust auth, no fsync (the tests'
    data need not survive a power cut). PostgreSQL refuses to run as root, so as root the
    cluster belongs to, and runs as, the `postgres` user the Debian package creates."""

    def __init__(self) -> None:
        self.bin = _postgres_bindir()
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="touchlink-postgres-"))
        self.data = self.directory / "data"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            shutil.chown(self.directory, self.user)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, *, replica_of: PostgresServer | None = None) -> None:
        """A new cluster, or (`replica_of`) a streaming replica of a running one: its base
        backup, then hot standby, following the primary's WAL as it is written."""
        if replica_of is None:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--no-sync", "--encoding=UTF8", "--locale=C.UTF-8")
        else:
            self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(replica_of.port),
                      "-U", "postgres", "-D", str(self.data), "--write-recovery-conf",
                      "--wal-method=stream", "--checkpoint=fast", "--no-sync")
        self.launch()

    def _options(self) -> str:
        return (f"-c port={self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.directory} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off")

    def stop(self) -> None:
        self.stop_only()
        shutil.rmtree(self.directory, ignore_errors=True)

    def stop_only(self) -> None:
        """Stop the server, keeping its data for `launch`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def launch(self) -> None:
        """Start the server on its data (made by `start`, kept by `stop_only`)."""
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(),
                  "-l", str(self.directory / "log"), "-w", "start")
        wait_until(lambda: _postgres_answers(self.url), timeout=30,
                   what=f"the private PostgreSQL on port {self.port}")

    def _run(self, program: str, *arguments: str) -> None:
        result = subprocess.run(
            [str(self.bin / program), *arguments], user=self.user, cwd=self.directory,
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed:\n{result.stdout}{result.stderr}")


def _postgres_bindir() -> Path:
    """The newest installed server's programs: Debian keeps them off PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql) "
                           f"and nothing answers at {DEFAULT_POSTGRES}")
    return Path(initdb).parent
