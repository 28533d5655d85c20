"""Pilot tests of the dashboard: the app's own behaviour on the scripted engine (tests/fakes.py),
then every key on the real Engine with a fixed seed, asserting the engine's state after it."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fakes import ScriptedEngine, fixed_clock, many_alerts
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Label

from engine.events import EventLog
from engine.queue import PriorityQueue
from engine.snapshots import Alert, EventKind
from engine.watchdog import Watchdog
from tui.app import PAGES, HeapwatchApp
from tui.screens.alert_detail import AlertScreen, alert_facts
from tui.screens.help import HelpScreen
from tui.widgets.alert_table import MORE_ACTIVE, OLDER, AlertTable, alert_detail
from tui.widgets.event_log import INDENT, new_events
from tui.widgets.event_log import EventLog as EventLogView
from tui.widgets.format import seconds
from tui.widgets.heap_table import HeapTable
from tui.widgets.hint_bar import HintBar
from tui.widgets.history import HistoryPanel
from tui.widgets.key_bar import KeyBar
from tui.widgets.priority_table import PriorityTable
from tui.widgets.process_panel import ProcessPanel
from tui.widgets.shutdown_panel import ShutdownPanel
from tui.widgets.stack_view import StackView
from tui.widgets.summary_bar import SummaryBar
from tui.widgets.worker_table import WorkerTable


class RecordingApp(HeapwatchApp):
    """The real app, keeping a list of what it told the user."""

    def __init__(self, engine: Any, **kwargs: Any) -> None:
        super().__init__(engine, **kwargs)
        self.notices: list[tuple[str, str]] = []

    def notify(self, message: str, *, severity: str = "information", **kwargs: Any) -> None:
        self.notices.append((message, severity))
        super().notify(message, severity=severity, **kwargs)


async def settle_slow(pilot: Pilot, refreshes: int = 1) -> None:
    """Wait for `refreshes` more snapshots to reach the slow panels (alerts, events...)."""
    app = pilot.app
    assert isinstance(app, HeapwatchApp)
    target = app.slow_refreshes + refreshes
    for _ in range(300):
        await pilot.pause(0.02)
        if app.slow_refreshes >= target:
            break
    await pilot.pause()


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
        heap = app.query_one(HeapTable)
        assert [heap.get_cell(key, "seq") for key in heap.shown_keys[:2]] == ["4101", "4107"]
    assert ("shutdown", (None,)) in engine.calls


async def test_engine_already_running_is_not_started_again():
    engine = ScriptedEngine()
    engine.running = True
    async with HeapwatchApp(engine, clock=fixed_clock).run_test() as pilot:
        await settle(pilot)
        assert ("start", ()) not in engine.calls


async def test_what_the_summary_can_be_checked_against_follows_every_refresh():
    engine = ScriptedEngine(depth=640, alerts=False)
    app = HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle_slow(pilot)
        history = app.query_one(HistoryPanel)
        slow_before, samples_before = app.slow_refreshes, list(history.depths)
        engine.depth = 777  # no key: the next slow refresh is 3 s away
        engine.events.append("worker-2 died: ValueError('x'); worker-5 replaces it")
        engine.with_alerts = True  # alerts raised, with the stacks the watchdog took for them
        await settle(pilot, 2)
        assert app.slow_refreshes == slow_before, "a slow refresh came: the test shows nothing"
        label = str(history.query_one("#depth-label", Label).render())
        assert label.startswith("depth 777"), label
        priorities = app.query_one(PriorityTable)
        shown = [int(priorities.get_cell(key, "depth")) for key in priorities.shown_keys]
        assert shown == [round(777 * share) for share in (0.05, 0.15, 0.3, 0.5)]
        assert list(history.depths) == samples_before  # the trend keeps its pace
        log = app.query_one(EventLogView)  # told when the alerts and workers panels show it
        assert any("worker-5 replaces it" in line for line in log.lines), list(log.lines)
        assert app.query_one(AlertTable).shown_keys
        assert app.query_one("#stacks", StackView).stacks == app.snapshot.watchdog.stacks != ()


def test_a_depth_alerts_row_and_detail_give_the_depth_it_crossed_in_items():
    queue = PriorityQueue(maxsize=2_000)
    alerts: list[Alert] = []
    watchdog = Watchdog(queue, loop_block_ms=None, depth_ratio=0.9, on_alert=alerts.append)
    for index in range(1_970):
        queue.put_nowait(index)
    watchdog.sample()
    [alert] = alerts
    assert alert_detail(alert) == "depth 1,970 > 1,800"
    assert alert.message == "queue depth 1,970 is over 90% of maxsize 2,000"
    facts = Console(width=80, record=True)
    facts.print(alert_facts(alert))
    assert re.search(r"threshold +1,800 items", facts.export_text())


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


def event_lines(app: HeapwatchApp) -> list[str]:
    """What the event log shows, one entry per event (wrapped lines joined again)."""
    entries: list[str] = []
    for line in map(str, app.query_one(EventLogView).lines):
        if entries and line.startswith(INDENT):
            entries[-1] += " " + line.strip()
        else:
            entries.append(line)
    return entries


async def test_an_engine_error_goes_to_the_event_log_and_the_hint_line_not_a_toast():
    engine = ScriptedEngine(fail={"burst", "cycle_overflow"})
    app = RecordingApp(engine, clock=fixed_clock)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("b", "o", "p")
        await settle(pilot)
        errors = [line for line in event_lines(app) if "failed" in line]
        assert len(errors) == 2
        assert "scripted failure in burst" in errors[0]
        assert "scripted failure in cycle_overflow" in app.query_one(HintBar).error
        assert not [notice for notice in app.notices if notice[1] == "error"]
        # The one toast is the result of the key that worked.
        assert [message for message, _ in app.notices] == ["producers paused"]
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
        failures = [line for line in event_lines(app) if "snapshot failed" in line]
        assert len(failures) == 1  # once, not once per tick
        engine.fail.discard("snapshot")
        engine.depth += 1
        await settle(pilot)
        assert app.snapshot.queue.depth == shown.queue.depth + 1


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
        assert keys == ["?", "^p", "q", "^c", "b", "B", "l", "c", "+", "-", "p", "a", "o", "x", "m", "t", "f",
                        "z", "s", "r", "/", "S", "W", "tab / shift+tab", "↑ ↓  j k",
                        "enter / click", "escape", "^q"]
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


async def test_lines_written_while_the_event_log_is_hidden_wrap_when_it_is_shown():
    app = HeapwatchApp(ScriptedEngine(), clock=fixed_clock)
    long = " ".join(f"word{n}" for n in range(15))  # 104 columns with the time and mark
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        log = app.query_one(EventLogView)
        assert not log.region.width  # page 1: the event log is on another page
        log.note(long)
        await pilot.press("4")
        await pilot.pause()

        def rows() -> list[str]:
            return [line for line in log.lines if "word" in line]

        assert len(rows()) == 2 and all(len(row) < log.region.width for row in rows())
        await pilot.resize_terminal(120, 40)  # wide enough for it: one row again
        await pilot.pause()
        assert len(rows()) == 1 and len(rows()[0]) < log.region.width


async def test_s_shuts_down_and_stays_open_on_the_report():
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("s", "y")
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


def test_new_events_are_those_past_the_last_seq_seen():
    log = EventLog(clock=fixed_clock)
    for text in "abcde":
        log.emit(EventKind.NOTE, text)
    window = log.recent(3)  # c, d, e: a and b fell out of the window
    assert [event.message for event in new_events(window, 0)] == ["c", "d", "e"]
    assert [event.message for event in new_events(window, 3)] == ["d", "e"]
    assert new_events(window, 5) == ()


# --------------------------------------------------------------------------- the real Engine


def pilot_scenario():
    """A quiet, seeded scenario: no steady producers, so every change comes from a key."""
    from engine.scenario import (
        HandlerSettings,
        Latency,
        PoolSettings,
        Producer,
        QueueSettings,
        Scenario,
        WatchdogSettings,
    )

    return Scenario(
        name="pilot",
        seed=11,
        queue=QueueSettings(maxsize=5_000),
        pool=PoolSettings(workers=2, drain_timeout=0.5, backoff_base=0.05),
        handler=HandlerSettings(latency=Latency(mean_ms=20, p99_ms=60)),
        producers=(Producer(name="t", rate=0.0, priorities=((0, 1.0), (5, 1.0), (9, 1.0))),),
        watchdog=WatchdogSettings(interval=0.1, loop_block_ms=100),
    )


def real_app() -> tuple[RecordingApp, Any]:
    from engine.runtime import Engine

    engine = Engine(pilot_scenario())
    app = RecordingApp(engine, clock=engine.clock, refresh_hz=20, burst_size=40, flood_size=300)
    return app, engine


async def wait_for(pilot: Pilot, condition: Any, what: str, limit: float = 20.0) -> None:
    """Let the app run until `condition()` holds (the limit, in seconds of a loaded machine,
    only guards against a hang: it is not a timing assertion)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        await pilot.pause(0.02)


async def test_every_control_key_changes_the_real_engine():
    app, engine = real_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert engine.running
        submitted = engine.pool.accounting().submitted

        await pilot.press("b")
        assert engine.pool.accounting().submitted == submitted + 40
        assert len(engine.queue.stats().per_priority) > 1  # mixed priorities

        await pilot.press("B")
        assert engine.pool.accounting().submitted == submitted + 40 + 400

        low_before = engine.queue.depth_by_priority().get(9, 0)
        await pilot.press("l")
        assert engine.pool.accounting().submitted == submitted + 440 + 300
        assert engine.queue.depth_by_priority()[9] >= low_before + 300 - 2 * 20

        workers = len(engine.pool.snapshot().workers)
        await pilot.press("plus")
        assert len([w for w in engine.pool.snapshot().workers if w.state != "stopped"]) == (
            workers + 1)

        await pilot.press("minus")
        await wait_for(pilot, lambda: len([
            w for w in engine.pool.snapshot().workers if w.state != "stopped"]) == workers,
            "a worker stopped after -")

        await pilot.press("p")
        assert engine.load.paused and app.snapshot is not None
        await pilot.press("p")
        assert not engine.load.paused

        await pilot.press("a")
        assert engine.queue.aging_rate > 0
        await pilot.press("a")
        assert engine.queue.aging_rate == 0

        await pilot.press("o")
        assert engine.queue.overflow == "reject"
        await pilot.press("o", "o")
        assert engine.queue.overflow == "block"

        await wait_for(pilot, lambda: engine.pool.busiest_worker() is not None, "a busy worker")
        table = app.query_one(WorkerTable)
        table.focus()
        await settle(pilot)
        chosen = table.selected_worker_id
        await pilot.press("c")
        assert engine.cancelled_workers == 1
        assert (f"worker-{chosen} cancelled; its item goes back to the queue. The pool is one"
                " worker smaller: + adds one", "information") in app.notices

        await pilot.press("m")
        await wait_for(pilot, lambda: app.snapshot.watchdog.memory is not None,
                       "a memory profile in the snapshot")
        profile = app.snapshot.watchdog.memory
        assert profile.bytes_per_item > 0 and profile.top_sites
        await settle(pilot, 2)
        assert profile.top_sites[0].where in str(app.query_one(ProcessPanel).render())

        await pilot.press("x")
        assert "blocks the loop for 0.5 s" in [  # alerts are events too: the last note
            event for event in engine.snapshot().events if event.kind is EventKind.NOTE][-1].message
        await wait_for(pilot, lambda: any(
            alert.kind == "loop-blocked" and "load.py" in (alert.culprit or "")
            for alert in engine.watchdog.snapshot().alerts),
            "a loop-blocked alert naming the handler")
        assert engine.handler.block_next is None

        await pilot.press("t")
        stacks = engine.watchdog.snapshot().stacks
        assert any(group.role == "worker" for group in stacks)
        # The UI's own tasks are left out: every other task shown is one of the engine's.
        assert all(name.startswith(("producer-", "heapwatch-"))
                   for group in stacks if group.role == "other" for name in group.task_names)
        assert sum(g.count for g in stacks if g.role == "worker") == len(
            [w for w in engine.pool.snapshot().workers if w.state not in ("stopped", "crashed")])

        await pilot.press("f")
        frozen_at = app.snapshot.at
        completed = engine.pool.accounting().completed
        await wait_for(pilot, lambda: engine.pool.accounting().completed > completed + 5,
                       "the engine to keep working while frozen")
        assert app.snapshot.at == frozen_at
        await pilot.press("f")
        await settle(pilot)
        assert app.snapshot.at > frozen_at

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not [notice for notice in app.notices if notice[1] == "error"]
        crashed = [w.name for w in engine.pool.snapshot().workers if w.state == "crashed"]
        assert not crashed, f"workers crashed during the key presses: {crashed}"


async def test_s_drains_the_real_engine_and_shows_the_report():
    app, engine = real_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("B")
        await pilot.press("x")
        await wait_for(pilot, lambda: engine.watchdog.snapshot().alerts, "an alert")
        await pilot.press("s", "y")
        await wait_for(pilot, lambda: engine.pool.snapshot().report is not None, "the report")
        await settle(pilot, 2)
        assert app.is_running and not engine.running
        report = engine.pool.snapshot().report
        assert report.accounting.lost == 0 and report.accounting.duplicated == 0
        assert app.snapshot.pool.report == report
        assert app.query_one(ShutdownPanel).region.height > 5
        # The panels stay true after the stop: stopped workers are not counted as workers,
        # and alert times stay where they happened while the app stays open.
        assert "workers 0/0" in str(app.query_one(SummaryBar).render())
        alerts = app.query_one(AlertTable)
        shown = {key: str(alerts.get_cell(key, "at")) for key in alerts.shown_keys}
        assert shown
        for alert in app.snapshot.watchdog.alerts:  # times into the run, not clock readings
            offset = alert.started_at - app.snapshot.started_at
            assert 0 <= offset <= app.snapshot.at
            assert shown[str(alert.id)] == f"t+{seconds(offset)}"
        await pilot.pause(0.6)
        await settle(pilot, 2)
        assert {key: str(alerts.get_cell(key, "at")) for key in alerts.shown_keys} == shown
        await pilot.press("q")
    assert app.return_code == 0


async def test_q_shuts_the_real_engine_down_and_exits_0():
    app, engine = real_app()
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("b")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_code == 0
    assert not engine.running and not engine.shutting_down
    assert engine.pool.snapshot().report.accounting.lost == 0


async def test_a_key_reaches_the_slow_panels_at_the_next_refresh():
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20)  # slow panels every 8th tick
    async with app.run_test() as pilot:
        await settle(pilot, 2)
        await pilot.press("b")
        await settle(pilot)
        assert app.slow_snapshot is not None
        assert app.slow_snapshot.events[-1].message == "burst of 200"
        assert app.slow_snapshot.queue.depth == 840


def test_trend_line_scales_to_the_peak_and_keeps_the_newest_samples():
    from tui.widgets.trend import trend_line

    assert trend_line([0, 5, 10], 3) == "▁▅█"
    assert trend_line([10, 0, 5, 10], 2) == "▅█"
    assert trend_line([0, 0], 5) == "▁▁"
    assert trend_line([], 4) == ""


async def test_s_in_the_compact_layout_turns_to_the_shutdown_page():
    app = HeapwatchApp(ScriptedEngine(), clock=fixed_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.compact and app.query_one("#pages").active == "queue"
        await pilot.press("s", "y")
        await settle(pilot, 2)
        assert app.query_one("#pages").active == "shutdown"
        assert app.query_one(ShutdownPanel).region.height > 5


# --------------------------------------------------------------------------- issue 12, by point

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40"),
         pytest.param((200, 60), id="200x60")]


def toasts(app: HeapwatchApp) -> list[Any]:
    """The toasts on screen now."""
    return list(app.screen.query("Toast"))


def summary_text(app: HeapwatchApp) -> str:
    return str(app.query_one(SummaryBar).render())


async def show_page(pilot: Pilot, page: str) -> None:
    app = pilot.app
    assert isinstance(app, HeapwatchApp)
    if app.compact:
        await pilot.press(str(PAGES.index(page) + 1))
        await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
async def test_1_alerts_are_never_toasts_and_a_key_shows_one_toast_at_a_time(size):
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20)
    async with app.run_test(size=size, notifications=True) as pilot:
        await settle(pilot, 2)
        engine.alert_list = many_alerts(active=3, resolved=2)  # three alerts appear
        await settle(pilot, 3)
        assert not toasts(app)
        await pilot.press("b", "l", "a")
        await pilot.pause(0.1)
        assert len(toasts(app)) == 1  # a newer replaces an older
        # The shutdown's result arrives while the help is open: no toast over a modal.
        await pilot.press("s", "y", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await wait_for(pilot, lambda: engine.report is not None, "the shutdown")
        await pilot.pause(0.1)
        assert not toasts(app)


@pytest.mark.parametrize("size", SIZES)
async def test_1_active_alerts_come_first_and_the_ones_that_do_not_fit_are_counted(size):
    engine = ScriptedEngine()
    engine.alert_list = many_alerts(active=40, resolved=5)
    app = HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, 2)
        await show_page(pilot, "alerts")
        await settle_slow(pilot, 2)
        table = app.query_one(AlertTable)
        keys = table.shown_keys
        assert keys[-1] == MORE_ACTIVE and len(keys) == table.size.height - 1
        shown = [int(key) for key in keys[:-1]]
        assert shown == sorted(shown, reverse=True)  # newest first
        assert all(table.alert(key).active for key in shown)
        assert str(table.get_cell(MORE_ACTIVE, "detail")) == f"+{40 - len(shown)} more active"
        assert "⚠ 40 alerts" in summary_text(app)
        # Fewer active than rows: all of them, then the resolved ones, the rest collapsed.
        engine.alert_list = many_alerts(active=2, resolved=60)
        await settle_slow(pilot, 2)
        keys = table.shown_keys
        assert [table.alert(int(key)).active for key in keys[:2]] == [True, True]
        assert keys[-1] == OLDER and not table.alert(int(keys[2])).active
        assert "⚠ 2 alerts" in summary_text(app)


@pytest.mark.parametrize("size", SIZES)
async def test_2_the_summary_leads_with_state_words_at_every_size(size):
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        await pilot.press("f")
        line = summary_text(app)
        words = ["FROZEN", "PAUSED", "⚠ 2 alerts"]
        assert all(word in line for word in words), line
        assert [line.index(word) for word in words] == sorted(line.index(w) for w in words)
        assert "up 12.5s held" in line or size[0] < 120  # the figures give way first
        assert app.has_class("-frozen")  # every panel's frame changes
        await pilot.press("f", "s", "y")
        await settle(pilot, 3)
        line = summary_text(app)
        assert line.index("STOPPED") < line.index("PAUSED") < line.index("⚠")
        assert len(line) <= size[0]


@pytest.mark.parametrize("size", SIZES)
async def test_3_the_layout_grows_with_the_terminal_and_the_footer_fits(size):
    app = HeapwatchApp(ScriptedEngine(), clock=fixed_clock, refresh_hz=20)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, 2)
        footer = str(app.query_one(KeyBar).render())
        assert len(footer) <= size[0] - 2
        assert all(word in footer for word in ("? Help", "q Quit", "b Burst", "f Freeze",
                                               "s Stop"))
        events = app.query_one("#events-panel")
        if size == (80, 24):
            assert app.compact
            await pilot.press("4")
            assert app.query_one("#pages").active == "more" and events.region.height > 3
            await pilot.press("3")
            assert app.query_one("#pages").active == "alerts"
        else:
            assert not app.compact
            assert events.region.width >= size[0] - 2
            app.engine.events.append("a long story " * 20)
            await settle_slow(pilot)
            log = app.query_one(EventLogView)
            assert log.line_count >= 3 and any("a long story" in line for line in log.lines)
            # Wrapped: every line reads without a sideways scroll.
            assert max(len(line) for line in log.lines) <= log.scrollable_content_region.width
            workers = app.query_one("#workers-panel")
            assert workers.region.height <= 4 + 3  # as tall as its rows, not more
            assert app.has_class("-wide") == (size == (200, 60))
        table = app.query_one(WorkerTable)
        await show_page(pilot, "workers")
        table.focus()
        await pilot.press("z")
        assert app.screen.maximized is not None and table in (
            app.screen.maximized, *app.screen.maximized.query(WorkerTable))
        await pilot.press("question_mark")
        await pilot.press("escape")  # the modal first
        assert not isinstance(app.screen, HelpScreen) and app.screen.maximized is not None
        await pilot.press("escape")  # then the maximised panel
        assert app.screen.maximized is None


async def test_4_the_hint_line_says_what_to_do_only_when_the_source_can():
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 2)
        hint = app.query_one(HintBar)
        assert hint.hint == "priority 9 is starving: press a to turn on aging"
        await pilot.press("a")
        await settle(pilot, 2)
        assert "press a" not in hint.hint
    read_only = ScriptedEngine()
    read_only.read_only = True
    app = HeapwatchApp(read_only, clock=fixed_clock, refresh_hz=20)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 2)
        assert "press a" not in app.query_one(HintBar).hint
        await pilot.press("a", "b")
        assert not read_only.actions[1:]  # disabled keys never reach the source


def test_5_durations_have_no_rounding_edges_and_costs_are_in_microseconds():
    from tui.widgets.format import micros

    assert [seconds(v) for v in (0.9994, 0.9996, 9.994, 9.996, 59.96, 61.0)] == [
        "999ms", "1.00s", "9.99s", "10.0s", "1m00s", "1m01s"]
    assert micros(0.000042) == "42µs" and micros(0.0013) == "1.3ms"


async def test_5_per_priority_leads_with_the_oldest_wait_and_says_served():
    app = HeapwatchApp(ScriptedEngine(), clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, 2)
        table = app.query_one("#priorities")
        labels = [label for _, label in table.COLUMNS]
        assert labels.index("oldest") < labels.index("srv50") < labels.index("srv99")
        assert str(table.get_cell(9, "oldest")) == "3.25s"
        workers = [label for _, label in app.query_one(WorkerTable).COLUMNS]
        assert "retry" not in workers and "gave up" in workers
        await pilot.press("m")
        await settle_slow(pilot, 2)
        process = str(app.query_one(ProcessPanel).render())
        assert "watchdog 400µs" in process and "Little's law" in process
        assert "72 B/item" in process and "engine/queue.py:201" in process
        # All of it in view at 120x40: nothing to scroll to, no line cut short.
        panel = app.query_one("#process-panel")
        assert panel.max_scroll_y == 0
        width = app.query_one(ProcessPanel).size.width
        assert max(len(line) for line in process.splitlines()) <= width


@pytest.mark.parametrize("size", SIZES)
async def test_7_after_a_shutdown_the_keys_that_no_longer_apply_are_disabled(size):
    engine = ScriptedEngine()
    app = HeapwatchApp(engine, clock=fixed_clock, refresh_hz=20)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert app.check_action("burst", ()) is True
        assert app.check_action("restart", ()) is False  # nothing to restart yet
        await pilot.press("s", "y")
        await settle(pilot, 3)
        assert app.check_action("burst", ()) is None  # disabled, shown so
        assert app.check_action("help", ()) is True
        calls = len(engine.actions)
        await pilot.press("b", "l", "o", "plus")
        await settle(pilot)
        assert len(engine.actions) == calls
        assert "b Burst" in str(app.query_one(KeyBar).render()) or size[0] < 120
        # A scripted engine cannot restart: `r` stays off.
        assert app.check_action("restart", ()) is False
        assert "press q to quit" in app.query_one(HintBar).hint


async def test_7_r_runs_a_fresh_engine_and_each_run_is_handed_over_when_it_stops():
    from engine.runtime import Engine

    stopped: list[tuple[Any, int]] = []
    first = Engine(pilot_scenario())
    app = RecordingApp(first, clock=first.clock, refresh_hz=20,
                       on_run_stopped=lambda source, run: stopped.append((source, run)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("b", "s", "y")
        await wait_for(pilot, lambda: stopped, "the first run to stop")
        await settle(pilot, 2)
        assert stopped == [(first, 1)] and first.report()["lost"] == 0
        assert app.check_action("restart", ()) is True
        assert app.check_action("burst", ()) is None
        await pilot.press("r")
        await wait_for(pilot, lambda: app.engine is not first and app.engine.running,
                       "a fresh engine")
        second = app.engine
        assert second.scenario == first.scenario and app.run_number == 2
        await settle(pilot, 2)
        assert app.check_action("burst", ()) is True and not app.has_class("-shutdown")
        await pilot.press("b")
        assert second.pool.accounting().submitted >= 40
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, "the app to exit")
    assert stopped == [(first, 1), (second, 2)]


async def test_6_the_viewer_is_never_blamed_and_a_blocking_handler_still_is():
    app, engine = real_app()

    def render_slowly() -> None:  # the dashboard's own work holding the loop
        time.sleep(0.3)

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.set_timer(0.05, render_slowly)
        await wait_for(pilot, lambda: engine.watchdog.snapshot().viewer_stalls >= 1,
                       "a viewer stall")
        assert not [alert for alert in engine.watchdog.snapshot().alerts
                    if alert.kind == "loop-blocked"]
        await wait_for(pilot, lambda: any("viewer stall" in line and "render_slowly" in line
                                          for line in event_lines(app)),
                       "the stall, and what held the loop, in the event log")
        assert re.search(r"viewer +\d+ stalls?", str(app.query_one(ProcessPanel).render()))
        await pilot.press("x", "b")  # the next handler call blocks: a burst makes one
        await wait_for(pilot, lambda: any(
            alert.kind == "loop-blocked" and "load.py" in (alert.culprit or "")
            for alert in engine.watchdog.snapshot().alerts), "the handler's block")
