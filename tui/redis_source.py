"""`RedisSource`: the dashboard on a queue shared through Redis (`heapwatch attach redis://...`).

    heapwatch attach redis://HOST:PORT/DB?name=Q [--control] [--redis-password-file FILE]

A `SnapshotSource` over `engine.shared_reader.SharedQueueReader`: every process's workers
(grouped by host), the queue's panels and heap rows from Redis, the alerts of every host plus
starvation seen from here. Read-only unless made with `control=True`: then `o` and `a` change
the queue's stored settings, which every process picks up. `shutdown()` only detaches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.shared import QueueTarget, SharedQueueError
from engine.shared_reader import SharedQueueReader
from engine.snapshots import Capability, EngineSnapshot, ShutdownReport
from tui.remote import AGING_ON, OVERFLOW_CYCLE, SourceError, _report_from

__all__ = ["RedisSource", "redis_attach_main"]

CONTROL = frozenset({Capability.AGING, Capability.OVERFLOW})
"""What `--control` allows on a shared queue: its stored settings, nothing of any process."""
READ_ONLY = "read-only: attach with --control to change the queue's aging (a) and overflow (o)"


class RedisSource:
    """A shared queue as the dashboard's engine. Create, then `await start()`."""

    def __init__(self, target: QueueTarget, *, control: bool = False, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.control = control
        self.reader = SharedQueueReader(target, interval=interval, clock=clock)
        self.running = False
        self.shutting_down = False
        self.read_only_reason = "" if control else READ_ONLY
        """Why the control keys are off ('' with --control): the hint line says it."""
        self._pending: set[asyncio.Task[Any]] = set()
        self._last: EngineSnapshot | None = None

    @property
    def endpoint(self) -> str:
        """The queue's URL, never with its password."""
        return self.target.shown

    @property
    def capabilities(self) -> frozenset[Capability]:
        return CONTROL if self.control and self.running else frozenset()

    offers = CONTROL
    """What a shared queue could ever do from here: the keys of the rest are hidden."""
    events_note = ("no events here: each process keeps its own, and Redis does not carry them"
                   " (heapwatch attach PID shows a process run with --monitor); the alerts"
                   " panel has every host's alerts")
    """The event log's first line: why it stays empty."""

    @property
    def mode(self) -> str:
        return "control" if self.control else "read-only"

    def why_not(self, capability: Capability) -> str:
        """Why `capability` is off now (the hint line says it when its key is pressed)."""
        return self.read_only_reason or "detached from the queue"

    async def start(self) -> None:
        """Reach Redis and the queue (`SharedQueueError`, one line, if it cannot) and read."""
        if not self.running:
            await self.reader.open()
            self.running = True

    def snapshot(self) -> EngineSnapshot:
        self._last = dataclasses.replace(self.reader.snapshot(), capabilities=self.capabilities)
        return self._last

    async def shutdown(self, drain_timeout: float | None = None) -> ShutdownReport:
        """Detach: stop reading; every process on the queue keeps running."""
        if self.running:
            self.running = False
            for task in list(self._pending):
                task.cancel()
            await self.reader.close()
        return _report_from(self._last)

    # ------------------------------------------------------------------ the stored settings

    def _send(self, capability: Capability, change: Callable[[], Any]) -> None:
        if capability not in self.capabilities:
            raise SourceError(self.read_only_reason or "detached")
        task = asyncio.get_running_loop().create_task(change())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def toggle_aging(self) -> float:
        """Aging off, or on at 1 point/s, for every process on the queue; the new rate."""
        rate = 0.0 if self.reader.queue.aging_rate else AGING_ON
        self._send(Capability.AGING, lambda: self.reader.set_aging(rate))
        return rate

    def cycle_overflow(self) -> str:
        """The next overflow policy for every process on the queue; the new policy."""
        current = self.reader.queue.overflow.value
        policy = OVERFLOW_CYCLE[(OVERFLOW_CYCLE.index(current) + 1) % len(OVERFLOW_CYCLE)]
        self._send(Capability.OVERFLOW, lambda: self.reader.set_overflow(policy))
        return policy

    def __getattr__(self, name: str) -> Any:
        if name in ("burst", "flood_low", "cancel_worker", "add_worker", "remove_worker",
                    "toggle_producers", "block_loop_once", "memory_profile", "capture_stacks"):
            def refuse(*args: Any, **kwargs: Any) -> Any:
                raise SourceError("a shared queue's processes are their own: only o and a"
                                  " (with --control) act from here")
            return refuse
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"<RedisSource {self.endpoint} {self.mode}>"


def redis_attach_main(argv: Sequence[str]) -> int:
    """`heapwatch attach redis://...`: the exit status (2, one line, for what stops it)."""
    from tui.attach import _fail, _look, _Parser, run_dashboard

    parser = _Parser(prog="heapwatch attach",
                     description="Open the dashboard on a queue shared through Redis.")
    parser.add_argument("target", help="redis://HOST:PORT/DB?name=QUEUE")
    parser.add_argument("--control", action="store_true",
                        help="let o and a change the queue's stored settings (every process's)")
    parser.add_argument("--redis-password-file", metavar="FILE",
                        help="read the password from FILE (else REDIS_PASSWORD, else the URL)")
    args = _look(parser).parse_args(argv)
    try:
        target = QueueTarget.from_flags(args.target, args.redis_password_file)
    except SharedQueueError as error:
        return _fail(parser.prog, str(error).replace("--queue ", "", 1))

    async def attach() -> int:
        source = RedisSource(target, control=args.control)
        await source.start()
        return await run_dashboard(source, args)

    try:
        return asyncio.run(attach())
    except SharedQueueError as error:
        return _fail(parser.prog, str(error))
    except KeyboardInterrupt:
        return 0
