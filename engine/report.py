"""The run's JSON report (`--report`) and its spill (`--spill`), built by pure functions.

`build_report(...)` and `spill_records(...)` take frozen snapshots and plain values, never the
live engine, so they can be tested, and called after the loop is gone. `to_json(...)` is the
one encoder: it writes valid JSON for any value: a float that is not finite (an unbounded
`maxsize` given as `math.inf`, an infinite wait) becomes `null`, which the report documents
as "no finite value: unbounded or not measured", and a payload JSON cannot hold becomes its
`describe()` text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from engine.reprs import describe
from engine.scenario import Scenario
from engine.snapshots import Accounting, Alert, QueueStats, ShutdownReport

__all__ = ["NULL_MEANING", "build_report", "json_safe", "spill_records", "to_json"]

NULL_MEANING = "null: no finite value (unbounded, or not measured)"
"""What a `null` number in the report means (said in the report itself)."""

SPILL_REPR_LIMIT = 10_000
"""Longest text a payload that JSON cannot hold is written as."""


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, tuples as lists, enums as their
    value and mapping keys as strings: what `json.dumps(allow_nan=False)` accepts. Anything
    else JSON cannot hold is its `describe()` text."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_key(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return describe(value, SPILL_REPR_LIMIT)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key) if isinstance(key, int | float | bool | Enum) else describe(key, 200)


def to_json(value: Any, *, indent: int | None = None) -> str:
    """Valid JSON (never NaN or Infinity) for any value: see `json_safe`."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False, ensure_ascii=False)


def _seconds(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def build_report(
    *,
    scenario: Scenario,
    accounting: Accounting,
    shutdown: ShutdownReport | None,
    queue: QueueStats,
    elapsed: float,
    origin: float,
    alerts: Iterable[Alert],
    submitted_by_priority: Mapping[float, int],
    handler: Mapping[str, int],
    cancelled_workers: int,
    alerts_raised: Mapping[Any, int],
    overflow: str,
    aging: float,
) -> dict[str, Any]:
    """The run's report: counts, identity, throughput, waits, alerts, shutdown.

    `origin` is the clock reading at the start: every time in the report is seconds from it.
    """
    a = accounting
    return {
        "scenario": scenario.name,
        "source": scenario.source,
        "seed": scenario.seed,
        "duration": round(elapsed, 6),
        "submitted": a.submitted,
        "completed": a.completed,
        "dead_lettered": a.dead_lettered,
        "evicted": a.evicted,
        "rejected": a.rejected,
        "remaining": a.returned,
        "still_queued": a.queued,
        "in_flight": a.in_flight,
        "retry_scheduled": a.retry_scheduled,
        "lost": a.lost,
        "duplicated": a.duplicated,
        "throughput": round(a.completed / elapsed, 3) if elapsed > 0 else 0.0,
        "throughput_window": (
            "completed per second over the whole run, start to stop (the drain included)"
        ),
        "nulls": NULL_MEANING,
        "settings": {
            "workers": scenario.pool.workers,
            "maxsize": queue.maxsize,
            "overflow": str(overflow),
            "aging": aging,
            "max_attempts": scenario.pool.max_attempts,
            "timeout": scenario.pool.timeout,
        },
        "wait_by_priority": [
            {
                "priority": level.priority,
                "submitted": submitted_by_priority.get(level.priority, 0),
                "p50": level.wait_p50,
                "p99": level.wait_p99,
            }
            for level in queue.per_priority
        ],
        "wait_window": "p50/p99 of each priority's most recent gets (a sliding window)",
        "handler": dict(handler),
        "cancelled_workers": cancelled_workers,
        "alerts_raised": {str(kind): n for kind, n in alerts_raised.items()},
        "alerts": [_alert(alert, origin) for alert in sorted(alerts, key=lambda a: a.id)],
        "shutdown": None if shutdown is None else _shutdown(shutdown, origin),
    }


def _alert(alert: Alert, origin: float) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": str(alert.kind),
        "priority": alert.priority,
        "time": _seconds(alert.started_at - origin),
        "resolved": None if alert.resolved_at is None else _seconds(alert.resolved_at - origin),
        "culprit": alert.culprit,
        "peak_wait": alert.peak_wait,
        "message": alert.message,
    }


def _shutdown(shutdown: ShutdownReport, origin: float) -> dict[str, Any]:
    return {
        "drain_time": _seconds(shutdown.drain_time),
        "deadline_hit": shutdown.deadline_hit,
        "cut_short": shutdown.cut_short,
        "phases": [
            {
                "phase": str(phase.phase),
                "started": _seconds(phase.started_at - origin),
                "duration": _seconds(phase.duration),
                "limit": _seconds(phase.limit),
            }
            for phase in shutdown.phases
        ],
    }


def spill_records(shutdown: ShutdownReport | None) -> list[dict[str, Any]]:
    """What the shutdown handed back, one dict per item (the `--spill` lines)."""
    if shutdown is None:
        return []
    return [
        {"item": r.item, "priority": r.priority, "attempts": r.attempts, "where": r.where}
        for r in shutdown.returned
    ]
