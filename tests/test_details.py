"""Pilot tests of the drill-downs (issue 13, point 4): Enter or a click on a row opens its
detail, which follows the engine live; escape closes it; `w` writes it to a file, `W` every
alert with its stacks; stacks and tracebacks are selectable text."""

from __future__ import annotations

import io
from pathlib import Path

from fakes import WORKER_ERROR, WORKER_TRACEBACK, ScriptedEngine, fixed_clock
from rich.console import Console
from test_app import real_app, settle, settle_slow, wait_for
from textual.pilot import Pilot
from textual.widgets import Static, TextArea

from tui.app import HeapwatchApp
from tui.export import export_text, write_new
from tui.screens.alert_detail import AlertScreen
from tui.screens.item_detail import ItemScreen
from tui.screens.worker_detail import WorkerScreen
from tui.widgets.heap_table import HeapTable
from tui.widgets.worker_table import WorkerTable


def shown(screen: object, selector: str) -> str:
    """The text a Static of the screen shows now (its content drawn as plain text)."""
    content = screen.query_one(selector, Static).content  # type: ignore[attr-defined]
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(content)
    return console.export_text()


async def open_row(pilot: Pilot, table_type: type, row: int) -> None:
    table = pilot.app.query_one(table_type)
    table.focus()
    table.cursor_row = row
    await pilot.press("enter")
    await pilot.pause()


async def test_enter_on_a_worker_opens_it_live_with_its_error_selectable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = ScriptedEngine(workers=4)
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_row(pilot, WorkerTable, 0)  # worker 1: busy on job-101, one failure
        screen = app.screen
        assert isinstance(screen, WorkerScreen) and screen.worker.id == 1
        facts = shown(screen, "#worker-facts")
        assert "job-101" in facts and "busy" in facts and "50ms" in facts  # time on it
        assert "idle" in shown(screen, "#worker-history")
        error = screen.query_one("#worker-error", TextArea)
        assert error.read_only and "TimeoutError" in error.text
        error.select_all()
        assert error.selected_text == f"{WORKER_ERROR}\n{WORKER_TRACEBACK}"
        # Live: the producers pause (keys under a modal are its own: the engine is told) and
        # the detail follows.
        engine.toggle_producers()
        await settle(pilot)
        assert "paused" in shown(screen, "#worker-facts")
        # w writes the open detail and says where; a second w never overwrites the first.
        await pilot.press("w")
        await pilot.press("w")
        # Two files (numbered when both fall in the same second of the name's stamp).
        files = sorted(tmp_path.glob("heapwatch-worker-1-*.txt"), key=lambda f: f.stat().st_mtime_ns)
        assert len(files) == 2
        text = files[0].read_text()
        assert "worker-1 (id 1): paused" in text and "TimeoutError" in text
        assert str(files[1]) in shown(screen, "#detail-said")
        await pilot.press("escape")
        assert not isinstance(app.screen, WorkerScreen)


async def test_a_workers_detail_shows_its_tasks_stack_from_the_real_engine():
    app, engine = real_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: engine.running, "the engine's start")
        await settle(pilot)
        await open_row(pilot, WorkerTable, 0)
        screen = app.screen
        assert isinstance(screen, WorkerScreen)
        stack = screen.query_one("#worker-stack", TextArea)
        # An idle worker waits in the queue's get: its own frames, named by its task.
        assert "worker-1" in stack.text and "(" in stack.text, stack.text
        assert any(".py:" in line for line in screen.stack)
        await pilot.press("escape")


async def test_a_click_on_a_heap_row_opens_the_queued_item(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle_slow(pilot)
        heap = app.query_one(HeapTable)
        await pilot.click(HeapTable, offset=(3, 3))  # the third row: seq 3990 at priority 3
        screen = app.screen
        assert isinstance(screen, ItemScreen)
        assert screen.entry.seq == 3990 and heap.cursor_row == 2
        facts = shown(screen, "#item-facts")
        assert "queued" in facts and "aging is off" in facts and "600ms" in facts
        assert screen.query_one("#item-repr", TextArea).text == "'job-3990'"
        engine.toggle_aging()  # aging on: the effective priority now says so, live
        await settle(pilot)
        assert "aging" in shown(screen, "#item-facts") and "is off" not in shown(
            screen, "#item-facts")
        await pilot.press("w")
        (saved,) = tmp_path.glob("heapwatch-item-3990-*.txt")
        assert "priority: 3" in saved.read_text() and "'job-3990'" in saved.read_text()
        await pilot.press("escape")
        assert not isinstance(app.screen, ItemScreen)


async def test_a_real_queued_item_is_followed_until_it_is_served():
    app, engine = real_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: engine.running, "the engine's start")
        engine.pool.pause()  # nothing is served until the screen is open
        for n in range(30):
            engine.pool.submit_nowait(f"item-{n}", priority=5)
        await settle_slow(pilot)
        await open_row(pilot, HeapTable, 0)
        screen = app.screen
        assert isinstance(screen, ItemScreen) and screen.entry.job_id is not None
        assert "queued" in shown(screen, "#item-facts")
        await settle(pilot)
        assert screen.queued  # still there: followed in the engine's top of its priority
        engine.pool.resume()
        await wait_for(pilot, lambda: not screen.queued, "the item served")
        assert "no longer in view" in shown(screen, "#item-facts")


async def test_an_alert_opens_and_w_and_W_write_it_with_its_stacks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = HeapwatchApp(ScriptedEngine(), clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle_slow(pilot)
        await pilot.press("W")  # from the dashboard: every alert
        (everything,) = tmp_path.glob("heapwatch-alerts-*.txt")
        text = everything.read_text()
        assert text.count("alert #") == 3 and "task stacks:" in text
        assert all(frame in text for frame in app.snapshot.watchdog.alerts[0].stacks[0].frames)
        app.query_one("#alerts").focus()
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, AlertScreen)
        assert screen.query_one("#alert-stacks").allow_select  # mouse selection in the stacks
        await pilot.press("w")
        (one,) = tmp_path.glob(f"heapwatch-alert-{screen.alert.id}-*.txt")
        assert f"alert #{screen.alert.id}" in one.read_text()


async def test_an_export_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the current directory no longer exists
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("HEAPWATCH_STATE", str(tmp_path / "a-file" / "state.toml"))
    app = HeapwatchApp(ScriptedEngine(), clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_row(pilot, WorkerTable, 0)
        await pilot.press("w")
        said = shown(app.screen, "#detail-said").rstrip("\n")
        assert said.startswith("could not save: ") and "\n" not in said


def test_write_new_never_overwrites(tmp_path: Path):
    first = write_new(tmp_path, "x", "one")
    (tmp_path / "x-2.txt").write_text("someone else's")
    third = write_new(tmp_path, "x", "three")
    assert first.name == "x.txt" and third.name == "x-3.txt"
    assert (tmp_path / "x-2.txt").read_text() == "someone else's"
    assert export_text(object(), "y", "why", directories=[tmp_path]).endswith("y.txt")
