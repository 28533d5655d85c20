"""WorkerPool throughput against a plain hand-written worker loop, in paired rounds.

Baseline: 8 tasks doing `priority, _, item = await get(); await handler(item, priority);
task_done()` on `asyncio.PriorityQueue` (items as `(priority, seq, item)` tuples). Contender:
`WorkerPool` with 8 workers and a no-op handler on `engine.queue.PriorityQueue`, keeping its
ledger, states and meters. A third row, the same plain loop on `engine.queue.PriorityQueue`
through `get_delivery()` (what the pool consumes), separates the queue's share from the pool's.

Each round pre-fills N items over 10 priorities and times the consumption until `join()`
returns, in CPU time (the process's own work: on a shared machine, wall time also counts the
neighbours), for the three contenders back to back, their order alternating between rounds so
that a noisy neighbour hurts them alike. The figure is the median of the per-round ratios,
with their spread (min-max). Targets: pool / baseline >= 1.0 at 200k items, >= 0.9 at 20k.

    python benchmarks/bench_pool.py [--sizes 20000,200000] [--rounds 5] [--workers 8] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.pool import WorkerPool  # noqa: E402
from engine.queue import PriorityQueue  # noqa: E402

PRIORITIES = 10
TARGETS = {20_000: 0.9, 200_000: 1.0}


async def noop_handler(item: object, priority: float) -> None:
    return None


async def _consume_plain(queue: asyncio.Queue, workers: int, deliveries: bool) -> float:
    # Each plain loop hands the handler the item and its priority, as the pool does: the
    # loop a user would write, and the same work on both sides.
    async def worker() -> None:
        get = queue.get
        while True:
            priority, _, item = await get()
            await noop_handler(item, priority)
            queue.task_done()

    async def delivery_worker() -> None:
        get = queue.get_delivery
        while True:
            item, priority, *_ = await get()
            await noop_handler(item, priority)
            queue.task_done()

    work = delivery_worker if deliveries else worker
    started = time.process_time()
    tasks = [asyncio.create_task(work()) for _ in range(workers)]
    await queue.join()
    elapsed = time.process_time() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed


async def plain_asyncio(items: int, workers: int) -> float:
    queue: asyncio.PriorityQueue = asyncio.PriorityQueue()
    # The tie-breaker is a counter of its own, as a user's would be: an `i` doubling as the
    # item would save the loop one object an item that no real workload saves.
    seq = count()
    for i in range(items):
        queue.put_nowait((i % PRIORITIES, next(seq), i))
    return await _consume_plain(queue, workers, deliveries=False)


async def plain_engine_queue(items: int, workers: int) -> float:
    queue = PriorityQueue()
    for i in range(items):
        queue.put_nowait(i, priority=i % PRIORITIES)
    return await _consume_plain(queue, workers, deliveries=True)


async def worker_pool(items: int, workers: int) -> float:
    queue = PriorityQueue()
    pool = WorkerPool(queue, noop_handler, workers=workers)
    for i in range(items):
        pool.submit_nowait(i, priority=i % PRIORITIES)
    started = time.process_time()
    await pool.start()
    await queue.join()
    elapsed = time.process_time() - started
    report = await pool.shutdown(drain_timeout=5.0)
    accounting = report.accounting
    if accounting.completed != items or accounting.lost or accounting.duplicated:
        raise SystemExit(f"pool lost or duplicated items: {accounting}")
    return elapsed


RUNNERS = {"baseline": plain_asyncio, "engine_queue": plain_engine_queue, "pool": worker_pool}
LABELS = {
    "baseline": "plain loop, asyncio.PriorityQueue",
    "engine_queue": "plain loop, engine queue get_delivery",
    "pool": "WorkerPool, engine PriorityQueue",
}


def rate(name: str, items: int, workers: int) -> float:
    gc.collect()
    return items / asyncio.run(RUNNERS[name](items, workers))


def measure(items: int, workers: int, rounds: int) -> dict:
    rates: dict[str, list[float]] = {name: [] for name in RUNNERS}
    for index in range(rounds):
        names = list(RUNNERS) if index % 2 == 0 else list(RUNNERS)[::-1]
        for name in names:
            rates[name].append(rate(name, items, workers))
    ratios = [p / b for p, b in zip(rates["pool"], rates["baseline"], strict=True)]
    queue_ratios = [q / b for q, b in zip(rates["engine_queue"], rates["baseline"], strict=True)]
    target = TARGETS.get(items)
    median = statistics.median(ratios)
    return {
        "items": items,
        "rounds": rounds,
        "rates": {name: round(statistics.median(values)) for name, values in rates.items()},
        "pool_vs_baseline": round(median, 3),
        "spread": [round(min(ratios), 3), round(max(ratios), 3)],
        "engine_queue_vs_baseline": round(statistics.median(queue_ratios), 3),
        "target": target,
        "ok": None if target is None else median >= target,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000", help="item counts, comma-separated")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20k items, 3 rounds (a smoke run)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated item counts, not {args.sizes!r}")
    if args.quick:
        sizes, args.rounds = [20_000], 3
    if min(sizes) < 1 or args.workers < 1 or args.rounds < 1:
        parser.error("sizes, workers and rounds must be >= 1")

    for items in sizes:
        result = measure(items, args.workers, args.rounds)
        rounds = f"{args.rounds} paired rounds"
        print(f"\n{items} items, {args.workers} workers, no-op handler, {rounds}")
        print(f"{'contender':<40} {'items/s (median)':>17}")
        for name, value in result["rates"].items():
            print(f"{LABELS[name]:<40} {value:>17,}")
        low, high = result["spread"]
        target = result["target"]
        print(
            f"pool / baseline: median {result['pool_vs_baseline']:.2f}x (spread {low:.2f}-"
            f"{high:.2f}){'' if target is None else f', target >= {target}x'}"
        )
        print(json.dumps({"bench": "pool", "workers": args.workers, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
