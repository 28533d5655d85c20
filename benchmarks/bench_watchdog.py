"""What the watchdog costs and whether it catches what it must, measured in one run.

Rows:
- sample cost at depth 1,000 and at 1,000,000 (median of many `sample()` calls): target within 2x;
- queue throughput (producer/consumer through a bounded PriorityQueue) with the watchdog on at
  its default interval (loop monitor thread included) against off: the median of the ratios
  of adjacent on/off pairs, so that drift in the machine's load cancels within a pair: >= 0.95x;
- a handler blocking the loop with time.sleep(0.5), N times: every block named, target N/N;
- an idle, healthy run of --idle seconds (the issue's 60 s; 0 skips it): target 0 alerts.
The last line is one JSON object with the figures and ratios.

    .venv/bin/python benchmarks/bench_watchdog.py [--quick] [--idle 60]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.queue import PriorityQueue  # noqa: E402
from engine.snapshots import AlertKind  # noqa: E402
from engine.watchdog import Watchdog  # noqa: E402

PRIORITIES = 10


async def sample_cost(depth: int, samples: int) -> float:
    """Median seconds of one `sample()` on a queue `depth` deep (no alert fires: SLA is huge)."""
    queue = PriorityQueue()
    put = queue.put_nowait
    for index in range(depth):
        put(index, priority=index % PRIORITIES)
    watchdog = Watchdog(queue, sla=1e9, loop_block_ms=None)
    for _ in range(20):  # warm up
        watchdog.sample()
    costs = []
    for _ in range(samples):
        started = time.perf_counter()
        watchdog.sample()
        costs.append(time.perf_counter() - started)
    assert not watchdog.active_alerts
    del queue, watchdog
    gc.collect()
    return statistics.median(costs)


async def pump(items: int, with_watchdog: bool) -> float:
    """Items per second through a bounded queue: one producer, one consumer."""
    queue = PriorityQueue(1000)
    watchdog = Watchdog(queue) if with_watchdog else None
    if watchdog is not None:
        await watchdog.start()

    async def produce() -> None:
        put = queue.put
        for index in range(items):
            await put(index, priority=index % PRIORITIES)

    async def consume() -> None:
        get = queue.get
        for _ in range(items):
            await get()

    started = time.perf_counter()
    await asyncio.gather(produce(), consume())
    elapsed = time.perf_counter() - started
    if watchdog is not None:
        await watchdog.stop()
        assert watchdog.snapshot().sample_cost > 0 or elapsed < watchdog.interval
    return items / elapsed


async def blocks_named(trials: int) -> tuple[int, list[str]]:
    """Block the loop `trials` times from a handler; count alerts whose culprit names it."""
    queue = PriorityQueue()
    alerts = []

    def blocking_handler() -> None:
        time.sleep(0.5)

    async with Watchdog(queue, on_alert=alerts.append):
        await asyncio.sleep(0.2)
        for _ in range(trials):
            asyncio.get_running_loop().call_soon(blocking_handler)
            await asyncio.sleep(0.3)
    raised = [a for a in alerts if a.kind is AlertKind.LOOP_BLOCKED and a.active]
    named = [a.culprit or "" for a in raised if "blocking_handler" in (a.culprit or "")]
    return len(named), [a.culprit or "?" for a in raised]


async def idle_run(seconds: float) -> tuple[int, tuple[float | None, float | None, float]]:
    """A healthy, lightly busy loop for `seconds`: alerts raised, loop lag (p50, p99, max)."""
    queue = PriorityQueue(100)
    alerts = []
    async with Watchdog(queue, on_alert=alerts.append) as watchdog:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            queue.put_nowait("tick", priority=3)
            await asyncio.sleep(0.01)
            queue.get_nowait()
        snapshot = watchdog.snapshot()
    return len(alerts), (snapshot.loop_lag_p50, snapshot.loop_lag_p99, snapshot.loop_lag_max)


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI smoke)")
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds (0: skip)")
    args = parser.parse_args()
    samples = 200 if args.quick else 1000
    items = 50_000 if args.quick else 200_000
    rounds = 3 if args.quick else 15
    trials = 3 if args.quick else 5
    big = 100_000 if args.quick else 1_000_000

    small_cost = await sample_cost(1_000, samples)
    big_cost = await sample_cost(big, samples)
    cost_ratio = big_cost / small_cost

    off_rates, on_rates = [], []
    for _ in range(rounds):  # alternate so that drift in machine load hits both sides alike
        off_rates.append(await pump(items, with_watchdog=False))
        on_rates.append(await pump(items, with_watchdog=True))
    off_rate = statistics.median(off_rates)
    on_rate = statistics.median(on_rates)
    throughput_ratio = statistics.median(on / off for on, off in zip(on_rates, off_rates, strict=True))

    named, culprits = await blocks_named(trials)
    idle_alerts, lag = (0, (None, None, 0.0)) if args.idle <= 0 else await idle_run(args.idle)

    rows = [
        ("sample cost, depth 1,000", ms(small_cost), "", ""),
        (f"sample cost, depth {big:,}", ms(big_cost), f"{cost_ratio:.2f}x", "<= 2x"),
        ("throughput, watchdog off", f"{off_rate:,.0f}/s", "", ""),
        ("throughput, watchdog on", f"{on_rate:,.0f}/s", f"{throughput_ratio:.3f}x", ">= 0.95x"),
        ("sleep(0.5) blocks named", f"{named}/{trials}", "", f"{trials}/{trials}"),
        (f"idle {args.idle:g} s: alerts", str(idle_alerts), "", "0"),
        ("idle loop lag p50/p99/max", " / ".join(ms(v) for v in lag), "", ""),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'figure':>32}  {'ratio':>8}  target")
    for name, figure, ratio, target in rows:
        print(f"{name:<{width}}  {figure:>32}  {ratio:>8}  {target}")
    if named != trials:
        print("culprits:", culprits)
    print(
        json.dumps(
            {
                "sample_cost_1k_s": small_cost,
                f"sample_cost_{big}_s": big_cost,
                "sample_cost_ratio": round(cost_ratio, 3),
                "throughput_ratio_on_vs_off": round(throughput_ratio, 3),
                "blocks_named": named,
                "blocks_tried": trials,
                "idle_seconds": args.idle,
                "idle_alerts": idle_alerts,
                "idle_lag_max_s": lag[2],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
