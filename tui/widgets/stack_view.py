"""StackView: grouped task stacks (the watchdog's capture), one block per group."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group, RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from engine.snapshots import EngineSnapshot, StackGroup, TaskRole

ROLE_STYLE = {
    TaskRole.WORKER: "green",
    TaskRole.PRODUCER_BLOCKED: "bold yellow",
    TaskRole.GETTER_WAITING: "cyan",
    TaskRole.OTHER: "",
}


def render_stacks(groups: Iterable[StackGroup], *, max_frames: int = 6) -> RenderableType:
    """Each group as a heading ('role ×count  names') and its innermost frames, innermost last."""
    blocks: list[RenderableType] = []
    # Tasks that are not the engine's (role OTHER: the UI's own, say) go last.
    for group in sorted(groups, key=lambda group: group.role is TaskRole.OTHER):
        names = ", ".join(group.task_names)
        heading = Text.assemble(
            (f"{group.role} ", ROLE_STYLE.get(group.role, "")), (f"×{group.count}", "bold"),
            (f"  {names}", "dim"),
        )
        heading.no_wrap, heading.overflow = True, "ellipsis"
        blocks.append(heading)
        frames = group.frames[-max_frames:] if max_frames else group.frames
        if len(group.frames) > len(frames):
            blocks.append(Text(f"  … {len(group.frames) - len(frames)} outer frames", "dim"))
        for frame in frames:
            blocks.append(Text(f"  {frame}", no_wrap=True, overflow="ellipsis"))
    if not blocks:
        return Text("no blocked tasks captured", style="dim")
    return Group(*blocks)


def stack_lines(groups: Iterable[StackGroup], *, max_frames: int = 6) -> int:
    """How many lines `render_stacks` draws (before wrapping)."""
    lines = 0
    for group in groups:
        shown = min(len(group.frames), max_frames) if max_frames else len(group.frames)
        lines += 1 + shown + (len(group.frames) > shown)
    return max(lines, 1)


class StackView(Static):
    """Shows `stacks`; bound to a snapshot it follows the watchdog's last capture."""

    DEFAULT_CSS = """
    StackView {
        height: auto;
    }
    """

    stacks: reactive[tuple[StackGroup, ...]] = reactive((), repaint=False)
    """The groups on display."""
    snapshot: reactive[EngineSnapshot | None] = reactive(None, repaint=False)
    """When bound, `stacks` follows `snapshot.watchdog.stacks`."""

    def __init__(self, stacks: tuple[StackGroup, ...] = (), *, max_frames: int = 6,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.max_frames = max_frames
        self._lines = -1
        self.set_reactive(StackView.stacks, stacks)

    def watch_snapshot(self, snapshot: EngineSnapshot | None) -> None:
        if snapshot is not None:
            self.stacks = snapshot.watchdog.stacks

    def watch_stacks(self, stacks: tuple[StackGroup, ...]) -> None:
        self._show(stacks)

    def on_mount(self) -> None:
        self._show(self.stacks)

    def _show(self, stacks: tuple[StackGroup, ...]) -> None:
        lines = stack_lines(stacks, max_frames=self.max_frames)
        # Counts change often, the shape rarely: lay out again only when the height changes.
        self.update(render_stacks(stacks, max_frames=self.max_frames),
                    layout=lines != self._lines)
        self._lines = lines
