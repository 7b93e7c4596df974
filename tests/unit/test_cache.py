"""The watch cache over the SQLite store: reads from memory, read-your-writes, watch fan-out."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubegate.storage import KV, CacheEvent, CacheSet, CompactedError, SQLiteStore, StoreClosedError, WatchCache
from kubegate.storage.cache import CacheWatcher

T = TypeVar("T")
P = "/registry/pods/"


class CountingDecoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, kv: KV) -> dict[str, Any]:
        self.calls += 1
        return {"name": kv.key.rsplit("/", 1)[1], "value": kv.value.decode(), "resourceVersion": str(kv.mod_revision)}


def run(tmp_path: Path, body: Callable[[SQLiteStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = SQLiteStore(str(tmp_path / "state.db"))
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def take(w: CacheWatcher, n: int) -> list[CacheEvent]:
    return [await asyncio.wait_for(w.__anext__(), 2) for _ in range(n)]


def test_primes_and_serves_get_and_list(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        for ns in ("a", "b", "c"):
            for i in range(4):
                await s.create(f"{P}{ns}/p{i}", f"{ns}{i}".encode())
        await s.create("/registry/services/a/x", b"svc")
        dec = CountingDecoder()
        cache = WatchCache(s, P, dec, page=5)     # several pages, read at one revision
        await cache.start()
        assert cache.revision == 13
        entry = cache.get(P + "b/p2")
        assert entry is not None and entry.object["value"] == "b2"
        assert cache.get("/registry/services/a/x") is None
        full = cache.list()
        assert (len(full.entries), full.revision, full.more) == (12, 13, False)
        ns_b = cache.list(P + "b/")
        assert [e.key for e in ns_b.entries] == [f"{P}b/p{i}" for i in range(4)]
        page = cache.list(P, limit=5)
        assert page.more and page.entries[-1].key == P + "b/p0"
        rest = cache.list(P, start_after=page.entries[-1].key, limit=100)
        assert (len(rest.entries), rest.more) == (7, False)
        assert cache.count(P, start_after=page.entries[-1].key) == 7
        assert cache.count(P + "c/") == 4
        # decoded once per object version, however often it is read
        assert cache.get(P + "b/p2") is entry
        [e.object for e in cache.list().entries]
        [e.object for e in cache.list().entries]
        assert dec.calls == 12
        await cache.stop()

    run(tmp_path, body)


def test_tells_when_it_becomes_empty_or_not(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        await s.create(P + "ns/a", b"a")
        cache = WatchCache(s, P, CountingDecoder())
        sizes: list[int] = []
        cache.on_emptiness_change(lambda: sizes.append(len(cache)))
        await cache.start()  # priming may change it: told
        assert sizes == [1]
        b = await s.create(P + "ns/b", b"b")
        await cache.wait_for_revision(b.mod_revision, timeout=2)
        updated = await s.update(P + "ns/a", b"a2", None)
        await cache.wait_for_revision(updated.mod_revision, timeout=2)
        gone = await s.delete(P + "ns/a")
        await cache.wait_for_revision(gone.mod_revision, timeout=2)
        assert sizes == [1] and len(cache) == 1  # neither a second object, an update nor a delete of one of two
        gone = await s.delete(P + "ns/b")
        await cache.wait_for_revision(gone.mod_revision, timeout=2)
        again = await s.create(P + "ns/c", b"c")
        await cache.wait_for_revision(again.mod_revision, timeout=2)
        assert sizes == [1, 0, 1]
        await cache.stop()

    run(tmp_path, body)


def test_read_your_writes(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        cache = WatchCache(s, P, CountingDecoder())
        await cache.start()
        kv = await s.create(P + "ns/new", b"v1")
        await cache.wait_for_revision(kv.mod_revision, timeout=2)
        got = cache.get(P + "ns/new")
        assert got is not None and got.object["resourceVersion"] == str(kv.mod_revision)
        kv2 = await s.update(P + "ns/new", b"v2", kv.mod_revision)
        await cache.wait_for_revision(kv2.mod_revision, timeout=2)
        assert cache.get(P + "ns/new").object["value"] == "v2"  # type: ignore[union-attr]
        gone = await s.delete(P + "ns/new")
        await cache.wait_for_revision(gone.mod_revision, timeout=2)
        assert cache.get(P + "ns/new") is None and cache.list().entries == []
        # a revision written under another prefix: progress from the store confirms we are current
        other = await s.create("/registry/secrets/ns/x", b"s")
        await cache.wait_for_revision(other.mod_revision, timeout=2)
        assert cache.revision == other.mod_revision
        with pytest.raises(TimeoutError):
            await cache.wait_for_revision(other.mod_revision + 5, timeout=0.05)
        await cache.stop()

    run(tmp_path, body)


def test_decoded_objects_kept_only_while_recent_unless_read_again(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Objects read only around their write are let go after RECENT_DECODED newer decodings, so
    the garbage collector does not scan every cached object forever; one read again after that is
    kept for good."""
    monkeypatch.setattr("kubegate.storage.cache.RECENT_DECODED", 3)

    async def body(s: SQLiteStore) -> None:
        for i in range(5):
            await s.create(f"{P}ns/p{i}", str(i).encode())
        dec = CountingDecoder()
        cache = WatchCache(s, P, dec)
        await cache.start()
        entries = cache.list().entries
        first = [e.object for e in entries]
        assert dec.calls == 5
        assert entries[3].object is first[3] and entries[4].object is first[4] and dec.calls == 5
        again = entries[0].object  # let go after three newer decodings: decoded anew, equal
        assert dec.calls == 6 and again == first[0] and again is not first[0]
        for _ in range(10):
            [e.object for e in entries[:2]]
        assert entries[0].object is again and dec.calls == 7  # read again: kept since
        await cache.stop()

    run(tmp_path, body)


def test_watch_fan_out_to_many_watchers(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        await s.create(P + "ns/a", b"0")
        cache = WatchCache(s, P, CountingDecoder())
        await cache.start()
        watchers = [cache.watch() for _ in range(200)]
        await s.create(P + "ns/b", b"1")
        for i in range(10):
            await s.update(P + "ns/a", str(i).encode(), None)
        await s.delete(P + "ns/b")
        results = await asyncio.gather(*(take(w, 12) for w in watchers))
        first = results[0]
        assert [e.type for e in first] == ["ADDED"] + ["MODIFIED"] * 10 + ["DELETED"]
        assert [e.revision for e in first] == list(range(2, 14))
        deleted = first[-1]
        assert deleted.entry.object["value"] == "1" and deleted.entry.object["resourceVersion"] == "13"
        assert deleted.prev is first[0].entry
        assert first[2].prev is first[1].entry
        # every watcher got the very same event objects (one decode shared by all)
        assert all(r == first for r in results)
        assert all(w.revision == 13 for w in watchers)
        for w in watchers:
            w.close()
        await cache.stop()

    run(tmp_path, body)


def test_watch_from_history_prefix_and_initial_events(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        await s.create(P + "a/x", b"0")                     # 1, before priming
        cache = WatchCache(s, P, CountingDecoder())
        await cache.start()
        await s.create(P + "a/y", b"0")                     # 2
        await s.create(P + "b/z", b"0")                     # 3
        await s.update(P + "a/x", b"1", None)               # 4
        await cache.wait_for_revision(4, timeout=2)
        hist = cache.watch(3)
        assert [(e.type, e.entry.key) for e in await take(hist, 2)] == [("ADDED", P + "b/z"), ("MODIFIED", P + "a/x")]
        ns_a = cache.watch(2, prefix=P + "a/")
        assert [e.revision for e in await take(ns_a, 2)] == [2, 4]
        init = cache.watch(prefix=P + "a/", initial_events=True)
        evs = await take(init, 2)
        assert [(e.type, e.entry.key, e.revision) for e in evs] == [("ADDED", P + "a/x", 4), ("ADDED", P + "a/y", 2)]
        await s.create(P + "a/w", b"0")                     # 5
        assert [e.revision for e in await take(init, 1)] == [5]
        # revision 1 predates what the cache has seen: too old
        with pytest.raises(CompactedError):
            cache.watch(1)
        await cache.stop()

    run(tmp_path, body)


def test_window_bounds_history_and_drops_lagging_watchers(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        cache = WatchCache(s, P, CountingDecoder(), window=5)
        await cache.start()
        slow = cache.watch()
        for i in range(10):
            await s.create(f"{P}k{i}", b"v")
        await cache.wait_for_revision(10, timeout=2)
        with pytest.raises(CompactedError) as e:
            cache.watch(5)
        assert e.value.compact_revision == 5
        assert [ev.revision for ev in await take(cache.watch(6), 5)] == [6, 7, 8, 9, 10]
        with pytest.raises(CompactedError):
            await slow.__anext__()
        await cache.stop()

    run(tmp_path, body)


def test_namespace_list_is_cheap_among_many_keys(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        for ns in range(100):
            for i in range(100):
                await s.create(f"{P}ns{ns:03}/p{i:03}", b"v")
        cache = WatchCache(s, P, CountingDecoder())
        await cache.start()
        t0 = time.perf_counter()
        for _ in range(1000):
            res = cache.list(P + "ns042/")
        elapsed = time.perf_counter() - t0
        assert len(res.entries) == 100 and res.entries[0].key == P + "ns042/p000"
        assert elapsed < 1.0   # ~20 µs each: bisect plus a 100-key slice, not a 10,000-key scan
        await cache.stop()

    run(tmp_path, body)


def test_stop_ends_watchers(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        cache = WatchCache(s, P, CountingDecoder())
        await cache.start()
        w = cache.watch()
        pending = asyncio.ensure_future(w.__anext__())
        await asyncio.sleep(0)
        await cache.stop()
        with pytest.raises(StoreClosedError):
            await asyncio.wait_for(pending, 1)
        with pytest.raises(StoreClosedError):
            cache.watch()

    run(tmp_path, body)


def test_cache_set_creates_one_cache_per_prefix(tmp_path: Path) -> None:
    async def body(s: SQLiteStore) -> None:
        await s.create("/registry/secrets/ns/a", b"v")
        asked: list[str] = []

        def decoder(prefix: str) -> Callable[[KV], Any]:
            asked.append(prefix)
            return CountingDecoder()

        caches = CacheSet(s, decoder)
        c1, c2 = await asyncio.gather(caches.cache("/registry/secrets/"), caches.cache("/registry/secrets/"))
        assert c1 is c2 and asked == ["/registry/secrets/"]
        assert c1.get("/registry/secrets/ns/a") is not None
        pods = await caches.cache(P)
        assert pods is not c1 and pods.list().entries == []
        assert len(caches.started()) == 2
        await caches.close()
        with pytest.raises(StoreClosedError):
            c1.watch()

    run(tmp_path, body)
