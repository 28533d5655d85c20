"""The real dashboard in a pty: SIGTERM (early or late), a second signal, and the terminal
closing (the kernel's SIGHUP and SIGCONT) all drain, write the report and the spill, exit 0."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from test_cli import ROOT
from test_cli_hostile import LONG_DRAIN, caught, wait_until

DASH = """
[queue]
maxsize = 0
[pool]
workers = 2
drain_timeout = 1
[handler]
latency_ms = { mean = 300, p99 = 500 }
[[producers]]
rate = 10
priorities = { 1 = 1, 8 = 1 }
burst = { every = 0.5, size = 20 }
"""

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a Linux pty")


class Dashboard:
    """`heapwatch` on a pty of its own (its controlling terminal), its screen read in a thread."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.screen = bytearray()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", *args], cwd=ROOT, stdin=slave, stdout=slave,
            stderr=slave, start_new_session=True, env={**os.environ, "TERM": "xterm-256color"},
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.screen += data

    def shows(self, text: str) -> bool:
        return text.encode() in self.screen

    def has_work(self) -> bool:
        """The summary bar shows a queue with items in it: the engine runs and has load."""
        return re.search(rb"depth [1-9]", self.screen) is not None

    def hang_up(self) -> None:
        os.close(self.master)  # the terminal closes: the kernel sends SIGHUP and SIGCONT
        self.master = -1

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if self.master >= 0:
                os.close(self.master)


def outputs(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    report, spill = tmp_path / "r.json", tmp_path / "s.jsonl"
    return report, spill, ["--report", str(report), "--spill", str(spill)]


def check_written(report: Path, spill: Path) -> dict:
    data = json.loads(report.read_text())
    assert data["lost"] == 0 and data["shutdown"]["phases"][-1]["phase"] == "stopped"
    assert data["remaining"] == len(spill.read_text().splitlines())
    return data


@pytest.fixture
def dash_toml(tmp_path: Path):
    def write(text: str = DASH) -> str:
        path = tmp_path / "dashsig.toml"
        path.write_text(text)
        return str(path)

    return write


def test_sigterm_to_the_running_dashboard_drains_and_exits_0(dash_toml, tmp_path: Path) -> None:
    report, spill, args = outputs(tmp_path)
    dash = Dashboard("--scenario", dash_toml(), *args)
    wait_until(dash.has_work, "queued items on screen")
    dash.process.send_signal(signal.SIGTERM)
    assert dash.wait() == 0, dash.screen[-2000:]
    data = check_written(report, spill)
    assert data["submitted"] > 0
    assert b"Traceback" not in dash.screen


def test_sigterm_before_the_dashboard_is_up_is_graceful(dash_toml, tmp_path: Path) -> None:
    report, spill, args = outputs(tmp_path)
    dash = Dashboard("--scenario", dash_toml(), *args)
    wait_until(lambda: caught(dash.process.pid, signal.SIGHUP), "the handlers")
    dash.process.send_signal(signal.SIGTERM)
    assert dash.wait() == 0, dash.screen[-2000:]
    check_written(report, spill)
    assert b"Traceback" not in dash.screen


def test_a_second_signal_cuts_the_dashboards_drain_short(dash_toml, tmp_path: Path) -> None:
    report, spill, args = outputs(tmp_path)
    dash = Dashboard("--scenario", dash_toml(LONG_DRAIN), *args)
    wait_until(dash.has_work, "queued items on screen")
    dash.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # any moment will do: a second signal before the drain began still cuts it
    cut_at = time.monotonic()
    dash.process.send_signal(signal.SIGTERM)
    assert dash.wait() == 0, dash.screen[-2000:]
    assert time.monotonic() - cut_at < 10  # the drain timeout is 30 s
    data = check_written(report, spill)
    assert data["shutdown"]["deadline_hit"] and data["remaining"] > 0


def test_the_terminal_closing_drains_writes_both_and_exits_0(dash_toml, tmp_path: Path) -> None:
    report, spill, args = outputs(tmp_path)
    dash = Dashboard("--scenario", dash_toml(), *args)
    wait_until(dash.has_work, "queued items on screen")
    dash.hang_up()
    assert dash.wait(timeout=30) == 0
    check_written(report, spill)
