"""The namespace controller: empties a terminating namespace, then removes its `kubernetes`
finalizer so the namespace itself goes away (upstream pkg/controller/namespace)."""
from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from kubegate.api import errors
from kubegate.api.registry import ResourceRegistry
from kubegate.server.informer import Informer, run_controller

log = logging.getLogger("kubegate.namespace-controller")

FINALIZER = "kubernetes"


class NamespaceController:
    def __init__(self, namespaces: ResourceRegistry, namespaced: list[ResourceRegistry]) -> None:
        self.namespaces = namespaces
        self.namespaced = namespaced
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.informer = Informer(namespaces.cache, self._on_event)

    def _on_event(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "DELETED" and obj and obj["metadata"].get("deletionTimestamp"):
            self.queue.put_nowait(obj["metadata"]["name"])

    async def run(self) -> None:
        await run_controller(self.informer, self._work)

    async def _work(self) -> None:
        while True:
            name = await self.queue.get()
            try:
                done = await self.sync(name)
            except errors.StatusError as e:
                log.warning("namespace %s: %s", name, e.message)
                done = False
            if not done:
                asyncio.get_running_loop().call_later(1.0, self.queue.put_nowait, name)

    async def sync(self, name: str) -> bool:
        """One pass; True when nothing is left to do for this namespace."""
        ns = self.namespaces.get_cached(None, name)
        if ns is None or not ns.obj["metadata"].get("deletionTimestamp"):
            return True
        remaining = 0
        for reg in self.namespaced:
            entries, _, _ = reg.cache.list(reg.resource.list_prefix(name))
            for e in entries:
                obj = e.object.obj
                if obj["metadata"].get("deletionTimestamp"):
                    remaining += 1
                    continue
                try:
                    _, gone = await reg.delete(name, obj["metadata"]["name"],
                                               options={"propagationPolicy": "Background"})
                except errors.StatusError as err:
                    if err.code != 404:
                        raise
                    continue
                if not gone:
                    remaining += 1
        if remaining:
            return False
        finalizers = (ns.obj.get("spec") or {}).get("finalizers") or []
        if FINALIZER in finalizers:
            new = copy.deepcopy(ns.obj)
            new["spec"]["finalizers"] = [f for f in finalizers if f != FINALIZER]
            await self.namespaces.update(new, namespace=None, name=name, subresource="finalize", old=ns)
        return True
