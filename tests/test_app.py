"""Pilot tests of the dashboard: the app's own behaviour on the scripted engine (tests/fakes.py),
then every key on the real Engine with a fixed seed, asserting the engine's state after it."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import ScriptedEngine, fixed_clock
from textual.pilot import Pilot

from tui.app import HeapwatchApp
from tui.screens.alert_detail import AlertScreen
from tui.screens.help import HelpScreen
from tui.widgets.event_log import new_events
from tui.widgets.heap_table import HeapTable
from tui.widgets.shutdown_panel import ShutdownPanel
from tui.widgets.stack_view import StackView
from tui.widgets.worker_table import WorkerTable


class RecordingApp(HeapwatchApp):
    """The real app, keeping a list of what it told the user."""

    def __init__(self, engine: Any, **kwargs: Any) -> None:
        super().__init__(engine, **kwargs)
        self.notices: list[tuple[str, str]] = []

    def notify(self, message: str, *, severity: str = "information", **kwargs: Any) -> None:
        self.notices.append((message, severity))
        super().notify(message, severity=severity, **kwargs)


async def settle(pilot: Pilot, refreshes: int = 1) -> None:
    """Wait for `refreshes` more snapshots to reach the panels."""
    app = pilot.app
    assert isinstance(app, HeapwatchApp)
    target = app.refreshes + refreshes
    for _ in range(200):
        await pilot.pause(0.02)
        if app.refreshes >= target:
            break
    await pilot.pause()


# --------------------------------------------------------------------------- scripted engine


async def test_mount_starts_the_engine_and_binds_the_snapshot_to_the_panels():
    engine = ScriptedEngine(workers=3)
    app = HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 2)
        assert engine.calls[0] == ("start", ())
        assert app.snapshot is not None
        assert app.query_one(WorkerTable).shown_keys == ["1", "2", "3"]
        assert app.query_one(HeapTable).shown_keys[:2] == ["4101", "4107"]
    assert ("shutdown", (None,)) in engine.calls


async def test_engine_already_running_is_not_started_again():
    engine = ScriptedEngine()
    engine.running = True
    async with HeapwatchApp(engine, clock=fixed_clock).run_test() as pilot:
        await settle(pilot)
        assert ("start", ()) not in engine.calls


async def test_worker_rows_are_keyed_and_updated_in_place():
    engine = ScriptedEngine(workers=3)
    async with HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20).run_test() as pilot:
        await settle(pilot)
        table = pilot.app.query_one(WorkerTable)
        assert str(table.get_cell("1", "state")) == "busy"
        engine.cancelled.append(1)
        engine.worker_ids.append(9)
        await settle(pilot)
        assert str(table.get_cell("1", "state")) == "cancelling"
        assert table.shown_keys == ["1", "2", "3", "9"]
        engine.worker_ids.remove(2)
        await settle(pilot)
        assert table.shown_keys == ["1", "3", "9"]
        assert table.row_count == 3


async def test_an_engine_error_is_shown_and_the_app_keeps_running():
    engine = ScriptedEngine(fail={"burst", "cycle_overflow"})
    app = RecordingApp(engine, clock=fixed_clock)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("b", "o", "p")
        await settle(pilot)
        errors = [message for message, severity in app.notices if severity == "error"]
        assert len(errors) == 2
        assert "scripted failure in burst" in errors[0]
        assert app.is_running
        assert app.snapshot is not None and app.snapshot.producers_paused


async def test_a_failing_snapshot_keeps_the_last_one_on_screen():
    engine = ScriptedEngine()
    app = RecordingApp(engine, clock=fixed_clock, refresh_hz=20)
    async with app.run_test() as pilot:
        await settle(pilot)
        shown = app.snapshot
        engine.fail.add("snapshot")
        await pilot.pause(0.2)
        assert app.snapshot is shown
        assert any("snapshot failed" in message for message, _ in app.notices)


async def test_freeze_holds_the_display_while_the_engine_moves_on():
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("f")
        assert app.frozen
        engine.burst(100)
        await pilot.pause(0.2)
        assert app.snapshot is not None and app.snapshot.queue.depth == 640
        await pilot.press("f")
        await settle(pilot)
        assert not app.frozen and app.snapshot.queue.depth == 740


async def test_cancel_takes_the_highlighted_worker_when_the_table_has_focus():
    engine = ScriptedEngine(workers=4)
    async with HeapwatchApp(engine, clock=fixed_clock).run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        assert engine.actions[-1] == ("cancel_worker", (None,))
        pilot.app.query_one(WorkerTable).focus()
        await pilot.press("down", "down", "c")
        assert engine.actions[-1] == ("cancel_worker", (3,))


async def test_selecting_an_alert_opens_its_stacks():
    engine = ScriptedEngine()
    async with HeapwatchApp(engine, clock=fixed_clock).run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        pilot.app.query_one("#alerts").focus()
        await pilot.press("enter")
        screen = pilot.app.screen
        assert isinstance(screen, AlertScreen)
        assert screen.alert.id == 3
        assert screen.query_one(StackView).stacks == screen.alert.stacks
        await pilot.press("escape")
        assert not isinstance(pilot.app.screen, AlertScreen)


async def test_help_lists_every_binding():
    async with HeapwatchApp(ScriptedEngine(), clock=fixed_clock).run_test() as pilot:
        await pilot.press("question_mark")
        assert isinstance(pilot.app.screen, HelpScreen)
        table = pilot.app.screen.query_one("#help-keys")
        keys = [str(table.get_row_at(row)[0]) for row in range(table.row_count)]
        assert keys == ["?", "q", "b", "B", "l", "c", "+", "-", "p", "a", "o", "x", "m", "f", "s"]
        await pilot.press("escape")
        assert not isinstance(pilot.app.screen, HelpScreen)


async def test_layout_pages_at_80x24_and_spreads_out_at_120x40():
    app = HeapwatchApp(ScriptedEngine(), clock=fixed_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.compact
        assert not app.query_one("#workers-panel").display or not app.query_one(
            "#workers-panel").region.height
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not app.compact
        assert app.query_one("#workers-panel").region.height > 5


async def test_s_shuts_down_and_stays_open_on_the_report():
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot, 2)
        assert app.is_running
        assert engine.calls.count(("shutdown", (None,))) == 1
        assert app.has_class("-shutdown")
        assert app.query_one(ShutdownPanel).region.height > 5
        await pilot.press("s")
        await pilot.press("q")
        await pilot.pause(0.1)
    assert app.return_code == 0
    assert engine.calls.count(("shutdown", (None,))) == 1


async def test_q_shuts_down_gracefully_and_exits_0():
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause(0.1)
    assert app.return_code == 0
    assert ("shutdown", (None,)) in engine.calls
    assert not engine.running


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"refresh_hz": 0}, "refresh_hz"), ({"burst_size": 0}, "burst_size"),
     ({"flood_size": -3}, "flood_size")],
)
def test_bad_settings_are_refused_by_name(kwargs, named):
    with pytest.raises(ValueError, match=named):
        HeapwatchApp(ScriptedEngine(), **kwargs)


def test_new_events_follow_the_overlap_of_two_windows():
    assert new_events((), ("a", "b")) == ("a", "b")
    assert new_events(("a", "b"), ("a", "b", "c")) == ("c",)
    assert new_events(("a", "b", "c"), ("b", "c", "d", "e")) == ("d", "e")
    assert new_events(("x",), ("a", "b")) == ("a", "b")
    assert new_events(("a", "b"), ("a", "b")) == ()
