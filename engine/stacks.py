"""Capture the stacks of asyncio tasks and of the loop thread, grouped so that they read.

`capture_task_stacks()` walks every task's await chain (the coroutine `get_stack()` returns, then
each `cr_await` below it, so the innermost frame is the one actually waiting), labels each task by
where it waits and groups identical stacks: 200 workers blocked on the same line read as one entry
with a count. Nothing here runs on a timer: captures happen on an alert or on demand.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import sysconfig
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from engine.snapshots import StackGroup, TaskRole

WORKER_NAME = re.compile(r"worker-\d+")
"""Task names the pool gives its workers."""

MAX_TASK_NAMES = 5
"""Task names kept per group: enough to find them, bounded at any task count."""

MAX_FRAMES = 40
"""Frames kept per stack, innermost kept when cut (the waiting end is the informative one)."""

_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LIBRARY_ROOTS = tuple(
    sorted(
        {
            os.path.join(os.path.abspath(path), "")
            for key in ("stdlib", "platstdlib", "purelib", "platlib")
            if (path := sysconfig.get_paths().get(key))
        },
        key=len,
        reverse=True,
    )
)

# Frames from these files are the machinery of waiting, not the code that waits or blocks.
_LOOP_INTERNALS = (
    f"{os.sep}asyncio{os.sep}",
    f"{os.sep}selectors.py",
    f"{os.sep}threading.py",
    f"{os.sep}concurrent{os.sep}futures{os.sep}",
    f"{os.sep}contextvars",
    f"{os.sep}runpy.py",
)


def short_path(filename: str) -> str:
    """A path short enough to read: relative to the project or to the library directory."""
    absolute = os.path.abspath(filename) if not filename.startswith("<") else filename
    if absolute.startswith(_PROJECT_ROOT):
        return absolute[len(_PROJECT_ROOT) :]
    for root in _LIBRARY_ROOTS:
        if absolute.startswith(root):
            return absolute[len(root) :]
    parts = absolute.split(os.sep)
    return os.sep.join(parts[-2:]) if len(parts) > 2 else absolute


def format_frame(frame: FrameType) -> str:
    """'function (file:line)' for one frame."""
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    return f"{name} ({short_path(code.co_filename)}:{frame.f_lineno})"


def is_loop_internal(frame: FrameType) -> bool:
    """True for frames of asyncio, selectors and threading: where code waits, not what it does."""
    filename = frame.f_code.co_filename
    return filename.startswith("<") or any(part in filename for part in _LOOP_INTERNALS)


def thread_frames(frame: FrameType | None) -> list[FrameType]:
    """A thread's stack from its current frame, outermost first."""
    frames: list[FrameType] = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    return frames


def culprit_frame(frames: list[FrameType]) -> FrameType | None:
    """The innermost frame that is not loop machinery: the code that held the thread."""
    for frame in reversed(frames):
        if not is_loop_internal(frame):
            return frame
    return frames[-1] if frames else None


def _awaited(obj: Any) -> Any:
    """What a coroutine, generator or async-generator step is awaiting right now."""
    for attr in ("cr_await", "gi_yieldfrom", "ag_await"):
        inner = getattr(obj, attr, None)
        if inner is not None:
            return inner
    return None


def _own_frame(obj: Any) -> FrameType | None:
    for attr in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(obj, attr, None)
        if frame is not None:
            return frame
    return None


def task_frames(task: asyncio.Task[Any]) -> list[FrameType]:
    """A task's await chain, outermost first, innermost (the awaiting one) last.

    `Task.get_stack()` gives only the task's own coroutine frame while it is suspended, so the
    chain below it is followed through `cr_await`.
    """
    frames = list(task.get_stack())
    if task.done():
        return frames
    awaited = _awaited(task.get_coro())
    while awaited is not None:
        frame = _own_frame(awaited)
        if frame is not None:
            frames.append(frame)
        awaited = _awaited(awaited)
    return frames


def _waiting_queue(frames: list[FrameType]) -> tuple[str, asyncio.Queue[Any]] | None:
    """The queue method ('put' or 'get') the innermost frames are waiting in, if any."""
    for frame in reversed(frames):
        owner = frame.f_locals.get("self")
        if isinstance(owner, asyncio.Queue):
            name = frame.f_code.co_name
            if "put" in name:
                return "put", owner
            if "get" in name:
                return "get", owner
            continue  # a helper of the queue's own (a wait loop): the caller names the method
        if not is_loop_internal(frame):
            # The innermost frame of our own code is not a queue method: not waiting on one.
            return None
    return None


def task_role(task: asyncio.Task[Any], frames: list[FrameType]) -> TaskRole:
    """WORKER by name; otherwise what the task waits on: a full queue's put, an empty one's get."""
    if WORKER_NAME.fullmatch(task.get_name()):
        return TaskRole.WORKER
    waiting = _waiting_queue(frames)
    if waiting is not None:
        method, queue = waiting
        if method == "put" and queue.full():
            return TaskRole.PRODUCER_BLOCKED
        if method == "get" and queue.empty():
            return TaskRole.GETTER_WAITING
    return TaskRole.OTHER


def _awaited_by(task: asyncio.Task[Any]) -> tuple[str, ...]:
    """On Python 3.14+, the names of the tasks awaiting this one (the await call graph)."""
    capture = getattr(asyncio, "capture_call_graph", None)
    if capture is None:
        return ()
    try:
        graph = capture(task)
    except Exception:  # the call graph is extra evidence; never fail a capture over it
        return ()
    if graph is None:
        return ()
    names = []
    for parent in graph.awaited_by:
        future = parent.future
        names.append(future.get_name() if isinstance(future, asyncio.Task) else repr(future))
    return tuple(names)


def group_stacks(
    entries: Iterable[tuple[TaskRole, tuple[str, ...], str, tuple[str, ...]]],
) -> tuple[StackGroup, ...]:
    """Group (role, frames, task name, awaited-by) entries: largest group first."""
    counts: dict[tuple[TaskRole, tuple[str, ...], tuple[str, ...]], list[Any]] = {}
    for role, frames, name, awaited_by in entries:
        key = (role, frames, awaited_by)
        group = counts.get(key)
        if group is None:
            counts[key] = [1, [name]]
        else:
            group[0] += 1
            if len(group[1]) < MAX_TASK_NAMES:
                group[1].append(name)
    groups = [
        StackGroup(
            role=role,
            count=count,
            frames=frames,
            task_names=tuple(names),
            awaited_by=awaited_by,
        )
        for (role, frames, awaited_by), (count, names) in counts.items()
    ]
    groups.sort(key=lambda group: (-group.count, group.role, group.frames))
    return tuple(groups)


def _natural_name(task: asyncio.Task[Any]) -> tuple[Any, ...]:
    """worker-2 before worker-10."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", task.get_name())
    )


def capture_task_stacks(
    loop: asyncio.AbstractEventLoop | None = None,
    *,
    exclude_current: bool = True,
    keep: Callable[[asyncio.Task[Any], TaskRole], bool] | None = None,
) -> tuple[StackGroup, ...]:
    """Every pending task of `loop` (the running one by default), grouped by role and stack.

    `keep(task, role)` narrows the capture (the dashboard leaves out the UI's own tasks).
    Must run on the loop's thread: it reads suspended frames that the loop would otherwise move.
    """
    loop = loop or asyncio.get_running_loop()
    current = asyncio.current_task(loop) if exclude_current else None
    entries = []
    # Sorted by name so that the names each group keeps do not depend on set order.
    for task in sorted(asyncio.all_tasks(loop), key=_natural_name):
        if task is current:
            continue
        frames = task_frames(task)
        role = task_role(task, frames)
        if keep is not None and not keep(task, role):
            continue
        formatted = tuple(format_frame(frame) for frame in frames[-MAX_FRAMES:])
        entries.append((role, formatted, task.get_name(), _awaited_by(task)))
    return group_stacks(entries)


def current_thread_stack(thread_id: int) -> list[FrameType]:
    """The Python stack of another thread right now, outermost first ([] if it has none)."""
    frame = sys._current_frames().get(thread_id)
    return thread_frames(frame)
