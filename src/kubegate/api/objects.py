"""Small helpers over JSON-form objects: metadata access, timestamps, generated names."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timezone
from typing import Any

# Upstream's utilrand alphabet: no vowels (no words), no confusable characters.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
_RANDOM = random.Random()  # seeded from os.urandom
# Bytes 0-242 map evenly onto the 27 characters (243 = 9 * 27); the bytes above are not used.
_BYTE_TO_ALPHANUM = bytes(ord(_ALPHANUMS[i % len(_ALPHANUMS)]) for i in range(256))
_NON_UNIFORM_BYTES = bytes(range(243, 256))
_SUFFIX_BATCH = 256
_SUFFIXES: list[str] = []


_RFC3339 = "%Y-%m-%dT%H:%M:%SZ"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time, as metav1.Time prints an unset time


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime(_RFC3339)


def rfc3339(t: datetime) -> str:
    """metav1.Time's wire form: UTC, whole seconds."""
    return t.astimezone(timezone.utc).strftime(_RFC3339)


def timestamp_rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime(_RFC3339)


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix() -> str:
    # Upstream's utilrand draws from math/rand: names need to be distinct, not unguessable (a
    # collision is retried). Drawn in batches: a pod create makes one or two, and one draw per name
    # cost more than the rest of naming.
    if not _SUFFIXES:
        _refill_suffixes()
    return _SUFFIXES.pop()


def _refill_suffixes() -> None:
    # Bytes above 242 are dropped one by one, which keeps every character uniform and independent.
    chars = _RANDOM.randbytes(_SUFFIX_BATCH * 5).translate(_BYTE_TO_ALPHANUM, _NON_UNIFORM_BYTES).decode()
    _SUFFIXES.extend(chars[i:i + 5] for i in range(0, len(chars) - 4, 5))


def generate_name(base: str) -> str:
    # names.SimpleNameGenerator: base truncated so base+suffix fits 63 characters
    max_base = 63 - 5
    return base[:max_base] + random_suffix()


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def name_of(obj: dict[str, Any]) -> str:
    m = obj.get("metadata") or {}
    return m.get("name") or ""


def namespace_of(obj: dict[str, Any]) -> str:
    m = obj.get("metadata") or {}
    return m.get("namespace") or ""


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    m = obj.get("metadata") or {}
    return m.get("labels") or {}
