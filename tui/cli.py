"""`heapwatch`: open the dashboard on a scenario, or run it headless and write a report.

Everything the command is given is checked before anything starts: a bad flag, scenario, TOML
file, value or output path is one line on stderr (`heapwatch: error: ...`) and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import gc
import json
import math
import os
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import engine
from engine.scenario import (
    BUILTIN_SCENARIOS,
    OVERFLOW_POLICIES,
    Scenario,
    ScenarioError,
    describe_builtins,
    load_scenario,
)

__all__ = ["build_parser", "main"]

PROG = "heapwatch"
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input found after argparse: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) with a close-match suggestion."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            unknown = message.split(":", 1)[1].split()
            flags = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            for word in unknown:
                if word.startswith("-"):
                    close = difflib.get_close_matches(word.split("=")[0], flags, n=1)
                    if close:
                        message += f"; did you mean {close[0]}?"
                    break
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, not {text!r}")
        return value

    return parse


def _number(minimum: float, *, inclusive: bool = True, maximum: float | None = None):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
        low_ok = value >= minimum if inclusive else value > minimum
        if not math.isfinite(value) or not low_ok or (maximum is not None and value > maximum):
            bound = f"{'>=' if inclusive else '>'} {minimum:g}"
            if maximum is not None:
                bound += f" and <= {maximum:g}"
            raise argparse.ArgumentTypeError(f"must be a number {bound}, not {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The `heapwatch` argument parser."""
    parser = _Parser(
        prog=PROG,
        description=(
            "A live terminal dashboard for an asyncio priority queue, its workers and a"
            " starvation watchdog. With no argument it opens the dashboard on the demo."
        ),
        epilog=f"built-in scenarios: {', '.join(BUILTIN_SCENARIOS)} (see --list-scenarios)",
        allow_abbrev=False,
    )
    run = parser.add_argument_group("what to run (flags override the scenario)")
    run.add_argument(
        "--scenario", metavar="NAME|FILE", default="demo",
        help="a built-in scenario name or a scenario TOML file (default: demo)",
    )
    run.add_argument("--workers", metavar="N", type=_integer(1), help="worker tasks")
    run.add_argument(
        "--maxsize", metavar="N", type=_integer(0), help="queue capacity (0: unbounded)"
    )
    run.add_argument(
        "--overflow", choices=OVERFLOW_POLICIES, help="what a full queue does with one more item"
    )
    run.add_argument(
        "--aging", metavar="RATE", type=_number(0),
        help="priority points an item gains per second waited (0: off)",
    )
    run.add_argument("--seed", metavar="N", type=_integer(0), help="seed of every random choice")
    run.add_argument(
        "--duration", metavar="SECONDS", type=_number(0, inclusive=False),
        help="shut down gracefully after this long, then exit",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--report", metavar="FILE", type=Path, help="write the final report as JSON")
    out.add_argument(
        "--spill", metavar="FILE", type=Path,
        help="write the items returned at shutdown, one JSON object per line",
    )
    out.add_argument(
        "--headless", action="store_true",
        help="no dashboard: a live summary on stderr (plain lines when not a terminal)",
    )
    out.add_argument(
        "--metrics-port", metavar="N", type=_integer(0, 65535),
        help="serve Prometheus metrics on 127.0.0.1:N (0: any free port)",
    )
    out.add_argument(
        "--refresh", metavar="HZ", type=_number(0, inclusive=False, maximum=60), default=None,
        help="screen refreshes per second (default: 5 for the dashboard, 4 headless)",
    )
    out.add_argument(
        "--web", metavar="[HOST:]PORT",
        help="serve the dashboard in a browser (one session per page) on 127.0.0.1 unless a"
        " HOST is given; prints the URL with its token",
    )
    info = parser.add_argument_group("information")
    info.add_argument(
        "--list-scenarios", action="store_true", help="list the built-in scenarios and exit"
    )
    info.add_argument("--version", action="version", version=f"%(prog)s {engine.__version__}")
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_output(flag: str, path: Path | None) -> None:
    """The file must be writable where it is asked for: checked before the run, not after."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {str(path)!r} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{flag} {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {str(path)!r} is not writable")


def _check_port(port: int | None) -> None:
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise UsageError(f"--metrics-port {port}: {error.strerror or error}") from None


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario named by `--scenario`, with the other flags in place of its values."""
    return load_scenario(args.scenario).with_overrides(
        workers=args.workers,
        maxsize=args.maxsize,
        overflow=args.overflow,
        aging=args.aging,
        seed=args.seed,
    )


def _list_scenarios() -> int:
    rows = describe_builtins()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0


def write_outputs(
    runtime: Any, report_path: Path | None, spill_path: Path | None
) -> list[str]:
    """Write `--report` and `--spill`; the lines to tell the user where they went."""
    notes = []
    if report_path is not None:
        report_path.write_text(json.dumps(runtime.report(), indent=2) + "\n", encoding="utf-8")
        notes.append(f"report written to {report_path}")
    if spill_path is not None:
        items = runtime.returned_items()
        with spill_path.open("w", encoding="utf-8") as spill:
            for item in items:
                spill.write(json.dumps(item, default=repr) + "\n")
        notes.append(f"{len(items)} returned items written to {spill_path}")
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    """The `heapwatch` console script. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.list_scenarios:
            return _list_scenarios()
        scenario = scenario_from_args(args)
        _check_output("--report", args.report)
        _check_output("--spill", args.spill)
        _check_port(args.metrics_port)
        if args.web is not None:
            return _serve_web(args, argv if argv is not None else sys.argv[1:])
        under_web_driver = "TEXTUAL_DRIVER" in os.environ  # textual-serve runs us on a pipe
        if not (args.headless or under_web_driver or (sys.stdin.isatty() and sys.stdout.isatty())):
            raise UsageError("the dashboard needs a terminal; use --headless for plain output")
    except (ScenarioError, UsageError) as error:
        return _fail(str(error))
    from engine.runtime import Engine

    runtime = Engine(scenario, metrics_port=args.metrics_port)
    if args.headless:
        status = _run_headless(runtime, args)
    else:
        status = _run_dashboard(runtime, args)
    if runtime.elapsed > 0:
        for note in write_outputs(runtime, args.report, args.spill):
            print(f"{PROG}: {note}", file=sys.stderr)
    return status


def _serve_web(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """`--web`: serve the same command, less --web, to each page that opens the URL."""
    for flag in ("report", "spill", "record", "headless"):
        if getattr(args, flag, None):
            raise UsageError(f"--{flag} cannot be used with --web (each page is its own session)")
    try:
        from tui.web import WebAddressError, parse_address, serve_web
    except ImportError:
        raise UsageError("--web needs the web extra: pip install 'heapwatch[web]'") from None
    try:
        host, port = parse_address(args.web)
    except WebAddressError as error:
        raise UsageError(str(error)) from None
    rest: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--web":
            skip = True
        elif not word.startswith("--web="):
            rest.append(word)
    return serve_web(rest, host, port)


def _run_headless(runtime: Any, args: argparse.Namespace) -> int:
    from tui.headless import run_headless

    try:
        report = asyncio.run(
            run_headless(runtime, duration=args.duration, refresh_hz=args.refresh or 4.0)
        )
    except OSError as error:  # the metrics port taken between the check and the start
        return _fail(f"--metrics-port {args.metrics_port}: {error.strerror or error}")
    a = report.accounting
    print(
        f"{PROG}: stopped after {runtime.elapsed:.1f}s: submitted={a.submitted}"
        f" completed={a.completed} dead_lettered={a.dead_lettered} evicted={a.evicted}"
        f" rejected={a.rejected} returned={a.returned}"
        f" lost={a.lost} duplicated={a.duplicated}",
        file=sys.stderr,
    )
    return 0


def _run_dashboard(runtime: Any, args: argparse.Namespace) -> int:
    import logging

    from tui.app import HeapwatchApp

    # Log lines on stderr would tear the screen; the dashboard shows alerts and errors itself.
    logging.getLogger("engine").addHandler(logging.NullHandler())
    logging.getLogger("engine").propagate = False
    app = HeapwatchApp(runtime, refresh_hz=args.refresh or 5.0)
    # The tens of thousands of objects imported so far live for the whole run: kept out of the
    # collector, a full collection no longer holds the loop long enough to look like a block.
    gc.freeze()
    timer = None
    if args.duration is not None:
        timer = threading.Timer(args.duration, app.call_from_thread, (app.action_quit,))
        timer.daemon = True
        timer.start()
    try:
        app.run()
    finally:
        if timer is not None:
            timer.cancel()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
