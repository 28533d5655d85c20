"""What `heapwatch attach redis://...` reads and changes, against a real redis-server: the heap's
rows (`top`), who holds leases, the stored settings every process follows, and a get that a
pause interrupts. The dashboard itself, on real processes, is in test_redis_dashboard.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redis_fixture

from engine.redis_queue import RedisPriorityQueue

pytestmark = redis_fixture.needs_redis
redis_server = redis_fixture.redis_server
redis_url = redis_fixture.redis_url
until = redis_fixture.until

ROOT = Path(__file__).resolve().parent.parent


async def served(q: RedisPriorityQueue, n: int) -> list:
    out = []
    for _ in range(n):
        delivery = await q.get()
        out.append((delivery.item, delivery.priority))
        await q.ack(delivery)
    return out


@pytest.mark.parametrize("rate", [0.0, 50.0])
async def test_top_lists_what_get_serves_next_in_that_order(redis_url, rate):
    q = RedisPriorityQueue(redis_url, "top", aging_rate=rate, item_repr=lambda i: f"item {i}")
    for i in range(30):
        await q.put(i, priority=(i * 7) % 5 + 0.5 * (i % 2))
        await asyncio.sleep(0.002 if rate else 0)  # arrivals apart, so aging reorders them
    top = await q.top(12)
    assert [e.item for e in top] == [None] * 12  # no payload object ever leaves Redis here
    assert all(e.item_repr == f"item {e.job_id - 1}" for e in top)
    assert all(e.effective_priority <= e.priority for e in top)
    at_two = await q.top(4, priority=2)
    order = await served(q, 30)
    assert [(int(e.item_repr.split()[1]), e.priority) for e in top] == order[:12]
    assert [int(e.item_repr.split()[1]) for e in at_two] == [i for i, p in order if p == 2][:4]
    assert await q.top(5) == ()
    await q.destroy()
    await q.close()


async def test_lease_holders_name_the_consumer_and_when_its_leases_run_out(redis_url):
    mine = RedisPriorityQueue(redis_url, "held", lease=20.0, consumer="box:1")
    anonymous = RedisPriorityQueue(redis_url, "held", lease=20.0)
    await mine.put_many(range(5))
    await mine.get_many(3)
    await anonymous.get()
    (holder,) = await mine.lease_holders()
    assert (holder.consumer, holder.leased) == ("box:1", 3)
    assert 0 < holder.soonest <= holder.latest <= 20.0
    await mine.destroy()
    for q in (mine, anonymous):
        await q.close()


SECOND_PROCESS = textwrap.dedent("""
    import asyncio
    import sys
    from engine.redis_queue import RedisPriorityQueue

    async def main():
        q = RedisPriorityQueue(sys.argv[1], "settings", maxsize=3, aging_rate=0.0)
        await q.stats()
        print("ready", flush=True)
        while (q.aging_rate, q.overflow.value) != (2.0, "reject"):
            await asyncio.sleep(0.02)
            await q.stats()
        try:
            await q.put("late", priority=0)  # the queue is full: the stored policy refuses it
        except asyncio.QueueFull:
            pass
        print(q.aging_rate, q.overflow.value, (await q.stats()).rejected, flush=True)
        await q.close()

    asyncio.run(main())
""")


async def test_stored_settings_reach_every_process_at_once(redis_url):
    here = RedisPriorityQueue(redis_url, "settings", maxsize=3, aging_rate=0.0)
    await here.put("old", priority=8.05)
    await asyncio.sleep(0.05)  # so that "old" has waited: with aging it goes first
    await here.put("new", priority=8)
    await here.put("third", priority=8)
    other = subprocess.Popen([sys.executable, "-c", SECOND_PROCESS, redis_url], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert other.stdout is not None
        assert await asyncio.to_thread(other.stdout.readline) == "ready\n"
        dashboard = RedisPriorityQueue(redis_url, "settings", aging_rate=None)
        assert await dashboard.set_aging(2.0) == 2.0
        assert await dashboard.set_overflow("reject") == "reject"
        line = await asyncio.to_thread(other.stdout.readline)
        assert line.split() == ["2.0", "reject", "1"]
        assert other.wait(10) == 0
    finally:
        if other.poll() is None:
            other.kill()
    # This process asked for no aging, yet serves by the stored rate: "old" first now.
    assert [item for item, _ in await served(here, 3)] == ["old", "new", "third"]
    with pytest.raises(ValueError, match="aging_rate 2.0"):
        await RedisPriorityQueue(redis_url, "settings", aging_rate=0.0).stats()
    await dashboard.destroy()
    for q in (here, dashboard):
        await q.close()


async def test_a_get_interrupted_mid_script_releases_its_lease_at_once(redis_url):
    """A pause cancels a waiting worker; when the cancel lands while the GET script runs, the
    item it leased goes back now, not when its 30 s lease runs out as a redelivery."""
    q = RedisPriorityQueue(redis_url, "interrupt", lease=30.0, reap_interval=60.0)
    busy = aioredis.Redis.from_url(redis_url)
    await q.put_many(["warm", "x"])
    await q.ack(await q.get())  # the GET script is loaded: the next get sends EVALSHA alone
    await q.reap()  # ...and runs only the GET script
    # The server runs a long script: the GET waits in its socket until it is over.
    spin = asyncio.ensure_future(busy.eval("local i = 0 while i < 3e7 do i = i + 1 end", 0))
    await until(lambda: _busy(redis_url), "the server to be busy", limit=10)
    getter = asyncio.ensure_future(q.get())
    pool = q._redis.connection_pool
    await until(lambda: _sent(pool), "the GET to be sent", limit=10)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    await spin
    stats = await q.stats()
    assert (stats.depth, stats.leased, stats.redelivered) == (1, 0, 0)
    again = await q.get()
    assert (again.item, again.attempt) == ("x", 0)
    await q.destroy()
    await q.close()
    await busy.aclose()


async def _busy(url: str) -> bool:
    """True once a PING from a fresh connection does not come back at once."""
    probe = aioredis.Redis.from_url(url, socket_timeout=0.05)
    try:
        await probe.ping()
        return False
    except Exception:
        return True
    finally:
        await probe.aclose()


async def _sent(pool) -> bool:
    return bool(pool._in_use_connections)  # a command is on the wire, its reply not yet read


async def test_the_heap_panel_of_a_pool_over_redis_shows_rows_from_redis(redis_url, tmp_path):
    """`heapwatch --queue redis://...`: the snapshot's `top` is the shared queue's, in order."""
    from test_redis_cli import scenario

    from engine.runtime import Engine
    from engine.scenario import load_scenario
    from engine.shared import QueueTarget, SharedRun

    toml = scenario(tmp_path, "heap", workers=1, latency=5000, failures=0, rate=0)
    shape = load_scenario(toml)
    engine = Engine(shape, shared=SharedRun(QueueTarget.parse(f"{redis_url}?name=heap"),
                                            "worker", shape))  # fmt: skip
    feeder = RedisPriorityQueue(redis_url, "heap")
    await feeder.put_many([f"low-{i}" for i in range(10)], priority=9)
    await feeder.put_many([f"high-{i}" for i in range(10)], priority=1)
    await engine.start()
    try:
        await until(lambda: _true(len(engine.snapshot().top) == 19), "19 queued rows", limit=20)
        rows = engine.snapshot().top
        assert [e.item_repr for e in rows] == [repr(f"high-{i}") for i in range(1, 10)] + [
            repr(f"low-{i}") for i in range(10)]
        assert [e.item for e in rows] == [None] * 19
        engine.top(5, priority=9.0)  # a level asked for is read from the next refresh on
        await until(lambda: _true(len(engine.top(5, priority=9.0)) == 5), "the level's rows")
        assert [e.priority for e in engine.top(5, priority=9.0)] == [9.0] * 5
    finally:
        await engine.shutdown(drain_timeout=0.2)
        await feeder.destroy()
        await feeder.close()


async def _true(value: bool) -> bool:
    return value


async def test_a_periodic_task_stops_even_when_its_tick_swallows_the_cancel():
    """A cancel that lands inside a Redis call can be swallowed there; stop() must still end
    the loop (it once waited for ever, and `heapwatch --queue ... --duration 1` with it)."""
    import asyncio

    from engine.shared import Periodic

    class Swallowing(Periodic):
        ticks = 0

        async def tick(self) -> None:
            self.ticks += 1
            if self.ticks > 1:
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:
                    pass  # what a library may do with a cancel mid-call

    job = Swallowing(interval=0.01)
    await job.start()
    while job.ticks < 2:
        await asyncio.sleep(0.001)
    await asyncio.wait_for(job.stop(), timeout=10)
    ticks = job.ticks
    await asyncio.sleep(0.1)
    assert job.ticks == ticks  # no tick after stop


async def test_the_overflow_policy_is_stored_when_the_queue_is_made_and_a_reader_shows_it(
    redis_url,
):
    maker = RedisPriorityQueue(redis_url, "policy", maxsize=2, overflow="reject")
    await maker.put("first")
    client = aioredis.Redis.from_url(redis_url)
    meta = "heapwatch:{policy}:meta"
    assert await client.hget(meta, "overflow") == b"reject"  # no dashboard has set it
    reader = RedisPriorityQueue(client, "policy", aging_rate=None)  # what attach opens
    assert (await reader.stats()).overflow == "reject"
    late = RedisPriorityQueue(client, "policy", overflow="block")  # follows the stored one
    await late.stats()
    assert late.overflow.value == "reject"
    # A queue made before the policy was stored: a reader stores none of its own.
    await client.hdel(meta, "overflow")
    await RedisPriorityQueue(client, "policy", aging_rate=None).stats()
    assert await client.hget(meta, "overflow") is None
    await maker.destroy()
    await maker.close()
    await client.aclose()


async def test_a_long_attach_forgets_the_workers_alerts_and_hosts_that_are_gone(redis_url):
    """Processes come and go under a dashboard left open for days: the reader's ids of
    workers, alerts and hosts follow what is there, and a worker keeps its id while it is."""
    import json

    from engine.shared import QueueTarget
    from engine.shared_reader import LOST_LINGER, SharedQueueReader

    await RedisPriorityQueue(redis_url, "long").put("x")
    client = aioredis.Redis.from_url(redis_url)
    now = [0.0]
    reader = SharedQueueReader(QueueTarget.parse(f"{redis_url}?name=long"), interval=3600,
                               clock=lambda: now[0])  # fmt: skip

    async def beat(host: str, n: int) -> None:
        workers = [{"id": f"{host}/stay"}, {"id": f"{host}/w{n}"}]
        alerts = [{"id": f"{host}#{n}", "kind": "starvation", "message": "m", "active": True}]
        data = {"host": host, "role": "worker", "workers": workers, "alerts": alerts}
        await client.set(f"heapwatch:{{long}}:hb:{host}", json.dumps(data))

    await reader.open()
    try:
        ids = set()
        for n in range(40):
            await beat("a", n)
            await beat(f"passing-{n}", n)  # a host that beats once and is gone
            await reader.tick()
            snapshot = reader.snapshot()
            workers = {w.host + "/" + w.name: w.id for w in snapshot.pool.workers}
            ids.add(workers["a/stay"])
            assert len(set(workers.values())) == len(workers) == 4
            await client.delete(f"heapwatch:{{long}}:hb:passing-{n}")
            now[0] += LOST_LINGER / 4
        assert len(ids) == 1  # the worker that stayed kept its number
        assert len(reader._ids) <= 6 and len(reader._alert_times) <= 2  # not 160 and 80
        assert len(reader._seen) <= 6  # lost hosts past LOST_LINGER, holding nothing, go
    finally:
        await reader.close()
        await client.delete(*[k async for k in client.scan_iter(match="heapwatch:{long}:*")])
        await client.aclose()
