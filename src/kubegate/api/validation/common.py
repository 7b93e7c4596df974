"""Small helpers shared by the kind validators: tolerant accessors and extra field-error shapes."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kubegate.api.errors import Cause, _quote, field_duplicate, field_invalid, field_required


def d(v: Any) -> dict[str, Any]:
    """A mapping field, or {} when absent or of the wrong shape (decoding already rejected bad types)."""
    return v if isinstance(v, dict) else {}


def lst(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def s(v: Any) -> str:
    return v if isinstance(v, str) else ""


def field_not_found(path: str, value: Any) -> Cause:
    return Cause("FieldValueNotFound", f"Not found: {_quote(value)}", path)


def nonnegative(path: str, value: Any) -> list[Cause]:
    """ValidateNonnegativeField."""
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [field_invalid(path, value, "must be greater than or equal to 0")]
    return []


def go_list(values: list[Any]) -> str:
    """How Go's %v renders a []string in messages: [a b c]."""
    return "[" + " ".join(str(v) for v in values) + "]"


class GoJSON:
    """A composite value rendered as upstream renders non-scalar field values: compact JSON, sorted keys."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return json.dumps(self.value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def unique_name(path: str, name: str, seen: set[str], check: Callable[[str], list[str]],
                *, required: bool = True) -> list[Cause]:
    """A list item's `name`: required (or skipped when empty and optional), well formed, and not
    used twice in the list (`seen` collects the names)."""
    if not name:
        return [field_required(path)] if required else []
    causes = [field_invalid(path, name, m) for m in check(name)]
    if name in seen:
        causes.append(field_duplicate(path, name))
    seen.add(name)
    return causes


def unique_item_name(list_path: str, index: int, name: str, seen: set[str], check: Callable[[str], list[str]],
                     *, required: bool = True) -> list[Cause]:
    """unique_name for item `index` of the list at `list_path`; the usual well-formed new name costs no
    path string (it is built only for a cause)."""
    if name:
        if name not in seen and not check(name):
            seen.add(name)
            return []
    elif not required:
        return []
    return unique_name(f"{list_path}[{index}].name", name, seen, check, required=required)
