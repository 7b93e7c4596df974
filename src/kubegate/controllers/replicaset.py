"""The ReplicaSet controller (upstream pkg/controller/replicaset): keeps `spec.replicas` pods
stamped from the template, named `<replicaset>-<5 random>`, each with the ReplicaSet as its
controller ownerReference; adopts orphan pods its selector matches and releases owned pods it no
longer matches; reports status. There is no kubelet: pods stay Pending, so none is ever ready.
Its pods pass admission like any request: a refused create is a FailedCreate event on the
ReplicaSet and its ReplicaFailure condition, and the ReplicaSet is retried with a growing delay."""
from __future__ import annotations

import copy
from typing import Any

from kubegate.api import errors
from kubegate.api.objects import now_rfc3339
from kubegate.api.selectors import SelectorError, label_selector_from_object
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.events import WARNING, has_cause, record
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer

_TERMINAL = ("Succeeded", "Failed")
COMPONENT = "replicaset-controller"
REPLICA_FAILURE = "ReplicaFailure"
# Retry delays of a ReplicaSet whose pods cannot be created or deleted (upstream's rate limiter
# backs off exponentially, so a refused template does not flood the namespace with events).
_BACKOFF_BASE = 1.0
_BACKOFF_MAX = 300.0

Failure = tuple[str, str]  # (reason, message) of the ReplicaFailure condition


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or () if r.get("controller")), None)


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    """The controller reference an owner writes into what it creates (upstream NewControllerRef)."""
    m = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": m["name"], "uid": m["uid"],
            "controller": True, "blockOwnerDeletion": True}


def is_active(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") not in _TERMINAL and not pod["metadata"].get("deletionTimestamp")


def _is_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def pod_from_template(rs: dict[str, Any]) -> dict[str, Any]:
    """Upstream GetPodFromTemplate: labels, annotations, finalizers and spec of the template."""
    template = (rs.get("spec") or {}).get("template") or {}
    tm = template.get("metadata") or {}
    m: dict[str, Any] = {"generateName": rs["metadata"]["name"] + "-", "ownerReferences": [owner_ref(rs)]}
    for key in ("labels", "annotations", "finalizers"):
        if tm.get(key):
            m[key] = copy.deepcopy(tm[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": copy.deepcopy(template.get("spec") or {})}


def deletion_order(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods to delete first (upstream ActivePodsWithRanks, simplified): unscheduled before
    scheduled, pending before running, not ready before ready, newer before older."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}
    def key(p: dict[str, Any]) -> tuple[int, int, int]:
        return (1 if (p.get("spec") or {}).get("nodeName") else 0,
                phase_rank.get((p.get("status") or {}).get("phase", ""), 0),
                1 if _is_ready(p) else 0)
    newest_first = sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]),
                          reverse=True)
    return sorted(newest_first, key=key)


def replicaset_status(rs: dict[str, Any], pods: list[dict[str, Any]], failure: Failure | None = None,
                      now: str = "") -> dict[str, Any]:
    """Upstream calculateStatus; zero counts other than `replicas` are omitted (omitempty). A failed
    create or delete adds the ReplicaFailure condition once; a clean sync removes it."""
    template_labels = ((((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
    fully = sum(1 for p in pods if template_labels.items() <= (p["metadata"].get("labels") or {}).items())
    ready = sum(1 for p in pods if _is_ready(p))
    status: dict[str, Any] = {"replicas": len(pods)}
    for key, value in (("fullyLabeledReplicas", fully), ("readyReplicas", ready), ("availableReplicas", ready)):
        if value:
            status[key] = value
    status["observedGeneration"] = rs["metadata"].get("generation", 0)
    conditions = list((rs.get("status") or {}).get("conditions") or ())
    current = next((c for c in conditions if c.get("type") == REPLICA_FAILURE), None)
    if failure is not None and current is None:
        conditions.append({"type": REPLICA_FAILURE, "status": "True", "lastTransitionTime": now,
                           "reason": failure[0], "message": failure[1]})
    elif failure is None and current is not None:
        conditions.remove(current)
    if conditions:
        status["conditions"] = conditions
    return status


class ReplicaSetController:
    def __init__(self, client: ControllerClient) -> None:
        self.client = client
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue(COMPONENT)
        self.failures: dict[tuple[str, str], int] = {}  # consecutive failed syncs, for the backoff
        self.informers = [Informer(client.registry("replicasets").cache, self._on_replicaset),
                          Informer(client.registry("pods").cache, self._on_pod)]

    def _on_replicaset(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "DELETED" and obj is not None:
            self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _on_pod(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if obj is None:
            return
        ns = obj["metadata"]["namespace"]
        for pod in (obj, old):
            ref = controller_ref(pod) if pod is not None else None
            if ref is not None and ref.get("kind") == "ReplicaSet":
                self.queue.add((ns, ref["name"]))
        if typ != "DELETED" and controller_ref(obj) is None and obj["metadata"].get("labels"):
            for rs in self.client.cached_list("replicasets", ns):  # an orphan some ReplicaSet may adopt
                self.queue.add((ns, rs["metadata"]["name"]))

    async def run(self) -> None:
        await self.client.require("replicasets", "pods")
        await run_informers(self.informers, lambda: self.queue.drain(self.sync))

    async def sync(self, key: tuple[str, str]) -> bool:
        ns, name = key
        rs = self.client.cached("replicasets", ns, name)
        if rs is None:
            self.failures.pop(key, None)
            return True
        try:
            selector = label_selector_from_object((rs.get("spec") or {}).get("selector"))
        except SelectorError:
            return True  # validation refuses such selectors; nothing to manage
        uid = rs["metadata"]["uid"]
        owned: list[dict[str, Any]] = []
        for pod in self.client.cached_list("pods", ns):
            if not is_active(pod):
                continue
            ref = controller_ref(pod)
            matches = selector.matches(pod["metadata"].get("labels") or {})
            if ref is not None and ref.get("uid") == uid:
                if matches or rs["metadata"].get("deletionTimestamp"):
                    owned.append(pod)
                else:
                    await self._release(pod, uid)
            elif ref is None and matches and not rs["metadata"].get("deletionTimestamp"):
                owned.append(await self._adopt(pod, rs))
        failure: Failure | None = None
        if not rs["metadata"].get("deletionTimestamp"):
            owned, failure = await self._manage(rs, owned)
        status = replicaset_status(rs, owned, failure, now_rfc3339())
        if status != (rs.get("status") or {}):
            await self.client.update_status("replicasets", ns, name, status)
        if failure is None:
            self.failures.pop(key, None)
        else:
            n = self.failures[key] = self.failures.get(key, 0) + 1
            self.queue.add_after(key, min(_BACKOFF_BASE * 2 ** (n - 1), _BACKOFF_MAX))
        return True

    async def _manage(self, rs: dict[str, Any], owned: list[dict[str, Any]]
                      ) -> tuple[list[dict[str, Any]], Failure | None]:
        """Creates or deletes pods toward spec.replicas; the first refused write ends the pass (as
        upstream's slow-start batches stop) and is reported as an event and the failure."""
        ns = rs["metadata"]["namespace"]
        want = int((rs.get("spec") or {}).get("replicas", 1))
        diff = want - len(owned)
        if diff > 0:
            for _ in range(diff):
                try:
                    created = await self.client.create("pods", pod_from_template(rs), ns)
                except errors.StatusError as e:
                    if e.code == 409:  # a generated name collided: the next sync tries again
                        break
                    if has_cause(e, "NamespaceTerminating"):  # the namespace controller is emptying it
                        return owned, None
                    await record(self.client, rs, WARNING, "FailedCreate", f"Error creating: {e.message}", COMPONENT)
                    return owned, ("FailedCreate", e.message)
                owned.append(created.obj)
        elif diff < 0:
            for pod in deletion_order(owned)[:-diff]:
                try:
                    await self.client.delete("pods", ns, pod["metadata"]["name"],
                                             {"preconditions": {"uid": pod["metadata"]["uid"]}})
                except errors.StatusError as e:
                    if e.code not in (404, 409):
                        await record(self.client, rs, WARNING, "FailedDelete", f"Error deleting: {e.message}",
                                     COMPONENT)
                        return owned, ("FailedDelete", e.message)
                owned.remove(pod)
        return owned, None

    async def _adopt(self, pod: dict[str, Any], rs: dict[str, Any]) -> dict[str, Any]:
        def adopt(cur: dict[str, Any]) -> dict[str, Any]:
            if controller_ref(cur) is None:
                cur["metadata"]["ownerReferences"] = list(cur["metadata"].get("ownerReferences") or []) + [owner_ref(rs)]
            return cur
        return (await self.client.update("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], adopt,
                                         verb="patch")).obj

    async def _release(self, pod: dict[str, Any], uid: str) -> None:
        def release(cur: dict[str, Any]) -> dict[str, Any]:
            refs = [r for r in cur["metadata"].get("ownerReferences") or () if r.get("uid") != uid]
            if refs:
                cur["metadata"]["ownerReferences"] = refs
            else:
                cur["metadata"].pop("ownerReferences", None)
            return cur
        try:
            await self.client.update("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], release,
                                     verb="patch")
        except errors.StatusError as e:
            if e.code != 404:
                raise
