"""Scenario files: the built-ins load, defaults are the documented ones, bad input is named."""

from __future__ import annotations

import io
import math
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.scenario as scenario_module
from engine.limits import BOUNDS, KEYS
from engine.scenario import (
    BUILTIN_SCENARIOS,
    MAX_FILE_BYTES,
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


# --------------------------------------------------------------------------- hostile files

HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"seed = {HUGE}\n", "line 1: seed must be an integer between 0 and"),
        (f"[queue]\nmaxsize = {HUGE}\n", "line 2: queue.maxsize must be an integer between 0 and 100000000, not an integer of about 400 digits"),
        (f"[pool]\nworkers = {HUGE}\n", "line 2: pool.workers must be an integer between 1 and 10000"),
        (f"[pool]\ntimeout = {HUGE}\n", "line 2: pool.timeout must be 0 (off) or a number between 0.001 and 86400"),
        (f"[[producers]]\npriorities = {{ 0 = {HUGE} }}\n", "line 2: producers.priorities.0 must be a number between 0 and 1000000"),
        (f"[[producers]]\nburst = {{ every = 1, size = {HUGE} }}\n", "line 2: producers.burst.size must be an integer between 1 and 1000000"),
        (f"[watchdog]\nsla_ms = {HUGE}\n", "line 2: watchdog.sla_ms must be a number between 1 and 86400000"),
        (f"[watchdog]\nsla_ms = {{ 9 = {HUGE} }}\n", "line 2: watchdog.sla_ms.9 must be a number between 1 and 86400000"),
        ("[[producers]]\nburst = { every = 1e-12, size = 5 }\n", "line 2: producers.burst.every must be a number between 0.001 and 86400, not 1e-12"),
        ("[[producers]]\nburst = { every = 1e-300, size = 5 }\n", "producers.burst.every must be a number between 0.001"),
        ("[watchdog]\nloop_block_ms = 1e300\n", "line 2: watchdog.loop_block_ms must be 0 (off) or a number between 2 and 60000, not 1e+300"),
        ("[watchdog]\ninterval = 0.0001\n", "watchdog.interval must be a number between 0.001 and 3600"),
        ("[pool]\ncancel_every = 0.0005\n", "pool.cancel_every must be 0 (off) or a number between 0.001"),
        ("[handler]\nblock_ms = inf\n", "line 2: handler.block_ms must be a number between 0 and 10000, not inf"),
        ("[queue]\naging = nan\n", "line 2: queue.aging must be a number between 0 and 1000, not nan"),
        ("[handler]\nlatency_ms = -inf\n", "handler.latency_ms must be a number between 0 and 600000, not -inf"),
        ("[[producers]]\npriorities = { 1e400 = 1 }\n", "producers.priorities: priority '1e400' must be a number between -1000000 and 1000000"),
        ("[[producers]]\npriorities = { 5 = 1, \"5.0\" = 2 }\n", "line 2: producers.priorities: priority 5 is given twice"),
        ("[queue]\nmaxsize = 0x" + "f" * 2000 + "\n", "queue.maxsize must be an integer between 0 and 100000000"),
        ("[queue]\nmaxsize = 1" + "0" * 5000 + "\n", "mine.toml: a number with too many digits"),
        ("x = " + "[" * 50_000 + "]" * 50_000 + "\n", "mine.toml: arrays or tables nested too deeply"),
        ("[queue]\n\"mäxsize\" = 1\n", "line 2: unknown key 'mäxsize' in [queue]; did you mean 'maxsize'?"),
        ("[queue]\n\"a\\nb\" = 1\n", "unknown key 'a\\nb' in [queue]"),
        ("description = \"two\\nlines\"\n", "line 1: description must be one line of 0 to 200 printable characters"),
        ("[[producers]]\nname = \"\"\n", "producers.name must be one line of 1 to 200 printable characters"),
        ("[pool]\nworkers = [1, [2, [3]]]\n", "line 2: pool.workers must be an integer, not an array"),
        ("[handler]\nlatency_ms = { mean = 1e300, p99 = 1e301 }\n", "handler.latency_ms.mean must be a number between 0 and 600000"),
    ],
    ids=lambda value: value[:30] if isinstance(value, str) else None,
)
def test_hostile_values_are_one_line_with_the_key_and_its_range(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, label="mine.toml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("mine.toml")
    assert expected in message, message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xef\xbb\xbf[pool]\nworkers = 2\n", None),  # a BOM is allowed
        (b"", None),
        (b"[pool]\nworkers = 2\n\xff\xfe\x00junk", "line 3: not UTF-8 text (byte 20)"),
        (b"\x00\x01\x02", "TOML syntax error"),
    ],
)
def test_bytes_load_or_give_one_line(data: bytes, expected: str | None) -> None:
    if expected is None:
        assert isinstance(parse_scenario(data, label="b.toml"), Scenario)
        return
    with pytest.raises(ScenarioError, match=re.escape(expected)):
        parse_scenario(data, label="b.toml")


def test_only_regular_files_up_to_1_mib_are_read(tmp_path: Path) -> None:
    for device in ("/dev/zero", "/dev/urandom", "/dev/null"):
        with pytest.raises(ScenarioError, match="is not a regular file"):
            load_scenario(device)
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    with pytest.raises(ScenarioError, match="is not a regular file"):
        load_scenario(fifo)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ScenarioError, match=r"larger than 1048576 bytes \(1048577 bytes\)"):
        load_scenario(big)
    big.write_bytes(b"#" * MAX_FILE_BYTES)
    assert load_scenario(big).name == "big"
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "big.toml" / "under-a-file.toml")


def test_dash_reads_standard_input_up_to_1_mib() -> None:
    loaded = load_scenario("-", stdin=io.BytesIO(b"[pool]\nworkers = 7\n"))
    assert (loaded.name, loaded.source, loaded.pool.workers) == ("stdin", "<stdin>", 7)
    with pytest.raises(ScenarioError, match="<stdin>: the scenario is larger than 1048576 bytes"):
        load_scenario("-", stdin=io.BytesIO(b"#" * (MAX_FILE_BYTES + 1)))
    with pytest.raises(ScenarioError, match="<stdin> line 2: queue.maxsize"):
        load_scenario("-", stdin=io.BytesIO(b"[queue]\nmaxsize = -1\n"))


def test_overrides_take_the_same_ranges_as_the_file() -> None:
    demo = load_scenario("demo")
    with pytest.raises(ScenarioError, match="maxsize must be an integer between 0 and 100000000"):
        demo.with_overrides(maxsize=10**400)
    with pytest.raises(ScenarioError, match="aging must be a number between 0 and 1000"):
        demo.with_overrides(aging=math.inf)
    with pytest.raises(ScenarioError, match="seed must be an integer between 0 and"):
        demo.with_overrides(seed=2**64)
