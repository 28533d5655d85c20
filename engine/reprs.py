"""`describe`: the one place a queued payload becomes text.

Every repr the engine hands out (heap entries, workers, retries, dead letters, returned items)
goes through `describe(value, limit, hook)`. A service that must not show its payloads (a
monitor client, a recording) passes one `item_repr` hook to the queue and the pool: the hook
sees the payload and returns the text to show, so it can redact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["ItemRepr", "describe"]

ItemRepr = Callable[[Any], str]
"""`item_repr(payload) -> str`: how a payload is shown (default: `repr`)."""


def describe(value: object, limit: int = 80, hook: ItemRepr | None = None) -> str:
    """`hook(value)` (or `repr(value)`) cut to `limit` characters with an ellipsis.

    A repr or a hook that raises is not the caller's crash: it becomes
    '<TypeName (repr failed)>'.
    """
    try:
        text = repr(value) if hook is None else str(hook(value))
    except Exception:
        text = f"<{type(value).__name__} (repr failed)>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
