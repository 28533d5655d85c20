"""`heapwatch attach` and `heapwatch replay`: the dashboard on a remote service or a recording.

    heapwatch attach --list                  # the monitors this user can reach
    heapwatch attach 4242                    # a pid, a name, unix:PATH or tcp://HOST:PORT
    heapwatch attach mailer --record run.ndjson --record-max 50M
    heapwatch replay run.ndjson

`attach_main(argv)` and `replay_main(argv)` return the exit status; `tui.cli` dispatches to them.
A mistake is one line on stderr and exit status 2. Detaching (q, ctrl+c, SIGTERM) never stops the
service. `--plain` prints one line per snapshot instead of opening the dashboard.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from engine.monitor_client import ClientError, resolve
from engine.monitor_paths import list_monitors
from engine.recording import Recorder, RecordingError, load_recording
from engine.snapshots import EngineSnapshot, WorkerState
from tui.remote import RemoteSource, ReplaySource, SourceError
from tui.run_outputs import add_record_flags
from tui.source import stale_text

__all__ = ["attach_main", "format_line", "list_main", "replay_main"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, not {text!r}")
    return int(text)


def _look(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The dashboard's look, as for `heapwatch` itself: flags beat the config file."""
    from tui.cli import BOUNDS, _flag, _theme

    parser.add_argument("--refresh", metavar="HZ", type=_flag(BOUNDS["--refresh"]),
                        help="screen refreshes per second (default: the config's, else 1)")
    parser.add_argument("--theme", metavar="NAME", type=_theme,
                        help="the dashboard's theme (textual-dark, nord, gruvbox...)")
    parser.add_argument("--no-config", action="store_true",
                        help="ignore the config file and the remembered theme")
    parser.set_defaults(scenario=None)  # the config's scenario is the command's, not ours
    return parser


def attach_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="heapwatch attach",
                     description="Open the dashboard on a service running engine.serve_monitor().")
    parser.add_argument("target", nargs="?",
                        help="a pid, a monitor name, unix:PATH, tcp://HOST:PORT, or redis://HOST:PORT/DB?name=Q"
                             " (a shared queue: see heapwatch attach redis:// --help)")
    parser.add_argument("--list", action="store_true",
                        help="list the monitors this user can reach and exit")
    parser.add_argument("--control", action="store_true",
                        help="ask for control (the service must pass allow_control=True)")
    parser.add_argument("--token-file", metavar="FILE",
                        help="the token of a TCP monitor (default: found beside its socket)")
    parser.add_argument("--hz", type=_positive, help="snapshots per second (at most the service's)")
    add_record_flags(parser)
    parser.add_argument("--plain", action="store_true",
                        help="print one line per snapshot instead of the dashboard")
    parser.add_argument("--count", type=_count, metavar="N",
                        help="with --plain: stop after N snapshots")
    return _look(parser)


def replay_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="heapwatch replay",
                     description="Open the dashboard on a recording made with attach --record.")
    parser.add_argument("file", help="the recording")
    parser.add_argument("--speed", type=_positive, default=1.0, help="playback speed (default 1)")
    parser.add_argument("--plain", action="store_true",
                        help="print one line per frame instead of the dashboard")
    return _look(parser)


def _fail(prog: str, message: str, stream: TextIO | None = None) -> int:
    print(f"{prog}: error: {message}", file=stream or sys.stderr)
    return EXIT_USAGE


# --------------------------------------------------------------------------- --list


def list_main(out: TextIO | None = None) -> int:
    """Print the reachable monitors (sockets of processes that are gone are dropped)."""
    out = out or sys.stdout
    monitors = list_monitors()
    if not monitors:
        print("no heapwatch monitors for this user (start one with engine.serve_monitor())",
              file=out)
        return 0
    # The name and the address are what `attach` takes: shown whole, the columns as wide as
    # they need; only the command line is cut short.
    name_width = max(len("NAME"), *(len(info.name) for info in monitors))
    address_width = max(len("ADDRESS"), *(len(info.address) for info in monitors))
    print(f"{'PID':>7}  {'NAME':<{name_width}}  {'STARTED':<19}  {'ADDRESS':<{address_width}}"
          "  COMMAND", file=out)
    for info in monitors:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
        command = " ".join(info.get("argv") or [])[:60]
        print(f"{info.pid:>7}  {info.name:<{name_width}}  {started:<19}  "
              f"{info.address:<{address_width}}  {command}", file=out)
    return 0


# --------------------------------------------------------------------------- plain lines


def format_line(snapshot: EngineSnapshot, state: str = "live",
                stale: dict[str, Any] | None = None) -> str:
    """One line a person (or a test) reads per snapshot."""
    q, pool = snapshot.queue, snapshot.pool
    busy = sum(1 for w in pool.workers if w.state is WorkerState.BUSY)
    active = sum(1 for alert in snapshot.watchdog.alerts if alert.active)
    line = (f"{state.upper():<12} {snapshot.scenario}  depth={q.depth} busy={busy}/"
            f"{pool.live_workers} completed={pool.accounting.completed} "
            f"rate={pool.completion_rate:.0f}/s alerts={active}")
    if state == "stale" and stale:
        line += f"  {stale_text(stale)}"
    return line


async def _plain_attach(source: RemoteSource, count: int | None, out: TextIO) -> int:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, done.set)
    printed, seen, last_state = 0, -1, None
    try:
        while not done.is_set() and (count is None or printed < count):
            state = source.state
            if source.snapshots != seen or state != last_state:
                if state == "disconnected" and last_state != state:
                    print(f"DISCONNECTED from {source.endpoint}: keeping the last snapshot, "
                          "reconnecting", file=out, flush=True)
                elif state in ("live", "stale") and source.snapshots:
                    print(format_line(source.snapshot(), state, source.stale_info), file=out,
                          flush=True)
                    printed += source.snapshots != seen
                seen, last_state = source.snapshots, state
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.05)
    finally:
        await source.detach()  # the service keeps running
    return 0


# --------------------------------------------------------------------------- the dashboard


def dashboard_for(source: Any, args: argparse.Namespace, warnings: Sequence[str] = ()) -> Any:
    """The HeapwatchApp on `source` with the config file's theme, refresh and keys, the flags
    first: the same precedence as `heapwatch` itself (tui.cli). `warnings` (said on stderr
    already, which the dashboard then covers) go to its event log too."""
    from tui.cli import dashboard_app, user_config

    config, _ = user_config(args)
    return dashboard_app(source, args, config,
                         on_started=lambda _: [f"warning: {line}" for line in warnings])


async def run_dashboard(source: Any, args: argparse.Namespace,
                        warnings: Sequence[str] = ()) -> int:
    """Open the dashboard on `source` (RemoteSource or ReplaySource); detach on exit. Its quit
    path calls `source.shutdown()`, which detaches (RemoteSource) or pauses (ReplaySource): a
    service is never stopped by leaving."""
    app = dashboard_for(source, args, warnings)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, app.exit, 0)
    try:
        result = await app.run_async()
    finally:
        with contextlib.suppress(Exception):
            await source.shutdown()
    return int(result or 0)


# --------------------------------------------------------------------------- entry points


def attach_main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """`heapwatch attach ...`; returns the exit status."""
    if argv and any(word.startswith("redis://") for word in argv):  # a queue shared in Redis
        from tui.redis_source import redis_attach_main

        return redis_attach_main(argv)
    args = attach_parser().parse_args(argv)
    prog = "heapwatch attach"
    if args.list:
        return list_main(out)
    if not args.target:
        return _fail(prog, "give a TARGET (a pid, a name, unix:PATH or tcp://HOST:PORT) or --list")
    if args.record:
        from tui.cli import UsageError, check_outputs

        try:  # the same checks as heapwatch's --report, --spill and --record, before connecting
            check_outputs({"--record": args.record})
        except UsageError as error:
            return _fail(prog, str(error))
    token = None
    if args.token_file:
        try:
            with open(args.token_file) as file:
                token = file.read().strip()
        except OSError as error:
            return _fail(prog, f"cannot read {args.token_file}: {error.strerror or error}")
    try:
        resolve(args.target, token=token)
    except ClientError as error:
        return _fail(prog, str(error))
    recorder = None
    if args.record:
        try:
            recorder = Recorder(args.record, max_bytes=args.record_max, target=args.target,
                                on_cap=lambda message: print(f"{prog}: warning: {message}",
                                                             file=sys.stderr))
        except OSError as error:
            return _fail(prog, f"cannot write {args.record}: {error.strerror or error}")
    try:
        return asyncio.run(_attach(args, token, recorder, out or sys.stdout))
    except (ClientError, SourceError) as error:
        return _fail(prog, str(error))
    except KeyboardInterrupt:
        return 0  # detached; the service keeps running
    finally:
        if recorder is not None:
            recorder.close()


async def _attach(args: argparse.Namespace, token: str | None, recorder: Recorder | None,
                  out: TextIO) -> int:
    source = RemoteSource(args.target, control=args.control, token=token, hz=args.hz,
                          recorder=recorder)
    await source.start()
    warnings = []
    if args.control and not source.hello.get("control"):
        warnings.append("the service does not allow control (it needs "
                        "serve_monitor(allow_control=True)): read-only")
        print(f"heapwatch attach: warning: {warnings[-1]}", file=sys.stderr)
    if args.plain:
        return await _plain_attach(source, args.count, out)
    return await run_dashboard(source, args, warnings)


def replay_main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """`heapwatch replay FILE`; returns the exit status."""
    args = replay_parser().parse_args(argv)
    prog = "heapwatch replay"
    try:
        recording = load_recording(args.file)
        source = ReplaySource(recording, speed=args.speed)
    except (RecordingError, SourceError) as error:
        return _fail(prog, str(error))
    if recording.warning:
        print(f"{prog}: warning: {recording.warning}", file=sys.stderr)
    if args.plain:
        out = out or sys.stdout
        for index in range(len(recording.frames)):
            source.position = index
            snapshot = source.snapshot_at(index)
            if snapshot is not None:
                print(format_line(snapshot, source.state, source.stale_info), file=out)
        return 0
    try:
        return asyncio.run(run_dashboard(source, args, [recording.warning] if recording.warning
                                         else []))
    except KeyboardInterrupt:
        return 0
