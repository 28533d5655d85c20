"""Suite-wide fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test reads or writes the developer's own config or state (subprocesses inherit it)."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("HEAPWATCH_CONFIG", str(Path(home) / "config.toml"))
    monkeypatch.setenv("HEAPWATCH_STATE", str(Path(home) / "state.toml"))
