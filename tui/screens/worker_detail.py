"""WorkerScreen: one worker, live: its state history, current item, last error and stack."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TextArea

from engine.snapshots import Capability, EngineSnapshot, StackGroup, WorkerSnapshot, WorkerState
from tui.export import stacks_text
from tui.screens.detail import DetailScreen, facts, selectable
from tui.widgets.format import STATE_STYLE, count, priority, rate, seconds
from tui.widgets.worker_table import backoff_cell


def worker_facts(worker: WorkerSnapshot, gone: bool) -> list[tuple[str, RenderableType]]:
    """(label, value) rows: state, the current item, the counts."""
    state = Text(str(worker.state), style=STATE_STYLE.get(worker.state, ""))
    if gone:
        state.append("  (no longer in the pool: its last state)", style="dim")
    rows: list[tuple[str, RenderableType]] = [("worker", f"{worker.name} (id {worker.id})"),
                                              ("state", state)]
    if worker.state is WorkerState.BUSY:
        rows += [("item", worker.item_repr or "-"),
                 ("priority", priority(worker.priority)),
                 ("attempt", f"{worker.attempt} (1 is the first try)"),
                 ("on it", seconds(worker.busy_for))]
    rows += [("done", count(worker.done)), ("failed", count(worker.failed)),
             ("retried", count(worker.retried)),
             ("gave up", count(max(worker.failed - worker.retried, 0))),
             ("throughput", rate(worker.throughput)), ("backoff", backoff_cell(worker))]
    return rows


def history_lines(worker: WorkerSnapshot, now: float) -> list[str]:
    """'busy      since 3.20s ago, for 1.10s' per state change, newest last."""
    lines = []
    changes = worker.history
    for index, (state, since) in enumerate(changes):
        until = changes[index + 1][1] if index + 1 < len(changes) else now
        lines.append(f"{str(state):<11} {seconds(now - since):>7} ago, for {seconds(until - since)}")
    return lines or ["(no state changes recorded)"]


def worker_stack(groups: tuple[StackGroup, ...], name: str) -> list[str]:
    """The frames of the group holding task `name` ([] when the capture does not name it)."""
    for group in groups:
        if name in group.task_names:
            return stacks_text([group], indent="")
    return []


class WorkerScreen(DetailScreen):
    """Follows one worker by id; `t` captures its task's stack again (the stacks capability)."""

    BINDINGS = [Binding("t", "capture_stacks", "Capture its stack")]

    def __init__(self, worker: WorkerSnapshot) -> None:
        super().__init__()
        self.worker = worker
        self.gone = False
        """True once the worker has left the pool (the screen keeps its last state)."""
        self.stack: list[str] = []
        self._now = 0.0

    def names(self) -> tuple[str, str]:
        return self.worker.name, f"{self.worker.name}: {self.worker.state}"

    def body(self) -> ComposeResult:
        yield Static(id="worker-facts", classes="detail-facts")
        yield Static("state history (newest last)", classes="detail-heading")
        yield Static(id="worker-history", classes="detail-facts")
        yield Static("last error", classes="detail-heading")
        yield selectable("", "worker-error")
        yield Static("its task's stack", id="worker-stack-heading", classes="detail-heading")
        yield selectable("", "worker-stack")

    def on_mount(self) -> None:
        super().on_mount()
        snapshot = getattr(self.app, "snapshot", None)
        if snapshot is not None:
            self.follow(snapshot)
        self.action_capture_stacks()

    def follow(self, snapshot: EngineSnapshot) -> None:
        latest = next((w for w in snapshot.pool.workers if w.id == self.worker.id), None)
        self.gone = latest is None
        if latest is not None:
            self.worker = latest
        self._now = snapshot.taken_at or self.app.clock()
        self.query_one("#worker-facts", Static).update(
            facts(worker_facts(self.worker, self.gone)))
        self.query_one("#worker-history", Static).update("\n".join(
            history_lines(self.worker, self._now)))
        # A newer capture (an alert's, a remote source's reply to `t`) replaces the shown one.
        latest_stack = worker_stack(snapshot.watchdog.stacks, self.worker.name)
        if latest_stack:
            self._show_stack(latest_stack)
        error = self.error_text()
        area = self.query_one("#worker-error", TextArea)
        if area.text != error:
            area.load_text(error)

    def error_text(self) -> str:
        worker = self.worker
        if worker.last_error is None:
            return "no error yet"
        return "\n".join(filter(None, (worker.last_error, worker.last_traceback)))

    def action_capture_stacks(self) -> None:
        """Capture the worker's stack now (only when the source can capture stacks)."""
        heading = self.query_one("#worker-stack-heading", Static)
        if Capability.STACKS not in getattr(self.app, "capabilities", frozenset()):
            heading.update("its task's stack: this source cannot capture stacks")
            return
        try:
            groups = self.app.engine.capture_stacks()
        except Exception as error:  # said on the screen: the rest of the detail still holds
            heading.update(f"its task's stack: capture failed: {error!r}")
            return
        heading.update("its task's stack (innermost last; t captures again)")
        self._show_stack(worker_stack(tuple(groups), self.worker.name))

    def _show_stack(self, stack: list[str]) -> None:
        self.stack = stack
        text = "\n".join(stack) or (
            f"{self.worker.name} is not named in the capture (a group keeps a few names)")
        area = self.query_one("#worker-stack", TextArea)
        if area.text != text:
            area.load_text(text)

    def detail_text(self) -> str:
        worker = self.worker
        lines = [f"{worker.name} (id {worker.id}): {worker.state}"]
        lines += [f"  {label}: {value}" for label, value in worker_facts(worker, self.gone)[2:]]
        lines.append("state history (newest last):")
        lines += [f"  {line}" for line in history_lines(worker, self._now)]
        lines.append("last error:")
        lines += [f"  {line}" for line in self.error_text().splitlines()]
        lines.append("its task's stack (innermost last):")
        lines += [f"  {line}" for line in self.stack] or ["  (not captured)"]
        return "\n".join(lines) + "\n"
