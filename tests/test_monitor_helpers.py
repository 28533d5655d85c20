"""Shared by the monitor tests (no tests here): a real service in a subprocess, a short monitor
directory, and a client that waits for a kind of frame with a bound."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SERVICE = r'''
import argparse, asyncio, json, os, sys, threading, time
import engine
from engine import PriorityQueue, Watchdog, WorkerPool

parser = argparse.ArgumentParser()
parser.add_argument("--name", default="svc")
parser.add_argument("--tcp", default=None)
parser.add_argument("--control", action="store_true")
parser.add_argument("--rate", type=float, default=10.0)
parser.add_argument("--deadline", type=float, default=0.1)
parser.add_argument("--backend", default=None)
parser.add_argument("--no-watchdog", action="store_true")
parser.add_argument("--depth", type=int, default=2000)
args = parser.parse_args()

async def handler(item, priority):
    await asyncio.sleep(0.05)

def blocking_sleep(seconds):
    time.sleep(seconds)

def busy_python_loop(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n

async def main():
    loop = asyncio.get_running_loop()
    queue = PriorityQueue()
    pool = WorkerPool(queue, handler, workers=2)
    watchdog = None if args.no_watchdog else Watchdog(queue, pool, loop_block_ms=100)
    stop = asyncio.Event()
    await pool.start()
    if watchdog is not None:
        await watchdog.start()
    for n in range(args.depth):
        pool.submit_nowait({"card": f"s3cret-{n}"}, priority=n % 3)
    monitor = engine.serve_monitor(
        queue=queue, pool=pool, watchdog=watchdog, name=args.name, rate=args.rate,
        deadline=args.deadline, allow_control=args.control, backend=args.backend,
        tcp=args.tcp, item_repr=lambda item: "card ****")
    print(json.dumps({"address": monitor.address, "pid": os.getpid(),
                      "token_file": monitor.token_file}), flush=True)

    def run(command):
        word, _, value = command.partition(" ")
        if word == "sleep":
            blocking_sleep(float(value))
        elif word == "busy":
            busy_python_loop(float(value))
        elif word == "quit":
            stop.set()
        print("done " + word, flush=True)

    def read_stdin():
        for line in sys.stdin:
            loop.call_soon_threadsafe(run, line.strip())
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read_stdin, daemon=True).start()
    await stop.wait()
    monitor.close()

asyncio.run(main())
'''


def short_monitor_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh 0700 monitor directory with a short path (sockets allow ~108 bytes).

    Each test module makes it a fixture: `yield from short_monitor_dir(monkeypatch)`."""
    path = Path(tempfile.mkdtemp(prefix="hw-"))
    monkeypatch.setenv("HEAPWATCH_MONITOR_DIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Service:
    """A service process serving a monitor; `send('sleep 1')` blocks its loop."""

    def __init__(self, directory: Path, *args: str) -> None:
        env = {**os.environ, "HEAPWATCH_MONITOR_DIR": str(directory),
               "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE, *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(20):
            self.stop()
            raise AssertionError(f"the service did not start: {self.proc.stderr.read()}")
        info = json.loads(self.lines[0])
        self.address: str = info["address"]
        self.pid: int = info["pid"]
        self.token_file: str | None = info["token_file"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            self._ready.set()
        self._ready.set()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait_line(self, text: str, limit: float = 10.0) -> None:
        end = time.monotonic() + limit
        while text not in self.lines:
            if time.monotonic() > end:
                raise AssertionError(f"the service never printed {text!r}: {self.lines}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.send("quit")
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(Exception):
                stream.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


@contextlib.contextmanager
def service(directory: Path, *args: str) -> Iterator[Service]:
    running = Service(directory, *args)
    try:
        yield running
    finally:
        running.stop()


async def frames_until(client, predicate, limit: float = 10.0) -> list:
    """Read frames until `predicate(frames)` holds (the limit only guards against a hang)."""
    end = time.monotonic() + limit
    got: list = []
    while not predicate(got):
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; frames: {[f.type for f in got]}")
        frame = await client.next_frame(left)
        if frame is None and client.closed:
            raise AssertionError(f"disconnected; frames: {[f.type for f in got]}")
        if frame is not None:
            got.append(frame)
    return got


def recording_with_an_alert(tmp_path: Path):
    """A recording of ten frames a second apart (wall 100..109); an alert is raised at 6."""
    import dataclasses

    from engine.monitor_ops import Operations
    from engine.queue import PriorityQueue
    from engine.recording import Recorder, load_recording
    from engine.snapshots import Alert, AlertKind
    from engine.wire import Codec

    codec = Codec()
    path = tmp_path / "alert.ndjson"
    ops = Operations(queue=PriorityQueue())
    plain = ops.snapshot()
    ops.close()
    alert = Alert(id=1, kind=AlertKind.STARVATION, started_at=0.0, message="starving")
    with Recorder(path) as rec:
        for n in range(10):
            snapshot = plain if n < 6 else dataclasses.replace(
                plain, watchdog=dataclasses.replace(plain.watchdog, alerts=(alert,)))
            rec.write(codec.encode("snapshot", snapshot, wall=100.0 + n))
    return load_recording(path)
