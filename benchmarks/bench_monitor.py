"""What serve_monitor costs the service it watches, measured in one run.

The service (this process) keeps 100,000 items queued and 64 workers busy (each handler call
awaits a short sleep and puts its item back, so the depth holds). Clients run in another
process, so their CPU is not counted. Rows:
- CPU: the service's process CPU time (every thread: the loop, the monitor's server thread, the
  watchdog's loop-monitor thread) over the same wall window with no monitor, with a monitor at
  5 Hz and 1 client, and with 10 clients. Runs are interleaved in pairs (no-monitor, monitor) so
  that drift in the machine's load cancels within a pair; the figure is the median of the
  paired differences in % of one core, with the spread (min..max). Target <= 1%.
- throughput: a no-op handler at full speed (the loop saturated), completions per second with
  the monitor serving 1 client that never reads against the monitor with no client, median of
  paired ratios with the spread. Target >= 0.98x. On a shared machine other processes take the
  core away from either half at random, so the same ratio per CPU second of the process is
  shown beside it (the monitor's own work, the server thread's included, still counts there),
  and so are the snapshots taken per window: a stuck client should soon cost none.
The last line is one JSON object with the figures.

    .venv/bin/python benchmarks/bench_monitor.py [--pairs 7] [--window 4] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.pool import WorkerPool  # noqa: E402
from engine.queue import PriorityQueue  # noqa: E402
from engine.watchdog import Watchdog  # noqa: E402

DEPTH = 100_000
WORKERS = 64

CLIENTS = r'''
import asyncio, socket, sys, time
from engine.monitor_client import MonitorClient
from engine.wire import Codec

async def main(address, count, mode):
    if mode == "stuck":
        path = address[5:]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(path)
        codec = Codec()
        sock.sendall(codec.encode("hello", {}, wall=time.time()))
        sock.sendall(codec.encode("request", {"id": 1, "op": "subscribe", "args": {}},
                                  wall=time.time()))
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        sock.close()
        return
    clients = [await MonitorClient.connect(address) for _ in range(count)]
    for client in clients:
        await client.next_frame(10)
    print("ready", flush=True)

    async def read(client):
        while await client.next_frame() is not None:
            pass

    readers = [asyncio.create_task(read(client)) for client in clients]
    await asyncio.to_thread(sys.stdin.readline)
    for task in readers:
        task.cancel()
    for client in clients:
        await client.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
'''


class Service:
    """The queue, pool and watchdog under load; `completed` counts handler calls."""

    def __init__(self, *, sleep: float | None) -> None:
        self.sleep = sleep
        self.completed = 0
        self.queue = PriorityQueue()
        self.pool = WorkerPool(self.queue, self.handle, workers=WORKERS)
        # A long SLA: the items wait by design here, and alerts are not what is measured.
        self.watchdog = Watchdog(self.queue, self.pool, sla=3600.0)

    async def handle(self, item: int, priority: float) -> None:
        # sleep(0) at full speed: a worker whose get() and handler never suspend would keep
        # the loop to itself.
        await asyncio.sleep(self.sleep or 0)
        self.completed += 1
        self.pool.submit_nowait(item, priority=priority)  # the depth holds at DEPTH

    async def __aenter__(self) -> Service:
        await self.pool.start()
        await self.watchdog.start()
        for n in range(DEPTH):
            self.pool.submit_nowait(n, priority=n % 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.pool.pause()
        await self.pool.shutdown(0.5)
        await self.watchdog.stop()


async def start_clients(address: str, count: int, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CLIENTS, address, str(count), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError("the clients did not start")
    return proc


def stop_clients(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def measure(service: Service, window: float) -> tuple[float, float]:
    """(CPU seconds per wall second, completions per second) over `window`."""
    await asyncio.sleep(0.5)  # settle after setup
    cpu, wall, done = time.process_time(), time.perf_counter(), service.completed
    await asyncio.sleep(window)
    elapsed = time.perf_counter() - wall
    return (time.process_time() - cpu) / elapsed, (service.completed - done) / elapsed


async def one_run(service: Service, window: float, clients: int, mode: str) -> tuple[float, float]:
    if clients == 0 and mode == "none":
        return await measure(service, window)
    with engine.serve_monitor(queue=service.queue, pool=service.pool,
                              watchdog=service.watchdog, rate=5.0) as monitor:
        proc = await start_clients(monitor.address, clients, mode) if clients else None
        try:
            ticks = monitor.ticks
            measured = await measure(service, window)
            TICKS[mode].append(monitor.ticks - ticks)
            return measured
        finally:
            if proc is not None:
                await asyncio.to_thread(stop_clients, proc)


TICKS: dict[str, list[int]] = {"read": [], "stuck": [], "none": []}
"""Snapshots the monitor took in each measured window (settling included), by client mode."""


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}..{max(values):.3f}"


async def cpu_rows(pairs: int, window: float) -> dict[str, list[float]]:
    costs: dict[str, list[float]] = {"1 client": [], "10 clients": []}
    async with Service(sleep=0.05) as service:
        for pair in range(pairs):
            for label, clients in (("1 client", 1), ("10 clients", 10)):
                order = [("none", 0), ("read", clients)]
                if pair % 2:
                    order.reverse()
                got = {mode: await one_run(service, window, n, mode) for mode, n in order}
                costs[label].append((got["read"][0] - got["none"][0]) * 100)
            print(f"  pair {pair + 1}: cost 1 client {costs['1 client'][-1]:+.2f}%, "
                  f"10 clients {costs['10 clients'][-1]:+.2f}% of a core", flush=True)
    return costs


async def throughput_rows(pairs: int, window: float) -> tuple[list[float], list[float]]:
    ratios, per_cpu = [], []
    async with Service(sleep=None) as service:
        for pair in range(pairs):
            order = [("idle", 0), ("stuck", 1)]
            if pair % 2:
                order.reverse()
            got = {}
            for mode, clients in order:
                if mode == "idle":
                    with engine.serve_monitor(queue=service.queue, pool=service.pool,
                                              watchdog=service.watchdog):
                        got[mode] = await measure(service, window)
                else:
                    got[mode] = await one_run(service, window, clients, mode)
            ratios.append(got["stuck"][1] / got["idle"][1])
            # Completions per CPU second of the process: what the monitor's own work costs,
            # without the swings of a shared machine taking the core away (both halves).
            per_cpu.append((got["stuck"][1] / got["stuck"][0]) / (got["idle"][1] / got["idle"][0]))
            print(f"  pair {pair + 1}: {got['stuck'][1]:,.0f}/s with a stuck client vs "
                  f"{got['idle'][1]:,.0f}/s with none: {ratios[-1]:.3f}x "
                  f"(per CPU second {per_cpu[-1]:.3f}x; {TICKS['stuck'][-1]} snapshots "
                  f"taken for the stuck client)", flush=True)
    return ratios, per_cpu


async def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("HEAPWATCH_MONITOR_DIR", tempfile.mkdtemp(prefix="hw-bench-"))
    print(f"service: {DEPTH:,} queued, {WORKERS} workers, monitor at 5 Hz; "
          f"{args.pairs} pairs of {args.window:g} s windows")
    print("CPU cost (monitor minus no monitor, % of one core):")
    costs = await cpu_rows(args.pairs, args.window)
    print("throughput with one client that never reads (no-op handler):")
    ratios, per_cpu = await throughput_rows(args.pairs, args.window)
    one, ten = statistics.median(costs["1 client"]), statistics.median(costs["10 clients"])
    ratio, cpu_ratio = statistics.median(ratios), statistics.median(per_cpu)
    print()
    print(f"{'what':<48} {'median':>9} {'spread':>16} {'target':>8}")
    print(f"{'CPU cost, 1 client, 5 Hz (% of a core)':<48} {one:>9.2f} "
          f"{spread(costs['1 client']):>16} {'<= 1':>8}")
    print(f"{'CPU cost, 10 clients, 5 Hz (% of a core)':<48} {ten:>9.2f} "
          f"{spread(costs['10 clients']):>16} {'<= 1':>8}")
    print(f"{'throughput, stuck client vs none':<48} {ratio:>9.3f} {spread(ratios):>16} "
          f"{'>= 0.98':>8}")
    print(f"{'  the same, completions per CPU second':<48} {cpu_ratio:>9.3f} "
          f"{spread(per_cpu):>16} {'':>8}")
    print(json.dumps({"cpu_cost_1_client_pct": round(one, 3),
                      "cpu_cost_10_clients_pct": round(ten, 3),
                      "cpu_cost_spread_1": [round(min(costs["1 client"]), 3),
                                            round(max(costs["1 client"]), 3)],
                      "cpu_cost_spread_10": [round(min(costs["10 clients"]), 3),
                                             round(max(costs["10 clients"]), 3)],
                      "throughput_stuck_ratio": round(ratio, 4),
                      "throughput_spread": [round(min(ratios), 4), round(max(ratios), 4)],
                      "throughput_per_cpu_ratio": round(cpu_ratio, 4),
                      "throughput_per_cpu_spread": [round(min(per_cpu), 4),
                                                    round(max(per_cpu), 4)],
                      "snapshots_per_window": {mode: statistics.median(ticks)
                                               for mode, ticks in TICKS.items() if ticks},
                      "pairs": args.pairs, "window": args.window}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--window", type=float, default=4.0)
    parser.add_argument("--quick", action="store_true", help="3 pairs of 2 s windows")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.pairs, arguments.window = 3, 2.0
    asyncio.run(main(arguments))
