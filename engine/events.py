"""`EventLog`: the engine's discrete events as typed records with a monotonically increasing seq.

Every part of the engine that does something a person should hear about (an alert raised or
resolved, a worker cancelled or replaced, a burst's result, a dead letter, a policy change, a
shutdown phase) emits an `Event` here. Every reader (the dashboard, headless mode, a monitor
client, a recording) finds what is new the same way: `since(last_seq_seen)`.

The log is bounded (`maxlen`); a reader that falls further behind sees a gap in `seq`, never a
reordering. Emitting is O(1) and never raises into the emitter.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any

from engine.snapshots import Event, EventKind

__all__ = ["EventLog"]

_log = logging.getLogger(__name__)


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
