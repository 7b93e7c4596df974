"""A controller work queue (upstream client-go workqueue, simplified): each key is held once,
a failed key comes back after a delay, and `drain` syncs keys until cancelled."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from kubegate.api import errors
from kubegate.server.informer import Informer

K = TypeVar("K")

RETRY_SECONDS = 1.0


class WorkQueue(Generic[K]):
    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(f"kubegate.{name}")
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}

    def add(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, seconds: float) -> None:
        if key in self._queued or key in self._timers:
            return
        self._timers[key] = asyncio.get_running_loop().call_later(seconds, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def drain(self, sync: Callable[[K], Awaitable[bool]]) -> None:
        """Sync keys forever; a key whose sync returns False or fails with an API error is retried."""
        try:
            while True:
                key = await self._queue.get()
                self._queued.discard(key)
                try:
                    done = await sync(key)
                except errors.StatusError as e:
                    self._log.warning("%s: %s", key, e.message)
                    done = False
                if not done:
                    self.add_after(key, RETRY_SECONDS)
        finally:
            for timer in self._timers.values():
                timer.cancel()


async def run_informers(informers: list[Informer], work: Callable[[], Awaitable[None]]) -> None:
    """A controller following several caches: prime them all, then follow them while `work` runs."""
    for inf in informers:
        inf.prime()
    tasks = [asyncio.create_task(inf.run()) for inf in informers]
    worker = asyncio.create_task(work())
    # asyncio.wait, not gather: a cancelled gather leaves a future whose error nobody retrieves.
    try:
        done, _ = await asyncio.wait([*tasks, worker], return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for t in (*tasks, worker):
            t.cancel()
    for t in done:
        if not t.cancelled() and t.exception() is not None:
            logging.getLogger("kubegate.controllers").error("controller stopped", exc_info=t.exception())
