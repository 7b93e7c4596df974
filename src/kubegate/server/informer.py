"""Informers: follow a watch cache and hand every change to in-process consumers (RBAC index,
controllers), tracking the revision they have processed so writers can wait for it."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from kubegate.storage.cache import CacheEvent, WatchCache
from kubegate.storage.interface import CompactedError, StoreClosedError

log = logging.getLogger("kubegate.informer")

Handler = Callable[[str, dict[str, Any] | None, dict[str, Any] | None], None]  # (type, obj, old)


class Informer:
    def __init__(self, cache: WatchCache, handler: Handler) -> None:
        self.cache = cache
        self.handler = handler
        self.revision = 0
        self._changed = asyncio.Event()

    def prime(self) -> None:
        """Deliver the current state synchronously (before the server reports ready)."""
        entries, rev, _ = self.cache.list()
        for e in entries:
            self.handler("ADDED", e.object.obj, None)
        self.revision = rev

    async def run(self) -> None:
        while True:
            try:
                stream = self.cache.watch(self.revision + 1)
            except CompactedError:
                self.prime()  # fell out of the window: resync from the current state
                continue
            try:
                async for ev in stream:
                    self._deliver(ev)
            except CompactedError:
                self.prime()
            except StoreClosedError:
                return
            finally:
                stream.close()

    def _deliver(self, ev: CacheEvent) -> None:
        obj = ev.entry.object.obj
        old = ev.prev.object.obj if ev.prev is not None else None
        try:
            self.handler(ev.type, obj, old)
        except Exception:  # one bad object must not stop the informer
            log.exception("informer handler failed for %s", ev.entry.key)
        self.revision = ev.revision
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, revision: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while self.revision < revision:
                await self._changed.wait()
