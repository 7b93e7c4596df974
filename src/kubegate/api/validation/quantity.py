"""resource.Quantity parsing, enough to compare and sign-check quantities as validation does."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
QUANTITY_ERROR = f"quantities must match the regular expression '{QUANTITY_REGEX}'"

_RE = re.compile(QUANTITY_REGEX)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}


def parse(value: Any) -> Decimal | None:
    """The numeric value of a quantity (string or JSON number), or None when it does not parse."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    m = _RE.match(value.strip())
    if not m:
        return None
    num, suffix = m.group(1), m.group(2)
    try:
        base = Decimal(num)
    except InvalidOperation:
        return None
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    if suffix in _DECIMAL:
        return base * _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return base * (Decimal(10) ** int(suffix[1:]))
        except ValueError:
            return None
    return None


def render(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
