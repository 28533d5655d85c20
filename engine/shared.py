"""A run whose queue is shared through Redis: the target URL, the watchdog's view of the queue,
and each process's heartbeat.

- `QueueTarget.parse("redis://HOST:PORT/DB?name=Q")`: what `heapwatch --queue` takes. A password
  comes from REDIS_PASSWORD or a file, never from what is printed: `QueueTarget.shown` is the
  URL with any password removed, and it is the only form that is printed, reported or published.
- `SharedQueueView`: what the `Watchdog` reads (`depth_by_priority`, `oldest_wait`, `qsize`,
  `stats`...), answered from a stats snapshot a task refreshes in the background, so that no
  watchdog tick waits on the network.
- `Heartbeat`: every process publishes a snapshot of its pool and alerts under a key with a TTL
  (`heapwatch:{Q}:hb:HOST:PID`); worker names and alert ids carry the host and pid, so the
  rows of several hosts never collide. A process that dies stops refreshing it and its key
  expires.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from engine.snapshots import QueueStats

__all__ = [
    "HOST", "ROLES", "Heartbeat", "Periodic", "QueueTarget", "SharedQueueError", "SharedQueueView",
    "SharedRun", "read_heartbeats", "redact",
]  # fmt: skip

_log = logging.getLogger(__name__)

HOST = f"{socket.gethostname()}:{os.getpid()}"
"""This process as worker rows and alert ids name it: host:pid."""
ROLES = ("all", "producer", "worker")
"""`--role`: what this process does on the shared queue."""
PASSWORD_FILE_LIMIT = 4096


class SharedQueueError(Exception):
    """A shared queue that cannot be used (bad URL, unreachable, refused password, settings
    that disagree): its message is the one line the user reads."""


def redact(url: str) -> str:
    """`url` with any password (and user) removed."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class QueueTarget:
    """Where a shared queue lives: `redis://HOST:PORT/DB?name=Q`."""

    host: str
    port: int
    db: int
    name: str
    password: str | None = None

    @classmethod
    def parse(cls, url: str, password: str | None = None) -> QueueTarget:
        """Check `url`; a password in it is taken unless `password` is given."""
        shown = redact(url)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "redis":
            raise SharedQueueError(f"--queue {shown!r}: expected redis://HOST:PORT/DB?name=QUEUE")
        try:
            port = parts.port or 6379
        except ValueError:
            raise SharedQueueError(f"--queue {shown!r}: the port must be 1-65535") from None
        path = parts.path.strip("/") or "0"
        if not path.isdigit() or int(path) > 10_000:
            raise SharedQueueError(f"--queue {shown!r}: the database must be a number, not {path!r}")
        query = urllib.parse.parse_qs(parts.query)
        unknown = sorted(set(query) - {"name"})
        if unknown:
            raise SharedQueueError(f"--queue {shown!r}: unknown parameter {unknown[0]!r} (only name)")
        names = query.get("name", ["heapwatch"])
        from engine.redis_queue import _NAME  # the queue's own rule for names

        if len(names) != 1 or not _NAME.fullmatch(names[0]):
            raise SharedQueueError(
                f"--queue {shown!r}: name must be 1-100 letters, digits or _.:-"
            )
        secret = password if password is not None else parts.password
        return cls(parts.hostname or "127.0.0.1", port, int(path), names[0], secret or None)

    @classmethod
    def from_flags(
        cls, url: str, password_file: str | None, environ: Any = os.environ
    ) -> QueueTarget:
        """`--queue URL` with the password from `--redis-password-file`, else REDIS_PASSWORD,
        else the URL itself."""
        password = environ.get("REDIS_PASSWORD") or None
        if password_file is not None:
            try:
                with open(password_file, "rb") as file:
                    raw = file.read(PASSWORD_FILE_LIMIT + 1)
            except OSError as error:
                raise SharedQueueError(
                    f"--redis-password-file {password_file!r}: {error.strerror or error}"
                ) from None
            if len(raw) > PASSWORD_FILE_LIMIT:
                raise SharedQueueError(f"--redis-password-file {password_file!r} is too big")
            password = raw.decode("utf-8", "replace").strip() or None
        return cls.parse(url, password)

    def preflight(self, aging_rate: float, overflow: str = "block") -> None:
        """Reach Redis, log in and agree on the stored settings (aging rate, overflow policy),
        in a loop of its own: a mistake stops the command before anything starts."""

        async def check() -> None:
            from engine.redis_queue import RedisPriorityQueue

            client = self.client()
            try:
                await self.check(client)
                queue = RedisPriorityQueue(
                    client, self.name, aging_rate=aging_rate, overflow=overflow
                )
                try:
                    await queue.stats()
                except ValueError as error:  # the stored aging rate differs
                    raise SharedQueueError(f"{self.shown}: {error}") from None
                if queue.overflow != overflow:  # a running queue's processes follow the stored one
                    raise SharedQueueError(
                        f"{self.shown}: queue {self.name!r} in Redis has overflow"
                        f" {queue.overflow.value!r}; this process asked for {overflow!r}"
                        " (all processes must agree)"
                    )
            finally:
                await client.aclose()

        asyncio.run(check())

    @property
    def shown(self) -> str:
        """The URL as it may be printed: never the password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}?name={self.name}"

    def client(self) -> Any:
        """A redis.asyncio client (bytes, no retries of its own: the queue retries with backoff)."""
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        return aioredis.Redis(
            host=self.host, port=self.port, db=self.db, password=self.password,
            retry=Retry(NoBackoff(), 0), socket_connect_timeout=5.0,
        )  # fmt: skip

    async def check(self, client: Any) -> None:
        """One line for what stops a run before it starts: unreachable, a refused password."""
        from redis import exceptions

        try:
            await asyncio.wait_for(client.ping(), 5.0)
        except (exceptions.AuthenticationError, exceptions.ResponseError) as error:
            if not isinstance(error, exceptions.AuthenticationError) and "NOAUTH" not in str(error):
                raise SharedQueueError(f"Redis at {self.shown}: {error}") from None
            why = "refused the password"
            if not self.password:
                why = "needs a password (REDIS_PASSWORD or --redis-password-file)"
            raise SharedQueueError(f"Redis at {self.shown} {why}") from None
        except (exceptions.ConnectionError, OSError, TimeoutError) as error:
            reason = str(error).split(". ")[0] or type(error).__name__
            raise SharedQueueError(f"Redis at {self.shown} is unreachable: {reason}") from None


class Periodic:
    """`tick()` now, then every `interval` seconds on a task of its own until `stop()`; a tick
    that fails is logged and the next one tries again."""

    what = "a periodic task"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.errors = 0
        """Ticks that failed (Redis away)."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def tick(self) -> Any:
        raise NotImplementedError

    async def start(self) -> None:
        self._stopping = False
        await self.tick()
        name = f"heapwatch-{type(self).__name__.lower()}"
        self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    async def _run(self) -> None:
        # The flag, not only the cancel, ends the loop: a cancel that lands inside a Redis call
        # can be swallowed there (seen: a heartbeat that went on beating, and a stop() that
        # waited for ever), and the next turn must still see that it is over.
        while not self._stopping:
            await asyncio.sleep(self.interval)
            if self._stopping:
                return
            try:
                await self.tick()
            except Exception:
                self.errors += 1
                _log.warning("%s failed", self.what, exc_info=True)

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class SharedQueueView(Periodic):
    """The shared queue as the watchdog reads it, from the last stats snapshot.

    `refresh()` reads one (one script, O(priority levels)); `start()` keeps doing so every
    `interval` seconds on a task of its own. Waits are aged by the time since the snapshot, so
    a starving level's wait keeps growing between two reads.
    """

    what = "reading the shared queue's stats"  # failed: the view serves the last snapshot

    def __init__(self, queue: Any, interval: float = 0.5, clock: Any = time.monotonic,
                 top: int = 20) -> None:
        super().__init__(interval)
        self.queue = queue
        self._clock = clock
        self._stats: Any = None
        self._taken = clock()
        self._top_k = top
        self._top: dict[float | None, tuple[Any, ...]] = {None: ()}

    async def refresh(self) -> Any:
        self._stats = await self.queue.stats()
        self._taken = self._clock()
        # The heap's rows too (one script each: O(log P + k log k)); a level asked for by
        # `top(k, priority)` is read from the next refresh on.
        for priority in list(self._top):
            self._top[priority] = await self.queue.top(self._top_k, priority)
        return self._stats

    tick = refresh

    # ------------------------------------------------------------------ what the watchdog reads

    def stats(self) -> QueueStats:
        if self._stats is None:
            return QueueStats(0, self.maxsize, 0, 0, 0, self.queue.overflow.value, 0.0, 0.0, ())
        return self._stats

    def _age(self) -> float:
        return max(0.0, self._clock() - self._taken)

    def depth_by_priority(self) -> dict[float, int]:
        return {level.priority: level.depth for level in self.stats().per_priority if level.depth}

    def oldest_wait(self, priority: float | None = None) -> float:
        levels = [
            level for level in self.stats().per_priority
            if level.depth and (priority is None or level.priority == priority)
        ]  # fmt: skip
        return max((level.oldest_wait for level in levels), default=-self._age()) + self._age()

    def qsize(self) -> int:
        return self.stats().depth

    @property
    def maxsize(self) -> float:
        return self.queue.maxsize or math.inf

    @property
    def overflow(self) -> Any:
        return self.queue.overflow

    @property
    def aging_rate(self) -> float:
        return self.queue.aging_rate

    @property
    def puts(self) -> int:
        return getattr(self.stats(), "puts", 0)

    @property
    def lease(self) -> float:
        return self.queue.lease

    def top(self, k: int, priority: float | None = None) -> tuple[Any, ...]:
        """The best `k` entries as last read (of one level if `priority`; a level not read
        yet is empty until the next refresh reads it)."""
        if priority is not None and priority not in self._top:
            if len(self._top) > 8:  # the levels asked for lately, not every one ever
                del self._top[next(p for p in self._top if p is not None)]
            self._top[priority] = ()
        return self._top[priority][:k]


class SharedRun:
    """One process's part in a run on a shared queue: its client, queue, view and heartbeat."""

    def __init__(self, target: QueueTarget, role: str, scenario: Any) -> None:
        from engine.redis_queue import RedisPriorityQueue

        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        q, p = scenario.queue, scenario.pool
        self.target = target
        self.role = role
        self.client = target.client()
        self.queue = RedisPriorityQueue(
            self.client, target.name, maxsize=q.maxsize, overflow=q.overflow,
            aging_rate=q.aging, max_attempts=p.max_attempts, max_wait=0.5, consumer=HOST,
        )  # fmt: skip
        self.view = SharedQueueView(self.queue, interval=scenario.watchdog.interval)
        self.heartbeat: Heartbeat | None = None
        self._final: Any = None

    @property
    def produces(self) -> bool:
        return self.role in ("all", "producer")

    @property
    def consumes(self) -> bool:
        return self.role in ("all", "worker")

    async def start(self, pool: Any, watchdog: Any) -> None:
        await self.view.start()
        self.heartbeat = Heartbeat(self, pool, watchdog)
        await self.heartbeat.start()

    async def stop(self) -> None:
        """After the pool's shutdown: the last global counters, then leave the queue alone."""
        try:
            self._final = await self.view.refresh()
        except Exception:
            _log.warning("the shared queue's last stats could not be read", exc_info=True)
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        await self.view.stop()
        await self.queue.close()
        await self.client.aclose()

    def counters(self) -> dict[str, int]:
        """The queue's global counters (kept in Redis), as last read; `lost` is computed."""
        stats = self._final or self.view.stats()
        out = {name: int(getattr(stats, name, 0)) for name in _GLOBAL}
        out["lost"] = out["submitted"] - sum(out[name] for name in _FATES)
        return out

    def report(self, pool: Any) -> dict[str, Any]:
        """The report's `shared_queue` part: this process's leases, the global counters."""
        return {
            "queue": self.target.shown,
            "role": self.role,
            "host": HOST,
            "leases": _fields(pool.lease_counts()),
            "global": self.counters(),
        }

    def own_line(self, pool: Any) -> str:
        """This process's part: what it put on the queue, and its deliveries' fates."""
        a, leases = pool.accounting(), pool.lease_counts()
        figures = {"put": leases.submitted, "deliveries": a.submitted, "completed": a.completed,
                   "dead_lettered": a.dead_lettered, "handed_back": a.returned,
                   "in_flight": a.in_flight, "stale_acks": leases.stale_acks}  # fmt: skip
        return f"{HOST} as {self.role}: " + _pairs(figures)

    def summary(self) -> str:
        """The queue's global counters, one line."""
        g = self.counters()
        g["queued"] = g.pop("depth")
        return f"shared queue {self.target.shown}: " + _pairs(g)


_FATES = ("completed", "dead_lettered", "evicted", "rejected", "depth", "leased", "retry_scheduled")
_GLOBAL = ("submitted", "redelivered", "expired", "stale_acks", *_FATES)


class Heartbeat(Periodic):
    """Publishes this process's pool and alerts every `interval` seconds, under a key that
    expires after three intervals without one."""

    what = "publishing the heartbeat"

    def __init__(self, run: SharedRun, pool: Any, watchdog: Any, interval: float = 1.0) -> None:
        super().__init__(interval)
        # The queue's own key prefix (engine.redis_queue): one hash tag for every key.
        self.key = f"heapwatch:{{{run.target.name}}}:hb:{HOST}"
        self.run = run
        self.pool, self.watchdog = pool, watchdog
        self.published = 0

    def payload(self) -> dict[str, Any]:
        pool = self.pool.snapshot()
        a = pool.accounting
        return {
            "host": HOST,
            "role": self.run.role,
            "queue": self.run.target.shown,
            "wall_time": time.time(),
            "workers": [
                {"id": f"{HOST}/{w.name}", "state": str(w.state), "item": w.item_repr,
                 "priority": w.priority, "busy_for": w.busy_for, "attempt": w.attempt,
                 "done": w.done, "failed": w.failed, "retried": w.retried}
                for w in pool.workers
            ],  # fmt: skip
            "accounting": {"deliveries": a.submitted, "completed": a.completed,
                           "dead_lettered": a.dead_lettered, "handed_back": a.returned,
                           "in_flight": a.in_flight},  # fmt: skip
            "leases": _fields(self.pool.lease_counts()),
            "alerts": [
                {"id": f"{HOST}#{alert.id}", "kind": str(alert.kind), "message": alert.message,
                 "active": alert.active}
                for alert in self.watchdog.alerts
            ],  # fmt: skip
        }

    async def tick(self) -> None:
        data = json.dumps(self.payload(), separators=(",", ":"), allow_nan=False, default=str)
        await self.run.client.set(self.key, data, px=int(self.interval * 3000))
        self.published += 1

    async def stop(self) -> None:
        """Stop publishing and take the key down: a process that left is not a lost host."""
        await super().stop()
        try:
            await self.run.client.delete(self.key)
        except Exception:
            _log.warning("removing the heartbeat failed; it expires on its own", exc_info=True)


async def read_heartbeats(client: Any, name: str) -> list[dict[str, Any]]:
    """Every live process's last heartbeat on queue `name`, by host."""
    keys = [key async for key in client.scan_iter(match=f"heapwatch:{{{name}}}:hb:*", count=200)]
    values = await client.mget(keys) if keys else []
    beats = [json.loads(value) for value in values if value is not None]
    return sorted(beats, key=lambda beat: beat["host"])


def _pairs(figures: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in figures.items())


def _fields(record: Any) -> dict[str, Any]:
    return {} if record is None else {name: getattr(record, name) for name in record.__slots__}
