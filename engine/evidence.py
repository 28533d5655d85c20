"""The watchdog's measurements: a memory profile and Little's-law sizing advice.

Frozen records like every snapshot (`engine.snapshots` re-exports them): bytes are bytes, times
are seconds on the engine's clock, rates are per second.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AllocationSite", "MemoryProfile", "SizingAdvice"]


@dataclass(frozen=True, slots=True)
class AllocationSite:
    where: str
    """'file:line'."""
    size: int
    """Bytes allocated there during the measurement."""
    count: int
    """Allocations (blocks) made there."""


@dataclass(frozen=True, slots=True)
class MemoryProfile:
    at: float
    """Seconds on the engine's clock."""
    depth: int
    """Items queued when measured."""
    bytes_per_item: float
    """Bytes of queue overhead per queued item, payload excluded."""
    payload_bytes_per_item: float
    """Bytes: mean deep size of the payloads at the front of the queue."""
    top_sites: tuple[AllocationSite, ...]
    sample_items: int = 0
    """Items put into a scratch queue of the live queue's class to measure the figures."""
    estimated_queue_bytes: int = 0
    """bytes_per_item x depth: the live queue's own overhead, payloads excluded."""
    duration: float = 0.0
    """Seconds the measurement held the loop."""


@dataclass(frozen=True, slots=True)
class SizingAdvice:
    """Little's law: items in the system = arrival rate x time in system."""

    arrival_rate: float
    """Items put per second."""
    time_in_system: float
    """Seconds: median wait plus service time."""
    suggested_maxsize: int
    """Items."""
    window: float = 0.0
    """Seconds of history the rates were measured over."""
    wait_p50: float | None = None
    """Median time an item waited in the queue (part of time_in_system)."""
    service_time: float | None = None
    """Handler time per item: mean busy workers / completion rate (None without a pool)."""
    completion_rate: float | None = None
    """Completions per second (None without a pool)."""
    headroom: float = 1.0
    """Multiplier on arrival_rate x time_in_system, so that bursts above the mean fit."""
    current_maxsize: int = 0
    """The queue's maxsize in items (0: unbounded)."""

    @property
    def explanation(self) -> str:
        """The arithmetic, e.g. 'arrival 120.0/s x time in system 0.250 s x headroom 2 = 60'."""
        return (
            f"arrival {self.arrival_rate:.1f}/s x time in system {self.time_in_system:.3f} s"
            f" x headroom {self.headroom:g} = {self.suggested_maxsize}"
        )
