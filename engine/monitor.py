"""`serve_monitor`: a live view of a running service's queue, pool and watchdog, from outside it.

    with engine.serve_monitor(queue=queue, pool=pool, watchdog=watchdog, name="mailer"):
        ...                                # `heapwatch attach mailer` from another terminal

The server runs on a thread of its own with its own event loop, so it answers while the
service's loop is blocked. The tick is a timer on the service's loop: when a client wants a
frame it takes one snapshot and hands it to the server thread (`call_soon_threadsafe`), which
encodes it once, whatever the number of clients; a tick wakes that thread once (on a busy
machine a thread's wake costs more than encoding the frame). When a tick is late by the
deadline, clients get a `stale` frame with how long the loop has been blocked and the frame
that holds it (the loop thread's stack, read the way `engine.loopmonitor` reads it). That
needs the GIL: blocking code that is pure Python lets it go every few milliseconds, a C call
that holds it freezes the monitor too.

Transport: a Unix socket in a private directory (see `engine.monitor_paths`), mode 0600, every
peer's uid checked with SO_PEERCRED; TCP only when asked, always with a token. Read-only unless
the service passes `allow_control=True` and the client asks for control. Frames:
`engine.wire`. Requests: `engine.monitor_ops`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import hmac
import ipaddress
import logging
import math
import os
import socket
import sys
import threading
import time
import warnings
from typing import Any

from engine import monitor_paths as paths
from engine.monitor_ops import Operations, RequestError
from engine.monitor_paths import MonitorError
from engine.monitor_peers import Peer, check_peer
from engine.reprs import ItemRepr
from engine.stacks import culprit_frame, current_thread_stack, format_frame
from engine.wire import VERSION, Codec, FrameError, VersionMismatch, codec, wire_safe

__all__ = ["MonitorError", "MonitorHandle", "MonitorWarning", "serve_monitor"]

_log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 64 * 1024
"""Bytes in one line from a client: requests are small, a longer line is a foreign peer."""
HANDSHAKE_TIMEOUT = 5.0


class MonitorWarning(UserWarning):
    """A monitor setting a person should hear about (a TCP bind off loopback)."""


class MonitorHandle:
    """The running monitor: `.address`, `.close()`; a context manager (`with`, `async with`)."""

    def __init__(self, ops: Operations, *, service_loop: asyncio.AbstractEventLoop, name: str,
                 rate: float, deadline: float, allow_control: bool, allowed_uids: frozenset[int],
                 wire: Codec) -> None:
        self.ops = ops
        self.name = name
        self.rate = rate
        self.deadline = deadline
        self.allow_control = allow_control
        self.allowed_uids = allowed_uids
        self.codec = wire
        self.address = ""
        """'unix:/run/user/0/heapwatch/4242.sock' or 'tcp://127.0.0.1:8765'."""
        self.path: str | None = None
        self.port: int | None = None
        self.token_file: str | None = None
        self.info_file: str | None = None
        self.ticks = 0
        """Snapshots taken (one per tick that had a subscriber)."""
        self.stale_frames = 0
        self._service_loop = service_loop
        self._loop_thread_id = threading.get_ident()
        self._token: str | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[Peer] = set()
        self._pending: concurrent.futures.Future[Any] | None = None
        self._pending_since = 0.0
        self._period = 1.0 / rate
        self._due = 0.0
        """When the service loop's next tick is due (time.monotonic), written by that loop."""
        self._want_after = math.inf
        """The first time a client wants a frame (time.monotonic), written by the server
        thread and read by the tick: inf while no subscribed client can take one."""
        self._watch: asyncio.TimerHandle | None = None
        self._last_wall = 0.0
        self._ready = threading.Event()
        self._closed = False
        self._stop: asyncio.Event | None = None
        self._frame_lock: asyncio.Lock | None = None
        self._hello: dict[str, Any] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._closed

    @property
    def clients(self) -> int:
        return len(self._clients)

    def buffered_bytes(self) -> list[int]:
        """Bytes waiting in each client's transport (bounded: a stuck client keeps the newest)."""
        return [client.writer.transport.get_write_buffer_size() + len(client.latest or b"")
                + sum(map(len, client.replies)) for client in list(self._clients)]

    def _start(self, sock: socket.socket, token: str | None) -> None:
        self._sock, self._token = sock, token
        self._thread = threading.Thread(target=self._thread_main, name="heapwatch-monitor",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(5.0):
            self.close()
            raise MonitorError("the monitor's thread did not start within 5 s")

    def close(self) -> None:
        """Stop serving, disconnect every client, remove the socket and files. Safe twice."""
        if self._closed:
            return
        self._closed = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        for path in (self.path, self.info_file, self.token_file):
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        self.ops.close()
        atexit.unregister(self.close)
        _release(self)

    def __enter__(self) -> MonitorHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> MonitorHandle:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        state = "running" if self.running else "closed"
        return f"<MonitorHandle {self.name!r} {self.address} {state} clients={self.clients}>"

    # ------------------------------------------------------------------ the server thread

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception:
            _log.exception("heapwatch monitor stopped on an error")
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._frame_lock = asyncio.Lock()
        assert self._sock is not None
        unix = self._sock.family == socket.AF_UNIX
        start = asyncio.start_unix_server if unix else asyncio.start_server
        server = await start(self._accept, sock=self._sock, limit=MAX_REQUEST_LINE)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for client in list(self._clients):
                client.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ ticks

    def _start_ticks(self) -> None:
        """On the service's loop (serve_monitor runs there): the ticks start."""
        self._due = time.monotonic()
        self._service_loop.call_soon(self._tick)

    def _tick(self) -> None:
        """On the service's loop, every period until closed: a snapshot for the server thread
        when a client wants one (a client that does not read wants none)."""
        if self._closed:
            return
        now = time.monotonic()
        self._due = max(self._due + self._period, now)  # fell behind: skip ahead, no burst
        self._service_loop.call_later(self._due - now, self._tick)
        if now < self._want_after:
            return
        try:
            snapshot = self.ops.snapshot()
        except Exception as error:
            _log.warning("monitor snapshot failed: %s: %s", type(error).__name__, error)
            return
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the server's loop is closed
                loop.call_soon_threadsafe(self._send_snapshot, snapshot)

    def _send_snapshot(self, snapshot: Any) -> None:
        """On the server thread: a tick's snapshot, encoded once, offered to every client."""
        self._broadcast(self._encode_snapshot(snapshot))

    def _encode_snapshot(self, snapshot: Any) -> bytes:
        self.ticks += 1
        self._last_wall = time.time()
        safe = wire_safe(snapshot)  # the reprs were made on the loop, through the hook
        return self.codec.encode("snapshot", safe, wall=self._last_wall)

    def _update_wants(self) -> None:
        """On the server thread, whenever a client's wants may change: when the service's
        loop should next take a snapshot, and when to look again (for stale frames, and for a
        client that stopped reading and may read again)."""
        soonest, waiting = math.inf, False
        for client in self._clients:
            if client.subscribed:
                if client.idle():
                    soonest = min(soonest, client.next_due())
                else:
                    waiting = True
        self._want_after = soonest
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if soonest == math.inf and not waiting:
            return
        assert self._loop is not None
        now = time.monotonic()
        if soonest < math.inf and now - self._due <= self.deadline:
            # A tick due at `_due` (or at the first one a client wants) hands its snapshot
            # over within moments: not here by the deadline past it, the loop is late.
            at = max(soonest, self._due) + self.deadline + 0.005
        else:  # a client that does not read, or a tick already late: look again a tick on
            at = now + self._period
        self._watch = self._loop.call_later(max(0.0, at - now), self._on_watch)

    def _on_watch(self) -> None:
        """No frame went out for a while: a tick is late (stale frames, at the tick's rate,
        unless the service's loop is closed) or a client that did not read may read again."""
        self._watch = None
        now = time.monotonic()
        late = now - self._due
        if late > self.deadline and now >= self._want_after \
                and not self._service_loop.is_closed():
            self._broadcast(self._stale_frame(late))
        else:
            self._update_wants()

    async def _take_frame(self) -> bytes | None:
        """One snapshot frame from the service's loop, or a stale frame if it does not answer."""
        assert self._frame_lock is not None
        async with self._frame_lock:  # clients asking at once share one reading
            return await self._read_frame()

    async def _read_frame(self) -> bytes | None:
        if self._pending is None:
            self._pending = concurrent.futures.Future()
            self._pending_since = time.monotonic()
            try:
                self._service_loop.call_soon_threadsafe(self._snapshot_on_loop, self._pending)
            except RuntimeError:  # the service's loop is closed: nothing more to show
                self._pending = None
                return None
        pending = self._pending
        waiter = asyncio.wrap_future(pending)
        done, _ = await asyncio.wait({waiter}, timeout=self.deadline)
        if not done:
            return self._stale_frame(time.monotonic() - self._pending_since)
        self._pending = None
        try:
            snapshot = pending.result()
        except Exception as error:
            _log.warning("monitor snapshot failed: %s: %s", type(error).__name__, error)
            return None
        return self._encode_snapshot(snapshot)

    def _snapshot_on_loop(self, result: concurrent.futures.Future[Any]) -> None:
        if not result.set_running_or_notify_cancel():
            return
        try:
            result.set_result(self.ops.snapshot())
        except BaseException as error:  # handed to the server thread, logged there
            result.set_exception(error)

    def _stale_frame(self, blocked_for: float) -> bytes:
        frames = current_thread_stack(self._loop_thread_id)
        culprit = culprit_frame(frames) if frames else None
        data = {
            "blocked_for": blocked_for,
            "culprit": format_frame(culprit) if culprit is not None else None,
            "stack": [format_frame(frame) for frame in frames[-20:]],
            "last_snapshot_wall": self._last_wall or None,
        }
        self.stale_frames += 1
        return self.codec.encode("stale", data, wall=time.time())

    def _broadcast(self, frame: bytes) -> None:
        now = time.monotonic()
        for client in self._clients:
            if not client.subscribed or not client.due(now):
                continue
            client.last_sent = now
            client.offer(frame)
        self._update_wants()

    # ------------------------------------------------------------------ one client

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Peer(writer)
        sender: asyncio.Task[None] | None = None
        try:
            refusal = check_peer(writer, self.allowed_uids)
            if refusal is not None:
                # Read (and ignore) the peer's hello before refusing it: closing on an unread
                # hello races the peer's write, which then fails with a broken pipe instead of
                # reading why it was refused.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(reader.readline(), 1.0)
            else:
                refusal = await self._handshake(client, reader)
            if refusal is not None:
                _log.warning("heapwatch monitor refused %s: %s", client.peer, refusal)
                writer.write(self._reply(None, error=refusal))
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.drain(), 1.0)
                return
            writer.write(self.codec.encode("hello", self._server_hello(client), wall=time.time()))
            self._clients.add(client)
            self._update_wants()
            sender = asyncio.create_task(client.send_forever())
            await self._read_requests(client, reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(client)
            self._update_wants()
            if sender is not None:
                sender.cancel()
            writer.close()

    async def _handshake(self, client: Peer, reader: asyncio.StreamReader) -> str | None:
        try:
            line = await asyncio.wait_for(reader.readline(), HANDSHAKE_TIMEOUT)
        except TimeoutError:
            return "no hello within 5 s"
        except ValueError:
            return f"a line longer than {MAX_REQUEST_LINE} bytes"
        try:
            frame = self.codec.decode(line)
        except VersionMismatch as error:
            return str(error)
        except FrameError as error:
            return f"not a heapwatch client ({error})"
        data = frame.data if isinstance(frame.data, dict) else {}
        if frame.type != "hello":
            return f"expected a hello frame first, got {frame.type!r}"
        if self._token is not None:
            token = data.get("token")
            if not isinstance(token, str) or not hmac.compare_digest(token.encode(),
                                                                     self._token.encode()):
                return "bad or missing token"
        client.control = bool(data.get("control")) and self.allow_control
        return None

    def _server_hello(self, client: Peer) -> dict[str, Any]:
        return {**self._hello, "control": client.control, "control_allowed": self.allow_control,
                "capabilities": sorted(self.ops.capabilities(control=client.control))}

    async def _read_requests(self, client: Peer, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                _log.warning("heapwatch monitor: %s sent a line over %d bytes; disconnected",
                             client.peer, MAX_REQUEST_LINE)
                return
            if not line:
                return
            try:
                frame = self.codec.decode(line)
            except FrameError as error:
                client.replies.append(self._reply(None, error=str(error)))
                client.wake.set()
                continue
            if frame.type != "request" or not isinstance(frame.data, dict):
                continue  # a frame type this side does not act on: ignored, as unknown fields
            await self._answer(client, frame.data)

    async def _answer(self, client: Peer, request: dict[str, Any]) -> None:
        ident = request.get("id")
        op = request.get("op")
        args = request.get("args") or {}
        try:
            if not isinstance(args, dict):
                raise RequestError("args must be an object")
            if op == "subscribe":
                hz = args.get("hz")
                if hz is not None and (isinstance(hz, bool) or not isinstance(hz, int | float)
                                       or not hz > 0):
                    raise RequestError(f"hz must be a number > 0, not {hz!r}")
                client.hz = None if hz is None or hz >= self.rate else float(hz)
                client.subscribed = True
                self._update_wants()
                result: Any = {"hz": client.hz or self.rate}
            elif op == "unsubscribe":
                client.subscribed = False
                self._update_wants()
                result = None
            elif op == "snapshot":
                frame = await self._take_frame()
                if frame is not None:
                    client.latest = frame
                result = None
            else:
                control = ("granted" if client.control
                           else "not-asked" if self.allow_control else "not-allowed")
                result = await self.ops.run(op, args, control=control,
                                            on_loop=self._on_service_loop)
        except RequestError as error:
            client.replies.append(self._reply(ident, error=str(error)))
        else:
            client.replies.append(self._reply(ident, result=result))
        client.wake.set()

    async def _on_service_loop(self, call: Any, timeout: float) -> Any:
        """Run `call()` on the service's loop (a coroutine's result awaited there), with a deadline."""
        async def run() -> Any:
            value = call()
            if asyncio.iscoroutine(value):
                value = await value
            return value

        try:
            future = asyncio.run_coroutine_threadsafe(run(), self._service_loop)
        except RuntimeError:
            raise RequestError("the service's loop is closed") from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            raise RequestError(
                f"the service's loop did not answer within {timeout:g} s (blocked?)"
            ) from None

    def _reply(self, ident: Any, *, result: Any = None, error: str | None = None) -> bytes:
        data = {"id": ident, "ok": error is None, "result": result, "error": error}
        return self.codec.encode("reply", data, wall=time.time())


# --------------------------------------------------------------------------- one per process

_lock = threading.Lock()
_current: MonitorHandle | None = None


def _release(handle: MonitorHandle) -> None:
    global _current
    with _lock:
        _current = None if _current is handle else _current


def serve_monitor(
    *,
    queue: Any = None,
    pool: Any = None,
    watchdog: Any = None,
    engine: Any = None,
    name: str | None = None,
    path: str | os.PathLike[str] | None = None,
    tcp: str | int | tuple[str, int] | None = None,
    allow_control: bool = False,
    rate: float = 5.0,
    deadline: float = 0.25,
    item_repr: ItemRepr | None = None,
    allowed_uids: frozenset[int] | set[int] | None = None,
    backend: str | None = None,
) -> MonitorHandle:
    """Serve a live view of `queue`, `pool`, `watchdog` (any subset) or one `engine`.

    Call from code running on the service's event loop. Returns the running `MonitorHandle`;
    a second call in the same process returns the one already running when it watches the same
    objects, and raises `MonitorError` otherwise.

    Args:
        name: what `heapwatch attach NAME` and `attach --list` call it (default: the program).
        path: the Unix socket (default: `<runtime dir>/<pid>.sock`).
        tcp: serve on TCP instead: a port, 'HOST:PORT' or (host, port); host 127.0.0.1 by
            default. A token is generated and stored 0600; clients send it first.
        allow_control: let clients that ask for control cancel/add/remove workers, pause and
            resume getting, set the overflow policy and aging, and shut the pool down.
        rate: snapshots per second sent to subscribers (a client may ask for fewer).
        deadline: seconds a tick waits for the service's loop before sending a stale frame.
        item_repr: the hook that turns a payload into the text on the wire (to redact).
        allowed_uids: peers allowed on the Unix socket (default: this process's uid and root).
        backend: 'msgspec' or 'json' (default: msgspec when installed).
    """
    global _current
    try:
        service_loop = asyncio.get_running_loop()
    except RuntimeError:
        raise MonitorError("serve_monitor() must be called from code running on the service's "
                           "event loop") from None
    if not rate > 0:
        raise ValueError(f"rate must be > 0 snapshots per second, not {rate!r}")
    if not deadline > 0:
        raise ValueError(f"deadline must be > 0 seconds, not {deadline!r}")
    with _lock:
        running = _current
        if running is not None and running.running:
            if running.ops.watches(queue, pool, watchdog, engine):
                return running
            raise MonitorError(f"a heapwatch monitor already runs in this process at "
                               f"{running.address}, watching other objects: close it first")
        ops = Operations(queue=queue, pool=pool, watchdog=watchdog, engine=engine,
                         item_repr=item_repr, name=name, allow_control=allow_control)
        uids = frozenset(allowed_uids) if allowed_uids is not None else frozenset({os.getuid(), 0})
        handle = MonitorHandle(
            ops, service_loop=service_loop, name=name or paths.program_name(), rate=float(rate),
            deadline=float(deadline), allow_control=allow_control, allowed_uids=uids,
            wire=codec() if backend is None else Codec(backend))
        try:
            sock, token = _bind(handle, path, tcp)
        except BaseException:
            ops.close()
            raise
        handle._hello = {"v": VERSION, "pid": os.getpid(), "name": handle.name,
                         "argv": list(sys.argv), "started": time.time(), "rate": handle.rate,
                         "codec": handle.codec.backend}
        handle._start(sock, token)
        handle._start_ticks()
        atexit.register(handle.close)  # a service that forgets close() still removes its files
        handle.info_file = paths.write_info(handle._hello, handle.address, handle.token_file)
        _current = handle
    return handle


def _bind(handle: MonitorHandle, path: Any, tcp: Any) -> tuple[socket.socket, str | None]:
    if tcp is not None:
        if path is not None:
            raise ValueError("give path (a Unix socket) or tcp, not both")
        host, port = paths.tcp_address(tcp)
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:  # a host name: what it resolves to decides
            loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        if not loopback:
            message = (f"heapwatch monitor on {host}:{port} is not encrypted: anyone on the "
                       "path can read the stream; prefer SSH forwarding (see docs/monitor.md)")
            warnings.warn(message, MonitorWarning, stacklevel=3)
            _log.warning("%s", message)
        sock = socket.create_server((host, port), reuse_port=False)
        sock.setblocking(False)
        handle.port = sock.getsockname()[1]
        handle.address = f"tcp://{host}:{handle.port}"
        token, handle.token_file = paths.new_token()
        return sock, token
    socket_path = paths.socket_path(path)
    paths.clear_stale_socket(socket_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(socket_path)
        os.chmod(socket_path, 0o600)
        sock.listen(16)
    except OSError as error:
        sock.close()
        raise MonitorError(f"cannot serve on {socket_path}: {error.strerror or error}") from None
    sock.setblocking(False)
    handle.path = socket_path
    handle.address = f"unix:{socket_path}"
    return sock, None
