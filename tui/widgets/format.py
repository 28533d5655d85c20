"""Small, pure formatting helpers shared by the widgets (no Textual here)."""

from __future__ import annotations

from engine.snapshots import AlertKind, WorkerState

STATE_STYLE: dict[WorkerState, str] = {
    WorkerState.IDLE: "dim",
    WorkerState.BUSY: "bold green",
    WorkerState.BACKOFF: "yellow",
    WorkerState.PAUSED: "cyan",
    WorkerState.CANCELLING: "magenta",
    WorkerState.STOPPED: "dim italic",
    WorkerState.CRASHED: "bold red",
}
"""Rich style of each worker state (the theme's semantic colours, in Rich names)."""

ALERT_STYLE: dict[AlertKind, str] = {
    AlertKind.STARVATION: "bold yellow",
    AlertKind.LOOP_BLOCKED: "bold red",
    AlertKind.DEPTH: "bold magenta",
    AlertKind.WORKER_CRASHED: "bold red",
}


def seconds(value: float | None) -> str:
    """A duration for a narrow column: '-', '850ms', '1.25s', '42s', '3m05s'."""
    if value is None:
        return "-"
    if value < 0:
        value = 0.0
    if value < 1.0:
        return f"{value * 1000:.0f}ms"
    if value < 10.0:
        return f"{value:.2f}s"
    if value < 60.0:
        return f"{value:.1f}s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes}m{rest:02d}s"


def count(value: int) -> str:
    """An integer with thousands separators."""
    return f"{value:,}"


def rate(value: float) -> str:
    """A per-second rate, short."""
    if value >= 10_000:
        return f"{value / 1000:.0f}k/s"
    if value >= 100:
        return f"{value:.0f}/s"
    return f"{value:.1f}/s"


def size(value: float) -> str:
    """Bytes, in binary units."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def priority(value: float | None) -> str:
    """A priority as people wrote it: '3', '2.5'; '-' for none."""
    if value is None:
        return "-"
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}"


def shorten(text: str, width: int) -> str:
    """Cut `text` to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
