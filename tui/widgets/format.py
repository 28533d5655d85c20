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
    """A duration for a narrow column: '-', '850ms', '1.25s', '42.0s', '3m05s'.

    Each unit is chosen after rounding, so no reading sits on a unit's edge ('1000ms',
    '10.00s', '60.0s' read as '1.00s', '10.0s', '1m00s').
    """
    if value is None:
        return "-"
    if value < 0:
        value = 0.0
    if round(value * 1000) < 1000:
        return f"{value * 1000:.0f}ms"
    if round(value, 2) < 10.0:
        return f"{value:.2f}s"
    if round(value, 1) < 60.0:
        return f"{value:.1f}s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}m{rest:02d}s"


def micros(value: float | None) -> str:
    """A short cost in microseconds below a millisecond: '42us', '1.3ms', '-'."""
    if value is None:
        return "-"
    if round(value * 1e6) < 1000:
        return f"{max(value, 0.0) * 1e6:.0f}\u00b5s"
    return f"{value * 1000:.1f}ms" if value < 0.1 else seconds(value)


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


_UNITS = (("µs", 1e-6), ("us", 1e-6), ("ms", 1e-3), ("s", 1.0))


def sort_value(text: str) -> tuple[int, float, str]:
    """How a cell sorts: numbers, counts ('1,204') and durations ('850ms', '3m05s', 't+1.2s',
    '2 in 1.25s': its leading count) by value, before plain text (by its lower case)."""
    word = text.strip().removeprefix("t+").split(" ", 1)[0].replace(",", "")
    minutes, sep, rest = word.partition("m")
    if sep and minutes.isdigit() and rest.endswith("s") and rest[:-1].isdigit():
        return (0, int(minutes) * 60 + int(rest[:-1]), "")
    for unit, scale in _UNITS:
        if word.endswith(unit):  # in _UNITS order, so 'ms' is tried before 's'
            word, factor = word[: -len(unit)], scale
            break
    else:
        factor = 1.0
    try:
        return (0, float(word) * factor, "")
    except ValueError:
        return (1, 0.0, text.lower())
