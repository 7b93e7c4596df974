"""The garbage collector (upstream pkg/controller/garbagecollector), following every served kind.

A graph of ownerReferences is kept from the watch caches. An object whose owners are all gone is
deleted (background); a gone owner is dropped from an object that still has a live one. An owner
deleted with propagation Foreground carries the `foregroundDeletion` finalizer: its dependents
are deleted first and the finalizer is removed once no dependent with `blockOwnerDeletion` is
left. An owner deleted with propagation Orphan carries the `orphan` finalizer: its dependents lose
their reference to it, then the finalizer is removed. Absence of an owner is confirmed at the
store's current revision (upstream's live GET) before anything is deleted.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubegate.api import errors
from kubegate.api.registry import ResourceRegistry
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass
class Node:
    plural: str
    namespace: str | None
    name: str
    owners: tuple[dict[str, Any], ...]


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def _deleting_with(obj: dict[str, Any], finalizer: str) -> bool:
    m = obj["metadata"]
    return bool(m.get("deletionTimestamp")) and finalizer in (m.get("finalizers") or ())


def without_owners(obj: dict[str, Any], uids: set[str]) -> dict[str, Any]:
    refs = [r for r in obj["metadata"].get("ownerReferences") or () if r.get("uid") not in uids]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)
    return obj


def without_finalizer(obj: dict[str, Any], finalizer: str) -> dict[str, Any]:
    fins = [f for f in obj["metadata"].get("finalizers") or () if f != finalizer]
    if fins:
        obj["metadata"]["finalizers"] = fins
    else:
        obj["metadata"].pop("finalizers", None)
    return obj


class GarbageCollector:
    def __init__(self, client: ControllerClient, plurals: list[str]) -> None:
        self.client = client
        self.plurals = plurals
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}
        self.kinds: dict[tuple[str, str], ResourceRegistry] = {}
        for plural in plurals:
            r = client.registry(plural).resource
            self.kinds.setdefault((r.group, r.kind), client.registry(plural))
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue("garbage-collector")
        self.informers = [Informer(client.registry(p).cache, self._handler(p)) for p in plurals]

    # -- the graph ---------------------------------------------------------------------------

    def _handler(self, plural: str) -> Any:
        def handle(typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
            if obj is not None:
                self._observe(plural, typ, obj)
        return handle

    def _observe(self, plural: str, typ: str, obj: dict[str, Any]) -> None:
        m = obj["metadata"]
        uid = m.get("uid") or ""
        previous = self.nodes.pop(uid, None)
        for ref in previous.owners if previous else ():
            deps = self.dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self.dependents[ref.get("uid", "")]
        if typ == "DELETED":
            for dep in self.dependents.get(uid, ()):
                self.queue.add(("delete", dep))  # may be dangling now
            for ref in previous.owners if previous else ():
                self.queue.add(("delete", ref.get("uid", "")))  # a foreground owner may be unblocked
            return
        owners = tuple(m.get("ownerReferences") or ())
        self.nodes[uid] = Node(plural, m.get("namespace"), m["name"], owners)
        for ref in owners:
            self.dependents.setdefault(ref.get("uid", ""), set()).add(uid)
            self.queue.add(("delete", ref.get("uid", "")))  # a foreground owner re-checks its blockers
        if owners:
            self.queue.add(("delete", uid))
        if _deleting_with(obj, FOREGROUND):
            self.queue.add(("delete", uid))
        if _deleting_with(obj, ORPHAN):
            self.queue.add(("orphan", uid))

    def _live(self, uid: str) -> dict[str, Any] | None:
        node = self.nodes.get(uid)
        if node is None:
            return None
        obj = self.client.cached(node.plural, node.namespace, node.name)
        return obj if obj is not None and obj["metadata"].get("uid") == uid else None

    async def _owner(self, ref: dict[str, Any], namespace: str | None) -> dict[str, Any] | None:
        """The live owner a reference names, or None when it is absent (confirmed at the latest revision)."""
        reg = self.kinds[(_group(ref.get("apiVersion", "")), ref.get("kind", ""))]
        ns = namespace if reg.resource.namespaced else None
        for attempt in (0, 1):
            if attempt:
                await reg.cache.wait_for_revision(await reg.store.current_revision())
            d = reg.get_cached(ns, ref.get("name", ""))
            if d is not None and d.obj["metadata"].get("uid") == ref.get("uid"):
                return d.obj
        return None

    # -- work --------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.client.require(*self.plurals)
        await run_informers(self.informers, lambda: self.queue.drain(self.sync))

    async def sync(self, key: tuple[str, str]) -> bool:
        action, uid = key
        obj = self._live(uid)
        if obj is None:
            return True
        if action == "orphan":
            return await self._orphan_dependents(uid, obj)
        if obj["metadata"].get("deletionTimestamp"):
            if _deleting_with(obj, FOREGROUND):
                return await self._delete_dependents(uid, obj)
            return True
        return await self._attempt_to_delete(uid, obj)

    async def _attempt_to_delete(self, uid: str, obj: dict[str, Any]) -> bool:
        m = obj["metadata"]
        refs = m.get("ownerReferences") or []
        if not refs:
            return True
        node = self.nodes[uid]
        dangling: set[str] = set()
        waiting = solid = 0
        for ref in refs:
            if (_group(ref.get("apiVersion", "")), ref.get("kind", "")) not in self.kinds:
                solid += 1  # a kind kubegate does not serve: never treated as gone
                continue
            owner = await self._owner(ref, m.get("namespace"))
            if owner is None:
                dangling.add(ref.get("uid", ""))
            elif _deleting_with(owner, FOREGROUND):
                waiting += 1
            else:
                solid += 1
        if solid:
            if dangling:
                await self._update(node, lambda cur: without_owners(cur, dangling))
            return True
        # No live owner left: delete, in the foreground when an owner waits on this object's own
        # dependents (upstream avoids the deadlock the same way).
        policy = "Foreground" if waiting and self.dependents.get(uid) else "Background"
        if ORPHAN in (m.get("finalizers") or ()):
            policy = "Orphan"
        try:
            await self.client.delete(node.plural, node.namespace, node.name,
                                     {"propagationPolicy": policy, "preconditions": {"uid": uid}})
        except errors.StatusError as e:
            if e.code not in (404, 409):
                raise
        return True

    async def _delete_dependents(self, uid: str, owner: dict[str, Any]) -> bool:
        blocking = 0
        for dep_uid in list(self.dependents.get(uid, ())):
            dep = self._live(dep_uid)
            if dep is None:
                continue
            ref = next((r for r in dep["metadata"].get("ownerReferences") or () if r.get("uid") == uid), None)
            if ref is not None and ref.get("blockOwnerDeletion"):
                blocking += 1
            if not dep["metadata"].get("deletionTimestamp"):
                self.queue.add(("delete", dep_uid))
        if not blocking:
            await self._update(self.nodes[uid], lambda cur: without_finalizer(cur, FOREGROUND))
        return True

    async def _orphan_dependents(self, uid: str, owner: dict[str, Any]) -> bool:
        if not _deleting_with(owner, ORPHAN):
            return True
        for dep_uid in list(self.dependents.get(uid, ())):
            node = self.nodes.get(dep_uid)
            if node is not None:
                await self._update(node, lambda cur: without_owners(cur, {uid}))
        await self._update(self.nodes[uid], lambda cur: without_finalizer(cur, ORPHAN))
        return True

    async def _update(self, node: Node, mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        try:
            await self.client.update(node.plural, node.namespace, node.name, mutate, verb="patch")
        except errors.StatusError as e:
            if e.code != 404:
                raise
