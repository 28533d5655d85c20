"""heapwatch's own runs with `--monitor` and `--record` (issue 14): a headless run watched from
another process, its recording replayed, the size cap's warning, the dashboard's monitor said
in its event log, and the mistakes (--web, a bad path) as one line and exit 2."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys

import pytest
from test_cli import ROOT, assert_usage_error, heapwatch
from test_monitor_helpers import short_monitor_dir
from waiting import until

from engine.recording import load_recording
from engine.runtime import Engine
from engine.scenario import load_scenario
from tui.attach import attach_main
from tui.remote import RemoteSource
from tui.run_outputs import RunOutputs
from tui.widgets.event_log import EventLog


@pytest.fixture
def monitor_dir(monkeypatch):
    yield from short_monitor_dir(monkeypatch)


def test_a_headless_run_with_monitor_is_watched_from_another_process(monitor_dir, tmp_path):
    record = tmp_path / "headless.ndjson"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HEAPWATCH_MONITOR_DIR": str(monitor_dir)}
    run = subprocess.Popen([sys.executable, "-m", "tui", "--headless", "--monitor", "--record",
                            str(record), "--duration", "60"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert run.stderr is not None
        said = run.stderr.readline()  # the first line says where the monitor is
        found = re.fullmatch(r"monitor at (unix:\S+): watch it with heapwatch attach (\d+)\n",
                             said)
        assert found and int(found[2]) == run.pid, said
        assert run.stderr.readline() == f"recording to {record}\n"
        out = io.StringIO()
        assert attach_main([str(run.pid), "--plain", "--count", "2"], out=out) == 0
        lines = out.getvalue().splitlines()
        assert len(lines) == 2 and all(line.startswith("LIVE         demo  depth=")
                                       for line in lines)
        assert run.poll() is None  # detaching left the run going
        run.send_signal(signal.SIGTERM)
        rest = run.communicate(timeout=30)[1]
        assert run.returncode == 0, rest
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    recording = load_recording(record)
    assert recording.warning is None and len(recording.frames) >= 2
    last = recording.frames[-1].data
    assert last.pool.report is not None  # the run's last snapshot, with its report, is kept
    assert last.pool.accounting.lost == 0


def test_the_record_cap_stops_the_recording_with_one_warning(tmp_path):
    record = tmp_path / "capped.ndjson"
    result = heapwatch("--headless", "--duration", "2", "--record", str(record),
                       "--record-max", "40K")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "--record-max" in warnings[0], result.stderr
    assert record.stat().st_size <= 40 * 1024
    assert load_recording(record).frames


@pytest.mark.parametrize(("args", "fragments"), [
    (["--web", "8000", "--monitor"], ("--monitor cannot be used with --web",)),
    (["--web", "8000", "--record", "{tmp}/x.ndjson"], ("--record cannot be used with --web",)),
    (["--headless", "--record", "/nonexistent-dir/r.ndjson"],
     ("--record '/nonexistent-dir/r.ndjson'", "does not exist")),
    (["--headless", "--record", "{tmp}/same.json", "--report", "{tmp}/same.json"],
     ("name the same file",)),
])
def test_monitor_and_record_mistakes_are_one_line(tmp_path, args, fragments):
    assert_usage_error(heapwatch(*(arg.format(tmp=tmp_path) for arg in args)), *fragments)


def test_attach_record_has_the_same_path_checks(monitor_dir, tmp_path, capsys):
    assert attach_main(["svc", "--record", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"heapwatch attach: error: --record '{tmp_path}' is a directory\n")


async def test_the_dashboard_says_its_monitor_in_the_event_log_and_serves_it(monitor_dir):
    from tui.app import HeapwatchApp

    outputs = RunOutputs(monitor=True)
    app = HeapwatchApp(Engine(load_scenario("demo")), on_started=outputs.started)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: outputs.monitor is not None, "the monitor", limit=10)
            address = outputs.monitor.address
            await until(lambda: any(address in line for line in app.part(EventLog).lines),
                        "the address in the event log")
            watcher = RemoteSource(address)
            await watcher.start()
            try:
                await until(lambda: watcher.snapshots > 0, "a snapshot over the monitor")
                assert watcher.snapshot().scenario == "demo" and watcher.mode == "read-only"
            finally:
                await watcher.detach()
            await pilot.press("q")
    finally:
        outputs.close()


async def test_the_dashboard_says_the_cap_only_once_it_has_closed(tmp_path):
    said: list[str] = []
    outputs = RunOutputs(record=tmp_path / "r.ndjson", record_max=4096, warn=said.append,
                         defer=True)  # a line on stderr would tear the dashboard's screen
    engine = Engine(load_scenario("demo"))
    await engine.start()
    try:
        assert outputs.started(engine) == [f"recording to {tmp_path / 'r.ndjson'}"]
        await until(lambda: outputs.recorder.capped, "the cap", limit=20)
        assert said == []
    finally:
        await engine.shutdown()
        outputs.close()
    assert len(said) == 1 and "--record-max" in said[0]
    assert load_recording(tmp_path / "r.ndjson").frames
