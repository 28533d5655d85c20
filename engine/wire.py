"""Frames of the monitor protocol: versioned NDJSON, one JSON object per line.

    {"v": 1, "type": "snapshot", "wall": 1764650000.25, "data": {...an EngineSnapshot...}}

Every frame has `v` (the protocol version), `type`, `wall` (the sender's `time.time()`) and
`data`. Server frames: `hello`, `snapshot`, `stale`, `reply`. Client frames: `hello`, `auth`
(TCP only, first), `request`. A reader ignores fields it does not know; `v` goes up only for a
breaking change, and a reader that gets another version says so in one line naming both.

One seam encodes and decodes: msgspec when it is installed (`heapwatch[remote]`; it decodes
straight into the frozen snapshot dataclasses, validating as it goes), the standard library's
json otherwise (a small converter built from the dataclasses' type hints). Both produce the same
bytes-on-the-wire shape and are tested against each other.

Payload objects never go on the wire: `wire_safe()` drops every `item` field, keeping the
reprs the `item_repr` hook made.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from engine.records import replace
from engine.reprs import ItemRepr, describe
from engine.snapshots import EngineSnapshot, HeapEntry

__all__ = [
    "VERSION",
    "Codec",
    "Frame",
    "FrameError",
    "VersionMismatch",
    "codec",
    "strip_payloads",
    "wire_safe",
]

VERSION = 1
"""The protocol version. Up only for a breaking change; new fields keep it."""

FRAME_TYPES = frozenset({"hello", "snapshot", "stale", "reply", "auth", "request"})

ITEM_REPR_LIMIT = 80


class FrameError(ValueError):
    """A line that is not a frame of this protocol (the message is one line)."""


class VersionMismatch(FrameError):
    """The peer speaks another protocol version."""

    def __init__(self, theirs: object, ours: int = VERSION) -> None:
        super().__init__(
            f"the peer speaks heapwatch monitor protocol v{theirs}, this heapwatch speaks v{ours}"
        )
        self.theirs = theirs
        self.ours = ours


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. `data` is an `EngineSnapshot` for a snapshot frame, else a dict."""

    type: str
    wall: float
    data: Any
    v: int = VERSION


# --------------------------------------------------------------------------- payloads out


Stripper = Callable[[Any, "ItemRepr | None"], Any]
_strippers: dict[Any, Stripper | None] = {}


def _strip_entry(entry: HeapEntry, hook: ItemRepr | None) -> HeapEntry:
    if hook is not None or not entry.item_repr:
        text = describe(entry.item, ITEM_REPR_LIMIT, hook)
    else:
        text = entry.item_repr
    return replace(entry, {"item": None, "item_repr": text})


def _stripper(hint: Any) -> Stripper | None:
    """How to strip a value of type `hint`; None when no value of it can hold a payload.

    Planned once per type from the dataclasses' hints, so a snapshot is walked only where a
    payload can be (heap entries, dead letters, returned items), not through every worker.
    """
    if hint in _strippers:
        return _strippers[hint]
    _strippers[hint] = None  # a type that refers to itself holds no payload through itself
    made = _make_stripper(hint)
    _strippers[hint] = made
    return made


def _make_stripper(hint: Any) -> Stripper | None:
    if hint is HeapEntry:
        return _strip_entry
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        plan = []
        for spec in dataclasses.fields(hint):
            if spec.name == "item":
                plan.append((spec.name, None))
            else:
                inner = _stripper(hints[spec.name])
                if inner is not None:
                    plan.append((spec.name, inner))
        if not plan:
            return None

        def strip_dataclass(value: Any, hook: ItemRepr | None) -> Any:
            changes = {}
            for name, inner in plan:
                current = getattr(value, name)
                new = None if inner is None else inner(current, hook)
                if new is not current:
                    changes[name] = new
            return replace(value, changes) if changes else value

        return strip_dataclass
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and args:
        members = [_stripper(arg) for arg in args if arg is not Ellipsis]
        if all(member is None for member in members):
            return None
        each = next(member for member in members if member is not None)

        def strip_tuple(value: Any, hook: ItemRepr | None) -> Any:
            stripped = tuple(each(member, hook) if hasattr(member, "__dataclass_fields__")
                             else strip_payloads(member, hook) for member in value)
            return stripped if any(a is not b for a, b in zip(stripped, value, strict=True)) \
                else value

        return strip_tuple
    if origin in (typing.Union, types.UnionType):
        members = [_stripper(arg) for arg in args if arg is not type(None)]
        live = [member for member in members if member is not None]
        if not live:
            return None
        return lambda value, hook: None if value is None else live[0](value, hook)
    return None


def strip_payloads(value: Any, hook: ItemRepr | None = None) -> Any:
    """`value` (a snapshot, a tuple of them) with every `item` field None, reprs kept."""
    if isinstance(value, tuple):
        return tuple(strip_payloads(member, hook) for member in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        stripper = _stripper(type(value))
        return value if stripper is None else stripper(value, hook)
    return value


def wire_safe(snapshot: EngineSnapshot, item_repr: ItemRepr | None = None) -> EngineSnapshot:
    """A copy of `snapshot` with every payload object (`item` fields) replaced by None.

    Heap entries keep their `item_repr`; one made before the queue filled it is made here,
    through `item_repr` (the service's hook, so that it can redact).
    """
    return strip_payloads(snapshot, item_repr)


# --------------------------------------------------------------------------- stdlib converter


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, tuples and sets to lists, enums to values: json.dumps can take it."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, tuple | list | frozenset | set):
        return [_plain(member) for member in value]
    if isinstance(value, dict):
        return {str(key): _plain(member) for key, member in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return value.value
    return repr(value)  # never a payload object itself: wire_safe ran first


Converter = Callable[[Any], Any]
_converters: dict[Any, Converter] = {}


def _identity(value: Any) -> Any:
    return value


def _converter(hint: Any) -> Converter:
    """A function turning decoded JSON into `hint` (dataclass, tuple, enum, union, scalar)."""
    cached = _converters.get(hint)
    if cached is not None:
        return cached
    made = _make_converter(hint)
    _converters[hint] = made
    return made


def _make_converter(hint: Any) -> Converter:
    if hint is Any or hint is object:
        return _identity
    if hint is float:
        return lambda value: math.nan if value is None else float(value)
    if hint in (int, str, bool):
        def scalar(value: Any, kind: type = hint) -> Any:
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise FrameError(f"expected {kind.__name__}, got {type(value).__name__}")
            return value
        return scalar
    if hint is type(None):
        return _identity
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_converter(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        inner = _converter(members[0]) if len(members) == 1 else _identity
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            each = _converter(args[0])
            return lambda value: tuple(each(member) for member in value)
        parts = [_converter(arg) for arg in args]
        return lambda value: tuple(part(member) for part, member in zip(parts, value, strict=True))
    if origin in (frozenset, set):
        each = _converter(args[0]) if args else _identity
        return lambda value: frozenset(each(member) for member in value)
    if origin is dict:
        return dict
    return _identity


def _dataclass_converter(cls: type) -> Converter:
    hints = typing.get_type_hints(cls)  # in the class's own module (snapshots, evidence...)
    fields = [(field.name, hints[field.name]) for field in dataclasses.fields(cls) if field.init]
    plan: list[tuple[str, Converter]] = []
    ready = False

    def convert(value: Any) -> Any:
        nonlocal ready
        if not ready:  # resolved on first use: the dataclasses refer to each other
            plan.extend((name, _converter(hint)) for name, hint in fields)
            ready = True
        if not isinstance(value, dict):
            raise FrameError(f"expected an object for {cls.__name__}, got {type(value).__name__}")
        # Unknown keys are ignored (a newer peer's fields); missing ones take their defaults.
        return cls(**{name: each(value[name]) for name, each in plan if name in value})

    return convert


# --------------------------------------------------------------------------- the seam


class Codec:
    """Frame encode/decode with msgspec (`backend='msgspec'`) or stdlib json (`'json'`)."""

    def __init__(self, backend: str | None = None) -> None:
        if backend is None:
            try:
                import msgspec  # noqa: F401
            except ImportError:
                backend = "json"
            else:
                backend = "msgspec"
        if backend not in ("msgspec", "json"):
            raise ValueError(f"backend must be 'msgspec' or 'json', not {backend!r}")
        self.backend = backend
        if backend == "msgspec":
            import msgspec

            self._msgspec = msgspec
            self._encoder = msgspec.json.Encoder()
            self._envelope = msgspec.json.Decoder(_envelope_struct(msgspec))
            self._snapshot = msgspec.json.Decoder(EngineSnapshot)
            self._plain = msgspec.json.Decoder()

    def __repr__(self) -> str:
        return f"<Codec {self.backend}>"

    def encode(self, type: str, data: Any = None, *, wall: float) -> bytes:
        """One frame as a line of bytes (newline included). `data` must already be wire-safe."""
        if self.backend == "msgspec":
            frame = {"v": VERSION, "type": type, "wall": wall, "data": data}
            try:
                return self._encoder.encode(frame) + b"\n"
            except (TypeError, ValueError):
                # An odd value (a float('inf'), an unknown object): the slow path copes.
                pass
        frame = {"v": VERSION, "type": type, "wall": wall, "data": _plain(data)}
        return json.dumps(frame, separators=(",", ":"), allow_nan=False).encode() + b"\n"

    def convert(self, value: Any, hint: Any) -> Any:
        """Plain decoded JSON (a reply's result) into `hint`, e.g. `tuple[StackGroup, ...]`."""
        if self.backend == "msgspec":
            try:
                return self._msgspec.convert(value, hint)
            except self._msgspec.ValidationError as error:
                raise FrameError(f"bad reply: {error}") from None
        try:
            return _converter(hint)(value)
        except (FrameError, TypeError, ValueError, KeyError) as error:
            raise FrameError(f"bad reply: {error}") from None

    @staticmethod
    def plain(value: Any) -> Any:
        """Dataclasses and enums as JSON-ready values (a reply's result)."""
        return _plain(value)

    def decode(self, line: bytes | str) -> Frame:
        """One line into a `Frame`; FrameError (one line) for anything else."""
        if isinstance(line, str):
            line = line.encode()
        if self.backend == "msgspec":
            return self._decode_msgspec(line)
        return self._decode_json(line)

    def _decode_msgspec(self, line: bytes) -> Frame:
        msgspec = self._msgspec
        try:
            envelope = self._envelope.decode(line)
        except msgspec.DecodeError as error:
            raise self._explain(line, error) from None
        _check_envelope(envelope.v, envelope.type, envelope.wall)
        raw = envelope.data
        try:
            if envelope.type == "snapshot":
                data = self._snapshot.decode(raw)
            else:
                data = self._plain.decode(raw) if raw else None
        except msgspec.DecodeError as error:
            raise FrameError(f"bad {envelope.type} frame: {error}") from None
        return Frame(envelope.type, float(envelope.wall), data, envelope.v)

    def _explain(self, line: bytes, error: Exception) -> FrameError:
        # The version first: a v2 frame may fail the v1 shape for reasons that do not matter.
        try:
            theirs = json.loads(line).get("v")
        except (ValueError, AttributeError):
            return FrameError(f"not a heapwatch frame: {error}")
        if theirs != VERSION:
            return VersionMismatch(theirs)
        return FrameError(f"not a heapwatch frame: {error}")

    def _decode_json(self, line: bytes) -> Frame:
        try:
            frame = json.loads(line)
        except ValueError as error:
            raise FrameError(f"not a heapwatch frame: {error}") from None
        if not isinstance(frame, dict):
            raise FrameError("not a heapwatch frame: not a JSON object")
        kind = frame.get("type")
        wall = frame.get("wall", 0.0)
        _check_envelope(frame.get("v"), kind, wall)
        data = frame.get("data")
        if kind == "snapshot":
            try:
                data = _converter(EngineSnapshot)(data)
            except (FrameError, TypeError, ValueError, KeyError) as error:
                raise FrameError(f"bad snapshot frame: {error}") from None
        return Frame(kind, float(wall), data, VERSION)


def _check_envelope(v: object, kind: object, wall: object) -> None:
    if v != VERSION:
        raise VersionMismatch(v)
    if kind not in FRAME_TYPES:
        raise FrameError(f"unknown frame type {kind!r}")
    if isinstance(wall, bool) or not isinstance(wall, int | float):
        raise FrameError(f"frame wall time must be a number, not {wall!r}")


_ENVELOPE: Any = None


def _envelope_struct(msgspec: Any) -> Any:
    global _ENVELOPE
    if _ENVELOPE is None:
        # defstruct, not a class body: annotations are strings in this module.
        _ENVELOPE = msgspec.defstruct(
            "Envelope",
            [("v", Any, None), ("type", Any, None), ("wall", Any, 0.0),
             ("data", msgspec.Raw, msgspec.Raw(b"null"))],
        )
    return _ENVELOPE


_default: Codec | None = None


def codec() -> Codec:
    """The process's default codec (msgspec when installed)."""
    global _default
    if _default is None:
        _default = Codec()
    return _default
