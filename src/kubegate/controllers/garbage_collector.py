"""The garbage collector (upstream pkg/controller/garbagecollector), following every served kind.

A graph of ownerReferences is kept from the watch caches. An object whose owners are all gone is
deleted (background); a gone owner is dropped from an object that still has a live one, and so is
an owner waiting on its dependents (deleted with propagation Foreground), so that owner is not held
by an object that outlives it. Such an owner carries the `foregroundDeletion` finalizer: all its
dependents are deleted, and the finalizer is removed once no dependent with `blockOwnerDeletion`
is left; a dependent with blockOwnerDeletion false is deleted without holding it. A dependent that
itself has dependents is deleted in the foreground too, and when one of those is also waiting on
its own dependents, its blocking references are first unblocked (blockOwnerDeletion=false), as
upstream breaks such cycles. An owner deleted with propagation Orphan carries the `orphan`
finalizer: its dependents lose their reference to it, then the finalizer is removed.

An owner is looked up in its dependent's namespace: a reference to an object of another namespace
names an absent owner, and the dependent gets upstream's OwnerRefInvalidNamespace warning event. A
cluster-scoped object naming a namespaced owner is left alone. Absence of an owner is confirmed at
the store's current revision (upstream's live GET) before anything is deleted.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubegate.api import errors
from kubegate.api.registry import ResourceRegistry
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.events import WARNING, record
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
COMPONENT = "garbage-collector-controller"


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


def unblocked(obj: dict[str, Any]) -> dict[str, Any]:
    """unblockOwnerReferences: every blocking owner reference set to blockOwnerDeletion false."""
    refs = obj["metadata"].get("ownerReferences") or []
    obj["metadata"]["ownerReferences"] = [dict(r, blockOwnerDeletion=False) if r.get("blockOwnerDeletion") else r
                                          for r in refs]
    return obj


def invalid_namespace_message(ref: dict[str, Any], namespace: str) -> str:
    """reportInvalidNamespaceOwnerRef's message (objectReference.String of the owner, in the
    dependent's namespace)."""
    return (f"ownerRef [{ref.get('apiVersion', '')}/{ref.get('kind', '')}, namespace: {namespace}, "
            f"name: {ref.get('name', '')}, uid: {ref.get('uid', '')}] does not exist in namespace \"{namespace}\"")


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
        self.invalid: dict[str, set[str]] = {}  # dependent uid -> owner uids of another namespace, to report
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
        node = self.nodes[uid] = Node(plural, m.get("namespace"), m["name"], owners)
        known = {r.get("uid") for r in previous.owners} if previous else set()
        for ref in owners:
            self.dependents.setdefault(ref.get("uid", ""), set()).add(uid)
            self.queue.add(("delete", ref.get("uid", "")))  # a foreground owner re-checks its blockers
            owner = self.nodes.get(ref.get("uid", ""))
            if ref.get("uid") not in known and owner is not None:
                self._check_namespace(node, uid, owner, ref.get("uid", ""))
        if previous is None and m.get("namespace"):
            for dep in self.dependents.get(uid, ()):  # dependents seen before their owner
                if dep in self.nodes:
                    self._check_namespace(self.nodes[dep], dep, node, uid)
        if owners:
            self.queue.add(("delete", uid))
        if _deleting_with(obj, FOREGROUND):
            self.queue.add(("delete", uid))
        if _deleting_with(obj, ORPHAN):
            self.queue.add(("orphan", uid))

    def _check_namespace(self, dep: Node, dep_uid: str, owner: Node, owner_uid: str) -> None:
        """A namespaced owner observed in another namespace than its dependent: reported once per
        new reference (the dependent is then treated as having no such owner)."""
        if owner.namespace and owner.namespace != dep.namespace:
            self.invalid.setdefault(dep_uid, set()).add(owner_uid)
            self.queue.add(("report", dep_uid))

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
        if action == "report":
            return await self._report_invalid_namespace(uid, obj)
        if obj["metadata"].get("deletionTimestamp"):
            if _deleting_with(obj, FOREGROUND):
                return await self._delete_dependents(uid, obj)
            return True
        return await self._attempt_to_delete(uid, obj)

    async def _attempt_to_delete(self, uid: str, obj: dict[str, Any]) -> bool:
        """attemptToDeleteItem for an object not being deleted."""
        m = obj["metadata"]
        refs = m.get("ownerReferences") or []
        if not refs:
            return True
        node = self.nodes[uid]
        dangling: set[str] = set()
        waiting: set[str] = set()
        solid = 0
        for ref in refs:
            reg = self.kinds.get((_group(ref.get("apiVersion", "")), ref.get("kind", "")))
            if reg is None:
                solid += 1  # a kind kubegate does not serve: never treated as gone
                continue
            if not m.get("namespace") and reg.resource.namespaced:
                return True  # a cluster-scoped object cannot have a namespaced owner; retrying cannot help
            owner = await self._owner(ref, m.get("namespace"))
            if owner is None:
                dangling.add(ref.get("uid", ""))
            elif _deleting_with(owner, FOREGROUND):
                waiting.add(ref.get("uid", ""))
            else:
                solid += 1
        if solid:
            # Still owned: drop the gone owners and those waiting on their dependents, which this
            # object would otherwise hold.
            if dangling or waiting:
                await self._update(node, lambda cur: without_owners(cur, dangling | waiting))
            return True
        if waiting and self.dependents.get(uid):
            # An owner waits on this object, which has dependents of its own: delete it in the
            # foreground too, unblocking its references first when a dependent also waits (a cycle).
            if any((dep := self._live(d)) is not None and _deleting_with(dep, FOREGROUND)
                   for d in self.dependents[uid]):
                await self._update(node, unblocked)
            policy = "Foreground"
        elif ORPHAN in (m.get("finalizers") or ()):
            policy = "Orphan"
        elif FOREGROUND in (m.get("finalizers") or ()):
            policy = "Foreground"
        else:
            policy = "Background"
        try:
            await self.client.delete(node.plural, node.namespace, node.name,
                                     {"propagationPolicy": policy, "preconditions": {"uid": uid}})
        except errors.StatusError as e:
            if e.code not in (404, 409):
                raise
        return True

    async def _delete_dependents(self, uid: str, owner: dict[str, Any]) -> bool:
        """processDeletingDependentsItem: the finalizer goes once no dependent blocks the owner."""
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

    async def _report_invalid_namespace(self, uid: str, obj: dict[str, Any]) -> bool:
        namespace = obj["metadata"].get("namespace") or ""
        for owner_uid in sorted(self.invalid.pop(uid, ())):
            ref = next((r for r in obj["metadata"].get("ownerReferences") or () if r.get("uid") == owner_uid), None)
            if ref is not None:
                subject = copy.deepcopy(obj)
                subject["metadata"].pop("resourceVersion", None)  # upstream's reference names no version
                await record(self.client, subject, WARNING, "OwnerRefInvalidNamespace",
                             invalid_namespace_message(ref, namespace), COMPONENT)
        self.queue.add(("delete", uid))
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
