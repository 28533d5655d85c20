"""Record a monitor's frame stream to a file and read it back.

A recording is NDJSON: one header line, then the frames exactly as the monitor sent them (its
hello, then snapshot and stale frames), so a recording is the wire format with a first line:

    {"heapwatch": "recording", "format": 1, "v": 1, "created": 1764650000.0, "target": "4242"}

The recorder stops at a size cap and says so once. A file cut short (a crashed run) reads up to
its last whole frame, with a warning; a file that does not start with the header is refused in
one line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from engine.wire import VERSION, Codec, Frame, FrameError, codec

__all__ = ["FORMAT", "Recorder", "Recording", "RecordingError", "load_recording"]

FORMAT = 1
"""The recording's own format version (the header); frames inside carry the wire version."""
MAGIC = "recording"
DEFAULT_MAX_BYTES = 100 * 1024 * 1024


class RecordingError(ValueError):
    """Not a recording this heapwatch can read (one line)."""


class Recorder:
    """Writes frame lines to `path` until `max_bytes`; `on_cap(message)` is called once then."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 target: str = "", on_cap: Callable[[str], None] | None = None) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be an integer >= 1, not {max_bytes!r}")
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self.on_cap = on_cap
        self.capped = False
        self.frames = 0
        header = {"heapwatch": MAGIC, "format": FORMAT, "v": VERSION, "created": time.time(),
                  "target": target}
        line = json.dumps(header, separators=(",", ":")).encode() + b"\n"
        self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(line)
        self._file.flush()
        self.bytes = len(line)

    def write(self, line: bytes, frame: Frame | None = None) -> bool:
        """Append one frame line (replies are skipped). False once the cap is reached."""
        if self._file is None or self.capped:
            return False
        if frame is not None and frame.type == "reply":
            return True
        if self.bytes + len(line) > self.max_bytes:
            self.capped = True
            self._file.flush()
            if self.on_cap is not None:
                self.on_cap(f"recording stopped at {self.bytes:,} bytes (the --record-max cap): "
                            f"{self.frames:,} frames kept in {self.path}")
            return False
        self._file.write(line if line.endswith(b"\n") else line + b"\n")
        self._file.flush()  # a crash loses at most the frame being written
        self.bytes += len(line)
        self.frames += 1
        return True

    def __call__(self, line: bytes, frame: Frame) -> None:
        """So that a recorder is a `MonitorClient.on_line` callback."""
        self.write(line, frame)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class Recording:
    """A loaded recording: its header, the monitor's hello and the frames in order."""

    path: str
    header: dict[str, Any]
    hello: dict[str, Any] = field(default_factory=dict)
    frames: list[Frame] = field(default_factory=list)
    """Snapshot and stale frames, oldest first."""
    truncated: bool = False
    warning: str | None = None
    """Set when the file was cut short: what was kept."""

    @property
    def duration(self) -> float:
        """Seconds between the first and the last frame (service wall clock)."""
        return self.frames[-1].wall - self.frames[0].wall if len(self.frames) > 1 else 0.0


def load_recording(path: str | os.PathLike[str], *, backend: str | None = None) -> Recording:
    """Read a recording; RecordingError (one line) for a file that is not one."""
    name = os.fspath(path)
    wire = codec() if backend is None else Codec(backend)
    try:
        file = open(name, "rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise RecordingError(f"cannot read {name}: {error.strerror or error}") from None
    with file:
        first = file.readline(64 * 1024)
        header = _header(name, first)
        recording = Recording(name, header)
        number = 1
        for line in file:
            number += 1
            if not line.endswith(b"\n"):
                _cut(recording, number, "the last frame is cut short")
                break
            try:
                frame = wire.decode(line)
            except FrameError as error:
                _cut(recording, number, str(error))
                break
            if frame.type == "hello" and isinstance(frame.data, dict):
                recording.hello = frame.data
            elif frame.type in ("snapshot", "stale"):
                recording.frames.append(frame)
    return recording


def _header(name: str, first: bytes) -> dict[str, Any]:
    foreign = RecordingError(f"{name} is not a heapwatch recording")
    try:
        header = json.loads(first)
    except (ValueError, UnicodeDecodeError):
        raise foreign from None
    if not isinstance(header, dict) or header.get("heapwatch") != MAGIC:
        raise foreign
    if header.get("format") != FORMAT:
        raise RecordingError(f"{name} is a heapwatch recording of format "
                             f"{header.get('format')}, this heapwatch reads format {FORMAT}")
    return header


def _cut(recording: Recording, line: int, why: str) -> None:
    recording.truncated = True
    recording.warning = (f"{recording.path} is cut short at line {line} ({why}): "
                         f"playing its {len(recording.frames):,} whole frames")
