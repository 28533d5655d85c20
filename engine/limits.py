"""Every number heapwatch accepts, with its allowed range: the scenario files' keys and the
command line's flags check against the same `BOUNDS`, and `keys_table()` renders them for
docs/scenarios.md (a test keeps the page and this module equal), so what is documented is
what is enforced.

The bounds are sane rather than tight: wide enough for any real run, narrow enough that nothing
downstream overflows (a float conversion, a sleep, a timer) or spins (a period under 1 ms).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BOUNDS", "KEYS", "MAX_ENTRIES", "MAX_TEXT", "Bound", "keys_table", "shown"]

MAX_ENTRIES = 1000
"""Most producers, priority weights or per-priority SLAs a file may list."""
MAX_TEXT = 200
"""Longest description or producer name, in characters."""

@dataclass(frozen=True, slots=True)
class Bound:
    """The values a number may take: `low` to `high` inclusive (0 as well when `zero_off`)."""

    low: float
    high: float
    integer: bool = False
    zero_off: bool = False
    """0 is allowed too and turns the setting off."""

    @property
    def text(self) -> str:
        """The range in words: 'an integer between 1 and 10000'."""
        kind = "an integer" if self.integer else "a number"
        span = f"{kind} between {_num(self.low)} and {_num(self.high)}"
        return f"0 (off) or {span}" if self.zero_off else span

    def problem(self, value: object) -> str | None:
        """None when `value` fits, else what is wrong with it (never raises)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {'an integer' if self.integer else 'a number'}, not {shown(value)}"
        if self.integer and not isinstance(value, int):
            return f"must be an integer, not {shown(value)}"
        # Exact comparisons: an int of 400 digits compares with a float without overflowing,
        # and NaN fails both.
        if (self.zero_off and value == 0) or self.low <= value <= self.high:
            return None
        return f"must be {self.text}, not {shown(value, kind=False)}"


_SECONDS = 86_400.0  # a day: longer than any run a scenario describes
BOUNDS: dict[str, Bound] = {
    "seed": Bound(0, 2**63 - 1, integer=True),
    "queue.maxsize": Bound(0, 100_000_000, integer=True),
    "queue.aging": Bound(0, 1000),
    "pool.workers": Bound(1, 10_000, integer=True),
    "pool.max_attempts": Bound(1, 1000, integer=True),
    "pool.backoff_base": Bound(0, 3600),
    "pool.backoff_cap": Bound(0, 3600),
    "pool.timeout": Bound(0.001, _SECONDS, zero_off=True),
    "pool.drain_timeout": Bound(0, 3600),
    "pool.cancel_every": Bound(0.001, _SECONDS, zero_off=True),
    "handler.latency_ms": Bound(0, 600_000),
    "handler.failure_rate": Bound(0, 1),
    "handler.hang_rate": Bound(0, 1),
    "handler.block_rate": Bound(0, 1),
    "handler.block_ms": Bound(0, 10_000),
    "producers.rate": Bound(0, 1_000_000),
    "priority": Bound(-1_000_000, 1_000_000),
    "producers.priorities": Bound(0, 1_000_000),
    "producers.burst.every": Bound(0.001, _SECONDS),
    "producers.burst.size": Bound(1, 1_000_000, integer=True),
    "producers.start": Bound(0, _SECONDS),
    "producers.stop": Bound(0, _SECONDS),
    "watchdog.interval": Bound(0.001, 3600),
    "watchdog.sla_ms": Bound(1, _SECONDS * 1000),
    "watchdog.loop_block_ms": Bound(2, 60_000, zero_off=True),
    # The command line's own flags (the others take the range of the key they override).
    "--duration": Bound(0.001, 365 * _SECONDS),
    "--refresh": Bound(0.01, 60),
    "--metrics-port": Bound(0, 65_535, integer=True),
}
"""Every number a scenario (or a command-line flag) may hold, by its dotted key."""

# (section, key, default, range: a BOUNDS key or words, meaning): docs/scenarios.md's table.
KEYS: tuple[tuple[str, str, str, str, str], ...] = (
    ("(top)", "description", '""', f"one line of at most {MAX_TEXT} characters",
     "Shown by `heapwatch --list-scenarios`."),
    ("(top)", "seed", "0", "seed", "Seed of every random choice (`--seed` overrides)."),
    ("[queue]", "maxsize", "10000", "queue.maxsize", "Queue capacity; `0` is unbounded."),
    ("[queue]", "overflow", '"block"', '`"block"`, `"reject"` or `"evict-lowest"`',
     "What a full queue does with one more item."),
    ("[queue]", "aging", "0.0", "queue.aging",
     "Priority points an item gains per second waited (`0`: off)."),
    ("[pool]", "workers", "4", "pool.workers", "Worker tasks."),
    ("[pool]", "max_attempts", "3", "pool.max_attempts",
     "Attempts per item before it is dead-lettered."),
    ("[pool]", "backoff_base", "0.1", "pool.backoff_base",
     "First retry delay, seconds (doubles each attempt, with jitter)."),
    ("[pool]", "backoff_cap", "5.0", "pool.backoff_cap",
     "Longest retry delay, seconds; at least `backoff_base`."),
    ("[pool]", "timeout", "0", "pool.timeout",
     "Seconds one attempt may run before it is cancelled and fails (`0`: none)."),
    ("[pool]", "drain_timeout", "10.0", "pool.drain_timeout",
     "Seconds a graceful shutdown drains before it returns what is left."),
    ("[pool]", "cancel_every", "0", "pool.cancel_every",
     "Seconds between scheduled cancellations of the busiest worker, which is then replaced"
     " (`0`: never; the demo uses it)."),
    ("[handler]", "latency_ms", "{ mean = 20, p99 = 80 }", "handler.latency_ms",
     "Simulated work time: lognormal with this mean and p99 (a number: the mean, p99 = 4 x"
     " mean). Both in the range; `p99` must lie between `mean` and about 15 x `mean`."),
    ("[handler]", "failure_rate", "0.0", "handler.failure_rate",
     "Chance an attempt raises (then it is retried)."),
    ("[handler]", "hang_rate", "0.0", "handler.hang_rate",
     "Chance an attempt never finishes on its own (only `[pool] timeout` or a shutdown ends it)."),
    ("[handler]", "block_rate", "0.0", "handler.block_rate",
     "Chance an attempt blocks the event loop synchronously (`time.sleep`); the three rates"
     " add up to at most 1."),
    ("[handler]", "block_ms", "200", "handler.block_ms", "How long such a block holds the loop."),
    ("[[producers]]", "name", '`"p1"`, `"p2"`, ...', f"a unique string of 1 to {MAX_TEXT} characters",
     "Prefix of the item ids it makes."),
    ("[[producers]]", "rate", "100.0", "producers.rate",
     "Items per second, Poisson arrivals (`0`: bursts only)."),
    ("[[producers]]", "priorities", "{ 5 = 1 }", "producers.priorities",
     "Weights by priority: `{ 0 = 1, 5 = 8, 9 = 1 }`; a priority (a key) is a number between"
     " -1000000 and 1000000, at most 1000 of them, one weight above 0."),
    ("[[producers]]", "burst", "none", "`every`: producers.burst.every, `size`: producers.burst.size",
     "`{ every = 10, size = 500 }`: `size` extra items every `every` seconds."),
    ("[[producers]]", "start", "0.0", "producers.start",
     "Seconds before it starts (the first burst comes `every` seconds later)."),
    ("[[producers]]", "stop", "none", "producers.stop",
     "Seconds after which it stops for good; not before `start`."),
    ("[watchdog]", "interval", "0.5", "watchdog.interval", "Seconds between checks."),
    ("[watchdog]", "sla_ms", "2000", "watchdog.sla_ms",
     "Longest acceptable wait; a table gives it per priority: `{ default = 2000, 9 = 5000 }`."),
    ("[watchdog]", "loop_block_ms", "100", "watchdog.loop_block_ms",
     "A loop held longer than this raises a loop-blocked alert (`0`: off)."),
)


def keys_table() -> str:
    """The markdown table of every key: default, allowed range, meaning (docs/scenarios.md)."""

    def allowed(words: str) -> str:
        return re.sub(r"[a-z_]+\.[a-z_.]+|^seed$", lambda m: BOUNDS[m.group()].text, words)

    rows = ["| Section | Key | Default | Allowed | Meaning |", "|---|---|---|---|---|"]
    for section, key, default, words, meaning in KEYS:
        section = section if section == "(top)" else f"`{section}`"
        default = default if "`" in default else f"`{default}`"
        rows.append(f"| {section} | `{key}` | {default} | {allowed(words)} | {meaning} |")
    return "\n".join(rows)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def shown(value: object, *, kind: bool = True) -> str:
    """The value as a message shows it, short, never raising (huge ints, deep arrays)."""
    kinds = {bool: "a boolean", str: "a string", int: "an integer", float: "a number",
             list: "an array", dict: "a table"}
    name = kinds.get(type(value), type(value).__name__)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int) and value.bit_length() > 100:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    elif isinstance(value, list | dict):
        return name
    else:
        text = repr(value)
        text = text if len(text) <= 40 else text[:37] + "..."
    return f"{name} {text}" if kind else text
