"""The user's config file and the dashboard's remembered state.

`~/.config/heapwatch/config.toml` (platformdirs' user config dir; `HEAPWATCH_CONFIG` names another
file) holds what a person sets once:

    theme = "nord"
    refresh = 2.0            # screen refreshes per second
    scenario = "starvation"  # the default scenario, a built-in name or a file
    [keys]
    burst = "n"              # binding id = key (see `heapwatch --help` / the help screen)

Precedence: the command's flags, then this file, then the scenario. The file is never written
by heapwatch: a theme picked in the command palette is remembered in a separate state file
(platformdirs' user state dir, `state.toml`) and used at the next start, until the config's
own file is edited again (the newer of the two decides). A bad config file is one line naming
the file, the line and the key; the defaults apply and the dashboard still opens.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.limits import BOUNDS

__all__ = [
    "Config",
    "ConfigError",
    "check_keys",
    "check_theme",
    "choose_theme",
    "config_error",
    "config_path",
    "load_config",
    "load_state",
    "save_state",
    "state_path",
]

MAX_BYTES = 64 * 1024
REFRESH_RANGE = (BOUNDS["--refresh"].low, BOUNDS["--refresh"].high)
"""Refreshes per second a config may ask for, the same range as `--refresh`."""


class ConfigError(ValueError):
    """A config file that cannot be used: its message is the one line the user reads."""


@dataclass(frozen=True, slots=True)
class Config:
    """What the user's config file sets; None (or empty) where it says nothing."""

    theme: str | None = None
    refresh: float | None = None
    """Screen refreshes per second."""
    scenario: str | None = None
    keys: Mapping[str, str] = field(default_factory=dict)
    """Binding id -> key (Textual key names, e.g. 'n', 'ctrl+b', 'f5')."""
    path: Path | None = None
    """The file it came from (None: no file)."""


def config_path() -> Path:
    """Where the config file is looked for: `$HEAPWATCH_CONFIG`, else the user config dir."""
    explicit = os.environ.get("HEAPWATCH_CONFIG")
    if explicit:
        return Path(explicit)
    import platformdirs

    return Path(platformdirs.user_config_dir("heapwatch")) / "config.toml"


def state_path() -> Path:
    """The dashboard's own state (the theme picked last): `$HEAPWATCH_STATE` or the state dir."""
    explicit = os.environ.get("HEAPWATCH_STATE")
    if explicit:
        return Path(explicit)
    import platformdirs

    return Path(platformdirs.user_state_dir("heapwatch")) / "state.toml"


def _line_of(text: str, key: str) -> int | None:
    """The 1-based line where `key` is first set, for the error message (None: not found)."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(f"{key} ") or stripped.startswith(f"{key}="):
            return number
    return None


def _where(path: Path, text: str, key: str) -> str:
    line = _line_of(text, key.rsplit(".", 1)[-1])
    return f"{path}:{line}" if line else str(path)


def _read(path: Path) -> str:
    try:
        if not path.is_file():
            raise ConfigError(f"{path}: not a regular file")
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path}: over {MAX_BYTES // 1024} KiB, not a config file")
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def load_config(path: Path | None = None) -> Config:
    """Read the config file (`config_path()` by default); a missing file is an empty Config.

    Raises ConfigError with one line ('FILE:LINE: key: what is wrong') for anything else.
    """
    path = config_path() if path is None else path
    try:
        os.stat(path)
    except FileNotFoundError:
        return Config()
    except OSError as error:  # a directory this user may not enter: said, not a traceback
        raise ConfigError(f"{path}: cannot read it: {error.strerror or error}") from None
    text = _read(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return _parse(path, text, data)


def _parse(path: Path, text: str, data: dict[str, Any]) -> Config:
    known = {"theme", "refresh", "scenario", "keys"}
    for key in data:
        if key not in known:
            allowed = ", ".join(sorted(known))
            raise ConfigError(f"{_where(path, text, key)}: {key}: unknown key (allowed: {allowed})")

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{_where(path, text, key)}: {key}: {message}")

    theme = data.get("theme")
    if theme is not None and (not isinstance(theme, str) or not theme.strip()):
        raise fail("theme", f"must be a theme name (a string), not {theme!r}")
    scenario = data.get("scenario")
    if scenario is not None and (not isinstance(scenario, str) or not scenario.strip()):
        raise fail("scenario", f"must be a scenario name or file (a string), not {scenario!r}")
    refresh = data.get("refresh")
    if refresh is not None:
        low, high = REFRESH_RANGE
        if isinstance(refresh, bool) or not isinstance(refresh, int | float):
            raise fail("refresh", f"must be a number of refreshes per second, not {refresh!r}")
        if not math.isfinite(refresh) or not low <= refresh <= high:
            raise fail("refresh", f"must be between {low:g} and {high:g}, not {refresh!r}")
        refresh = float(refresh)
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        raise fail("keys", "must be a table of binding id = key")
    for binding, key in keys.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 32:
            raise fail(f"keys.{binding}", f"must be a key name such as 'n' or 'ctrl+b', not {key!r}")
    return Config(theme=theme, refresh=refresh, scenario=scenario, keys=dict(keys), path=path)


def check_bindings(config: Config, binding_ids: set[str]) -> None:
    """Raise ConfigError for a `[keys]` entry naming no binding the app has."""
    for binding in config.keys:
        if binding not in binding_ids:
            where = config.path or "config"
            allowed = ", ".join(sorted(binding_ids))
            raise ConfigError(f"{where}: keys.{binding}: no such binding (known: {allowed})")


def config_error(config: Config, key: str, message: str) -> ConfigError:
    """The one line for a value the file holds but the command cannot use: 'FILE:LINE: key: ...'."""
    path = config.path or Path("config")
    try:
        text = _read(path) if config.path is not None else ""
    except ConfigError:
        text = ""
    return ConfigError(f"{_where(path, text, key)}: {key}: {message}")


def check_theme(config: Config, themes: Collection[str]) -> None:
    """Raise ConfigError when the config names a theme the dashboard does not have."""
    if config.theme is not None and config.theme not in themes:
        raise config_error(config, "theme", f"unknown theme {config.theme!r} (themes: "
                           f"{', '.join(sorted(themes))})")


def check_keys(config: Config, defaults: Mapping[str, str], fixed: Mapping[str, str]) -> None:
    """Raise ConfigError for a `[keys]` entry naming no binding, or giving a binding a key that
    another one keeps (`defaults`: binding id -> its key; `fixed`: key -> what it does, for the
    keys that cannot be rebound): no key may mean two things on one screen."""
    check_bindings(config, set(defaults))
    users: dict[str, list[str]] = {}
    for binding, key in {**defaults, **config.keys}.items():
        users.setdefault(key, []).append(binding)
    for binding, key in config.keys.items():
        if key in fixed:
            raise config_error(config, f"keys.{binding}", f"{key!r} is already {fixed[key]}")
        others = [other for other in users[key] if other != binding]
        if others:
            raise config_error(config, f"keys.{binding}", f"{key!r} is already the key of"
                               f" {others[0]}")


def choose_theme(flag: str | None, config: Config, themes: Collection[str],
                 state: Path | None) -> str | None:
    """The theme to open with: `--theme`, else the newer of the config's and the one picked
    in the palette last (remembered in `state`; None: not read), else None (Textual's own)."""
    if flag:
        return flag
    remembered = load_state(state).get("theme") if state is not None else None
    if remembered not in themes:
        remembered = None
    if config.theme and remembered and config.path is not None and state is not None:
        try:
            picked_later = state.stat().st_mtime >= config.path.stat().st_mtime
        except OSError:
            picked_later = False
        return remembered if picked_later else config.theme
    return config.theme or remembered


def load_state(path: Path | None = None) -> dict[str, str]:
    """The remembered state ({'theme': ...}); an unreadable or broken state file is empty."""
    path = state_path() if path is None else path
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def save_state(values: Mapping[str, str], path: Path | None = None) -> bool:
    """Remember `values` (merged into what is there); False when it cannot be written."""
    path = state_path() if path is None else path
    merged = {**load_state(path), **values}
    lines = [f"{key} = {_toml_string(value)}" for key, value in sorted(merged.items())]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text("\n".join(lines) + "\n", encoding="utf-8")
        scratch.replace(path)
    except OSError:
        return False
    return True


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'
