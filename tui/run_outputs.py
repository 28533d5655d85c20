"""`--monitor` and `--record` for heapwatch's own runs (the dashboard and --headless).

`--monitor` serves a read-only monitor for the run (`engine.serve_monitor(engine=...)`), so that
another terminal can `heapwatch attach` it; `--record FILE` writes the run's frame stream (the
snapshots at the monitor's rate, 5 Hz) for `heapwatch replay`, up to `--record-max`, with a
warning when the cap is reached. `RunOutputs.started(engine)` is called on the run's loop once
the engine runs (again after `r` restarts it) and returns the lines to tell the user.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RECORD_HZ = 5.0
"""Snapshots per second a recording keeps (the monitor's default rate)."""
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def record_size(text: str) -> int:
    """An argparse type for --record-max: '500K', '50M', '1G' (at least 1K)."""
    number, unit = text.strip().lower().rstrip("b"), ""
    if number and number[-1] in SIZE_UNITS:
        number, unit = number[:-1], number[-1]
    try:
        value = int(float(number) * SIZE_UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a size such as 500K, 50M or 1G, not {text!r}") from None
    if value < 1024:
        raise argparse.ArgumentTypeError(f"must be at least 1K, not {text!r}")
    return value


def add_record_flags(parser: Any) -> None:
    """--record FILE and --record-max SIZE, the same in every mode (attach included)."""
    from engine.recording import DEFAULT_MAX_BYTES

    parser.add_argument("--record", metavar="FILE", type=Path,
                        help="write the frame stream to FILE (heapwatch replay FILE plays it)")
    parser.add_argument("--record-max", type=record_size, default=DEFAULT_MAX_BYTES,
                        metavar="SIZE", help="stop recording at SIZE (default 100M), with a "
                        "warning")


def add_run_flags(parser: Any) -> None:
    """The flags of heapwatch's own runs: --monitor, --record, --record-max."""
    parser.add_argument("--monitor", action="store_true",
                        help="serve a read-only monitor for this run: watch it from another "
                        "terminal with heapwatch attach PID")
    add_record_flags(parser)


class RunOutputs:
    """The monitor and the recording of one command; `close()` once the app or run is over."""

    def __init__(self, *, monitor: bool = False, record: Path | None = None,
                 record_max: int | None = None,
                 warn: Callable[[str], None] = lambda line: None, defer: bool = False) -> None:
        """`warn(line)` says the cap's warning; with `defer` (the dashboard: a line on stderr
        would tear its screen) only at `close()`."""
        from engine.recording import DEFAULT_MAX_BYTES

        self.monitor_wanted = monitor
        self.record_path = record
        self.record_max = DEFAULT_MAX_BYTES if record_max is None else record_max
        self.warn = warn
        self.deferred: list[str] | None = [] if defer else None
        self.monitor: Any = None
        self.recorder: Any = None
        self._task: asyncio.Task[None] | None = None
        self._engine: Any = None
        self._encoder: Any = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, warn: Callable[[str], None]) -> RunOutputs:
        return cls(monitor=args.monitor, record=args.record, record_max=args.record_max,
                   warn=warn, defer=not args.headless)

    def _capped(self, line: str) -> None:
        if self.deferred is not None:
            self.deferred.append(line)
        else:
            self.warn(line)

    def started(self, engine: Any) -> list[str]:
        """The engine runs (again): serve and record it. The lines to tell the user."""
        import engine as heapwatch_engine
        from engine.recording import Recorder

        said = []
        if self.monitor_wanted:
            if self.monitor is not None:  # `r`: a fresh engine, watched by a fresh monitor
                self.monitor.close()
            self.monitor = heapwatch_engine.serve_monitor(engine=engine, name="heapwatch")
            said.append(f"monitor at {self.monitor.address}: watch it with "
                        f"heapwatch attach {os.getpid()}")
        if self.record_path is not None:
            if self.recorder is None:
                self.recorder = Recorder(self.record_path, max_bytes=self.record_max,
                                         target="heapwatch", on_cap=self._capped)
                said.append(f"recording to {self.record_path}")
            if self._task is not None:
                self._task.cancel()
            self._task = asyncio.get_running_loop().create_task(self._record(engine))
        return said

    def _write(self, engine: Any) -> None:
        from engine.wire import wire_safe

        if self._encoder is None:
            from engine.wire import codec

            self._encoder = codec()
        snapshot = wire_safe(engine.snapshot())
        self.recorder.write(self._encoder.encode("snapshot", snapshot, wall=time.time()))

    async def _record(self, engine: Any) -> None:
        self._engine = engine
        while not self.recorder.capped:
            self._write(engine)
            await asyncio.sleep(1 / RECORD_HZ)

    def close(self) -> None:
        """Stop serving and recording; the run's last snapshot (with its report) is kept."""
        if self._task is not None:
            with contextlib.suppress(RuntimeError):  # its loop may be closed (the app's ended)
                self._task.cancel()
        if self.recorder is not None:
            if self._engine is not None and not self.recorder.capped:
                with contextlib.suppress(Exception):  # a run that never gave a snapshot
                    self._write(self._engine)
            self.recorder.close()
        if self.monitor is not None:
            self.monitor.close()
        for line in self.deferred or ():
            self.warn(line)
        self.deferred = [] if self.deferred is not None else None
