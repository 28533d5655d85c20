"""Sliding-window latency percentiles with an O(1) record.

A `LatencyWindow` keeps the most recent `size` samples in a bounded deque. Recording is a
single `deque.append` (bound once, so the hot path pays one C call and no Python frame);
the window is only sorted when somebody asks for percentiles, which a dashboard does a few
times a second at most.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from functools import cache
from itertools import cycle

__all__ = ["LatencyWindow", "flag_drawer", "gap_drawer", "percentile_of_sorted"]

SAMPLE_TABLE = 8191
"""Entries of a sample table, which a sampler cycles through: drawing costs one C call, and
the length is a prime, so that a periodic workload cannot alias with the cycle."""


def percentile_of_sorted(samples: list[float], q: float) -> float:
    """The `q`-th percentile (0..100) of already sorted `samples`, linearly interpolated.

    Same definition as numpy's default ("linear"): the value at rank q/100 * (n - 1).
    """
    if not samples:
        raise ValueError("percentile of an empty sample")
    rank = (len(samples) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(samples) - 1)
    fraction = rank - low
    return samples[low] + (samples[high] - samples[low]) * fraction


def _lcg(count: int) -> list[int]:
    """`count` pseudo-random 23-bit numbers, the same on every run (a fixed-seed LCG)."""
    seed, values = 1, []
    for _ in range(count):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        values.append(seed >> 8)
    return values


@cache
def _gaps(every: int) -> tuple[int, ...]:
    return tuple(1 + value % (2 * every - 1) for value in _lcg(SAMPLE_TABLE))


@cache
def _flags(every: int) -> tuple[bool, ...]:
    # The LCG's top bits: its low bits have short periods.
    return tuple(value < (1 << 23) // every for value in _lcg(2 * SAMPLE_TABLE)[SAMPLE_TABLE:])


def gap_drawer(every: int) -> Callable[[], int]:
    """Draws the number of events until the next sampled one: 1..2N-1 at random, mean N."""
    return cycle(_gaps(every)).__next__


def flag_drawer(every: int) -> Callable[[], bool]:
    """Draws whether the next event is in the sample: True one time in N, at random."""
    return cycle(_flags(every)).__next__


class LatencyWindow:
    """The last `size` samples of one series (seconds), and their percentiles on demand.

    `record(value)` is O(1): it is the bound `append` of a `deque(maxlen=size)`, so the oldest
    sample falls out as a new one comes in. `percentiles()` sorts a copy: O(size log size),
    independent of how many samples were ever recorded.
    """

    __slots__ = ("_samples", "record", "size")

    def __init__(self, size: int = 1024) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"window size must be a positive int, not {size!r}")
        self.size = size
        self._samples: deque[float] = deque(maxlen=size)
        self.record = self._samples.append
        """Add one sample (O(1)); the oldest one drops out when the window is full."""

    def __len__(self) -> int:
        return len(self._samples)

    def __repr__(self) -> str:
        p50, p99 = self.percentiles(50, 99)
        return f"<LatencyWindow samples={len(self)}/{self.size} p50={p50} p99={p99}>"

    def extend(self, values: Iterable[float]) -> None:
        """Record several samples in order."""
        self._samples.extend(values)

    def clear(self) -> None:
        """Forget every sample."""
        self._samples.clear()

    def samples(self) -> list[float]:
        """A copy of the window, oldest first."""
        return list(self._samples)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0..100) of the window, None when it holds no sample."""
        return self.percentiles(q)[0]

    def percentiles(self, *qs: float) -> tuple[float | None, ...]:
        """Several percentiles from one sort; each is None when the window is empty."""
        for q in qs:
            if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 100:
                raise ValueError(f"percentile must be a number in [0, 100], not {q!r}")
        if not self._samples:
            return tuple(None for _ in qs)
        ordered = sorted(self._samples)
        return tuple(percentile_of_sorted(ordered, q) for q in qs)


class SparseLatencyWindow:
    """Percentiles of a wait over the last `size` events, when most events do not wait.

    Only the events that waited are recorded, each with the event's ordinal (a running count
    the owner keeps anyway, such as the number of puts); every other event in the window
    counts as a 0.0 sample. So the common case costs nothing at all, and a percentile is
    still taken over the last `size` events.
    """

    __slots__ = ("_waits", "size")

    def __init__(self, size: int = 1024) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"window size must be a positive int, not {size!r}")
        self.size = size
        self._waits: deque[tuple[int, float]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._waits)

    def record(self, ordinal: int, seconds: float) -> None:
        """Event number `ordinal` waited `seconds` (O(1))."""
        self._waits.append((ordinal, seconds))

    def clear(self) -> None:
        """Forget every recorded wait."""
        self._waits.clear()

    def percentiles(self, events: int, *qs: float) -> tuple[float | None, ...]:
        """Percentiles over the last `size` of `events` events (None: no event yet)."""
        span = min(events, self.size)
        recent = sorted(s for ordinal, s in self._waits if ordinal >= events - self.size)
        if len(recent) > span:  # waits that never became events (cancelled): keep the newest
            recent = sorted(s for _, s in list(self._waits)[-span:]) if span else recent
        if not span and not recent:
            return tuple(None for _ in qs)
        samples = [0.0] * max(0, span - len(recent)) + recent
        for q in qs:
            if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 100:
                raise ValueError(f"percentile must be a number in [0, 100], not {q!r}")
        return tuple(percentile_of_sorted(samples, q) for q in qs)
