"""The watch cache: one per resource prefix, serving GET/LIST/WATCH from memory.

It primes itself with a consistent range, then follows one store watch. Every watcher of the
resource reads the same in-memory window of recent events through its own cursor, so fan-out
costs one wake-up per watcher, not a copy per event. A watcher that falls out of the window gets
CompactedError (the API's 410 Gone), exactly like a client resuming from a compacted revision.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

from .interface import (
    KV,
    CompactedError,
    CorruptKV,
    Event,
    Progress,
    Store,
    StoreClosedError,
    WatchStream,
    prefix_end,
)

log = logging.getLogger(__name__)

Decode = Callable[[KV], Any]

_UNSET = object()
_DROPPED = object()  # decoded once, then let go
RECENT_DECODED = 1024


class _Decoder:
    """Decodes entries and decides which decoded objects stay. Decoded objects are many small
    containers that every garbage collection scans again for as long as they live; kept for every
    cached object and every event in the window, they made collections slower (and memory larger)
    the more the store held, though most are read only around their write, by the informers. So a
    first decoding is kept only while among the cache's RECENT_DECODED most recent ones; an object
    read again after it was let go is kept for as long as its entry lives, as before."""

    __slots__ = ("decode", "_recent")

    def __init__(self, decode: Decode) -> None:
        self.decode = decode
        self._recent: deque[Entry] = deque()

    def keep_recent(self, entry: Entry) -> None:
        recent = self._recent
        if len(recent) >= RECENT_DECODED:
            recent.popleft()._obj = _DROPPED
        recent.append(entry)


class Entry:
    """One object version; decoded on first use and shared by its readers (see _Decoder for how
    long)."""

    __slots__ = ("kv", "_decoder", "_obj")

    def __init__(self, kv: KV, decoder: _Decoder) -> None:
        self.kv = kv
        self._decoder = decoder
        self._obj: Any = _UNSET

    @property
    def key(self) -> str:
        return self.kv.key

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def object(self) -> Any:
        obj = self._obj
        if obj is _UNSET or obj is _DROPPED:
            first = obj is _UNSET
            obj = self._obj = self._decoder.decode(self.kv.recover() if isinstance(self.kv, CorruptKV) else self.kv)
            if first:
                self._decoder.keep_recent(self)
        return obj


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """A watch event in API terms. For DELETED, `entry` is the last state stamped with the delete's
    revision (upstream reports a deleted object at that revision); `prev` is the state before."""

    type: Literal["ADDED", "MODIFIED", "DELETED"]
    entry: Entry
    prev: Entry | None

    @property
    def revision(self) -> int:
        return self.entry.revision


class ListResult(NamedTuple):
    entries: list[Entry]
    revision: int
    more: bool


class WatchCache:
    def __init__(self, store: Store, prefix: str, decode: Decode, *, window: int = 10_000, page: int = 10_000) -> None:
        self._store = store
        self._prefix = prefix
        self._decoder = _Decoder(decode)
        self._window_size = window
        self._page = page
        self._entries: dict[str, Entry] = {}
        self._keys: list[str] = []          # sorted, for prefix and continue ranges
        self._revision = 0
        self._window: deque[CacheEvent] = deque()
        self._base_seq = 0                  # sequence number of _window[0]
        self._window_start = 1              # every event with revision >= this is in the window
        self._changed = asyncio.Event()     # set-and-cleared: a broadcast to every waiter
        self._stream: WatchStream | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._emptiness_listeners: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._keys)

    def on_emptiness_change(self, listener: Callable[[], None]) -> None:
        """Calls `listener` whenever the cache goes from empty to holding objects or back (and after a
        relist), before any reader can see the new state."""
        self._emptiness_listeners.append(listener)

    def _emptiness_changed(self) -> None:
        for listener in self._emptiness_listeners:
            listener()

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def revision(self) -> int:
        """The store revision the cached state is current to."""
        return self._revision

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Prime from the store; returns once reads can be served."""
        if self._task is None:
            await self._prime()
            self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        self._stopped = True
        if self._stream is not None:
            self._stream.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._broadcast()

    async def _prime(self) -> None:
        res = await self._store.range(self._prefix, limit=self._page)
        kvs = list(res.kvs)
        while res.more:
            res = await self._store.range(self._prefix, start_after=kvs[-1].key, limit=self._page, revision=res.revision)
            kvs.extend(res.kvs)
        stream = await self._store.watch(self._prefix, res.revision + 1)
        if self._stream is not None:
            self._stream.close()
        self._stream = stream
        self._entries = {kv.key: Entry(kv, self._decoder) for kv in kvs}
        self._keys = [kv.key for kv in kvs]
        # watchers positioned in the old window can no longer be continued: they see CompactedError
        self._base_seq += len(self._window) + 1
        self._window.clear()
        self._window_start = res.revision + 1
        self._revision = res.revision
        self._emptiness_changed()
        self._broadcast()

    async def _follow(self) -> None:
        relist = False
        while not self._stopped:
            try:
                if relist:
                    await self._prime()
                if self._stream is None:
                    return
                async for item in self._stream:
                    if isinstance(item, Progress):
                        self._advance(item.revision)
                    else:
                        self._apply(item)
                return
            except CompactedError:
                log.warning("watch cache %s fell behind compaction; relisting", self._prefix)
                relist = True
            except StoreClosedError:
                self._stopped = True
                self._broadcast()
                return

    # -- applying store events --------------------------------------------------------------------

    def _apply(self, ev: Event) -> None:
        key = ev.kv.key
        prev = self._entries.get(key)
        if ev.type == "PUT":
            entry = Entry(ev.kv, self._decoder)
            if prev is None:
                bisect.insort(self._keys, key)
                if len(self._keys) == 1:
                    self._emptiness_changed()
            self._entries[key] = entry
            self._record(CacheEvent("ADDED" if prev is None else "MODIFIED", entry, prev))
        else:
            last = ev.prev_kv or (prev.kv if prev is not None else None)
            if prev is not None:
                del self._entries[key]
                del self._keys[bisect.bisect_left(self._keys, key)]
                if not self._keys:
                    self._emptiness_changed()
            if last is not None:
                gone = replace(last, mod_revision=ev.revision)  # keeps a CorruptKV corrupt
                self._record(CacheEvent("DELETED", Entry(gone, self._decoder), prev))
        self._advance(ev.revision)

    def _record(self, ev: CacheEvent) -> None:
        self._window.append(ev)
        while len(self._window) > self._window_size:
            old = self._window.popleft()
            self._base_seq += 1
            self._window_start = old.revision + 1

    def _advance(self, revision: int) -> None:
        if revision > self._revision:
            self._revision = revision
        self._broadcast()

    def _broadcast(self) -> None:
        self._changed.set()
        self._changed.clear()

    # -- reads ------------------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def _span(self, prefix: str, start_after: str | None) -> tuple[int, int]:
        lo = bisect.bisect_left(self._keys, prefix)
        if start_after is not None and start_after >= prefix:
            lo = bisect.bisect_right(self._keys, start_after)
        end = prefix_end(prefix)
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, end)
        return lo, max(lo, hi)

    def list(self, prefix: str = "", *, start_after: str | None = None, limit: int = 0) -> ListResult:
        """Entries under `prefix` (default: the whole resource) after `start_after`, in key order."""
        if not self._keys:  # admission looks up limit ranges, quotas, webhooks and policies on every write
            return ListResult([], self._revision, False)
        lo, hi = self._span(prefix or self._prefix, start_after)
        stop = hi if limit <= 0 else min(hi, lo + limit)
        entries = [self._entries[k] for k in self._keys[lo:stop]]
        return ListResult(entries, self._revision, stop < hi)

    def count(self, prefix: str = "", *, start_after: str | None = None) -> int:
        """How many keys `list` would walk, ignoring limit (for remainingItemCount)."""
        lo, hi = self._span(prefix or self._prefix, start_after)
        return hi - lo

    async def wait_for_revision(self, revision: int, timeout: float | None = None) -> None:
        """Return once the cache reflects `revision` (read-your-writes); TimeoutError otherwise."""
        if self._revision >= revision:
            return
        if self._stream is not None:
            # the revision may belong to another prefix: ask the store to confirm we are caught up
            self._stream.request_progress()
        async with asyncio.timeout(timeout):
            while self._revision < revision:
                if self._stopped:
                    raise StoreClosedError()
                await self._changed.wait()

    def watch(self, start_revision: int = 0, *, prefix: str = "", initial_events: bool = False) -> CacheWatcher:
        """Events with revision >= start_revision (0: from now) under `prefix`. With `initial_events`,
        first an ADDED for every current object, then changes after the cache's revision."""
        if self._stopped:
            raise StoreClosedError()
        prefix = prefix or self._prefix
        initial: deque[CacheEvent] = deque()
        if initial_events:
            lo, hi = self._span(prefix, None)
            initial.extend(CacheEvent("ADDED", self._entries[k], None) for k in self._keys[lo:hi])
            start_revision = self._revision + 1
        elif start_revision == 0:
            start_revision = self._revision + 1
        if start_revision < self._window_start:
            raise CompactedError(self._window_start - 1)
        index = bisect.bisect_left(self._window, start_revision, key=lambda e: e.revision)
        return CacheWatcher(self, prefix, self._base_seq + index, start_revision, initial)


class CacheWatcher:
    """One client's cursor into a WatchCache's event window."""

    def __init__(self, cache: WatchCache, prefix: str, next_seq: int, min_revision: int, initial: deque[CacheEvent]) -> None:
        self._cache = cache
        self._prefix = prefix
        self._next_seq = next_seq
        self._min_revision = min_revision
        self._initial = initial
        self._closed = False

    def __aiter__(self) -> CacheWatcher:
        return self

    async def __anext__(self) -> CacheEvent:
        cache = self._cache
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._initial:
                return self._initial.popleft()
            i = self._next_seq - cache._base_seq
            if i < 0:
                self._closed = True
                raise CompactedError(cache._window_start - 1)
            if i < len(cache._window):
                ev = cache._window[i]
                self._next_seq += 1
                if ev.revision >= self._min_revision and ev.entry.key.startswith(self._prefix):
                    return ev
                continue
            if cache._stopped:
                raise StoreClosedError()
            await cache._changed.wait()

    @property
    def revision(self) -> int:
        """Every matching event up to this revision has been delivered (for bookmarks)."""
        cache = self._cache
        i = self._next_seq - cache._base_seq
        if self._initial or i < 0:
            return self._min_revision - 1
        if i < len(cache._window):
            return max(self._min_revision, cache._window[i].revision) - 1
        return max(cache.revision, self._min_revision - 1)

    def close(self) -> None:
        self._closed = True
        self._cache._broadcast()   # wake it if it is waiting; others just re-check


class CacheSet:
    """Watch caches created on first use, one per key prefix."""

    def __init__(self, store: Store, decoder: Callable[[str], Decode], *, window: int = 10_000) -> None:
        self._store = store
        self._decoder = decoder
        self._window = window
        self._caches: dict[str, asyncio.Task[WatchCache]] = {}

    async def cache(self, prefix: str) -> WatchCache:
        """The started cache for `prefix`; concurrent first callers share one priming."""
        task = self._caches.get(prefix)
        if task is None:
            task = asyncio.ensure_future(self._start(prefix))
            self._caches[prefix] = task
        try:
            return await asyncio.shield(task)
        except Exception:
            if self._caches.get(prefix) is task:
                del self._caches[prefix]
            raise

    async def _start(self, prefix: str) -> WatchCache:
        cache = WatchCache(self._store, prefix, self._decoder(prefix), window=self._window)
        await cache.start()
        return cache

    def started(self) -> list[WatchCache]:
        return [t.result() for t in self._caches.values() if t.done() and not t.cancelled() and t.exception() is None]

    async def close(self) -> None:
        tasks = list(self._caches.values())
        self._caches.clear()
        for t in tasks:
            if not t.done():
                t.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, WatchCache):
                await result.stop()
