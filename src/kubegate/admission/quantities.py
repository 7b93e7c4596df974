"""resource.Quantity arithmetic for admission plugins that add quantities up (LimitRanger's pod
totals, ResourceQuota's usage): values with the format of the first operand, printed canonically."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubegate.api.validation import quantity

Amount = tuple[Decimal, bool]  # (value, binary-SI format)

_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_DECIMAL = (("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3), ("", 0), ("m", -3), ("u", -6), ("n", -9))


def amount(v: Any) -> Amount:
    return quantity.parse(v) or Decimal(0), quantity.render(v).endswith("i")


def render(value: Decimal, binary: bool) -> str:
    """Quantity.String(): the largest suffix that keeps the number whole."""
    if value == 0:
        return "0"
    if binary and value == value.to_integral_value():
        for suffix, size in _BINARY:
            if abs(value) >= size and value % size == 0:
                return f"{int(value / size)}{suffix}"
        if abs(value) < 1024:
            return str(int(value))
    for suffix, exp in _DECIMAL:
        scaled = value / (Decimal(10) ** exp)
        if scaled == scaled.to_integral_value():
            return f"{int(scaled)}{suffix}"
    return f"{int((value * 10**9).to_integral_value())}n"


def add(total: dict[str, Amount], name: str, v: Any) -> None:
    value, binary = amount(v)
    old = total.get(name)
    total[name] = (old[0] + value, old[1]) if old else (value, binary)
