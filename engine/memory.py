"""Memory measurement of a queue: bytes per queued item and the top allocation sites."""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import sys
import time
import tracemalloc
import types
from collections.abc import Callable
from typing import Any

from engine.snapshots import AllocationSite, MemoryProfile, QueueStats
from engine.stacks import short_path

__all__ = ["deep_sizeof", "measure_memory"]


async def measure_memory(
    queue: Any,
    *,
    sample_items: int = 1000,
    clock: Callable[[], float] = time.monotonic,
    stats: QueueStats | None = None,
) -> MemoryProfile:
    """Bytes per queued item (queue overhead and payload apart) and the top allocation sites.

    Allocations made before tracemalloc started cannot be attributed, so the queue overhead
    is measured on a scratch queue of the live queue's class: `sample_items` of the live
    queue's own items are put in to warm it up (levels, deque blocks), then as many again,
    and the second batch's allocations in the queue's source files, divided by the batch,
    are the marginal cost of one more queued item. Payload bytes are the deep size of the
    live items (sampled from the front of the queue). The fill is one short synchronous
    stretch (so nothing else allocates through the queue code meanwhile); the workers are
    not stopped. tracemalloc is stopped again if this call started it.

    `stats`: the queue's stats already taken (its depth and levels are used; None: ask the
    queue). `clock` stamps the profile (`MemoryProfile.at`).
    """
    if isinstance(sample_items, bool) or not isinstance(sample_items, int) or sample_items < 1:
        raise ValueError(f"sample_items must be an int >= 1, not {sample_items!r}")
    if stats is None:
        live_depth = queue.qsize()
        priorities = list(queue.depth_by_priority()) or [queue.DEFAULT_PRIORITY]
    else:
        live_depth = stats.depth
        levels = [level.priority for level in stats.per_priority if level.depth]
        priorities = levels or [queue.DEFAULT_PRIORITY]
    originals = [entry.item for entry in queue.top(min(64, live_depth))]
    payload_bytes = sum(map(deep_sizeof, originals)) / len(originals) if originals else 0.0
    originals = originals or [None]
    queue_files = _class_files(type(queue))
    await asyncio.sleep(0)  # let pending callbacks run before the stretch that holds the loop
    started = time.perf_counter()
    started_tracing = not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start(1)
    try:
        scratch = type(queue)(clock=queue.clock)
        before = tracemalloc.take_snapshot()
        for index in range(sample_items):
            item = originals[index % len(originals)]
            scratch.put_nowait(item, priority=priorities[index % len(priorities)])
        warmed = tracemalloc.take_snapshot()
        for index in range(sample_items):
            item = originals[index % len(originals)]
            scratch.put_nowait(item, priority=priorities[index % len(priorities)])
        after = tracemalloc.take_snapshot()
    finally:
        if started_tracing:
            tracemalloc.stop()
    duration = time.perf_counter() - started
    queue_bytes = sum(
        max(0, stat.size_diff)
        for stat in after.compare_to(warmed, "filename")
        if stat.traceback[0].filename in queue_files
    )
    sites = [
        AllocationSite(
            where=f"{short_path(stat.traceback[0].filename)}:{stat.traceback[0].lineno}",
            size=stat.size_diff,
            count=stat.count_diff,
        )
        for stat in after.compare_to(before, "lineno")
        if stat.size_diff > 0
    ][:10]
    del scratch
    bytes_per_item = queue_bytes / sample_items
    profile = MemoryProfile(
        at=clock(),
        depth=live_depth,
        bytes_per_item=bytes_per_item,
        payload_bytes_per_item=payload_bytes,
        top_sites=tuple(sites),
        sample_items=sample_items,
        estimated_queue_bytes=round(bytes_per_item * live_depth),
        duration=duration,
    )
    return profile


def _class_files(cls: type) -> set[str]:
    """Source files of a class and its bases: where the queue's own allocations come from."""
    files = set()
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__)
        try:
            path = inspect.getsourcefile(module) if module is not None else None
        except TypeError:
            path = None
        if path:
            files.add(os.path.abspath(path))
            files.add(path)
    return files


_SHARED_TYPES = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)


def deep_sizeof(obj: Any, *, limit: int = 10_000) -> int:
    """Bytes of an object and everything it references (each object once), up to `limit` objects.

    Classes, modules and functions are shared by every item, so they are not its payload.
    """
    seen: set[int] = set()
    pending = [obj]
    total = 0
    while pending and len(seen) < limit:
        current = pending.pop()
        if id(current) in seen or isinstance(current, _SHARED_TYPES):
            continue
        seen.add(id(current))
        total += sys.getsizeof(current)
        pending.extend(gc.get_referents(current))
    return total
