"""Differential test: PriorityQueue (one priority) against the real asyncio.Queue on Python 3.13.

Hypothesis draws one program of queue operations; it runs once on each queue, each in its own
event loop, and the two traces must be equal: the result or exception type of every call, the
order in which waiting tasks complete (wake-up order, cancellations, join() completions), and
after every step the queue's state (size, full, contents in order, unfinished tasks, waiting
tasks). A step may leave the loop unsettled, so that the next one happens in the same turn: a
getter woken by a put and cancelled before it runs, and the like.

Deliberate differences, not compared:
- `shutdown(immediate=True)` returns the removed items here and None in asyncio.
- A NaN maxsize: asyncio takes it (never full), PriorityQueue refuses it with ValueError.
"""

from __future__ import annotations

import asyncio
import math
import sys
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.queue import PriorityQueue

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 13), reason="asyncio.Queue.shutdown() is new in Python 3.13"
)

# Small bounds listed twice: they are where putters block.
MAXSIZES = [1, 1, 2, 2, 3, 2.5, 2.5, 0.5, 0, math.inf, -1, -0.5]

# (kind, blocking, how many): several blocked waiters at once are what wake-ups act on.
put_or_get = st.tuples(st.sampled_from(["put", "get"]), st.booleans(), st.integers(1, 3))
waiter = st.integers(0, 2)  # which waiting task, oldest first (modulo their number)
wake_and_cancel = st.tuples(st.just("wake_and_cancel"), st.sampled_from(["put", "get"]), waiter)
step = st.one_of(
    put_or_get,
    put_or_get,
    put_or_get,
    put_or_get,
    st.tuples(st.just("cancel"), st.sampled_from(["put", "get", "join"]), waiter),
    # A waiter woken by the call and cancelled in the same turn, before it runs.
    wake_and_cancel,
    wake_and_cancel,
    st.tuples(st.just("task_done")),
    st.tuples(st.just("join")),
    st.tuples(st.just("shutdown"), st.booleans()),  # immediate
)
settle_after = st.sampled_from([True, True, True, False])
program = st.lists(st.tuples(step, settle_after), min_size=6, max_size=40)


async def settle() -> None:
    for _ in range(8):
        await asyncio.sleep(0)


async def trace(queue: asyncio.Queue, steps: list[tuple[tuple[Any, ...], bool]]) -> list[Any]:
    """Run `steps` on `queue` and return everything observable, in order."""
    log: list[Any] = []
    waiting: dict[int, asyncio.Task[Any]] = {}
    names: dict[int, str] = {}
    ids = iter(range(10**6))

    def outcome(call: Any) -> Any:
        try:
            return ("ok", call())
        except Exception as error:
            return ("raised", type(error).__name__)

    def spawn(name: str, call: Any) -> None:
        task_id = next(ids)

        async def run() -> None:
            try:
                result = await call()
            except asyncio.CancelledError:
                log.append(("done", task_id, name, "cancelled"))
                raise
            except Exception as error:
                log.append(("done", task_id, name, "raised", type(error).__name__))
            else:
                log.append(("done", task_id, name, "ok", result))

        names[task_id] = name
        waiting[task_id] = asyncio.create_task(run())

    def state() -> tuple[Any, ...]:
        if isinstance(queue, PriorityQueue):
            contents = [entry.item for entry in queue.top(queue.qsize())]
        else:
            contents = list(queue._queue)
        return (
            "state",
            queue.maxsize,
            queue.qsize(),
            queue.empty(),
            queue.full(),
            contents,
            queue._unfinished_tasks,
            sum(not waiter.done() for waiter in queue._getters),
            sum(not waiter.done() for waiter in queue._putters),
            sorted(task_id for task_id, task in waiting.items() if not task.done()),
        )

    for (kind, *args), settle_after in steps:
        if kind == "put":
            for _ in range(args[1]):
                item = next(ids)
                if args[0]:
                    spawn(f"put {item}", partial(queue.put, item))
                else:
                    log.append(("put_nowait", item, outcome(partial(queue.put_nowait, item))))
        elif kind == "get":
            for _ in range(args[1]):
                if args[0]:
                    spawn("get", queue.get)
                else:
                    log.append(("get_nowait", outcome(queue.get_nowait)))
        elif kind in ("cancel", "wake_and_cancel"):
            if kind == "wake_and_cancel":  # a put wakes a getter, a get wakes a putter
                call, wakes = (
                    (queue.get_nowait, "put") if args[0] == "put" else (queue.put_nowait, "get")
                )
                log.append((kind, args[0], outcome(call if wakes == "put" else partial(call, -1))))
            else:
                wakes = args[0]
            pending = sorted(
                task_id
                for task_id, task in waiting.items()
                if not task.done() and names[task_id].startswith(wakes)
            )
            if pending:
                target = pending[args[1] % len(pending)]
                log.append(("cancel", target, waiting[target].cancel()))
        elif kind == "task_done":
            log.append(("task_done", outcome(queue.task_done)))
        elif kind == "join":
            spawn("join", queue.join)
        elif kind == "shutdown":
            # Only whether it raised: the return value differs on purpose (module docstring).
            log.append(("shutdown", args[0], outcome(partial(queue.shutdown, args[0]))[0]))
        if settle_after:
            await settle()
            log.append(state())
    await settle()
    log.append(state())
    for task in waiting.values():
        task.cancel()
    await settle()
    log.append(state())
    return log


def run_on(make: Any, maxsize: float, steps: list[tuple[tuple[Any, ...], bool]]) -> list[Any]:
    async def main() -> list[Any]:
        return await asyncio.wait_for(trace(make(maxsize), steps), timeout=10)

    return asyncio.run(main())


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maxsize=st.sampled_from(MAXSIZES), steps=program)
def test_priority_queue_behaves_as_asyncio_queue(maxsize: float, steps: list[Any]) -> None:
    expected = run_on(asyncio.Queue, maxsize, steps)
    actual = run_on(PriorityQueue, maxsize, steps)
    assert actual == expected


def test_the_differential_harness_sees_a_difference() -> None:
    """The harness is not blind: a LIFO queue on the same program gives another trace."""
    steps = [(("put", False, 2), True), (("get", False, 1), True)]
    assert run_on(asyncio.LifoQueue, 0, steps) != run_on(asyncio.Queue, 0, steps)
