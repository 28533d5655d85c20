"""The Engine on a real loop: live controls, seeded load, the report's identity."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import msgspec
import pytest
from waiting import until

from engine.load import LoadGenerator, SimulatedHandler, attempt_fate
from engine.pool import WorkerPool
from engine.queue import PriorityQueue
from engine.runtime import Engine
from engine.scenario import HandlerSettings, Latency, load_scenario, parse_scenario
from engine.snapshots import (
    AlertKind,
    Capability,
    EngineSnapshot,
    EventKind,
    ShutdownPhase,
    WorkerState,
)

REPORT_FIELDS = {
    "scenario", "seed", "duration", "submitted", "completed", "dead_lettered", "evicted",
    "rejected", "remaining", "lost", "duplicated", "throughput", "wait_by_priority", "alerts",
    "shutdown",
}

QUICK = """
seed = 3
[queue]
maxsize = 500
[pool]
workers = 3
max_attempts = 2
backoff_base = 0.01
backoff_cap = 0.02
drain_timeout = 5
[handler]
latency_ms = { mean = 2, p99 = 8 }
failure_rate = 0.2
[[producers]]
name = "b"
rate = 0
priorities = { 0 = 1, 5 = 2, 9 = 1 }
burst = { every = 0.1, size = 40 }
stop = 0.35
[watchdog]
interval = 0.05
loop_block_ms = 80
"""


async def run_quick(seed: int) -> dict:
    engine = Engine(parse_scenario(QUICK, name="quick").with_overrides(seed=seed))
    await engine.start()
    await until(lambda: engine.load.done)
    await engine.shutdown(drain_timeout=5)
    return engine.report() | {"by_priority": dict(engine.load.submitted_by_priority)}


async def test_same_seed_same_counts_where_timing_does_not_decide() -> None:
    first = await run_quick(seed=3)
    second = await run_quick(seed=3)
    other = await run_quick(seed=4)
    # Three bursts of 40 (at 0.1, 0.2, 0.3 s) before the producer stops at 0.35 s.
    assert first["submitted"] == second["submitted"] == 120
    keys = ("submitted", "completed", "dead_lettered", "by_priority")
    assert {k: first[k] for k in keys} == {k: second[k] for k in keys}
    assert first["dead_lettered"] > 0
    assert (first["by_priority"], first["dead_lettered"]) != (
        other["by_priority"], other["dead_lettered"]
    )
    for report in (first, second, other):
        assert report["lost"] == 0 and report["duplicated"] == 0
        assert report["completed"] + report["dead_lettered"] == report["submitted"]


async def test_report_has_every_field_and_is_json() -> None:
    report = await run_quick(seed=1)
    assert REPORT_FIELDS <= report.keys()
    json.dumps(report)
    phases = [p["phase"] for p in report["shutdown"]["phases"]]
    assert phases[0] == ShutdownPhase.STOPPING_INTAKE and phases[-1] == ShutdownPhase.STOPPED
    assert {w["priority"] for w in report["wait_by_priority"]} == {0, 5, 9}
    assert all(w["p50"] <= w["p99"] for w in report["wait_by_priority"])


async def test_live_controls_change_the_running_engine() -> None:
    scenario = parse_scenario(QUICK.replace("stop = 0.35", ""), name="controls")
    engine = Engine(scenario)
    await engine.start()
    snapshot = engine.snapshot()
    assert isinstance(snapshot, EngineSnapshot) and snapshot.scenario == "controls"

    assert engine.toggle_producers() is True and engine.snapshot().producers_paused
    assert engine.toggle_producers() is False

    assert engine.toggle_aging() == 1.0 and engine.queue.aging_rate == 1.0
    assert engine.toggle_aging() == 0.0
    assert [engine.cycle_overflow() for _ in range(3)] == ["reject", "evict-lowest", "block"]

    added = engine.add_worker()
    assert added == 4
    removed = engine.remove_worker()
    assert removed is not None

    engine.toggle_producers()  # quiet, so the burst's figures are its own
    before = engine.pool.accounting().submitted
    assert engine.burst(50).accepted == 50
    assert engine.flood_low(30).accepted == 30
    assert engine.pool.accounting().submitted == before + 80
    assert engine.load.submitted_by_priority[9] >= 30

    await until(lambda: engine.pool.busiest_worker() is not None)
    cancelled = engine.cancel_worker(None)
    assert cancelled is not None
    assert engine.cancel_worker(cancelled) is None  # already stopping
    assert any("cancelled" in event.message for event in engine.snapshot().events)

    report = await engine.shutdown()
    assert report.accounting.lost == 0 and report.accounting.duplicated == 0
    assert not engine.running and engine.report()["cancelled_workers"] == 1


async def test_each_live_control_is_told_once_in_the_event_log() -> None:
    engine = Engine(parse_scenario(QUICK.replace("stop = 0.35", ""), name="once"))
    await engine.start()
    removed = engine.remove_worker()
    added = engine.add_worker()
    await until(lambda: engine.pool.busiest_worker() not in (None, added, removed))
    cancelled = engine.cancel_worker(None)
    await until(lambda: cancelled not in {w.id for w in engine.pool.snapshot().workers
                                          if w.state is not WorkerState.STOPPED})
    assert removed is not None and len({added, cancelled, removed}) == 3
    said: dict[int, list[str]] = {}
    for event in engine.snapshot().events:
        if event.worker_id in (added, cancelled, removed):
            said.setdefault(event.worker_id, []).append(event.message)
    assert said[added] == [f"worker-{added} added"]
    assert said[cancelled] == [f"worker-{cancelled} cancelled: its item goes back to the queue"]
    assert len(said[removed]) == 1 and said[removed][0].startswith(f"worker-{removed} ")
    await engine.shutdown()


async def test_a_scheduled_cancel_is_told_after_the_pools_events_naming_its_worker() -> None:
    text = QUICK.replace("stop = 0.35", "").replace("workers = 3", "workers = 3\ncancel_every = 0.1")
    engine = Engine(parse_scenario(text, name="scheduled"))
    await engine.start()
    await until(lambda: any("scheduled every" in e.message for e in engine.snapshot().events))
    await engine.shutdown()
    events = engine.snapshot().events
    note = next(e for e in events if "scheduled every" in e.message)
    worker = note.worker_id
    assert note.message == (f"worker-{worker}'s cancel was the one scheduled every 0.1 s"
                            " ([pool] cancel_every)")
    [cancel] = [e for e in events if e.kind is EventKind.WORKER_CANCELLED and e.worker_id == worker]
    assert cancel.seq < note.seq


async def test_burst_under_reject_counts_and_notes_the_refused() -> None:
    scenario = parse_scenario(
        QUICK.replace("maxsize = 500", 'maxsize = 10\noverflow = "reject"').replace(
            "stop = 0.35", "start = 100"
        ),
        name="reject",
    )
    engine = Engine(scenario)
    await engine.start()
    # Synchronous: no worker takes an item until the test awaits.
    burst = engine.burst(25)
    assert (burst.requested, burst.accepted, burst.rejected, burst.waiting) == (25, 10, 15, 0)
    flood = engine.flood_low(5)
    assert (flood.accepted, flood.rejected, flood.priority) == (0, 5, 9)
    a = engine.pool.accounting()
    assert (a.queued, a.rejected) == (10, 20)
    notes = [event for event in engine.snapshot().events if event.kind is EventKind.BURST]
    assert [event.burst for event in notes] == [burst, flood]
    assert notes[0].message == "burst of 25: 10 submitted now, 15 rejected"
    assert notes[1].message == "flood of 5 at priority 9: 0 submitted now, 5 rejected"
    await engine.shutdown(drain_timeout=0)


async def test_items_waiting_for_room_are_counted_as_items() -> None:
    scenario = parse_scenario(
        QUICK.replace("maxsize = 500", "maxsize = 10").replace("stop = 0.35", "start = 100"),
        name="block",
    )
    engine = Engine(scenario)
    await engine.start()
    engine.pool.pause()  # nothing leaves the queue: what does not fit has to wait
    burst = engine.burst(300)
    assert (burst.accepted, burst.waiting) == (10, 290)
    await until(lambda: engine.queue.blocked_putters == 1, "the burst blocked in put()")
    snapshot = engine.snapshot()
    assert snapshot.queue.blocked_putters == 1  # one task...
    assert snapshot.waiting_for_room == 290  # ...holding 290 items
    engine.pool.resume()
    await until(lambda: engine.snapshot().waiting_for_room == 0, "the burst all landed", limit=10)
    assert engine.pool.accounting().submitted == 300
    await engine.shutdown(drain_timeout=0)


async def test_throughput_counts_the_drain_over_the_whole_run() -> None:
    text = QUICK.replace("mean = 2, p99 = 8", "mean = 20, p99 = 30").replace(
        "stop = 0.35", "start = 100"
    )
    engine = Engine(parse_scenario(text.replace("failure_rate = 0.2", ""), name="drain"))
    await engine.start()
    engine.burst(30)
    await engine.shutdown(drain_timeout=5)  # the drain completes every item
    report = engine.report()
    assert report["completed"] == 30 and report["shutdown"]["drain_time"] > 0
    assert report["throughput"] == pytest.approx(report["completed"] / report["duration"], 1e-3)
    assert "drain" in report["throughput_window"]


async def test_block_loop_once_is_caught_and_named() -> None:
    engine = Engine(parse_scenario(QUICK.replace("stop = 0.35", ""), name="block"))
    await engine.start()
    engine.block_loop_once(0.3)
    await until(
        lambda: any(a.kind is AlertKind.LOOP_BLOCKED for a in engine.watchdog.alerts)
    )
    await engine.shutdown()
    alert = next(a for a in engine.report()["alerts"] if a["kind"] == "loop-blocked")
    assert "blocking_handler_step" in alert["culprit"]
    with pytest.raises(ValueError, match="between 0 and 10"):
        engine.block_loop_once(-1)


async def test_shutdown_returns_what_it_cannot_drain() -> None:
    text = QUICK.replace("mean = 2, p99 = 8", "mean = 300, p99 = 400").replace(
        "failure_rate = 0.2", ""
    )
    engine = Engine(parse_scenario(text, name="slow"))
    await engine.start()
    await until(lambda: engine.load.done)
    report = await engine.shutdown(drain_timeout=0.05)
    a = report.accounting
    assert report.deadline_hit and a.returned > 0
    assert a.lost == 0 and a.duplicated == 0
    spilled = engine.returned_items()
    assert len(spilled) == a.returned == engine.report()["remaining"]
    assert {item["where"] for item in spilled} <= {"queued", "in-flight", "retry"}
    assert len({item["item"] for item in spilled}) == len(spilled)
    # A second shutdown call waits for the same report.
    assert await engine.shutdown() is report


async def test_no_alert_is_left_active_once_the_engine_stopped() -> None:
    text = QUICK.replace("mean = 2, p99 = 8", "mean = 300, p99 = 400").replace(
        "[watchdog]", "[watchdog]\nsla_ms = 100"
    )
    engine = Engine(parse_scenario(text, name="starving"))
    await engine.start()
    await until(lambda: any(
        a.kind is AlertKind.STARVATION and a.active for a in engine.watchdog.snapshot().alerts))
    await engine.shutdown(drain_timeout=0.05)
    assert [a.message for a in engine.watchdog.snapshot().alerts if a.active] == []


def test_attempt_fate_is_a_pure_function() -> None:
    assert attempt_fate(1, "a-1", 1) == attempt_fate(1, "a-1", 1)
    values = {attempt_fate(1, f"a-{i}", 1) for i in range(1000)}
    assert len(values) == 1000 and all(0 <= v < 1 for v in values)
    assert 0.4 < sum(values) / len(values) < 0.6


async def test_handler_fails_the_same_items_every_time() -> None:
    settings = HandlerSettings(latency=Latency(0, 0), failure_rate=0.5)

    async def outcomes() -> list[bool]:
        handler = SimulatedHandler(settings, seed=9, max_attempts=3)
        results = []
        for i in range(50):
            try:
                await handler(f"x-{i}", 5)
                results.append(True)
            except Exception:
                results.append(False)
        return results

    first = await outcomes()
    assert first == await outcomes()
    assert 10 < first.count(False) < 40


async def test_paused_producers_submit_nothing() -> None:
    scenario = load_scenario("demo")
    queue = PriorityQueue(100)
    pool = WorkerPool(queue, SimulatedHandler(scenario.handler), workers=0)
    await pool.start()
    load = LoadGenerator(scenario.producers, pool, queue, seed=1)
    load.pause()
    await load.start()
    await asyncio.sleep(0.2)
    assert load.submitted == 0
    load.resume()
    await until(lambda: load.submitted > 0)
    await load.stop()
    await pool.shutdown(drain_timeout=0)
    assert pool.accounting().lost == 0


async def test_events_carry_bursts_policies_and_notes_with_increasing_seq() -> None:
    text = QUICK.replace("stop = 0.35", "stop = 0.15")  # one scheduled burst of 40, at 0.1 s
    engine = Engine(parse_scenario(text, name="events"))
    assert engine.events.last_seq == 0
    await engine.start()
    await until(lambda: engine.load.done)
    engine.toggle_producers()
    engine.toggle_aging()
    engine.cycle_overflow()
    engine.burst(5)
    snapshot = engine.snapshot()
    events = snapshot.events
    assert [event.seq for event in events] == list(range(events[0].seq, events[-1].seq + 1))
    assert snapshot.last_event_seq == events[-1].seq == engine.events.last_seq
    assert events[0].kind is EventKind.NOTE and "started scenario 'events'" in events[0].message
    scheduled = [e for e in events if e.kind is EventKind.BURST and "scheduled" in e.message]
    assert len(scheduled) == 1 and scheduled[0].burst is not None
    assert scheduled[0].burst.requested == 40 and scheduled[0].burst.accepted == 40
    assert scheduled[0].message == "scheduled burst of 40 (b): 40 submitted now"
    policies = [e.message for e in events if e.kind is EventKind.POLICY_CHANGED]
    assert policies == ["producers paused", "aging on: 1 priority points/s", "overflow policy: reject"]
    assert events[-1].kind is EventKind.BURST and events[-1].burst.requested == 5
    await engine.shutdown(drain_timeout=5)


async def test_snapshot_stamps_and_capabilities_follow_the_lifecycle() -> None:
    ticks = iter(range(1, 1_000_000))
    clock = lambda: 100.0 + next(ticks) / 1000  # noqa: E731  (always moving, never the same)
    text = QUICK.replace("stop = 0.35", "start = 100").replace("loop_block_ms = 80", "")
    engine = Engine(parse_scenario(text + "loop_block_ms = 0\n", name="life"), clock=clock)
    assert engine.capabilities == frozenset()
    await engine.start()
    before = time.time()
    snapshot = engine.snapshot()
    assert snapshot.capabilities == frozenset(Capability) == engine.capabilities
    for part in (snapshot, snapshot.queue, snapshot.pool, snapshot.watchdog):
        assert 100.0 < part.taken_at < 101.0, part
        assert before <= part.wall_time <= time.time()
    assert snapshot.queue.taken_at <= snapshot.taken_at
    shutting = asyncio.ensure_future(engine.shutdown(drain_timeout=5))
    await asyncio.sleep(0)
    assert engine.shutting_down
    assert engine.snapshot().capabilities == {Capability.STACKS, Capability.MEMORY}
    await shutting
    assert engine.snapshot().capabilities == {Capability.RESTART}


class Payload:
    """A payload object no wire can carry."""

    def __repr__(self) -> str:
        return "Payload(card=4111-1111)"


def payloads(value: object) -> list[Payload]:
    """Every Payload reachable from a snapshot's dataclasses and tuples."""
    if isinstance(value, Payload):
        return [value]
    if isinstance(value, tuple):
        return [found for member in value for found in payloads(member)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [found for f in dataclasses.fields(value) for found in payloads(getattr(value, f.name))]
    return []


async def test_wire_safe_snapshot_carries_no_payload_and_keeps_the_reprs() -> None:
    text = (QUICK.replace("failure_rate = 0.2", "failure_rate = 1.0")
            .replace("max_attempts = 2", "max_attempts = 1").replace("stop = 0.35", "start = 100"))
    engine = Engine(parse_scenario(text, name="wire"), item_repr=lambda item: "<redacted>")
    await engine.start()
    for n in range(300):
        engine.pool.submit_nowait(Payload(), priority=n % 3)
    await until(lambda: engine.pool.accounting().dead_lettered >= 3)
    live = engine.snapshot()
    await engine.shutdown(drain_timeout=0)
    stopped = engine.snapshot()
    assert stopped.pool.report is not None and stopped.pool.report.returned
    for snapshot in (live, stopped):
        assert payloads(snapshot)  # the payloads are there...
        with pytest.raises(TypeError):
            msgspec.json.encode(snapshot)
        wire = snapshot.wire_safe()
        assert payloads(wire) == []  # ...and not on the wire
        decoded = msgspec.json.decode(msgspec.json.encode(wire))
        assert decoded["taken_at"] == snapshot.taken_at
        assert wire.queue is snapshot.queue  # holds no payload: shared, not copied
        named = [(w, e) for w, e in zip(wire.events, snapshot.events, strict=True) if e.item]
        assert named and all(w.item is None and w.message == e.message for w, e in named)
        assert all(w is e for w, e in zip(wire.events, snapshot.events, strict=True)
                   if e.item is None)  # an event that names no item is shared
    assert live.top and all(entry.item_repr == "<redacted>" for entry in live.top)
    wire = live.wire_safe()
    assert [e.item_repr for e in wire.top] == [e.item_repr for e in live.top]
    assert [e.item for e in wire.top] == [None] * len(live.top)
    assert [d.item_repr for d in wire.pool.dead_letters] == [
        d.item_repr for d in live.pool.dead_letters]
    assert all(isinstance(d.item, Payload) for d in live.pool.dead_letters)
    assert all(r.item is None for r in stopped.wire_safe().pool.report.returned)


class CountingQueue(PriorityQueue):
    """The real queue, counting its `stats()` calls."""

    stats_calls = 0

    def stats(self):  # type: ignore[no-untyped-def]
        CountingQueue.stats_calls += 1
        return super().stats()


async def test_one_snapshot_takes_the_queue_stats_once() -> None:
    engine = Engine(parse_scenario(QUICK.replace("stop = 0.35", ""), name="count"))
    # The engine builds its own queue; the parts share it, so its class is swapped in place.
    engine.queue.__class__ = CountingQueue
    await engine.start()
    await until(lambda: engine.watchdog.sizing_advice(engine.queue.stats()) is not None)
    CountingQueue.stats_calls = 0
    snapshot = engine.snapshot()
    assert snapshot.watchdog.sizing is not None  # the advice was built, from those stats
    assert snapshot.watchdog.sizing.current_maxsize == snapshot.queue.maxsize
    assert CountingQueue.stats_calls == 1
    await engine.shutdown(drain_timeout=5)
