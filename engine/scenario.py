"""Scenarios: what the engine runs, loaded from TOML and validated before anything starts.

Every key, its default, its allowed range and its meaning are in engine/limits.py (`KEYS`,
`BOUNDS`), rendered in docs/scenarios.md. Times are seconds unless the key ends in `_ms`;
periods under 1 ms are refused. A file is read only if it is a regular file of at most 1 MiB
(or `-`: standard input). Any problem is one ScenarioError line, never another exception.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from engine.limits import BOUNDS, MAX_ENTRIES, MAX_TEXT, Bound, keys_table
from engine.limits import shown as _shown

__all__ = [
    "BOUNDS",
    "BUILTIN_SCENARIOS",
    "Bound",
    "Burst",
    "HandlerSettings",
    "Latency",
    "MAX_FILE_BYTES",
    "PoolSettings",
    "Producer",
    "QueueSettings",
    "Scenario",
    "ScenarioError",
    "WatchdogSettings",
    "builtin_names",
    "describe_builtins",
    "keys_table",
    "load_scenario",
    "parse_scenario",
]

BUILTIN_SCENARIOS = ("demo", "burst", "starvation", "chaos", "shutdown", "max-throughput")
"""The scenarios shipped in engine/scenarios/, in the order `--list-scenarios` prints them."""

OVERFLOW_POLICIES = ("block", "reject", "evict-lowest")
# p99 of a lognormal is exp(mu + Z99 * sigma); its mean is exp(mu + sigma**2 / 2).
Z99 = 2.3263478740408408
MAX_P99_OVER_MEAN = math.exp(Z99 * Z99 / 2)
MAX_FILE_BYTES = 1 << 20
"""A scenario file larger than this (1 MiB) is refused before it is read."""


class ScenarioError(ValueError):
    """A scenario that cannot run: the message is one line naming the file, line and value."""

    def __init__(self, message: str) -> None:
        # One line whatever went into it (a key or a path with a newline in it, say).
        super().__init__(" ".join(str(message).splitlines()))



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
    """Where it was loaded from: a path, '<stdin>', or 'built-in'."""

    def with_overrides(
        self,
        *,
        workers: int | None = None,
        maxsize: int | None = None,
        overflow: str | None = None,
        aging: float | None = None,
        seed: int | None = None,
    ) -> Scenario:
        """A copy with the command line's values in place of the file's (None: keep); each
        checked against the same `BOUNDS` as the file's."""
        queue, pool = self.queue, self.pool
        if overflow is not None and overflow not in OVERFLOW_POLICIES:
            raise ScenarioError(
                f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, not {overflow!r}"
            )
        for key, value in (("queue.maxsize", maxsize), ("queue.aging", aging),
                           ("pool.workers", workers), ("seed", seed)):
            problem = None if value is None else BOUNDS[key].problem(value)
            if problem:
                raise ScenarioError(f"{key.rpartition('.')[2]} {problem}")
        if maxsize is not None:
            queue = replace(queue, maxsize=maxsize)
        if overflow is not None:
            queue = replace(queue, overflow=overflow)
        if aging is not None:
            queue = replace(queue, aging=float(aging))
        if workers is not None:
            pool = replace(pool, workers=workers)
        return replace(self, queue=queue, pool=pool, seed=self.seed if seed is None else seed)

    @property
    def priorities(self) -> tuple[float, ...]:
        """Every priority some producer makes, sorted."""
        return tuple(sorted({p for producer in self.producers for p, _ in producer.priorities}))


# --------------------------------------------------------------------------- loading


def builtin_names() -> tuple[str, ...]:
    return BUILTIN_SCENARIOS


def _builtin_text(name: str) -> str:
    return resources.files("engine").joinpath("scenarios", f"{name}.toml").read_text("utf-8")


def _printable(text: str) -> str:
    return text if text.isprintable() else ascii(text)


def load_scenario(name_or_path: str | Path, *, stdin: BinaryIO | None = None) -> Scenario:
    """A built-in scenario by name, a TOML file by path, or `-`: TOML read from `stdin`
    (default: standard input). Raises ScenarioError, and nothing else, for anything it refuses:
    a path that is not a regular file, or a file over MAX_FILE_BYTES, is refused unread."""
    text_name = str(name_or_path)
    if text_name in BUILTIN_SCENARIOS:
        return parse_scenario(
            _builtin_text(text_name), name=text_name, source="built-in", label=f"{text_name}.toml"
        )
    shown = _printable(text_name)
    if text_name == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        try:
            data = stream.read(MAX_FILE_BYTES + 1)
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"cannot read the scenario from standard input: {exc}") from None
        if len(data) > MAX_FILE_BYTES:
            raise ScenarioError(f"<stdin>: the scenario is larger than {MAX_FILE_BYTES} bytes")
        return parse_scenario(data, name="stdin", source="<stdin>", label="<stdin>")
    path = Path(name_or_path)
    if not path.suffix and not os.path.lexists(path):
        hint = _did_you_mean(text_name, BUILTIN_SCENARIOS)
        raise ScenarioError(
            f"unknown scenario {shown!r}{hint} (built-ins: {', '.join(BUILTIN_SCENARIOS)};"
            " or give a .toml file, or - for standard input)"
        )
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ScenarioError(f"scenario file {shown!r} is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError(f"scenario file {shown!r} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ScenarioError(
                f"scenario file {shown!r} is larger than {MAX_FILE_BYTES} bytes"
                f" ({info.st_size} bytes)"
            )
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except ScenarioError:
        raise
    except (FileNotFoundError, NotADirectoryError):
        raise ScenarioError(f"scenario file {shown!r} not found") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ScenarioError(f"cannot read scenario file {shown!r}: {reason}") from None
    if len(data) > MAX_FILE_BYTES:  # it grew between the stat and the read
        raise ScenarioError(f"scenario file {shown!r} is larger than {MAX_FILE_BYTES} bytes")
    return parse_scenario(data, name=path.stem, source=str(path), label=shown)


def describe_builtins() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in scenario."""
    return [(name, load_scenario(name).description) for name in BUILTIN_SCENARIOS]


def parse_scenario(
    text: str | bytes, *, name: str = "custom", source: str = "", label: str = "scenario.toml"
) -> Scenario:
    """Parse and validate a scenario's TOML (text, or bytes in UTF-8, a BOM allowed). Any
    problem is a one-line ScenarioError that names `label`, the line and the key."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            line = text.count(b"\n", 0, exc.start) + 1
            raise ScenarioError(
                f"{label} line {line}: not UTF-8 text (byte {exc.start + 1})"
            ) from None
    text = text.removeprefix("\ufeff")
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
    except RecursionError:
        raise ScenarioError(f"{label}: arrays or tables nested too deeply") from None
    except ValueError:  # an integer too long for int() (over 4300 digits)
        raise ScenarioError(f"{label}: a number with too many digits") from None
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

    def table(self, data: Mapping[str, Any], section: str, index: int, allowed: tuple[str, ...],
              *, at: str | None = None, shown: str | None = None) -> Mapping[str, Any]:
        """Refuse keys not in `allowed`, suggesting the closest one. `at`: the key whose line
        to report (for inline tables); `shown`: how to name the table in the message."""
        if shown is None:
            shown = f"[[{section}]]" if section == "producers" else f"[{section}]"
            shown = shown if section else "the top level"
        for key in data:
            if key not in allowed:
                hint = _did_you_mean(key, allowed)
                name = key if len(key) <= 40 else key[:37] + "..."
                name = repr(name) if name.isprintable() else ascii(name)
                raise self.fail(section, index, at or key, f"unknown key {name} in {shown}{hint}")
        return data

    def entries(self, data: Mapping[str, Any], section: str, index: int, key: str) -> None:
        if len(data) > MAX_ENTRIES:
            raise self.fail(section, index, key, f"{key} has more than {MAX_ENTRIES} entries")

    def number(self, data: Mapping[str, Any], section: str, index: int, key: str, default: Any,
               *, bound: str | None = None, what: str | None = None, at: str | None = None,
               ) -> Any:
        """`data[key]` checked against BOUNDS[`bound`] (default: section.key), else `default`."""
        if key not in data:
            return default
        shown = what or (f"{section}.{key}" if section else key)
        rule = BOUNDS[bound or shown]
        problem = rule.problem(data[key])
        if problem:
            raise self.fail(section, index, at or key, f"{shown} {problem}")
        return data[key] if rule.integer else float(data[key])

    def text(self, data: Mapping[str, Any], section: str, index: int, key: str, default: str,
             *, shown: str, empty: bool) -> str:
        value = data.get(key, default)
        if (not isinstance(value, str) or len(value) > MAX_TEXT or not value.isprintable()
                or (not value and not empty)):
            need = f"one line of {'0' if empty else '1'} to {MAX_TEXT} printable characters"
            raise self.fail(section, index, key, f"{shown} must be {need}, not {_shown(value)}")
        return value

    def priority(self, section: str, index: int, key: str, raw: str, what: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(section, index, key, f"{what}: priority {_shown(raw, kind=False)}"
                            " is not a number") from None
        if BOUNDS["priority"].problem(value):
            raise self.fail(section, index, key, f"{what}: priority {_shown(raw, kind=False)}"
                            f" must be {BOUNDS['priority'].text}")
        return int(value) if value.is_integer() else value

    def kind(self, data: dict[str, Any], section: str, index: int, key: str, shown: str,
             example: str) -> Any:
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise self.fail(section, index, key, f"{shown} must be a table such as {example},"
                            f" not {_shown(value)}")
        return value

    # ------------------------------------------------------------------ sections

    def scenario(self, data: dict[str, Any], *, name: str, source: str) -> Scenario:
        sections = ("queue", "pool", "handler", "producers", "watchdog")
        self.table(data, "", 0, ("description", "seed", *sections))
        for section in sections:
            if section not in data:
                continue
            value = data[section]
            if section == "producers":
                if not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                    raise self.fail(section, 0, "",
                                    "producers must be an array of tables: write [[producers]]")
            elif not isinstance(value, dict):
                raise self.fail("", 0, section, f"{section} must be a table: write [{section}]")
        description = self.text(data, "", 0, "description", "", shown="description", empty=True)
        seed = self.number(data, "", 0, "seed", 0)
        raw_producers = data.get("producers", [{}])
        if len(raw_producers) > MAX_ENTRIES:
            raise self.fail("producers", 0, "", f"over {MAX_ENTRIES} [[producers]] tables")
        producers = tuple(self.producer(p, i) for i, p in enumerate(raw_producers))
        if not producers:
            raise self.fail("producers", 0, "", "at least one [[producers]] table is needed")
        names = [p.name for p in producers]
        for i, producer_name in enumerate(names):
            if names.index(producer_name) != i:
                raise self.fail("producers", i, "name",
                                f"producer name {producer_name!r} is used twice")
        return Scenario(
            name=name,
            description=description,
            seed=seed,
            queue=self.queue(data.get("queue", {})),
            pool=self.pool(data.get("pool", {})),
            handler=self.handler(data.get("handler", {})),
            producers=producers,
            watchdog=self.watchdog(data.get("watchdog", {})),
            source=source,
        )

    def queue(self, data: dict[str, Any]) -> QueueSettings:
        s = "queue"
        self.table(data, s, 0, ("maxsize", "overflow", "aging"))
        overflow = data.get("overflow", "block")
        if overflow not in OVERFLOW_POLICIES:
            hint = _did_you_mean(overflow, OVERFLOW_POLICIES) if isinstance(overflow, str) else ""
            raise self.fail(s, 0, "overflow", f"queue.overflow must be one of"
                            f" {', '.join(OVERFLOW_POLICIES)}, not {_shown(overflow, kind=False)}"
                            f"{hint}")
        return QueueSettings(
            maxsize=self.number(data, s, 0, "maxsize", 10_000),
            overflow=overflow,
            aging=self.number(data, s, 0, "aging", 0.0),
        )

    def pool(self, data: dict[str, Any]) -> PoolSettings:
        s = "pool"
        keys = ("workers", "max_attempts", "backoff_base", "backoff_cap", "timeout",
                "drain_timeout", "cancel_every")
        self.table(data, s, 0, keys)
        base = self.number(data, s, 0, "backoff_base", 0.1)
        cap = self.number(data, s, 0, "backoff_cap", 5.0)
        if cap < base:
            raise self.fail(s, 0, "backoff_cap",
                            f"pool.backoff_cap ({cap:g}) must be >= pool.backoff_base ({base:g})")
        return PoolSettings(
            workers=self.number(data, s, 0, "workers", 4),
            max_attempts=self.number(data, s, 0, "max_attempts", 3),
            backoff_base=base,
            backoff_cap=cap,
            timeout=self.number(data, s, 0, "timeout", 0.0) or None,
            drain_timeout=self.number(data, s, 0, "drain_timeout", 10.0),
            cancel_every=self.number(data, s, 0, "cancel_every", 0.0),
        )

    def handler(self, data: dict[str, Any]) -> HandlerSettings:
        s, key = "handler", "latency_ms"
        self.table(data, s, 0, (key, "failure_rate", "hang_rate", "block_rate", "block_ms"))
        latency = Latency()
        raw = data.get(key)
        if isinstance(raw, dict):
            self.table(raw, s, 0, ("mean", "p99"), at=key, shown="handler.latency_ms")
            for part in ("mean", "p99"):
                if part not in raw:
                    raise self.fail(s, 0, key, f"handler.latency_ms needs {part!r}")
            mean, p99 = (
                self.number(raw, s, 0, part, 0.0, bound="handler.latency_ms",
                            what=f"handler.latency_ms.{part}", at=key)
                for part in ("mean", "p99")
            )
            latency = Latency(mean, p99)
        elif raw is not None:
            mean = self.number(data, s, 0, key, 0.0)
            latency = Latency(mean, mean * 4)
        if latency.mean_ms == 0 and latency.p99_ms != 0:
            raise self.fail(s, 0, key, "handler.latency_ms.p99 must be 0 when mean is 0")
        if latency.mean_ms > 0 and not (
            latency.mean_ms <= latency.p99_ms <= latency.mean_ms * MAX_P99_OVER_MEAN
        ):
            raise self.fail(s, 0, key, f"handler.latency_ms.p99 ({latency.p99_ms:g}) must lie"
                            f" between mean ({latency.mean_ms:g}) and {MAX_P99_OVER_MEAN:.1f}"
                            " x mean")
        rates = {rate: self.number(data, s, 0, rate, 0.0)
                 for rate in ("failure_rate", "hang_rate", "block_rate")}
        if sum(rates.values()) > 1.0:
            raise self.fail(s, 0, "failure_rate",
                            "handler failure_rate + hang_rate + block_rate must not exceed 1")
        return HandlerSettings(
            latency=latency, block_ms=self.number(data, s, 0, "block_ms", 200.0), **rates
        )

    def producer(self, data: dict[str, Any], index: int) -> Producer:
        s = "producers"
        self.table(data, s, index, ("name", "rate", "priorities", "burst", "start", "stop"))
        name = self.text(data, s, index, "name", f"p{index + 1}", shown="producers.name",
                         empty=False)
        raw = data.get("priorities", {"5": 1})
        if not isinstance(raw, dict) or not raw:
            raise self.fail(s, index, "priorities", "producers.priorities must be a table of"
                            f" weights such as {{ 0 = 1, 9 = 3 }}, not {_shown(raw)}")
        self.entries(raw, s, index, "priorities")
        priorities: dict[float, float] = {}
        for key in raw:
            priority = self.priority(s, index, "priorities", key, "producers.priorities")
            if priority in priorities:
                raise self.fail(s, index, "priorities",
                                f"producers.priorities: priority {priority:g} is given twice")
            priorities[priority] = self.number(
                raw, s, index, key, 0.0, bound="producers.priorities",
                what=f"producers.priorities.{_printable(key)}", at="priorities")
        if not any(priorities.values()):
            raise self.fail(s, index, "priorities", "producers.priorities: every weight is 0")
        burst = None
        raw_burst = self.kind(data, s, index, "burst", "producers.burst",
                              "{ every = 10, size = 500 }")
        if raw_burst is not None:
            self.table(raw_burst, s, index, ("every", "size"), at="burst", shown="producers.burst")
            for key in ("every", "size"):
                if key not in raw_burst:
                    raise self.fail(s, index, "burst", f"producers.burst needs {key!r}")
            burst = Burst(*(self.number(raw_burst, s, index, key, 0, what=f"producers.burst.{key}",
                                        at="burst") for key in ("every", "size")))
        stop = self.number(data, s, index, "stop", None)
        start = self.number(data, s, index, "start", 0.0)
        if stop is not None and stop < start:
            raise self.fail(s, index, "stop", f"producers.stop ({stop:g}) is before start ({start:g})")
        return Producer(
            name=name,
            rate=self.number(data, s, index, "rate", 100.0),
            priorities=tuple(sorted(priorities.items())),
            burst=burst,
            start=start,
            stop=stop,
        )

    def watchdog(self, data: dict[str, Any]) -> WatchdogSettings:
        s, key = "watchdog", "sla_ms"
        self.table(data, s, 0, ("interval", key, "loop_block_ms"))
        sla_default = 2000.0
        by_priority: dict[float, float] = {}
        raw = data.get(key)
        if isinstance(raw, dict):
            self.entries(raw, s, 0, key)
            for entry in raw:
                what = f"watchdog.sla_ms.{_printable(entry)}"
                value = self.number(raw, s, 0, entry, 0.0, bound="watchdog.sla_ms", what=what,
                                    at=key)
                if entry == "default":
                    sla_default = value
                    continue
                priority = self.priority(s, 0, key, entry, "watchdog.sla_ms")
                if priority in by_priority:
                    raise self.fail(s, 0, key, f"watchdog.sla_ms: priority {priority:g} is given"
                                    " twice")
                by_priority[priority] = value
        elif raw is not None:
            sla_default = self.number(data, s, 0, key, 0.0)
        return WatchdogSettings(
            interval=self.number(data, s, 0, "interval", 0.5),
            sla_ms=sla_default,
            sla_ms_by_priority=tuple(sorted(by_priority.items())),
            loop_block_ms=self.number(data, s, 0, "loop_block_ms", 100.0),
        )
