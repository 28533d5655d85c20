"""The real `heapwatch` command in subprocesses: bad input, listing, headless runs, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.scenario import BUILTIN_SCENARIOS

ROOT = Path(__file__).resolve().parent.parent

# Bursts only, stopping early: what is submitted does not depend on timing.
SEEDED = """
description = "bursts only, for the determinism test"
[queue]
maxsize = 1000
[pool]
workers = 4
max_attempts = 2
backoff_base = 0.01
backoff_cap = 0.05
[handler]
latency_ms = { mean = 3, p99 = 12 }
failure_rate = 0.15
[[producers]]
rate = 0
priorities = { 0 = 1, 4 = 2, 9 = 1 }
burst = { every = 0.2, size = 60 }
stop = 0.7
[watchdog]
interval = 0.1
"""

SLOW = """
[queue]
maxsize = 0
[pool]
workers = 2
drain_timeout = 0.1
[handler]
latency_ms = { mean = 500, p99 = 700 }
[[producers]]
rate = 0
priorities = { 1 = 1, 8 = 1 }
burst = { every = 0.1, size = 30 }
stop = 0.25
"""


def heapwatch(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL,
        **kwargs,
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("heapwatch: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""


@pytest.fixture
def toml(tmp_path: Path):
    def write(text: str, name: str = "scenario.toml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--bogus"], ["unrecognized arguments: --bogus"]),
        (["--worker", "3"], ["did you mean --workers?"]),
        (["--workers", "-1"], ["--workers", "'-1'"]),
        (["--maxsize", "lots"], ["--maxsize", "'lots'"]),
        (["--overflow", "drop"], ["--overflow", "'drop'"]),
        (["--duration", "0"], ["--duration", "'0'"]),
        (["--refresh", "-2"], ["--refresh"]),
        (["--metrics-port", "70000"], ["--metrics-port", "'70000'"]),
        (["--scenario", "burts"], ["unknown scenario 'burts'", "did you mean 'burst'?"]),
        (["--scenario", "missing.toml"], ["'missing.toml' not found"]),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: list[str], fragments: list[str]) -> None:
    assert_usage_error(heapwatch(*args, "--headless", "--duration", "1"), *fragments)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[pool]\nworkers = 4\nworker = 3\n", ["line 3", "unknown key 'worker' in [pool]", "did you mean 'workers'?"]),
        ("[queue]\nmaxsize = -10\n", ["line 2", "queue.maxsize", "-10"]),
        ("[queue]\nmaxsize = \"big\"\n", ["line 2", "must be an integer, not a string 'big'"]),
        ("[queue]\noverflow = \"drop\"\n", ["line 2", "'drop'"]),
        ("[queue]\nmaxsize = 1\n[pool\n", ["line 3", "TOML syntax error"]),
    ],
)
def test_bad_scenario_file_is_refused_before_anything_runs(
    toml, tmp_path: Path, text: str, fragments: list[str]
) -> None:
    report = tmp_path / "report.json"
    result = heapwatch("--scenario", toml(text), "--headless", "--duration", "1",
                       "--report", str(report))
    assert_usage_error(result, "scenario.toml", *fragments)
    assert not report.exists()


def test_unwritable_report_path_is_refused_up_front(tmp_path: Path) -> None:
    result = heapwatch("--headless", "--duration", "1", "--report", str(tmp_path / "no" / "r.json"))
    assert_usage_error(result, "--report", "does not exist")


def test_metrics_port_in_use_is_refused_up_front() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = heapwatch("--headless", "--duration", "1", "--metrics-port", str(port))
    assert_usage_error(result, f"--metrics-port {port}", "in use")


def test_dashboard_without_a_terminal_says_so() -> None:
    assert_usage_error(heapwatch("--duration", "1"), "needs a terminal", "--headless")


def test_list_scenarios_and_version() -> None:
    listed = heapwatch("--list-scenarios")
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == list(BUILTIN_SCENARIOS)
    assert all(len(line.split(None, 1)) == 2 for line in listed.stdout.splitlines())
    version = heapwatch("--version")
    assert version.returncode == 0 and version.stdout.startswith("heapwatch 0.")
    helped = heapwatch("--help")
    assert helped.returncode == 0 and "--metrics-port" in helped.stdout


def run_seeded(toml, tmp_path: Path, tag: str, seed: str) -> dict:
    report = tmp_path / f"{tag}.json"
    result = heapwatch("--scenario", toml(SEEDED, "seeded.toml"), "--headless", "--seed", seed,
                       "--duration", "1.2", "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(report.read_text())


def test_headless_run_same_seed_same_counts(toml, tmp_path: Path) -> None:
    first = run_seeded(toml, tmp_path, "first", "21")
    second = run_seeded(toml, tmp_path, "second", "21")
    for report in (first, second):
        assert report["lost"] == 0 and report["duplicated"] == 0
        assert report["seed"] == 21 and report["scenario"] == "seeded"
    # Three bursts (0.2, 0.4, 0.6 s) of 60 before the producer stops at 0.7 s.
    assert first["submitted"] == second["submitted"] == 180
    counts = ("submitted", "completed", "dead_lettered", "remaining")
    assert [first[k] for k in counts] == [second[k] for k in counts]
    assert [(w["priority"], w["submitted"]) for w in first["wait_by_priority"]] == [
        (w["priority"], w["submitted"]) for w in second["wait_by_priority"]
    ]


def test_headless_demo_report_and_plain_lines(tmp_path: Path) -> None:
    report_path, spill_path = tmp_path / "r.json", tmp_path / "s.jsonl"
    result = heapwatch("--headless", "--duration", "2", "--workers", "3",
                       "--report", str(report_path), "--spill", str(spill_path))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("t=")]
    assert any("depth=" in line and "done=" in line and "rate=" in line for line in lines)
    report = json.loads(report_path.read_text())
    for field in ("scenario", "seed", "duration", "submitted", "completed", "dead_lettered",
                  "evicted", "rejected", "remaining", "lost", "duplicated", "throughput",
                  "wait_by_priority", "alerts", "shutdown"):
        assert field in report
    assert report["scenario"] == "demo" and report["settings"]["workers"] == 3
    assert report["submitted"] > 0 and report["throughput"] > 0
    assert report["lost"] == 0 and report["duplicated"] == 0
    assert [p["phase"] for p in report["shutdown"]["phases"]][-1] == "stopped"
    assert spill_path.read_text() == ""  # a full drain returns nothing


def test_plain_lines_go_on_during_a_long_drain() -> None:
    # The shutdown scenario's backlog takes its whole 3 s drain: a line a second meanwhile.
    result = heapwatch("--headless", "--scenario", "shutdown", "--duration", "2")
    assert result.returncode == 0, result.stderr
    draining = [line for line in result.stderr.splitlines() if "phase=draining" in line]
    assert draining  # before the fix the drain was silent until "phase=stopped"


def test_spill_lists_every_returned_item(toml, tmp_path: Path) -> None:
    report_path, spill_path = tmp_path / "r.json", tmp_path / "s.jsonl"
    result = heapwatch("--scenario", toml(SLOW), "--headless", "--duration", "0.5",
                       "--report", str(report_path), "--spill", str(spill_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    spilled = [json.loads(line) for line in spill_path.read_text().splitlines()]
    assert report["submitted"] == 60 and report["lost"] == 0
    assert report["remaining"] == len(spilled) > 0
    assert report["completed"] + report["remaining"] == report["submitted"]
    assert set(spilled[0]) == {"item", "priority", "attempts", "where"}
    assert len({entry["item"] for entry in spilled}) == len(spilled)


def test_sigterm_shuts_down_gracefully_and_writes_the_report(toml, tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--headless", "--report", str(report_path)],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("t="):  # running: the first summary line is out
                break
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    report = json.loads(report_path.read_text())
    assert report["lost"] == 0 and report["shutdown"]["phases"][-1]["phase"] == "stopped"


def test_a_restarted_runs_outputs_go_beside_the_first_runs() -> None:
    from tui.cli import numbered

    assert numbered(None, 3) is None
    assert numbered(Path("out/r.json"), 1) == Path("out/r.json")
    assert numbered(Path("out/r.json"), 2) == Path("out/r-2.json")
    assert numbered(Path("spill"), 3) == Path("spill-3")
