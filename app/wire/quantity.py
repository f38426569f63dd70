"""Kubernetes ``resource.Quantity`` parsing, exact (rational arithmetic, no floats).

``parse_quantity("1.5Gi")`` → ``Fraction(1610612736)``. Resource amounts are then kept as integers:
CPU in millicores (rounded up, as ``Quantity.MilliValue``), everything else in whole units
(rounded up, as ``Quantity.Value``).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

CPU = "cpu"
MAX_AMOUNT = 2**62
"""Amounts are clamped here so sums of them stay inside the int64 node columns."""

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

_QUANTITY = re.compile(
    r"(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)


def _power_of_ten(exponent: int) -> Fraction:
    return Fraction(10**exponent) if exponent >= 0 else Fraction(1, 10**-exponent)


class QuantityError(ValueError):
    """A quantity string that Kubernetes would reject."""


@lru_cache(maxsize=4096)
def parse_quantity(text: str) -> Fraction:
    """Parse a quantity string exactly as ``resource.ParseQuantity`` accepts it.

    Raises :class:`QuantityError` for anything malformed (never a silent zero).
    """
    match = _QUANTITY.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise QuantityError(f"quantity {text!r} is not a valid Kubernetes quantity")
    number = Fraction(match["num"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * Fraction(1024 ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number * _power_of_ten(_DECIMAL[suffix])
    return number * _power_of_ten(int(suffix[1:]))


def quantity_to_int(resource: str, value: str | int | float) -> int:
    """A resource amount as the integer the extender computes with.

    CPU → millicores, anything else → units; both rounded up like the Go client. Negative
    amounts are rejected: no request or capacity may be negative.
    """
    return _to_int(resource == CPU, value if isinstance(value, str) else repr(value))


@lru_cache(maxsize=8192)
def _to_int(milli: bool, text: str) -> int:
    amount = parse_quantity(text)
    if amount < 0:
        raise QuantityError(f"quantity {text!r} is negative")
    result = math.ceil(amount * 1000) if milli else math.ceil(amount)
    return min(result, MAX_AMOUNT)


def format_amount(resource: str, amount: int) -> str:
    """Render an integer amount for humans: ``1500m`` / ``2`` for CPU, ``512Mi`` for bytes."""
    if resource == CPU:
        return f"{amount // 1000}" if amount % 1000 == 0 else f"{amount}m"
    for suffix, power in (("Ti", 4), ("Gi", 3), ("Mi", 2), ("Ki", 1)):
        unit = 1024**power
        if amount >= unit and amount % unit == 0 and resource in ("memory", "ephemeral-storage"):
            return f"{amount // unit}{suffix}"
    return str(amount)
