"""Speed and memory of engine.queue.PriorityQueue against the baseline, measured in one run.

Baseline: `asyncio.PriorityQueue` holding `(priority, next(counter), item)` tuples, which is
what a user would write instead. Every row prints our figure, the baseline's, the ratio and
the target; the last line is one JSON object with the ratios.

    .venv/bin/python benchmarks/bench_queue.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.queue import PriorityQueue  # noqa: E402

PRIORITIES = 10


class BaselineQueue:
    """The baseline's operations, spelled the way a user would write them."""

    def __init__(self, maxsize: int = 0) -> None:
        self.queue: asyncio.PriorityQueue[tuple[int, int, Any]] = asyncio.PriorityQueue(maxsize)
        self.counter = itertools.count()

    def put_nowait(self, item: Any, priority: int) -> None:
        self.queue.put_nowait((priority, next(self.counter), item))

    def get_nowait(self) -> Any:
        return self.queue.get_nowait()[2]

    async def put(self, item: Any, priority: int) -> None:
        await self.queue.put((priority, next(self.counter), item))

    async def get(self) -> Any:
        return (await self.queue.get())[2]

    def peek(self) -> Any:
        return self.queue._queue[0][2]  # what a user of the baseline would do


class OurQueue:
    """The same operations on PriorityQueue (so both sides pay one wrapper call)."""

    def __init__(self, maxsize: int = 0) -> None:
        self.queue = PriorityQueue(maxsize)
        self._put_nowait = self.queue.put_nowait

    def put_nowait(self, item: Any, priority: int) -> None:
        self._put_nowait(item, priority=priority)

    def get_nowait(self) -> Any:
        return self.queue.get_nowait()

    async def put(self, item: Any, priority: int) -> None:
        await self.queue.put(item, priority=priority)

    async def get(self) -> Any:
        return await self.queue.get()

    def peek(self) -> Any:
        return self.queue.peek()


def best_of(repeats: int, run: Callable[[], float]) -> float:
    """The shortest of `repeats` timings (seconds): the least disturbed by the shared machine."""
    timings = []
    for _ in range(repeats):
        gc.collect()
        timings.append(run())
    return min(timings)


def best_of_pair(
    repeats: int, ours: Callable[[], float], base: Callable[[], float]
) -> tuple[float, float]:
    """Best timings of both sides, run alternately so that a noisy spell hits both alike."""
    ours_timings, base_timings = [], []
    for _ in range(repeats):
        gc.collect()
        ours_timings.append(ours())
        gc.collect()
        base_timings.append(base())
    return min(ours_timings), min(base_timings)


def priorities(count: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(PRIORITIES) for _ in range(count)]


# ---------------------------------------------------------------------- the measurements


def put_get_nowait(make: Callable[[], Any], count: int) -> float:
    """Seconds to put_nowait `count` items over 10 priorities, then get_nowait them all."""
    prios = priorities(count)
    items = list(range(count))

    def run() -> float:
        queue = make()
        put, get = queue.put_nowait, queue.get_nowait
        started = time.perf_counter()
        for item, priority in zip(items, prios, strict=True):
            put(item, priority)
        for _ in range(count):
            get()
        return time.perf_counter() - started

    return run


def producer_consumers(make: Callable[[int], Any], count: int, consumers: int = 8) -> float:
    """Seconds for one producer to push `count` items through `consumers` getters, maxsize 1000."""
    prios = priorities(count)

    async def main() -> float:
        queue = make(1000)
        done = 0

        async def produce() -> None:
            for item, priority in enumerate(prios):
                await queue.put(item, priority)

        async def consume() -> None:
            nonlocal done
            while True:
                await queue.get()
                done += 1
                if done >= count:
                    return

        started = time.perf_counter()
        workers = [asyncio.create_task(consume()) for _ in range(consumers)]
        await produce()
        while done < count:
            await asyncio.sleep(0)
        elapsed = time.perf_counter() - started
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        return elapsed

    return lambda: asyncio.run(main())


def memory_per_item(make: Callable[[], Any], count: int) -> float:
    """Bytes the queue allocates per queued item (payload excluded: created beforehand)."""
    prios = priorities(count)
    items = [object() for _ in range(count)]
    queue = make()
    queue.put_nowait(items[0], prios[0])  # first-use allocations are not per item
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for item, priority in zip(items[1:], prios[1:], strict=True):
        queue.put_nowait(item, priority)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / (count - 1)


def filled(make: Callable[[], Any], depth: int) -> Any:
    """A queue holding `depth` items over 10 priorities."""
    queue = make()
    for item, priority in enumerate(priorities(depth, seed=1)):
        queue.put_nowait(item, priority)
    return queue


def pairs_at_depth(queue: Any, ops: int) -> Callable[[], float]:
    """Seconds for `ops` put+get pairs: the depth stays where it is."""
    prios = priorities(ops, seed=2)

    def run() -> float:
        put, get = queue.put_nowait, queue.get_nowait
        started = time.perf_counter()
        for item, priority in enumerate(prios):
            put(item, priority)
            get()
        return time.perf_counter() - started

    return run


def cycled(depth: int) -> PriorityQueue:
    """A queue at `depth` over 10 priorities whose latency windows are full.

    Each get is put back at its own priority, so every level keeps its depth: introspection
    at two depths then sees the same number of levels and samples, and only depth differs.
    """
    queue = filled(OurQueue, depth).queue
    for _ in range(2 * queue._window):
        item, priority = queue.get_with_priority_nowait()
        queue.put_nowait(item, priority=priority)
    return queue


def per_call(call: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls


# ---------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = 2 if quick else 3
    n_nowait = 50_000 if quick else 200_000
    n_flow = 20_000 if quick else 100_000
    n_memory = 100_000
    deep = 200_000 if quick else 1_000_000
    shallow = 1_000
    ops = 50_000 if quick else 200_000

    rows: list[tuple[str, str, str, float, str, bool]] = []
    results: dict[str, float] = {}

    def row(name: str, ours: str, base: str, ratio: float, target: str, ok: bool) -> None:
        rows.append((name, ours, base, ratio, target, ok))

    # 1. put_nowait + get_nowait throughput.
    ours_s, base_s = best_of_pair(
        repeats, put_get_nowait(OurQueue, n_nowait), put_get_nowait(BaselineQueue, n_nowait)
    )
    ratio = base_s / ours_s
    results["put_get_nowait_throughput"] = ratio
    row(
        f"put_nowait+get_nowait, {n_nowait:,} items, 10 prios (items/s)",
        f"{2 * n_nowait / ours_s:,.0f}",
        f"{2 * n_nowait / base_s:,.0f}",
        ratio,
        ">= 1.0x",
        ratio >= 1.0,
    )

    # 2. Producer + 8 consumers through put/get, maxsize 1000.
    ours_s, base_s = best_of_pair(
        repeats + 2, producer_consumers(OurQueue, n_flow), producer_consumers(BaselineQueue, n_flow)
    )
    ratio = base_s / ours_s
    results["producer_8_consumers_throughput"] = ratio
    row(
        f"1 producer + 8 consumers, put/get, maxsize 1000, {n_flow:,} items (items/s)",
        f"{n_flow / ours_s:,.0f}",
        f"{n_flow / base_s:,.0f}",
        ratio,
        ">= 1.0x",
        ratio >= 1.0,
    )

    # 3. Memory per queued item.
    ours_b = memory_per_item(OurQueue, n_memory)
    base_b = memory_per_item(BaselineQueue, n_memory)
    ratio = ours_b / base_b
    results["memory_per_item"] = ratio
    row(
        f"memory per queued item, {n_memory:,} items (bytes, payload excluded)",
        f"{ours_b:.1f}",
        f"{base_b:.1f}",
        ratio,
        "<= 1.1x",
        ratio <= 1.1,
    )

    # 4. Throughput at depth `deep` against depth 1,000, and introspection cost. One side at a
    # time: the baseline's million GC-tracked tuples would tax every collection of ours.
    def depth_ratio(make: Callable[[], Any]) -> tuple[float, Any, Any]:
        shallow_q, deep_q = filled(make, shallow), filled(make, deep)
        shallow_s, deep_s = best_of_pair(
            repeats, pairs_at_depth(shallow_q, ops), pairs_at_depth(deep_q, ops)
        )
        return shallow_s / deep_s, shallow_q, deep_q

    base_ratio, _, _ = depth_ratio(BaselineQueue)
    gc.collect()
    ours_ratio, _, _ = depth_ratio(OurQueue)
    gc.collect()
    results["depth_deep_vs_1k_throughput"] = ours_ratio
    results["baseline_depth_deep_vs_1k_throughput"] = base_ratio
    row(
        f"put+get at depth {deep:,} vs 1,000 (own throughput ratio)",
        f"{ours_ratio:.2f}x",
        f"{base_ratio:.2f}x",
        ours_ratio,
        ">= 0.5x",
        ours_ratio >= 0.5,
    )
    calls = 200 if quick else 1000
    shallow_q, deep_q = cycled(shallow), cycled(deep)
    for name, call_of in (
        ("stats()", lambda q: q.stats),
        ("peek()", lambda q: q.peek),
        ("top(10)", lambda q: partial(q.top, 10)),
        ("oldest_wait()", lambda q: q.oldest_wait),
        ("depth_by_priority()", lambda q: q.depth_by_priority),
    ):
        shallow_cost, deep_cost = best_of_pair(
            repeats,
            partial(per_call, call_of(shallow_q), calls),
            partial(per_call, call_of(deep_q), calls),
        )
        ratio = deep_cost / shallow_cost
        results[f"{name}_cost_deep_vs_1k"] = ratio
        row(
            f"{name} at depth {deep:,} vs 1,000 ({deep_cost * 1e6:.1f} us a call)",
            f"{ratio:.2f}x",
            "-",
            ratio,
            "flat (<= 2.0x)",
            ratio <= 2.0,
        )

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'ours':>12}  {'baseline':>12}  {'ratio':>7}  target")
    for name, ours, base, ratio, target, ok in rows:
        mark = "ok" if ok else "MISSED"
        print(f"{name:<{width}}  {ours:>12}  {base:>12}  {ratio:>6.2f}x  {target} {mark}")
    results = {key: round(value, 3) for key, value in results.items()}
    results["all_targets_met"] = all(r[5] for r in rows)
    results["quick"] = quick
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
