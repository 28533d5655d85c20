"""Record and replay: a round trip from a live service, a file cut short, a foreign file, the cap."""

from __future__ import annotations

import io

import pytest
from test_monitor_helpers import recording_with_an_alert, service, short_monitor_dir

from engine.monitor_client import MonitorClient
from engine.recording import Recorder, RecordingError, load_recording
from engine.snapshots import Capability
from tui.attach import replay_main
from tui.remote import ReplaySource, SourceError


@pytest.fixture
def monitor_dir(monkeypatch):
    yield from short_monitor_dir(monkeypatch)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def record(directory, path, *, frames: int = 12, block: bool = True, **recorder_args):
    """Record a live service (with one loop block) into `path`; the frames received."""
    received = []
    with service(directory) as svc, Recorder(path, target=svc.address, **recorder_args) as rec:
        client = await MonitorClient.connect(svc.address, on_line=rec)
        try:
            while len(received) < frames:
                frame = await client.next_frame(10)
                assert frame is not None
                received.append(frame)
                if block and len(received) == 3:
                    svc.send("sleep 0.6")
        finally:
            await client.close()
        return received, rec


async def test_a_recording_plays_back_what_was_received(monitor_dir, tmp_path):
    path = tmp_path / "run.ndjson"
    received, _ = await record(monitor_dir, path)
    recording = load_recording(path)
    assert not recording.truncated and recording.warning is None
    assert recording.hello["name"] == "svc"
    # The recorder saw every frame the monitor sent; the reader may skip to the newest.
    assert len(recording.frames) >= len(received)
    assert {f.type for f in recording.frames} == {"snapshot", "stale"}
    by_wall = {(f.type, f.wall): f for f in recording.frames}
    for frame in received:
        assert by_wall[(frame.type, frame.wall)].data == frame.data
    walls = [f.wall for f in recording.frames]
    assert walls == sorted(walls)


async def test_a_file_cut_short_plays_to_its_last_whole_frame(monitor_dir, tmp_path, capsys):
    path = tmp_path / "crashed.ndjson"
    await record(monitor_dir, path, frames=6, block=False)
    whole = load_recording(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the last frame loses its end, as in a crash
    cut = load_recording(path)
    assert cut.truncated and len(cut.frames) == len(whole.frames) - 1
    assert cut.frames == whole.frames[:-1]
    assert "cut short" in cut.warning
    out = io.StringIO()
    assert replay_main([str(path), "--plain"], out=out) == 0
    assert len(out.getvalue().splitlines()) == len(cut.frames)
    assert "heapwatch replay: warning:" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n", b'{"some": "json"}\n',
                                     b"just text\n"])
def test_a_foreign_file_is_one_line_exit_2(tmp_path, capsys, content):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match="is not a heapwatch recording"):
        load_recording(path)
    assert replay_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"heapwatch replay: error: {path} is not a heapwatch recording\n"


def test_a_missing_file_is_one_line_exit_2(tmp_path, capsys):
    assert replay_main([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("heapwatch replay: error: cannot read ")


async def test_the_size_cap_stops_recording_with_one_warning(monitor_dir, tmp_path):
    path = tmp_path / "capped.ndjson"
    warnings = []
    _, rec = await record(monitor_dir, path, frames=8, block=False, max_bytes=20_000,
                          on_cap=warnings.append)
    assert rec.capped and len(warnings) == 1
    assert "--record-max" in warnings[0] and str(path) in warnings[0]
    assert path.stat().st_size <= 20_000
    recording = load_recording(path)
    assert not recording.truncated and 0 < len(recording.frames) < 8


async def test_replay_source_plays_pauses_steps_and_jumps_to_an_alert(tmp_path):
    clock = FakeClock()
    source = ReplaySource(recording_with_an_alert(tmp_path), clock=clock)
    source.play()
    clock.now = 2.5
    source.snapshot()
    assert source.position == 2
    source.pause()
    clock.now = 9.0
    source.snapshot()
    assert source.position == 2  # paused: time passes, the frame stays
    assert source.step(2) == 4 and source.step(-10) == 0
    assert source.jump_to_alert() and source.position == 6
    assert not source.jump_to_alert() and source.position == 6
    assert source.alert_marks == (6,)
    assert not source.jump_to_alert(-1) and source.step(3) == 9
    assert source.jump_to_alert(-1) and source.position == 6
    # A recording only plays: none of the control capabilities, and the keys follow it.
    only_plays = {Capability.REPLAY, Capability.STACKS}
    assert source.capabilities == only_plays == source.snapshot().capabilities
    with pytest.raises(SourceError, match="read-only"):
        source.add_worker()
    source.play()
    clock.now = 100.0
    source.snapshot()
    assert source.ended and not source.playing
