"""Writing what a detail screen shows to a file: never over an existing one, said in one line.

A terminal session writes under the current directory (else the state directory, when the
current one is read-only); a browser session (textual-serve) hands the text to the browser
as a download instead, since the files of the machine serving it are not the reader's.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.snapshots import Alert, StackGroup
from tui.config import state_path

MAX_NUMBER = 999
"""'name-999.txt' is the last name tried in a directory before giving up on it."""


def write_new(directory: Path, stem: str, text: str) -> Path:
    """Write `text` to `directory/stem.txt`, or `stem-2.txt`, `stem-3.txt`... whichever is
    free first; exclusive creation, so that a file appearing meanwhile is never overwritten."""
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(1, MAX_NUMBER + 1):
        path = directory / (f"{stem}.txt" if number == 1 else f"{stem}-{number}.txt")
        try:
            with path.open("x", encoding="utf-8") as file:
                file.write(text)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{directory / stem}.txt and {MAX_NUMBER - 1} numbered ones exist")


def export_text(app: Any, stem: str, text: str,
                directories: Sequence[Path] | None = None) -> str:
    """Deliver `text`; what to tell the user ('saved to ...', 'download: ...').

    Raises OSError (the last directory's) when no directory takes the file.
    """
    if getattr(app, "is_web", False):
        app.deliver_text(io.StringIO(text), save_filename=f"{stem}.txt",
                         mime_type="text/plain")
        return f"download: {stem}.txt"
    error: OSError | None = None
    for directory in directories or (Path.cwd(), state_path().parent):
        try:
            return f"saved to {write_new(directory, stem, text)}"
        except OSError as failed:
            error = failed
    assert error is not None
    raise error


def stamp(clock: Any = time.time) -> str:
    """A file-name-safe local time: '20260102-071530'."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(clock()))


def stacks_text(groups: Iterable[StackGroup], indent: str = "  ") -> list[str]:
    """Task stack groups as plain lines, innermost frame last."""
    lines: list[str] = []
    for group in groups:
        lines.append(f"{indent}{group.role} x{group.count}: {', '.join(group.task_names)}")
        lines.extend(f"{indent}  {frame}" for frame in group.frames)
        if group.awaited_by:
            lines.append(f"{indent}  awaited by {', '.join(group.awaited_by)}")
    return lines


def alert_text(alert: Alert) -> str:
    """One alert in full as plain text: its fields, its loop stack and its task stacks."""
    lines = [f"alert #{alert.id}: {alert.kind} ({'active' if alert.active else 'resolved'})",
             f"  message: {alert.message}", f"  started at: {alert.started_at:.3f} s"]
    for name in ("resolved_at", "priority", "wait", "depth", "threshold", "culprit"):
        value = getattr(alert, name, None)
        if value is not None and value != "":
            lines.append(f"  {name.replace('_', ' ')}: {value}")
    if alert.loop_stack:
        lines.append("  loop stack (innermost last):")
        lines.extend(f"    {frame}" for frame in alert.loop_stack)
    if alert.stacks:
        lines.append("  task stacks:")
        lines.extend(stacks_text(alert.stacks, indent="    "))
    return "\n".join(lines) + "\n"
