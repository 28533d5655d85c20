"""Argument checks shared by the engine: one wording for every bad argument.

Each check returns the value (normalised where said) or raises TypeError for the wrong type and
ValueError for a value out of range, naming the argument and what it accepts.
"""

from __future__ import annotations

import enum
import math
import numbers
from typing import TypeVar

__all__ = [
    "check_choice",
    "check_count",
    "check_priority",
    "check_rate",
    "check_ratio",
    "check_real",
    "check_seconds",
]

E = TypeVar("E", bound=enum.Enum)


def check_real(name: str, value: object) -> float:
    """A real number that is not a bool (int, float, Fraction...): returned unchanged."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (int or float), not {value!r}")
    return value  # type: ignore[return-value]


def check_priority(priority: object) -> float:
    """A finite real number: lower is served first."""
    check_real("priority", priority)
    if not math.isfinite(priority):  # type: ignore[arg-type]
        raise ValueError(f"priority must be finite, not {priority!r}")
    return priority  # type: ignore[return-value]


def check_count(name: str, value: object, minimum: int) -> int:
    """An int (not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, not {value!r}")
    return value


def check_seconds(name: str, value: object, *, allow_zero: bool = True) -> float:
    """A duration in seconds, >= 0 (or > 0), not NaN; returned as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound} seconds, not {value!r}")
    return float(value)


def check_rate(name: str, value: object) -> float:
    """A finite real number >= 0, returned as a float."""
    check_real(name, value)
    if not math.isfinite(value) or value < 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be finite and >= 0, not {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_ratio(name: str, value: object) -> float:
    """A real number in (0, 1] (a fraction of a whole, 1 included), returned as a float."""
    check_real(name, value)
    if not 0 < value <= 1:  # type: ignore[operator]
        raise ValueError(f"{name} must be in (0, 1], not {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_choice(name: str, value: object, choices: type[E]) -> E:
    """A member of the enum `choices`, given as the member or its value."""
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(repr(c.value) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, not {value!r}") from None
