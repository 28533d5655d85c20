"""Snapshot tests of the dashboard at 80x24, 120x40 and 200x60, on a scripted engine and a fixed
clock.

Regenerate after a deliberate change: `.venv/bin/python -m pytest tests/test_snapshots.py
--snapshot-update`, then look at the SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import pytest
from fakes import ScriptedEngine, fixed_clock
from textual.pilot import Pilot

from tui.app import HeapwatchApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40"),
         pytest.param((200, 60), id="200x60")]


def scripted_app() -> HeapwatchApp:
    return HeapwatchApp(ScriptedEngine(), clock=fixed_clock)


async def open_first_alert(pilot: Pilot) -> None:
    """Go to the alerts (a page in the compact layout), focus the table, select the first row."""
    app = pilot.app
    assert isinstance(app, HeapwatchApp)
    if app.compact:
        await pilot.press("3")  # the alerts page
    app.query_one("#alerts").focus()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, size):
    assert snap_compare(scripted_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, size):
    assert snap_compare(scripted_app(), press=["question_mark"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_alert_with_its_stacks(snap_compare, size):
    assert snap_compare(scripted_app(), press=["enter"], terminal_size=size,
                        run_before=open_first_alert)


class NoToastApp(HeapwatchApp):
    """Toasts come and go with the shutdown worker's timing, which differs between Python
    versions; the toasts themselves are tested with Pilot (tests/test_app.py)."""

    def toast(self, message: str, *, severity: str = "information", timeout: float = 4) -> None:
        pass


@pytest.mark.parametrize("size", SIZES)
def test_shutdown_report(snap_compare, size):
    # Two pauses: one for the shutdown worker to finish, one for the refresh that shows it.
    app = NoToastApp(ScriptedEngine(), clock=fixed_clock)
    assert snap_compare(app, press=["s", "y", "_"], terminal_size=size)
