"""Small helpers over JSON-form objects: metadata access, timestamps, generated names."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timezone
from typing import Any

# Upstream's utilrand alphabet: no vowels (no words), no confusable characters.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
_RANDOM = random.Random()  # seeded from os.urandom


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix(n: int = 5) -> str:
    # Upstream's utilrand draws from math/rand: names need to be distinct, not unguessable (a
    # collision is retried), and a pod create makes two of them.
    return "".join(_RANDOM.choices(_ALPHANUMS, k=n))


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
