"""Real faults for tests: a private redis-server, a Redis Cluster of our own, a TCP proxy that
can cut SQL, worker processes (optionally killed at a chosen point of the real code path), and
bounded waits on what they do.

The conftest turns these into fixtures (`private_redis`, `redis_cluster`, `workers`); tests use
the fixtures and the injections below.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], object], *, timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` if it does not within `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(0.05)


class RedisServer:
    """A redis-server of our own on a free port, so that stopping it disturbs nobody else."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        try:
            wait_until(
                lambda: _answers(client), timeout=5, what=f"redis-server on port {self.port}"
            )
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class ClusterNode:
    """One master of a `LocalRedisCluster`: cluster mode and AOF in a folder of its own, so that
    a node killed with SIGKILL comes back with its data and its place in the cluster."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                _binary("redis-server"),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                # Short, so that a dead node is noticed (and a returning one taken back) within
                # seconds rather than the default 15.
                "--cluster-node-timeout", "2000",
                # The shards on the living nodes keep taking clicks while one node is away.
                "--cluster-require-full-coverage", "no",
                "--appendonly", "yes",
                "--save", "",
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        try:
            wait_until(lambda: _answers(client), timeout=10, what=f"cluster node on {self.port}")
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a power cut of the process would."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def info(self) -> dict[str, str]:
        """CLUSTER INFO as this node sees it."""
        client = redis.Redis(port=self.port, socket_timeout=2)
        try:
            info: Any = client.execute_command("CLUSTER INFO")  # parsed by redis-py
        finally:
            client.close()
        return {str(key): str(value) for key, value in info.items()}


class LocalRedisCluster:
    """A Redis Cluster of three masters (no replicas) on free ports of 127.0.0.1, made with
    `redis-cli --cluster create`; `kill(i)` and `restart(i)` take a node away and back."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        ports = _cluster_ports(masters)
        self.nodes = [ClusterNode(directory / f"node-{port}", port) for port in ports]

    @property
    def url(self) -> str:
        """The first node's URL: the client finds the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> None:
        try:
            self._create()
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        done = subprocess.run(
            [_binary("redis-cli"), "--cluster", "create", *addresses,
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        self.wait_ok()

    def wait_ok(self) -> None:
        """Until every node says `cluster_state:ok` and knows all the others."""

        def ok() -> bool:
            try:
                infos = [node.info() for node in self.nodes]
            except redis.ConnectionError:
                return False
            return all(
                info.get("cluster_state") == "ok"
                and info.get("cluster_known_nodes") == str(len(self.nodes))
                and info.get("cluster_slots_fail") == "0"
                and info.get("cluster_slots_pfail") == "0"
                for info in infos
            )

        wait_until(ok, timeout=60, what="cluster_state:ok on every node")

    def node_of(self, key: str) -> ClusterNode:
        """The node that serves `key`'s slot."""
        client = redis.Redis(port=self.nodes[0].port)
        try:
            slot = int(client.execute_command("CLUSTER KEYSLOT", key))
            shards: Any = client.execute_command("CLUSTER SLOTS")
        finally:
            client.close()
        for first, last, master, *_ in shards:
            if int(first) <= slot <= int(last):
                return next(node for node in self.nodes if node.port == int(master[1]))
        raise AssertionError(f"no node serves the slot of {key}")

    def kill(self, node: ClusterNode) -> None:
        node.kill()

    def restart(self, node: ClusterNode) -> None:
        """Start a killed node again on its port and folder, and wait until the cluster is
        whole again."""
        node.start()
        self.wait_ok()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (apt-get install redis-server)")
    return found


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 40000)
        if port in ports:
            continue
        try:
            for each in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", each))
        except OSError:
            continue
        ports.append(port)
    return ports


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


class TcpProxy:
    """Forwards a local port to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                with suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


class WatchedProcess:
    """A process whose output (stdout and stderr) is collected as it comes, so that a test can
    wait, with a deadline, for it to say something."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            list(argv),
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self._lines.append(line)
        self.process.stdout.close()

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self._lines)

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def wait_for_output(self, text: str, *, count: int = 1, timeout: float = 30) -> None:
        """Until `text` has appeared `count` times in the output (failing if the process ends
        or the deadline passes first)."""
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                if self.output.count(text) >= count:
                    return
                raise AssertionError(
                    f"exited ({self.process.returncode}) before saying {text!r}:\n{self.output}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not said within {timeout:g}s:\n{self.output}")
            time.sleep(0.05)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for the process to exit: its code and everything it said."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {timeout:g}s:\n{self.output}") from None
        self._reader.join(timeout=5)
        return code, self.output

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)


# Python run in a worker process before the CLI starts: it kills the process with SIGKILL at
# a chosen point of the real code path, like a power cut or the OOM killer would.
# The worker acknowledges through analytics.stream.ClickStream.ack, which calls client.xack on
# its redis.Redis (or RedisCluster) client, only after the batch's transaction has committed.
KILL_AFTER_COMMIT = """
import os, signal, redis, redis.cluster
def xack(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)   # committed to SQL, not yet acknowledged
redis.Redis.xack = redis.cluster.RedisCluster.xack = xack
"""

# IngestWorker._store calls analytics.worker.store_clicks inside the batch's transaction.
KILL_BEFORE_COMMIT = """
import os, signal
import analytics.worker as worker
_store = worker.store_clicks
def store_clicks(session, clicks, *args, **kwargs):
    result = _store(session, clicks, *args, **kwargs)
    session.flush()
    os.kill(os.getpid(), signal.SIGKILL)   # rows inserted in the transaction, not committed
worker.store_clicks = store_clicks
"""


class Workers:
    """`touchlink worker` processes over the given environment; none outlives `close()`."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self._started: list[WatchedProcess] = []

    def start(
        self, *args: str, env: Mapping[str, str] | None = None, inject: str = ""
    ) -> WatchedProcess:
        """`touchlink worker ARGS` in a process of its own, optionally with a fault injected."""
        argv = ["touchlink", "worker", *args]
        code = f"{inject}\nimport sys\nfrom wsgi import main\nsys.argv = {argv!r}\nmain()\n"
        process = WatchedProcess([sys.executable, "-c", code], self.env if env is None else env)
        self._started.append(process)
        return process

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        inject: str = "",
        timeout: float = 60,
    ) -> tuple[int, str]:
        """Run a worker to its end: its exit code and output."""
        return self.start(*args, env=env, inject=inject).finish(timeout)

    def close(self) -> None:
        for process in self._started:  # never leave a worker consuming behind the next test
            process.kill()
