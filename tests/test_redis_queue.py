"""RedisPriorityQueue against a real redis-server (Debian's), started by tests/redis_fixture.py.

Nothing here fakes Redis: every script runs in the server. Chaos tests use real processes:
a worker SIGKILLed mid-lease, a worker whose loop blocks past its lease, a server restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redis_fixture

from engine.protocol import Delivery, HandlerContext, WorkQueue
from engine.queue import PriorityQueue, QueueShutDown
from engine.redis_lua import COUNTERS
from engine.redis_queue import LeaseLost, RedisPriorityQueue, RedisQueueStats, json_codec
from engine.snapshots import QueueStats

pytestmark = redis_fixture.needs_redis
redis_server = redis_fixture.redis_server
redis_url = redis_fixture.redis_url
until = redis_fixture.until
durable_redis = redis_fixture.durable_redis

ROOT = Path(__file__).resolve().parent.parent


async def drain(queue: RedisPriorityQueue) -> list:
    """Lease and ack everything queued or waiting for a retry, in serving order.

    Ends on the queue's own count, not on a get that times out: on a loaded machine a get
    can take longer than any short limit, and the items after it would be missed.
    """
    out = []
    while True:
        stats = await queue.stats()
        if not stats.depth + stats.retry_scheduled:
            return out
        delivery = await asyncio.wait_for(queue.get(), 10)
        out.append(delivery)
        assert await queue.ack(delivery)




# --------------------------------------------------------------------------- ordering


async def test_lower_priority_first_fifo_among_equals_any_real_number(redis_url):
    async with RedisPriorityQueue(redis_url, "order") as q:
        puts = [("a", 5), ("b", 2), ("c", 5), ("d", -1.5), ("e", 2.0), ("f", Fraction(1, 3)),
                ("g", 1e-9), ("h", 5)]  # fmt: skip
        for item, priority in puts:
            await q.put(item, priority=priority)
        got = await drain(q)
        assert [d.item for d in got] == ["d", "g", "f", "b", "e", "a", "c", "h"]
        # 2 and 2.0 are one level, as in the in-process queue; a Fraction becomes a float.
        assert [d.priority for d in got][:4] == [-1.5, 1e-9, 1 / 3, 2.0]
        assert all(d.attempt == 0 for d in got)


async def test_same_order_as_the_in_process_queue_with_aging(redis_url):
    """Aging uses the in-process queue's static key: an old low-priority item overtakes."""
    # 10 points a second; the newcomers arrive 0.5 s later (0.9 s at most on a loaded machine),
    # so old-low (10) is served after new-1 (>= 6) and before new-7 (>= 12) either way.
    rate = 10.0
    async with RedisPriorityQueue(redis_url, "aging", aging_rate=rate) as q:
        local = PriorityQueue(aging_rate=rate)
        await q.put("old-low", priority=10)
        local.put_nowait("old-low", priority=10)
        await asyncio.sleep(0.5)
        for item, priority in (("new-7", 7), ("new-9", 9), ("new-1", 1)):
            await q.put(item, priority=priority)
            local.put_nowait(item, priority=priority)
        expected = [local.get_nowait() for _ in range(4)]
        assert expected == ["new-1", "old-low", "new-7", "new-9"]
        assert [d.item for d in await drain(q)] == expected
    async with RedisPriorityQueue(redis_url, "no-aging") as q:
        await q.put("old-low", priority=10)
        await q.put("new-9", priority=9)
        assert [d.item for d in await drain(q)] == ["new-9", "old-low"]


async def test_every_process_must_agree_on_the_aging_rate(redis_url):
    async with RedisPriorityQueue(redis_url, "rate", aging_rate=0.5) as q:
        await q.put(1)
    async with RedisPriorityQueue(redis_url, "rate", aging_rate=0.0) as other:
        with pytest.raises(ValueError, match="aging_rate 0.5"):
            await other.put(2)


# --------------------------------------------------------------------------- leases


async def test_lease_deadline_is_on_the_server_clock(redis_url):
    async with RedisPriorityQueue(redis_url, "clock", lease=7.0) as q:
        await q.put("x")
        delivery = await q.get()
        seconds, micros = await q._redis.time()
        server_now = seconds + micros / 1e6
        assert 5.0 < delivery.deadline - server_now <= 7.0
        assert abs(delivery.first_arrival - server_now) < 1.0
        stats = await q.stats()
        assert isinstance(stats, QueueStats) and isinstance(stats, RedisQueueStats)
        assert (stats.depth, stats.leased, stats.gets) == (0, 1, 1)


async def test_expired_lease_goes_back_to_its_place_and_counts_a_redelivery(redis_url):
    async with RedisPriorityQueue(redis_url, "expire", lease=0.2, reap_interval=0.05) as q:
        for item in ("first", "second", "third"):
            await q.put(item, priority=1)
        stalled = await q.get()
        second = await q.get()
        assert (stalled.item, second.item) == ("first", "second")
        await asyncio.sleep(0.3)
        # Past its deadline but not reaped yet: the ack still settles it (no duplicate).
        assert await q.ack(second) is True
        assert await q.reap() == (1, 0)
        again = await q.get()
        assert (again.item, again.attempt) == ("first", 1)  # its original place: the front
        assert await q.ack(stalled) is False  # the reaped lease's ack is refused
        assert await q.ack(again) is True
        stats = await q.stats()
        assert (stats.expired, stats.redelivered, stats.stale_acks) == (1, 1, 1)
        assert [(d.item, d.attempt) for d in await drain(q)] == [("third", 0)]
        accounting = await q.accounting()
        assert (accounting.submitted, accounting.completed, accounting.lost) == (3, 3, 0)


async def test_returned_items_keep_arrival_order_among_themselves(redis_url):
    async with RedisPriorityQueue(redis_url, "order-back", lease=30) as q:
        await q.put_many(["a", "b", "c", "d"], priority=2)
        a, b, c = await q.get_many(3)
        for delivery in (c, a, b):  # back in any order: each goes to its original place
            assert await q.nack(delivery) == "queued"
        assert [d.item for d in await drain(q)] == ["a", "b", "c", "d"]


async def test_a_crowd_of_expired_leases_comes_back_in_arrival_order(redis_url):
    async with RedisPriorityQueue(redis_url, "crowd", lease=0.1, reap_interval=0.01) as q:
        await q.put_many(range(300), priority=4)
        taken = await q.get_many(250)  # a consumer that dies with 250 leases
        assert [d.item for d in taken] == list(range(250))
        await asyncio.sleep(0.15)
        assert await q.reap() == (250, 0)
        got = []
        while len(got) < 300:
            batch = await q.get_many(100)
            await q.ack_many(batch)
            got.extend(d.item for d in batch)
        assert got == list(range(300))


async def test_expiry_past_max_attempts_dead_letters_in_redis(redis_url):
    async with RedisPriorityQueue(
        redis_url, "dead", lease=0.05, reap_interval=0.01, max_attempts=2
    ) as q:
        await q.put({"job": 1}, priority=3)
        for _ in range(2):
            await q.get()  # never acked
            await asyncio.sleep(0.08)
            await q.reap()
        stats = await q.stats()
        assert (stats.depth, stats.leased, stats.dead_lettered) == (0, 0, 1)
    async with RedisPriorityQueue(redis_url, "dead") as reader:  # another process reads them
        (letter,) = await reader.dead_letters()
        assert (letter.item, letter.priority, letter.attempts) == ({"job": 1}, 3.0, 2)
        assert letter.error == "lease expired"
        assert (await reader.accounting()).lost == 0


async def test_extend_keeps_the_lease_and_refuses_a_reaped_one(redis_url):
    async with RedisPriorityQueue(redis_url, "extend", lease=0.2, reap_interval=0.01) as q:
        await q.put("long job")
        delivery = await q.get()
        ctx = q.handler_context(delivery, job_id=7)
        assert isinstance(ctx, HandlerContext) and ctx.attempt == 1
        for _ in range(3):
            await asyncio.sleep(0.1)
            await ctx.extend(0.2)
            assert await q.reap() in (None, (0, 0))
        assert ctx.lease_deadline > delivery.deadline and ctx.deadline is None
        assert await q.ack(delivery)
        await q.put("lost job")
        late = await q.get()
        await asyncio.sleep(0.25)
        await q.reap()
        with pytest.raises(LeaseLost):
            await q.extend(late)
        assert (await q.stats()).stale_acks == 1


async def test_the_lease_set_stays_a_skiplist_and_its_anchor_is_no_lease(redis_url):
    """A listpack lease set costs every ZADD a walk over every lease: the anchor keeps it a
    skiplist from the first lease on, and through the moments when no lease is out."""
    async with RedisPriorityQueue(redis_url, "anchor", lease=0.2, reap_interval=0.01) as q:
        key = q._prefix + "leases"
        await q.put_many(range(3), priority=1)
        first = await q.get_many(2)
        assert await q._redis.object("encoding", key) == b"skiplist"
        assert (await q.stats()).leased == 2
        assert await q.ack_many(first) == 2
        stats = await q.stats()
        assert (stats.leased, stats.completed) == (0, 2)
        assert await q._redis.object("encoding", key) == b"skiplist"  # not emptied, not recreated
        (anchor,) = await q._redis.zrange(key, 0, -1)
        forged = Delivery(None, 1.0, anchor, 0.0, 0, 0.0)
        assert not await q.ack(forged) and await q.nack(forged) == "stale"
        with pytest.raises(LeaseLost):
            await q.extend(forged)
        last = await q.get()
        await asyncio.sleep(0.25)  # the anchor is never reaped, and no deadline for a waiter
        assert await q.reap() == (1, 0)
        assert (await q.get()).item == last.item
        stats = await q.stats()
        assert (stats.completed, stats.stale_acks, stats.expired) == (2, 3, 1)
        assert (await q.accounting()).lost == 0
        assert await q._redis.zcard(key) == 2  # the redelivery's lease and the anchor


async def test_nack_returns_the_item_to_its_place_after_a_delay_kept_in_redis(redis_url):
    async with RedisPriorityQueue(redis_url, "nack", max_attempts=3) as q:
        for item in ("a", "b", "c"):
            await q.put(item, priority=0)
        a = await q.get()
        assert await q.nack(a, delay=0.8) == "retry"
        stats = await q.stats()
        assert (stats.retry_scheduled, stats.depth, stats.leased) == (1, 2, 0)
        b = await q.get()
        await asyncio.sleep(0.85)
        assert await q.nack(b) == "queued"
        got = await drain(q)
        assert [(d.item, d.attempt) for d in got] == [("a", 1), ("b", 1), ("c", 0)]
        assert (await q.stats()).redelivered == 0  # retries are not redeliveries


async def test_a_retry_waiting_in_redis_outlives_the_process_that_nacked_it(redis_url):
    first = RedisPriorityQueue(redis_url, "retry-outlives")
    await first.put("again")
    delivery = await first.get()
    started = time.monotonic()
    assert await first.nack(delivery, delay=0.3) == "retry"
    await first.close()  # gone: nothing of the retry was kept in it
    async with RedisPriorityQueue(redis_url, "retry-outlives", max_wait=30) as second:
        delivery = await asyncio.wait_for(second.get(), 5)
        # The getter's wait ends at the retry's due time, not at max_wait.
        assert 0.25 < time.monotonic() - started < 3
        assert (delivery.item, delivery.attempt) == ("again", 1)


async def test_nack_past_max_attempts_dead_letters_with_the_reason(redis_url):
    async with RedisPriorityQueue(redis_url, "nack-dead", max_attempts=2) as q:
        await q.put("poison")
        first = await q.get()
        assert await q.nack(first, error="boom\nline two") == "queued"
        second = await q.get()
        assert await q.nack(second, error="boom again") == "dead-lettered"
        assert await q.nack(second) == "stale"
        (letter,) = await q.dead_letters()
        assert (letter.item, letter.attempts, letter.error) == ("poison", 2, "boom again")
        accounting = await q.accounting()
        assert (accounting.dead_lettered, accounting.lost) == (1, 0)


# --------------------------------------------------------------------------- bounds


async def test_maxsize_counts_queued_items_not_leased_ones(redis_url):
    async with RedisPriorityQueue(redis_url, "bound", maxsize=2, overflow="reject") as q:
        await q.put(1)
        await q.put(2)
        leased = await q.get()
        await q.put(3)  # one leased, two queued: still room for exactly this one
        with pytest.raises(asyncio.QueueFull):
            await q.put(4)
        await q.ack(leased)
        stats = await q.stats()
        assert (stats.depth, stats.rejected, stats.submitted, stats.peak_depth) == (2, 1, 4, 2)


async def test_blocked_putter_wakes_on_the_room_signal_not_a_poll(redis_url):
    # max_wait=30: only the signal a get sends can wake the putter within the bound.
    async with (
        RedisPriorityQueue(redis_url, "room", maxsize=1, max_wait=30) as producer,
        RedisPriorityQueue(redis_url, "room", maxsize=1, max_wait=30) as consumer,
    ):
        await producer.put("first")
        blocked = asyncio.create_task(producer.put("second"))
        await asyncio.sleep(0.2)
        assert not blocked.done() and (await producer.stats()).blocked_putters == 1
        started = time.monotonic()
        assert (await consumer.get()).item == "first"
        await asyncio.wait_for(blocked, 2.0)
        assert time.monotonic() - started < 2.0
        assert (await consumer.get()).item == "second"
        stats = await producer.stats()
        assert stats.put_block_p50 is not None and stats.put_block_p50 >= 0.2


async def test_blocked_getter_wakes_on_a_put_from_another_connection(redis_url):
    async with (
        RedisPriorityQueue(redis_url, "ready", max_wait=30) as consumer,
        RedisPriorityQueue(redis_url, "ready", max_wait=30) as producer,
    ):
        waiting = asyncio.create_task(consumer.get())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await producer.put("hello")
        assert (await asyncio.wait_for(waiting, 2.0)).item == "hello"


async def test_shutdown_wakes_a_waiting_getter_and_refuses_puts(redis_url):
    q = RedisPriorityQueue(redis_url, "down", max_wait=30)
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0.1)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(waiting, 2.0)
    with pytest.raises(QueueShutDown):
        await q.put("late")
    await q.close()


async def test_evict_lowest_drops_the_worst_then_newest_or_the_newcomer(redis_url):
    dropped = []
    async with RedisPriorityQueue(
        redis_url, "evict", maxsize=3, overflow="evict-lowest",
        on_drop=lambda item, priority, reason: dropped.append((item, priority, reason)),
    ) as q:  # fmt: skip
        for item, priority in (("p1", 1), ("p9-old", 9), ("p9-new", 9)):
            await q.put(item, priority=priority)
        await q.put("p2", priority=2)  # evicts the newest of the worst level
        await q.put("p9-late", priority=9)  # is itself the worst (newest of the worst): dropped
        assert dropped == [("p9-new", 9.0, "evicted"), ("p9-late", 9.0, "evicted")]
        assert [d.item for d in await drain(q)] == ["p1", "p2", "p9-old"]
        accounting = await q.accounting()
        assert (accounting.submitted, accounting.evicted, accounting.lost) == (5, 2, 0)


async def test_evict_lowest_with_aging_evicts_by_the_aged_key(redis_url):
    async with RedisPriorityQueue(
        redis_url, "evict-aging", maxsize=2, overflow="evict-lowest", aging_rate=20.0
    ) as q:
        await q.put("old-8", priority=8)
        await asyncio.sleep(0.5)  # >= 10 points of aging: its key is below a fresh 5's
        await q.put("fresh-5", priority=5)
        # The worst aged key is fresh-5's (a newcomer 0.2 s later would still be better).
        await q.put("fresh-1", priority=1)
        assert [d.item for d in await drain(q)] == ["old-8", "fresh-1"]


async def test_overflow_is_atomic_across_concurrent_connections(redis_url):
    queues = [
        RedisPriorityQueue(redis_url, "race", maxsize=10, overflow=policy)
        for policy in ("reject", "evict-lowest") * 3
    ]

    async def hammer(q: RedisPriorityQueue, base: int) -> None:
        for i in range(40):
            try:
                await q.put(base + i, priority=i % 4)
            except asyncio.QueueFull:
                pass

    await asyncio.gather(*(hammer(q, 1000 * n) for n, q in enumerate(queues)))
    stats = await queues[0].stats()
    assert stats.depth == 10 and stats.peak_depth == 10
    assert stats.submitted == 240 and stats.rejected + stats.evicted == 230
    assert (await queues[0].accounting()).lost == 0
    for q in queues:
        await q.close()


async def test_blocked_putters_on_many_connections_never_overfill_and_all_land(redis_url):
    # max_wait=30: a lost wake-up would stall past the 10 s bound instead of polling through.
    putters = [RedisPriorityQueue(redis_url, "block-race", maxsize=5, max_wait=30) for _ in range(4)]
    consumer = RedisPriorityQueue(redis_url, "block-race", max_wait=30)

    async def put_all(q: RedisPriorityQueue, base: int) -> None:
        for i in range(25):
            await q.put(base + i, priority=i % 3)

    async def take_all() -> list:
        got = []
        while len(got) < 100:
            batch = await consumer.get_many(3)
            assert await consumer.ack_many(batch) == len(batch)
            got.extend(d.item for d in batch)
        return got

    results = await asyncio.wait_for(
        asyncio.gather(take_all(), *(put_all(q, 100 * n) for n, q in enumerate(putters))), 10
    )
    assert sorted(results[0]) == sorted(100 * n + i for n in range(4) for i in range(25))
    stats = await consumer.stats()
    assert stats.peak_depth <= 5 and stats.rejected == stats.evicted == 0
    assert (await consumer.accounting()).lost == 0
    for q in (*putters, consumer):
        await q.close()


# --------------------------------------------------------------------------- wire


async def test_unencodable_item_fails_at_put_and_nothing_is_sent(redis_url):
    async with RedisPriorityQueue(redis_url, "codec") as q:
        with pytest.raises(TypeError, match="cannot be encoded"):
            await q.put(object())
        with pytest.raises(TypeError, match="cannot be encoded"):
            await q.put_many([1, 2, 3j])
        with pytest.raises(TypeError, match="cannot be encoded"):
            await q.put_many(x for x in (1, object()))  # a generator, read once
        with pytest.raises(ValueError, match="too large"):
            await q.put("x", priority=10**400)
        assert (await q.stats()).submitted == 0
    async with RedisPriorityQueue(redis_url, "json", codec=json_codec()) as q:
        await q.put({"a": [1, 2.5, "x"]})
        assert (await q.get()).item == {"a": [1, 2.5, "x"]}
        raw = await q._redis.hvals(q._prefix + "jobs")
        assert raw == [b'{"a":[1,2.5,"x"]}']  # json, never pickle


async def test_scripts_run_by_sha_and_keys_share_one_hash_tag(redis_url):
    async with RedisPriorityQueue(redis_url, "tagged", aging_rate=0.1) as q:
        await q._redis.config_resetstat()
        await q.put_many(range(5), priority=1)
        await q.nack(await q.get(), delay=0.5)
        await q.ack((await q.get_many(2))[0])
        keys = [key async for key in q._redis.scan_iter(match="*")]
        assert keys and all(b"{tagged}" in key for key in keys)
        stats = await q._redis.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] >= 4
        assert "cmdstat_eval" not in stats
        assert isinstance(q, WorkQueue) and q.acks_on_get is False
        fields = {key.decode() for key in await q._redis.hkeys(q._prefix + "counters")}
        assert {"seq", "submitted", "completed", "depth"} <= fields <= {"seq", *COUNTERS}


async def work_queue_consumer(queue: WorkQueue, handled: list, stop: asyncio.Event) -> None:
    """A consumer written against the protocol only, the way WorkerPool takes items."""
    while not stop.is_set():
        try:
            delivery = queue.get_delivery_nowait()
        except asyncio.QueueEmpty:
            try:
                delivery = await asyncio.wait_for(queue.get_delivery(), 0.2)
            except TimeoutError:
                continue
        handled.append((delivery.item, delivery.priority))
        if not queue.acks_on_get:
            await queue.ack(delivery)


async def test_a_protocol_consumer_serves_it_in_priority_order(redis_url):
    async with RedisPriorityQueue(redis_url, "protocol") as q:
        assert isinstance(q, WorkQueue)
        for i in range(30):
            await q.put(i, priority=i % 3)
        handled: list = []
        stop = asyncio.Event()
        consumer = asyncio.create_task(work_queue_consumer(q, handled, stop))
        await until(lambda: _completed(q, 30), "30 completions")
        stop.set()
        await consumer
        expected = sorted(((i, float(i % 3)) for i in range(30)), key=lambda x: (x[1], x[0]))
        assert handled == expected
        assert (await q.accounting()).lost == 0
        with pytest.raises(TypeError, match="await queue.put"):
            q.put_nowait(1)


async def test_a_client_that_decodes_responses_is_refused(redis_url):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode responses"):
        RedisPriorityQueue(client, "decoded")
    await client.aclose()
    with pytest.raises(ValueError, match="name"):
        RedisPriorityQueue(redis_url, "bad name{}")


async def test_many_consumers_batched_account_for_every_item(redis_url):
    producer = RedisPriorityQueue(redis_url, "fleet")
    consumers = [RedisPriorityQueue(redis_url, "fleet", max_wait=0.2) for _ in range(4)]
    done: list[int] = []

    async def consume(q: RedisPriorityQueue) -> None:
        while len(done) < 400:  # a get that times out on a loaded machine is tried again
            try:
                batch = await asyncio.wait_for(q.get_many(16), 0.5)
            except TimeoutError:
                continue
            done.extend(d.item for d in batch)
            assert await q.ack_many(batch) == len(batch)

    tasks = [asyncio.create_task(consume(q)) for q in consumers]
    for start in range(0, 400, 50):
        await producer.put_many(range(start, start + 50), priority=start % 3)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert sorted(done) == list(range(400))
    # Waits are each consumer's own (sampled): together they cover every priority served.
    sampled = set()
    for q in consumers:
        stats = await q.stats()
        if stats.wait_p50 is not None:
            assert stats.wait_p99 >= stats.wait_p50 >= 0
        assert all(level.depth == 0 for level in stats.per_priority)
        sampled |= {level.priority for level in stats.per_priority if level.wait_p50 is not None}
    assert sampled == {0.0, 1.0, 2.0}
    accounting = await producer.accounting()
    assert (accounting.completed, accounting.lost) == (400, 0)
    for q in (producer, *consumers):
        await q.close()


async def test_cancelling_busy_consumers_ends_them(redis_url):
    """A cancel that lands mid-command must not be retried away (the consumer would loop on)."""
    producer = RedisPriorityQueue(redis_url, "cancel")
    consumers = [RedisPriorityQueue(redis_url, "cancel", max_wait=0.5) for _ in range(8)]
    done = 0
    enough = asyncio.Event()

    async def consume(q: RedisPriorityQueue) -> None:
        nonlocal done
        while True:
            batch = await q.get_many(10)
            await q.ack_many(batch)
            done += len(batch)
            if done >= 1500:
                enough.set()

    tasks = [asyncio.create_task(consume(q)) for q in consumers]
    for start in range(0, 3000, 100):
        await producer.put_many(range(start, start + 100))
    await asyncio.wait_for(enough.wait(), 10)
    for task in tasks:
        task.cancel()
    _, pending = await asyncio.wait(tasks, timeout=3)
    assert not pending
    assert all(task.cancelled() for task in tasks)
    assert (await producer.accounting()).lost == 0
    for q in (producer, *consumers):
        await q.close()


async def test_a_cancel_while_the_get_script_runs_gives_back_what_it_leased(redis_url):
    """The cancel lands while Redis holds the GET (CLIENT PAUSE): the script still runs, and
    its items go back to their places at once, not at their lease's expiry."""
    queue = RedisPriorityQueue(redis_url, "midget", lease=60.0, reap_interval=60.0)
    admin = aioredis.Redis.from_url(redis_url)
    await queue.put_many(["a", "b"], priority=1)
    await queue.reap()  # the next get does not reap first: the GET is the call held
    await admin.client_pause(400, all=False)  # write commands (scripts) wait in the server
    task = asyncio.create_task(queue.get_many(2))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    stats = await queue.stats()
    assert (stats.leased, stats.depth, stats.gets) == (0, 2, 2)
    again = await queue.get_many(2)
    assert [(d.item, d.attempt) for d in again] == [("a", 0), ("b", 0)]
    await queue.ack_many(again)
    await admin.aclose()
    await queue.close()


async def test_a_consumer_cancelled_while_redis_is_down_stops_at_once(durable_redis):
    """The held GET retries while Redis is away, but not for a consumer being cancelled: it
    ends within a retry's backoff, not at the reconnect deadline (30 s)."""
    queue = RedisPriorityQueue(durable_redis.url, "down", reap_interval=60.0)
    await queue.reap()  # connected, and the next get goes straight to the GET
    durable_redis.kill()
    task = asyncio.create_task(queue.get_many(5))
    await asyncio.sleep(0.3)
    assert not task.done()  # retrying, within its reconnect deadline
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert time.monotonic() - started < 2.0
    await queue.close()


# --------------------------------------------------------------------------- chaos

WORKER = r"""
import asyncio, sys, time
import redis.asyncio as aioredis
from engine.redis_queue import RedisPriorityQueue

url, name, hold, batch, block = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

async def main():
    client = aioredis.Redis.from_url(url)
    q = RedisPriorityQueue(url, name, lease=0.5, reap_interval=0.05, max_wait=0.2)

    async def log(key, value):  # through a server restart too, with the queue's backoff
        await q._retrying(lambda: client.rpush(key, value))

    await q.stats()
    await log("ready", 1)
    while not await q._retrying(lambda: client.exists("stop")):
        try:
            batch_ = await asyncio.wait_for(q.get_many(batch), 0.5)
        except TimeoutError:
            continue
        for d in batch_:
            await log("deliveries", f"{d.item}:{d.attempt}")
        if block == "block":
            time.sleep(hold)  # the loop itself is held: no extend, no heartbeat
        else:
            await asyncio.sleep(hold)
        for d in batch_:
            ok = await q.ack(d)
            await log("acks", f"{d.item}:{int(ok)}")
    await q.close()
    await client.aclose()

asyncio.run(main())
"""


def start_worker(url: str, name: str, hold: float, batch: int, block: str = "") -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, name, str(hold), str(batch), block or "-"], env=env
    )


async def test_sigkill_a_worker_mid_lease_loses_nothing(redis_url):
    log = aioredis.Redis.from_url(redis_url)
    q = RedisPriorityQueue(redis_url, "kill", lease=0.5)
    await q.put_many(range(3), priority=0)  # the victim's batch
    victim = start_worker(redis_url, "kill", hold=60, batch=3)
    survivor = None
    try:
        await until(lambda: _length(log, "deliveries", 3), "the victim's batch", limit=20)
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        await q.put_many(range(3, 40), priority=1)
        survivor = start_worker(redis_url, "kill", hold=0.005, batch=4)
        await until(lambda: _completed(q, 40), "every item completed", limit=20)
        await log.set("stop", 1)
        survivor.wait(10)
    finally:
        for process in (victim, survivor):
            if process is not None and process.poll() is None:
                process.kill()
    deliveries = [x.decode() for x in await log.lrange("deliveries", 0, -1)]
    acked = {x.decode().split(":")[0] for x in await log.lrange("acks", 0, -1) if x.endswith(b":1")}
    assert acked == {str(i) for i in range(40)}
    stats = await q.stats()
    accounting = await q.accounting()
    assert (accounting.submitted, accounting.completed, accounting.lost) == (40, 40, 0)
    redelivered = [d for d in deliveries if not d.endswith(":0")]
    assert sorted(redelivered) == ["0:1", "1:1", "2:1"]
    assert stats.redelivered == stats.expired == len(redelivered)
    await q.close()
    await log.aclose()


async def test_a_worker_loop_blocked_past_its_lease_is_redelivered_and_its_ack_refused(redis_url):
    log = aioredis.Redis.from_url(redis_url)
    q = RedisPriorityQueue(redis_url, "stall", lease=0.5, reap_interval=0.05)
    await q.put("slow")
    # Held 2.5 s on a 0.5 s lease: time for our get to reap it even on a loaded machine.
    stalled = start_worker(redis_url, "stall", hold=2.5, batch=1, block="block")
    try:
        await until(lambda: _length(log, "deliveries", 1), "the stalled delivery", limit=20)
        again = await asyncio.wait_for(q.get(), 5)  # our get runs the reaper
        assert (again.item, again.attempt) == ("slow", 1)
        assert await q.ack(again)
        await until(lambda: _length(log, "acks", 1), "the stalled worker's late ack")
        await log.set("stop", 1)
        stalled.wait(10)
    finally:
        if stalled.poll() is None:
            stalled.kill()
    assert await log.lrange("acks", 0, -1) == [b"slow:0"]  # refused
    stats = await q.stats()
    assert (stats.redelivered, stats.stale_acks, stats.completed) == (1, 1, 1)
    assert (await q.accounting()).lost == 0
    await q.close()
    await log.aclose()


async def test_redis_restart_mid_run_reconnects_and_loses_nothing(durable_redis):
    """Producer and consumers here, one consumer in another process; redis-server SIGKILLed
    and restarted on its append-only file (appendfsync always) a third of the way in."""
    url = durable_redis.url
    total = 300
    log = aioredis.Redis.from_url(url)
    producer = RedisPriorityQueue(url, "restart", lease=2.0)
    consumers = [RedisPriorityQueue(url, "restart", lease=2.0, max_wait=0.2) for _ in range(2)]
    worker = start_worker(url, "restart", hold=0.005, batch=5)
    done: set[int] = set()
    finished = asyncio.Event()
    restarted = asyncio.Event()

    async def produce() -> None:
        for start in range(0, total, 10):
            await producer.put_many(range(start, start + 10), priority=start % 4)
            await asyncio.sleep(0.005)

    async def consume(q: RedisPriorityQueue) -> None:
        while not finished.is_set():
            try:
                batch = await asyncio.wait_for(q.get_many(5), 0.5)
            except TimeoutError:
                continue
            await asyncio.sleep(0.002)
            await q.ack_many(batch)
            done.update(d.item for d in batch)

    async def watch() -> None:
        while len(done) < total // 3:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(durable_redis.restart)
        restarted.set()
        while True:
            acks = await producer._retrying(lambda: log.lrange("acks", 0, -1))
            # Any ack counts here: one whose reply was lost in the restart is retried and
            # then refused, though it did complete (the accounting below checks that).
            theirs = {int(x.split(b":")[0]) for x in acks}
            if done | theirs == set(range(total)):
                finished.set()
                return
            await asyncio.sleep(0.05)

    try:
        await until(lambda: _length(log, "ready", 1), "the other process to start", limit=20)
        await asyncio.wait_for(
            asyncio.gather(produce(), watch(), *(consume(q) for q in consumers)), 40
        )
        assert worker.poll() is None  # the other process lived through the restart
        await log.set("stop", 1)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert restarted.is_set() and worker.returncode == 0
    assert sum(q.reconnects for q in (producer, *consumers)) > 0
    assert await log.llen("acks") > 0  # the other process served items too, across the restart
    await until(lambda: _settled(producer), "leases of lost replies to settle", limit=10)
    accounting = await producer.accounting()
    assert accounting.lost == 0 and accounting.completed >= total
    for q in (producer, *consumers):
        await q.close()
    await log.aclose()


async def _length(client: aioredis.Redis, key: str, n: int) -> bool:
    return await client.llen(key) >= n


async def _completed(q: RedisPriorityQueue, n: int) -> bool:
    return (await q.stats()).completed >= n


async def _settled(q: RedisPriorityQueue) -> bool:
    """Nothing queued or leased: a lease whose reply was lost in the restart has come back."""
    await q.reap()
    stats = await q.stats()
    if stats.depth:
        for delivery in await q.get_many(stats.depth):
            await q.ack(delivery)
    return stats.depth == 0 and stats.leased == 0
