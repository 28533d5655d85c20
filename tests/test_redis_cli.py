"""`heapwatch --queue redis://...` in real processes against a real redis-server: producers and
workers in separate commands, SIGTERM on a worker, heartbeats, the password, the mistakes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redis_fixture

from engine.redis_queue import RedisPriorityQueue
from engine.shared import QueueTarget, read_heartbeats, redact

pytestmark = redis_fixture.needs_redis
redis_server = redis_fixture.redis_server
redis_url = redis_fixture.redis_url
until = redis_fixture.until
durable_redis = redis_fixture.durable_redis

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """
seed = 3
[queue]
maxsize = 0
[pool]
workers = {workers}
max_attempts = 5
backoff_base = 0.01
backoff_cap = 0.05
drain_timeout = {drain}
[handler]
latency_ms = {{ mean = {latency}, p99 = {p99} }}
failure_rate = {failures}
[[producers]]
rate = {rate}
priorities = {{ 0 = 1, 5 = 3, 9 = 1 }}
"""


def scenario(tmp_path: Path, name: str, *, workers=3, drain=10.0, latency=2, failures=0.05,
             rate=200) -> Path:  # fmt: skip
    path = tmp_path / f"{name}.toml"
    text = SCENARIO.format(workers=workers, drain=drain, latency=latency, p99=latency * 3,
                           failures=failures, rate=rate)  # fmt: skip
    path.write_text(text)
    return path


def command(*args: str | Path, env: dict[str, str] | None = None, stderr=None) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if k != "REDIS_PASSWORD"}  # only env's
    full_env.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "tui", "--headless", *map(str, args)],
        env=full_env, stdout=subprocess.PIPE, stderr=stderr or subprocess.PIPE, text=True,
    )  # fmt: skip


def run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 60):
    process = command(*args, env=env)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err




async def test_a_producer_and_two_workers_share_one_queue(redis_url, tmp_path):
    url = f"{redis_url}?name=three"
    toml = scenario(tmp_path, "three")
    logs = [open(tmp_path / f"w{i}.err", "w") for i in (1, 2)]  # noqa: SIM115
    workers = [
        command("--queue", url, "--role", "worker", "--scenario", toml,
                "--report", tmp_path / f"w{i}.json", stderr=logs[i - 1])
        for i in (1, 2)
    ]  # fmt: skip
    client = aioredis.Redis.from_url(redis_url)
    queue = RedisPriorityQueue(redis_url, "three")
    try:
        await until(lambda: _beats(client, "three", 2), "two workers' heartbeats", limit=30)
        beats = await read_heartbeats(client, "three")
        assert {beat["role"] for beat in beats} == {"worker"}
        for beat in beats:  # worker rows carry the host and pid, so hosts never collide
            assert beat["workers"] and all(w["id"].startswith(beat["host"] + "/") for w in beat["workers"])
            assert beat["queue"] == f"{redis_url}?name=three"
        code, _, err = await asyncio.to_thread(
            run, "--queue", url, "--role", "producer", "--scenario", toml, "--duration", "2",
            "--report", tmp_path / "p.json",
        )  # fmt: skip
        assert code == 0, err
        await until(lambda: _drained(queue), "the workers to drain the queue", limit=30)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(30) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        for log in logs:
            log.close()
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("p", "w1", "w2")}
    put = reports["p"]["shared_queue"]["leases"]["submitted"]
    final = (await queue.accounting())
    assert put > 100 and final.submitted == put and final.lost == 0
    completed = [reports[w]["completed"] for w in ("w1", "w2")]
    assert all(n > 0 for n in completed)  # both served
    assert sum(completed) + final.dead_lettered == put == final.completed + final.dead_lettered
    for name, report in reports.items():
        assert report["lost"] == 0 and report["shared_queue"]["global"]["lost"] == 0
        assert report["shared_queue"]["role"] == ("producer" if name == "p" else "worker")
    assert reports["p"]["completed"] == 0  # the producer runs no workers
    # Each worker's own failures went back for a retry (nacked), counted in its report.
    for w in ("w1", "w2"):
        leases = reports[w]["shared_queue"]["leases"]
        assert leases["deliveries"] == leases["acked"] + leases["nacked"] + leases["dead_lettered"]
    assert await read_heartbeats(client, "three") == []  # each took its key down on the way out
    await queue.close()
    await client.aclose()


async def test_sigterm_a_worker_hands_back_its_own_and_leaves_the_queue_alone(redis_url, tmp_path):
    url = f"{redis_url}?name=term"
    queue = RedisPriorityQueue(redis_url, "term")
    await queue.put_many([f"item-{n}" for n in range(100)], priority=5)
    toml = scenario(tmp_path, "term", workers=4, drain=0.3, latency=2000, failures=0, rate=0)
    worker = command("--queue", url, "--role", "worker", "--scenario", toml,
                     "--report", tmp_path / "w.json")  # fmt: skip
    try:
        await until(lambda: _leased(queue, 4), "the worker's four leases", limit=30)
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    report = json.loads((tmp_path / "w.json").read_text())
    leases = report["shared_queue"]["leases"]
    assert leases["released"] >= 1  # cut off by the 0.3 s drain: back at its place at once
    stats = await queue.stats()
    assert stats.leased == 0 and stats.expired == 0  # nothing left to a lease running out
    assert stats.depth + stats.completed == 100 and (await queue.accounting()).lost == 0
    assert stats.depth >= 90  # the rest of the queue is untouched
    assert "heapwatch: stopped after" in err and "lost=0" in err
    await queue.close()


def test_the_password_is_never_shown(tmp_path):
    if redis_fixture.REDIS_SERVER is None:
        pytest.skip("no redis-server")
    server = redis_fixture.RedisServer(tmp_path, password="s3cret-pw")
    server.start()
    try:
        secret = tmp_path / "password"
        secret.write_text("s3cret-pw\n")
        url = f"redis://:s3cret-pw-in-url@127.0.0.1:{server.port}/0?name=pw"
        code, out, err = run("--queue", url, "--redis-password-file", secret, "--duration", "1",
                             "--scenario", scenario(tmp_path, "pw"), "--report", tmp_path / "r.json")  # fmt: skip
        assert code == 0, err
        report = (tmp_path / "r.json").read_text()
        for text in (out, err, report):
            assert "s3cret" not in text
        assert json.loads(report)["shared_queue"]["queue"] == f"redis://127.0.0.1:{server.port}/0?name=pw"
        # The same through REDIS_PASSWORD.
        code, _, err = run("--queue", f"redis://127.0.0.1:{server.port}/0?name=pw", "--duration", "0.5",
                           env={"REDIS_PASSWORD": "s3cret-pw"})  # fmt: skip
        assert code == 0 and "s3cret" not in err
        # A wrong one, and none at all: one line each, exit 2.
        for env, why in (({"REDIS_PASSWORD": "wrong"}, "refused the password"), ({}, "needs a password")):
            code, out, err = run("--queue", f"redis://127.0.0.1:{server.port}/0?name=pw", env=env)
            assert code == 2 and err.count("\n") == 1 and why in err and "Traceback" not in err, err
            assert "wrong" not in err
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queue", "http://127.0.0.1/0"], "expected redis://HOST:PORT/DB?name=QUEUE"),
        (["--queue", "redis://127.0.0.1:1/0?name=bad{name}"], "name must be 1-100 letters"),
        (["--queue", "redis://127.0.0.1:1/x"], "the database must be a number"),
        (["--queue", "redis://127.0.0.1:1/0?nme=q"], "unknown parameter 'nme'"),
        (["--role", "worker"], "--role and --redis-password-file need --queue"),
        (["--queue", "redis://127.0.0.1:1/0", "--redis-password-file", "/nonexistent/pw"],
         "--redis-password-file '/nonexistent/pw'"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(args, message):
    code, out, err = run(*args)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("heapwatch: error:") and message in err, err


def test_unreachable_redis_is_one_line_and_exit_2():
    port = redis_fixture.free_port()  # nothing listens there
    code, _, err = run("--queue", f"redis://127.0.0.1:{port}/0?name=q")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"Redis at redis://127.0.0.1:{port}/0?name=q is unreachable" in err


async def test_stored_settings_that_disagree_are_one_line_and_exit_2(redis_url):
    queue = RedisPriorityQueue(redis_url, "agreed", aging_rate=0.5)
    await queue.stats()  # stores the rate with the queue
    code, _, err = await asyncio.to_thread(run, "--queue", f"{redis_url}?name=agreed", "--aging", "2")
    assert code == 2 and err.count("\n") == 1 and "aging_rate 0.5" in err and "Traceback" not in err
    await queue.close()
    queue = RedisPriorityQueue(redis_url, "policed", overflow="reject")
    await queue.stats()  # stores the policy with the queue
    args = ("--queue", f"{redis_url}?name=policed", "--duration", "0.5")
    code, _, err = await asyncio.to_thread(run, *args)  # the scenario's 'block'
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "has overflow 'reject'; this process asked for 'block'" in err, err
    code, _, err = await asyncio.to_thread(run, *args, "--overflow", "reject")
    assert code == 0, err
    await queue.close()


def test_urls_are_shown_without_their_password():
    assert redact("redis://user:pw@host:6379/1?name=q") == "redis://host:6379/1?name=q"
    assert redact("redis://:pw@[::1]:6379/0") == "redis://[::1]:6379/0"
    target = QueueTarget.parse("redis://:pw@host:7000/2?name=jobs")
    assert (target.password, target.shown) == ("pw", "redis://host:7000/2?name=jobs")
    assert "pw" not in repr(target.shown)


async def _beats(client: aioredis.Redis, name: str, n: int) -> bool:
    return len(await read_heartbeats(client, name)) >= n


async def _drained(queue: RedisPriorityQueue) -> bool:
    s = await queue.stats()
    return s.submitted > 0 and s.depth == s.leased == s.retry_scheduled == 0


async def _leased(queue: RedisPriorityQueue, n: int) -> bool:
    return (await queue.stats()).leased >= n


async def test_redis_restart_mid_run_heapwatch_processes_reconnect_and_lose_nothing(
    durable_redis, tmp_path
):
    """`heapwatch --queue` producer and worker processes while redis-server is SIGKILLed and
    restarted on its append-only file: both live through it and every item has one fate."""
    url = f"{durable_redis.url}?name=restart"
    toml = scenario(tmp_path, "restart", workers=3, latency=5, failures=0, rate=100)
    logs = {name: open(tmp_path / f"{name}.err", "w") for name in ("p", "w")}  # noqa: SIM115
    producer = command("--queue", url, "--role", "producer", "--scenario", toml,
                       "--report", tmp_path / "p.json", stderr=logs["p"])  # fmt: skip
    worker = command("--queue", url, "--role", "worker", "--scenario", toml,
                     "--report", tmp_path / "w.json", stderr=logs["w"])  # fmt: skip
    queue = RedisPriorityQueue(durable_redis.url, "restart")
    try:
        await until(lambda: _completed_at_least(queue, 50), "work before the restart", limit=40)
        await asyncio.to_thread(durable_redis.restart)
        before = (await queue.stats()).completed
        await until(lambda: _completed_at_least(queue, before + 50), "work after it", limit=40)
        assert producer.poll() is None and worker.poll() is None
        producer.send_signal(signal.SIGTERM)
        assert producer.wait(30) == 0
        await until(lambda: _drained(queue), "the worker to drain the queue", limit=40)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        for process in (producer, worker):
            if process.poll() is None:
                process.kill()
        for log in logs.values():
            log.close()
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("p", "w")}
    assert (await queue.accounting()).lost == 0
    for report in reports.values():
        assert report["lost"] == 0 and report["shared_queue"]["global"]["lost"] == 0
    err = (tmp_path / "w.err").read_text() + (tmp_path / "p.err").read_text()
    assert "Traceback" not in err, err[err.find("Traceback") - 300:][:3000]
    await queue.close()


async def _completed_at_least(queue: RedisPriorityQueue, n: int) -> bool:
    return (await queue.stats()).completed >= n
