"""The namespace controller (upstream pkg/controller/namespace): empties a terminating namespace
under its own identity (`system:serviceaccount:kube-system:namespace-controller`, so the deletes
pass RBAC and admission as upstream's do), reports progress in the five deletion conditions, then
removes its `kubernetes` finalizer through /finalize so the namespace itself goes away."""
from __future__ import annotations

from typing import Any

from kubegate.api import errors
from kubegate.api.objects import now_rfc3339
from kubegate.api.registry import ResourceRegistry
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer

FINALIZER = "kubernetes"

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"

# namespaced_resources_deleter's conditionTypes with their okReasons and okMessages. Discovery and
# group-version parsing cannot fail in-process, so those two always report success.
_OK: dict[str, tuple[str, str]] = {
    DISCOVERY_FAILURE: ("ResourcesDiscovered", "All resources successfully discovered"),
    GV_PARSING_FAILURE: ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def gvr_string(r: Any) -> str:
    """schema.GroupVersionResource.String()."""
    return f"{r.group}/{r.version}, Resource={r.plural}"


def failing_conditions(remaining: dict[str, int], finalizers: dict[str, int],
                       delete_errors: list[str]) -> dict[str, tuple[str, str]]:
    """The conditions that report trouble, by type: (reason, message) as upstream words them.
    `remaining` counts what is left by "<resource>.<group>"."""
    out: dict[str, tuple[str, str]] = {}
    if remaining:
        parts = sorted(f"{gr} has {n} resource instances" for gr, n in remaining.items() if n)
        out[CONTENT_REMAINING] = ("SomeResourcesRemain", f"Some resources are remaining: {', '.join(parts)}")
    if finalizers:
        parts = sorted(f"{f} in {n} resource instances" for f, n in finalizers.items() if n)
        out[FINALIZERS_REMAINING] = ("SomeFinalizersRemain",
                                     f"Some content in the namespace has finalizers remaining: {', '.join(parts)}")
    if delete_errors:
        out[CONTENT_FAILURE] = ("ContentDeletionFailed", f"Failed to delete all resource types, {len(delete_errors)} "
                                                         f"remaining: {', '.join(sorted(delete_errors))}")
    return out


def updated_conditions(current: list[dict[str, Any]], failing: dict[str, tuple[str, str]],
                       now: str) -> list[dict[str, Any]]:
    """updateConditions: each of the five types takes its failing or ok variant; a new type is
    appended, a changed one keeps its place and its lastTransitionTime unless the status flipped."""
    conditions = [dict(c) for c in current]
    for ctype, ok in _OK.items():
        status, (reason, message) = ("True", failing[ctype]) if ctype in failing else ("False", ok)
        old = next((c for c in conditions if c.get("type") == ctype), None)
        if old is None:
            conditions.append({"type": ctype, "status": status, "lastTransitionTime": now, "reason": reason,
                               "message": message})
        elif (old.get("status"), old.get("reason"), old.get("message")) != (status, reason, message):
            if old.get("status") != status:
                old["lastTransitionTime"] = now
            old.update(status=status, reason=reason, message=message)
    return conditions


class NamespaceController:
    def __init__(self, client: ControllerClient, namespaced: list[ResourceRegistry]) -> None:
        self.client = client
        self.namespaced = namespaced
        self.queue: WorkQueue[str] = WorkQueue("namespace-controller")
        self.informers = [Informer(client.registry("namespaces").cache, self._on_event)]

    def _on_event(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "DELETED" and obj and obj["metadata"].get("deletionTimestamp"):
            self.queue.add(obj["metadata"]["name"])

    async def run(self) -> None:
        await self.client.require("namespaces")
        await run_informers(self.informers, lambda: self.queue.drain(self.sync))

    async def sync(self, name: str) -> bool:
        """One pass; True when nothing is left to do for this namespace (False polls again)."""
        ns = self.client.cached("namespaces", None, name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return True
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return True  # finalized: the namespace goes once its own metadata finalizers do
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        delete_errors: list[str] = []
        for reg in self.namespaced:
            left, err = await self._delete_content(reg, name, finalizers)
            if left:
                remaining[f"{reg.resource.plural}.{reg.resource.group}"] = left
            if err:
                delete_errors.append(err)
        conditions = updated_conditions((ns.get("status") or {}).get("conditions") or [],
                                        failing_conditions(remaining, finalizers, delete_errors), now_rfc3339())
        if conditions != (ns.get("status") or {}).get("conditions"):
            def write(cur: dict[str, Any]) -> dict[str, Any]:
                cur.setdefault("status", {})["conditions"] = conditions
                return cur
            await self.client.update("namespaces", None, name, write, subresource="status")
        if remaining or delete_errors:
            return False

        def finalize(cur: dict[str, Any]) -> dict[str, Any]:
            spec = cur.setdefault("spec", {})
            spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
            return cur
        await self.client.update("namespaces", None, name, finalize, subresource="finalize")
        return True

    async def _delete_content(self, reg: ResourceRegistry, namespace: str,
                              finalizers: dict[str, int]) -> tuple[int, str]:
        """deleteAllContentForGroupVersionResource: delete every object of one resource (background
        propagation), then count what remains and the finalizers holding it. Returns (remaining,
        error message or "")."""
        left: list[dict[str, Any]] = []
        for obj in self.client.cached_list(reg, namespace):
            m = obj["metadata"]
            if not m.get("deletionTimestamp"):
                try:
                    d, gone = await self.client.delete(reg, namespace, m["name"],
                                                       {"propagationPolicy": "Background"})
                except errors.StatusError as e:
                    if e.code == 404:
                        continue
                    return 0, e.message  # as a failed deletecollection: nothing counted for this resource
                if gone:
                    continue
                obj = d.obj
            left.append(obj)
        held = [f for obj in left for f in obj["metadata"].get("finalizers") or ()]
        for f in held:
            finalizers[f] = finalizers.get(f, 0) + 1
        if left and not held:
            return len(left), (f"unexpected items still remain in namespace: {namespace} for gvr: "
                               f"{gvr_string(reg.resource)}")
        return len(left), ""
