"""The same WorkerPool and Watchdog over RedisPriorityQueue, against a real redis-server.

Fates are checked by the test's own bookkeeping (what each handler saw) and by the queue's
counters in Redis, not by the pool's. The chaos tests run pools in real processes: one
SIGKILLed mid-lease, one whose loop blocks past its lease.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis.asyncio as aioredis
import redis_fixture

from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.redis_queue import RedisPriorityQueue
from engine.shared import SharedQueueView
from engine.snapshots import AlertKind
from engine.watchdog import Watchdog

pytestmark = redis_fixture.needs_redis
redis_server = redis_fixture.redis_server
redis_url = redis_fixture.redis_url
until = redis_fixture.until

ROOT = Path(__file__).resolve().parent.parent




async def test_a_pool_over_redis_gives_every_item_exactly_one_fate(redis_url):
    queue = RedisPriorityQueue(redis_url, "fates", lease=2.0, max_attempts=3, max_wait=0.2)
    attempts: Counter[int] = Counter()
    succeeded: Counter[int] = Counter()

    async def handler(item: dict, priority: float, ctx) -> None:
        n = item["n"]
        attempts[n] += 1
        assert ctx.attempt == attempts[n]  # the queue counts the deliveries, across retries
        await asyncio.sleep(0.001)
        if n % 10 == 0:
            raise RuntimeError("always fails")  # dead-lettered by the queue's max_attempts
        if n % 7 == 0 and attempts[n] == 1:
            raise ConnectionError("first attempt fails")  # nacked, retried after the backoff
        succeeded[n] += 1

    pool = WorkerPool(queue, handler, workers=6, backoff_base=0.01, backoff_cap=0.05)
    async with pool:
        for n in range(200):
            # A dict payload goes to Redis as it is: the pool wraps nothing around it.
            await pool.submit({"n": n}, priority=n % 4)
        await until(lambda: _settled(queue, 200), "every item settled")
        async def answered() -> bool:  # every failed attempt's nack has its answer
            counts = pool.lease_counts()
            return counts.nacked + counts.dead_lettered == sum(attempts.values()) - 180

        await until(answered, "every nack answered")
        workers = pool.snapshot().workers
        report = await pool.shutdown(drain_timeout=5)
    dead = {n for n in range(200) if n % 10 == 0}
    assert set(succeeded) == set(range(200)) - dead
    assert all(count == 1 for count in succeeded.values())
    assert all(attempts[n] == 3 for n in dead)
    shared = await queue.accounting()
    assert (shared.submitted, shared.completed, shared.dead_lettered, shared.lost) == (
        200, 180, 20, 0,
    )  # fmt: skip
    local = report.accounting
    retried = sum(1 for n in range(200) if n % 7 == 0 and n not in dead)
    # This process's deliveries: each one completed, dead-lettered or handed back (a nack).
    assert local.submitted == sum(attempts.values()) == 180 + 60 + retried
    assert (local.completed, local.dead_lettered, local.returned, local.lost) == (
        180, 20, 40 + retried, 0,
    )  # fmt: skip
    counts = pool.lease_counts()
    assert counts is not None
    assert (counts.submitted, counts.acked, counts.nacked, counts.stale_acks) == (
        200, 180, 40 + retried, 0,
    )  # fmt: skip
    # The worker rows: 'fail' every failed attempt, 'gave up' (failed - retried) the 20 dead
    # letters, as over the in-process queue (the nack's answer says which it was).
    assert sum(w.failed for w in workers) == 60 + retried
    assert sum(w.failed - w.retried for w in workers) == 20
    letters = await queue.dead_letters()
    assert sorted(letter.item["n"] for letter in letters) == sorted(dead)
    assert {letter.error for letter in letters} == {"RuntimeError('always fails')"}
    assert len(pool.dead_letters) == 20  # told locally too, with the payload
    await queue.close()


async def test_submit_nowait_over_redis_sends_in_batches_and_refuses_unencodable(redis_url):
    queue = RedisPriorityQueue(redis_url, "nowait", max_wait=0.2)
    done: list[int] = []

    async def handler(item: int, priority: float) -> None:
        done.append(item)

    async with WorkerPool(queue, handler, workers=2) as pool:
        for n in range(50):
            pool.submit_nowait(n, priority=n % 3)
        try:
            pool.submit_nowait(object())
        except TypeError as error:
            assert "cannot be encoded" in str(error)
        else:
            raise AssertionError("an object no codec takes was accepted")
        await until(lambda: _settled(queue, 50), "50 completions")
    assert sorted(done) == list(range(50))
    assert (await queue.accounting()).lost == 0
    await queue.close()


async def test_a_handler_longer_than_its_lease_runs_once(redis_url):
    """Lease 0.3 s, handler 1.2 s: the pool extends it every 0.1 s; a second consumer that
    would take any expired lease finds nothing."""
    queue = RedisPriorityQueue(redis_url, "long", lease=0.3, reap_interval=0.02, max_wait=0.1)
    other = RedisPriorityQueue(redis_url, "long", lease=0.3, reap_interval=0.02, max_wait=0.1)
    calls: list[int] = []

    async def slow(item: int, priority: float) -> None:
        calls.append(item)
        await asyncio.sleep(1.2)

    async def fast(item: int, priority: float) -> None:
        calls.append(item)

    async with WorkerPool(queue, slow, workers=1) as pool:
        await pool.submit(1)
        await until(lambda: _true(bool(calls)), "the slow handler to start")
        async with WorkerPool(other, fast, workers=2) as thief:
            await until(lambda: _settled(queue, 1), "the slow item completed", limit=10)
            await thief.shutdown(drain_timeout=1)
        counts = pool.lease_counts()
    assert calls == [1]
    stats = await queue.stats()
    assert (stats.completed, stats.redelivered, stats.expired, stats.stale_acks) == (1, 0, 0, 0)
    assert counts is not None and counts.extended >= 5 and counts.leases_lost == 0
    await queue.close()
    await other.close()


async def test_a_cancelled_worker_releases_its_item_to_its_place_attempt_not_counted(redis_url):
    queue = RedisPriorityQueue(redis_url, "cancel", lease=5.0, max_wait=0.1)
    seen: list[tuple[str, int]] = []
    started = asyncio.Event()

    async def handler(item: str, priority: float, ctx) -> None:
        seen.append((item, ctx.attempt))
        if len(seen) == 1:
            started.set()
            await asyncio.sleep(60)  # cancelled from the outside, by cancel_worker

    async with WorkerPool(queue, handler, workers=1) as pool:
        await pool.submit("first", priority=1)
        await started.wait()
        await pool.submit("second", priority=1)  # arrived after "first": served after it
        assert pool.cancel_worker(pool.busiest_worker())
        # The release is one script call after the cancel; once it landed, the item is
        # ahead of "second" again.
        await until(lambda: _true(pool.lease_counts().released == 1), "the release")
        pool.add_worker()
        await until(lambda: _settled(queue, 2), "both items completed")
    assert seen == [("first", 1), ("first", 1), ("second", 1)]  # same place, same attempt
    counts = pool.lease_counts()
    assert counts is not None and counts.released == 1
    stats = await queue.stats()
    assert (stats.completed, stats.redelivered, stats.expired, stats.stale_acks) == (2, 0, 0, 0)
    assert pool.accounting().lost == 0
    await queue.close()


async def test_the_in_process_queue_is_untouched_by_leases():
    queue = PriorityQueue()
    pool = WorkerPool(queue, lambda item, priority: asyncio.sleep(0), workers=1)
    assert pool.lease_counts() is None
    async with pool:
        job_id = pool.submit_nowait("x")
        assert job_id == 1
        assert [entry.job_id for entry in pool.top(5)] == [1]


async def test_the_watchdog_over_redis_reads_a_snapshot_refreshed_in_the_background(redis_url):
    queue = RedisPriorityQueue(redis_url, "watched", max_wait=0.2)
    view = SharedQueueView(queue, interval=0.05)
    watchdog = Watchdog(view, interval=0.05, sla=0.2, loop_block_ms=None)
    await queue.put("starving", priority=9)
    await view.start()
    async with watchdog:
        await until(lambda: _true(bool(watchdog.active_alerts)), "a starvation alert")
        assert (await queue.stats()).depth == 1  # the alert came from the view, nothing taken
        (alert,) = watchdog.active_alerts
        assert alert.kind is AlertKind.STARVATION and alert.priority == 9.0
        # A tick reads no network: a sample runs synchronously on the last snapshot.
        started = time.perf_counter()
        watchdog.sample()
        assert time.perf_counter() - started < 0.05
        got = await queue.get()
        await queue.ack(got)
        await until(lambda: _true(not watchdog.active_alerts), "the alert resolved")
    await view.stop()
    await queue.close()


# --------------------------------------------------------------------------- chaos, processes

WORKER = r"""
import asyncio, json, sys, time
import redis.asyncio as aioredis
from engine.pool import WorkerPool
from engine.redis_queue import RedisPriorityQueue
from engine.shared import SharedQueueView
from engine.watchdog import Watchdog

url, name, mode, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

async def main():
    log = aioredis.Redis.from_url(url)
    queue = RedisPriorityQueue(url, name, lease=0.5, reap_interval=0.05, max_wait=0.2)
    blocked = []

    async def handler(item, priority, ctx):
        await log.rpush("starts", f"{item}:{ctx.attempt}")
        if mode == "victim":
            await asyncio.sleep(60)
        elif mode == "blocker" and not blocked:
            blocked.append(item)
            time.sleep(2.0)  # the loop itself is held: no extend can run
        else:
            await asyncio.sleep(0.002)
        await log.rpush("done", f"{item}:{ctx.attempt}")

    pool = WorkerPool(queue, handler, workers=workers)
    view = SharedQueueView(queue, interval=0.1)
    watchdog = Watchdog(view, pool, interval=0.1, loop_block_ms=100)
    await view.start()
    async with pool, watchdog:
        await log.rpush("ready", 1)
        while not await log.exists("stop"):
            await asyncio.sleep(0.05)
        await pool.shutdown(drain_timeout=2)
    counts = pool.lease_counts()
    alerts = [a.message for a in watchdog.alerts]
    print(json.dumps({"stale_acks": counts.stale_acks, "leases_lost": counts.leases_lost,
                      "completed": pool.accounting().completed, "alerts": alerts}))
    await view.stop()
    await queue.close()
    await log.aclose()

asyncio.run(main())
"""


def start_worker(url: str, name: str, mode: str, workers: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, name, mode, str(workers)],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


async def test_sigkill_a_worker_process_mid_lease_every_item_completes(redis_url):
    log = aioredis.Redis.from_url(redis_url)
    queue = RedisPriorityQueue(redis_url, "killed", lease=0.5)
    await queue.put_many(range(3), priority=0)  # what the victim's three workers take
    victim = start_worker(redis_url, "killed", "victim", 3)
    survivor = None
    try:
        await until(lambda: _length(log, "starts", 3), "the victim's three leases", limit=30)
        await asyncio.sleep(0.6)  # more than a lease: alive, the victim keeps extending them
        assert (await queue.stats()).redelivered == 0
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        await queue.put_many(range(3, 40), priority=1)
        survivor = start_worker(redis_url, "killed", "worker", 4)
        await until(lambda: _settled(queue, 40), "every item completed", limit=30)
        await log.set("stop", 1)
        out, _ = survivor.communicate(timeout=20)
    finally:
        for process in (victim, survivor):
            if process is not None and process.poll() is None:
                process.kill()
    starts = [x.decode() for x in await log.lrange("starts", 0, -1)]
    done = [x.decode().split(":")[0] for x in await log.lrange("done", 0, -1)]
    assert sorted(done, key=int) == [str(n) for n in range(40)]  # each completed once
    stats = await queue.stats()
    accounting = await queue.accounting()
    assert (accounting.submitted, accounting.completed, accounting.lost) == (40, 40, 0)
    redelivered = [s for s in starts if not s.endswith(":1")]
    assert sorted(redelivered) == ["0:2", "1:2", "2:2"]
    assert stats.redelivered == stats.expired == len(redelivered)
    assert json.loads(out)["completed"] == 40
    await queue.close()
    await log.aclose()


async def test_a_worker_loop_blocked_past_its_lease_is_redelivered_and_alerted(redis_url):
    log = aioredis.Redis.from_url(redis_url)
    queue = RedisPriorityQueue(redis_url, "blocked", lease=0.5, reap_interval=0.05)
    blocker = start_worker(redis_url, "blocked", "blocker", 1)
    try:
        await until(lambda: _length(log, "ready", 1), "the blocking worker", limit=30)
        await queue.put("slow")
        await until(lambda: _length(log, "starts", 1), "the blocked delivery", limit=20)
        again = await asyncio.wait_for(queue.get(), 5)  # our get reaps the expired lease
        assert (again.item, again.attempt) == ("slow", 1)
        assert await queue.ack(again)
        await until(lambda: _length(log, "done", 1), "the blocked handler's return")
        await log.set("stop", 1)
        out, _ = blocker.communicate(timeout=20)
    finally:
        if blocker.poll() is None:
            blocker.kill()
    summary = json.loads(out)
    assert summary["stale_acks"] == 1  # its ack came after the reaper: refused and counted
    assert any("redelivery possible" in message for message in summary["alerts"])
    stats = await queue.stats()
    # The server also counts a refused extend: the blocker's keeper may try one after the
    # sleep and before the ack. Each refusal the server counted, the blocker was told of.
    assert stats.stale_acks == summary["stale_acks"] + summary["leases_lost"]
    assert (stats.redelivered, stats.completed) == (1, 1)
    assert (await queue.accounting()).lost == 0
    await queue.close()
    await log.aclose()


async def _settled(queue: RedisPriorityQueue, n: int) -> bool:
    a = await queue.accounting()
    return a.completed + a.dead_lettered >= n and a.in_flight == 0 and a.retry_scheduled == 0


async def _length(client: aioredis.Redis, key: str, n: int) -> bool:
    return await client.llen(key) >= n


async def _true(value: bool) -> bool:
    return value
