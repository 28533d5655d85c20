"""heapwatch's engine inside your own asyncio service: a queue, a pool and a watchdog."""

import asyncio
import random

from engine import PriorityQueue, Watchdog, WorkerPool


async def send_email(item: dict, priority: float) -> None:
    await asyncio.sleep(0.01)  # your real I/O here
    if random.random() < 0.1:
        raise ConnectionError("smtp timeout")  # retried with backoff, then dead-lettered


async def main() -> None:
    queue = PriorityQueue(maxsize=1000, overflow="evict-lowest", aging_rate=0.5)
    pool = WorkerPool(queue, send_email, workers=8, max_attempts=3, timeout=5.0)
    watchdog = Watchdog(queue, pool, sla=1.0, on_alert=lambda alert: print("ALERT", alert.message))
    async with pool, watchdog:
        for n in range(500):
            await pool.submit({"to": f"user{n}@example.com"}, priority=n % 10)
        report = await pool.shutdown(drain_timeout=10.0)
    counts = report.accounting
    print(f"completed={counts.completed} dead_lettered={counts.dead_lettered} lost={counts.lost}")


if __name__ == "__main__":
    asyncio.run(main())
