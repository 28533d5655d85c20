"""Scenario files: the built-ins load, defaults are the documented ones, bad input is named."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.scenario as scenario_module
from engine.limits import BOUNDS, KEYS
from engine.scenario import (
    BUILTIN_SCENARIOS,
    Z99,
    Latency,
    Scenario,
    ScenarioError,
    describe_builtins,
    keys_table,
    load_scenario,
    parse_scenario,
)

ROOT = Path(__file__).resolve().parent.parent


def test_every_builtin_loads_with_a_description() -> None:
    rows = describe_builtins()
    assert [name for name, _ in rows] == list(BUILTIN_SCENARIOS)
    assert set(BUILTIN_SCENARIOS) == {
        "demo", "burst", "starvation", "chaos", "shutdown", "max-throughput"
    }
    for name, description in rows:
        assert description, name
        assert load_scenario(name).name == name


def test_demo_has_what_it_promises() -> None:
    demo = load_scenario("demo")
    assert any(p.burst is not None for p in demo.producers)
    assert demo.handler.failure_rate > 0 and demo.pool.max_attempts > 1
    assert demo.pool.cancel_every > 0
    assert demo.queue.aging == 0  # so that the lowest priority starves until aging is on
    assert max(demo.priorities) == 9


def test_empty_file_gives_the_documented_defaults() -> None:
    parsed = parse_scenario("", name="x")
    defaults = Scenario(name="x")
    assert parsed.queue == defaults.queue
    assert parsed.pool == defaults.pool
    assert parsed.handler == defaults.handler
    assert parsed.producers == defaults.producers
    assert parsed.watchdog == defaults.watchdog


def test_defaults_table_matches_the_dataclasses() -> None:
    rows = {(section, key): default for section, key, default, _, _ in KEYS}
    s = Scenario()
    assert rows[("[queue]", "maxsize")] == f"{s.queue.maxsize}"
    assert rows[("[queue]", "overflow")] == '"block"'
    assert rows[("[pool]", "workers")] == str(s.pool.workers)
    assert rows[("[pool]", "max_attempts")] == str(s.pool.max_attempts)
    assert float(rows[("[pool]", "backoff_base")]) == s.pool.backoff_base
    assert float(rows[("[pool]", "backoff_cap")]) == s.pool.backoff_cap
    assert float(rows[("[pool]", "drain_timeout")]) == s.pool.drain_timeout
    assert float(rows[("[watchdog]", "interval")]) == s.watchdog.interval
    assert float(rows[("[watchdog]", "sla_ms")]) == s.watchdog.sla_ms
    assert float(rows[("[watchdog]", "loop_block_ms")]) == s.watchdog.loop_block_ms
    assert float(rows[("[handler]", "block_ms")]) == s.handler.block_ms
    # Every default lies in its own documented range.
    for (section, key), default in rows.items():
        name = key if section == "(top)" else f"{section.strip('[]')}.{key}"
        if name in BOUNDS and default.replace(".", "").isdigit():
            assert BOUNDS[name].problem(float(default) if "." in default else int(default)) is None


def test_docs_page_carries_the_same_table() -> None:
    page = (ROOT / "docs" / "scenarios.md").read_text()
    assert keys_table() in page
    # Every range the parser enforces is in the table the page shows.
    for bound in BOUNDS.values():
        assert bound.text in page


def test_full_file_is_read() -> None:
    text = """
description = "mine"
seed = 42
[queue]
maxsize = 50
overflow = "evict-lowest"
aging = 0.5
[pool]
workers = 2
max_attempts = 5
backoff_base = 0.01
backoff_cap = 0.2
timeout = 1.5
[handler]
latency_ms = { mean = 10, p99 = 40 }
failure_rate = 0.25
hang_rate = 0.05
block_rate = 0.01
[[producers]]
name = "a"
rate = 30
priorities = { 0 = 1, 9 = 3 }
burst = { every = 2, size = 100 }
stop = 10
[[producers]]
rate = 0
burst = { every = 1.5, size = 7 }
[watchdog]
interval = 0.25
sla_ms = { default = 800, 9 = 4000 }
loop_block_ms = 50
"""
    s = parse_scenario(text, name="mine")
    assert (s.description, s.seed) == ("mine", 42)
    assert (s.queue.maxsize, s.queue.overflow, s.queue.aging) == (50, "evict-lowest", 0.5)
    assert (s.pool.workers, s.pool.max_attempts, s.pool.timeout) == (2, 5, 1.5)
    assert s.handler.latency == Latency(10, 40)
    assert s.producers[0].priorities == ((0, 1.0), (9, 3.0))
    assert s.producers[0].stop == 10
    assert s.producers[1].name == "p2" and s.producers[1].burst.size == 7
    assert s.watchdog.sla_ms == 800 and s.watchdog.sla_ms_by_priority == ((9, 4000.0),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[pool]\nworkers = 4\nworker = 3\n", "line 3: unknown key 'worker' in [pool]; did you mean 'workers'?"),
        ("[queue]\n\nmaxsize = -1\n", "line 3: queue.maxsize must be an integer between 0 and 100000000, not -1"),
        ("[pool]\nworkers = 0\n", "line 2: pool.workers must be an integer between 1 and 10000, not 0"),
        ("[pool]\nworkers = \"four\"\n", "line 2: pool.workers must be an integer, not a string 'four'"),
        ("[pool]\nworkers = 2.5\n", "line 2: pool.workers must be an integer, not a number 2.5"),
        ("[handler]\nfailure_rate = true\n", "line 2: handler.failure_rate must be a number, not a boolean true"),
        ("[handler]\nfailure_rate = 1.5\n", "handler.failure_rate must be a number between 0 and 1, not 1.5"),
        ("[queue]\noverflow = \"drop\"\n", "line 2: queue.overflow must be one of block, reject, evict-lowest, not 'drop'"),
        ("[queue]\noverflow = \"evict_lowest\"\n", "did you mean 'evict-lowest'?"),
        ("[queu]\nmaxsize = 1\n", "line 1: unknown key 'queu' in the top level; did you mean 'queue'?"),
        ("[queue]\nmaxsize = 1\n[queue\n", "line 3: TOML syntax error"),
        ("[pool]\nworkers = = 2\n", "line 2: TOML syntax error"),
        ("[[producers]]\nrate = 1\n[[producers]]\nrat = 2\n", "line 4: unknown key 'rat' in [[producers]]; did you mean 'rate'?"),
        ("[[producers]]\npriorities = { 0 = -1 }\n", "line 2: producers.priorities.0 must be a number between 0 and 1000000, not -1"),
        ("[[producers]]\npriorities = { 0 = 0 }\n", "every weight is 0"),
        ("[[producers]]\nburst = { every = 0, size = 10 }\n", "line 2: producers.burst.every must be a number between 0.001 and 86400, not 0"),
        ("[[producers]]\nburst = { every = 1 }\n", "producers.burst needs 'size'"),
        ("[[producers]]\nname = \"a\"\n[[producers]]\nname = \"a\"\n", "line 4: producer name 'a' is used twice"),
        ("[handler]\nlatency_ms = { mean = 10, p99 = 5 }\n", "line 2: handler.latency_ms.p99 (5) must lie between mean (10)"),
        ("[handler]\nlatency_ms = { mean = 10, p99 = 1000 }\n", "must lie between mean"),
        ("[pool]\nbackoff_base = 2\nbackoff_cap = 1\n", "pool.backoff_cap (1) must be >= pool.backoff_base (2)"),
        ("[watchdog]\nsla_ms = { default = 0 }\n", "line 2: watchdog.sla_ms.default must be a number between 1 and 86400000, not 0"),
        ("producers = 3\n", "producers must be an array of tables"),
        ("seed = -3\n", "line 1: seed must be an integer between 0 and 9223372036854775807, not -3"),
    ],
)
def test_bad_input_is_one_line_naming_file_line_and_value(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, label="mine.toml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("mine.toml")
    assert expected in message


def test_unknown_builtin_suggests_the_closest(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="did you mean 'chaos'"):
        load_scenario("choas")
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "missing.toml")


def test_file_path_loads_and_is_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "night.toml"
    path.write_text("[pool]\nworkers = 3\n")
    s = load_scenario(str(path))
    assert (s.name, s.pool.workers, s.source) == ("night", 3, str(path))


def test_overrides_replace_file_values_and_refuse_bad_ones() -> None:
    s = load_scenario("demo").with_overrides(
        workers=9, maxsize=0, overflow="reject", aging=2.0, seed=11
    )
    assert (s.pool.workers, s.queue.maxsize, s.queue.overflow, s.queue.aging, s.seed) == (
        9, 0, "reject", 2.0, 11,
    )
    with pytest.raises(ScenarioError, match="workers must be an integer between 1 and 10000"):
        s.with_overrides(workers=0)
    with pytest.raises(ScenarioError, match="overflow must be one of"):
        s.with_overrides(overflow="drop")


@settings(max_examples=60, deadline=None)
@given(
    mean=st.floats(min_value=0.1, max_value=10_000),
    ratio=st.floats(min_value=1.0, max_value=14.9),
)
def test_latency_fit_reproduces_mean_and_p99(mean: float, ratio: float) -> None:
    latency = Latency(mean, mean * ratio)
    fitted_mean = math.exp(latency.mu + latency.sigma**2 / 2) * 1000
    fitted_p99 = math.exp(latency.mu + Z99 * latency.sigma) * 1000
    assert fitted_mean == pytest.approx(mean, rel=1e-9)
    assert fitted_p99 == pytest.approx(mean * ratio, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(key=st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
def test_any_unknown_pool_key_is_refused(key: str) -> None:
    if key in scenario_module.PoolSettings.__dataclass_fields__:
        return
    with pytest.raises(ScenarioError, match=f"unknown key '{key}' in \\[pool\\]"):
        parse_scenario(f"[pool]\n{key} = 1\n")
