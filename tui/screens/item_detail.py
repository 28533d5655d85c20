"""ItemScreen: one queued item, live: priority, effective priority, arrival, wait, attempts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.widgets import Static

from engine.snapshots import EngineSnapshot, HeapEntry
from tui.screens.detail import DetailScreen, facts, selectable
from tui.widgets.format import priority, seconds

LOOK_AHEAD = 64
"""How deep into its own priority the screen looks for its item (never a scan of the queue)."""

Fetch = Callable[[int, float], Sequence[HeapEntry]]


def same_item(entry: HeapEntry, other: HeapEntry) -> bool:
    """The same queued item: the same job, else the same place in its priority's order."""
    if entry.job_id is not None:
        return other.job_id == entry.job_id
    return other.priority == entry.priority and other.seq == entry.seq


def item_facts(entry: HeapEntry, aging_rate: float, started_at: float,
               queued: bool) -> list[tuple[str, RenderableType]]:
    """(label, value) rows of one heap entry."""
    if aging_rate > 0:
        effective = (f"{priority(round(entry.effective_priority, 2))} "
                     f"(aging {aging_rate:g}/s over {seconds(entry.waited)})")
    else:
        effective = f"{priority(entry.priority)} (aging is off)"
    rows: list[tuple[str, RenderableType]] = [
        ("state", "queued" if queued else "no longer in view: served, dropped, or moved past "
                                          f"the first {LOOK_AHEAD} of its priority"),
        ("priority", priority(entry.priority)),
        ("effective", effective),
        ("arrived", f"t+{seconds(entry.first_arrival - started_at)} (engine clock)"
         if entry.first_arrival else "-"),
        ("waited", seconds(entry.waited)),
        ("attempts", f"{entry.attempt} made" + (" (put back after failing)" if entry.attempt
                                                 else "")),
        ("seq", f"{entry.seq} (its place in arrival order within its priority)"),
    ]
    if entry.job_id is not None:
        rows.append(("job", str(entry.job_id)))
    return rows


class ItemScreen(DetailScreen):
    """Follows one queued item: in the source's top of its priority when it can say (`fetch`),
    else in the snapshot's top of the heap."""

    def __init__(self, entry: HeapEntry, fetch: Fetch | None = None) -> None:
        super().__init__()
        self.entry = entry
        self.fetch = fetch
        self.queued = True
        self._aging = 0.0
        self._started = 0.0

    def names(self) -> tuple[str, str]:
        entry = self.entry
        return (f"item-{entry.job_id if entry.job_id is not None else entry.seq}",
                f"queued item at priority {priority(entry.priority)}")

    def body(self) -> ComposeResult:
        yield Static(id="item-facts", classes="detail-facts")
        yield Static("repr", classes="detail-heading")
        yield selectable(self.entry.item_repr or repr(self.entry.item), "item-repr")

    def on_mount(self) -> None:
        super().on_mount()
        snapshot = getattr(self.app, "snapshot", None)
        if snapshot is not None:
            self.follow(snapshot)

    def _find(self, snapshot: EngineSnapshot) -> HeapEntry | None:
        entries: Sequence[HeapEntry] = snapshot.top
        if self.fetch is not None:
            try:
                entries = self.fetch(LOOK_AHEAD, self.entry.priority)
            except Exception:  # the snapshot's own top still answers
                entries = snapshot.top
        return next((other for other in entries if same_item(self.entry, other)), None)

    def follow(self, snapshot: EngineSnapshot) -> None:
        latest = self._find(snapshot)
        self.queued = latest is not None
        if latest is not None:
            self.entry = latest
        self._aging = snapshot.queue.aging_rate
        self._started = snapshot.started_at
        self.query_one("#item-facts", Static).update(facts(self.rows()))

    def rows(self) -> list[tuple[str, RenderableType]]:
        return item_facts(self.entry, self._aging, self._started, self.queued)

    def detail_text(self) -> str:
        lines = [self.names()[1]]
        lines += [f"  {label}: {value}" for label, value in self.rows()]
        lines.append(f"  repr: {self.entry.item_repr or repr(self.entry.item)}")
        return "\n".join(lines) + "\n"
