"""Regenerate screenshots/*.svg from the real app: the real Engine, the demo scenario, its seed.

    .venv/bin/python scripts/screenshots.py [--seconds 6] [--out screenshots]

Each shot runs a fresh engine for a few seconds (so the sparklines and alerts have something
to show), presses the keys a person would, and saves the screen as SVG exactly as it is: nothing
is cleared first (the dashboard shows at most one toast, only for a key's result, and none over
a modal screen). Shots at 80x24, 120x40 and 200x60, one with an alert and its stacks. Live times
differ from run to run; the layout and the story do not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.pilot import Pilot  # noqa: E402

from engine.runtime import Engine  # noqa: E402
from engine.scenario import load_scenario  # noqa: E402
from tui.app import HeapwatchApp  # noqa: E402
from tui.screens.alert_detail import AlertScreen  # noqa: E402

Steps = Callable[[Pilot, Engine], Awaitable[None]]


async def nothing(pilot: Pilot, engine: Engine) -> None:
    """The dashboard as it is."""


async def help_screen(pilot: Pilot, engine: Engine) -> None:
    await pilot.press("question_mark")


async def alert_with_stacks(pilot: Pilot, engine: Engine) -> None:
    """A flood of low-priority items starves them; open a starvation alert and its stacks."""
    app = pilot.app
    assert isinstance(app, HeapwatchApp)
    for _ in range(40):
        starving = [alert for alert in engine.watchdog.snapshot().alerts
                    if alert.kind == "starvation" and alert.stacks]
        if starving:
            app.push_screen(AlertScreen(starving[0]))
            return
        await pilot.pause(0.25)


async def shutdown_report(pilot: Pilot, engine: Engine) -> None:
    await pilot.press("s", "y")
    for _ in range(80):
        if engine.pool.snapshot().report is not None:
            break
        await pilot.pause(0.25)
    await pilot.pause(0.5)


SHOTS: list[tuple[str, tuple[int, int], tuple[str, ...], Steps]] = [
    ("dashboard-120x40", (120, 40), ("B",), nothing),
    ("dashboard-80x24", (80, 24), ("B",), nothing),
    ("dashboard-200x60", (200, 60), ("B",), nothing),
    ("help-120x40", (120, 40), (), help_screen),
    ("alert-120x40", (120, 40), ("l", "B"), alert_with_stacks),
    ("shutdown-120x40", (120, 40), ("B",), shutdown_report),
]


async def shoot(name: str, size: tuple[int, int], keys: tuple[str, ...], steps: Steps,
                seconds: float, out: Path, scenario: str) -> Path:
    engine = Engine(load_scenario(scenario))
    app = HeapwatchApp(engine, clock=engine.clock)
    async with app.run_test(size=size, notifications=True) as pilot:
        await pilot.pause(1.0)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(seconds)
        await steps(pilot, engine)
        await pilot.pause(0.3)
        path = Path(app.save_screenshot(f"{name}.svg", str(out)))
    return path


def main() -> None:
    logging.getLogger("engine").addHandler(logging.NullHandler())  # alerts show on screen
    logging.getLogger("engine").propagate = False
    gc.freeze()  # as the heapwatch command does: no long full collections in the shots
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="run time before each shot")
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--scenario", default="demo")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, size, keys, steps in SHOTS:
        path = asyncio.run(shoot(name, size, keys, steps, args.seconds, args.out, args.scenario))
        print(path)


if __name__ == "__main__":
    main()
