"""Who may reach a monitor: private directory and socket modes, SO_PEERCRED, the TCP token."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_monitor_helpers import ROOT, short_monitor_dir

import engine
from engine.monitor import MonitorError
from engine.monitor_client import ClientError, MonitorClient, Target
from engine.queue import PriorityQueue
from engine.wire import Codec

NOBODY = 65534


@pytest.fixture
def monitor_dir(monkeypatch):
    yield from short_monitor_dir(monkeypatch)


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_directory_0700_socket_and_files_0600(monitor_dir, monkeypatch):
    fresh = monitor_dir / "made"
    monkeypatch.setenv("HEAPWATCH_MONITOR_DIR", str(fresh))
    with engine.serve_monitor(queue=PriorityQueue(), name="modes") as handle:
        assert mode(fresh) == 0o700
        assert stat.S_ISSOCK(os.stat(handle.path).st_mode) and mode(handle.path) == 0o600
        assert mode(handle.info_file) == 0o600
    with engine.serve_monitor(queue=PriorityQueue(), tcp=0) as handle:
        assert handle.address.startswith("tcp://127.0.0.1:")
        assert mode(handle.token_file) == 0o600


@pytest.mark.parametrize("problem", ["foreign owner", "mode 0755", "symlink"])
async def test_an_unsafe_directory_is_refused(monitor_dir, monkeypatch, problem):
    target = monitor_dir / "unsafe"
    if problem == "symlink":
        real = monitor_dir / "real"
        real.mkdir(mode=0o700)
        target.symlink_to(real)
        expected = "not a directory"
    else:
        target.mkdir(mode=0o700)
        if problem == "foreign owner":
            os.chown(target, NOBODY, NOBODY)
            expected = f"owned by uid {NOBODY}"
        else:
            target.chmod(0o755)
            expected = "mode 0755 lets other users in"
    monkeypatch.setenv("HEAPWATCH_MONITOR_DIR", str(target))
    with pytest.raises(MonitorError, match=expected):
        engine.serve_monitor(queue=PriorityQueue())


async def test_a_peer_of_another_uid_is_refused(monitor_dir):
    # Tests run as root, which the default rule lets in: allow only nobody, so root is the
    # "other user" and the SO_PEERCRED check itself decides.
    with engine.serve_monitor(queue=PriorityQueue(), allowed_uids={NOBODY}) as handle:
        with pytest.raises(ClientError, match=f"refused: uid {os.getuid()} .* may not watch"):
            await MonitorClient.connect(handle.address)
        assert handle.clients == 0


CLIENT_AS_NOBODY = r'''
import asyncio, sys
from engine.monitor_client import ClientError, MonitorClient

async def main():
    try:
        client = await MonitorClient.connect(sys.argv[1])
    except ClientError as error:
        print("REFUSED", error)
        return
    frame = await client.next_frame(5)
    print("HELLO", client.hello["pid"], frame.type if frame else None)
    await client.close()

asyncio.run(main())
'''


def as_nobody(*argv: str) -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv is not installed")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def nobody_python() -> str:
    """An interpreter nobody can run: this one, else the system's (its libraries may be in a
    directory only root reads, as with a pyenv build under /root)."""
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            ran = subprocess.run(as_nobody(python, "-c", "import asyncio, json"),
                                 capture_output=True, timeout=30, cwd="/")
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ran.returncode == 0:
            return python
    pytest.skip("no Python interpreter that nobody may run")


async def run_as_nobody(address: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *as_nobody(nobody_python(), "-c", CLIENT_AS_NOBODY, address),
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd="/",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a client as nobody")
@pytest.mark.parametrize("allow_nobody", [False, True])
async def test_a_real_client_running_as_nobody(monitor_dir, allow_nobody):
    allowed = {os.getuid(), 0} | ({NOBODY} if allow_nobody else set())
    with engine.serve_monitor(queue=PriorityQueue(), allowed_uids=allowed) as handle:
        # Made reachable on purpose, so that only the peer check stands in the way.
        monitor_dir.chmod(0o711)
        os.chmod(handle.path, 0o666)
        out = await run_as_nobody(handle.address)
    if allow_nobody:
        assert out == f"HELLO {os.getpid()} snapshot"
    else:
        assert out.startswith(f"REFUSED the monitor at {handle.address} refused: uid {NOBODY} ")


async def test_tcp_needs_the_token(monitor_dir):
    codec = Codec()
    with engine.serve_monitor(queue=PriorityQueue(), tcp="127.0.0.1:0") as handle:
        host, port = "127.0.0.1", handle.port

        def raw_hello(data: dict) -> bytes:
            with socket.create_connection((host, port), timeout=5) as raw:
                raw.sendall(codec.encode("hello", data, wall=time.time()))
                return raw.makefile("rb").readline()

        for hello in ({}, {"token": "not-the-token"}, {"token": 12}):
            reply = codec.decode(await asyncio.to_thread(raw_hello, hello))
            assert reply.type == "reply" and reply.data["error"] == "bad or missing token"
        with pytest.raises(ClientError, match="refused: bad or missing token"):
            await MonitorClient.connect(Target("tcp", host=host, port=port, token="wrong"))
        client = await MonitorClient.connect(handle.address)  # the token file is found
        try:
            assert client.hello["pid"] == os.getpid()
        finally:
            await client.close()
