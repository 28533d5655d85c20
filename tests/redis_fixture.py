"""A real `redis-server` for the tests: started on a free loopback port in a temp dir, stopped after.

Import the fixtures into a test module (`from redis_fixture import redis_server, redis_url`);
the module's tests are skipped, with the reason said, when `redis-server` is not on PATH.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server is not on PATH (Debian: apt-get install redis-server)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server process; `restart()` keeps its port and its data directory."""

    def __init__(
        self, directory: Path, *, appendonly: bool = False, password: str | None = None
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.appendonly = appendonly
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        args = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        if self.password is not None:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self, limit: float = 10.0) -> None:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            assert self.process is not None
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                log = self.directory / "redis.log"
                raise RuntimeError(f"redis-server exited: {err} {log.read_text() if log.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    if self.password is not None:
                        sock.sendall(f"AUTH {self.password}\r\n".encode())
                        sock.recv(64)
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {limit} s")

    def kill(self) -> None:
        """SIGKILL: the server dies at once, with only what it had persisted."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def restart(self) -> None:
        self.kill()
        self.start()

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(64)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """A redis-server shared by one test module (flushed before each test by `redis_url`)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def durable_redis(tmp_path: Path):
    """A redis-server of its own with `appendonly yes` and `appendfsync always` (for restarts)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def until(predicate, what: str, limit: float = 15.0) -> None:
    """Await `predicate()` until it is true; the limit (a bound, not a pace) guards a hang."""
    end = time.monotonic() + limit
    while not await predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
