"""Waiting on a real loop in tests: bounded, so a broken engine fails instead of hanging."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], object], what: str = "condition", limit: float = 5.0) -> None:
    """Let the loop run until `predicate()` holds (the limit only guards against a hang)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)
