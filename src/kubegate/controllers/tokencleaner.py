"""The token cleaner (upstream pkg/controller/bootstrap/tokencleaner.go): deletes bootstrap-token
Secrets in kube-system once they expire.

It follows the secrets watch cache; a token that has not expired yet is looked at again when it
does (and re-checked then, since the Secret may have changed). Deletion carries a UID precondition
so a Secret re-created under the same name is never removed by mistake.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from kubegate.api import errors
from kubegate.api.registry import ResourceRegistry
from kubegate.authn.bootstrap_token import NAMESPACE, expiration, is_bootstrap_secret
from kubegate.controllers.workqueue import run_informers
from kubegate.server.informer import Informer

log = logging.getLogger("kubegate.tokencleaner")

_RETRY_SECONDS = 1.0


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TokenCleaner:
    def __init__(self, secrets: ResourceRegistry, clock: Callable[[], datetime] = _utcnow) -> None:
        self.secrets = secrets
        self._clock = clock
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.informer = Informer(secrets.cache, self._on_event)

    def _on_event(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ == "DELETED" or obj is None or not is_bootstrap_secret(obj):
            return
        if obj["metadata"].get("namespace") == NAMESPACE:
            self._enqueue(obj["metadata"]["name"])

    def _enqueue(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        if name not in self._queued:  # a workqueue holds each key once
            self._queued.add(name)
            self._queue.put_nowait(name)

    def _enqueue_after(self, name: str, seconds: float) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        self._timers[name] = asyncio.get_running_loop().call_later(seconds, self._enqueue, name)

    async def run(self) -> None:
        try:
            await run_informers([self.informer], self._work)
        finally:
            for timer in self._timers.values():
                timer.cancel()

    async def _work(self) -> None:
        while True:
            name = await self._queue.get()
            self._queued.discard(name)
            try:
                await self.sync(name)
            except errors.StatusError as e:
                log.warning("bootstrap token secret %s/%s: %s", NAMESPACE, name, e.message)
                self._enqueue_after(name, _RETRY_SECONDS)

    async def sync(self, name: str) -> None:
        """One look at one Secret: delete it if expired, else come back when it expires."""
        cached = self.secrets.get_cached(NAMESPACE, name)
        if cached is None or not is_bootstrap_secret(cached.obj):
            return
        secret = cached.obj
        remaining, expired = expiration(secret, self._clock())
        if not expired:
            if remaining > 0:
                self._enqueue_after(name, remaining)
            return
        uid = secret["metadata"].get("uid")
        options = {"preconditions": {"uid": uid}} if uid else {}
        log.info("deleting expired bootstrap token secret %s/%s", NAMESPACE, name)
        try:
            await self.secrets.delete(NAMESPACE, name, options=options)
        except errors.StatusError as e:
            # Gone already, or replaced by another Secret of that name (the UID precondition failed).
            if e.code not in (404, 409):
                raise
