"""Suite-wide fixtures."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test reads or writes the developer's own config or state (subprocesses inherit it)."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("HEAPWATCH_CONFIG", str(Path(home) / "config.toml"))
    monkeypatch.setenv("HEAPWATCH_STATE", str(Path(home) / "state.toml"))


def _eager_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_task_factory(asyncio.eager_task_factory)
    return loop


# The modules that drive the real app: Textual's `App.run` sets asyncio's eager task factory
# (3.12+), and `run_test()` does not, so these run under it as the dashboard does; and
# test_eager, the engine's own checks under it. The rest run under asyncio's default, as a
# library user's service does. HEAPWATCH_TEST_EAGER=all runs every module eagerly.
_EAGER_MODULES = {
    "test_eager", "test_app", "test_app_keymash", "test_config_wiring", "test_details",
    "test_monitor_attach", "test_monitor_dashboard", "test_monitor_own_runs", "test_navigation",
    "test_quit", "test_redis_dashboard",
}
_EAGER_ALL = os.environ.get("HEAPWATCH_TEST_EAGER") == "all"


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item):
    eager = hasattr(asyncio, "eager_task_factory") and (
        _EAGER_ALL or item.module.__name__.rsplit(".", 1)[-1] in _EAGER_MODULES
    )
    return {"eager": _eager_loop} if eager else {"default": asyncio.new_event_loop}
