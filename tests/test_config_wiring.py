"""The config file in the command (issue 13, point 6): flags beat the config, the config beats
the scenario; --theme, --no-config; a bad file is one line and the defaults; a theme picked in
the palette is remembered in the state file (never in the config) and used at the next start;
key overrides by binding id. conftest points HEAPWATCH_CONFIG and HEAPWATCH_STATE at tmp."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes import ScriptedEngine
from test_cli import ROOT
from textual.command import CommandList
from waiting import until

from tui.cli import build_parser, dashboard_app, scenario_from_args, user_config
from tui.config import config_path, load_state, state_path
from tui.keys import use_overrides
from tui.screens.help import HelpScreen
from tui.widgets.key_bar import KeyBar


@pytest.fixture(autouse=True)
def _table_keys_after():
    yield
    use_overrides({})  # the next test's app starts from the table's own keys anyway


def write_config(text: str) -> Path:
    path = config_path()
    path.write_text(text, encoding="utf-8")
    return path


def command(*argv: str) -> tuple[Any, Any, Any]:
    """What the command makes of `argv`: its args, the config it uses and the scenario."""
    args = build_parser().parse_args(list(argv))
    config, base = user_config(args)
    return args, config, scenario_from_args(args, base)


async def opened(*argv: str) -> tuple[str, float, str]:
    """The theme, refresh rate and scenario the dashboard opens with for `argv`."""
    args, config, scenario = command(*argv)
    app = dashboard_app(ScriptedEngine(), args, config)
    async with app.run_test() as pilot:
        await pilot.pause()
        return app.theme, app.refresh_hz, scenario.name


async def test_flags_beat_the_config_and_the_config_beats_the_scenario() -> None:
    assert await opened() == ("textual-dark", 1.0, "demo")  # no config: the defaults
    write_config('theme = "nord"\nrefresh = 5\nscenario = "starvation"\n')
    assert await opened() == ("nord", 5.0, "starvation")
    assert await opened("--theme", "dracula", "--refresh", "2", "--scenario", "burst") == (
        "dracula", 2.0, "burst")
    # A flag beats the value of the scenario the config chose.
    args, config, scenario = command("--workers", "3")
    assert scenario.name == "starvation" and scenario.pool.workers == 3


async def test_no_config_ignores_the_file_and_the_remembered_theme() -> None:
    write_config('theme = "nord"\nrefresh = 5\nscenario = "starvation"\n')
    state_path().write_text('theme = "gruvbox"\n', encoding="utf-8")
    assert await opened("--no-config") == ("textual-dark", 1.0, "demo")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('theme = "nord"\nrefresh = 500\n', ":2: refresh: must be between 0.01 and 60"),
        ('theme = "purple"\n', ":1: theme: unknown theme 'purple' (themes: ansi-dark"),
        ('refresh = 2\n\nscenario = "nope"\n', ":3: scenario: unknown scenario 'nope'"),
        ('[keys]\nburst = "q"\n', ":2: keys.burst: 'q' is already the key of quit"),
        ('[keys]\nbrust = "n"\n', "keys.brust: no such binding (known: add_worker"),
        ('[keys]\nburst = "escape"\n', ":2: keys.burst: 'escape' is already escape"),
    ],
)
async def test_a_bad_config_is_one_line_naming_file_line_and_key_then_the_defaults(
        capsys, text: str, where: str) -> None:
    path = write_config(text)
    assert await opened() == ("textual-dark", 1.0, "demo")
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"heapwatch: warning: {path}") and where in err, err
    assert err.rstrip().endswith("(the config is ignored: the defaults apply)")


def test_a_bad_config_is_said_before_the_run_and_the_run_goes_on() -> None:
    path = write_config('scenario = "chaos"\nrefresh = "fast"\n')
    done = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--headless", "--duration", "0.3"], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"heapwatch: warning: {path}:2: refresh: must be a number")
    assert "Traceback" not in done.stderr
    assert "chaos" not in done.stderr  # the defaults: the demo, not the file's scenario


def test_an_unknown_theme_flag_is_one_line_listing_the_themes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--theme", "purple"], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "unknown theme 'purple'; the themes: " in done.stderr
    assert "nord" in done.stderr and "textual-dark" in done.stderr


def offered(app: Any) -> list[str]:
    """The first line of each command the open palette offers now."""
    found = app.screen.query(CommandList)
    if not found:
        return []
    commands = found.first()
    return [str(commands.get_option_at_index(n).prompt).splitlines()[0]
            for n in range(commands.option_count)]


async def test_a_theme_picked_in_the_palette_is_remembered_never_in_the_config() -> None:
    config = write_config('refresh = 4\n')
    before = config.read_bytes()
    args, settings, _ = command()
    app = dashboard_app(ScriptedEngine(), args, settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p", *"theme")
        await until(lambda: offered(app) == ["Theme"], "the theme command")
        await pilot.press("enter")
        await until(lambda: offered(app), "the theme list")
        await pilot.press(*"gruvbox")
        await until(lambda: offered(app) == ["gruvbox"], "gruvbox alone in the list")
        await pilot.press("enter")
        await until(lambda: app.theme == "gruvbox", "the theme applied")
    assert load_state() == {"theme": "gruvbox"}
    assert config.read_bytes() == before
    # The next start opens with it.
    assert (await opened())[0] == "gruvbox"
    # Until the config's own theme is edited after the pick: the newer decision wins.
    write_config('theme = "nord"\n')
    picked = state_path().stat().st_mtime
    os.utime(config_path(), (picked + 5, picked + 5))
    assert (await opened())[0] == "nord"


async def test_a_key_override_rebinds_and_every_place_shows_it() -> None:
    write_config('[keys]\nburst = "n"\n')
    args, config, _ = command()
    engine = ScriptedEngine()
    app = dashboard_app(engine, args, config)
    async with app.run_test(size=(200, 60)) as pilot:
        await until(lambda: app.snapshot is not None, "a snapshot")
        await pilot.press("b")
        await pilot.pause()
        assert not [call for call in engine.actions if call[0] == "burst"]
        await pilot.press("n")
        await pilot.pause()
        assert [call for call in engine.actions if call[0] == "burst"] == [("burst", (200,))]
        assert "n Burst" in str(app.query_one(KeyBar).render())
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-keys")
        keys = [str(table.get_row_at(row)[0]) for row in range(table.row_count)]
        assert "n" in keys and "b" not in keys


def test_help_has_examples_and_says_how_priorities_and_the_handler_work() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--help"], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}, capture_output=True,
        text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr
    text = done.stdout
    flat = " ".join(text.split())
    assert "Lower priority numbers are served first" in flat
    assert "The handler is simulated" in flat
    examples = text[text.index("\nEXAMPLES\n"):]
    for example in ("  heapwatch\n", "heapwatch --scenario starvation",
                    "heapwatch --headless --scenario chaos --duration 30 --report run.json",
                    "heapwatch --web 8000", "heapwatch attach 4242", "heapwatch replay run.ndjson"):
        assert example in examples, example
    assert "--theme NAME" in text and "--no-config" in text
    assert str(config_path()) in text  # where the config file is looked for
