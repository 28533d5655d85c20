"""Speed and memory of engine.queue.PriorityQueue against the baseline, measured in one run.

Baseline: `asyncio.PriorityQueue` holding `(priority, next(counter), item)` tuples, which is
what a user would write instead; for the hand-off, the plain `asyncio.Queue`. Each timed case
runs in paired rounds (ours, then the baseline, alternately, so a noisy spell hits both) and
reports the median ratio of the rounds with their spread (lowest..highest). Times are the
process's CPU time (`time.process_time`): everything runs on one thread without sleeping, so
it is the work done, and other processes on a shared machine do not count. Every row prints
our figure, the baseline's, the ratio and the target; the last line is one JSON object with
the ratios.

    .venv/bin/python benchmarks/bench_queue.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.floor_queue import FloorQueue  # noqa: E402
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


def best_of_pair(
    repeats: int, ours: Callable[[], float], base: Callable[[], float]
) -> tuple[float, float]:
    """Best timings of both sides, run alternately (for the depth and cost rows)."""
    ours_timings, base_timings = [], []
    for _ in range(repeats):
        gc.collect()
        ours_timings.append(ours())
        gc.collect()
        base_timings.append(base())
    return min(ours_timings), min(base_timings)


class Paired:
    """Paired rounds of one case: per round, our time and the baseline's, alternately."""

    def __init__(self, rounds: int, ours: Callable[[], float], base: Callable[[], float]) -> None:
        self.ours: list[float] = []
        self.base: list[float] = []
        for _ in range(rounds):
            gc.collect()
            self.ours.append(ours())
            gc.collect()
            self.base.append(base())

    def ratios(self, speedup: bool = True) -> list[float]:
        """baseline / ours per round (a speed-up), or ours / baseline (a cost ratio)."""
        pairs = zip(self.base, self.ours, strict=True)
        return sorted(b / o if speedup else o / b for b, o in pairs)

    def summary(self, speedup: bool = True) -> tuple[float, float, float]:
        """(median, lowest, highest) of the per-round ratios."""
        ratios = self.ratios(speedup)
        return statistics.median(ratios), ratios[0], ratios[-1]


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
        started = time.process_time()
        for item, priority in zip(items, prios, strict=True):
            put(item, priority)
        for _ in range(count):
            get()
        return time.process_time() - started

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

        started = time.process_time()
        workers = [asyncio.create_task(consume()) for _ in range(consumers)]
        await produce()
        while done < count:
            await asyncio.sleep(0)
        elapsed = time.process_time() - started
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        return elapsed

    return lambda: asyncio.run(main())


def handoff(make: Callable[[], asyncio.Queue], count: int) -> Callable[[], float]:
    """Seconds to hand `count` items from one producer to one consumer through maxsize=1.

    Both sides suspend on every item: the producer on the full queue, the consumer on the
    empty one. Plain put/get on both queues (no wrapper): what a user writes.
    """

    async def main() -> float:
        queue = make()

        async def produce() -> None:
            put = queue.put
            for item in range(count):
                await put(item)

        async def consume() -> None:
            get = queue.get
            for _ in range(count):
                await get()

        started = time.process_time()
        await asyncio.gather(produce(), consume())
        return time.process_time() - started

    return lambda: asyncio.run(main())


def steady_ours(
    ops: int, every: int = 8, make: Callable[[], Any] = PriorityQueue
) -> Callable[[], float]:
    """Seconds for `ops` put+get pairs at a steady depth of 1,000 over 10 priorities.

    Every get is a delivery (read by position, as the protocol says); one in `every` is put
    back with its arrival token and got again, so the depth stays at 1,000. Direct calls, as
    a consumer writes them. `make` may be `FloorQueue`, to time the same loop on it.
    """
    prios = priorities(ops, seed=3)

    def run() -> float:
        queue = make()
        for item, priority in enumerate(priorities(1000, seed=1)):  # as `filled` does
            queue.put_nowait(item, priority=priority)
        put, get, requeue = queue.put_nowait, queue.get_delivery_nowait, queue.requeue_nowait
        started = time.process_time()
        for item, priority in enumerate(prios):
            put(item, priority=priority)
            delivery = get()
            if not item % every:
                requeue(delivery[0], priority=delivery[1], arrival=delivery[2])
                get()
        return time.process_time() - started

    return run


def steady_baseline(ops: int, every: int = 8) -> Callable[[], float]:
    """The same on the baseline: its (priority, count, item) tuple is its own arrival token."""
    prios = priorities(ops, seed=3)

    def run() -> float:
        baseline = filled(BaselineQueue, 1000)
        queue, counter = baseline.queue, baseline.counter
        put, get = queue.put_nowait, queue.get_nowait
        started = time.process_time()
        for item, priority in enumerate(prios):
            put((priority, next(counter), item))
            entry = get()
            if not item % every:
                put(entry)
                get()
        return time.process_time() - started

    return run


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
        started = time.process_time()
        for item, priority in enumerate(prios):
            put(item, priority)
            get()
        return time.process_time() - started

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
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls


# ---------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--rounds", type=int, default=0, help="paired rounds per case")
    parser.add_argument("--only", default="", help="run only the cases whose key contains this")
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds or (3 if quick else 7)
    repeats = 2 if quick else 3
    n_nowait = 50_000 if quick else 200_000
    n_flow = 20_000 if quick else 100_000
    n_handoff = 20_000 if quick else 100_000
    n_memory = 100_000
    deep = 200_000 if quick else 1_000_000
    shallow = 1_000
    ops = 50_000 if quick else 200_000

    rows: list[tuple[str, str, str, str, str, bool]] = []
    results: dict[str, Any] = {}

    def row(name: str, ours: str, base: str, ratio: str, target: str, ok: bool) -> None:
        rows.append((name, ours, base, ratio, target, ok))

    def paired_row(
        key: str, name: str, make: Callable[[], Paired], per_round: float, unit: str,
        target: float | None, speedup: bool = True,
    ) -> None:  # fmt: skip
        if args.only not in key:
            return
        case = make()
        median, low, high = case.summary(speedup)
        results[key] = median
        results[f"{key}_spread"] = [low, high]
        ok = target is None or (median >= target if speedup else median <= target)
        ours, base = statistics.median(case.ours), statistics.median(case.base)
        scale = (lambda s: f"{per_round / s:,.0f}") if unit == "/s" else (
            lambda s: f"{s / per_round * 1e6:.2f} us"
        )  # fmt: skip
        row(
            name,
            scale(ours),
            scale(base),
            f"{median:.2f}x ({low:.2f}-{high:.2f})",
            "-" if target is None else f"{'>=' if speedup else '<='} {target}x",
            ok,
        )

    # 1. Fill and drain: put_nowait everything, then get_nowait everything.
    paired_row(
        "fill_drain_nowait_throughput",
        f"fill-and-drain nowait, {n_nowait:,} items, 10 prios (items/s)",
        lambda: Paired(
            rounds, put_get_nowait(OurQueue, n_nowait), put_get_nowait(BaselineQueue, n_nowait)
        ),
        2 * n_nowait, "/s", 2.0,
    )  # fmt: skip

    # 2. Steady depth 1,000: put+get pairs with requeues by arrival token.
    paired_row(
        "steady_1k_with_requeues_throughput",
        f"put+get at depth 1,000, 10 prios, 1 in 8 requeued, {ops:,} pairs (pairs/s)",
        lambda: Paired(rounds, steady_ours(ops), steady_baseline(ops)),
        ops, "/s", 1.6,
    )  # fmt: skip
    paired_row(
        "steady_1k_floor_throughput",
        "  the same loop on benchmarks/floor_queue.py: a pure-Python ceiling (pairs/s)",
        lambda: Paired(rounds, steady_ours(ops, make=FloorQueue), steady_baseline(ops)),
        ops, "/s", None,
    )  # fmt: skip

    # 3. Hand-off through maxsize=1: both sides suspend on every item.
    paired_row(
        "handoff_cost_vs_asyncio_queue",
        f"hand-off, maxsize=1, 1 producer + 1 consumer, {n_handoff:,} items (per item)",
        lambda: Paired(
            rounds,
            handoff(lambda: PriorityQueue(1), n_handoff),
            handoff(lambda: asyncio.Queue(1), n_handoff),
        ),
        n_handoff, "us", 1.10, speedup=False,
    )  # fmt: skip

    # 4. Producer + 8 consumers through put/get, maxsize 1000.
    paired_row(
        "producer_8_consumers_throughput",
        f"1 producer + 8 consumers, put/get, maxsize 1000, {n_flow:,} items (items/s)",
        lambda: Paired(
            rounds,
            producer_consumers(OurQueue, n_flow),
            producer_consumers(BaselineQueue, n_flow),
        ),
        n_flow, "/s", 1.3,
    )  # fmt: skip
    if args.only:
        report(rows, results, quick, rounds)
        return 0

    # 5. Memory per queued item.
    ours_b = memory_per_item(OurQueue, n_memory)
    base_b = memory_per_item(BaselineQueue, n_memory)
    results["memory_per_item_bytes"] = ours_b
    results["memory_per_item"] = ours_b / base_b
    row(
        f"memory per queued item, {n_memory:,} items (bytes, payload excluded)",
        f"{ours_b:.1f} B",
        f"{base_b:.1f} B",
        f"{ours_b / base_b:.2f}x",
        "<= 1.1x",
        ours_b / base_b <= 1.1,
    )

    # 6. Throughput at depth `deep` against depth 1,000, and introspection cost. One side at a
    # time: the baseline's million GC-tracked tuples would tax every collection of ours.
    def depth_ratio(make: Callable[[], Any]) -> float:
        shallow_q, deep_q = filled(make, shallow), filled(make, deep)
        shallow_s, deep_s = best_of_pair(
            repeats, pairs_at_depth(shallow_q, ops), pairs_at_depth(deep_q, ops)
        )
        return shallow_s / deep_s

    base_ratio = depth_ratio(BaselineQueue)
    gc.collect()
    ours_ratio = depth_ratio(OurQueue)
    gc.collect()
    results["depth_deep_vs_1k_throughput"] = ours_ratio
    results["baseline_depth_deep_vs_1k_throughput"] = base_ratio
    row(
        f"put+get at depth {deep:,} vs 1,000 (own throughput ratio, best of {repeats})",
        f"{ours_ratio:.2f}x",
        f"{base_ratio:.2f}x",
        f"{ours_ratio:.2f}x",
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
            f"{ratio:.2f}x",
            "flat (<= 2.0x)",
            ratio <= 2.0,
        )

    report(rows, results, quick, rounds)
    return 0


def report(rows: list[Any], results: dict[str, Any], quick: bool, rounds: int) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{rounds} paired rounds per timed case; ratio: median (lowest-highest)")
    header = f"{'benchmark':<{width}}  {'ours':>12}  {'baseline':>12}  {'ratio':>20}  target"
    print(header)
    for name, ours, base, ratio, target, ok in rows:
        mark = "" if target == "-" else "ok" if ok else "MISSED"
        print(f"{name:<{width}}  {ours:>12}  {base:>12}  {ratio:>20}  {target} {mark}".rstrip())
    rounded = {
        key: [round(v, 3) for v in value] if isinstance(value, list) else round(value, 3)
        for key, value in results.items()
    }
    rounded["all_targets_met"] = all(r[5] for r in rows)
    rounded["quick"] = quick
    rounded["rounds"] = rounds
    print(json.dumps(rounded, sort_keys=True))


if __name__ == "__main__":
    raise SystemExit(main())
