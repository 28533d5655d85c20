"""Batched acks on RedisPriorityQueue, against a real redis-server: an ack riding with the next
lease (`ack_and_get_many`), a batch that holds a stale or repeated lease, a batch larger than
one Lua unpack(), and the lease token (priority and holder) as the only record of a lease."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
import redis_fixture

from engine.queue import QueueShutDown
from engine.redis_queue import RedisPriorityQueue

pytestmark = redis_fixture.needs_redis
redis_server = redis_fixture.redis_server
redis_url = redis_fixture.redis_url
until = redis_fixture.until


async def _script_calls(client: aioredis.Redis) -> int:
    return int((await client.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0))


async def test_the_ack_rides_with_the_next_lease_in_one_script_call(redis_url):
    admin = aioredis.Redis.from_url(redis_url)
    async with RedisPriorityQueue(redis_url, "ride", reap_interval=60) as q:
        await q.put_many(range(6), priority=1)
        first = await q.get_many(3)
        before = await _script_calls(admin)
        acked, second = await q.ack_and_get_many(first, 3)
        assert await _script_calls(admin) - before == 1
        assert acked == 3 and [d.item for d in second] == [3, 4, 5]
        stats = await q.stats()
        assert (stats.completed, stats.leased, stats.depth) == (3, 3, 0)
        # The refused ones are not counted as accepted: a lease acked already is stale.
        await q.put("one more", priority=1)
        acked, third = await q.ack_and_get_many([*second, first[0]], 3)
        assert acked == 3 and [d.item for d in third] == ["one more"]
        stats = await q.stats()
        assert (stats.completed, stats.stale_acks, stats.leased) == (6, 1, 1)
    await admin.aclose()


async def test_acks_land_at_once_while_the_next_get_waits_and_before_a_shutdown(redis_url):
    async with RedisPriorityQueue(redis_url, "ride-wait") as q:
        await q.put_many(["a", "b"])
        leased = await q.get_many(2)
        waiting = asyncio.create_task(q.ack_and_get_many(leased, 5))
        await until(lambda: _completed(q, 2), "the acks sent with a get that waits")
        assert not waiting.done()
        await q.put("c")
        acked, got = await waiting
        assert acked == 2 and [d.item for d in got] == ["c"]
        (last,) = got
        q.shutdown()
        with pytest.raises(QueueShutDown):
            await q.ack_and_get_many([last], 5)
        assert (await q.stats()).completed == 3


async def test_a_batch_acks_each_lease_once_and_refuses_the_reaped_and_the_repeated(redis_url):
    async with RedisPriorityQueue(redis_url, "batch", lease=0.2, reap_interval=0.01) as q:
        await q.put_many(["kept", "late"])
        kept, late = await q.get_many(2)
        await q.extend(kept, 30)
        await asyncio.sleep(0.25)
        assert await q.reap() == (1, 0)  # 'late' is back in the queue, its lease gone
        assert await q.ack_many([kept, late, kept]) == 1
        stats = await q.stats()
        assert (stats.completed, stats.stale_acks, stats.expired, stats.depth) == (1, 2, 1, 1)
        again = await q.get()
        assert (again.item, again.attempt) == ("late", 1)
        assert await q.ack(again)


async def test_a_batch_larger_than_one_unpack_is_acked_whole(redis_url):
    async with RedisPriorityQueue(redis_url, "big", reap_interval=60) as q:
        n = 2500  # over the scripts' 1000-member slices
        await q.put_many(range(n), priority=3)
        leased = await q.get_many(n)
        assert [d.item for d in leased] == list(range(n))
        assert await q.ack_many(leased) == n
        stats = await q.stats()
        assert (stats.completed, stats.leased, stats.depth) == (n, 0, 0)


async def test_the_lease_token_carries_priority_and_holder_through_nack_and_reap(redis_url):
    async with RedisPriorityQueue(
        redis_url, "token", lease=0.2, reap_interval=0.01, consumer="host:7", max_attempts=5
    ) as q:
        await q.put("x", priority=2.5)
        await q.put("y", priority=2.5)
        x = await q.get()
        assert x.arrival.endswith(b"|2.5|host:7")
        (holder,) = await q.lease_holders()
        assert (holder.consumer, holder.leased) == ("host:7", 1)
        assert await q.nack(x) == "queued"  # back before 'y', at its priority
        again = await q.get()
        assert (again.item, again.priority, again.attempt) == ("x", 2.5, 1)
        await asyncio.sleep(0.25)
        await q.reap()
        back = await q.get()
        assert (back.item, back.priority, back.attempt) == ("x", 2.5, 2)
        assert (await q.stats()).redelivered == 1
        assert await q.ack(back) and not await q.ack(again)


async def _completed(q: RedisPriorityQueue, n: int) -> bool:
    return (await q.stats()).completed >= n


async def test_one_batch_mixes_attempts_and_enqueue_times_item_by_item(redis_url):
    async with RedisPriorityQueue(redis_url, "mixed", max_attempts=5) as q:
        await q.put_many(["a", "b"], priority=1)
        await q.put("c", priority=1)
        first = await q.get()
        assert await q.nack(first) == "queued"  # back before 'b', its attempt counted
        batch = await q.get_many(3)
        assert [(d.item, d.attempt) for d in batch] == [("a", 1), ("b", 0), ("c", 0)]
        a, b, c = batch
        assert a.first_arrival == b.first_arrival == first.first_arrival <= c.first_arrival
        assert await q.ack_many(batch) == 3


async def test_a_lease_taken_before_tokens_carried_the_priority_is_still_reaped(redis_url):
    """An upgrade with leases out: one held the old way (element in the lease set, priority
    in a 'leased' hash) comes back at its priority as an expiry, and the reaper goes on."""
    client = aioredis.Redis.from_url(redis_url)
    async with RedisPriorityQueue(redis_url, "legacy", lease=0.2, reap_interval=0.01) as q:
        await q.put("new", priority=4)
        await q.stats()  # the queue exists (epoch, settings)
        p = "heapwatch:{legacy}:"
        element = "900:1764747120.000000:0:0"
        await client.hset(p + "jobs", "900", q.encode("old"))
        await client.zadd(p + "leases", {element: 1.0})  # its deadline long past
        await client.hset(p + "leased", element, "2.0|box:1")
        assert await q.reap() == (1, 0)
        first, second = await q.get_many(2)
        assert (first.item, first.priority, first.attempt) == ("old", 2.0, 1)
        assert (second.item, second.priority) == ("new", 4.0)
        assert not await client.exists(p + "leased")
        assert await q.ack_many([first, second]) == 2
    await client.aclose()
