"""The demo's first minute as a newcomer sees it: the real command in tmux at 120x40.

Every 10 s the pane is read as text and checked for what a person must see at a glance: the
state words lead the summary, the alert count there equals the active rows of the alerts panel,
the story (scheduled bursts, alerts) is in the event log, the hint line and the footer are
there. At the end `q` quits and the report is checked: no loop-blocked alert names the
dashboard's own code (textual, rich, tui). A minute, because the demo tells its story in one:
bursts every 12 s, a worker cancelled every 15 s, a starving priority 9.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

ROOT = Path(__file__).resolve().parent.parent
MINUTE = 60.0
SUMMARY_COUNT = re.compile(r"⚠ (\d+) alerts?")
MORE_ACTIVE = re.compile(r"\+(\d+) more active")


SOCKET = f"heapwatch-test-{uuid.uuid4().hex[:8]}"
"""A tmux server of the test's own: other tmux users on the machine cannot touch its session."""


def tmux(*args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], check=check, capture_output=True,
                          text=True, env=env).stdout


def active_rows(pane: list[str]) -> int:
    """Active alerts the alerts panel accounts for: its ACTIVE rows plus '+N more active'."""
    inside = False
    count = 0
    for line in pane:
        if "─ alerts" in line:
            inside = True
            continue
        if inside and line.lstrip().startswith("╰"):
            break
        if inside:
            cell = line.split("││")[0]
            more = MORE_ACTIVE.search(cell)
            if more:
                count += int(more.group(1))
            elif " ACTIVE " in cell:
                count += 1
    return count


def test_the_demos_first_minute_in_tmux(tmp_path):
    session = f"heapwatch-test-{uuid.uuid4().hex[:8]}"
    report = tmp_path / "run.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color")
    command = f"{sys.executable} -m tui --report {report}"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", "-c", str(ROOT), command,
         env=env)
    panes: list[list[str]] = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < MINUTE:
            time.sleep(10)
            # A capture can fall between the writes of one frame on a loaded machine: take
            # the first of a few captures whose summary and alerts panel come from one frame.
            for _ in range(5):
                pane = tmux("capture-pane", "-p", "-t", session).splitlines()
                said = SUMMARY_COUNT.search(pane[0])
                if (int(said.group(1)) if said else 0) == active_rows(pane):
                    break
                time.sleep(0.5)
            panes.append(pane)
            summary = pane[0]
            assert summary.lstrip().startswith("heapwatch"), summary
            # The state words lead: the alert count comes before the scenario and figures.
            said = SUMMARY_COUNT.search(summary)
            count = int(said.group(1)) if said else 0
            assert said or "no alerts" in summary, summary
            assert summary.index("demo") > (said.start() if said else summary.index("no alerts"))
            assert count == active_rows(pane), "\n".join(pane)
            assert "? Help" in pane[-1] and "q Quit" in pane[-1]
        tmux("send-keys", "-t", session, "q")
        for _ in range(100):
            if report.exists():
                break
            time.sleep(0.2)
    finally:
        tmux("kill-server", check=False)
    seen = "\n".join("\n".join(pane) for pane in panes)
    assert "scheduled burst" in seen  # the demo narrates itself
    assert "starving" in seen
    assert any(pane[-2].strip() for pane in panes)  # the hint line says something
    run = json.loads(report.read_text())
    blamed = [alert for alert in run["alerts"] if alert["kind"] == "loop-blocked"
              and re.search(r"textual|rich|\btui/", alert["culprit"] or "")]
    assert not blamed, blamed
    assert run["lost"] == 0
