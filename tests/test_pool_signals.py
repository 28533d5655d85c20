"""The pool in a real process: SIGTERM/SIGINT start a graceful drain, a second signal cancels,
and a handler raising SystemExit crashes only its worker's task without losing the item."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ROOT = Path(__file__).resolve().parent.parent

SIGNAL_SCRIPT = r"""
import asyncio, json, signal, sys
from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.snapshots import ShutdownPhase

ITEMS = int(sys.argv[1])
HANG = sys.argv[2] == "hang"

async def main() -> None:
    go = asyncio.Event()  # items may only finish once the drain has begun

    async def handler(item, priority):
        await go.wait()
        if HANG:
            await asyncio.Event().wait()
        await asyncio.sleep(0.001)

    pool = WorkerPool(PriorityQueue(), handler, workers=2)
    await pool.start()
    before = signal.getsignal(signal.SIGTERM)
    pool.install_signal_handlers(drain_timeout=120)
    for i in range(ITEMS):
        pool.submit_nowait(i, priority=i % 3)

    async def announce_phases() -> None:
        last = None
        while last is not ShutdownPhase.STOPPED:
            if pool.phase is not last:
                last = pool.phase
                print("phase", last.value, pool.accounting().completed, flush=True)
                if last is ShutdownPhase.DRAINING:
                    go.set()
            await asyncio.sleep(0.002)

    announcer = asyncio.create_task(announce_phases())
    await asyncio.sleep(0.01)  # both workers hold an item
    print("running", flush=True)
    report = await pool.wait_closed()
    await announcer
    print(json.dumps({
        "phases": [p.phase.value for p in report.phases],
        "deadline_hit": report.deadline_hit,
        "completed": report.accounting.completed,
        "submitted": report.accounting.submitted,
        "lost": report.accounting.lost,
        "duplicated": report.accounting.duplicated,
        "returned": sorted([r.item, r.where] for r in report.returned),
        "handler_restored": signal.getsignal(signal.SIGTERM) == before,
    }), flush=True)

asyncio.run(main())
print("exited", flush=True)
"""


def start(tmp_path: Path, script: str, *args: str) -> subprocess.Popen[str]:
    path = tmp_path / "pool_script.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def read_until(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    proc.kill()
    raise AssertionError(f"no line starting {prefix!r}; stderr: {proc.stderr.read()}")


def finish(proc: subprocess.Popen[str]) -> tuple[dict, str, str]:
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the process did not exit: {out!r} {err!r}") from None
    lines = out.splitlines()
    report = json.loads(next(line for line in lines if line.startswith("{")))
    return report, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_gracefully_and_exits_with_the_report(tmp_path: Path, sig) -> None:
    proc = start(tmp_path, SIGNAL_SCRIPT, "8", "finish")
    read_until(proc, "running")
    proc.send_signal(sig)
    assert read_until(proc, "phase draining").split()[2] == "0"  # nothing done before
    report, out, err = finish(proc)
    assert proc.returncode == 0, err
    assert out.rstrip().endswith("exited")
    assert report["phases"] == ["stopping-intake", "draining", "stopped"]
    assert report["completed"] == report["submitted"] == 8
    assert not report["deadline_hit"] and report["returned"] == []
    assert report["lost"] == 0 and report["duplicated"] == 0
    assert report["handler_restored"]  # the stopped pool gave the signals back
    assert "Traceback" not in err


def test_a_second_signal_cancels_and_returns_what_is_left(tmp_path: Path) -> None:
    proc = start(tmp_path, SIGNAL_SCRIPT, "5", "hang")
    read_until(proc, "running")
    proc.send_signal(signal.SIGTERM)
    read_until(proc, "phase draining")
    proc.send_signal(signal.SIGTERM)
    report, out, err = finish(proc)
    assert proc.returncode == 0, err
    assert out.rstrip().endswith("exited")
    assert report["phases"] == ["stopping-intake", "draining", "cancelling", "stopped"]
    assert report["deadline_hit"]
    assert report["completed"] == 0 and report["lost"] == 0
    wheres = [where for _, where in report["returned"]]
    assert sorted(item for item, _ in report["returned"]) == [0, 1, 2, 3, 4]
    assert wheres.count("in-flight") == 2 and wheres.count("queued") == 3
    assert report["handler_restored"]
    assert "Traceback" not in err


CRASH_SCRIPT = r"""
import asyncio, json
from engine.pool import WorkerPool
from engine.queue import PriorityQueue

crashes = []
holder = {}

async def main() -> None:
    async def handler(item, priority):
        if item == "exit":
            raise SystemExit(3)
        await asyncio.Event().wait()

    pool = holder["pool"] = WorkerPool(
        PriorityQueue(), handler, workers=2,
        on_crash=lambda worker_id, exc: crashes.append([worker_id, repr(exc)]),
    )
    await pool.start()
    pool.submit_nowait("hang", priority=0)
    await asyncio.sleep(0.01)
    pool.submit_nowait("exit", priority=1)
    await asyncio.Event().wait()

try:
    asyncio.run(main())
except SystemExit as exc:
    code = exc.code
pool = holder["pool"]
snap = pool.snapshot()
a = snap.accounting
print(json.dumps({
    "code": code,
    "crashes": crashes,
    "states": {w.name: w.state.value for w in snap.workers},
    "submitted": a.submitted, "queued": a.queued, "in_flight": a.in_flight,
    "completed": a.completed, "lost": a.lost, "duplicated": a.duplicated,
}))
"""


def test_system_exit_in_a_handler_crashes_its_worker_and_keeps_the_item(tmp_path: Path) -> None:
    proc = start(tmp_path, CRASH_SCRIPT)
    report, _, err = finish(proc)
    assert proc.returncode == 0, err
    assert report["code"] == 3
    assert report["crashes"] == [[2, "SystemExit(3)"]]
    # worker-2 crashed; worker-1 was cancelled by asyncio.run's cleanup and stopped.
    assert report["states"] == {"worker-1": "stopped", "worker-2": "crashed"}
    # Both items went back to the queue: the crash and the cancel lost nothing.
    assert report["submitted"] == report["queued"] == 2
    assert report["in_flight"] == report["completed"] == 0
    assert report["lost"] == 0 and report["duplicated"] == 0
    assert "never retrieved" not in err
