"""Frames: both codecs on a real engine snapshot, compatibility rules, no payload on the wire."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from test_monitor_helpers import short_monitor_dir
from waiting import until

from engine.monitor_client import ClientError, MonitorClient
from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.runtime import Engine
from engine.scenario import load_scenario
from engine.snapshots import EngineSnapshot
from engine.wire import VERSION, Codec, FrameError, VersionMismatch, wire_safe

BACKENDS = ["msgspec", "json"]


@pytest.fixture
def monitor_dir(monkeypatch):
    yield from short_monitor_dir(monkeypatch)


@pytest.fixture(scope="module")
def engine_snapshot() -> EngineSnapshot:
    async def run() -> EngineSnapshot:
        engine = Engine(load_scenario("chaos"))
        await engine.start()
        engine.burst(300)
        await until(lambda: engine.snapshot().pool.accounting.completed > 50, "work done")
        snapshot = engine.snapshot()
        await engine.shutdown(0.5)
        return snapshot

    return asyncio.run(run())


@pytest.mark.parametrize("encoder", BACKENDS)
@pytest.mark.parametrize("decoder", BACKENDS)
def test_a_real_snapshot_round_trips_through_either_codec(engine_snapshot, encoder, decoder):
    safe = wire_safe(engine_snapshot)
    line = Codec(encoder).encode("snapshot", safe, wall=123.5)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    frame = Codec(decoder).decode(line)
    assert (frame.type, frame.wall, frame.v) == ("snapshot", 123.5, VERSION)
    assert isinstance(frame.data, EngineSnapshot)
    assert frame.data == safe
    assert frame.data.queue.depth_ratio == safe.queue.depth_ratio  # properties still work


def test_wire_safe_drops_every_payload_object():
    async def run() -> EngineSnapshot:
        async def fail(item: object, priority: float) -> None:
            raise ValueError("no")

        queue = PriorityQueue()
        pool = WorkerPool(queue, fail, workers=1, max_attempts=1)
        async with pool:
            for n in range(5):
                pool.submit_nowait({"card": f"secret-{n}"}, priority=1)
            await until(lambda: pool.snapshot().accounting.dead_lettered >= 2, "dead letters")
            pool.pause()
            for n in range(5):
                pool.submit_nowait({"card": f"secret-q{n}"}, priority=1)
            from engine.monitor_ops import Operations

            snapshot = Operations(queue=queue, pool=pool).snapshot()
            await pool.shutdown(0.2)
            return snapshot

    snapshot = asyncio.run(run())
    assert snapshot.top[0].item is not None and snapshot.pool.dead_letters[0].item is not None
    safe = wire_safe(snapshot, item_repr=lambda item: "<card>")
    assert all(entry.item is None and entry.item_repr == "<card>" for entry in safe.top)
    assert all(letter.item is None for letter in safe.pool.dead_letters)
    assert b"secret-q" not in Codec().encode("snapshot", safe, wall=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_fields_are_ignored_and_missing_ones_take_defaults(engine_snapshot, backend):
    codec = Codec(backend)
    frame = json.loads(codec.encode("snapshot", wire_safe(engine_snapshot), wall=1.0))
    frame["from_the_future"] = {"x": 1}
    frame["data"]["new_field"] = [1, 2]
    frame["data"]["queue"]["another"] = "y"
    del frame["data"]["submitted_rate"]  # a field with a default, as an older peer sends it
    decoded = codec.decode(json.dumps(frame)).data
    assert decoded.submitted_rate == 0.0
    assert decoded.queue == engine_snapshot.queue


@pytest.mark.parametrize("backend", BACKENDS)
def test_another_version_is_one_line_naming_both(backend):
    line = json.dumps({"v": 2, "type": "snapshot", "wall": 1.0, "data": {"whatever": 1}})
    with pytest.raises(VersionMismatch) as caught:
        Codec(backend).decode(line)
    assert str(caught.value) == ("the peer speaks heapwatch monitor protocol v2, "
                                 "this heapwatch speaks v1")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("line", [b"hello\n", b"[1, 2]\n", b'{"v": 1, "type": "bogus"}\n',
                                  b'{"v": 1, "type": "snapshot", "wall": 1, "data": {"at": 1}}\n'])
def test_a_foreign_line_is_a_frame_error(backend, line):
    with pytest.raises(FrameError):
        Codec(backend).decode(line)


async def test_a_client_meeting_another_version_says_so_in_one_line(monitor_dir):
    async def future_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(json.dumps({"v": 7, "type": "hello", "wall": time.time(),
                                 "data": {"pid": 1}}).encode() + b"\n")
        await writer.drain()
        writer.close()

    path = str(monitor_dir / "future.sock")
    server = await asyncio.start_unix_server(future_server, path)
    try:
        with pytest.raises(ClientError) as caught:
            await MonitorClient.connect(f"unix:{path}")
        assert str(caught.value) == (f"unix:{path}: the peer speaks heapwatch monitor protocol "
                                     "v7, this heapwatch speaks v1")
    finally:
        server.close()
        await server.wait_closed()
