"""Sources the dashboard reads like a local `Engine`: a live remote service, or a recording.

`RemoteSource` keeps the newest snapshot a monitor sent (`engine.monitor_client`), reconnects
when the service comes back (the target is resolved again, so a restarted service with a new pid
is found by its name), and sends control requests only when the monitor granted control.
`shutdown()` detaches, it never stops the service: `q`, ctrl+c and SIGTERM all end up there. A
remote graceful shutdown is `request_shutdown()`, which the dashboard asks to confirm first.

`ReplaySource` plays a recording (`engine.recording`) with play/pause/step/jump-to-alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.monitor_client import ClientError, MonitorClient, RemoteError
from engine.recording import Recorder, Recording
from engine.snapshots import (
    Capability,
    EngineSnapshot,
    MemoryProfile,
    ShutdownReport,
    StackGroup,
    WorkerState,
)
from engine.wire import Frame

__all__ = ["RemoteReply", "RemoteSource", "ReplaySource", "SourceError"]

OVERFLOW_CYCLE = ("block", "reject", "evict-lowest")
AGING_ON = 1.0
"""Priority points per second when `toggle_aging` turns aging on (the Engine's default)."""
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0)
"""Seconds between attempts to reconnect (the last repeats): quick at first, then every 2 s."""
READ_ONLY = frozenset({Capability.STACKS, Capability.MEMORY})
"""What a monitor gives every client; the rest needs control."""
CONTROL = READ_ONLY | {Capability.CANCEL_WORKER, Capability.ADD_WORKER, Capability.REMOVE_WORKER,
                       Capability.PAUSE_GETTING, Capability.AGING, Capability.OVERFLOW,
                       Capability.SHUTDOWN}
"""What a monitor can grant at most: never bursts, floods or loop blocks."""


class SourceError(RuntimeError):
    """An action this source cannot carry out (the message is the one line to show)."""


@dataclass(frozen=True, slots=True)
class RemoteReply:
    """What the service answered to one control request sent without waiting."""

    op: str
    ok: bool
    result: Any = None
    error: str | None = None


def _report_from(snapshot: EngineSnapshot | None) -> ShutdownReport:
    """What `shutdown()` returns on detach: the service's report if it has one, else its counts."""
    from engine.snapshots import Accounting

    if snapshot is not None and snapshot.pool.report is not None:
        return snapshot.pool.report
    accounting = snapshot.pool.accounting if snapshot is not None else Accounting()
    return ShutdownReport(phases=(), accounting=accounting, returned=(), drain_time=0.0,
                          deadline_hit=False)


class RemoteSource:
    """A monitored service as the dashboard's engine. Create, then `await start()`.

    Args:
        target: a pid, a name, `unix:PATH` or `tcp://HOST:PORT`.
        control: ask the monitor for control (it grants it only with `allow_control=True`).
        recorder: every frame received is written to it.
        clock: seconds, monotonic, for the snapshot's age. Leave as default unless testing.
    """

    def __init__(self, target: str, *, control: bool = False, token: str | None = None,
                 hz: float | None = None, recorder: Recorder | None = None,
                 backend: str | None = None, reconnect: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.target_text = target
        self.control_asked = control
        self.token = token
        self.hz = hz
        self.recorder = recorder
        self.backend = backend
        self.reconnect = reconnect
        self.clock = clock
        self.running = False
        """True from `start()` until detached."""
        self.shutting_down = False
        self.hello: dict[str, Any] = {}
        self.stale_info: dict[str, Any] | None = None
        """While the service's loop does not answer: blocked_for, culprit, stack."""
        self.replies: deque[RemoteReply] = deque(maxlen=50)
        self.on_reply: Callable[[RemoteReply], None] | None = None
        self.on_state: Callable[[str], None] | None = None
        self.reconnects = 0
        self.snapshots = 0
        self.offers = CONTROL
        """What a monitor could ever do (the dashboard hides the other keys)."""
        self._client: MonitorClient | None = None
        self._address: str | None = None
        self._snapshot: EngineSnapshot | None = None
        self._received_at: float | None = None
        self._state = "connecting"
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._stacks: tuple[StackGroup, ...] = ()
        self._first = asyncio.Event()

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> str:
        """'connecting', 'live', 'stale', 'disconnected' or 'detached'."""
        return self._state

    @property
    def stale(self) -> bool:
        return self._state == "stale"

    @property
    def disconnected(self) -> bool:
        return self._state in ("disconnected", "detached")

    @property
    def endpoint(self) -> str:
        """The address connected to (or the target as typed, before the first connection)."""
        if self._client is not None:
            return self._client.target.address
        return self._address or self.target_text

    @property
    def mode(self) -> str:
        """'control' when the monitor granted it, else 'read-only'."""
        return "control" if self.hello.get("control") else "read-only"

    @property
    def age(self) -> float | None:
        """Seconds since the newest snapshot arrived (None before the first)."""
        return None if self._received_at is None else self.clock() - self._received_at

    @property
    def service_shut_down(self) -> bool:
        """The newest snapshot shows the service's pool shutting down or shut down."""
        return self._snapshot is not None and self._snapshot.pool.shutdown_started

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the monitor lets this client do now: read-only ones, plus control if granted
        (none while disconnected; only the read-only ones once the service's pool shuts down,
        as a local engine's)."""
        if self.disconnected:
            return frozenset()
        names = self.hello.get("capabilities", ())
        can = frozenset(Capability(n) for n in names if n in Capability._value2member_map_)
        return can & READ_ONLY if self.service_shut_down else can

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self._restamp()
            if self.on_state is not None:
                self.on_state(state)

    def _restamp(self) -> None:
        # The snapshot kept on screen carries what this client may do now: a new object when
        # that changes, so that a dashboard reading it sees the keys change (going away, say).
        kept = self._snapshot
        if kept is not None and kept.capabilities != self.capabilities:
            self._snapshot = dataclasses.replace(kept, capabilities=self.capabilities)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, first_snapshot_timeout: float = 5.0) -> None:
        """Connect (ClientError, one line, if the monitor cannot be reached) and start reading."""
        if self.running:
            return
        self._client = await self._connect()
        self.running = True
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name="heapwatch-remote")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), first_snapshot_timeout)

    async def _connect(self) -> MonitorClient:
        try:
            client = await self._connect_to(self.target_text)
        except ClientError:
            name = self.hello.get("name")
            if not (self.target_text.strip().isdigit() and name):
                raise
            # Attached by pid: a restarted service has a new one, so it comes back by its name.
            client = await self._connect_to(str(name))
        self.hello = client.hello
        return client

    async def _connect_to(self, target: str) -> MonitorClient:
        return await MonitorClient.connect(target, control=self.control_asked, token=self.token,
                                           hz=self.hz, backend=self.backend, on_line=self._record)

    def _record(self, line: bytes, frame: Frame) -> None:
        if self.recorder is not None:
            self.recorder.write(line, frame)

    async def _run(self) -> None:
        attempt = 0
        while self.running:
            client = self._client
            if client is not None:
                await self._read(client)
                await client.close()
                self._address = client.target.address
                self._client = None
            if not self.running or not self.reconnect:
                self._set_state("disconnected" if self.running else "detached")
                return
            self._set_state("disconnected")
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1
            try:
                self._client = await self._connect()  # resolved again: a name finds a new pid
            except ClientError:
                self._client = None
                continue
            attempt = 0
            self.reconnects += 1

    async def _read(self, client: MonitorClient) -> None:
        while self.running:
            frame = await client.next_frame()
            if frame is None:
                return
            if frame.type == "snapshot":
                # What this client may do, not what the service could: the keys follow it.
                self._snapshot = frame.data
                self._restamp()
                self._received_at = self.clock()
                self.stale_info = None
                self.snapshots += 1
                self._first.set()
                self._set_state("live")
            elif frame.type == "stale":
                self.stale_info = frame.data if isinstance(frame.data, dict) else {}
                self._set_state("stale")

    async def shutdown(self, drain_timeout: float | None = None) -> ShutdownReport:
        """Detach: close the connection; the service keeps running. Returns its last counts."""
        await self.detach()
        return _report_from(self._snapshot)

    async def detach(self) -> None:
        self.running = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        for pending in list(self._pending):
            pending.cancel()
        self._set_state("detached")

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> EngineSnapshot:
        """The newest snapshot received (kept on screen while stale or disconnected)."""
        if self._snapshot is None:
            raise SourceError(f"no snapshot from {self.endpoint} yet")
        return self._snapshot

    def capture_stacks(self) -> tuple[StackGroup, ...]:
        """The last stacks fetched; asks the service for fresh ones (they come with a reply)."""
        self._send("stacks", {}, Capability.STACKS)
        return self._stacks

    async def fetch_stacks(self) -> tuple[StackGroup, ...]:
        self._stacks = await self._live().stacks()
        return self._stacks

    async def memory_profile(self) -> MemoryProfile:
        self._require(Capability.MEMORY)
        try:
            return await self._live().memory_profile()
        except RemoteError as error:
            raise SourceError(str(error)) from None

    async def request(self, op: str, **args: Any) -> Any:
        """Send one request and wait for its result (SourceError with the service's reason)."""
        try:
            return await self._live().request(op, **args)
        except ClientError as error:
            raise SourceError(str(error)) from None

    def _live(self) -> MonitorClient:
        if self._client is None or self._client.closed:
            raise SourceError(f"disconnected from {self.endpoint}")
        return self._client

    # ------------------------------------------------------------------ control (sent, not awaited)

    def why_not(self, capability: Capability) -> str:
        """Why `capability` is not available now (for the hint line, and SourceError)."""
        if self.disconnected:
            return f"disconnected from {self.endpoint}"
        if capability not in READ_ONLY and self.service_shut_down:
            stopped = self._snapshot is not None and self._snapshot.pool.report is not None
            return (f"the service at {self.endpoint} has shut its pool down" if stopped
                    else f"not while the service at {self.endpoint} shuts down")
        if capability not in READ_ONLY and not self.hello.get("control"):
            if self.control_asked:
                return "read-only: the service did not pass serve_monitor(allow_control=True)"
            return ("read-only: attach with --control to a service that passes"
                    " allow_control=True")
        return f"the service does not offer {capability.value}"

    def _require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            raise SourceError(self.why_not(capability))

    def _send(self, op: str, args: dict[str, Any], capability: Capability) -> None:
        self._require(capability)
        client = self._live()

        async def send() -> None:
            try:
                result = await client.request(op, **args)
            except ClientError as error:
                reply = RemoteReply(op, False, error=str(error))
            else:
                reply = RemoteReply(op, True, result=result)
                if op == "stacks":
                    self._stacks = client.codec.convert(result, tuple[StackGroup, ...])
            self.replies.append(reply)
            if self.on_reply is not None:
                self.on_reply(reply)

        task = asyncio.get_running_loop().create_task(send())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _workers(self) -> tuple[Any, ...]:
        return self._snapshot.pool.workers if self._snapshot is not None else ()

    def cancel_worker(self, worker_id: int | None = None) -> int | None:
        """Ask to cancel `worker_id` (None: the busiest on screen); the id asked for, or None."""
        if worker_id is None:
            busy = [w for w in self._workers() if w.state is WorkerState.BUSY]
            if not busy:
                self._require(Capability.CANCEL_WORKER)
                return None
            worker_id = max(busy, key=lambda w: w.busy_for).id
        self._send("cancel_worker", {"worker_id": worker_id}, Capability.CANCEL_WORKER)
        return worker_id

    def add_worker(self) -> int:
        """Ask for one more worker; the id it will most likely get."""
        self._send("add_worker", {}, Capability.ADD_WORKER)
        return max((w.id for w in self._workers()), default=0) + 1

    def remove_worker(self) -> int | None:
        """Ask to stop one worker (the service picks it)."""
        self._send("remove_worker", {"worker_id": None}, Capability.REMOVE_WORKER)
        live = [w.id for w in self._workers()
                if w.state not in (WorkerState.STOPPED, WorkerState.CRASHED)]
        return max(live) if live else None

    def toggle_getting(self) -> bool:
        """Pause or resume the service's workers getting from the queue; True when pausing."""
        pausing = not (self._snapshot is not None and self._snapshot.pool.paused)
        self._send("pause" if pausing else "resume", {}, Capability.PAUSE_GETTING)
        return pausing

    def toggle_producers(self) -> bool:
        raise SourceError("a remote service's producers are its own: `p` pauses getting instead"
                          " (toggle_getting)")

    def toggle_aging(self) -> float:
        current = self._snapshot.queue.aging_rate if self._snapshot is not None else 0.0
        rate = 0.0 if current else AGING_ON
        self.set_aging(rate)
        return rate

    def set_aging(self, rate: float) -> None:
        self._send("set_aging", {"rate": rate}, Capability.AGING)

    def cycle_overflow(self) -> str:
        current = self._snapshot.queue.overflow if self._snapshot is not None else "block"
        index = OVERFLOW_CYCLE.index(current) if current in OVERFLOW_CYCLE else -1
        policy = OVERFLOW_CYCLE[(index + 1) % len(OVERFLOW_CYCLE)]
        self.set_overflow(policy)
        return policy

    def set_overflow(self, policy: str) -> None:
        self._send("set_overflow", {"policy": policy}, Capability.OVERFLOW)

    def request_shutdown(self, drain_timeout: float = 10.0) -> None:
        """Ask the service to shut its pool down gracefully. The dashboard confirms first."""
        self._send("shutdown", {"drain_timeout": drain_timeout}, Capability.SHUTDOWN)

    def burst(self, size: int) -> int:
        raise SourceError("bursts are never sent to a remote service")

    def flood_low(self, size: int) -> int:
        raise SourceError("floods are never sent to a remote service")

    def block_loop_once(self, seconds: float = 0.5) -> None:
        raise SourceError("loop blocks are never sent to a remote service")

    def __repr__(self) -> str:
        return f"<RemoteSource {self.endpoint} {self.state}>"


class ReplaySource:
    """A recording played back at `speed`: `play`, `pause`, `step`, `jump_to_alert`.

    Stale frames in the recording show as they did live: `state` is 'stale' with `stale_info`.
    """

    def __init__(self, recording: Recording, *, speed: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not recording.frames or not any(f.type == "snapshot" for f in recording.frames):
            raise SourceError(f"{recording.path} holds no snapshot to play")
        if not speed > 0:
            raise ValueError(f"speed must be > 0, not {speed!r}")
        self.recording = recording
        self.frames = recording.frames
        self.speed = speed
        self.clock = clock
        self.hello = recording.hello
        self.running = False
        self.shutting_down = False
        self.offers = self.capabilities = frozenset({Capability.REPLAY, Capability.STACKS})
        """A recording only plays: the control keys are hidden."""
        self.endpoint = recording.path
        self.mode = "replay"
        self.playing = False
        self._anchor = (0.0, 0.0)
        self.position = next(i for i, f in enumerate(self.frames) if f.type == "snapshot")
        self.alert_marks = self._find_alerts()
        """Indexes of the frames where an alert is raised or the loop goes stale."""

    async def start(self) -> None:
        self.running = True
        self.play()

    async def shutdown(self, drain_timeout: float | None = None) -> ShutdownReport:
        self.pause()
        self.running = False
        return _report_from(self._current())

    @property
    def ended(self) -> bool:
        return self.position >= len(self.frames) - 1

    @property
    def state(self) -> str:
        return "stale" if self.frames[self.position].type == "stale" else "replay"

    @property
    def stale(self) -> bool:
        return self.state == "stale"

    @property
    def stale_info(self) -> dict[str, Any] | None:
        frame = self.frames[self.position]
        return frame.data if frame.type == "stale" else None

    @property
    def wall(self) -> float:
        """The service's wall-clock time of the frame on display."""
        return self.frames[self.position].wall

    def play(self) -> None:
        if self.ended:
            self.position = 0
        self.playing = True
        self._anchor = (self.clock(), self.wall)

    def pause(self) -> None:
        self._advance()
        self.playing = False

    def toggle(self) -> bool:
        """Play or pause; True when now playing."""
        self.pause() if self.playing else self.play()
        return self.playing

    def step(self, frames: int = 1) -> int:
        """Pause and move `frames` frames (negative: back); the new position."""
        self.pause()
        self.position = max(0, min(len(self.frames) - 1, self.position + frames))
        return self.position

    def why_not(self, capability: Capability) -> str:
        return "a recording is read-only: it plays, it cannot be steered"

    def _find_alerts(self) -> tuple[int, ...]:
        marks: list[int] = []
        seen: set[int] = set()
        for index, frame in enumerate(self.frames):
            if frame.type == "stale":
                if index and self.frames[index - 1].type != "stale":
                    marks.append(index)
            elif frame.type == "snapshot":
                ids = {alert.id for alert in frame.data.watchdog.alerts if alert.active}
                if ids - seen:
                    marks.append(index)
                seen |= ids
        return tuple(marks)

    def jump_to_alert(self, direction: int = 1) -> bool:
        """Pause at the next (1) or previous (-1) frame where an alert is raised or the loop
        went stale; False, and no move, when there is none that way."""
        self.pause()
        ahead = [m for m in self.alert_marks if (m - self.position) * direction > 0]
        if not ahead:
            return False
        self.position = ahead[0] if direction > 0 else ahead[-1]
        return True

    @property
    def elapsed(self) -> float:
        """Seconds from the first frame to the one on display, in the service's time."""
        return self.wall - self.frames[0].wall

    @property
    def duration(self) -> float:
        return self.frames[-1].wall - self.frames[0].wall

    def _advance(self) -> None:
        if not self.playing:
            return
        started, wall = self._anchor
        target = wall + (self.clock() - started) * self.speed
        while self.position + 1 < len(self.frames) and self.frames[self.position + 1].wall <= target:
            self.position += 1
        if self.ended:
            self.playing = False

    def snapshot_at(self, index: int) -> EngineSnapshot | None:
        for back in range(index, -1, -1):
            if self.frames[back].type == "snapshot":
                return self.frames[back].data
        return None

    def _current(self) -> EngineSnapshot | None:
        return self.snapshot_at(self.position)

    def snapshot(self) -> EngineSnapshot:
        """The frame at the play position (the last snapshot before it, for a stale frame)."""
        self._advance()
        snapshot = self._current()
        assert snapshot is not None  # the first snapshot frame is where playing starts
        return dataclasses.replace(snapshot, capabilities=self.capabilities)

    def capture_stacks(self) -> tuple[StackGroup, ...]:
        snapshot = self._current()
        return snapshot.watchdog.stacks if snapshot is not None else ()

    def __getattr__(self, name: str) -> Any:
        if name in ("burst", "flood_low", "cancel_worker", "add_worker", "remove_worker",
                    "toggle_producers", "toggle_aging", "cycle_overflow", "block_loop_once",
                    "memory_profile", "toggle_getting"):
            def refuse(*args: Any, **kwargs: Any) -> Any:
                raise SourceError(self.why_not(Capability.REPLAY))
            return refuse
        raise AttributeError(name)
