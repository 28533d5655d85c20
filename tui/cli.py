"""`heapwatch`: open the dashboard on a scenario, or run it headless and write a report.

Everything the command is given is checked before anything starts: a bad flag, scenario, TOML
file, value or output path is one line on stderr (`heapwatch: error: ...`) and exit status 2,
never a traceback. A file that still cannot be written at the end (a full disk) is one line and
exit status 1, and the other file is written all the same. SIGINT, SIGTERM and SIGHUP are
graceful in both modes (a second one cuts the drain short), from the first line of `main()`.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import errno
import gc
import os
import socket
import stat
import sys
import textwrap
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import engine
from engine.limits import BOUNDS, Bound
from engine.scenario import (
    BUILTIN_SCENARIOS,
    OVERFLOW_POLICIES,
    Scenario,
    ScenarioError,
    describe_builtins,
    load_scenario,
)
from engine.signals import COMMAND_SIGNALS, TwoStageSignals
from tui.run_outputs import RunOutputs, add_run_flags

if TYPE_CHECKING:
    from tui.config import Config

__all__ = ["build_parser", "check_outputs", "main", "write_outputs"]

PROG = "heapwatch"
EXIT_USAGE = 2
EXIT_WRITE_FAILED = 1


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


def _flag(bound: Bound) -> Callable[[str], float]:
    """An argparse type checking a flag against the same range as the key it stands for."""

    def parse(text: str) -> float:
        shown = text if len(text) <= 40 else text[:37] + "..."
        try:
            value: float = int(text) if bound.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {bound.text}, not {shown!r}") from None
        if bound.problem(value):
            raise argparse.ArgumentTypeError(f"must be {bound.text}, not {shown!r}")
        return value

    return parse


EXAMPLES = """\
EXAMPLES
  heapwatch
      the dashboard on the built-in demo (? lists the keys; q drains, then quits)
  heapwatch --scenario starvation
      a built-in scenario (--list-scenarios lists them)
  heapwatch --scenario my.toml --workers 16
      a scenario file, with one of its values overridden
  heapwatch --headless --scenario chaos --duration 30 --report run.json --spill left.jsonl
      no dashboard: run 30 s, drain, write the report and the items left over
  heapwatch --web 8000
      the dashboard in a browser (prints the URL with its token)
  heapwatch attach 4242
      the dashboard on a running service (a pid, a monitor name or unix:PATH); q detaches
  heapwatch replay run.ndjson
      play back a recording made with --record run.ndjson (attach, the dashboard, --headless)

CONFIG
  {config}
  (HEAPWATCH_CONFIG names another file) sets theme, refresh, scenario and [keys] (binding
  id = key, e.g. burst = "n"). Flags beat the config and the config beats the scenario;
  --no-config ignores it. A theme picked in the command palette is remembered in
  {state}.

built-in scenarios: {scenarios}"""


def _theme(name: str) -> str:
    """An argparse type: one of Textual's themes, else one line listing them."""
    themes = _themes()
    if name not in themes:
        raise argparse.ArgumentTypeError(
            f"unknown theme {name!r}; the themes: {', '.join(sorted(themes))}")
    return name


def _themes() -> frozenset[str]:
    from textual.theme import BUILTIN_THEMES  # only when a theme is asked for: 0.1 s to import

    return frozenset(BUILTIN_THEMES)


def build_parser() -> argparse.ArgumentParser:
    """The `heapwatch` argument parser."""
    from tui.config import config_path, state_path

    parser = _Parser(
        prog=PROG,
        description="\n\n".join(textwrap.fill(paragraph, 78) for paragraph in (
            "A live terminal dashboard for an asyncio priority queue, its workers and a"
            " starvation watchdog. With no argument it opens the dashboard on the demo.",
            "Lower priority numbers are served first (0 before 9). The handler is simulated:"
            " each item takes a latency drawn from the scenario and fails, hangs or blocks the"
            " loop at the scenario's rates; no real work is done.",
            "Also: heapwatch attach TARGET (the dashboard on a running service) and heapwatch"
            " replay FILE (a recording); each has its own --help.",
        )),
        epilog=EXAMPLES.format(config=config_path(), state=state_path(),
                               scenarios=", ".join(BUILTIN_SCENARIOS)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    run = parser.add_argument_group("what to run (flags override the config and the scenario)")
    run.add_argument(
        "--scenario", metavar="NAME|FILE", default=None,
        help="a built-in scenario name, a scenario TOML file, or - to read it from standard input"
        " (default: the config's scenario, else demo)",
    )
    run.add_argument("--workers", metavar="N", type=_flag(BOUNDS["pool.workers"]), help="worker tasks")
    run.add_argument(
        "--maxsize", metavar="N", type=_flag(BOUNDS["queue.maxsize"]), help="queue capacity (0: unbounded)"
    )
    run.add_argument(
        "--overflow", choices=OVERFLOW_POLICIES, help="what a full queue does with one more item"
    )
    run.add_argument(
        "--aging", metavar="RATE", type=_flag(BOUNDS["queue.aging"]),
        help="priority points an item gains per second waited (0: off)",
    )
    run.add_argument("--seed", metavar="N", type=_flag(BOUNDS["seed"]),
        help="seed of every random choice")
    run.add_argument(
        "--duration", metavar="SECONDS", type=_flag(BOUNDS["--duration"]),
        help="shut down gracefully after this long, then exit",
    )
    shared = parser.add_argument_group("a queue shared by several processes (Redis)")
    shared.add_argument(
        "--queue", metavar="redis://HOST:PORT/DB?name=Q",
        help="keep the queue in Redis, shared with every process given the same URL",
    )
    shared.add_argument(
        "--role", choices=("all", "producer", "worker"), default="all",
        help="with --queue: run the producers, the workers, or both (default: all)",
    )
    shared.add_argument(
        "--redis-password-file", metavar="FILE",
        help="read the Redis password from FILE (else REDIS_PASSWORD); never printed",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--report", metavar="FILE", type=Path, help="write the final report as JSON")
    out.add_argument("--spill", metavar="FILE", type=Path,
                     help="write the items returned at shutdown, one JSON object per line")
    add_run_flags(out)  # --monitor, --record, --record-max
    out.add_argument("--headless", action="store_true",
                     help="no dashboard: a live summary on stderr (plain lines when not a terminal)")
    out.add_argument("--metrics-port", metavar="N", type=_flag(BOUNDS["--metrics-port"]),
                     help="serve Prometheus metrics on 127.0.0.1:N (0: any free port)")
    out.add_argument(
        "--refresh", metavar="HZ", type=_flag(BOUNDS["--refresh"]), default=None,
        help="screen refreshes per second (default: 1 for the dashboard, its slow panels every 3 s; 4 headless)",
    )
    out.add_argument(
        "--web", metavar="[HOST:]PORT",
        help="serve the dashboard in a browser (one session per page) on 127.0.0.1 unless a"
        " HOST is given; prints the URL with its token",
    )
    look = parser.add_argument_group("look and config")
    look.add_argument("--theme", metavar="NAME", type=_theme,
                      help="the dashboard's theme (textual-dark, nord, gruvbox...)")
    look.add_argument("--no-config", action="store_true",
                      help="ignore the config file and the remembered theme")
    info = parser.add_argument_group("information")
    info.add_argument(
        "--list-scenarios", action="store_true", help="list the built-in scenarios and exit"
    )
    info.add_argument("--version", action="version", version=f"%(prog)s {engine.__version__}")
    return parser


def _say(line: str) -> None:
    """One line on stderr; dropped if the terminal is gone (SIGHUP), never a traceback."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _fail(message: str) -> int:
    _say(f"{PROG}: error: {message}")
    return EXIT_USAGE


def _shown(path: Path) -> str:
    return repr(str(path))


def _check_output(flag: str, path: Path) -> None:
    """The file must be creatable (or writable) where it is asked for: tried, not guessed,
    before the run, so that a missing or read-only directory, a path under a regular file or
    under /proc is refused before anything runs. Nothing is left behind by the try."""
    text = _shown(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        raise UsageError(f"{flag} {text}: a part of the path is a file, not a directory") from None
    except OSError as error:
        raise UsageError(f"{flag} {text}: {_reason(error)}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{flag} {text} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if info is None and not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"{flag} {text}: directory {_shown(parent)} {what}")
    # O_NONBLOCK: a FIFO with no reader fails at once instead of hanging the check.
    flags = os.O_WRONLY | os.O_NONBLOCK | (os.O_APPEND if info else os.O_CREAT | os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as error:
        action = "written" if info else "created"
        raise UsageError(f"{flag} {text} cannot be {action}: {_reason(error)}") from None
    os.close(fd)
    if info is None:
        try:
            os.unlink(path)
        except OSError:
            pass


def _reason(error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return error.strerror or str(error)


def check_outputs(outputs: dict[str, Path | None]) -> None:
    """Check every output path (`{"--report": path, ...}`, None: not asked for) before a run;
    two flags naming one file are refused too. Raises UsageError."""
    seen: dict[str, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        _check_output(flag, path)
        key = os.path.realpath(path)
        if key in seen and key != os.devnull and not key.startswith("/dev/"):
            raise UsageError(f"{flag} and {seen[key]} name the same file {_shown(path)}")
        seen[key] = flag


def _check_port(port: int | None) -> None:
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise UsageError(f"--metrics-port {port}: {error.strerror or error}") from None


def scenario_from_args(args: argparse.Namespace, base: Scenario | None = None) -> Scenario:
    """The scenario named by `--scenario` (else `base`, else the demo), with the other flags in
    place of its values."""
    if args.scenario is not None or base is None:
        base = load_scenario(args.scenario or "demo")
    return base.with_overrides(
        workers=args.workers,
        maxsize=args.maxsize,
        overflow=args.overflow,
        aging=args.aging,
        seed=args.seed,
    )


def user_config(args: argparse.Namespace) -> tuple[Config, Scenario | None]:
    """The config file's settings, checked, and the scenario it names when no flag does. A bad
    file is one warning line on stderr (file, line, key) and then nothing of it applies."""
    from tui.config import Config, ConfigError, check_keys, check_theme, config_error, load_config
    from tui.keys import FIXED_KEYS, KEYS

    if args.no_config:
        return Config(), None
    try:
        config = load_config()
        if config.theme is not None:
            check_theme(config, _themes())
        check_keys(config, {key.action: key.key for key in KEYS}, FIXED_KEYS)
        scenario = None
        if config.scenario is not None and args.scenario is None:
            if config.scenario.strip() == "-":
                raise config_error(config, "scenario", "cannot be - (standard input)")
            try:
                scenario = load_scenario(config.scenario)
            except ScenarioError as error:
                raise config_error(config, "scenario", str(error)) from None
    except ConfigError as error:
        _say(f"{PROG}: warning: {error} (the config is ignored: the defaults apply)")
        return Config(), None
    return config, scenario


def _list_scenarios() -> int:
    rows = describe_builtins()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0


def _write(path: Path, chunks: Sequence[str]) -> str | None:
    """Write the text to `path`; None, or why it failed (one line)."""
    try:
        with open(path, "w", encoding="utf-8") as file:
            for chunk in chunks:
                file.write(chunk)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        return f"{reason}"
    return None


def write_outputs(
    runtime: Any, report_path: Path | None, spill_path: Path | None
) -> tuple[list[str], list[str]]:
    """Write `--report` and `--spill`, each on its own: the spill never depends on the report.
    Returns (notes on what was written, one-line errors on what was not)."""
    from engine.report import to_json

    notes: list[str] = []
    failures: dict[str, str] = {}
    items: list[dict[str, Any]] = runtime.returned_items() if spill_path is not None else []
    if report_path is not None:
        try:
            text = to_json(runtime.report(), indent=2) + "\n"
        except Exception as error:  # the report must never cost the spill
            failures["report"] = f"could not build the report: {type(error).__name__}: {error}"
        else:
            reason = _write(report_path, [text])
            if reason is None:
                notes.append(f"report written to {report_path}")
            else:
                failures["report"] = f"could not write the report to {report_path}: {reason}"
    if spill_path is not None:
        reason = _write(spill_path, [to_json(item) + "\n" for item in items])
        if reason is None:
            notes.append(f"{len(items)} returned items written to {spill_path}")
        else:
            failures["spill"] = (
                f"could not write the spill to {spill_path}: {reason};"
                f" {len(items)} returned items not saved"
            )
    if len(failures) == 2:
        return notes, [
            f"neither the report nor the spill could be written ({failures['report']};"
            f" {failures['spill']})"
        ]
    return notes, list(failures.values())


def main(argv: Sequence[str] | None = None) -> int:
    """The `heapwatch` console script. Returns the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in ("attach", "replay"):
        # Watching another process: its own parser; q, ctrl+c and SIGTERM only detach.
        from tui.attach import attach_main, replay_main

        return (attach_main if words[0] == "attach" else replay_main)(words[1:])
    # First thing: from here on a signal is recorded and handled once the run is up, never a
    # KeyboardInterrupt traceback or a death with no report.
    signals = TwoStageSignals(COMMAND_SIGNALS).catch_early()
    try:
        return _main(argv, signals)
    finally:
        signals.restore()


def _main(argv: Sequence[str] | None, signals: TwoStageSignals) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.list_scenarios:
            return _list_scenarios()
        config, configured = user_config(args)
        scenario = scenario_from_args(args, configured)
        check_outputs({"--report": args.report, "--spill": args.spill, "--record": args.record})
        _check_port(args.metrics_port)
        if args.web is not None:
            return _serve_web(args, argv if argv is not None else sys.argv[1:])
        under_web_driver = "TEXTUAL_DRIVER" in os.environ  # textual-serve runs us on a pipe
        if not (args.headless or under_web_driver or (sys.stdin.isatty() and sys.stdout.isatty())):
            raise UsageError("the dashboard needs a terminal; use --headless for plain output")
    except (ScenarioError, UsageError) as error:
        return _fail(str(error))
    try:
        shared = _shared_run(args, scenario)
    except UsageError as error:
        return _fail(str(error))
    from engine.runtime import Engine

    runtime = Engine(scenario, metrics_port=args.metrics_port, shared=shared)
    written: dict[int, tuple[list[str], list[str]]] = {}
    outputs = RunOutputs.from_args(args, warn=lambda line: _say(f"{PROG}: warning: {line}"))
    try:
        if args.headless:
            status = _run_headless(runtime, args, signals, config, outputs)
        else:
            status = _run_dashboard(runtime, args, signals, written, config, outputs)
    finally:
        outputs.close()
    if runtime.elapsed > 0 and 1 not in written:
        written[1] = write_outputs(runtime, args.report, args.spill)
    for run in sorted(written):
        notes, errors = written[run]
        for note in notes:
            _say(f"{PROG}: {note}")
        for error in errors:
            _say(f"{PROG}: error: {error}")
        if errors and status == 0:
            status = EXIT_WRITE_FAILED
    return status


def _shared_run(args: argparse.Namespace, scenario: Scenario) -> Any:
    """`--queue`: the run's part in a shared queue, checked (reachable, logged in, agreeing on
    the stored settings) before anything starts. None without --queue."""
    if args.queue is None:
        if args.role != "all" or args.redis_password_file is not None:
            raise UsageError("--role and --redis-password-file need --queue")
        return None
    try:
        from engine.shared import QueueTarget, SharedQueueError, SharedRun
    except ImportError:
        raise UsageError("--queue needs the redis extra: pip install 'heapwatch[redis]'") from None
    try:
        target = QueueTarget.from_flags(args.queue, args.redis_password_file)
        target.preflight(scenario.queue.aging, str(scenario.queue.overflow))
    except SharedQueueError as error:
        raise UsageError(str(error)) from None
    _say(f"{PROG}: queue {target.shown} as {args.role}")
    return SharedRun(target, args.role, scenario)


def numbered(path: Path | None, run: int) -> Path | None:
    """The output path of run `run` of the dashboard (`r` restarts): 'r.json', 'r-2.json'..."""
    if path is None or run == 1:
        return path
    return path.with_name(f"{path.stem}-{run}{path.suffix}")


def _serve_web(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """`--web`: serve the same command, less --web, to each page that opens the URL."""
    for flag in ("report", "spill", "record", "monitor", "headless"):
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


def _run_headless(runtime: Any, args: argparse.Namespace, signals: TwoStageSignals,
                  config: Config, outputs: RunOutputs) -> int:
    from tui.headless import run_headless

    refresh = args.refresh or config.refresh or 4.0
    try:
        report = asyncio.run(
            run_headless(runtime, duration=args.duration, refresh_hz=refresh, signals=signals,
                         on_started=outputs.started)
        )
    except OSError as error:  # the metrics port taken between the check and the start
        return _fail(f"--metrics-port {args.metrics_port}: {error.strerror or error}")
    a = report.accounting
    if runtime.shared is not None:  # this process's deliveries, then the queue's counters
        _say(f"{PROG}: stopped after {runtime.elapsed:.1f}s: {runtime.shared.own_line(runtime.pool)}")
        _say(f"{PROG}: {runtime.shared.summary()}")
        return 0
    _say(
        f"{PROG}: stopped after {runtime.elapsed:.1f}s: submitted={a.submitted}"
        f" completed={a.completed} dead_lettered={a.dead_lettered} evicted={a.evicted}"
        f" rejected={a.rejected} returned={a.returned}"
        f" lost={a.lost} duplicated={a.duplicated}"
    )
    return 0


def _run_dashboard(
    runtime: Any,
    args: argparse.Namespace,
    signals: TwoStageSignals,
    written: dict[int, tuple[list[str], list[str]]],
    config: Config,
    outputs: RunOutputs,
) -> int:
    import logging

    def run_stopped(source: Any, run: int) -> None:
        # Each run's report and spill are written when it stops (said after the app exits:
        # lines on stderr would tear the screen); a restarted run's go beside the first's.
        written[run] = write_outputs(source, numbered(args.report, run), numbered(args.spill, run))
    from tui.signals import hangup_safe_output

    # Log lines on stderr would tear the screen; the dashboard shows alerts and errors itself.
    logging.getLogger("engine").addHandler(logging.NullHandler())
    logging.getLogger("engine").propagate = False
    app = dashboard_app(runtime, args, config, on_run_stopped=run_stopped,
                        on_started=outputs.started)
    app.signals = signals  # tui.signals wires them to the app's loop on mount
    # The tens of thousands of objects imported so far live for the whole run: kept out of the
    # collector, a full collection no longer holds the loop long enough to look like a block.
    gc.freeze()
    timer = None
    if args.duration is not None:
        timer = threading.Timer(args.duration, _quit_from_thread, (app,))
        timer.daemon = True
        timer.start()
    try:
        with hangup_safe_output():
            app.run()
    finally:
        if timer is not None:
            timer.cancel()
    return app.return_code or 0


def dashboard_app(runtime: Any, args: argparse.Namespace, config: Config, **kwargs: Any) -> Any:
    """The HeapwatchApp the command opens on `runtime`: refresh and theme from the flags, else
    the config (a theme picked in the palette is remembered), the config's key overrides."""
    from tui.app import DEFAULT_REFRESH_HZ, HeapwatchApp
    from tui.config import choose_theme, save_state, state_path

    theme = choose_theme(args.theme, config, _themes(), None if args.no_config else state_path())
    return HeapwatchApp(
        runtime, refresh_hz=args.refresh or config.refresh or DEFAULT_REFRESH_HZ, theme=theme,
        keymap=config.keys,
        # Remembered in the state file, never in the user's config.
        on_theme_picked=lambda name: save_state({"theme": name}), **kwargs,
    )


def _quit_from_thread(app: Any) -> None:
    try:
        app.call_from_thread(app.request_quit)
    except RuntimeError:  # the app has already gone
        pass


if __name__ == "__main__":
    sys.exit(main())
