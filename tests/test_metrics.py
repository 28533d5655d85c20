"""Prometheus exposition: scraped over HTTP on loopback, figures checked against the snapshots."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine.metrics import HeapwatchCollector, serve_metrics
from engine.pool import WorkerPool
from engine.queue import Overflow, PriorityQueue
from engine.snapshots import AlertKind, WorkerState
from engine.watchdog import Watchdog


def scrape_blocking(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def same(scraped: float, figure: float | None) -> bool:
    """A scraped gauge equals the snapshot's figure (None is exposed as NaN)."""
    return math.isnan(scraped) if figure is None else scraped == figure


async def scrape(url: str):
    # Off the loop: the collector reads the snapshots on the loop, which must stay free.
    return await asyncio.to_thread(scrape_blocking, url)


async def test_scrape_exposes_queue_pool_and_watchdog_figures():
    queue = PriorityQueue(10, overflow=Overflow.REJECT)
    release = asyncio.Event()

    async def handler(item, priority):
        await release.wait()

    pool = WorkerPool(queue, handler, workers=2)
    watchdog = Watchdog(queue, pool, interval=60)
    await pool.start()
    await watchdog.start()
    server = serve_metrics(0, queue=queue, pool=pool, watchdog=watchdog)
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        for index in range(12):  # 2 go to the workers, 10 fill the queue
            await pool.submit(index, priority=index % 3)
            await asyncio.sleep(0)
        with pytest.raises(asyncio.QueueFull):
            pool.submit_nowait("one too many", priority=1)
        watchdog.sample()
        lag_before = watchdog.snapshot().loop_lag_max
        time.sleep(0.3)  # a known block on the loop: the lag metrics must show it
        await asyncio.sleep(0.05)  # the late heartbeat measures it
        samples = await scrape(server.url)
        lag_after = watchdog.snapshot().loop_lag_max
        stats = queue.stats()
        assert stats.depth == 10 and stats.rejected == 1
        assert samples[("heapwatch_queue_length", ())] == stats.depth
        assert samples[("heapwatch_queue_maxsize", ())] == 10
        assert sum(v for (name, _), v in samples.items() if name == "heapwatch_heap_depth") == 10
        for level in stats.per_priority:
            labels = (("priority", f"{level.priority:g}"),)
            assert samples[("heapwatch_heap_depth", labels)] == level.depth
        assert samples[("heapwatch_dropped_task_count_total", (("reason", "rejected"),))] == 1
        assert samples[("heapwatch_dropped_task_count_total", (("reason", "evicted"),))] == 0
        assert samples[("heapwatch_depth_alert", ())] == 1  # 10 > 0.9 x 10
        assert samples[("heapwatch_alerts_active", (("kind", "depth"),))] == 1
        assert samples[("heapwatch_alerts_total", (("kind", "depth"),))] == 1
        assert samples[("heapwatch_alerts_active", (("kind", "starvation"),))] == 0
        assert samples[("heapwatch_workers", (("state", "busy"),))] == 2
        for state in WorkerState:
            assert ("heapwatch_workers", (("state", str(state)),)) in samples
        assert samples[("heapwatch_items", (("fate", "lost"),))] == 0
        assert samples[("heapwatch_items", (("fate", "in_flight"),))] == 2
        # Nothing touched the queue between the scrape and stats(): the windows are the same.
        assert same(samples[("heapwatch_put_latency_p99_seconds", ())], stats.put_block_p99)
        assert same(samples[("heapwatch_get_latency_p99_seconds", ())], stats.get_wait_p99)
        lag_max = samples[("heapwatch_loop_lag_max_seconds", ())]
        assert lag_max >= 0.25  # the 0.3 s block, less up to one heartbeat period
        assert lag_before <= lag_max <= lag_after  # the max only grows: read live, not cached
        assert 0 < samples[("heapwatch_loop_lag_seconds", (("quantile", "0.99"),))] <= lag_max
        assert samples[("heapwatch_scrape_stale", ())] == 0

        release.set()
        await pool.shutdown(drain_timeout=5)
        watchdog.sample()
        samples = await scrape(server.url)
        assert samples[("heapwatch_queue_length", ())] == 0
        assert samples[("heapwatch_depth_alert", ())] == 0
        assert samples[("heapwatch_alerts_active", (("kind", "depth"),))] == 0
        assert samples[("heapwatch_alerts_total", (("kind", "depth"),))] == 1
        assert samples[("heapwatch_items", (("fate", "completed"),))] == 12
        assert samples[("heapwatch_puts_total", ())] == queue.stats().puts
    finally:
        await asyncio.to_thread(server.close)
        await watchdog.stop()


async def test_a_blocked_loop_gets_the_last_reading_marked_stale():
    queue = PriorityQueue()
    queue.put_nowait("x")
    server = serve_metrics(0, queue=queue, timeout=0.2)
    try:
        first = await scrape(server.url)
        assert first[("heapwatch_queue_length", ())] == 1
        queue.put_nowait("y")
        # The executor thread starts scraping at once, while the loop is held right after.
        scraping = asyncio.get_running_loop().run_in_executor(None, scrape_blocking, server.url)
        time.sleep(0.6)
        stale = await scraping
        assert stale[("heapwatch_scrape_stale", ())] == 1
        assert stale[("heapwatch_queue_length", ())] == 1  # the last good reading
        fresh = await scrape(server.url)
        assert fresh[("heapwatch_scrape_stale", ())] == 0
        assert fresh[("heapwatch_queue_length", ())] == 2
    finally:
        await asyncio.to_thread(server.close)


async def test_engine_style_source_and_bad_arguments():
    queue = PriorityQueue(4)
    watchdog = Watchdog(queue, loop_block_ms=None)

    class EngineLike:  # the shape of engine.runtime.Engine.snapshot(), built from real parts
        def snapshot(self):
            from types import SimpleNamespace

            return SimpleNamespace(queue=queue.stats(), pool=None, watchdog=watchdog.snapshot())

    registry = CollectorRegistry()
    registry.register(HeapwatchCollector(engine=EngineLike()))
    for index in range(4):
        queue.put_nowait(index)
    watchdog.sample()
    text = generate_latest(registry).decode()
    assert "heapwatch_queue_length 4.0" in text
    assert "heapwatch_depth_alert 1.0" in text
    assert 'heapwatch_alerts_active{kind="depth"} 1.0' in text
    with pytest.raises(ValueError, match="port"):
        serve_metrics(70000, queue=queue)
    with pytest.raises(ValueError, match="nothing to expose"):
        HeapwatchCollector()
    with pytest.raises(ValueError, match="depth_ratio"):
        HeapwatchCollector(queue=queue, depth_ratio=2)
    busy = serve_metrics(0, queue=queue)
    try:
        registry = CollectorRegistry()
        with pytest.raises(OSError):
            serve_metrics(busy.port, queue=queue, registry=registry)
        assert list(registry.collect()) == []  # the failed server left the registry untouched
    finally:
        await asyncio.to_thread(busy.close)
    assert AlertKind.DEPTH in dict(watchdog.snapshot().alerts_raised)


class CountingQueue(PriorityQueue):
    """The real queue, counting its `stats()` calls."""

    stats_calls = 0

    def stats(self):  # type: ignore[no-untyped-def]
        CountingQueue.stats_calls += 1
        return super().stats()


async def test_a_scrape_of_queue_and_watchdog_takes_the_stats_once():
    now = [100.0]
    queue = CountingQueue(clock=lambda: now[0])
    watchdog = Watchdog(queue, loop_block_ms=None, clock=lambda: now[0])
    for step in range(3):  # traffic over two seconds, so that there is sizing advice
        for n in range(10):
            queue.put_nowait(f"{step}-{n}")
        watchdog.sample()
        now[0] += 1.0
    collector = HeapwatchCollector(queue=queue, watchdog=watchdog)
    CountingQueue.stats_calls = 0
    view = collector.read()
    assert view.watchdog is not None and view.watchdog.sizing is not None
    assert view.watchdog.sizing.current_maxsize == view.queue.maxsize
    assert CountingQueue.stats_calls == 1


def exposition(queue: PriorityQueue, stats_of=None) -> dict[str, float]:
    """The queue's gauges as a scrape shows them, through the real collector and registry."""
    registry = CollectorRegistry()
    watchdog = Watchdog(queue, loop_block_ms=None)

    class Source:  # a reader handing over a stats record as another queue might build it
        def snapshot(self):
            from types import SimpleNamespace

            stats = queue.stats() if stats_of is None else stats_of(queue.stats())
            return SimpleNamespace(queue=stats, pool=None, watchdog=watchdog.snapshot())

    registry.register(HeapwatchCollector(engine=Source()))
    text = generate_latest(registry).decode()
    assert "inf" not in text.lower()  # no gauge here may be infinite
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


@pytest.mark.parametrize(
    ("maxsize", "items", "shown", "alert"),
    [(2.5, 3, 3, 1.0), (math.inf, 5, 0, 0.0), (0, 5, 0, 0.0), (4, 3, 4, 0.0)],
)
def test_float_and_infinite_maxsize_give_finite_gauges(maxsize, items, shown, alert):
    queue = PriorityQueue(maxsize)
    for index in range(items):
        queue.put_nowait(index)
    samples = exposition(queue)
    assert samples["heapwatch_queue_maxsize"] == shown
    assert samples["heapwatch_depth_alert"] == alert
    assert samples["heapwatch_depth_ratio"] == (items / shown if shown else 0.0)


@pytest.mark.parametrize(("given", "shown"), [(math.inf, 0), (2.5, 3), (math.nan, 0), (-1, 0)])
def test_a_stats_record_with_a_raw_float_maxsize_is_shown_finite(given, shown):
    queue = PriorityQueue()
    queue.put_nowait("one")
    samples = exposition(queue, lambda stats: dataclasses.replace(stats, maxsize=given))
    assert samples["heapwatch_queue_maxsize"] == shown
    assert samples["heapwatch_depth_ratio"] == (1 / shown if shown else 0.0)
