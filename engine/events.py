"""`EventLog`: the engine's discrete events as typed records with a monotonically increasing seq.

Every part of the engine that does something a person should hear about (an alert raised or
resolved, a worker cancelled or replaced, a burst's result, a dead letter, a policy change, a
shutdown phase) emits an `Event` here. Every reader (the dashboard, headless mode, a monitor
client, a recording) finds what is new the same way: `since(last_seq_seen)`.

The log is bounded (`maxlen`); a reader that falls further behind sees a gap in `seq`, never a
reordering. Emitting is O(1) and never raises into the emitter.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

__all__ = ["BurstResult", "Event", "EventKind", "EventLog"]

_log = logging.getLogger(__name__)


class EventKind(enum.StrEnum):
    """What an `Event` tells. Readers switch on this, never on the message text."""

    ALERT_RAISED = "alert-raised"
    ALERT_RESOLVED = "alert-resolved"
    WORKER_ADDED = "worker-added"
    WORKER_REMOVED = "worker-removed"
    WORKER_CANCELLED = "worker-cancelled"
    """A worker was cancelled (by a key, the scenario or from outside); its item went back."""
    WORKER_REPLACED = "worker-replaced"
    """A worker died and the pool started another in its place."""
    WORKER_DIED = "worker-died"
    """A worker died and was not replaced (the replacement limit was reached, or shutdown)."""
    BURST = "burst"
    """A burst or flood ran: `Event.burst` says what became of its items."""
    DEAD_LETTER = "dead-letter"
    LATE_COMPLETION = "late-completion"
    """A handler that was given up on (timed out, abandoned) returned later: counted apart."""
    POLICY_CHANGED = "policy-changed"
    """Overflow policy, aging rate, pause/resume of producers or of getting."""
    SHUTDOWN_PHASE = "shutdown-phase"
    VIEWER_STALL = "viewer-stall"
    """The loop was held by the viewer (the dashboard's own rendering), not by the engine."""
    NOTE = "note"
    """Anything else a person should read (a key's effect, start, a capture)."""
    ERROR = "error"
    """An engine error that did not stop the run."""


@dataclass(frozen=True, slots=True)
class BurstResult:
    """What became of a burst's (or a flood's) items, counted right after it ran."""

    requested: int
    """Items the burst (or flood) made."""
    accepted: int
    """Taken by the queue at once."""
    waiting: int
    """Waiting for room (the 'block' policy): they land as workers free slots."""
    rejected: int
    """Refused under 'reject'."""
    evicted: int
    """Items the burst pushed out under 'evict-lowest' (queued ones or its own)."""
    priority: float | None = None
    """The one priority of a flood; None for mixed priorities."""

    @property
    def text(self) -> str:
        """'1,500 submitted now, 200 waiting for room, 3 evicted'."""
        fates = ((self.waiting, "waiting for room"), (self.rejected, "rejected"),
                 (self.evicted, "evicted"))  # said only when some had that fate
        said = (f"{count:,} {fate}" for count, fate in fates if count)
        return ", ".join((f"{self.accepted:,} submitted now", *said))


@dataclass(frozen=True, slots=True)
class Event:
    """One discrete thing that happened, as `engine.events.EventLog` recorded it."""

    seq: int
    """1, 2, 3...: monotonically increasing per engine; a reader keeps the last it saw."""
    kind: EventKind
    at: float
    """Seconds on the engine's clock."""
    wall_time: float
    """Seconds since the epoch (time.time()) when it was recorded."""
    message: str
    """One line a person reads, written once, by the engine."""
    worker_id: int | None = None
    alert_id: int | None = None
    job_id: int | None = None
    burst: BurstResult | None = None
    phase: str | None = None
    """For SHUTDOWN_PHASE: the `ShutdownPhase` value entered."""
    item_repr: str = ""
    """The text of the item `message` names (a dead letter, a late completion), '' if none."""
    item: Any = None
    """That item's payload, so that a monitor with a hook of its own can show it its way;
    None on the wire."""


class EventLog:
    """A bounded, append-only log of `Event`s.

    Args:
        clock: seconds, monotonic: the engine's clock (`Event.at`). Leave as default unless
            testing.
        wall_clock: seconds since the epoch (`Event.wall_time`). Leave as default unless testing.
        maxlen: events kept; the oldest fall out.
    """

    __slots__ = ("_clock", "_wall_clock", "_events", "_seq", "_listeners")

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        maxlen: int = 1000,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._events: deque[Event] = deque(maxlen=maxlen)
        self._seq = 0
        self._listeners: list[Callable[[Event], object]] = []

    def emit(self, kind: EventKind, message: str, **fields: Any) -> Event:
        """Record one event now and tell the listeners; return it.

        `fields` are `Event`'s optional fields (`worker_id`, `alert_id`, `burst`...).
        """
        self._seq += 1
        event = Event(
            seq=self._seq,
            kind=kind,
            at=self._clock(),
            wall_time=self._wall_clock(),
            message=message,
            **fields,
        )
        self._events.append(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                _log.exception("event listener failed on %r", event)
        return event

    @property
    def last_seq(self) -> int:
        """The seq of the newest event (0 before any)."""
        return self._seq

    def since(self, seq: int) -> tuple[Event, ...]:
        """The kept events with a seq above `seq`, oldest first."""
        events = self._events
        if not events or events[-1].seq <= seq:
            return ()
        skip = max(0, seq - events[0].seq + 1)
        return tuple(islice(events, skip, None))

    def recent(self, n: int) -> tuple[Event, ...]:
        """The newest `n` kept events, oldest first."""
        if n <= 0:
            return ()
        events = self._events
        return tuple(islice(events, max(0, len(events) - n), None))

    def subscribe(self, listener: Callable[[Event], object]) -> Callable[[], None]:
        """Call `listener(event)` for every new event; returns the function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def __len__(self) -> int:
        return len(self._events)

    def __repr__(self) -> str:
        return f"<EventLog last_seq={self._seq} kept={len(self._events)}>"
