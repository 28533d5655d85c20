"""heapwatch's engine: an asyncio priority queue, its worker pool and a watchdog. No UI code.

Names are loaded on first use, so `import engine` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.snapshots import (
    Accounting,
    Alert,
    AlertKind,
    EngineSnapshot,
    HeapEntry,
    PoolSnapshot,
    QueueStats,
    ShutdownPhase,
    ShutdownReport,
    WatchdogSnapshot,
    WorkerSnapshot,
    WorkerState,
)

__version__ = "0.1.0"

_LAZY = {
    "PriorityQueue": "engine.queue",
    "QueueShutDown": "engine.queue",
    "Overflow": "engine.queue",
    "WorkerPool": "engine.pool",
    "Watchdog": "engine.watchdog",
    "Engine": "engine.runtime",
    "RedisPriorityQueue": "engine.redis_queue",
    "Scenario": "engine.scenario",
    "ScenarioError": "engine.scenario",
    "serve_monitor": "engine.monitor",
}

__all__ = [
    "Accounting",
    "Alert",
    "AlertKind",
    "EngineSnapshot",
    "HeapEntry",
    "PoolSnapshot",
    "QueueStats",
    "ShutdownPhase",
    "ShutdownReport",
    "WatchdogSnapshot",
    "WorkerSnapshot",
    "WorkerState",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
