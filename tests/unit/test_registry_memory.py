"""What the watch cache keeps for every object takes its own size: orjson.dumps hands back its whole
8 KiB write buffer, which would make each cached object's stored value and API JSON cost 8 KiB each."""
from __future__ import annotations

import tracemalloc

from kubegate.api.registry import Decoded, encode_obj


def test_stored_values_and_cached_json_take_their_own_size() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "x", "resourceVersion": "5"}, "data": {"k": "v" * 100}}
    tracemalloc.start()
    try:
        kept = [Decoded(dict(obj)).json() for _ in range(100)] + [encode_obj(obj) for _ in range(100)]
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(len(b) < 200 for b in kept)
    assert size < 200 * 512  # 200 buffers of 8 KiB would be 1.6 MB
