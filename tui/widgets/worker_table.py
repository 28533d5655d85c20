"""WorkerTable: one row per worker, keyed by worker id and updated in place.

On a shared queue seen from a dashboard (`PoolSnapshot.hosts`), the workers are grouped under
one header row per host: a live one with its workers, a lost one (its heartbeat expired) with
the leases it still holds and when they come back. Enter (or a click) on a header folds it.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from engine.snapshots import EngineSnapshot, HostSnapshot, WorkerSnapshot, WorkerState
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


HOST_KEY = "host:"
"""The row key of a host's header is this and the host's name."""


def host_row(host: HostSnapshot, folded: bool) -> Row:
    """A host's header: its name, live or LOST, and what it holds."""
    name = f"{'▸' if folded else '▾'} {host.host}"
    held = f"{host.leased} leased" if host.leased else ""
    if host.live:
        what = f"{host.workers} workers" + (f", {held}" if held else "")
        return (name, Text("live", style="green"), what, host.role, *("",) * 5)
    if host.back_in is None:
        what = "held no lease"
    elif host.back_in > 0:
        what = f"{held}, back in {seconds(host.back_in)}"
    else:
        what = f"{held}, back at the next reap"
    return (name, Text("LOST", style="bold red"), what, host.role, *("",) * 5)


def grouped_rows(snapshot: EngineSnapshot, folded: set[str]) -> list[tuple[str | int, Row]]:
    """A header per host, then its workers unless folded."""
    by_host: dict[str, list[WorkerSnapshot]] = {}
    for worker in snapshot.pool.workers:
        by_host.setdefault(worker.host, []).append(worker)
    rows: list[tuple[str | int, Row]] = []
    for host in snapshot.pool.hosts:
        rows.append((HOST_KEY + host.host, host_row(host, host.host in folded)))
        if host.host not in folded:
            rows.extend((w.id, worker_row(w)) for w in by_host.get(host.host, ()))
    return rows


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

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.folded: set[str] = set()
        """The hosts whose workers are folded under their header."""

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is None:
            return
        if snapshot.pool.hosts:
            self.sync(grouped_rows(snapshot, self.folded))
        else:
            self.sync([(worker.id, worker_row(worker)) for worker in snapshot.pool.workers])

    def on_live_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        """Enter or a click on a host's header folds or unfolds its workers."""
        if event.table is self and event.key.startswith(HOST_KEY):
            event.stop()
            self.folded ^= {event.key[len(HOST_KEY):]}
            self.watch_snapshot(self.snapshot)

    @property
    def selected_worker_id(self) -> int | None:
        """The id of the highlighted worker, if the table has any row (None on a header)."""
        key = self.selected_key()
        return int(key) if key is not None and key.isdigit() else None
