"""generateName collisions are retried with fresh names, as upstream's RetryGenerateName does."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kubegate.api import errors, registry
from kubegate.api.registry import ResourceRegistry, decode_kv
from kubegate.api.resources import lookup
from kubegate.storage import CacheSet, SQLiteStore

CONFIGMAPS = lookup("", "v1", "configmaps")


def _noop(r: Any, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    return None


def _create_with_suffixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffixes: list[str]) -> list[str]:
    names = iter(suffixes)
    monkeypatch.setattr(registry, "generate_name", lambda base: base + next(names))

    async def main() -> list[str]:
        store = SQLiteStore(str(tmp_path / "state.db"))
        await store.start()
        try:
            caches = CacheSet(store, lambda prefix: decode_kv)
            reg = ResourceRegistry(CONFIGMAPS, store, await caches.cache(CONFIGMAPS.key_prefix + "/"), _noop, _noop)
            made = []
            for _ in range(2):
                d = await reg.create({"metadata": {"generateName": "cm-"}}, namespace="default")
                made.append(d.obj["metadata"]["name"])
            return made
        finally:
            await store.close()
    return asyncio.run(main())


def test_collision_is_retried_with_a_fresh_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _create_with_suffixes(tmp_path, monkeypatch, ["aaaaa", "aaaaa", "aaaaa", "bbbbb"]) == ["cm-aaaaa", "cm-bbbbb"]


def test_eight_collisions_are_already_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.StatusError) as e:
        _create_with_suffixes(tmp_path, monkeypatch, ["aaaaa"] * 9)
    assert e.value.reason == "AlreadyExists"


def test_generated_suffixes_draw_evenly_from_upstreams_alphabet() -> None:
    from kubegate.api.objects import generate_name, random_suffix
    draws = [random_suffix() for _ in range(20000)]
    assert all(len(s) == 5 for s in draws)
    counts = {c: 0 for c in "bcdfghjklmnpqrstvwxz2456789"}
    for s in draws:
        for c in s:
            counts[c] += 1  # a character outside the alphabet raises KeyError
    expected = 5 * 20000 / 27
    assert all(abs(n - expected) < 0.1 * expected for n in counts.values())
    assert len(set(draws)) > 19900
    assert generate_name("x" * 70)[:58] == "x" * 58 and len(generate_name("x" * 70)) == 63
