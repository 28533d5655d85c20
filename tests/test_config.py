"""The user's config file: what it sets, and one line for anything wrong with it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui.config import (
    Config,
    ConfigError,
    check_bindings,
    config_path,
    load_config,
    load_state,
    save_state,
    state_path,
)


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_tests_never_see_the_developers_config() -> None:
    home = Path(os.path.expanduser("~"))
    assert home not in config_path().parents
    assert home not in state_path().parents


def test_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    assert load_config(tmp_path / "absent.toml") == Config()


def test_a_full_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '\ufefftheme = "nord"\nrefresh = 2\nscenario = "starvation"\n[keys]\nburst = "n"\n',
    )
    config = load_config(path)
    assert (config.theme, config.refresh, config.scenario) == ("nord", 2.0, "starvation")
    assert dict(config.keys) == {"burst": "n"} and config.path == path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('theme = "x"\ncolour = "red"\n', ":2: colour: unknown key"),
        ("refresh = 0\n", ":1: refresh: must be between 0.01 and 60"),
        ("refresh = nan\n", ":1: refresh: must be between"),
        ('refresh = "fast"\n', ":1: refresh: must be a number"),
        ("theme = 3\n", ":1: theme: must be a theme name"),
        ('scenario = ""\n', ":1: scenario: must be a scenario name"),
        ('keys = "n"\n', ":1: keys: must be a table"),
        ("[keys]\nburst = 5\n", ":2: keys.burst: must be a key name"),
        ("theme = \n", "not valid TOML"),
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    ],
)
def test_bad_config_is_one_line_naming_file_line_and_key(
    tmp_path: Path, text: str | bytes, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and expected in message
    assert "\n" not in message


def test_not_a_regular_file_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(Path("/dev/zero"))


def test_unknown_binding_is_named() -> None:
    config = Config(keys={"burts": "n"}, path=Path("c.toml"))
    with pytest.raises(ConfigError, match=r"c.toml: keys.burts: no such binding \(known: burst"):
        check_bindings(config, {"burst", "quit"})
    check_bindings(Config(keys={"burst": "n"}), {"burst"})


def test_state_round_trip_never_touches_the_config(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state.toml"
    assert load_state(state) == {}
    assert save_state({"theme": 'odd "name" \\ é'}, state)
    assert save_state({"other": "x"}, state)
    assert load_state(state) == {"theme": 'odd "name" \\ é', "other": "x"}
    assert not config_path().exists()


def test_unwritable_state_is_false_not_a_crash() -> None:
    assert save_state({"theme": "nord"}, Path("/proc/heapwatch/state.toml")) is False
    assert load_state(Path("/proc/heapwatch/state.toml")) == {}
