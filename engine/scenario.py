"""Scenarios: what the engine runs, loaded from TOML and validated before anything starts.

A scenario file has the sections below; every key is optional and has the default shown.
Times in the file are seconds unless the key ends in `_ms`. Priorities are numbers, lower is
served first (the built-ins use 0 = urgent to 9 = background).

| Section | Key | Default | Meaning |
|---|---|---|---|
| (top) | `description` | `""` | One line shown by `heapwatch --list-scenarios`. |
| (top) | `seed` | `0` | Seed of every random choice (`--seed` overrides). |
| `[queue]` | `maxsize` | `10000` | Queue capacity; `0` is unbounded. |
| `[queue]` | `overflow` | `"block"` | Full queue: `"block"`, `"reject"` or `"evict-lowest"`. |
| `[queue]` | `aging` | `0.0` | Priority points an item gains per second waited (`0`: off). |
| `[pool]` | `workers` | `4` | Worker tasks. |
| `[pool]` | `max_attempts` | `3` | Attempts per item before it is dead-lettered. |
| `[pool]` | `backoff_base` | `0.1` | First retry delay, seconds (doubles each attempt, with jitter). |
| `[pool]` | `backoff_cap` | `5.0` | Longest retry delay, seconds. |
| `[pool]` | `timeout` | `0` | Seconds one attempt may run before it is cancelled and fails (`0`: none). |
| `[pool]` | `drain_timeout` | `10.0` | Seconds a graceful shutdown drains before it returns what is left. |
| `[pool]` | `cancel_every` | `0` | Seconds between scheduled cancellations of the busiest worker, which is then replaced (`0`: never; the demo uses it). |
| `[handler]` | `latency_ms` | `{ mean = 20, p99 = 80 }` | Simulated work time: lognormal with this mean and p99 (a number: the mean, p99 = 4 x mean). `p99` must lie between `mean` and about 15 x `mean`. |
| `[handler]` | `failure_rate` | `0.0` | Chance an attempt raises (then it is retried). |
| `[handler]` | `hang_rate` | `0.0` | Chance an attempt never finishes on its own (only `[pool] timeout` or a shutdown ends it). |
| `[handler]` | `block_rate` | `0.0` | Chance an attempt blocks the event loop synchronously (`time.sleep`). |
| `[handler]` | `block_ms` | `200` | How long such a block holds the loop. |
| `[[producers]]` | `name` | `"p1"`, `"p2"`, ... | Prefix of the item ids it makes. |
| `[[producers]]` | `rate` | `100.0` | Items per second, Poisson arrivals (`0`: bursts only). |
| `[[producers]]` | `priorities` | `{ 5 = 1 }` | Weights by priority: `{ 0 = 1, 5 = 8, 9 = 1 }`. |
| `[[producers]]` | `burst` | none | `{ every = 10, size = 500 }`: `size` extra items every `every` seconds. |
| `[[producers]]` | `start` | `0.0` | Seconds before it starts (the first burst comes `every` seconds later). |
| `[[producers]]` | `stop` | none | Seconds after which it stops for good. |
| `[watchdog]` | `interval` | `0.5` | Seconds between checks. |
| `[watchdog]` | `sla_ms` | `2000` | Longest acceptable wait; a table gives it per priority: `{ default = 2000, 9 = 5000 }`. |
| `[watchdog]` | `loop_block_ms` | `100` | A loop held longer than this raises a loop-blocked alert. |

With no `[[producers]]` section there is one producer with the defaults.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "BUILTIN_SCENARIOS",
    "Burst",
    "HandlerSettings",
    "Latency",
    "PoolSettings",
    "Producer",
    "QueueSettings",
    "Scenario",
    "ScenarioError",
    "WatchdogSettings",
    "builtin_names",
    "describe_builtins",
    "load_scenario",
    "parse_scenario",
]

BUILTIN_SCENARIOS = ("demo", "burst", "starvation", "chaos", "shutdown", "max-throughput")
"""The scenarios shipped in engine/scenarios/, in the order `--list-scenarios` prints them."""

OVERFLOW_POLICIES = ("block", "reject", "evict-lowest")
# p99 of a lognormal is exp(mu + Z99 * sigma); its mean is exp(mu + sigma**2 / 2).
Z99 = 2.3263478740408408
MAX_P99_OVER_MEAN = math.exp(Z99 * Z99 / 2)


class ScenarioError(ValueError):
    """A scenario that cannot run: the message is one line naming the file, line and value."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class QueueSettings:
    maxsize: int = 10_000
    """0 is unbounded."""
    overflow: str = "block"
    aging: float = 0.0


@dataclass(frozen=True, slots=True)
class PoolSettings:
    workers: int = 4
    max_attempts: int = 3
    backoff_base: float = 0.1
    backoff_cap: float = 5.0
    timeout: float | None = None
    """Seconds per attempt; None (0 in TOML) is no limit."""
    drain_timeout: float = 10.0
    cancel_every: float = 0.0
    """Seconds between scheduled cancellations of the busiest worker (0: never)."""


@dataclass(frozen=True, slots=True)
class Latency:
    """Simulated handler time: lognormal with this mean and 99th percentile, in milliseconds."""

    mean_ms: float = 20.0
    p99_ms: float = 80.0

    @property
    def sigma(self) -> float:
        """The lognormal's shape: the smaller root of sigma**2/2 - Z99*sigma + ln(p99/mean)."""
        if self.mean_ms <= 0 or self.p99_ms <= self.mean_ms:
            return 0.0
        ratio = math.log(self.p99_ms / self.mean_ms)
        return Z99 - math.sqrt(max(Z99 * Z99 - 2 * ratio, 0.0))

    @property
    def mu(self) -> float:
        """The lognormal's log-scale location, for seconds."""
        if self.mean_ms <= 0:
            return -math.inf
        return math.log(self.mean_ms / 1000) - self.sigma**2 / 2


@dataclass(frozen=True, slots=True)
class HandlerSettings:
    latency: Latency = field(default_factory=Latency)
    failure_rate: float = 0.0
    hang_rate: float = 0.0
    block_rate: float = 0.0
    block_ms: float = 200.0


@dataclass(frozen=True, slots=True)
class Burst:
    every: float
    """Seconds between bursts (the first comes one period after the producer starts)."""
    size: int


@dataclass(frozen=True, slots=True)
class Producer:
    name: str = "p1"
    rate: float = 100.0
    """Items per second (Poisson arrivals); 0 for bursts only."""
    priorities: tuple[tuple[float, float], ...] = ((5, 1.0),)
    """(priority, weight) pairs, sorted by priority."""
    burst: Burst | None = None
    start: float = 0.0
    stop: float | None = None


@dataclass(frozen=True, slots=True)
class WatchdogSettings:
    interval: float = 0.5
    sla_ms: float = 2000.0
    sla_ms_by_priority: tuple[tuple[float, float], ...] = ()
    """(priority, SLA in ms) pairs for the priorities with their own SLA."""
    loop_block_ms: float = 100.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole run: queue, pool, simulated handler, producers and watchdog settings."""

    name: str = "custom"
    description: str = ""
    seed: int = 0
    queue: QueueSettings = field(default_factory=QueueSettings)
    pool: PoolSettings = field(default_factory=PoolSettings)
    handler: HandlerSettings = field(default_factory=HandlerSettings)
    producers: tuple[Producer, ...] = (Producer(),)
    watchdog: WatchdogSettings = field(default_factory=WatchdogSettings)
    source: str = ""
    """Where it was loaded from: a path, or 'built-in'."""

    def with_overrides(
        self,
        *,
        workers: int | None = None,
        maxsize: int | None = None,
        overflow: str | None = None,
        aging: float | None = None,
        seed: int | None = None,
    ) -> Scenario:
        """A copy with the command line's values in place of the file's (None: keep)."""
        queue, pool = self.queue, self.pool
        if maxsize is not None:
            queue = replace(queue, maxsize=_check_count("maxsize", maxsize, minimum=0))
        if overflow is not None:
            if overflow not in OVERFLOW_POLICIES:
                raise ScenarioError(
                    f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, not {overflow!r}"
                )
            queue = replace(queue, overflow=overflow)
        if aging is not None:
            if not (math.isfinite(aging) and aging >= 0):
                raise ScenarioError(f"aging must be a number >= 0, not {aging!r}")
            queue = replace(queue, aging=float(aging))
        if workers is not None:
            pool = replace(pool, workers=_check_count("workers", workers, minimum=1))
        return replace(self, queue=queue, pool=pool, seed=self.seed if seed is None else int(seed))

    @property
    def priorities(self) -> tuple[float, ...]:
        """Every priority some producer makes, sorted."""
        return tuple(sorted({p for producer in self.producers for p, _ in producer.priorities}))


def _check_count(name: str, value: int, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


# --------------------------------------------------------------------------- loading


def builtin_names() -> tuple[str, ...]:
    return BUILTIN_SCENARIOS


def _builtin_text(name: str) -> str:
    return resources.files("engine").joinpath("scenarios", f"{name}.toml").read_text("utf-8")


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a TOML file by path. Raises ScenarioError."""
    text_name = str(name_or_path)
    if text_name in BUILTIN_SCENARIOS:
        return parse_scenario(
            _builtin_text(text_name), name=text_name, source="built-in", label=f"{text_name}.toml"
        )
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        hint = _did_you_mean(text_name, BUILTIN_SCENARIOS)
        raise ScenarioError(
            f"unknown scenario {text_name!r}{hint} (built-ins: {', '.join(BUILTIN_SCENARIOS)};"
            " or give a .toml file)"
        )
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {text_name!r} not found") from None
    except IsADirectoryError:
        raise ScenarioError(f"scenario file {text_name!r} is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario file {text_name!r}: {exc}") from None
    return parse_scenario(text, name=path.stem, source=str(path), label=text_name)


def describe_builtins() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in scenario."""
    return [(name, load_scenario(name).description) for name in BUILTIN_SCENARIOS]


def parse_scenario(
    text: str, *, name: str = "custom", source: str = "", label: str = "scenario.toml"
) -> Scenario:
    """Parse and validate a scenario's TOML text. Every error is a one-line ScenarioError
    that names `label`, the line and the bad value."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if match:
            detail = message[: match.start()].strip()
            raise ScenarioError(
                f"{label} line {match.group(1)}: TOML syntax error: {detail}"
                f" (column {match.group(2)})"
            ) from None
        raise ScenarioError(f"{label}: TOML syntax error: {message}") from None
    return _Parser(text, label).scenario(data, name=name, source=source)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=")


class _Parser:
    """Turns the TOML tables into settings, checking each value and where it came from."""

    def __init__(self, text: str, label: str) -> None:
        self.label = label
        self.lines = self._index_lines(text)

    @staticmethod
    def _index_lines(text: str) -> dict[tuple[str, int, str], int]:
        """(section, array index, key) -> line number, by a light scan of the source."""
        lines: dict[tuple[str, int, str], int] = {}
        section, index = "", 0
        counts: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                section = header.group(2).strip().strip("\"'")
                if header.group(1) == "[[":
                    index = counts.get(section, 0)
                    counts[section] = index + 1
                else:
                    index = 0
                lines.setdefault((section, index, ""), number)
                continue
            key = _KEY.match(line)
            if key:
                lines.setdefault((section, index, key.group(1).strip("\"'")), number)
        return lines

    def fail(self, section: str, index: int, key: str, message: str) -> ScenarioError:
        line = (
            self.lines.get((section, index, key))
            or self.lines.get((f"{section}.{key}" if section else key, 0, ""))  # a [table] key
            or self.lines.get((section, index, ""))
        )
        where = f"{self.label} line {line}" if line else self.label
        return ScenarioError(f"{where}: {message}")

    # ------------------------------------------------------------------ typed reads

    def table(
        self,
        data: Mapping[str, Any],
        section: str,
        index: int,
        allowed: tuple[str, ...],
        *,
        at: str | None = None,
        shown: str | None = None,
    ) -> Mapping[str, Any]:
        """Refuse keys not in `allowed`, suggesting the closest one. `at`: the key whose line
        to report (for inline tables); `shown`: how to name the table in the message."""
        if shown is None:
            shown = f"[[{section}]]" if section == "producers" else f"[{section}]"
            shown = shown if section else "the top level"
        for key in data:
            if key not in allowed:
                hint = _did_you_mean(key, allowed)
                raise self.fail(section, index, at or key, f"unknown key {key!r} in {shown}{hint}")
        return data

    def number(
        self,
        data: Mapping[str, Any],
        section: str,
        index: int,
        key: str,
        default: float,
        *,
        minimum: float = 0.0,
        maximum: float | None = None,
        integer: bool = False,
        what: str | None = None,
        at: str | None = None,
    ) -> Any:
        """`data[key]` checked to be a number (an int if `integer`) in range, else `default`."""
        if key not in data:
            return default
        value = data[key]
        shown = what or (f"{section}.{key}" if section else key)
        line_key = at or key
        kind = "an integer" if integer else "a number"
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (integer and not isinstance(value, int))
        ):
            raise self.fail(
                section,
                index,
                line_key,
                f"{shown} must be {kind}, not {_type_name(value)} {_show(value)}",
            )
        if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum:g}" if maximum is None else f"between {minimum:g} and {maximum:g}"
            raise self.fail(
                section, index, line_key, f"{shown} must be {kind} {bound}, not {value!r}"
            )
        return value if integer else float(value)

    def priority_key(self, section: str, index: int, key: str, raw: str, what: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(
                section, index, key, f"{what}: priority {raw!r} is not a number"
            ) from None
        if not math.isfinite(value):
            raise self.fail(section, index, key, f"{what}: priority {raw!r} is not finite")
        return int(value) if value.is_integer() else value

    # ------------------------------------------------------------------ sections

    def scenario(self, data: dict[str, Any], *, name: str, source: str) -> Scenario:
        sections = ("queue", "pool", "handler", "producers", "watchdog")
        top = ("description", "seed", *sections)
        self.table(data, "", 0, top)
        for section in sections:
            expected_array = section == "producers"
            if section not in data:
                continue
            value = data[section]
            if expected_array and not (
                isinstance(value, list) and all(isinstance(v, dict) for v in value)
            ):
                raise self.fail(
                    section, 0, "", "producers must be an array of tables: write [[producers]]"
                )
            if not expected_array and not isinstance(value, dict):
                raise self.fail("", 0, section, f"{section} must be a table: write [{section}]")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("", 0, "description", "description must be a string")
        seed = self.number(data, "", 0, "seed", 0, integer=True, minimum=0)
        producers = tuple(self.producer(p, i) for i, p in enumerate(data.get("producers", [{}])))
        if not producers:
            raise self.fail("producers", 0, "", "at least one [[producers]] table is needed")
        names = [p.name for p in producers]
        for i, producer_name in enumerate(names):
            if names.index(producer_name) != i:
                raise self.fail(
                    "producers", i, "name", f"producer name {producer_name!r} is used twice"
                )
        pool = self.pool(data.get("pool", {}))
        handler = self.handler(data.get("handler", {}))
        return Scenario(
            name=name,
            description=description,
            seed=seed,
            queue=self.queue(data.get("queue", {})),
            pool=pool,
            handler=handler,
            producers=producers,
            watchdog=self.watchdog(data.get("watchdog", {})),
            source=source,
        )

    def queue(self, data: dict[str, Any]) -> QueueSettings:
        s = "queue"
        self.table(data, s, 0, ("maxsize", "overflow", "aging"))
        overflow = data.get("overflow", "block")
        if overflow not in OVERFLOW_POLICIES:
            hint = _did_you_mean(str(overflow), OVERFLOW_POLICIES)
            raise self.fail(
                s,
                0,
                "overflow",
                f"queue.overflow must be one of {', '.join(OVERFLOW_POLICIES)},"
                f" not {_show(overflow)}{hint}",
            )
        return QueueSettings(
            maxsize=self.number(data, s, 0, "maxsize", 10_000, integer=True),
            overflow=overflow,
            aging=self.number(data, s, 0, "aging", 0.0),
        )

    def pool(self, data: dict[str, Any]) -> PoolSettings:
        s = "pool"
        self.table(
            data,
            s,
            0,
            (
                "workers",
                "max_attempts",
                "backoff_base",
                "backoff_cap",
                "timeout",
                "drain_timeout",
                "cancel_every",
            ),
        )
        base = self.number(data, s, 0, "backoff_base", 0.1)
        cap = self.number(data, s, 0, "backoff_cap", 5.0)
        if cap < base:
            raise self.fail(
                s,
                0,
                "backoff_cap",
                f"pool.backoff_cap ({cap:g}) must be >= pool.backoff_base ({base:g})",
            )
        timeout = self.number(data, s, 0, "timeout", 0.0)
        return PoolSettings(
            workers=self.number(data, s, 0, "workers", 4, integer=True, minimum=1),
            max_attempts=self.number(data, s, 0, "max_attempts", 3, integer=True, minimum=1),
            backoff_base=base,
            backoff_cap=cap,
            timeout=timeout or None,
            drain_timeout=self.number(data, s, 0, "drain_timeout", 10.0),
            cancel_every=self.number(data, s, 0, "cancel_every", 0.0),
        )

    def handler(self, data: dict[str, Any]) -> HandlerSettings:
        s = "handler"
        self.table(
            data, s, 0, ("latency_ms", "failure_rate", "hang_rate", "block_rate", "block_ms")
        )
        latency = Latency()
        raw = data.get("latency_ms")
        if isinstance(raw, dict):
            self.table(raw, s, 0, ("mean", "p99"), at="latency_ms", shown="handler.latency_ms")
            for key in ("mean", "p99"):
                if key not in raw:
                    raise self.fail(s, 0, "latency_ms", f"handler.latency_ms needs {key!r}")
            mean = self.number(
                raw, s, 0, "mean", 0.0, what="handler.latency_ms.mean", at="latency_ms"
            )
            p99 = self.number(raw, s, 0, "p99", 0.0, what="handler.latency_ms.p99", at="latency_ms")
            latency = Latency(mean, p99)
        elif raw is not None:
            mean = self.number(data, s, 0, "latency_ms", 0.0)
            latency = Latency(mean, mean * 4)
        if latency.mean_ms == 0 and latency.p99_ms != 0:
            raise self.fail(s, 0, "latency_ms", "handler.latency_ms.p99 must be 0 when mean is 0")
        if latency.mean_ms > 0 and not (
            latency.mean_ms <= latency.p99_ms <= latency.mean_ms * MAX_P99_OVER_MEAN
        ):
            raise self.fail(
                s,
                0,
                "latency_ms",
                f"handler.latency_ms.p99 ({latency.p99_ms:g}) must lie between mean"
                f" ({latency.mean_ms:g}) and {MAX_P99_OVER_MEAN:.1f} x mean",
            )
        rates = {
            key: self.number(data, s, 0, key, 0.0, maximum=1.0)
            for key in ("failure_rate", "hang_rate", "block_rate")
        }
        if sum(rates.values()) > 1.0:
            raise self.fail(
                s,
                0,
                "failure_rate",
                "handler failure_rate + hang_rate + block_rate must not exceed 1",
            )
        return HandlerSettings(
            latency=latency,
            block_ms=self.number(data, s, 0, "block_ms", 200.0),
            **rates,
        )

    def producer(self, data: dict[str, Any], index: int) -> Producer:
        s = "producers"
        self.table(data, s, index, ("name", "rate", "priorities", "burst", "start", "stop"))
        name = data.get("name", f"p{index + 1}")
        if not isinstance(name, str) or not name:
            raise self.fail(
                s, index, "name", f"producers.name must be a non-empty string, not {_show(name)}"
            )
        raw = data.get("priorities", {"5": 1})
        if not isinstance(raw, dict) or not raw:
            raise self.fail(
                s,
                index,
                "priorities",
                f"producers.priorities must be a table of weights such as"
                f" {{ 0 = 1, 9 = 3 }}, not {_show(raw)}",
            )
        priorities: dict[float, float] = {}
        for key in raw:
            what = f"producers.priorities.{key}"
            priority = self.priority_key(s, index, "priorities", key, "producers.priorities")
            priorities[priority] = self.number(raw, s, index, key, 0.0, what=what, at="priorities")
        if not any(priorities.values()):
            raise self.fail(s, index, "priorities", "producers.priorities: every weight is 0")
        burst = None
        if "burst" in data:
            raw_burst = data["burst"]
            if not isinstance(raw_burst, dict):
                raise self.fail(
                    s,
                    index,
                    "burst",
                    f"producers.burst must be a table such as {{ every = 10, size = 500 }},"
                    f" not {_show(raw_burst)}",
                )
            self.table(raw_burst, s, index, ("every", "size"), at="burst", shown="producers.burst")
            for key in ("every", "size"):
                if key not in raw_burst:
                    raise self.fail(s, index, "burst", f"producers.burst needs {key!r}")
            every = self.number(
                raw_burst, s, index, "every", 0.0, what="producers.burst.every", at="burst"
            )
            if every <= 0:
                raise self.fail(s, index, "burst", "producers.burst.every must be > 0")
            size = self.number(
                raw_burst,
                s,
                index,
                "size",
                0,
                integer=True,
                what="producers.burst.size",
                at="burst",
            )
            burst = Burst(every=every, size=size)
        stop = self.number(data, s, index, "stop", 0.0) if "stop" in data else None
        start = self.number(data, s, index, "start", 0.0)
        if stop is not None and stop < start:
            raise self.fail(
                s, index, "stop", f"producers.stop ({stop:g}) is before start ({start:g})"
            )
        return Producer(
            name=name,
            rate=self.number(data, s, index, "rate", 100.0),
            priorities=tuple(sorted(priorities.items())),
            burst=burst,
            start=start,
            stop=stop,
        )

    def watchdog(self, data: dict[str, Any]) -> WatchdogSettings:
        s = "watchdog"
        self.table(data, s, 0, ("interval", "sla_ms", "loop_block_ms"))
        interval = self.number(data, s, 0, "interval", 0.5)
        if interval <= 0:
            raise self.fail(s, 0, "interval", "watchdog.interval must be > 0")
        sla_default = 2000.0
        by_priority: dict[float, float] = {}
        raw = data.get("sla_ms")
        if isinstance(raw, dict):
            for key in raw:
                what = f"watchdog.sla_ms.{key}"
                value = self.number(raw, s, 0, key, 0.0, what=what, at="sla_ms")
                if value <= 0:
                    raise self.fail(s, 0, "sla_ms", f"{what} must be > 0, not {value:g}")
                if key == "default":
                    sla_default = value
                else:
                    priority = self.priority_key(s, 0, "sla_ms", key, "watchdog.sla_ms")
                    by_priority[priority] = value
        elif raw is not None:
            sla_default = self.number(data, s, 0, "sla_ms", 0.0)
            if sla_default <= 0:
                raise self.fail(s, 0, "sla_ms", "watchdog.sla_ms must be > 0")
        return WatchdogSettings(
            interval=interval,
            sla_ms=sla_default,
            sla_ms_by_priority=tuple(sorted(by_priority.items())),
            loop_block_ms=self.number(data, s, 0, "loop_block_ms", 100.0),
        )


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
