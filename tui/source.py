"""`SnapshotSource`: the narrow interface between the dashboard and what it shows.

The app talks to its source only through this: `snapshot()`, `capabilities`, and the action
methods a capability allows. The local `engine.runtime.Engine` is one; a remote service or a
recording can stand in (they add `endpoint`, `stale` and `disconnected`, which the summary bar
shows when present).
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

from engine.snapshots import BurstResult, Capability, EngineSnapshot, MemoryProfile, StackGroup

LOCAL_OFFERS = frozenset(Capability) - {Capability.PAUSE_GETTING, Capability.REPLAY}
"""What a local engine can ever do: its producers pause, not its getting; it is no recording."""
LIVE_CAPABILITIES = LOCAL_OFFERS - {Capability.RESTART}
"""What a running in-process engine can do (restarting is the app's, once it has stopped)."""


@runtime_checkable
class SnapshotSource(Protocol):
    """What the dashboard needs of a source. Every control method may raise: the app says why.

    `capabilities` says which of the control methods work now; the app greys out the keys of
    the others and never calls them. A source may also carry optional attributes that the app
    reads with getattr (`endpoint`, `mode`, `on_state`, `events_note`: the event log's first
    line, for a source whose log stays empty...), each documented where a source defines it.
    """

    running: bool
    """True while the source produces new snapshots (False before start and once stopped)."""

    async def start(self) -> None: ...
    def snapshot(self) -> EngineSnapshot: ...
    async def shutdown(self, drain_timeout: float | None = None) -> Any: ...

    # Control: each one needs its Capability (tui.keys.KEYS says which).
    def burst(self, size: int) -> BurstResult | int: ...
    def flood_low(self, size: int) -> BurstResult | int: ...
    def cancel_worker(self, worker_id: int | None) -> int | None: ...
    def add_worker(self) -> int: ...
    def remove_worker(self) -> int | None: ...
    def toggle_producers(self) -> bool: ...
    def toggle_aging(self) -> float: ...
    def cycle_overflow(self) -> str: ...
    def block_loop_once(self, seconds: float = 0.5) -> None: ...
    def capture_stacks(self) -> tuple[StackGroup, ...]: ...
    async def memory_profile(self) -> MemoryProfile: ...


def source_capabilities(source: Any, snapshot: EngineSnapshot | None) -> frozenset[Capability]:
    """What `source` can do now: its own `capabilities` when it says, else from its state.

    A source that does not say is taken as a local engine: everything while it runs, only
    stacks and memory while it shuts down, nothing once stopped (restarting is the app's).
    """
    # The source's word first: a read-only view of a live engine can do less than the engine.
    said = getattr(source, "capabilities", None)
    if said is None:
        said = getattr(snapshot, "capabilities", None)
    if said is not None:
        return frozenset(said) & source_offers(source) - {Capability.RESTART}
    if getattr(source, "shutting_down", False):
        return frozenset({Capability.STACKS, Capability.MEMORY})
    if getattr(source, "running", False):
        return LIVE_CAPABILITIES
    return frozenset()


def source_label(source: Any) -> str:
    """Where the snapshots come from, when it is not this process ('' for a local engine)."""
    endpoint = getattr(source, "endpoint", None)
    return str(endpoint) if endpoint else ""


def source_offers(source: Any) -> frozenset[Capability]:
    """What `source` could ever do: the keys of the rest are hidden, not just dimmed (a remote
    service is never sent a burst; a recording only plays)."""
    offers = getattr(source, "offers", None)
    return LOCAL_OFFERS if offers is None else frozenset(offers)


def why_not(source: Any, capability: Capability) -> str:
    """The one line that says why `source` cannot do `capability` now."""
    explain = getattr(source, "why_not", None)
    if explain is not None:
        return str(explain(capability))
    if getattr(source, "shutting_down", False):
        return "not while the run shuts down"
    if not getattr(source, "running", False):
        return "the run has stopped"
    return f"{capability.value} is not available now"


def stale_text(info: dict[str, Any] | None) -> str:
    """'loop blocked 2.3 s in resize (img.py:88)', from a stale frame's data."""
    info = info or {}
    # The file's name is enough to find it ("img.py:88"), and leaves room on the line.
    culprit = re.sub(r"\(([^()]*/)?([^/()]+)\)", r"(\2)", str(info.get("culprit") or "?"))
    return f"loop blocked {float(info.get('blocked_for') or 0):.1f} s in {culprit}"


def source_flags(source: Any) -> tuple[str, ...]:
    """The state words of a source that is not this process: its mode ('read-only', 'control',
    'replay'), the snapshot's age, then 'STALE: loop blocked...' or 'DISCONNECTED'."""
    if not source_label(source):
        return ()
    flags = [str(getattr(source, "mode", "read-only"))]
    if getattr(source, "disconnected", False):
        flags.append("DISCONNECTED: the last snapshot, reconnecting")
    elif getattr(source, "stale", False):
        flags.append(f"STALE: {stale_text(getattr(source, 'stale_info', None))}")
    age = getattr(source, "age", None)
    if isinstance(age, int | float):
        flags.append(f"{age:.1f}s old")
    return tuple(flags)
