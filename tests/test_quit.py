"""Quitting the dashboard (issue 13, point 5): q drains with a countdown and exits, q again or
ctrl+c cuts the drain short (the leftovers spilled, never lost), ctrl+c copies a selection,
s asks first (for a service over attach --control too), c says the pool shrank."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fakes import ScriptedEngine, fixed_clock
from test_monitor_helpers import service, short_monitor_dir
from textual.selection import Selection
from textual.widgets import Static
from waiting import until

from engine.scenario import (
    HandlerSettings,
    Latency,
    PoolSettings,
    Producer,
    QueueSettings,
    Scenario,
)
from tui.app import HeapwatchApp
from tui.cli import write_outputs
from tui.remote import RemoteSource
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.widgets.hint_bar import HintBar
from tui.widgets.shutdown_panel import ShutdownPanel


def slow_scenario(drain_timeout: float) -> Scenario:
    """One slow worker and no producers: a burst takes far longer to drain than to queue."""
    return Scenario(
        name="slow", seed=3, queue=QueueSettings(maxsize=0),
        pool=PoolSettings(workers=1, drain_timeout=drain_timeout),
        handler=HandlerSettings(latency=Latency(mean_ms=200, p99_ms=300)),
        producers=(Producer(name="t", rate=0.0, priorities=((1, 1.0), (8, 1.0))),),
    )


def slow_app(drain_timeout: float, **kwargs: Any) -> tuple[HeapwatchApp, Any]:
    from engine.runtime import Engine

    engine = Engine(slow_scenario(drain_timeout))
    return HeapwatchApp(engine, clock=engine.clock, refresh_hz=20, burst_size=30,
                        **kwargs), engine


def countdown(app: HeapwatchApp) -> float | None:
    """The seconds of the drain left that the shutdown panel shows, None when it shows none
    (the cancelling phase that follows a missed deadline counts down too: not this)."""
    found = re.search(r"draining .*?(\d+(?:\.\d+)?)(ms|s) left", panel_text(app))
    if found is None:
        return None
    value = float(found.group(1))
    return value / 1000 if found.group(2) == "ms" else value


def panel_text(app: HeapwatchApp) -> str:
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(app.query_one(ShutdownPanel).render())
    return console.export_text()


async def test_q_counts_the_drain_down_then_exits_0() -> None:
    app, engine = slow_app(drain_timeout=4.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: engine.running and app.snapshot is not None, "the engine")
        await pilot.press("b")
        await pilot.press("q")
        await until(lambda: countdown_of(app) is not None, "the countdown on screen")
        first = countdown_of(app)
        assert first is not None and 0 < first <= 4.0
        await until(lambda: (countdown_of(app) or first) < first - 0.3, "the countdown moving")
        assert "ctrl+c again cuts the drain short" in panel_text(app)
        assert "q again cuts the drain short" in str(app.query_one(HintBar).hint)
        await until(lambda: not app.is_running, "the exit", limit=4.0 + 3)
    assert app.return_code == 0
    report = engine.pool.snapshot().report
    assert report.deadline_hit and not report.cut_short  # 30 items of 200 ms: no 4 s drain
    assert report.accounting.lost == 0 and report.accounting.returned > 0


def countdown_of(app: HeapwatchApp) -> float | None:
    return countdown(app) if app.is_running else None


@pytest.mark.parametrize("again", ["q", "ctrl+c"])
async def test_q_then_q_or_ctrl_c_cuts_the_drain_short_and_spills_the_rest(
        again: str, tmp_path: Path) -> None:
    report_path, spill_path = tmp_path / "run.json", tmp_path / "left.jsonl"
    written: list[Any] = []

    def stopped(source: Any, run: int) -> None:
        written.append(write_outputs(source, report_path, spill_path))

    app, engine = slow_app(drain_timeout=60.0, on_run_stopped=stopped)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: engine.running and app.snapshot is not None, "the engine")
        await pilot.press("b", "q")
        await until(lambda: countdown_of(app) is not None, "the drain under way")
        await pilot.press(again)
        await until(lambda: not app.is_running, "the exit", limit=10)  # not the 60 s drain
    assert app.return_code == 0
    notes, errors = written[0]
    assert not errors
    report = json.loads(report_path.read_text())
    assert report["shutdown"]["cut_short"] and report["lost"] == 0
    spilled = [json.loads(line) for line in spill_path.read_text().splitlines()]
    assert len(spilled) == report["remaining"] > 0


async def test_q_q_pressed_at_once_still_cuts_the_drain_short() -> None:
    app, engine = slow_app(drain_timeout=60.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: engine.running and app.snapshot is not None, "the engine")
        await pilot.press("b", "q", "q")
        await until(lambda: not app.is_running, "the exit", limit=10)  # not the 60 s drain
    report = engine.pool.snapshot().report
    assert report.cut_short and report.accounting.lost == 0 and report.accounting.returned > 0


async def test_ctrl_c_with_nothing_selected_quits_like_q() -> None:
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test() as pilot:
        await until(lambda: app.snapshot is not None, "a snapshot")
        await pilot.press("ctrl+c")
        await until(lambda: not app.is_running, "the exit")
    assert app.return_code == 0
    assert ("shutdown", (None,)) in engine.calls and not engine.running


async def test_ctrl_c_copies_the_selected_text_and_goes_on() -> None:
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.snapshot is not None, "a snapshot")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query(Static).first()
        app.screen.selections = {text: Selection(None, None)}  # what a mouse drag leaves
        selected = app.screen.get_selected_text()
        assert selected
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.clipboard == selected
        assert app.is_running and ("shutdown", (None,)) not in engine.calls


async def test_s_asks_first_n_keeps_running_y_shuts_down() -> None:
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.snapshot is not None, "a snapshot")
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Shut down gracefully?" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ConfirmScreen)
        assert engine.running and ("shutdown", (None,)) not in engine.calls
        await pilot.press("s", "escape")
        await pilot.pause(0.1)
        assert engine.running and ("shutdown", (None,)) not in engine.calls
        await pilot.press("s", "y")
        await until(lambda: engine.report is not None, "the shutdown")
        assert app.is_running  # s stays open on the report
        await pilot.press("q")
        await until(lambda: not app.is_running, "the exit")
    assert engine.calls.count(("shutdown", (None,))) == 1


@pytest.fixture
def monitor_dir(monkeypatch):
    yield from short_monitor_dir(monkeypatch)


async def test_s_on_a_service_with_control_asks_the_same_question(monitor_dir) -> None:
    with service(monitor_dir, "--control") as svc:
        source = RemoteSource(svc.address, control=True)
        await source.start()
        app = HeapwatchApp(source)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None and app.refreshes > 1, "refreshes")
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)
            question = str(app.screen.query_one("#confirm-question").render())
            assert question.startswith("Shut down the service at ")
            await pilot.press("n")
            await pilot.pause(0.3)
            assert not source.snapshot().pool.shutdown_started
            await pilot.press("s", "y")
            await until(lambda: source.snapshot().pool.shutdown_started, "the service drains",
                        limit=10)
            assert source.state != "detached"  # the view stays attached
            await pilot.press("q")
            await until(lambda: source.state == "detached", "detached")
        assert svc.proc.poll() is None or svc.proc.returncode == 0
