"""`RedisPriorityQueue`: one priority queue shared by many processes, kept in Redis.

It speaks `engine.protocol.WorkQueue` with leases (`acks_on_get` is false): `get()` leases a
`Delivery` until `deadline` on the Redis server's clock (TIME); the consumer `ack`s, `nack`s
(back to its original place, after a delay) or `extend`s it. An expired lease goes back to
its place through a reaper that any consumer runs under a lock; the expiry counts as an
attempt, and past `max_attempts` the item is dead-lettered. Delivery is at-least-once, not
exactly-once: see docs/redis.md for the guarantee, the accounting and the costs (O(log P)
per operation and O(P) for `stats()`, P the distinct priorities in use).

Each operation is one Lua script (engine/redis_lua.py) run by SHA; all keys share the hash
tag `{name}`. Payloads go through one codec seam (msgspec MessagePack, else JSON; never
pickle): an item that cannot be encoded fails at `put`. A tuple comes back as a list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import sys
from collections.abc import Callable, Iterable
from itertools import repeat
from operator import attrgetter
from typing import Any, NamedTuple

try:
    import redis.asyncio as aioredis
    from redis import exceptions as _exc
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as exc:  # pragma: no cover - the optional extra is missing
    raise ImportError("RedisPriorityQueue needs: pip install 'heapwatch[redis]'") from exc

from engine import redis_lua
from engine.checks import check_choice, check_count, check_priority, check_rate, check_seconds
from engine.latency import LatencyWindow
from engine.leases import LeaseContext as RedisHandlerContext
from engine.protocol import Delivery, HandlerContext
from engine.queue import Overflow, QueueShutDown
from engine.redis_reading import LeaseHolder, QueueReading, RedisQueueStats
from engine.reprs import ItemRepr, describe

__all__ = [
    "Codec", "LeaseHolder", "LeaseLost", "RedisHandlerContext", "RedisPriorityQueue",
    "RedisQueueStats",
]  # fmt: skip


class Codec(NamedTuple):
    """How payloads become bytes in Redis and back."""

    name: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


def json_codec() -> Codec:
    return Codec("json", lambda obj: json.dumps(obj, separators=(",", ":")).encode(), json.loads)


def default_codec() -> Codec:
    """msgspec's MessagePack if msgspec is importable, else JSON."""
    try:
        import msgspec
    except ImportError:
        return json_codec()
    return Codec("msgpack", msgspec.msgpack.Encoder().encode, msgspec.msgpack.Decoder().decode)


def _raise_if_cancelling() -> None:
    """A cancellation that arrives mid-command can come out of redis-py as a connection error
    or not at all; a task being cancelled must not retry or wait again, so it stops here."""
    task = asyncio.current_task()
    if isinstance(task, _Held):  # a held GET: its awaiter's cancel is the one that counts
        task = task.awaiter
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


_EAGER = {"eager_start": True} if sys.version_info >= (3, 12) else {}


class _Held(asyncio.Task):  # type: ignore[type-arg]
    """A task that a cancel of the task awaiting it does not reach: that cancel is kept for
    the awaiter, which sees it once this task is done, and this task's result is still there
    to read. Any other cancel (the loop's shutdown cancels every task) still cancels it, and
    while Redis is unreachable a cancelled awaiter stops the retries (there is no reply).

    `asyncio.shield` does the same with a future between the two: on every GET, two turns of
    the loop more than this on 3.12+ (where this task starts eagerly), one more on 3.11.
    """

    def __init__(self, coro: Any, awaiter: asyncio.Task[Any]) -> None:
        self.awaiter = awaiter
        self._seen = awaiter.cancelling()
        super().__init__(coro, loop=awaiter.get_loop(), **_EAGER)

    def cancel(self, msg: Any = None) -> bool:
        # The awaiter's cancel() counts itself in cancelling() before it cancels what the
        # awaiter waits for: this one. Refused, the awaiter gets it when this task ends.
        asked = self.awaiter.cancelling()
        if asked > self._seen:
            self._seen = asked
            return False
        return super().cancel(msg)


_arrival = attrgetter("arrival")  # a delivery's lease token


def _shared_part(token: bytes) -> tuple[bytes, float, int]:
    """A lease token's ':t:a:r|p[|holder]' (all but the job id), first arrival and attempt."""
    shared = token[token.index(b":") :]
    _, enqueued, tries, _ = shared.split(b":", 3)
    return shared, float(enqueued), int(tries)


def _job_id(delivery: Delivery) -> int:  # the arrival number inside the lease token
    return int(delivery.arrival.split(b":", 1)[0])


class LeaseLost(Exception):
    """`extend` of a lease that was reaped (it expired) or settled already."""


_log = logging.getLogger(__name__)
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_RETRYABLE = (_exc.ConnectionError, _exc.TimeoutError, OSError)


class RedisPriorityQueue(QueueReading):
    """A priority queue in Redis: lower numbers first, FIFO among equals, leases, aging.

    Args:
        url_or_client: a `redis://` URL, or a `redis.asyncio.Redis` made without
            `decode_responses` (payloads are bytes).
        name: the queue's name in Redis (letters, digits, `_.:-`); processes using the same
            name share the queue. All of them must use the same `aging_rate` (None: take the
            stored one, as a dashboard does).
        maxsize: queued items at most (leased ones do not count); 0 for unbounded.
        overflow: 'block' (putters wait for a room signal), 'reject' or 'evict-lowest'.
        aging_rate: priority points an item gains per second of waiting (0.0: off).
        lease: seconds a delivery stays leased before the reaper returns it.
        max_attempts: deliveries per item; the one after that is a dead letter.
        reap_interval: seconds between reaps across all processes (default lease/4, <= 1 s).
        codec: the payload codec (default: `default_codec()`).
        on_drop: `on_drop(item, priority, reason)` for items this process's puts evicted or
            had rejected, as the in-process queue does.
        reconnect_timeout: seconds to keep retrying, with backoff, while Redis is unreachable.
        max_wait: longest single blocking wait before a waiter looks again (a safety net:
            waiters are woken by signals, not by polling).
        item_repr: how payloads are shown in dead letters and `top()` (`engine.reprs.describe`).
        consumer: the name this process's leases are held under ('': none), so that a
            dashboard can tell which host holds what (`lease_holders()`).

    The aging rate and the overflow policy are stored in Redis by the process that creates
    the queue, so a dashboard that attaches shows them; a dashboard may change them
    (`set_aging`, `set_overflow`). Every script reads the stored ones, and this process's
    `aging_rate` and `overflow` follow at its first call and at each `stats()`.
    """

    acks_on_get = False
    DEFAULT_PRIORITY = 5
    WAIT_SAMPLE_EVERY = 4

    def __init__(
        self,
        url_or_client: Any,
        name: str,
        *,
        maxsize: int = 0,
        overflow: Overflow | str = Overflow.BLOCK,
        aging_rate: float | None = 0.0,
        lease: float = 30.0,
        max_attempts: int = 3,
        reap_interval: float | None = None,
        codec: Codec | None = None,
        on_drop: Callable[[Any, float, str], object] | None = None,
        reconnect_timeout: float = 30.0,
        max_wait: float = 1.0,
        item_repr: ItemRepr | None = None,
        consumer: str = "",
    ) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"name must be 1-100 letters, digits or _.:-, not {name!r}")
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, not {maxsize!r}")
        self._overflow = check_choice("overflow", overflow, Overflow)
        self._adopt = aging_rate is None
        self._rate = 0.0 if aging_rate is None else check_rate("aging_rate", aging_rate)
        if "|" in consumer or "," in consumer:
            raise ValueError(f"consumer must not contain '|' or ',', not {consumer!r}")
        self._consumer = consumer
        self._lease = check_seconds("lease", lease, allow_zero=False)
        self._max_attempts = check_count("max_attempts", max_attempts, 1)
        if reap_interval is None:
            reap_interval = max(0.01, min(1.0, self._lease / 4))
        self._reap_interval = check_seconds("reap_interval", reap_interval, allow_zero=False)
        self._reconnect_timeout = check_seconds("reconnect_timeout", reconnect_timeout)
        self._max_wait = max(0.01, check_seconds("max_wait", max_wait, allow_zero=False))
        self._maxsize = max(maxsize, 0)
        self._codec = codec if codec is not None else default_codec()
        self.on_drop = on_drop
        self._item_repr = item_repr
        self.name = name
        if isinstance(url_or_client, str):
            # Retries are ours (_call), with backoff and a deadline, not the client's.
            self._redis = aioredis.Redis.from_url(url_or_client, retry=Retry(NoBackoff(), 0))
            self._owns_client = True
        else:
            if url_or_client.connection_pool.connection_kwargs.get("decode_responses"):
                raise ValueError("the Redis client must not decode responses (payloads are bytes)")
            self._redis = url_or_client
            self._owns_client = False
        self._prefix = f"heapwatch:{{{name}}}:"
        self._keys = [self._prefix]
        register = self._redis.register_script
        self._scripts = {
            op: register(getattr(redis_lua, op))
            for op in ("INIT", "PUT", "GET", "ACK", "NACK", "RELEASE", "EXTEND", "REAP", "STATS",
                       "SETTINGS", "TOP", "LEASES")
        }
        self._epoch: str | None = None
        self._depth = 0
        self._next_reap = 0.0
        self._is_shutdown = False
        self._waiting: set[asyncio.Task[Any]] = set()  # tasks in _wait_signal
        self._interrupted: set[asyncio.Task[Any]] = set()  # ...that shutdown() cancelled
        self._blocked = [0, 0]  # this process's putters, getters waiting for a signal
        self.reconnects = 0  # Redis calls this process retried after a connection error
        self._waits = LatencyWindow(1024)
        self._wait_series: dict[float, LatencyWindow] = {}
        self._put_blocked = LatencyWindow(1024)
        self._get_waited = LatencyWindow(1024)

    # ------------------------------------------------------------------ plumbing

    async def _call(self, op: str, *args: Any) -> Any:
        """Run script `op`; while Redis is unreachable, retry with backoff until the deadline.

        A retried script may have run once already (its reply lost with the connection): a put
        then lands twice and a get leases items nobody holds, which their leases give back.
        That is the at-least-once price of surviving a restart.
        """
        if self._epoch is None and op != "INIT":
            await self._init()
        argv = (self._rate, self._epoch, *args) if op != "INIT" else args
        return await self._retrying(lambda: self._scripts[op](keys=self._keys, args=argv))

    async def _retrying(self, call: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._reconnect_timeout
        delay = 0.02
        while True:
            try:
                return await call()
            except _RETRYABLE:
                _raise_if_cancelling()
                if loop.time() + delay > give_up:
                    raise
                self.reconnects += 1
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 1.0)

    async def _init(self) -> None:
        # A reader (aging_rate=None) stores no policy of its own: it shows the stored one.
        policy = "" if self._adopt else self._overflow.value
        epoch, rate, overflow = await self._call("INIT", repr(self._rate), policy)
        if overflow:  # the stored policy, as every put applies it
            self._overflow = Overflow(overflow.decode())
        if self._adopt:
            self._rate = float(rate)
        elif float(rate) != self._rate:
            raise ValueError(
                f"queue {self.name!r} in Redis has aging_rate {float(rate)!r}; "
                f"this process asked for {self._rate!r} (all processes must agree)"
            )
        self._epoch = epoch.decode()

    def encode(self, item: Any) -> bytes:
        """The payload's bytes (TypeError, naming the item, if the codec refuses it)."""
        try:
            return self._codec.encode(item)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(
                f"item cannot be encoded for Redis ({self._codec.name}): "
                f"{describe(item, 60, self._item_repr)}: {exc}"
            ) from None

    @staticmethod
    def _member(priority: float) -> str:
        try:  # one level per float value: 2 and 2.0 share a level, -0.0 is 0.0
            return repr(float(check_priority(priority)) + 0.0)
        except OverflowError:
            raise ValueError(f"priority {priority!r} is too large for a float") from None

    async def _wait_signal(self, getter: bool, timeout: float) -> bool:
        """BLPOP a wake-up token for a getter (or putter); False: timed out or shut down.
        `shutdown()` interrupts the waiting task itself with a cancel taken back here."""
        key = self._prefix + ("ready" if getter else "room")
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        self._blocked[getter] += 1
        try:
            token = await self._redis.blpop([key], timeout=max(0.01, timeout))
        except asyncio.CancelledError:
            if task not in self._interrupted:
                raise
            token = None
        except _RETRYABLE:
            _raise_if_cancelling()
            token = None
            await asyncio.sleep(0.05)  # the next script call does the retrying, with backoff
        finally:
            self._waiting.discard(task)
            self._blocked[getter] -= 1
        if task in self._interrupted:  # also when redis-py swallowed that cancel
            self._interrupted.discard(task)
            task.uncancel()
            return False
        return token is not None

    # ------------------------------------------------------------------ put

    async def put(self, item: Any, *, priority: float = DEFAULT_PRIORITY) -> None:
        """Put `item` at `priority` (lower first); 'block' waits for room while full, 'reject'
        raises QueueFull (counted, `on_drop`), 'evict-lowest' never waits."""
        if not await self.put_many((item,), priority=priority) and self._overflow is Overflow.REJECT:
            raise asyncio.QueueFull

    def put_nowait(self, item: Any, *, priority: float = DEFAULT_PRIORITY) -> None:  # no network
        raise TypeError("RedisPriorityQueue has no put_nowait: use `await queue.put(...)`")

    async def put_many(
        self, items: Iterable[Any], *, priority: float = DEFAULT_PRIORITY, encoded: bool = False
    ) -> int:
        """Put several items at one priority in one script call; returns how many were queued.

        Under 'block' waits for room for all of them; under 'reject' the ones that do not fit
        are counted and given to `on_drop`, not raised. `encoded`: the items are `encode()`d.
        """
        member = self._member(priority)
        encode = (lambda payload: payload) if encoded else self._codec.encode
        items = list(items)
        try:
            pending = list(map(encode, items))
        except (TypeError, ValueError, OverflowError):
            pending = [self.encode(item) for item in items]  # names the item that fails
        queued = 0
        registered = False
        started = None
        loop = asyncio.get_running_loop()
        try:
            while pending:
                _raise_if_cancelling()
                if self._is_shutdown:
                    raise QueueShutDown
                reply = await self._call(
                    "PUT", member, self._maxsize, self._overflow.value, "1" if registered else "0",
                    *pending,
                )  # fmt: skip
                taken, self._depth, full, refused = (int(x) for x in reply[:4])
                self._overflow = Overflow(reply[4].decode())  # the stored policy, if one is
                queued += taken
                for i in range(5, len(reply), 2):
                    self._drop(reply[i + 1], float(reply[i]), "evicted")
                if self._overflow is Overflow.REJECT:
                    for payload in pending[taken:]:
                        self._drop(payload, float(member), "rejected")
                elif self._overflow is Overflow.EVICT_LOWEST and refused:
                    for payload in pending[len(pending) - refused :]:
                        self._drop(payload, float(member), "evicted")
                if not full:
                    break
                pending = pending[taken:]
                started = loop.time() if started is None else started
                registered = not await self._wait_signal(False, self._max_wait)
        finally:
            if started is not None:
                self._put_blocked.record(loop.time() - started)
        return queued

    def _drop(self, payload: bytes, priority: float, reason: str) -> None:
        if self.on_drop is not None:
            try:
                self.on_drop(self._codec.decode(payload), priority, reason)
            except Exception:  # a failing callback must not undo a put that Redis has done
                _log.exception("on_drop callback failed for a %s item", reason)

    # ------------------------------------------------------------------ get

    async def get(self) -> Delivery:
        """Lease the best item, waiting while the queue is empty (QueueShutDown after shutdown)."""
        return (await self.get_many(1))[0]

    get_delivery = get

    def get_delivery_nowait(self) -> Delivery:
        """QueueEmpty (QueueShutDown after `shutdown()`): taking an item needs the network, so
        a `WorkQueue` consumer's fallback (`await get_delivery()`) does it."""
        raise QueueShutDown if self._is_shutdown else asyncio.QueueEmpty

    async def get_many(self, n: int) -> list[Delivery]:
        """Lease up to `n` items in one script call, waiting until there is at least one."""
        return (await self._get_many(n, b""))[1]

    async def ack_and_get_many(self, done: Iterable[Delivery], n: int) -> tuple[int, list[Delivery]]:
        """Ack `done` and lease up to `n` more in the same script call, waiting until there
        is at least one: a consumer of batches makes one round trip per batch, not two.

        Returns (acks accepted, deliveries). The acks happen first and once, even if the
        queue is shut down (then QueueShutDown follows them) or nothing is queued yet.
        """
        return await self._get_many(n, b",".join(map(_arrival, done)))

    async def _get_many(self, n: int, acks: bytes) -> tuple[int, list[Delivery]]:
        check_count("n", n, 1)
        loop = asyncio.get_running_loop()
        registered = False
        started = None
        acked = 0
        try:
            while True:
                if not acks:  # acks still to send go out even from a task being cancelled
                    _raise_if_cancelling()
                if self._is_shutdown:
                    if acks:
                        await self._call("ACK", acks)
                    raise QueueShutDown
                if loop.time() >= self._next_reap:
                    await self.reap()
                reply = await self._lease_items(n, registered, acks)
                if acks:
                    acked, acks = reply[3].count(b"1"), b""
                now = float(reply[0])
                self._depth = int(reply[1])
                if int(reply[2]):
                    return acked, self._deliveries(reply, now)
                timeout = self._max_wait
                if reply[4]:
                    # A retry falls due or a lease runs out then: look (and reap) at that time;
                    # one already out waits for the reaper's lock that another process holds.
                    due = float(reply[4]) - now
                    timeout = min(timeout, due + 0.005 if due > 0 else self._reap_interval)
                started = loop.time() if started is None else started
                registered = not await self._wait_signal(True, timeout)
                if reply[4] and registered:
                    self._next_reap = 0.0
        finally:
            if started is not None:
                self._get_waited.record(loop.time() - started)

    async def _lease_items(self, n: int, registered: bool, acks: bytes = b"") -> Any:
        """The GET script, held (`_Held`): a cancel (a pause, a worker removed) that lands
        while it runs waits for its reply and releases what it leased at once, rather than
        leaving leases nobody holds to come back at their expiry as redeliveries."""
        task = asyncio.current_task()
        assert task is not None
        call = _Held(
            self._call("GET", n, self._lease, "1" if registered else "0", self._consumer, acks),
            task,
        )
        try:
            return await call
        except asyncio.CancelledError:
            try:
                reply = call.result()
                if int(reply[2]):
                    for delivery in self._deliveries(reply, float(reply[0])):
                        await self.release(delivery)
            except Exception:  # Redis away: the leases expire and the reaper returns them
                _log.warning("releasing the items of an interrupted get failed", exc_info=True)
            raise

    def _deliveries(self, reply: list[Any], now: float) -> list[Delivery]:
        decode = self._codec.decode
        new = tuple.__new__  # skips the NamedTuple's Python-level __new__ on this hot path
        deadline = now + self._lease
        out: list[Delivery] = []
        # A token is 'id:t:a:r|p[|holder]': all but the id is shared by the items of one put
        # batch in one attempt, so it is parsed once per batch, not once per item. (A token
        # ending in the previous one's ':t:a:r|p[|holder]' has the same: the id has no ':'.)
        # The token is the delivery's `arrival` (opaque to consumers).
        shared, first, attempt = b"\0", 0.0, 0
        i, end = 4, len(reply)
        while i < end:  # one run of items per level served
            priority = float(reply[i])
            start, stop = len(out), i + 2 + 2 * int(reply[i + 1])
            tokens, payloads = reply[i + 2 : stop : 2], reply[i + 3 : stop : 2]
            if tokens and not tokens[0].endswith(shared):
                shared, first, attempt = _shared_part(tokens[0])
            if all(map(bytes.endswith, tokens, repeat(shared))):
                # The whole run shares it (the common case): built without a Python loop.
                fields = zip(map(decode, payloads), repeat(priority), tokens, repeat(first),
                             repeat(attempt), repeat(deadline))
                out.extend(map(new, repeat(Delivery), fields))
            else:
                for token, payload in zip(tokens, payloads, strict=True):
                    if not token.endswith(shared):
                        shared, first, attempt = _shared_part(token)
                    out.append(new(Delivery, (decode(payload), priority, token, first, attempt,
                                              deadline)))
            # Waits are sampled, one delivery in WAIT_SAMPLE_EVERY, as in the in-process queue.
            waits = [now - d[3] for d in out[start :: self.WAIT_SAMPLE_EVERY]]
            self._waits.extend(waits)
            series = self._wait_series.get(priority)
            if series is None and len(self._wait_series) < 256:
                series = self._wait_series[priority] = LatencyWindow(1024)
            if series is not None:
                series.extend(waits)
            i = stop
        return out

    # ------------------------------------------------------------------ settle

    async def ack(self, delivery: Delivery) -> bool:
        """Done: forget the item. False (and counted in stale_acks) if its lease was reaped."""
        return (await self._call("ACK", delivery.arrival)) == b"1"

    async def ack_many(self, deliveries: Iterable[Delivery]) -> int:
        """Ack several deliveries in one script call; returns how many were accepted."""
        leases = b",".join(map(_arrival, deliveries))
        return (await self._call("ACK", leases)).count(b"1") if leases else 0

    async def nack(self, delivery: Delivery, *, delay: float = 0.0, error: str = "") -> str:
        """Not done: back to its original place (after `delay` seconds), or a dead letter.

        Returns the fate: 'queued', 'retry' (waiting out `delay` in Redis), 'dead-lettered'
        (it had `max_attempts` deliveries; `error` is kept as the reason) or 'stale' (its
        lease was reaped already; counted in stale_acks).
        """
        delay = check_seconds("delay", delay)
        reason = " ".join((error or "nacked").split())[:200]
        fate = await self._call("NACK", self._max_attempts, delay, delivery.arrival, reason)
        return fate.decode()

    async def release(self, delivery: Delivery) -> str:
        """An interrupted delivery back to its place, its attempt not counted: 'queued'|'stale'."""
        return (await self._call("RELEASE", delivery.arrival)).decode()

    async def extend(self, delivery: Delivery, seconds: float | None = None) -> Delivery:
        """Push the lease deadline to `seconds` (default: `lease`) from now on the server clock.

        Returns the delivery with its new deadline; raises LeaseLost if the lease was reaped.
        """
        seconds = self._lease if seconds is None else check_seconds("seconds", seconds)
        deadline = await self._call("EXTEND", delivery.arrival, seconds)
        if deadline is None:
            job = delivery.arrival.split(b":", 1)[0].decode(errors="replace")  # text: any token
            raise LeaseLost(f"the lease of job {job} was reaped before extend()")
        return delivery._replace(deadline=float(deadline))

    def handler_context(self, delivery: Delivery, job_id: int | None = None) -> HandlerContext:
        """A `HandlerContext` for `delivery` whose `extend()` extends its lease."""
        return RedisHandlerContext(self, delivery, _job_id(delivery) if job_id is None else job_id)

    def drain_nowait(self) -> list[tuple[Any, float]]:
        """Nothing: the shared queue is not this process's to empty (see `destroy()`)."""
        return []

    async def reap(self) -> tuple[int, int] | None:
        """Return expired leases (or dead-letter them) if no process reaped this interval.

        Consumers call this from `get`; returns (returned, dead-lettered), None when another
        process holds the reaper's lock.
        """
        loop = asyncio.get_running_loop()
        self._next_reap = loop.time() + self._reap_interval
        lock_ms = max(1, int(self._reap_interval * 1000))
        back, dead = await self._call("REAP", self._max_attempts, lock_ms, 1000)
        return None if back < 0 else (back, dead)

    # ------------------------------------------------------------------ introspection

    def qsize(self) -> int:
        """Queued items at this process's last call to Redis; 0 once it is shut down (its drain)."""
        return 0 if self._is_shutdown else self._depth

    # Set when the queue is made, then read-only.
    maxsize = property(attrgetter("_maxsize"), doc="Items at which it is full (0: unbounded).")
    overflow = property(attrgetter("_overflow"), doc="The `Overflow` policy.")
    aging_rate = property(attrgetter("_rate"), doc="Priority points per second waited.")

    @property
    def lease(self) -> float:  # seconds a delivery stays leased
        return self._lease

    # ------------------------------------------------------------------ lifecycle

    def shutdown(self, immediate: bool = False) -> list[tuple[Any, float]]:
        """Stop this process's puts and gets (QueueShutDown; its waiters wake at once).
        Nothing is removed from Redis, even `immediate`: other processes may serve it."""
        self._is_shutdown = True
        for task in self._waiting - self._interrupted:
            self._interrupted.add(task)
            task.cancel()
        return []

    async def destroy(self) -> int:
        """Delete every key of this queue from Redis, for all processes. Returns keys deleted."""
        keys = [key async for key in self._redis.scan_iter(match=self._prefix + "*", count=500)]
        self._epoch = None
        return await self._redis.delete(*keys) if keys else 0

    async def close(self) -> None:
        """Shut down and close the connection pool if this queue made it from a URL."""
        self.shutdown()
        if self._owns_client:
            await self._redis.aclose()

    async def __aenter__(self) -> RedisPriorityQueue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = " shutdown" if self._is_shutdown else ""
        return (
            f"<RedisPriorityQueue {self.name!r} maxsize={self._maxsize} depth~{self._depth}"
            f" overflow={self._overflow.value} aging_rate={self._rate!r} lease={self._lease:g}s{state}>"
        )
