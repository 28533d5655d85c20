"""engine.report: the report and the spill from snapshots, valid JSON for any float."""

from __future__ import annotations

import json
import math
from dataclasses import replace

from test_runtime import QUICK
from waiting import until

from engine.report import NULL_MEANING, build_report, json_safe, spill_records, to_json
from engine.runtime import Engine
from engine.scenario import parse_scenario


def strict(text: str) -> object:
    """json.loads that refuses NaN and Infinity, as strict JSON readers do."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in the JSON")

    return json.loads(text, parse_constant=refuse)


async def test_the_engine_report_is_the_pure_builders_and_valid_json() -> None:
    engine = Engine(parse_scenario(QUICK, name="quick"))
    await engine.start()
    await until(lambda: engine.load.done)
    await engine.shutdown(drain_timeout=5)
    report = engine.report()
    assert report["nulls"] == NULL_MEANING
    assert report["submitted"] == 120 and report["lost"] == 0
    assert report == strict(to_json(report))
    assert engine.returned_items() == spill_records(engine.pool.report) == []
    # The same builder over snapshots with infinities (an unbounded maxsize as math.inf, an
    # infinite wait): null where JSON has no number, never Infinity or NaN.
    stats = engine.queue.stats()
    hostile = build_report(
        scenario=engine.scenario, accounting=engine.pool.accounting(),
        shutdown=replace(engine.pool.report, drain_time=math.inf), queue=replace(
            stats, maxsize=math.inf,
            per_priority=tuple(replace(p, wait_p99=math.nan) for p in stats.per_priority)),
        elapsed=1.0, origin=0.0, alerts=(), submitted_by_priority={}, handler={},
        cancelled_workers=0, alerts_raised={}, overflow="block", aging=math.inf,
    )
    decoded = strict(to_json(hostile, indent=2))
    assert decoded["settings"]["maxsize"] is None and decoded["settings"]["aging"] is None
    assert decoded["shutdown"]["drain_time"] is None
    assert all(level["p99"] is None for level in decoded["wait_by_priority"])


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_json_safe_takes_anything() -> None:
    value = {1.0: [math.inf, -math.inf, math.nan, 2.5], "t": (1, "a"), "x": Unprintable(),
             "s": {3}, "big": 10**400}
    decoded = strict(to_json(value))
    assert decoded["1"] == [None, None, None, 2.5]
    assert decoded["t"] == [1, "a"]
    assert decoded["x"] == "<Unprintable (repr failed)>"
    assert decoded["s"] == "{3}"
    assert decoded["big"] == 10**400
    assert json_safe(math.nan) is None
