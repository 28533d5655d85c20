"""`heapwatch attach redis://...`: the real dashboard under Pilot on a real redis-server, with a
producer and worker processes (`heapwatch --queue ... --role ...`) sharing the queue."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis
import redis_fixture
from test_dashboard_signals import Dashboard
from test_redis_cli import command, scenario

from engine.shared import QueueTarget, read_heartbeats
from tui.app import HeapwatchApp
from tui.redis_source import RedisSource
from tui.widgets.event_log import EventLog
from tui.widgets.heap_table import HeapTable
from tui.widgets.hint_bar import HintBar
from tui.widgets.process_panel import ProcessPanel
from tui.widgets.summary_bar import SummaryBar
from tui.widgets.worker_table import HOST_KEY, WorkerTable

pytestmark = redis_fixture.needs_redis
redis_server = redis_fixture.redis_server
redis_url = redis_fixture.redis_url
until = redis_fixture.until

ROOT = Path(__file__).resolve().parent.parent
HOSTNAME = socket.gethostname()


async def wait_for(pilot, predicate, what: str, limit: float = 30.0) -> None:
    """Let the app run until `predicate()` holds (the limit guards a hang, it is no pace)."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def header(table: WorkerTable, process: subprocess.Popen) -> str:
    return HOST_KEY + f"{HOSTNAME}:{process.pid}"


def cell(table: WorkerTable, key: str, column: str) -> str:
    return table.get_cell(key, column) if key in table.shown_keys else ""


async def stored(client: aioredis.Redis, name: str) -> dict[bytes, bytes]:
    return await client.hgetall(f"heapwatch:{{{name}}}:meta")


def start(tmp_path: Path, url: str, role: str, name: str, **shape) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.err", "w")  # noqa: SIM115 - closed with the process
    return command("--queue", url, "--role", role, "--scenario", scenario(tmp_path, name, **shape),
                   stderr=log)  # fmt: skip


@contextlib.asynccontextmanager
async def one_process_on(redis_url: str, tmp_path: Path, name: str, **shape):
    """A `--role all` process on queue `name` whose heartbeat is in Redis: yields the queue's
    URL, a client and the process; stops both after."""
    url = f"{redis_url}?name={name}"
    client = aioredis.Redis.from_url(redis_url)
    process = start(tmp_path, url, "all", "all", **shape)
    try:
        await until(lambda: _beats(client, name, 1), "the heartbeat", limit=40)
        yield url, client, process
    finally:
        stop(process)
        await client.aclose()


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def test_read_only_dashboard_groups_workers_by_host_and_shows_a_killed_one_lost(
    redis_url, tmp_path
):
    url = f"{redis_url}?name=dash"
    client = aioredis.Redis.from_url(redis_url)
    producer = start(tmp_path, url, "producer", "producer", workers=1, rate=150)
    workers = [start(tmp_path, url, "worker", f"worker{i}", workers=2, latency=400, failures=0)
               for i in (1, 2)]  # fmt: skip
    try:
        await until(lambda: _beats(client, "dash", 3), "three heartbeats", limit=40)
        before = await stored(client, "dash")
        app = HeapwatchApp(RedisSource(QueueTarget.parse(url), interval=0.3))
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.part(WorkerTable)
            keys = [header(table, p) for p in (producer, *workers)]
            await wait_for(pilot, lambda: all(k in table.shown_keys for k in keys)
                           and table.row_count >= 3 + 4, "a header per host and the workers")
            assert [cell(table, k, "state") for k in keys] == ["live"] * 3
            assert cell(table, keys[1], "item").startswith("2 workers")
            panel = app.part(ProcessPanel).render().plain  # no cpu or rss of 0 for many processes
            assert "3 processes on the queue" in panel and "rss" not in panel
            assert "Redis does not carry them" in " ".join(
                app.part(EventLog).lines)  # why the log stays empty
            await wait_for(pilot, lambda: app.part(HeapTable).row_count > 0, "the heap's rows")
            await wait_for(pilot, lambda: "read-only" in app.part(SummaryBar).render().plain,
                           "the summary to say read-only")
            assert f"redis://127.0.0.1:{url.split(':')[2]}" in app.part(SummaryBar).render().plain

            # Read-only: o and a do nothing to the queue and the hint line says why.
            await pilot.press("a", "o")
            await wait_for(pilot, lambda: "--control" in app.part(HintBar).render().plain,
                           "the reason on the hint line")
            assert await stored(client, "dash") == before

            # Enter on a host's header folds its workers, and again unfolds them.
            table.focus()
            table.cursor_row = table.shown_keys.index(keys[1])
            rows = table.row_count
            await pilot.press("enter")
            assert table.row_count == rows - 2 and "▸" in table.get_cell(keys[1], "worker")
            await pilot.press("enter")
            assert table.row_count == rows

            # A worker host SIGKILLed while it holds leases: lost, its items back in N s.
            victim = workers[0]
            await until(lambda: _holds(client, "dash", victim.pid), "the victim's leases", 30)
            victim.kill()
            await wait_for(pilot, lambda: cell(table, keys[1], "state") == "LOST",
                           "the killed host shown as lost")
            assert "back in" in cell(table, keys[1], "item") or "next reap" in cell(
                table, keys[1], "item")
            assert cell(table, keys[2], "state") == "live"
            await pilot.press("q")
    finally:
        stop(producer, *workers)
        await client.aclose()


async def test_with_control_o_and_a_change_the_stored_settings_for_every_process(
    redis_url, tmp_path
):
    shape = {"workers": 2, "latency": 50, "failures": 0, "rate": 50}
    async with one_process_on(redis_url, tmp_path, "steer", **shape) as (url, client, worker):
        app = HeapwatchApp(RedisSource(QueueTarget.parse(url), control=True, interval=0.3))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None, "the first snapshot")
            await wait_for(pilot, lambda: "control" in app.part(SummaryBar).render().plain,
                           "the summary to say control")
            await pilot.press("a")
            await until(lambda: _meta(client, "steer", b"aging_rate", b"1.0"), "aging stored")
            await pilot.press("o")
            await until(lambda: _meta(client, "steer", b"overflow", b"reject"), "policy stored")
            await wait_for(pilot, lambda: app.snapshot.queue.aging_rate == 1.0
                           and app.snapshot.queue.overflow == "reject", "the panels to follow")
            await pilot.press("q")
        assert worker.poll() is None  # the process on the queue goes on under the new settings
    err = (tmp_path / "all.err").read_text()
    assert worker.returncode == 0 and "lost=0" in err, err  # (the check sat in the message)


async def test_the_command_opens_the_dashboard_on_the_queue_and_sigterm_detaches(
    redis_url, tmp_path
):
    """`heapwatch attach redis://...` in a real terminal, as a person types it."""
    shape = {"workers": 2, "latency": 20, "failures": 0, "rate": 50}
    async with one_process_on(redis_url, tmp_path, "typed", **shape) as (url, _, worker):
        dashboard = Dashboard("attach", url, "--no-config")

        async def on_screen() -> bool:
            return dashboard.shows("shared queue typed") and dashboard.shows("read-only")

        await until(on_screen, "the dashboard on the queue", limit=40)
        dashboard.process.send_signal(signal.SIGTERM)
        assert dashboard.wait() == 0
        assert worker.poll() is None  # detaching leaves the queue's processes alone


def attach(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "REDIS_PASSWORD"}
    full.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "tui", "attach", *args], env=full,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_no_such_queue_unreachable_or_wrong_password_is_one_line_and_exit_2(
    redis_url, tmp_path
):
    port = redis_fixture.free_port()
    secured = redis_fixture.RedisServer(tmp_path, password="s3cret-pw")
    secured.start()
    try:
        cases = [
            (attach(f"{redis_url}?name=nothing-here"), "no such queue"),
            (attach(f"redis://127.0.0.1:{port}/0?name=q"), "is unreachable"),
            (attach(f"redis://:wrong-pw@127.0.0.1:{secured.port}/0?name=q"), "refused the password"),
            (attach(f"{secured.url}?name=q"), "needs a password"),
        ]
    finally:
        secured.stop()
    for result, message in cases:
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "wrong-pw" not in result.stderr


async def _beats(client: aioredis.Redis, name: str, n: int) -> bool:
    return len(await read_heartbeats(client, name)) >= n


async def _holds(client: aioredis.Redis, name: str, pid: int) -> bool:
    tokens = await client.zrange(f"heapwatch:{{{name}}}:leases", 0, -1)
    return any(token.endswith(f"|{HOSTNAME}:{pid}".encode()) for token in tokens)


async def _meta(client: aioredis.Redis, name: str, field: bytes, value: bytes) -> bool:
    return (await stored(client, name)).get(field) == value
