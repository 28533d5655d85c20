"""RedisPriorityQueue against a BullMQ-style design on the same redis-server, in one run.

Workload (both sides): 1 producer task and 8 consumer tasks in one process, each consumer on
its own connection; N items (default 50,000) over 10 priorities, put in batches of
PUT_BATCH, leased in batches of GET_BATCH and acked as a batch, in two consumer loops: 'riding'
(a batch's ack goes with the lease of the next, one call per batch, as BullMQ's worker does
with moveToFinished fetching the next job) and 'apart' (a get call, then an ack call).

The BullMQ-style design, written here for the comparison: one ZSET of waiting job ids scored
priority * 2^32 + seq, a ZSET of leases by deadline, a processing hash (id -> lease token), a
hash of bodies, a one-member marker ZSET that idle consumers wait on with BZPOPMIN; one Lua
script each for put, get (lease, after acking the ids it is given) and ack. Same codec, same
batch sizes, same loops, same server.

Printed, per loop: items/s for each side (median and min-max of the rounds, sides
alternating), the ratio of each round's pair (median and min-max; target >= 1.0x), Redis CPU per item (INFO cpu, user + sys, over each round), this process's CPU per
item (the client side: redis-py, the codec, the queue's own code), and the in-process
PriorityQueue's items/s on the same task layout. The last line is one JSON object.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_redis.py [--items N] [--rounds R] [--url URL] [--loop riding|apart|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from redis.utils import HIREDIS_AVAILABLE  # noqa: E402

from engine.queue import PriorityQueue  # noqa: E402
from engine.redis_queue import RedisPriorityQueue, default_codec  # noqa: E402

CONSUMERS = 8
PUT_BATCH = 100
GET_BATCH = 50
PRIORITIES = 10
LEASE = 30.0

_ZSET_PUT = r"""
local P = KEYS[1]
local prio = tonumber(ARGV[1])
local n = #ARGV - 1
local last = redis.call('INCRBY', P .. 'seq', n)
local z, h = {}, {}
for i = 1, n do
  local id = last - n + i
  z[2 * i - 1] = string.format('%.17g', prio * 4294967296 + id)
  z[2 * i] = id
  h[2 * i - 1] = id
  h[2 * i] = ARGV[i + 1]
end
redis.call('HSET', P .. 'jobs', unpack(h))
redis.call('ZADD', P .. 'wait', unpack(z))
redis.call('ZADD', P .. 'marker', 0, '0')
return n
"""

# The ack: the ids from ARGV[FIRST] on, each checked against the processing hash (TOKEN), in
# bulk commands as RedisPriorityQueue's ack (one HMGET to check, then one HDEL, ZREM, HDEL),
# not four commands per id. Batches here stay far below Lua's unpack() limit.
_ZSET_ACK_LOOP = r"""
local P = KEYS[1]
local ids = {unpack(ARGV, FIRST)}
local done = 0
if #ids > 0 then
  local holders = redis.call('HMGET', P .. 'processing', unpack(ids))
  local mine = {}
  for i = 1, #ids do
    if holders[i] == TOKEN then mine[#mine + 1] = ids[i] end
  end
  done = #mine
  if done > 0 then
    redis.call('HDEL', P .. 'processing', unpack(mine))
    redis.call('ZREM', P .. 'leases', unpack(mine))
    redis.call('HDEL', P .. 'jobs', unpack(mine))
    redis.call('HINCRBY', P .. 'counters', 'completed', done)
  end
end
"""

# ARGV: token, ids... -> acks accepted
_ZSET_ACK = _ZSET_ACK_LOOP.replace("FIRST", "2").replace("TOKEN", "ARGV[1]") + "return done\n"

# ARGV: n, lease, token, then the ids to ack first (none: a plain get) -> {acks accepted, then
# (id, body) pairs}. The ack rides with the next lease as in BullMQ's own worker, whose
# moveToFinished fetches the next job.
_ZSET_GET = _ZSET_ACK_LOOP.replace("FIRST", "4").replace("TOKEN", "ARGV[3]") + r"""
local out = {done}
local popped = redis.call('ZPOPMIN', P .. 'wait', tonumber(ARGV[1]))
if #popped == 0 then return out end
local t = redis.call('TIME')
local deadline = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[2]))
local ids, leases, processing = {}, {}, {}
for i = 1, #popped, 2 do
  local id = popped[i]
  ids[#ids + 1] = id
  leases[#leases + 1] = deadline
  leases[#leases + 1] = id
  processing[#processing + 1] = id
  processing[#processing + 1] = ARGV[3]
end
redis.call('ZADD', P .. 'leases', unpack(leases))
redis.call('HSET', P .. 'processing', unpack(processing))
if redis.call('ZCARD', P .. 'wait') > 0 then redis.call('ZADD', P .. 'marker', 0, '0') end
local bodies = redis.call('HMGET', P .. 'jobs', unpack(ids))
for i = 1, #ids do
  out[2 * i] = ids[i]
  out[2 * i + 1] = bodies[i]
end
return out
"""


class ZsetQueue:
    """The BullMQ-style design: one priority*2^32+seq ZSET, a lease ZSET, a processing hash."""

    def __init__(self, url: str, name: str, token: str) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.prefix = f"bench:{{{name}}}:"
        self.token = token
        self.codec = default_codec()
        self._put = self.redis.register_script(_ZSET_PUT)
        self._get = self.redis.register_script(_ZSET_GET)
        self._ack = self.redis.register_script(_ZSET_ACK)

    async def put_many(self, items: list[Any], *, priority: int) -> int:
        encode = self.codec.encode
        return await self._put(keys=[self.prefix], args=[priority, *map(encode, items)])

    async def get_many(self, n: int) -> list[tuple[bytes, Any]]:
        return (await self.ack_and_get_many((), n))[1]

    async def ack_and_get_many(self, done: Any, n: int) -> tuple[int, list[tuple[bytes, Any]]]:
        acks = [i for i, _ in done]
        acked = 0
        while True:
            reply = await self._get(keys=[self.prefix], args=[n, LEASE, self.token, *acks])
            if acks:
                acked, acks = reply[0], []
            if len(reply) > 1:
                decode = self.codec.decode
                return acked, [(reply[i], decode(reply[i + 1])) for i in range(1, len(reply), 2)]
            await self.redis.bzpopmin(self.prefix + "marker", timeout=1)
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # redis-py may swallow a cancel
                raise asyncio.CancelledError

    async def ack_many(self, leased: list[tuple[bytes, Any]]) -> int:
        return await self._ack(keys=[self.prefix], args=[self.token, *(i for i, _ in leased)])

    async def close(self) -> None:
        await self.redis.aclose()


async def redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def run_redis_round(
    url: str, design: str, items: int, round_no: int, loop: str = "riding"
) -> tuple[float, float, float]:
    """(items/s, Redis CPU and client CPU in microseconds per item) of one round. `loop`:
    'riding', each batch's ack sent with the lease of the next; 'apart', one call each."""
    name = f"{design}-{loop}-{round_no}"
    admin = aioredis.Redis.from_url(url)
    if design == "ours":
        producer: Any = RedisPriorityQueue(url, name, lease=LEASE)
        consumers: list[Any] = [RedisPriorityQueue(url, name, lease=LEASE) for _ in range(8)]
    else:
        producer = ZsetQueue(url, name, "producer")
        consumers = [ZsetQueue(url, name, f"consumer-{i}") for i in range(CONSUMERS)]
    # Connect (and load the scripts) before the clock starts.
    for q in (producer, *consumers):
        await (q._redis if design == "ours" else q.redis).ping()
    done = 0
    finished = asyncio.Event()

    async def produce() -> None:
        for start in range(0, items, PUT_BATCH):
            batch = [{"n": i} for i in range(start, min(items, start + PUT_BATCH))]
            await producer.put_many(batch, priority=(start // PUT_BATCH) % PRIORITIES)

    async def consume(q: Any) -> None:
        nonlocal done
        leased: list[Any] = []
        while True:
            if loop == "apart":
                leased = await q.get_many(GET_BATCH)
                await q.ack_many(leased)
            else:  # a batch's acks go out in the first call of the next get, then it may wait
                _, leased = await q.ack_and_get_many(leased, GET_BATCH)
            done += len(leased)
            if done >= items:
                finished.set()

    async def all_acked() -> None:
        """'riding': every item leased, then every ack landed (the queue's completed counter)."""
        await finished.wait()
        if loop == "apart":
            return
        key = (f"heapwatch:{{{name}}}:" if design == "ours" else producer.prefix) + "counters"
        while int(await admin.hget(key, "completed") or 0) < items:
            await asyncio.sleep(0.001)

    cpu_before = await redis_cpu(admin)
    client_before = time.process_time()
    started = time.perf_counter()
    tasks = [asyncio.create_task(consume(q)) for q in consumers]
    await produce()
    await all_acked()
    elapsed = time.perf_counter() - started
    client = time.process_time() - client_before
    for task in tasks:  # the others wait on an empty queue
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu = await redis_cpu(admin) - cpu_before
    for q in (producer, *consumers):
        await q.close()
    await admin.flushall()
    await admin.aclose()
    return items / elapsed, cpu / items * 1e6, client / items * 1e6


def run_in_process(items: int) -> float:
    async def main() -> float:
        queue = PriorityQueue()
        done = 0
        finished = asyncio.Event()

        async def produce() -> None:
            for i in range(items):
                await queue.put({"n": i}, priority=(i // PUT_BATCH) % PRIORITIES)

        async def consume() -> None:
            nonlocal done
            while True:
                await queue.get()
                done += 1
                if done >= items:
                    finished.set()

        started = time.perf_counter()
        tasks = [asyncio.create_task(consume()) for _ in range(CONSUMERS)]
        await produce()
        await finished.wait()
        elapsed = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return items / elapsed

    return asyncio.run(main())


def spread(values: list[float], fmt: str = ".0f") -> str:
    """'median (min-max)' of a list of figures."""
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


LOOPS = {
    "riding": "each batch's ack rides with the lease of the next (one call per batch)",
    "apart": "get, then ack, one call each per batch",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=15, help="rounds per design (alternating)")
    parser.add_argument("--url", help="an existing redis:// server (default: start one)")
    parser.add_argument("--loop", choices=[*LOOPS, "both"], default="both")
    args = parser.parse_args(argv)
    loops = list(LOOPS) if args.loop == "both" else [args.loop]
    server = None
    url = args.url
    if url is None:
        from redis_fixture import RedisServer

        server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")))
        server.start()
        url = server.url
    figures: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    try:
        for round_no in range(args.rounds):
            for loop in loops:
                for design in ("ours", "zset") if round_no % 2 == 0 else ("zset", "ours"):
                    one = run_redis_round(url, design, args.items, round_no, loop)
                    figures.setdefault((loop, design), []).append(asyncio.run(asyncio.wait_for(one, 300)))
        in_process = run_in_process(args.items)
    finally:
        if server is not None:
            server.stop()
    print(f"{args.items} items, 1 producer + {CONSUMERS} consumers, put batch {PUT_BATCH}, "
          f"get/ack batch {GET_BATCH}, {args.rounds} rounds each, sides alternating: "
          "median (min-max)")  # fmt: skip
    parser_name = "hiredis" if HIREDIS_AVAILABLE else "pure-Python parser"
    print(f"redis-py {redis.__version__} with {parser_name}")
    summary: dict[str, Any] = {"in_process_items_per_s": round(in_process)}
    for loop in loops:
        ours, zset = figures[(loop, "ours")], figures[(loop, "zset")]
        ratios = [o[0] / z[0] for o, z in zip(ours, zset, strict=True)]  # paired by round
        print(f"\nloop '{loop}': {LOOPS[loop]}")
        print(f"{'design':<34} {'items/s':>22} {'Redis CPU/item':>15} {'client CPU/item':>16}")
        for label, rows in (("RedisPriorityQueue (lists+levels)", ours), ("BullMQ-style (one ZSET)", zset)):
            rates, cpu, client = (list(column) for column in zip(*rows, strict=True))
            print(f"{label:<34} {spread(rates):>22} {statistics.median(cpu):>12.1f} us "
                  f"{statistics.median(client):>13.1f} us")  # fmt: skip
        mark = "ok" if statistics.median(ratios) >= 1.0 else "BELOW TARGET"
        print(f"ratio ours/BullMQ-style, paired by round: {spread(ratios, '.2f')}x (target >= 1.0x) {mark}")
        for design, rows in (("ours", ours), ("zset", zset)):
            summary[f"{loop}_{design}_items_per_s"] = round(statistics.median(r[0] for r in rows))
            summary[f"{loop}_{design}_redis_cpu_us_per_item"] = round(statistics.median(r[1] for r in rows), 2)
            summary[f"{loop}_{design}_client_cpu_us_per_item"] = round(statistics.median(r[2] for r in rows), 2)
        summary[f"{loop}_ratios"] = [round(r, 3) for r in ratios]
    print(f"\n{'in-process PriorityQueue':<34} {in_process:>22.0f}")
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
