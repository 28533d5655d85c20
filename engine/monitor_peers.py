"""One client of a monitor (`engine.monitor`), as its server thread keeps it, and the check of
who may connect on its Unix socket (`check_peer`).

The send policy lives here: a snapshot goes straight to the socket when nothing is queued before
it; otherwise it waits as the newest, replacing an unsent one, and a client that does not read
stops wanting snapshots at all. So a slow or stuck client costs the service neither snapshots
nor memory: what it holds is bounded by one frame, `REPLIES_KEPT` replies and the transport's
`WRITE_BUFFER`.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import deque

__all__ = ["REPLIES_KEPT", "WRITE_BUFFER", "Peer", "check_peer"]

REPLIES_KEPT = 32
"""Replies queued per client: a client that sends requests and never reads loses the oldest."""
WRITE_BUFFER = 256 * 1024
"""Bytes a client's transport may hold before the server waits for it (then newest wins)."""


class Peer:
    """One connected client: its rate, what waits to be sent to it, and how it is sent."""

    __slots__ = ("peer", "writer", "control", "hz", "last_sent", "latest", "replies", "wake",
                 "subscribed")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "a unix peer"
        self.writer = writer
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        self.control = False
        self.hz: float | None = None
        self.last_sent = 0.0
        self.latest: bytes | None = None
        """The newest snapshot or stale frame not yet written: a newer one replaces it."""
        self.replies: deque[bytes] = deque(maxlen=REPLIES_KEPT)
        self.wake = asyncio.Event()
        self.subscribed = False

    def next_due(self) -> float:
        """When this client may have its next frame (time.monotonic; 0.0: at every tick)."""
        return 0.0 if self.hz is None else self.last_sent + 1.0 / self.hz - 0.01

    def due(self, now: float) -> bool:
        return now >= self.next_due()

    def idle(self) -> bool:
        """Nothing unsent: no frame or reply waiting here, no bytes in its transport. A client
        that does not read fills its socket and stops being idle: it then costs the service no
        snapshots until it reads again (and gets the next tick's frame: newest wins)."""
        return (self.latest is None and not self.replies
                and not self.writer.transport.get_write_buffer_size())

    def offer(self, frame: bytes) -> None:
        """Send `frame` now if nothing is queued before it (no task to wake), else keep it as
        the newest, replacing an unsent one."""
        if self.idle() and not self.writer.transport.is_closing():
            self.writer.transport.write(frame)
        else:
            self.latest = frame
            self.wake.set()

    async def send_forever(self) -> None:
        """Write what `offer` and the replies left queued, whenever woken."""
        writer = self.writer
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.replies:
                    writer.write(self.replies.popleft())
                frame, self.latest = self.latest, None
                if frame is not None:
                    writer.write(frame)
                await writer.drain()  # a client that does not read waits here; newest wins
        except (ConnectionError, RuntimeError):
            writer.close()


def check_peer(writer: asyncio.StreamWriter, allowed_uids: frozenset[int]) -> str | None:
    """Why a Unix peer may not connect (its uid, by SO_PEERCRED, is not allowed); None: it may.
    A TCP peer passes here: its token decides."""
    sock = writer.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    if not hasattr(socket, "SO_PEERCRED"):
        return "this platform cannot tell a Unix peer's uid (SO_PEERCRED): use TCP and a token"
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    if uid in allowed_uids:
        return None
    allowed = ", ".join(str(uid) for uid in sorted(allowed_uids))
    return f"uid {uid} (pid {pid}) may not watch this service (allowed: {allowed})"
