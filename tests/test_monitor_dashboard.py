"""The real dashboard on a real service (a subprocess) and on a recording, under Pilot: what the
summary bar says (mode, age, STALE, DISCONNECTED), the reconnect, the keys a source cannot use,
control, and the replay keys with the scrubber."""

from __future__ import annotations

import contextlib

import pytest
from test_monitor_helpers import recording_with_an_alert, service, short_monitor_dir
from waiting import until

from engine.recording import load_recording
from tui.app import HeapwatchApp
from tui.palette import HeapwatchCommands
from tui.remote import RemoteSource, ReplaySource
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.widgets.event_log import EventLog
from tui.widgets.hint_bar import HintBar
from tui.widgets.key_bar import KeyBar
from tui.widgets.scrubber import Scrubber, scrubber_line
from tui.widgets.summary_bar import SummaryBar


@pytest.fixture
def monitor_dir(monkeypatch):
    yield from short_monitor_dir(monkeypatch)


def summary(app: HeapwatchApp) -> str:
    return app.part(SummaryBar).render().plain


def events(app: HeapwatchApp) -> str:
    return "\n".join(app.part(EventLog).lines)


def footer(app: HeapwatchApp) -> str:
    return app.part(KeyBar).render().plain


def palette_actions(app: HeapwatchApp) -> set[str]:
    return {action for _, _, action in HeapwatchCommands(app.screen)._entries()}


async def test_stale_while_blocked_disconnected_when_gone_and_back_when_it_returns(monitor_dir):
    first = service(monitor_dir, "--name", "orders")
    svc = first.__enter__()
    source = RemoteSource("orders")
    await source.start()
    app = HeapwatchApp(source, refresh_hz=5)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: f"orders at {svc.address}" in summary(app), "the endpoint")
            assert "read-only" in summary(app) and "s old" in summary(app)
            svc.send("sleep 1.0")
            await until(lambda: "STALE: loop blocked" in summary(app), "stale", limit=10)
            # The culprit, as the loop monitor saw it, with the file's name.
            assert "in blocking_sleep (<string>:" in summary(app)
            await until(lambda: "STALE" not in summary(app), "live again", limit=10)

            svc.kill()
            await until(lambda: "DISCONNECTED" in summary(app), "disconnected", limit=10)
            kept = app.snapshot
            assert kept is not None and kept.scenario == "orders"  # the last snapshot stays
            assert f"disconnected from {svc.address}" in events(app)
            await pilot.press("c")
            assert app.part(HintBar).error == f"disconnected from {svc.address}"

            with service(monitor_dir, "--name", "orders") as again:
                assert again.address != svc.address
                await until(lambda: f"orders at {again.address}" in summary(app),
                            "reconnected to the new process", limit=20)
                assert "DISCONNECTED" not in summary(app) and app.snapshot is not kept
                assert f"reconnected to {again.address}" in events(app)
                await pilot.press("q")
                await until(lambda: source.state == "detached", "detached")
            assert again.proc.returncode == 0  # it ran until told to quit by its test
    finally:
        first.__exit__(None, None, None)


async def test_attached_by_pid_it_reconnects_to_a_restarted_service_by_its_name(monitor_dir):
    with service(monitor_dir, "--name", "orders") as first:
        source = RemoteSource(str(first.pid))
        await source.start()
        try:
            await until(lambda: source.state == "live", "live")
            first.kill()
            await until(lambda: source.state == "disconnected", "disconnected", limit=10)
            with service(monitor_dir, "--name", "orders") as again:
                assert again.pid != first.pid
                await until(lambda: source.reconnects == 1 and source.state == "live",
                            "reconnected to the new pid", limit=20)
                assert source.endpoint == again.address
        finally:
            await source.detach()


async def test_read_only_hides_what_is_never_possible_and_says_why_for_the_rest(monitor_dir):
    with service(monitor_dir, "--name", "ro", "--control") as svc:
        source = RemoteSource("ro")
        await source.start()
        app = HeapwatchApp(source, refresh_hz=5)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None, "a snapshot")
            workers = len(app.snapshot.pool.workers)
            for never in ("burst", "flood_low", "block_loop", "toggle_producers", "restart",
                          "replay_toggle"):
                assert app.check_action(never, ()) is False, never
            for not_now in ("cancel_worker", "add_worker", "toggle_getting", "shutdown"):
                assert app.check_action(not_now, ()) is None, not_now
            shown = footer(app)
            assert "b Burst" not in shown and "x Block" not in shown and "p Pause" not in shown
            assert "P Pause getting" in shown and "c Cancel" in shown  # dimmed, not gone
            assert not palette_actions(app) & {"burst", "add_worker", "toggle_getting"}
            await pilot.press("plus")
            assert app.part(HintBar).error == ("read-only: attach with --control to a service"
                                               " that passes allow_control=True")
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            table = app.screen.query_one("#help-keys")
            keys = {str(table.get_row_at(row)[0]) for row in range(table.row_count)}
            assert "b" not in keys and "x" not in keys and "+" in keys
            await pilot.press("escape")
            await pilot.pause()
            assert len(app.snapshot.pool.workers) == workers
            await pilot.press("q")
        assert svc.proc.poll() is None


async def test_control_acts_on_the_service_and_ctrl_c_only_detaches(monitor_dir):
    with service(monitor_dir, "--name", "ctl", "--control") as svc:
        source = RemoteSource("ctl", control=True)
        await source.start()
        app = HeapwatchApp(source, refresh_hz=5)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None and "control" in summary(app),
                        "control granted")
            snapshot = app.snapshot
            await pilot.press("plus")
            await until(lambda: len(app.snapshot.pool.workers) == len(snapshot.pool.workers) + 1,
                        "a worker added", limit=10)
            await pilot.press("P")
            await until(lambda: app.snapshot.pool.paused, "getting paused", limit=10)
            await pilot.press("P")
            await until(lambda: not app.snapshot.pool.paused, "getting resumed", limit=10)
            await pilot.press("o")
            await until(lambda: app.snapshot.queue.overflow != snapshot.queue.overflow,
                        "another overflow policy", limit=10)
            await pilot.press("a")
            await until(lambda: app.snapshot.queue.aging_rate != snapshot.queue.aging_rate,
                        "aging toggled", limit=10)
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            await pilot.pause()
            assert not app.snapshot.pool.shutdown_started
            await pilot.press("s")
            await pilot.press("y")
            await until(lambda: app.snapshot.pool.shutdown_started, "the service drains",
                        limit=10)
            await pilot.press("ctrl+c")
            await until(lambda: source.state == "detached", "detached")
        assert svc.proc.poll() is None  # its pool drained; the process goes on


@contextlib.asynccontextmanager
async def attached_with_control(monitor_dir, name: str):
    """A service granting control, and the real dashboard attached to it with --control."""
    with service(monitor_dir, "--name", name, "--control") as svc:
        source = RemoteSource(name, control=True)
        await source.start()
        app = HeapwatchApp(source, refresh_hz=5)
        async with app.run_test(size=(120, 40)) as pilot:
            yield svc, app, pilot


async def test_control_keys_go_dim_with_a_reason_once_the_service_shuts_down_or_goes(
        monitor_dir):
    async with attached_with_control(monitor_dir, "gone") as (svc, app, pilot):
        await until(lambda: app.check_action("add_worker", ()) is True, "control granted")
        await pilot.press("s")
        await pilot.press("y")
        await until(lambda: app.check_action("add_worker", ()) is None,
                    "control keys dimmed once the service shuts down", limit=10)
        for action in ("cancel_worker", "remove_worker", "toggle_getting", "shutdown",
                       "cycle_overflow", "toggle_aging"):
            assert app.check_action(action, ()) is None, action
        assert app.check_action("capture_stacks", ()) is True  # reading still works
        await pilot.press("plus")
        assert f"the service at {svc.address} sh" in app.part(HintBar).error
        svc.kill()
        await until(lambda: app.check_action("capture_stacks", ()) is None,
                    "every key dimmed once it is gone", limit=10)
        await pilot.press("plus")
        assert app.part(HintBar).error == f"disconnected from {svc.address}"
        await pilot.press("q")


@pytest.mark.parametrize("how", ["quit", "kill"])
async def test_control_keys_go_dim_when_a_service_stops_without_shutting_down(monitor_dir, how):
    async with attached_with_control(monitor_dir, "stops") as (svc, app, pilot):
        await until(lambda: app.check_action("cancel_worker", ()) is True, "control")
        if how == "quit":
            svc.send("quit")
        else:
            svc.kill()
        await until(lambda: app.check_action("cancel_worker", ()) is None,
                    "the keys follow the source away", limit=10)
        assert app.check_action("add_worker", ()) is None
        assert "DISCONNECTED" in summary(app)
        await pilot.press("c")
        assert app.part(HintBar).error == f"disconnected from {svc.address}"
        await pilot.press("q")


async def test_replay_keys_move_through_the_recording_and_the_scrubber_follows(tmp_path):
    source = ReplaySource(recording_with_an_alert(tmp_path))
    app = HeapwatchApp(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.snapshot is not None, "a snapshot")
        scrubber = app.part(Scrubber)
        assert scrubber.display and scrubber.marks == (6,) and scrubber.frames == 10
        await pilot.press("space")
        assert not source.playing and not scrubber.playing
        await pilot.press("right_square_bracket")
        assert source.position == scrubber.position == 6
        assert "frame 7/10" in scrubber.render().plain
        await pilot.press("comma")
        assert scrubber.position == 5
        await pilot.press("full_stop", "full_stop")
        assert scrubber.position == 7
        await pilot.press("left_square_bracket")
        assert scrubber.position == 6
        await pilot.pause()
        assert "1 alert" in summary(app) and "replay" in summary(app)
        shown = footer(app)
        assert "space Play/Pause" in shown and "[ Prev alert" in shown
        assert "c Cancel" not in shown and "b Burst" not in shown  # a recording only plays
        assert palette_actions(app) >= {"replay_toggle", "replay_next_alert"}
        await pilot.press("space")
        assert source.playing


async def test_the_replay_keys_and_scrubber_stay_out_of_a_live_run():
    from fakes import ScriptedEngine

    app = HeapwatchApp(ScriptedEngine())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not app.part(Scrubber).display
        assert app.check_action("replay_toggle", ()) is False
        assert app.check_action("toggle_getting", ()) is False  # a local run pauses producers
        assert "space" not in footer(app)


def test_the_scrubber_line_marks_the_position_and_the_alerts():
    line = scrubber_line(5, 11, (2, 8), playing=False, elapsed=65, duration=3725,
                         width=60).plain
    head = "‖ 1:05 / 1:02:05  frame 6/11  "
    assert line.startswith(head) and len(line) == 60
    bar = line[len(head):]
    assert bar.index("●") == round(5 / 10 * (len(bar) - 1))
    assert bar.count("!") == 2 and bar.index("!") < bar.index("●") < bar.rindex("!")
    assert set(bar[:bar.index("●")]) <= {"━", "!"} and set(bar[bar.index("●") + 1:]) <= {"─", "!"}
    assert scrubber_line(0, 1, (), playing=True, elapsed=0, duration=0, width=40).plain.startswith(
        "▶ 0:00 / 0:00  frame 1/1")


async def test_attach_and_replay_read_the_config_with_the_same_precedence(tmp_path):
    from tui.attach import attach_parser, dashboard_for, replay_parser
    from tui.config import config_path

    config_path().write_text('theme = "nord"\nrefresh = 4\n[keys]\nreplay_toggle = "v"\n',
                             encoding="utf-8")
    source = ReplaySource(recording_with_an_alert(tmp_path))
    app = dashboard_for(source, replay_parser().parse_args(["x.ndjson"]))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.snapshot is not None, "a snapshot")
        assert app.theme == "nord" and app.refresh_hz == 4
        assert "v Play/Pause" in footer(app)
        await pilot.press("v")
        assert not source.playing
    flags = attach_parser().parse_args(["svc", "--theme", "gruvbox", "--refresh", "2"])
    app = dashboard_for(source, flags)
    assert app._initial_theme == "gruvbox" and app.refresh_hz == 2
    ignored = dashboard_for(source, attach_parser().parse_args(["svc", "--no-config"]))
    assert ignored._initial_theme is None and ignored.refresh_hz == 1


async def test_a_recording_cut_short_says_so_in_the_dashboard_too(tmp_path):
    from tui.attach import dashboard_for, replay_parser

    whole = recording_with_an_alert(tmp_path).path
    cut = tmp_path / "cut.ndjson"
    data = open(whole, "rb").read()
    cut.write_bytes(data[:len(data) - 40])  # the last frame loses its end, as in a crash
    recording = load_recording(cut)
    assert recording.warning and len(recording.frames) == 9
    source = ReplaySource(recording)
    app = dashboard_for(source, replay_parser().parse_args([str(cut)]), [recording.warning])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.snapshot is not None, "a snapshot")
        await pilot.pause()
        said = " ".join(line.strip() for line in app.part(EventLog).lines)  # wrapped rows
        assert "warning: " in said and "cut short" in said
        assert app.part(Scrubber).frames == 9


async def test_stale_and_disconnected_stay_on_the_narrowest_summary_line(tmp_path):
    from tui.widgets.summary_bar import fit, summary_parts

    snapshot = recording_with_an_alert(tmp_path).frames[0].data
    stale = ("read-only", "STALE: loop blocked 2.3 s in resize (img.py:88)", "0.4s old")
    wide = fit(summary_parts(snapshot, frozen_for=None, source="unix:/run/x.sock",
                             source_flags=stale), 118).plain
    assert "STALE: loop blocked 2.3 s in resize (img.py:88)" in wide and "read-only" in wide
    narrow = fit(summary_parts(snapshot, frozen_for=None, source="unix:/run/x.sock",
                               source_flags=stale), 40).plain
    assert "STALE" in narrow and "unix:" not in narrow  # the state stays, the source goes
    gone = ("read-only", "DISCONNECTED: the last snapshot, reconnecting", "9.0s old")
    assert "DISCONNECTED" in fit(summary_parts(snapshot, frozen_for=None, source="unix:/x",
                                               source_flags=gone), 30).plain
