"""`heapwatch attach` / `replay` entry points, RemoteSource, and the real app on a remote source."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_monitor_helpers import ROOT, service, short_monitor_dir
from waiting import until

from engine.recording import load_recording
from tui.attach import attach_main
from tui.remote import RemoteSource, SourceError


@pytest.fixture
def monitor_dir(monkeypatch):
    yield from short_monitor_dir(monkeypatch)


def gone_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_list_shows_live_monitors_and_drops_those_whose_process_is_gone(monitor_dir):
    dead = gone_pid()
    for suffix in (".json", ".sock"):
        (monitor_dir / f"{dead}{suffix}").write_text(json.dumps(
            {"pid": dead, "name": "ghost", "argv": ["ghost"], "started": 1.0,
             "address": f"unix:{monitor_dir}/{dead}.sock"}))
    with service(monitor_dir, "--name", "lister") as svc:
        out = io.StringIO()
        assert attach_main(["--list"], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["PID", "NAME", "STARTED", "ADDRESS", "COMMAND"]
    assert len(lines) == 2 and lines[1].split()[:2] == [str(svc.pid), "lister"]
    assert svc.address in lines[1] and "--name lister" in lines[1]
    assert not (monitor_dir / f"{dead}.json").exists()
    assert not (monitor_dir / f"{dead}.sock").exists()


def test_list_with_no_monitor(monitor_dir):
    out = io.StringIO()
    assert attach_main(["--list"], out=out) == 0
    assert out.getvalue().startswith("no heapwatch monitors for this user")


@pytest.mark.parametrize(("argv", "message"), [
    (["4242"], "no heapwatch monitor for pid 4242: start one with engine.serve_monitor()"),
    (["mailer"], "no heapwatch monitor named 'mailer': see heapwatch attach --list"),
    ([], "give a TARGET (a pid, a name, unix:PATH or tcp://HOST:PORT) or --list"),
    (["tcp://localhost"], "bad address 'tcp://localhost': expected tcp://HOST:PORT"),
])
def test_a_mistake_is_one_line_and_exit_2(monitor_dir, capsys, argv, message):
    assert attach_main(argv) == 2
    assert capsys.readouterr().err == f"heapwatch attach: error: {message}\n"


@pytest.mark.parametrize("argv", [["svc", "--record-max", "lots"], ["svc", "--hz", "0"],
                                  ["--bogus"]])
def test_a_bad_flag_is_one_line_and_exit_2(monitor_dir, capsys, argv):
    with pytest.raises(SystemExit) as caught:
        attach_main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("heapwatch attach: error: ") and err.count("\n") == 1


def test_attach_plain_prints_snapshots_records_and_leaves_the_service_running(monitor_dir,
                                                                             tmp_path):
    record = tmp_path / "attach.ndjson"
    with service(monitor_dir, "--name", "plain") as svc:
        out = io.StringIO()
        assert attach_main(["plain", "--plain", "--count", "3", "--record", str(record)],
                           out=out) == 0
        lines = out.getvalue().splitlines()
        assert len(lines) == 3 and all(line.startswith("LIVE         plain  depth=")
                                       for line in lines)
        time.sleep(0.3)
        assert svc.proc.poll() is None  # detaching never stops the service
    assert len(load_recording(record).frames) >= 3


def test_sigterm_detaches_without_stopping_the_service(monitor_dir):
    with service(monitor_dir) as svc:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HEAPWATCH_MONITOR_DIR": str(monitor_dir)}
        code = "import sys; from tui.attach import attach_main; sys.exit(attach_main(sys.argv[1:]))"
        attach = subprocess.Popen([sys.executable, "-c", code, str(svc.pid), "--plain"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)
        try:
            assert attach.stdout is not None
            first = attach.stdout.readline()
            assert first.startswith("LIVE")
            attach.send_signal(signal.SIGTERM)
            assert attach.wait(10) == 0
            assert svc.proc.poll() is None
        finally:
            if attach.poll() is None:
                attach.kill()
            attach.communicate(timeout=5)


async def test_remote_source_is_read_only_unless_granted(monitor_dir):
    with service(monitor_dir, "--control") as svc:
        read_only = RemoteSource(svc.address)
        control = RemoteSource(svc.address, control=True)
        await read_only.start()
        await control.start()
        try:
            assert {c.value for c in read_only.capabilities} == {"stacks", "memory"}
            assert read_only.snapshot().capabilities == read_only.capabilities
            with pytest.raises(SourceError, match="read-only: attach with --control"):
                read_only.add_worker()
            with pytest.raises(SourceError, match="never sent to a remote service"):
                control.burst(10)
            assert "add-worker" in {c.value for c in control.capabilities}
            before = len(control.snapshot().pool.workers)
            control.add_worker()
            await until(lambda: control.replies, "the reply")
            assert control.replies[-1].ok
            await until(lambda: len(control.snapshot().pool.workers) == before + 1,
                        "one more worker on screen")
            control.request_shutdown(drain_timeout=0.5)
            await until(lambda: control.snapshot().pool.shutdown_started, "the service drains",
                        limit=10)
        finally:
            await read_only.detach()
            await control.detach()


async def test_the_dashboard_on_a_remote_source_quits_without_stopping_the_service(
        monitor_dir):
    from tui.app import HeapwatchApp

    with service(monitor_dir, "--name", "dash") as svc:
        source = RemoteSource("dash")
        await source.start()
        app = HeapwatchApp(source)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None and app.refreshes > 2, "refreshes")
            assert app.snapshot.scenario == "dash"
            await pilot.press("q")
            await until(lambda: source.state == "detached", "detached")
        await asyncio.sleep(0.3)
        assert svc.proc.poll() is None


async def test_the_example_service_in_three_steps(monitor_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HEAPWATCH_MONITOR_DIR": str(monitor_dir)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / "service.py"), "--duration", "4",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert first.startswith(f"service pid {proc.pid}: monitor 'orders' at unix:")
        listed = io.StringIO()
        assert await asyncio.to_thread(attach_main, ["--list"], out=listed) == 0
        assert f"{proc.pid}  orders" in listed.getvalue()
        out = io.StringIO()
        assert await asyncio.to_thread(attach_main, [str(proc.pid), "--plain", "--count", "2"],
                                       out=out) == 0
        assert len(out.getvalue().splitlines()) == 2
        raw: list[bytes] = []
        from engine.monitor_client import MonitorClient

        client = await MonitorClient.connect("orders", on_line=lambda line, f: raw.append(line))
        try:
            busy = []
            while not busy:
                frame = await client.next_frame(10)
                assert frame is not None
                if frame.type == "snapshot":
                    busy = [w.item_repr for w in frame.data.pool.workers if w.item_repr]
        finally:
            await client.close()
        assert all("Order(id=" in text for text in busy)
        assert b"@example.com" not in b"".join(raw)  # the order's repr leaves the email out
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert rest.decode().splitlines()[-1].endswith("lost=0")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_remote_source_goes_stale_with_the_culprit_and_comes_back(monitor_dir):
    with service(monitor_dir) as svc:
        source = RemoteSource(svc.address)
        await source.start()
        try:
            await until(lambda: source.state == "live", "live")
            svc.send("sleep 1.0")
            await until(lambda: source.stale, "stale", limit=10)
            assert "blocking_sleep" in source.stale_info["culprit"]
            kept = source.snapshot()
            await until(lambda: source.state == "live" and source.snapshot() is not kept,
                        "live again", limit=10)
            assert source.stale_info is None and source.age < 1.0
        finally:
            await source.detach()


def test_asking_for_control_of_a_read_only_service_warns(monitor_dir, capsys):
    with service(monitor_dir, "--name", "ro") as svc:
        out = io.StringIO()
        assert attach_main(["ro", "--control", "--plain", "--count", "1"], out=out) == 0
        assert svc.proc.poll() is None
    err = capsys.readouterr().err
    assert err == ("heapwatch attach: warning: the service does not allow control (it needs "
                   "serve_monitor(allow_control=True)): read-only\n")
