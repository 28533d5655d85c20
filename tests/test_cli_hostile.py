"""The command against a hostile user: bad files and paths, full disks, signals at any moment.

Each run is the real `heapwatch` in a subprocess (the dashboard in a pty). Tests run as root,
where permission bits do not stop writes: unwritable places are /dev/full, paths under /proc or
under a regular file, or the command run as `nobody` with setpriv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import ROOT, SLOW, assert_usage_error, heapwatch

# A backlog that takes far longer than its drain timeout: only a second signal ends it early.
LONG_DRAIN = """
[queue]
maxsize = 0
[pool]
workers = 2
drain_timeout = 30
[handler]
latency_ms = { mean = 400, p99 = 600 }
[[producers]]
rate = 0
priorities = { 1 = 1, 8 = 1 }
burst = { every = 0.1, size = 40 }
stop = 0.15
"""


@pytest.fixture
def toml(tmp_path: Path):
    def write(text: str, name: str = "scenario.toml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("heapwatch: error")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


# --------------------------------------------------------------------------- scenario files


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("seed = 1" + "0" * 400 + "\n", ["line 1", "seed", "between 0 and"]),
        ("[[producers]]\nburst = { every = 1e-12, size = 5 }\n", ["producers.burst.every", "0.001"]),
        ("[watchdog]\nloop_block_ms = 1e300\n", ["watchdog.loop_block_ms", "between 2 and 60000"]),
        ("[queue]\nmaxsize = nan\n", ["queue.maxsize", "must be an integer"]),
    ],
    ids=["seed-400-digits", "burst-every-1e-12", "loop-block-1e300", "maxsize-nan"],
)
def test_hostile_numbers_are_one_line_and_nothing_runs(toml, text, fragments) -> None:
    started = time.monotonic()
    result = heapwatch("--scenario", toml(text), "--headless", "--duration", "5", timeout=20)
    assert_usage_error(result, "scenario.toml", *fragments)
    assert time.monotonic() - started < 5  # refused up front: no hang past the duration


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_as_scenario_is_refused_unread(device: str) -> None:
    assert_usage_error(heapwatch("--scenario", device, "--headless", "--duration", "1",
                                 timeout=20), device, "not a regular file")


def test_scenario_from_standard_input(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--scenario", "-", "--headless", "--duration", "0.3",
         "--report", str(report)],
        input="\ufeff[pool]\nworkers = 2\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert (data["scenario"], data["source"], data["settings"]["workers"]) == ("stdin", "<stdin>", 2)
    refused = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--scenario", "-", "--headless", "--duration", "1"],
        stdin=open("/dev/zero", "rb"), capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert_usage_error(refused, "<stdin>", "larger than 1048576 bytes")


# --------------------------------------------------------------------------- output paths


def refused_up_front(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert_usage_error(result, *fragments)  # one line, exit 2: nothing ran, no summary line


@pytest.mark.parametrize(
    ("where", "fragments"),
    [
        (lambda tmp: "/proc/heapwatch-report.json", ["cannot be created"]),
        (lambda tmp: "/proc/self/heapwatch/r.json", ["does not exist"]),
        (lambda tmp: str(tmp / "file.txt" / "r.json"), ["is a file, not a directory"]),
        (lambda tmp: str(tmp), ["is a directory"]),
        (lambda tmp: str(tmp / "missing" / "r.json"), ["does not exist"]),
    ],
    ids=["under-proc", "deep-under-proc", "under-a-file", "a-directory", "missing-directory"],
)
@pytest.mark.parametrize("flag", ["--report", "--spill"])
def test_output_that_cannot_be_created_is_refused_before_the_run(
    tmp_path: Path, flag: str, where, fragments: list[str]
) -> None:
    (tmp_path / "file.txt").write_text("x")
    path = where(tmp_path)
    refused_up_front(heapwatch("--headless", "--duration", "1", flag, path), flag, *fragments)


def test_the_same_file_for_report_and_spill_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "both.json")
    refused_up_front(heapwatch("--headless", "--duration", "1", "--report", path, "--spill", path),
                     "same file")
    assert not Path(path).exists()  # the check leaves nothing behind


def test_a_directory_nobody_may_write_is_refused_for_nobody(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the command as nobody")
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable]
    if subprocess.run([*as_nobody, "-c", "pass"], capture_output=True).returncode != 0:
        pytest.skip("this Python cannot run as nobody (its files are not readable to it)")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    result = subprocess.run(
        [*as_nobody, "-m", "tui.cli", "--headless", "--duration", "1", "--report", str(locked / "r.json")],
        capture_output=True, text=True, cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL,
        # conftest's config path is in root's own tmp (mode 700): nobody gets one it may
        # look for (and not find) instead.
        env={**os.environ, "HOME": "/tmp",
             "HEAPWATCH_CONFIG": f"/tmp/{tmp_path.name}-absent/config.toml"},
    )
    refused_up_front(result, "--report", "permission denied")


# --------------------------------------------------------------------------- full disk


def run_slow(toml, report: str, spill: str) -> subprocess.CompletedProcess[str]:
    # SLOW leaves items in flight at the deadline: the spill has lines to lose.
    return heapwatch("--scenario", toml(SLOW), "--headless", "--duration", "0.4",
                     "--report", report, "--spill", spill)


def test_report_on_a_full_disk_still_writes_the_spill(toml, tmp_path: Path) -> None:
    spill = tmp_path / "s.jsonl"
    result = run_slow(toml, "/dev/full", str(spill))
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert "could not write the report to /dev/full" in line and "No space left" in line
    lines = spill.read_text().splitlines()
    assert len(lines) > 0 and all(json.loads(entry)["where"] for entry in lines)


def test_spill_on_a_full_disk_still_writes_the_report(toml, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = run_slow(toml, str(report), "/dev/full")
    assert result.returncode == 1, result.stderr
    data = json.loads(report.read_text())
    line = one_error_line(result)
    assert "could not write the spill to /dev/full" in line
    assert f"{data['remaining']} returned items not saved" in line and data["remaining"] > 0


def test_neither_written_says_how_many_items_were_not_saved(toml) -> None:
    result = run_slow(toml, "/dev/full", "/dev/full")
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert "neither the report nor the spill could be written" in line
    count = int(line.split(" returned items not saved")[0].rsplit(" ", 1)[1])
    assert count > 0


# --------------------------------------------------------------------------- signals, headless


def caught(pid: int, sig: signal.Signals) -> bool:
    """True once the process has a handler for `sig` (its SigCgt mask, Linux)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask.split()[1], 16) & (1 << (sig - 1)))


def wait_until(predicate, what: str, limit: float = 30.0) -> None:
    end = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.005)


def spawn(*args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kwargs,
    )


def finish(process: subprocess.Popen[str], timeout: float = 60) -> str:
    try:
        _, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return err


def written(report: Path, spill: Path) -> tuple[dict, list[dict]]:
    data = json.loads(report.read_text())
    lines = [json.loads(line) for line in spill.read_text().splitlines()]
    assert data["lost"] == 0 and data["duplicated"] == 0
    assert data["remaining"] == len(lines)
    assert data["shutdown"]["phases"][-1]["phase"] == "stopped"
    return data, lines


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_right_after_start_is_graceful(tmp_path: Path, sig: signal.Signals) -> None:
    report, spill = tmp_path / "r.json", tmp_path / "s.jsonl"
    process = spawn("--headless", "--report", str(report), "--spill", str(spill))
    # SIGHUP is caught only by heapwatch's own handler: once it is, main() has begun.
    wait_until(lambda: caught(process.pid, signal.SIGHUP), "the handlers")
    process.send_signal(sig)
    err = finish(process)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    written(report, spill)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_running_drains_writes_both_and_exits_0(
    tmp_path: Path, sig: signal.Signals
) -> None:
    report, spill = tmp_path / "r.json", tmp_path / "s.jsonl"
    process = spawn("--headless", "--report", str(report), "--spill", str(spill))
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("t="):  # running: the first summary line is out
            break
    process.send_signal(sig)
    err = finish(process)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    data, _ = written(report, spill)
    assert data["submitted"] > 0


def test_a_second_signal_cuts_a_long_drain_short(toml, tmp_path: Path) -> None:
    report, spill = tmp_path / "r.json", tmp_path / "s.jsonl"
    process = spawn("--headless", "--scenario", toml(LONG_DRAIN), "--report", str(report),
                    "--spill", str(spill))
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("t=") and "depth=" in line and "depth=0 " not in line:
            break
    process.send_signal(signal.SIGTERM)
    for line in process.stderr:
        if "shutting down gracefully" in line:
            break
    cut_at = time.monotonic()
    process.send_signal(signal.SIGINT)
    err = finish(process)
    assert process.returncode == 0, err
    assert time.monotonic() - cut_at < 10  # the drain timeout is 30 s
    data, lines = written(report, spill)
    assert data["shutdown"]["deadline_hit"] and len(lines) > 0


# --------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--workers", "1" + "0" * 400], "pool.workers"),
        (["--workers", "10001"], "pool.workers"),
        (["--maxsize", "100000001"], "queue.maxsize"),
        (["--aging", "inf"], "queue.aging"),
        (["--aging", "nan"], "queue.aging"),
        (["--seed", str(2**64)], "seed"),
        (["--duration", "1e300"], "--duration"),
        (["--duration", "0.0001"], "--duration"),
        (["--refresh", "0"], "--refresh"),
        (["--metrics-port", "-1"], "--metrics-port"),
    ],
)
def test_flags_take_the_ranges_of_the_keys(capsys, args: list[str], key: str) -> None:
    from engine.limits import BOUNDS
    from tui.cli import main

    with pytest.raises(SystemExit) as exited:
        main([*args, "--headless"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"must be {BOUNDS[key].text}, not " in err
