"""Where monitors live on disk: one private directory per user, a socket and an info file each.

The directory is `$HEAPWATCH_MONITOR_DIR`, else `$XDG_RUNTIME_DIR/heapwatch`, else
`<tempdir>/heapwatch-<uid>`. It must be a real directory (not a symlink), owned by this user,
with no access for group or others (0700): one owned by someone else is refused, since its owner
could swap the socket for their own. In it, per monitor: `<pid>.sock` (0600), `<pid>.json` (pid,
name, command line, start time, address; 0600) and, for TCP, `<pid>.token` (0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["DirectoryError", "MonitorError", "MonitorInfo", "list_monitors", "monitor_dir", "program_name"]


class MonitorError(RuntimeError):
    """A monitor could not start or be reached (the message is one line saying why)."""


class DirectoryError(MonitorError):
    """The monitor directory is unsafe or unusable."""


def program_name() -> str:
    """The running program's name, for a monitor that was given none."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    name = os.path.basename(argv0)
    return "python" if name in ("-c", "") else name


def default_dir() -> Path:
    override = os.environ.get("HEAPWATCH_MONITOR_DIR")
    if override:
        return Path(override)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "heapwatch"
    return Path(tempfile.gettempdir()) / f"heapwatch-{os.getuid()}"


def check_private(path: Path) -> None:
    """Raise DirectoryError unless `path` is a directory of ours, mode 0700 (or stricter)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise DirectoryError(f"{path} does not exist") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise DirectoryError(f"refusing {path}: not a directory (a symlink or a file)")
    if info.st_uid != os.getuid():
        raise DirectoryError(
            f"refusing {path}: owned by uid {info.st_uid}, not by this user (uid {os.getuid()})"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise DirectoryError(f"refusing {path}: mode {mode:04o} lets other users in (want 0700)")


def monitor_dir(create: bool = True) -> Path:
    """The checked monitor directory, made 0700 if it is missing (and `create`)."""
    path = default_dir()
    if create:
        with contextlib.suppress(FileExistsError):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(path, 0o700)
    check_private(path)
    return path


def socket_path(path: Any = None) -> str:
    """The socket to bind: `path`, or `<monitor dir>/<pid>.sock`. Its directory is checked."""
    if path is None:
        return str(monitor_dir() / f"{os.getpid()}.sock")
    chosen = Path(path)
    parent = chosen.parent.resolve()
    owner = os.stat(parent).st_uid
    if owner not in (os.getuid(), 0):
        raise MonitorError(f"refusing {parent}: owned by uid {owner}, not by this user or root")
    return str(chosen)


def clear_stale_socket(path: str) -> None:
    """Remove a socket left at `path` by a process that is gone; refuse a live one."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise MonitorError(f"cannot serve on {path}: a file that is not a socket is there")
    import socket

    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: left behind by a crashed run
        return
    finally:
        probe.close()
    raise MonitorError(f"cannot serve on {path}: another monitor is listening there")


def _write_private(path: Path, text: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def new_token() -> tuple[str, str]:
    """A fresh token and the 0600 file it is stored in (read by same-user clients)."""
    token = secrets.token_urlsafe(32)
    path = monitor_dir() / f"{os.getpid()}.token"
    _write_private(path, token + "\n")
    return token, str(path)


def write_info(hello: dict[str, Any], address: str, token_file: str | None) -> str | None:
    """`<pid>.json` for `attach --list` and attach by pid or name (None if it cannot be written)."""
    try:
        path = monitor_dir() / f"{os.getpid()}.json"
        info = {key: hello[key] for key in ("pid", "name", "argv", "started")}
        info.update(address=address, token_file=token_file)
        _write_private(path, json.dumps(info))
    except (OSError, DirectoryError):
        return None
    return str(path)


class MonitorInfo(dict):
    """One monitor's info file: pid, name, argv, started (epoch seconds), address, token_file."""

    @property
    def pid(self) -> int:
        return int(self["pid"])

    @property
    def name(self) -> str:
        return str(self.get("name", ""))

    @property
    def address(self) -> str:
        return str(self["address"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_monitors(*, prune: bool = True) -> list[MonitorInfo]:
    """The monitors this user can reach, oldest first; files of processes gone are removed."""
    try:
        directory = monitor_dir(create=False)
    except DirectoryError:
        return []
    found: list[MonitorInfo] = []
    for info_path in sorted(directory.glob("*.json")):
        try:
            info = MonitorInfo(json.loads(info_path.read_text()))
            pid = info.pid
            info.address  # noqa: B018 - a file without an address is not ours
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid):
            if prune:
                for suffix in (".json", ".sock", ".token"):
                    with contextlib.suppress(OSError):
                        os.unlink(directory / f"{pid}{suffix}")
            continue
        found.append(info)
    found.sort(key=lambda info: info.get("started", 0))
    return found


def tcp_address(tcp: str | int | tuple[str, int]) -> tuple[str, int]:
    if isinstance(tcp, tuple):
        host, port = tcp
    elif isinstance(tcp, int) and not isinstance(tcp, bool):
        host, port = "127.0.0.1", tcp
    elif isinstance(tcp, str):
        host, _, text = tcp.rpartition(":")
        host = host or "127.0.0.1"
        try:
            port = int(text)
        except ValueError:
            raise ValueError(f"tcp must be a port, 'HOST:PORT' or (host, port), not {tcp!r}") from None
    else:
        raise TypeError(f"tcp must be a port, 'HOST:PORT' or (host, port), not {tcp!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, not {port!r}")
    return host, port
