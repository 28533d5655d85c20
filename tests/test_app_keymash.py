"""The dashboard never wedges: after any keys mashed while the terminal is resized (2x2 up to
300x80), `q` quits, from any screen, within the drain timeout plus a second, with status 0."""

from __future__ import annotations

import random
import time

import pytest
from textual.widgets import Input

from engine.runtime import Engine
from engine.scenario import parse_scenario
from tui.app import HeapwatchApp
from tui.palette import SafeCommandPalette

DRAIN = 1.0
MASH = f"""
[queue]
maxsize = 300
[pool]
workers = 3
drain_timeout = {DRAIN}
timeout = 0.5
[handler]
latency_ms = {{ mean = 5, p99 = 20 }}
failure_rate = 0.2
hang_rate = 0.01
[[producers]]
rate = 50
priorities = {{ 0 = 1, 5 = 3, 9 = 1 }}
[watchdog]
interval = 0.1
sla_ms = 300
"""

# Every key the app binds, its screens' keys, focus moves, and the command palette (an input).
KEYS = ["question_mark", "b", "B", "l", "c", "plus", "minus", "p", "a", "o", "x", "m", "t", "j", "k", "S",
        "f", "s", "enter", "escape", "tab", "shift+tab", "up", "down", "pageup", "pagedown", "end",
        "ctrl+p", "z", "1", "space"]
SIZES = [(2, 2), (3, 1), (10, 5), (40, 12), (80, 24), (109, 31), (120, 40), (300, 80)]


async def _wait(pilot, predicate, limit: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > limit:
            break
        await pilot.pause(0.02)
    return time.monotonic() - started


@pytest.mark.parametrize("seed", range(2))
async def test_q_quits_after_keys_mashed_while_resizing(seed: int) -> None:
    rng = random.Random(seed)
    engine = Engine(parse_scenario(MASH, name="mash"))
    app = HeapwatchApp(engine, refresh_hz=5)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        for _ in range(40):
            if rng.random() < 0.3:
                await pilot.resize_terminal(*rng.choice(SIZES))
            await pilot.press(*rng.choices(KEYS, k=rng.randint(1, 4)))
            if rng.random() < 0.2:
                await pilot.pause(0.02)
        await pilot.resize_terminal(*rng.choice(SIZES))
        if isinstance(app.focused, Input):
            await pilot.press("q")  # typing: q is a letter there, the app goes on
            await pilot.pause(0.05)
            assert app.is_running and app.return_code is None
            await pilot.press("escape")  # Esc leaves the input first
        await pilot.press("q")
        took = await _wait(pilot, lambda: app.return_code is not None, DRAIN + 1.0)
        assert app.return_code == 0, f"q did not quit within {DRAIN + 1.0}s (screen {app.screen})"
        assert took <= DRAIN + 1.0
    assert not engine.running
    assert engine.pool.accounting().lost == 0


async def test_q_quits_from_the_help_screen_and_the_palette() -> None:
    engine = Engine(parse_scenario(MASH, name="mash"))
    app = HeapwatchApp(engine, refresh_hz=5)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.05)
        assert isinstance(app.focused, Input)
        await pilot.press("q")
        await pilot.pause(0.05)
        assert app.is_running and app.focused.value == "q"
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.05)
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("q")
        await _wait(pilot, lambda: app.return_code is not None, DRAIN + 1.0)
        assert app.return_code == 0


@pytest.mark.parametrize("shrink_first", [False, True])
async def test_page_keys_in_the_palette_of_a_tiny_terminal_do_not_crash(shrink_first) -> None:
    # Textual's palette raised KeyError on page-up with under 5 rows: the app died, status 1.
    engine = Engine(parse_scenario(MASH, name="mash"))
    app = HeapwatchApp(engine, refresh_hz=5)
    async with app.run_test(size=(120, 40)) as pilot:
        if shrink_first:
            await pilot.resize_terminal(3, 1)
        await pilot.press("ctrl+p")
        await pilot.pause(0.1)
        await pilot.resize_terminal(3, 1)
        await pilot.press("pageup", "pagedown", "pageup")
        await pilot.pause(0.1)
        assert app.is_running and app.return_code is None
        await pilot.resize_terminal(80, 24)
        await pilot.press("escape", "q")
        await _wait(pilot, lambda: app.return_code is not None, DRAIN + 1.0)
        assert app.return_code == 0


async def test_a_second_dismissal_of_the_palette_is_harmless() -> None:
    # Two Enters (or Esc) queued before the palette closed: the second dismissal raised
    # ScreenStackError and the app died; a ctrl+p then raised DuplicateIds.
    engine = Engine(parse_scenario(MASH, name="mash"))
    app = HeapwatchApp(engine, refresh_hz=5)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.1)
        palette = app.screen
        assert isinstance(palette, SafeCommandPalette)
        palette.dismiss()
        palette.dismiss()
        app.action_command_palette()  # ctrl+p again while it closes: once a DuplicateIds crash
        await pilot.pause(0.1)
        assert app.is_running and app.screen is not palette
        await pilot.press("escape")
        await pilot.press("q")
        await _wait(pilot, lambda: app.return_code is not None, DRAIN + 1.0)
        assert app.return_code == 0
