"""The cron schedule parser CronJobs are validated with: robfig/cron/v3 ParseStandard (5 fields or a
`@descriptor`, an optional leading TZ=/CRON_TZ=), returning upstream's error text or "" when it parses."""
from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

from .common import go_list


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int]


_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                           "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS = (_Bounds(0, 59, {}), _Bounds(0, 23, {}), _Bounds(1, 31, {}), _Bounds(1, 12, _MONTHS), _Bounds(0, 6, _DAYS))
_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_DURATION_RE = re.compile(r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+\Z")
_INT_MAX = 2**63 - 1  # strconv.Atoi parses a 64-bit int


def load_location(name: str) -> str:
    """time.LoadLocation's error ("" when the zone exists)."""
    if name in ("", "UTC", "Local"):
        return ""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name}"
    return ""


def _atoi(expr: str) -> tuple[int, str]:
    """mustParseInt: strconv.Atoi plus the non-negative check."""
    if not _INT_RE.match(expr):
        return 0, f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax'
    num = int(expr)
    if abs(num) > _INT_MAX:
        return 0, f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": value out of range'
    if num < 0:
        return 0, f"negative number ({num}) not allowed: {expr}"
    return num, ""


def _int_or_name(expr: str, bounds: _Bounds) -> tuple[int, str]:
    if expr.lower() in bounds.names:
        return bounds.names[expr.lower()], ""
    return _atoi(expr)


def _range(expr: str, bounds: _Bounds) -> str:
    """getRange: one comma-separated part of a field (`*`, `?`, `a`, `a-b`, each with an optional `/step`)."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    if low_high[0] in ("*", "?"):
        start, end = bounds.low, bounds.high
    else:
        start, err = _int_or_name(low_high[0], bounds)
        if err:
            return err
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end, err = _int_or_name(low_high[1], bounds)
            if err:
                return err
        else:
            return f"too many hyphens: {expr}"
    step = 1
    if len(range_and_step) == 2:
        step, err = _atoi(range_and_step[1])
        if err:
            return err
        if len(low_high) == 1:  # "N/step" means "N-max/step"
            end = bounds.high
    elif len(range_and_step) > 2:
        return f"too many slashes: {expr}"
    if start < bounds.low:
        return f"beginning of range ({start}) below minimum ({bounds.low}): {expr}"
    if end > bounds.high:
        return f"end of range ({end}) above maximum ({bounds.high}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    if step == 0:
        return f"step of range should be a positive number: {expr}"
    return ""


def _duration_error(text: str) -> str:
    """time.ParseDuration's error for `@every <duration>` ("" when valid)."""
    if text == "0" or _DURATION_RE.match(text):
        return ""
    body = text.lstrip("+-")
    if body and re.fullmatch(r"[0-9.]+", body):
        return f'time: missing unit in duration "{text}"'
    unit = re.match(r"[-+]?[0-9.]+([^0-9.]+)", text)
    if unit and body and body[0] in "0123456789.":
        return f'time: unknown unit "{unit.group(1)}" in duration "{text}"'
    return f'time: invalid duration "{text}"'


def parse_standard(spec: str) -> str:
    """cron.ParseStandard: "" when `spec` parses, else the parser's error message."""
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space, eq = spec.find(" "), spec.find("=")
        location = spec[eq + 1:space] if space >= 0 else spec[eq + 1:]
        err = load_location(location)
        if err:
            return f"provided bad location {location}: {err}"
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return ""
        if spec.startswith("@every "):
            err = _duration_error(spec[len("@every "):])
            return f"failed to parse duration {spec}: {err}" if err else ""
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: {go_list(fields)}"
    for text, bounds in zip(fields, _FIELDS):
        for expr in (part for part in text.split(",") if part):
            err = _range(expr, bounds)
            if err:
                return err
    return ""
