"""What the dashboard costs: its refresh, and the engine throughput it leaves, same run.

Scenario: 64 workers, a fast simulated handler and 1,000,000 items queued up front. Each round
runs the engine twice on a fresh loop, once headless and once under the live dashboard
(`HeapwatchApp` at 120x40, headless terminal), and counts completions over the same window.
In the live run every refresh is timed: the snapshot and the panel updates (`refresh_snapshot`)
plus the layout and paint work the screen does until the next refresh.

    .venv/bin/python benchmarks/bench_tui.py [--items 1000000] [--workers 64] [--seconds 4]

Prints a table, then one JSON line: refresh cost p50 as a share of the refresh interval (target
<= 0.04) and live/headless throughput (target >= 0.95, medians over the rounds, with each round's
ratio for the spread). The refresh rate is the app's default unless `--refresh-hz` says.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.screen import Screen  # noqa: E402

from engine.runtime import Engine  # noqa: E402
from engine.scenario import (  # noqa: E402
    HandlerSettings,
    Latency,
    PoolSettings,
    Producer,
    QueueSettings,
    Scenario,
)
from tui.app import DEFAULT_REFRESH_HZ, HeapwatchApp  # noqa: E402


def bench_scenario(workers: int) -> Scenario:
    return Scenario(
        name="bench-tui",
        seed=3,
        queue=QueueSettings(maxsize=0),
        pool=PoolSettings(workers=workers, drain_timeout=0.2),
        handler=HandlerSettings(latency=Latency(mean_ms=1.0, p99_ms=4.0)),
        producers=(Producer(name="bench", rate=0.0, priorities=((0, 1.0), (5, 3.0), (9, 1.0))),),
    )


class PaintTimedScreen(Screen):
    """The default screen, adding up the time its layout and paint passes take."""

    painting = 0.0

    def _on_timer_update(self) -> None:
        started = time.perf_counter()
        super()._on_timer_update()
        PaintTimedScreen.painting += time.perf_counter() - started


class TimedApp(HeapwatchApp):
    """The real dashboard, recording the cost of each refresh (data + the paint after it)."""

    def __init__(self, engine: Engine, **kwargs: Any) -> None:
        super().__init__(engine, **kwargs)
        self.costs: list[float] = []
        self.data_costs: list[float] = []
        self._pending: float | None = None

    def get_default_screen(self) -> Screen:
        return PaintTimedScreen(id="_default")

    def refresh_snapshot(self) -> None:
        if self._pending is not None:
            # The previous refresh's paint happened between then and now.
            self.costs.append(self._pending + PaintTimedScreen.painting)
        PaintTimedScreen.painting = 0.0
        started = time.perf_counter()
        super().refresh_snapshot()
        self._pending = time.perf_counter() - started
        self.data_costs.append(self._pending)


async def measure(engine: Engine, seconds: float, warmup: float) -> tuple[float, float]:
    """Completions per second over `seconds` after `warmup`; and the depth at the end."""
    await asyncio.sleep(warmup)
    before = engine.pool.accounting().completed
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    done = engine.pool.accounting().completed - before
    return done / (time.perf_counter() - started), engine.queue.qsize()


async def fill(engine: Engine, items: int) -> None:
    # The producers' burst, in chunks, yielding between them as a client would.
    chunk = 50_000
    for start in range(0, items, chunk):
        engine.burst(min(chunk, items - start))
        await asyncio.sleep(0)


async def headless_run(args: argparse.Namespace) -> dict[str, float]:
    engine = Engine(bench_scenario(args.workers))
    await engine.start()
    await fill(engine, args.items)
    throughput, depth = await measure(engine, args.seconds, args.warmup)
    await engine.shutdown()
    return {"throughput": throughput, "depth": depth}


async def live_run(args: argparse.Namespace) -> dict[str, Any]:
    engine = Engine(bench_scenario(args.workers))
    await engine.start()
    await fill(engine, args.items)
    app = TimedApp(engine, refresh_hz=args.refresh_hz)
    async with app.run_test(size=(120, 40)) as pilot:
        throughput, depth = await measure(engine, args.seconds, args.warmup)
        await pilot.pause()
        skip = int(args.warmup * args.refresh_hz)
        costs = app.costs[skip:] or app.costs
        data_costs = app.data_costs[skip:] or app.data_costs
        rows = app.query_one("#workers").row_count
    return {"throughput": throughput, "depth": depth, "costs": costs, "data_costs": data_costs,
            "worker_rows": rows}


def run(coro: Any) -> Any:
    gc.collect()
    return asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--refresh-hz", type=float, default=DEFAULT_REFRESH_HZ,
                        help="the dashboard's refresh rate (default: the app's own)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    headless: list[float] = []
    live: list[float] = []
    costs: list[float] = []
    data_costs: list[float] = []
    for round_number in range(1, args.rounds + 1):
        # Alternate the order so that drift on a shared machine hits both sides.
        order = ("headless", "live") if round_number % 2 else ("live", "headless")
        for side in order:
            if side == "headless":
                result = run(headless_run(args))
                headless.append(result["throughput"])
            else:
                result = run(live_run(args))
                live.append(result["throughput"])
                costs += result["costs"]
                data_costs += result["data_costs"]
            print(f"round {round_number} {side:8s} {result['throughput']:10,.0f} items/s"
                  f"  depth at end {result['depth']:,.0f}", flush=True)

    interval = 1 / args.refresh_hz
    costs.sort()
    p50 = statistics.median(costs)
    p99 = costs[min(len(costs) - 1, int(len(costs) * 0.99))]
    throughput_ratio = statistics.median(live) / statistics.median(headless)
    # Round by round (each round runs both sides back to back): the spread of the ratio.
    ratios = sorted(live_one / headless_one for live_one, headless_one in zip(live, headless, strict=True))
    print()
    print(f"{'':28s}{'value':>12s}")
    print(f"{'refresh interval':28s}{interval * 1000:10.1f}ms")
    print(f"{'snapshot+panels p50':28s}{statistics.median(data_costs) * 1000:10.2f}ms")
    print(f"{'refresh cost p50':28s}{p50 * 1000:10.2f}ms")
    print(f"{'refresh cost p99':28s}{p99 * 1000:10.2f}ms")
    print(f"{'refresh cost max':28s}{costs[-1] * 1000:10.2f}ms")
    print(f"{'refreshes timed':28s}{len(costs):12d}")
    print(f"{'headless throughput (med)':28s}{statistics.median(headless):12,.0f}/s")
    print(f"{'live throughput (med)':28s}{statistics.median(live):12,.0f}/s")
    print(f"{'live/headless by round':28s}{'  '.join(f'{r:.3f}' for r in ratios):>12s}")
    print(json.dumps({
        "bench": "tui",
        "items": args.items,
        "workers": args.workers,
        "refresh_hz": args.refresh_hz,
        "refresh_cost_p50_ms": round(p50 * 1000, 3),
        "refresh_cost_p99_ms": round(p99 * 1000, 3),
        "refresh_cost_p50_ratio": round(p50 / interval, 4),
        "refresh_cost_p99_ratio": round(p99 / interval, 4),
        "live_vs_headless_throughput": round(throughput_ratio, 3),
        "live_vs_headless_by_round": [round(r, 3) for r in ratios],
        "targets": {"refresh_cost_p50_ratio": "<= 0.04", "live_vs_headless_throughput": ">= 0.95"},
    }))


if __name__ == "__main__":
    main()
