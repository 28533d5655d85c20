"""Prometheus exposition of the engine's snapshots (prometheus-client).

`HeapwatchCollector` builds every metric on scrape from the frozen snapshots (`queue.stats()`,
`pool.snapshot()`, `watchdog.snapshot()`, or one `engine.snapshot()`), so nothing is counted
twice and nothing is kept in step by hand. Scrapes arrive on the HTTP server's thread while the
queue lives on the event loop, so the collector reads the snapshots on the loop
(`call_soon_threadsafe`) and, if the loop does not answer within `timeout` (it is blocked: the
very thing one wants to see), serves the last good reading and says so in
`heapwatch_scrape_stale`.

    server = serve_metrics(9108, queue=queue, pool=pool, watchdog=watchdog)
    ...
    server.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from engine.checks import check_ratio, check_seconds
from engine.snapshots import (
    Accounting,
    AlertKind,
    PoolSnapshot,
    QueueStats,
    WatchdogSnapshot,
    WorkerState,
)
from engine.watchdog import Watchdog

__all__ = ["HeapwatchCollector", "MetricsServer", "MetricsView", "serve_metrics"]

NAMESPACE = "heapwatch"
NAN = math.nan


@dataclass(frozen=True, slots=True)
class MetricsView:
    """The snapshots one scrape is built from (any of them may be missing)."""

    queue: QueueStats | None = None
    pool: PoolSnapshot | None = None
    watchdog: WatchdogSnapshot | None = None


def _value(seconds: float | None) -> float:
    return NAN if seconds is None else float(seconds)


def capacity(maxsize: float) -> int:
    """The depth at which a queue of this maxsize is full, as a finite gauge: the ceiling of a
    float bound (2.5: 3 items), 0 for unbounded (0, negative, math.inf) or not a number."""
    if not 0 < maxsize < math.inf:  # NaN fails this too
        return 0
    return math.ceil(maxsize)


def _label(priority: float) -> str:
    return f"{priority:g}"


class HeapwatchCollector:
    """A prometheus-client collector reading the engine's snapshots on every scrape.

    Args:
        queue, pool, watchdog: objects with `stats()` / `snapshot()` / `snapshot()`.
        engine: instead of the three, an object whose `snapshot()` is an `EngineSnapshot`.
        loop: the event loop those objects live on; scrapes from other threads read on it.
        depth_ratio: `heapwatch_depth_alert` is 1 while depth > depth_ratio x maxsize.
        timeout: seconds a scrape waits for the loop before serving the last reading.
    """

    def __init__(
        self,
        *,
        queue: Any = None,
        pool: Any = None,
        watchdog: Any = None,
        engine: Any = None,
        loop: asyncio.AbstractEventLoop | None = None,
        depth_ratio: float | None = None,
        timeout: float = 1.0,
    ) -> None:
        if engine is not None and (queue, pool, watchdog) != (None, None, None):
            raise ValueError("give either engine or queue/pool/watchdog, not both")
        if engine is None and (queue, pool, watchdog) == (None, None, None):
            raise ValueError("nothing to expose: give engine or at least one of queue/pool/watchdog")
        if depth_ratio is None:
            depth_ratio = getattr(watchdog, "depth_ratio", 0.9)
        self._queue = queue
        self._pool = pool
        self._watchdog = watchdog
        self._engine = engine
        self._loop = loop
        self.depth_ratio = check_ratio("depth_ratio", depth_ratio)
        self.timeout = check_seconds("timeout", timeout, allow_zero=False)
        self._last = MetricsView()
        self._stale = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    def read(self) -> MetricsView:
        """Fresh snapshots. Call on the loop's thread (or with no loop involved)."""
        if self._engine is not None:
            snapshot = self._engine.snapshot()
            return MetricsView(snapshot.queue, snapshot.pool, snapshot.watchdog)
        stats = self._queue.stats() if self._queue is not None else None
        watchdog = self._watchdog
        if watchdog is None:
            watched = None
        elif isinstance(watchdog, Watchdog) and stats is not None and watchdog.queue is self._queue:
            watched = watchdog.snapshot(stats)  # one stats() per reading: it sorts every window
        else:
            watched = watchdog.snapshot()
        return MetricsView(
            queue=stats,
            pool=self._pool.snapshot() if self._pool is not None else None,
            watchdog=watched,
        )

    def _read_on_loop(self) -> MetricsView:
        loop = self._loop
        on_loop_thread = False
        if loop is not None:
            try:
                on_loop_thread = asyncio.get_running_loop() is loop
            except RuntimeError:
                on_loop_thread = False
        if loop is None or on_loop_thread or not loop.is_running():
            return self.read()
        result: concurrent.futures.Future[MetricsView] = concurrent.futures.Future()

        def fill() -> None:
            if not result.set_running_or_notify_cancel():
                return
            try:
                result.set_result(self.read())
            except BaseException as error:  # handed to the scraping thread, raised there
                result.set_exception(error)

        loop.call_soon_threadsafe(fill)
        try:
            return result.result(self.timeout)
        except concurrent.futures.TimeoutError:
            result.cancel()
            raise

    def view(self) -> tuple[MetricsView, bool]:
        """(snapshots, stale): the last good reading when the loop does not answer in time."""
        with self._lock:
            try:
                self._last = self._read_on_loop()
                self._stale = False
            except (concurrent.futures.TimeoutError, RuntimeError):
                # Timed out, or the loop closed: the last reading is all there is.
                self._stale = True
            return self._last, self._stale

    # ------------------------------------------------------------------ prometheus

    def describe(self) -> Iterable[Metric]:
        """Nothing to pre-register: names are checked at scrape time (they never clash)."""
        return ()

    def collect(self) -> Iterator[Metric]:
        view, stale = self.view()
        yield GaugeMetricFamily(
            f"{NAMESPACE}_scrape_stale",
            "1 when the event loop did not answer in time and the last reading was served.",
            value=1.0 if stale else 0.0,
        )
        if view.queue is not None:
            yield from self._queue_metrics(view.queue)
        if view.pool is not None:
            yield from self._pool_metrics(view.pool)
        if view.watchdog is not None:
            yield from self._watchdog_metrics(view.watchdog)

    def _queue_metrics(self, stats: QueueStats) -> Iterator[Metric]:
        ns = NAMESPACE
        # A stats record from another queue may carry a float or math.inf maxsize as given.
        maxsize = capacity(stats.maxsize)
        yield GaugeMetricFamily(f"{ns}_queue_length", "Items waiting in the queue.", stats.depth)
        yield GaugeMetricFamily(
            f"{ns}_queue_maxsize",
            "Items at which the queue is full: a float bound's ceiling; 0: unbounded.",
            maxsize,
        )
        yield GaugeMetricFamily(
            f"{ns}_queue_peak_depth", "The deepest the queue has been.", stats.peak_depth
        )
        heap_depth = GaugeMetricFamily(
            f"{ns}_heap_depth",
            "Items in the heap per priority level (they sum to queue_length).",
            labels=["priority"],
        )
        oldest = GaugeMetricFamily(
            f"{ns}_oldest_wait_seconds",
            "Age of the oldest waiting item per priority level.",
            labels=["priority"],
        )
        wait_p99 = GaugeMetricFamily(
            f"{ns}_wait_p99_seconds",
            "p99 of time waited by items got, per priority (sliding window).",
            labels=["priority"],
        )
        for level in stats.per_priority:
            heap_depth.add_metric([_label(level.priority)], level.depth)
            oldest.add_metric([_label(level.priority)], level.oldest_wait)
            wait_p99.add_metric([_label(level.priority)], _value(level.wait_p99))
        yield heap_depth
        yield oldest
        yield wait_p99
        yield GaugeMetricFamily(
            f"{ns}_depth_ratio",
            "queue_length / queue_maxsize (0 when unbounded).",
            stats.depth / maxsize if maxsize else 0.0,
        )
        over = maxsize > 0 and stats.depth > self.depth_ratio * maxsize
        yield GaugeMetricFamily(
            f"{ns}_depth_alert",
            f"1 while heap depth > {self.depth_ratio:g} x maxsize.",
            value=1.0 if over else 0.0,
        )
        yield GaugeMetricFamily(
            f"{ns}_put_latency_p99_seconds",
            "p99 of time put() spent blocked on a full queue (sliding window).",
            value=_value(stats.put_block_p99),
        )
        yield GaugeMetricFamily(
            f"{ns}_get_latency_p99_seconds",
            "p99 of time get() spent waiting on an empty queue (sliding window).",
            value=_value(stats.get_wait_p99),
        )
        yield GaugeMetricFamily(
            f"{ns}_queue_wait_p99_seconds",
            "p99 of time items spent queued, all priorities (sliding window).",
            value=_value(stats.wait_p99),
        )
        dropped = CounterMetricFamily(
            f"{ns}_dropped_task_count",
            "Items the overflow policy refused or evicted.",
            labels=["reason"],
        )
        dropped.add_metric(["evicted"], stats.evicted)
        dropped.add_metric(["rejected"], stats.rejected)
        yield dropped
        yield CounterMetricFamily(f"{ns}_puts", "Items put on the queue.", value=stats.puts)
        yield CounterMetricFamily(f"{ns}_gets", "Items got from the queue.", value=stats.gets)
        yield GaugeMetricFamily(
            f"{ns}_blocked_putters", "Tasks waiting in put().", stats.blocked_putters
        )
        yield GaugeMetricFamily(
            f"{ns}_blocked_getters", "Tasks waiting in get().", stats.blocked_getters
        )

    def _pool_metrics(self, pool: PoolSnapshot) -> Iterator[Metric]:
        ns = NAMESPACE
        states = GaugeMetricFamily(
            f"{ns}_workers", "Workers by state.", labels=["state"]
        )
        counts = dict.fromkeys(WorkerState, 0)
        for worker in pool.workers:
            counts[worker.state] += 1
        for state, count in counts.items():
            states.add_metric([str(state)], count)
        yield states
        fates = GaugeMetricFamily(
            f"{ns}_items", "Submitted items by fate right now (lost must stay 0).", labels=["fate"]
        )
        for field in fields(Accounting):
            fates.add_metric([field.name], getattr(pool.accounting, field.name))
        fates.add_metric(["lost"], pool.accounting.lost)
        yield fates
        yield GaugeMetricFamily(
            f"{ns}_completion_rate", "Completions per second (recent window).",
            value=pool.completion_rate,
        )
        yield GaugeMetricFamily(
            f"{ns}_pool_paused", "1 while consumption is paused.", value=float(pool.paused)
        )

    def _watchdog_metrics(self, watchdog: WatchdogSnapshot) -> Iterator[Metric]:
        ns = NAMESPACE
        lag = GaugeMetricFamily(
            f"{ns}_loop_lag_seconds",
            "Event loop heartbeat lateness percentiles (recent window).",
            labels=["quantile"],
        )
        lag.add_metric(["0.5"], _value(watchdog.loop_lag_p50))
        lag.add_metric(["0.99"], _value(watchdog.loop_lag_p99))
        yield lag
        yield GaugeMetricFamily(
            f"{ns}_loop_lag_max_seconds", "Worst heartbeat lateness since start.",
            value=watchdog.loop_lag_max,
        )
        active = dict.fromkeys(AlertKind, 0)
        for alert in watchdog.alerts:
            if alert.active:
                active[alert.kind] += 1
        alerts = GaugeMetricFamily(f"{ns}_alerts_active", "Active alerts by kind.", labels=["kind"])
        for kind, count in active.items():
            alerts.add_metric([str(kind)], count)
        yield alerts
        raised = CounterMetricFamily(
            f"{ns}_alerts", "Alerts raised since start, by kind.", labels=["kind"]
        )
        raised_by_kind = dict.fromkeys(AlertKind, 0) | dict(watchdog.alerts_raised)
        for kind, count in raised_by_kind.items():
            raised.add_metric([str(kind)], count)
        yield raised
        yield GaugeMetricFamily(
            f"{ns}_watchdog_sample_seconds", "Seconds the last watchdog sample took on the loop.",
            value=watchdog.sample_cost,
        )
        if watchdog.sizing is not None:
            yield GaugeMetricFamily(
                f"{ns}_suggested_maxsize",
                "Little's law: arrival rate x time in system x headroom.",
                value=watchdog.sizing.suggested_maxsize,
            )


@dataclass(slots=True)
class MetricsServer:
    """A running exposition server: `port` is the real one (useful with port 0)."""

    host: str
    port: int
    collector: HeapwatchCollector
    registry: CollectorRegistry
    _httpd: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and join the server thread (blocks up to ~0.5 s: run it off the loop)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(2.0)


def serve_metrics(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
    **sources: Any,
) -> MetricsServer:
    """Serve /metrics on `host:port` (loopback by default; port 0 picks a free one).

    `sources` are `HeapwatchCollector`'s arguments: `queue`, `pool`, `watchdog` or `engine`,
    and `loop`, `depth_ratio`, `timeout`. Called from a coroutine, `loop` defaults to the
    running loop, so scrapes read on it. A fresh registry is used unless one is given (the
    global one would add process metrics and clash across servers).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0..65535, not {port!r}")
    if sources.get("loop") is None:
        try:
            sources["loop"] = asyncio.get_running_loop()
        except RuntimeError:
            pass
    collector = HeapwatchCollector(**sources)
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(collector)
    try:
        httpd, thread = start_http_server(port, addr=host, registry=registry)
    except OSError:
        registry.unregister(collector)  # a port in use leaves the registry as it was
        raise
    return MetricsServer(
        host=host,
        port=httpd.server_port,
        collector=collector,
        registry=registry,
        _httpd=httpd,
        _thread=thread,
    )

