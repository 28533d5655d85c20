"""WorkerTable: one row per worker, keyed by worker id and updated in place."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from engine.snapshots import EngineSnapshot, WorkerSnapshot, WorkerState
from tui.widgets.format import STATE_STYLE, count, priority, seconds, shorten
from tui.widgets.live_table import LiveTable, Row


def backoff_cell(worker: WorkerSnapshot) -> str:
    """'-' or 'N in 1.25s': the attempts waiting out their backoff, with a countdown."""
    if not worker.backoff:
        return "-"
    due = min(retry.due_in for retry in worker.backoff)
    return f"{len(worker.backoff)} in {seconds(due)}"


def worker_row(worker: WorkerSnapshot) -> Row:
    """The cells of one worker; the state is coloured."""
    busy = worker.state is WorkerState.BUSY
    # The attempt suffix: '#2' is the first retry of this item (the help screen says so).
    attempt = f" #{worker.attempt}" if busy and worker.attempt > 1 else ""
    return (
        str(worker.id),
        Text(str(worker.state), style=STATE_STYLE.get(worker.state, "")),
        shorten(worker.item_repr or "-", 20) + attempt,
        priority(worker.priority),
        seconds(worker.busy_for) if busy else "-",
        count(worker.done),
        count(worker.failed),
        count(max(worker.failed - worker.retried, 0)),
        backoff_cell(worker),
    )


class WorkerTable(LiveTable):
    """The pool's workers; the highlighted row is the one `c` cancels.

    `fail` counts the attempts that raised or timed out; `gave up` those of them not retried
    (dead-lettered), so that the two columns tell different facts.
    """

    COLUMNS = (
        ("worker", "worker"),
        ("state", "state"),
        ("item", "item"),
        ("priority", "prio"),
        ("busy", "on it"),
        ("done", "done"),
        ("failed", "fail"),
        ("dead", "gave up"),
        ("backoff", "backoff"),
    )

    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """The snapshot on display (bound to the app's); the watcher repaints only what changed."""

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        self.sync([(worker.id, worker_row(worker)) for worker in snapshot.pool.workers])

    @property
    def selected_worker_id(self) -> int | None:
        """The id of the highlighted worker, if the table has any row."""
        key = self.selected_key()
        return int(key) if key is not None else None
