"""Fuzzing the scenario loader: structured TOML (known keys, hostile values) and raw bytes.

Whatever the file holds, the loader returns a Scenario or raises the one-line ScenarioError
naming the file, nothing else; and a Scenario it returns builds an Engine without an error.
"""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.runtime import Engine
from engine.scenario import (
    BUILTIN_SCENARIOS,
    Scenario,
    ScenarioError,
    _builtin_text,
    parse_scenario,
)

SECTIONS = {
    "queue": ["maxsize", "overflow", "aging"],
    "pool": ["workers", "max_attempts", "backoff_base", "backoff_cap", "timeout",
             "drain_timeout", "cancel_every"],
    "handler": ["latency_ms", "failure_rate", "hang_rate", "block_rate", "block_ms"],
    "watchdog": ["interval", "sla_ms", "loop_block_ms"],
}
PRODUCER_KEYS = ["name", "rate", "priorities", "burst", "start", "stop"]
INNER_KEYS = ["mean", "p99", "every", "size", "default", "0", "5", "9", "-1", "1e400", "nan"]

hostile_ints = st.sampled_from([0, 1, -1, 2**53 + 1, 2**63, 2**64, 10**400, -(10**400)])
hostile_floats = st.sampled_from([0.0, -0.0, 1e-12, 1e-300, 5e-324, 1e300, 1.7e308])
numbers = st.one_of(
    st.integers(0, 20), st.floats(0, 10), hostile_ints, hostile_floats,
    st.floats(allow_nan=True, allow_infinity=True), st.integers(),
)
scalars = st.one_of(numbers, st.booleans(), st.text(max_size=8),
                    st.sampled_from(["block", "reject", "evict-lowest", "p1"]))
keys = st.one_of(st.sampled_from(INNER_KEYS), st.text(min_size=1, max_size=6))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value: object) -> str:
    """A TOML rendering (imperfect on purpose at the edges: a syntax error is a fine outcome)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def table(known: list[str]) -> st.SearchStrategy[dict[str, object]]:
    return st.dictionaries(st.sampled_from(known) | keys, values, max_size=len(known))


documents = st.fixed_dictionaries(
    {},
    optional={
        "seed": values,
        "description": values,
        **{section: table(known) for section, known in SECTIONS.items()},
        "producers": st.lists(table(PRODUCER_KEYS), max_size=3),
    },
)


def render(document: dict[str, object]) -> str:
    lines = []
    for key in ("seed", "description"):
        if key in document:
            lines.append(f"{key} = {toml_value(document[key])}")
    for section in SECTIONS:
        if section in document:
            lines.append(f"[{section}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in document[section].items()]
    for producer in document.get("producers", []):
        lines.append("[[producers]]")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in producer.items()]
    return "\n".join(lines) + "\n"


def load_or_refuse(data: str | bytes) -> Scenario | None:
    try:
        scenario = parse_scenario(data, name="fuzz", label="fuzz.toml")
    except ScenarioError as error:
        message = str(error)
        assert "\n" not in message and message.startswith("fuzz.toml"), message
        assert len(message) < 600, message
        return None
    Engine(scenario)  # what the loader accepts, the engine takes
    return scenario


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_structured_toml_loads_or_gives_one_line(document: dict[str, object]) -> None:
    load_or_refuse(render(document))


BUILTIN_BYTES = [
    _builtin_text(name).encode()
    for name in BUILTIN_SCENARIOS
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(BUILTIN_BYTES)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        choice = draw(st.integers(0, 2))
        if choice == 0 and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif choice == 1:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at : at + draw(st.integers(1, 20))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), mutated(),
                 st.binary(max_size=40).map(lambda b: b"\xef\xbb\xbf" + b)))
def test_raw_bytes_load_or_give_one_line(data: bytes) -> None:
    load_or_refuse(data)


def test_the_fuzzers_reach_both_outcomes() -> None:
    # A check on the fuzz itself: builtins survive a render, hostile values are refused.
    assert load_or_refuse(BUILTIN_BYTES[0]) is not None
    assert load_or_refuse(b"[pool]\nworkers = 1" + b"0" * 400 + b"\n") is None
