"""A small asyncio service that serves a heapwatch monitor: watch it with `heapwatch attach`.

    python examples/service.py            # prints its pid and the monitor's address
    heapwatch attach --list               # in another terminal
    heapwatch attach PID                  # the dashboard on the running service

Stop it with ctrl+c (or SIGTERM): it drains gracefully. `--block-every S` blocks its loop for
half a second every S seconds, so the stale frames show; `--duration S` stops it by itself.
"""

import argparse
import asyncio
import os
import random
import signal
import time
from dataclasses import dataclass, field

import engine
from engine import PriorityQueue, QueueShutDown, ShutdownPhase, Watchdog, WorkerPool
from engine.events import EventLog


@dataclass
class Order:
    id: int
    kind: str
    email: str = field(repr=False)
    """Never shown: every repr heapwatch makes of an order (heap, workers, the monitor's
    frames) comes from `repr(order)`, and this field is left out of it."""


async def fulfil(order: Order, priority: float) -> None:
    await asyncio.sleep(random.uniform(0.005, 0.05))  # your real I/O here
    if random.random() < 0.02:
        raise ConnectionError("warehouse API timed out")  # retried with backoff


async def take_orders(pool: WorkerPool, rate: float) -> None:
    for n in range(1, 10**9):
        kind = random.choices(["express", "standard", "bulk"], weights=[1, 6, 3])[0]
        priority = {"express": 0, "standard": 5, "bulk": 9}[kind]
        order = Order(n, kind, email=f"customer{n}@example.com")
        try:
            await pool.submit(order, priority=priority)
        except QueueShutDown:  # shut down from a dashboard (attach --control, then s)
            return
        await asyncio.sleep(random.expovariate(rate))


async def end_with_the_pool(pool: WorkerPool, stop: asyncio.Event) -> None:
    """`s` in `heapwatch attach --control` shuts the pool down: the service then ends too."""
    while pool.phase is ShutdownPhase.RUNNING:
        await asyncio.sleep(0.2)
    stop.set()


async def block_now_and_then(every: float) -> None:
    while True:
        await asyncio.sleep(every)
        time.sleep(0.5)  # a synchronous call on the loop: what the monitor's stale frame names


async def main(args: argparse.Namespace) -> None:
    queue = PriorityQueue(maxsize=5000, overflow="evict-lowest", aging_rate=0.5)
    events = EventLog()  # one log for both: the dashboard's event log shows it
    pool = WorkerPool(queue, fulfil, workers=args.workers, max_attempts=3, timeout=5.0,
                      events=events)
    watchdog = Watchdog(queue, pool, sla=1.0, events=events)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with pool, watchdog:
        with engine.serve_monitor(queue=queue, pool=pool, watchdog=watchdog, name=args.name,
                                  allow_control=args.allow_control) as monitor:
            print(f"service pid {os.getpid()}: monitor {monitor.name!r} at {monitor.address}",
                  flush=True)
            tasks = [asyncio.create_task(take_orders(pool, args.rate)),
                     asyncio.create_task(end_with_the_pool(pool, stop))]
            if args.block_every:
                tasks.append(asyncio.create_task(block_now_and_then(args.block_every)))
            try:
                await asyncio.wait_for(stop.wait(), args.duration)
            except TimeoutError:
                pass
            for task in tasks:
                task.cancel()
            report = await pool.shutdown(drain_timeout=5.0)
    counts = report.accounting
    print(f"completed={counts.completed} dead_lettered={counts.dead_lettered} lost={counts.lost}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="orders", help="the monitor's name (attach by it)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0, help="orders per second")
    parser.add_argument("--duration", type=float, default=None, help="seconds, then stop")
    parser.add_argument("--block-every", type=float, default=0.0, metavar="S")
    parser.add_argument("--allow-control", action="store_true",
                        help="let `heapwatch attach --control` change the pool")
    asyncio.run(main(parser.parse_args()))
