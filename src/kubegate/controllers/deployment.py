"""The Deployment controller (upstream pkg/controller/deployment), RollingUpdate and Recreate.

The ReplicaSet for the current template is `<deployment>-<pod-template-hash>`, the hash also
labelling the ReplicaSet, its selector and its pods. A template change creates a new ReplicaSet
with the next `deployment.kubernetes.io/revision` and rolls over as upstream's rolling update
does: the new one grows within maxSurge, old ones shrink while maxUnavailable allows. Pods never
become available here (no kubelet), so a rollout proceeds exactly as far as upstream's arithmetic
allows with unavailable pods, and the Available condition stays False. Old ReplicaSets beyond
revisionHistoryLimit are deleted once scaled to zero.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import orjson

from kubegate.api import errors
from kubegate.api.objects import now_rfc3339
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.replicaset import controller_ref, owner_ref
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations a ReplicaSet does not inherit (upstream skipCopyAnnotation).
_NOT_COPIED = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, "deployment.kubernetes.io/revision-history",
               DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"}
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """FNV-32a over the template (canonical JSON here; upstream hashes its Go struct dump), plus the
    collision count, written as upstream's rand.SafeEncodeString of the decimal value."""
    h = 0x811C9DC5
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(h))


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
        if not labels:
            t["metadata"].pop("labels")
    return t


def scaled(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    exact = int(text[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def fenceposts(d: dict[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as upstream ResolveFenceposts and MaxUnavailable resolve them."""
    spec = d.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, 0
    ru = strategy.get("rollingUpdate") or {}
    surge = scaled(ru.get("maxSurge", "25%"), desired, True)
    unavailable = scaled(ru.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, desired)


def _replicas(rs: dict[str, Any]) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def _status_int(obj: dict[str, Any], key: str) -> int:
    return int((obj.get("status") or {}).get(key, 0))


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def set_condition(status: dict[str, Any], ctype: str, cstatus: str, reason: str, message: str, now: str) -> None:
    """Upstream SetDeploymentCondition: unchanged status and reason keep the condition; otherwise it
    is replaced (keeping lastTransitionTime when only the reason changed) and moves to the end."""
    conditions = status.get("conditions") or []
    current = next((c for c in conditions if c["type"] == ctype), None)
    if current is not None and current["status"] == cstatus and current["reason"] == reason:
        return
    transition = current["lastTransitionTime"] if current is not None and current["status"] == cstatus else now
    cond = {"type": ctype, "status": cstatus, "lastUpdateTime": now, "lastTransitionTime": transition,
            "reason": reason, "message": message}
    status["conditions"] = [c for c in conditions if c["type"] != ctype] + [cond]


def new_rs_replicas(d: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any]) -> int:
    """Upstream NewRSNewReplicas."""
    desired = int((d.get("spec") or {}).get("replicas", 1))
    if ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
        return desired
    surge, _ = fenceposts(d)
    current = sum(_replicas(rs) for rs in all_rs)
    if current >= desired + surge:
        return _replicas(new_rs)
    return _replicas(new_rs) + min(desired + surge - current, max(desired - _replicas(new_rs), 0))


def old_scale_down(d: dict[str, Any], all_rs: list[dict[str, Any]], old: list[dict[str, Any]],
                   new_rs: dict[str, Any]) -> dict[str, int]:
    """Upstream reconcileOldReplicaSets for unavailable pods: old ReplicaSet name -> new replicas."""
    if not sum(_replicas(rs) for rs in old):
        return {}
    desired = int((d.get("spec") or {}).get("replicas", 1))
    _, max_unavailable = fenceposts(d)
    all_pods = sum(_replicas(rs) for rs in all_rs)
    new_unavailable = _replicas(new_rs) - _status_int(new_rs, "availableReplicas")
    budget = all_pods - (desired - max_unavailable) - new_unavailable
    out: dict[str, int] = {}
    for rs in sorted(old, key=lambda r: (r["metadata"].get("creationTimestamp", ""), r["metadata"]["name"])):
        if budget <= 0:
            break
        unhealthy = _replicas(rs) - _status_int(rs, "availableReplicas")
        if _replicas(rs) == 0 or unhealthy <= 0:
            continue
        down = min(budget, unhealthy)
        out[rs["metadata"]["name"]] = _replicas(rs) - down
        budget -= down
    return out


class DeploymentController:
    def __init__(self, client: ControllerClient) -> None:
        self.client = client
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue("deployment-controller")
        self.informers = [Informer(client.registry("deployments").cache, self._on_deployment),
                          Informer(client.registry("replicasets").cache, self._on_replicaset)]

    def _on_deployment(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "DELETED" and obj is not None:
            self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _on_replicaset(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if obj is None:
            return
        ref = controller_ref(obj)
        if ref is not None and ref.get("kind") == "Deployment":
            self.queue.add((obj["metadata"]["namespace"], ref["name"]))

    async def run(self) -> None:
        await self.client.require("deployments", "replicasets")
        await run_informers(self.informers, lambda: self.queue.drain(self.sync))

    def _owned(self, d: dict[str, Any]) -> list[dict[str, Any]]:
        uid = d["metadata"]["uid"]
        return [rs for rs in self.client.cached_list("replicasets", d["metadata"]["namespace"])
                if (controller_ref(rs) or {}).get("uid") == uid]

    async def sync(self, key: tuple[str, str]) -> bool:
        ns, name = key
        d = self.client.cached("deployments", ns, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return True
        spec = d.get("spec") or {}
        all_rs = self._owned(d)
        template = spec.get("template") or {}
        new_rs = next((rs for rs in all_rs if _without_hash((rs.get("spec") or {}).get("template") or {})
                       == _without_hash(template)), None)
        old = [rs for rs in all_rs if rs is not new_rs]
        status = copy.deepcopy(d.get("status") or {})
        now = now_rfc3339()
        revision = max((_revision(rs) for rs in old), default=0) + 1
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        if spec.get("paused"):
            await self._write_status(d, status, all_rs, new_rs, now)
            return True
        if recreate and any(_replicas(rs) or _status_int(rs, "replicas") for rs in old):
            # Recreate: the old pods go entirely before the new ReplicaSet is created or scaled up.
            for rs in old:
                if _replicas(rs):
                    await self._scale(d, rs, 0)
            await self._write_status(d, status, all_rs, new_rs, now)
            return True
        if new_rs is None:
            new_rs, collision = await self._create_rs(d, all_rs, revision, int(status.get("collisionCount", 0)))
            if collision:
                status["collisionCount"] = collision
            set_condition(status, "Progressing", "True", "NewReplicaSetCreated",
                          f'Created new replica set "{new_rs["metadata"]["name"]}"', now)
            all_rs.append(new_rs)
        else:
            new_rs = await self._sync_revision(d, new_rs, revision)
        target = new_rs_replicas(d, all_rs, new_rs)
        desired = int(spec.get("replicas", 1))
        if _replicas(new_rs) > desired:
            target = desired
        if target != _replicas(new_rs):
            new_rs = await self._scale(d, new_rs, target)
            all_rs = [new_rs if rs["metadata"]["uid"] == new_rs["metadata"]["uid"] else rs for rs in all_rs]
        down = {} if recreate else old_scale_down(d, all_rs, old, new_rs)
        for rs in old:
            if rs["metadata"]["name"] in down:
                await self._scale(d, rs, down[rs["metadata"]["name"]])
        await self._cleanup(d, old)
        if (d["metadata"].get("annotations") or {}).get(REVISION) != str(_revision(new_rs)):
            d = (await self.client.update("deployments", ns, name, lambda cur: _annotated(cur, REVISION, str(_revision(new_rs))))).obj
        await self._write_status(d, status, self._owned(d), new_rs, now)
        return True

    def _rs_annotations(self, d: dict[str, Any], revision: int | None, existing: dict[str, str]) -> dict[str, str]:
        out = dict(existing)
        out.update({k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED})
        desired = int((d.get("spec") or {}).get("replicas", 1))
        surge, _ = fenceposts(d)
        out[DESIRED_REPLICAS] = str(desired)
        out[MAX_REPLICAS] = str(desired + surge)
        if revision is not None:
            out[REVISION] = str(revision)
        return out

    async def _create_rs(self, d: dict[str, Any], all_rs: list[dict[str, Any]], revision: int,
                         collision: int) -> tuple[dict[str, Any], int]:
        ns = d["metadata"]["namespace"]
        spec = d.get("spec") or {}
        while True:
            h = template_hash(spec.get("template") or {}, collision)
            name = f'{d["metadata"]["name"]}-{h}'
            template = copy.deepcopy(spec.get("template") or {})
            template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
            selector = copy.deepcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})[HASH_LABEL] = h
            rs_spec: dict[str, Any] = {"replicas": 0, "selector": selector, "template": template}
            if spec.get("minReadySeconds"):
                rs_spec["minReadySeconds"] = spec["minReadySeconds"]
            rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": {"name": name, "labels": dict(template["metadata"]["labels"]),
                               "annotations": self._rs_annotations(d, revision, {}),
                               "ownerReferences": [owner_ref(d)]},
                  "spec": rs_spec}
            rs["spec"]["replicas"] = new_rs_replicas(d, all_rs, rs)
            try:
                return (await self.client.create("replicasets", rs, ns)).obj, collision
            except errors.StatusError as e:
                if e.reason != "AlreadyExists":
                    raise
            existing = self.client.cached("replicasets", ns, name)
            if existing is not None and (controller_ref(existing) or {}).get("uid") == d["metadata"]["uid"] \
                    and _without_hash(existing["spec"]["template"]) == _without_hash(spec.get("template") or {}):
                return existing, collision
            collision += 1  # a hash collision with someone else's ReplicaSet: upstream bumps collisionCount

    async def _sync_revision(self, d: dict[str, Any], rs: dict[str, Any], revision: int) -> dict[str, Any]:
        annotations = rs["metadata"].get("annotations") or {}
        want = self._rs_annotations(d, revision if _revision(rs) < revision else None, annotations)
        if want == annotations:
            return rs
        return (await self.client.update("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"],
                                         lambda cur: _with_annotations(cur, want))).obj

    async def _scale(self, d: dict[str, Any], rs: dict[str, Any], replicas: int) -> dict[str, Any]:
        annotations = self._rs_annotations(d, None, rs["metadata"].get("annotations") or {})

        def scale(cur: dict[str, Any]) -> dict[str, Any]:
            cur["spec"]["replicas"] = replicas
            return _with_annotations(cur, annotations)
        return (await self.client.update("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"], scale)).obj

    async def _cleanup(self, d: dict[str, Any], old: list[dict[str, Any]]) -> None:
        """Upstream cleanupDeployment: the oldest empty old ReplicaSets beyond revisionHistoryLimit go."""
        limit = int((d.get("spec") or {}).get("revisionHistoryLimit", 10))
        excess = len(old) - limit
        for rs in sorted(old, key=_revision):
            if excess <= 0:
                break
            if _replicas(rs) or _status_int(rs, "replicas") or rs["metadata"].get("deletionTimestamp"):
                continue
            try:
                await self.client.delete("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"],
                                         {"preconditions": {"uid": rs["metadata"]["uid"]}})
            except errors.StatusError as e:
                if e.code not in (404, 409):
                    raise
            excess -= 1

    async def _write_status(self, d: dict[str, Any], status: dict[str, Any], all_rs: list[dict[str, Any]],
                            new_rs: dict[str, Any] | None, now: str) -> None:
        """Upstream calculateStatus then syncRolloutStatus (without the progress deadline)."""
        spec = d.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        previous = d.get("status") or {}
        available = sum(_status_int(rs, "availableReplicas") for rs in all_rs)
        counts = {"replicas": sum(_status_int(rs, "replicas") for rs in all_rs),
                  "updatedReplicas": _status_int(new_rs, "replicas") if new_rs else 0,
                  "readyReplicas": sum(_status_int(rs, "readyReplicas") for rs in all_rs),
                  "availableReplicas": available,
                  "unavailableReplicas": max(desired - available, 0)}
        new: dict[str, Any] = {"observedGeneration": d["metadata"].get("generation", 0)}
        new.update({k: v for k, v in counts.items() if v})
        if status.get("collisionCount"):
            new["collisionCount"] = status["collisionCount"]
        if status.get("conditions"):
            new["conditions"] = status["conditions"]
        _, max_unavailable = fenceposts(d)
        if available >= desired - max_unavailable:
            set_condition(new, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now)
        else:
            set_condition(new, "Available", "False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability.", now)
        if new_rs is not None and not spec.get("paused"):
            rs_name = new_rs["metadata"]["name"]
            if counts["updatedReplicas"] == desired and counts["replicas"] == desired and available == desired:
                set_condition(new, "Progressing", "True", "NewReplicaSetAvailable",
                              f'ReplicaSet "{rs_name}" has successfully progressed.', now)
            elif (counts["updatedReplicas"] > int(previous.get("updatedReplicas", 0))
                  or counts["replicas"] < int(previous.get("replicas", 0))
                  or counts["readyReplicas"] > int(previous.get("readyReplicas", 0))
                  or available > int(previous.get("availableReplicas", 0))):
                set_condition(new, "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', now)
        if new == previous:
            return
        m = d["metadata"]
        await self.client.update("deployments", m["namespace"], m["name"], lambda cur: dict(cur, status=new),
                                 subresource="status")


def _with_annotations(obj: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    obj["metadata"]["annotations"] = annotations
    return obj


def _annotated(obj: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    obj["metadata"]["annotations"] = {**(obj["metadata"].get("annotations") or {}), key: value}
    return obj
