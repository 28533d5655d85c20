"""An asyncio client of `engine.serve_monitor`: connect, read frames, send requests.

    client = await MonitorClient.connect("4242")          # a pid, a name, unix:PATH, tcp://H:P
    frame = await client.next_frame()                      # snapshot (newest wins) or stale
    groups = await client.stacks()
    await client.close()

Targets are resolved through the monitor directory's info files (`engine.monitor_paths`), so a
name or a pid finds the socket and, for TCP, the token. Every mistake is a `ClientError` whose
message is the one line to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.monitor_paths import MonitorError, MonitorInfo, list_monitors
from engine.snapshots import HeapEntry, MemoryProfile, StackGroup
from engine.wire import Codec, Frame, FrameError, codec

__all__ = ["ClientError", "MonitorClient", "RemoteError", "Target", "resolve"]

_log = logging.getLogger(__name__)

MAX_FRAME_LINE = 32 * 1024 * 1024
"""Bytes in one line from a monitor: a snapshot with full dead letters is well under this."""
REQUEST_TIMEOUT = 35.0
"""Seconds to wait for a reply (a memory profile may take the service a while)."""


class ClientError(MonitorError):
    """The monitor could not be found, reached or understood (one line)."""


class RemoteError(ClientError):
    """The monitor refused or failed a request (its one-line reason)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: `kind` 'unix' (path) or 'tcp' (host, port), with any token found."""

    kind: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    token: str | None = None
    text: str = ""
    """What the user typed: a reconnect resolves it again (a restarted service has a new pid)."""
    info: MonitorInfo | None = None

    @property
    def address(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"tcp://{self.host}:{self.port}"


def _read_token(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path) as file:
            return file.read().strip() or None
    except OSError:
        return None


def _from_address(address: str, text: str, token: str | None,
                  info: MonitorInfo | None = None) -> Target:
    if address.startswith("unix:"):
        return Target("unix", path=address[5:], text=text, info=info)
    if address.startswith("tcp://"):
        host, sep, port_text = address[6:].rpartition(":")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ClientError(f"bad address {address!r}: expected tcp://HOST:PORT")
        if token is None:
            token = os.environ.get("HEAPWATCH_TOKEN") or None
        if token is None:
            for known in list_monitors():
                if known.address == address:
                    token = _read_token(known.get("token_file"))
        return Target("tcp", host=host.strip("[]"), port=int(port_text), token=token, text=text,
                      info=info)
    raise ClientError(f"bad address {address!r}: expected unix:PATH or tcp://HOST:PORT")


def resolve(text: str, *, token: str | None = None) -> Target:
    """A pid, a monitor name, `unix:PATH` or `tcp://HOST:PORT` into a `Target`."""
    text = text.strip()
    if not text:
        raise ClientError("no target: give a pid, a name, unix:PATH or tcp://HOST:PORT")
    if text.startswith(("unix:", "tcp://")):
        return _from_address(text, text, token)
    monitors = list_monitors()
    if text.isdigit():
        matches = [info for info in monitors if info.pid == int(text)]
        if not matches:
            raise ClientError(f"no heapwatch monitor for pid {text}: start one with "
                              "engine.serve_monitor()")
    else:
        matches = [info for info in monitors if info.name == text]
        if not matches:
            raise ClientError(f"no heapwatch monitor named {text!r}: see heapwatch attach --list")
        if len(matches) > 1:
            pids = ", ".join(str(info.pid) for info in matches)
            raise ClientError(f"{len(matches)} monitors are named {text!r} (pids {pids}): "
                              "attach by pid")
    info = matches[-1]
    found = token if token is not None else _read_token(info.get("token_file"))
    return _from_address(info.address, text, found, info)


class MonitorClient:
    """One connection to a monitor. Use `connect()`; read with `next_frame()`."""

    def __init__(self, target: Target, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, wire: Codec) -> None:
        self.target = target
        self.codec = wire
        self.hello: dict[str, Any] = {}
        """The monitor's hello: pid, name, argv, started, rate, control, capabilities."""
        self.on_line: Callable[[bytes, Frame], None] | None = None
        """Called with every frame line as received (a recorder writes them)."""
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._latest: Frame | None = None
        self._arrived = asyncio.Event()
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.close_reason: str | None = None

    @classmethod
    async def connect(cls, target: str | Target, *, control: bool = False,
                      token: str | None = None, hz: float | None = None, subscribe: bool = True,
                      timeout: float = 5.0, backend: str | None = None,
                      on_line: Callable[[bytes, Frame], None] | None = None) -> MonitorClient:
        """Connect, exchange hellos and (by default) subscribe at `hz` (None: the service's)."""
        resolved = target if isinstance(target, Target) else resolve(target, token=token)
        wire = codec() if backend is None else Codec(backend)
        try:
            if resolved.kind == "unix":
                opening = asyncio.open_unix_connection(resolved.path, limit=MAX_FRAME_LINE)
            else:
                opening = asyncio.open_connection(resolved.host, resolved.port,
                                                  limit=MAX_FRAME_LINE)
            reader, writer = await asyncio.wait_for(opening, timeout)
        except (OSError, TimeoutError) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            raise ClientError(f"no heapwatch monitor answers at {resolved.address}: "
                              f"{reason}") from None
        client = cls(resolved, reader, writer, wire)
        client.on_line = on_line
        try:
            await asyncio.wait_for(client._handshake(control), timeout)
        except TimeoutError:
            await client.close()
            raise ClientError(f"the monitor at {resolved.address} sent no hello within "
                              f"{timeout:g} s") from None
        except BaseException:
            await client.close()
            raise
        client._task = asyncio.get_running_loop().create_task(client._read_forever())
        if subscribe:
            await client.request("subscribe", hz=hz)
        return client

    async def _handshake(self, control: bool) -> None:
        hello: dict[str, Any] = {"control": control, "client": "heapwatch"}
        if self.target.token is not None:
            hello["token"] = self.target.token
        self._writer.write(self.codec.encode("hello", hello, wall=time.time()))
        try:
            line = await self._reader.readline()
        except (ConnectionError, ValueError) as error:
            raise ClientError(f"the monitor at {self.target.address} hung up: {error}") from None
        if not line:
            raise ClientError(f"the monitor at {self.target.address} hung up before its hello")
        try:
            frame = self.codec.decode(line)
        except FrameError as error:
            raise ClientError(f"{self.target.address}: {error}") from None
        if frame.type == "reply" and isinstance(frame.data, dict) and not frame.data.get("ok"):
            raise ClientError(f"the monitor at {self.target.address} refused: "
                              f"{frame.data.get('error')}")
        if frame.type != "hello" or not isinstance(frame.data, dict):
            raise ClientError(f"{self.target.address} is not a heapwatch monitor")
        self.hello = frame.data
        if self.on_line is not None:
            self.on_line(line, frame)

    @property
    def control(self) -> bool:
        """True when the monitor granted this client control."""
        return bool(self.hello.get("control"))

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def _read_forever(self) -> None:
        try:
            while True:
                try:
                    line = await self._reader.readline()
                except ValueError:
                    _log.warning("the monitor at %s sent a line over %d bytes; disconnected",
                                 self.target.address, MAX_FRAME_LINE)
                    self.close_reason = "a frame too long"
                    return
                if not line:
                    self.close_reason = "the monitor went away"
                    return
                if not line.endswith(b"\n"):
                    self.close_reason = "the monitor went away mid-frame"
                    return
                try:
                    frame = self.codec.decode(line)
                except FrameError as error:
                    _log.warning("skipping a frame from %s: %s", self.target.address, error)
                    continue
                if self.on_line is not None:
                    self.on_line(line, frame)
                if frame.type == "reply" and isinstance(frame.data, dict):
                    waiter = self._replies.pop(frame.data.get("id"), None)  # type: ignore[arg-type]
                    if waiter is not None and not waiter.done():
                        waiter.set_result(frame.data)
                elif frame.type in ("snapshot", "stale"):
                    self._latest = frame  # newest wins: a slow reader skips, never queues
                    self._arrived.set()
        except (ConnectionError, OSError) as error:
            self.close_reason = f"connection lost: {error}"
        finally:
            self._closed.set()
            self._arrived.set()
            for waiter in self._replies.values():
                if not waiter.done():
                    waiter.set_exception(ClientError(f"the monitor at {self.target.address} "
                                                     "went away"))
            self._replies.clear()

    async def next_frame(self, timeout: float | None = None) -> Frame | None:
        """The newest snapshot or stale frame not yet read; None once disconnected (or timeout)."""
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return None
        self._arrived.clear()
        frame, self._latest = self._latest, None
        if frame is None and not self.closed:
            return await self.next_frame(timeout)
        return frame

    async def request(self, op: str, **args: Any) -> Any:
        """Send one request and return its result; RemoteError with the monitor's reason."""
        if self.closed:
            raise ClientError(f"not connected to {self.target.address}")
        ident = next(self._ids)
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[ident] = waiter
        data = {"id": ident, "op": op, "args": args}
        self._writer.write(self.codec.encode("request", data, wall=time.time()))
        try:
            await self._writer.drain()
            reply = await asyncio.wait_for(waiter, REQUEST_TIMEOUT)
        except TimeoutError:
            raise RemoteError(f"{op}: no reply within {REQUEST_TIMEOUT:g} s") from None
        except (ConnectionError, OSError) as error:
            raise ClientError(f"lost {self.target.address}: {error}") from None
        finally:
            self._replies.pop(ident, None)
        if not reply.get("ok"):
            raise RemoteError(str(reply.get("error")))
        return reply.get("result")

    async def stacks(self) -> tuple[StackGroup, ...]:
        return self.codec.convert(await self.request("stacks"), tuple[StackGroup, ...])

    async def top(self, k: int = 20) -> tuple[HeapEntry, ...]:
        return self.codec.convert(await self.request("top", k=k), tuple[HeapEntry, ...])

    async def memory_profile(self) -> MemoryProfile:
        return self.codec.convert(await self.request("memory"), MemoryProfile)

    async def close(self) -> None:
        """Disconnect (the service keeps running). Safe twice."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        self._closed.set()

    async def __aenter__(self) -> MonitorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
