"""Small helpers over JSON-form objects: metadata access, timestamps, generated names."""
from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timezone
from typing import Any

# Upstream's utilrand alphabet: no vowels (no words), no confusable characters.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix(n: int = 5) -> str:
    # One draw for all n characters: a pod create with the service-account volume makes two names.
    value = secrets.randbelow(len(_ALPHANUMS) ** n)
    out = []
    for _ in range(n):
        value, i = divmod(value, len(_ALPHANUMS))
        out.append(_ALPHANUMS[i])
    return "".join(out)


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
