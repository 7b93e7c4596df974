"""The Deployment controller (upstream pkg/controller/deployment), RollingUpdate and Recreate.

The ReplicaSet for the current template is `<deployment>-<pod-template-hash>`, the hash also
labelling the ReplicaSet, its selector and its pods. A template change creates a new ReplicaSet
with the next `deployment.kubernetes.io/revision` and rolls over as upstream's rolling update
does: the new one grows within maxSurge, old ones shrink while maxUnavailable allows. Scaling a
Deployment during a rollout (or while paused) spreads the change over the active ReplicaSets in
proportion to their size (the desired-replicas/max-replicas annotations record the size each was
last scaled for). A rollback (`kubectl rollout undo`) turns an old ReplicaSet into the new one under
the next revision, keeping its former revisions in `revision-history`.

Status follows syncRolloutStatus: Available against maxUnavailable, Progressing as the rollout
moves, and ProgressDeadlineExceeded once no progress was seen for progressDeadlineSeconds. Pods
never become available here (no kubelet), so a rollout exceeds its deadline; the deployment is
re-synced when its deadline falls due, without waiting for an event, as upstream requeues it.
"""
from __future__ import annotations

import copy
import time
from typing import Any

import orjson

from kubegate.api import errors
from kubegate.api.objects import now_rfc3339
from kubegate.controllers import deployment_util as du
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.deployment_util import (
    HASH_LABEL, REVISION, new_rs_replicas, old_scale_down, replicas, revision, set_condition,
)
from kubegate.controllers.events import NORMAL, WARNING, has_cause, record
from kubegate.controllers.replicaset import controller_ref, owner_ref
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer

COMPONENT = "deployment-controller"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """FNV-32a over the template (canonical JSON here; upstream hashes its Go struct dump), plus the
    collision count, written as upstream's rand.SafeEncodeString of the decimal value."""
    h = 0x811C9DC5
    data = orjson.dumps(_without_nulls(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(h))


def _without_nulls(value: Any) -> Any:
    """The value as Go decodes it: a null field is the same as an absent one (kubectl rollout undo
    sends the template's `creationTimestamp: null`)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    """The template compared by EqualIgnoreHash: without the hash label and without nulls."""
    t = _without_nulls(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
        if not labels:
            t["metadata"].pop("labels")
    return t


def find_new(d: dict[str, Any], sets: list[dict[str, Any]]) -> dict[str, Any] | None:
    """FindNewReplicaSet: the oldest ReplicaSet whose template equals the Deployment's, hash aside."""
    want = _without_hash((d.get("spec") or {}).get("template") or {})
    return next((rs for rs in sorted(sets, key=du.by_creation)
                 if _without_hash((rs.get("spec") or {}).get("template") or {}) == want), None)


def is_scaling_event(d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]) -> bool:
    """isScalingEvent: an active ReplicaSet was last scaled for another Deployment size."""
    for rs in du.active(old + ([new_rs] if new_rs is not None else [])):
        want = (rs["metadata"].get("annotations") or {}).get(du.DESIRED_REPLICAS)
        if want is not None and want.lstrip("-").isdigit() and int(want) != du.desired(d):
            return True
    return False


def cleanable(d: dict[str, Any], old: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """cleanupDeployment: of the live old ReplicaSets beyond revisionHistoryLimit (lowest revisions
    first), those that are empty and observed."""
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = sorted((rs for rs in old if not rs["metadata"].get("deletionTimestamp")),
                   key=lambda rs: (revision(rs), *du.by_creation(rs)))
    return [rs for rs in alive[:max(len(alive) - int(limit), 0)]
            if not replicas(rs) and not du.status_int(rs, "replicas")
            and int(rs["metadata"].get("generation", 0)) <= du.status_int(rs, "observedGeneration")]


class DeploymentController:
    def __init__(self, client: ControllerClient) -> None:
        self.client = client
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue(COMPONENT)
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
        """syncDeployment."""
        ns, name = key
        cached = self.client.cached("deployments", ns, name)
        if cached is None:
            return True
        d = copy.deepcopy(cached)
        rs_list = self._owned(d)
        new_rs, old, d = await self._replica_sets(d, rs_list, create=False)
        if d["metadata"].get("deletionTimestamp"):
            await self._save_status(d, du.calculate_status(d, _all(old, new_rs), new_rs, now_rfc3339()))
            return True
        paused = du.paused_condition(d, now_rfc3339())
        if paused is not None:
            d = await self._save_status(d, paused)
        if (d.get("spec") or {}).get("paused") or is_scaling_event(d, new_rs, old):
            await self._sync(d, new_rs, old)
        elif du.is_recreate(d):
            await self._rollout_recreate(d, rs_list, new_rs, old)
        else:
            await self._rollout_rolling(d, rs_list, new_rs, old)
        return True

    # -- the ReplicaSets -------------------------------------------------------------------------

    async def _replica_sets(self, d: dict[str, Any], rs_list: list[dict[str, Any]], create: bool
                            ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any]]:
        """getAllReplicaSetsAndSyncRevision: (new, old, deployment) with the new set's annotations and
        the Deployment's revision brought up to date; the new set is created when `create` asks."""
        new_rs = find_new(d, rs_list)
        old = [rs for rs in rs_list if rs is not new_rs]
        new_revision = max((revision(rs) for rs in old), default=0) + 1
        if new_rs is not None:
            current = new_rs["metadata"].get("annotations") or {}
            annotations = du.new_rs_annotations(d, current, new_revision, exists=True)
            min_ready = (d.get("spec") or {}).get("minReadySeconds", 0)
            if annotations != current or (new_rs.get("spec") or {}).get("minReadySeconds", 0) != min_ready:
                def sync_rs(cur: dict[str, Any]) -> dict[str, Any]:
                    cur["metadata"]["annotations"] = annotations
                    cur["spec"]["minReadySeconds"] = min_ready
                    return cur
                new_rs = (await self.client.update("replicasets", new_rs["metadata"]["namespace"],
                                                   new_rs["metadata"]["name"], sync_rs)).obj
                return new_rs, old, d  # the next sync copies the revision to the Deployment
            status = copy.deepcopy(d.get("status") or {})
            if du.has_progress_deadline(d) and du.get_condition(status, "Progressing") is None:
                set_condition(status, "Progressing", "True", du.FOUND_NEW_RS,
                              f'Found new replica set "{new_rs["metadata"]["name"]}"', now_rfc3339())
            d = await self._save(d, (new_rs["metadata"].get("annotations") or {}).get(REVISION), status)
            return new_rs, old, d
        if not create:
            return None, old, d
        created, d = await self._create_rs(d, old, new_revision)
        return created, old, d

    async def _create_rs(self, d: dict[str, Any], old: list[dict[str, Any]], new_revision: int
                         ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """getNewReplicaSet's create: a hash collision with a foreign ReplicaSet bumps collisionCount
        and returns None (the status change requeues the Deployment)."""
        m = d["metadata"]
        spec = d.get("spec") or {}
        collision = int((d.get("status") or {}).get("collisionCount", 0))
        h = template_hash(spec.get("template") or {}, collision)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f'{m["name"]}-{h}', "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [owner_ref(d)]},
            "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds", 0), "selector": selector,
                     "template": template}}
        rs["spec"]["replicas"] = new_rs_replicas(d, [*old, rs], rs)
        rs["metadata"]["annotations"] = du.new_rs_annotations(d, {}, new_revision, exists=False)
        status = copy.deepcopy(d.get("status") or {})
        now = now_rfc3339()
        try:
            created = (await self.client.create("replicasets", rs, m["namespace"])).obj
        except errors.StatusError as e:
            if e.reason == "AlreadyExists":
                existing = self.client.cached("replicasets", m["namespace"], rs["metadata"]["name"])
                if existing is not None and (controller_ref(existing) or {}).get("uid") == m["uid"] \
                        and _without_hash(existing["spec"]["template"]) == _without_hash(spec.get("template") or {}):
                    return existing, await self._save(d, str(new_revision), status)
                status["collisionCount"] = collision + 1
                return None, await self._save_status(d, status)
            if has_cause(e, "NamespaceTerminating"):
                raise
            msg = f'Failed to create new replica set "{rs["metadata"]["name"]}": {e.message}'
            if du.has_progress_deadline(d):
                set_condition(status, "Progressing", "False", du.FAILED_RS_CREATE, msg, now)
                await self._save_status(d, status)
            await record(self.client, d, WARNING, du.FAILED_RS_CREATE, msg, COMPONENT)
            raise
        if replicas(created):
            await record(self.client, d, NORMAL, "ScalingReplicaSet",
                         f'Scaled up replica set {created["metadata"]["name"]} from 0 to {replicas(created)}', COMPONENT)
        if du.has_progress_deadline(d):
            set_condition(status, "Progressing", "True", du.NEW_RS_CREATED,
                          f'Created new replica set "{created["metadata"]["name"]}"', now)
        return created, await self._save(d, str(new_revision), status)

    async def _scale(self, d: dict[str, Any], rs: dict[str, Any], size: int, operation: str | None = None
                     ) -> dict[str, Any]:
        """scaleReplicaSet: the size and the replicas annotations, with a ScalingReplicaSet event.
        Without `operation` (scaleReplicaSetAndRecordEvent) a set already of that size is left alone."""
        annotations = {**(rs["metadata"].get("annotations") or {}), **du.replicas_annotations(d)}
        before = replicas(rs)
        if before == size and (operation is None or annotations == (rs["metadata"].get("annotations") or {})):
            return rs

        def scale(cur: dict[str, Any]) -> dict[str, Any]:
            cur["spec"]["replicas"] = size
            cur["metadata"]["annotations"] = {**(cur["metadata"].get("annotations") or {}), **du.replicas_annotations(d)}
            return cur
        updated = (await self.client.update("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"],
                                            scale)).obj
        if before != size:
            direction = operation or ("up" if before < size else "down")
            await record(self.client, d, NORMAL, "ScalingReplicaSet",
                         f'Scaled {direction} replica set {rs["metadata"]["name"]} from {before} to {size}', COMPONENT)
        return updated

    async def _cleanup(self, d: dict[str, Any], old: list[dict[str, Any]]) -> None:
        for rs in cleanable(d, old):
            try:
                await self.client.delete("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"],
                                         {"preconditions": {"uid": rs["metadata"]["uid"]}})
            except errors.StatusError as e:
                if e.code not in (404, 409):
                    raise

    # -- the strategies --------------------------------------------------------------------------

    async def _sync(self, d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]) -> None:
        """sync: scaling events and paused Deployments (scale, clean up when paused, status)."""
        only = du.find_active_or_latest(new_rs, old)
        if only is not None:
            if replicas(only) != du.desired(d):
                await self._scale(d, only, du.desired(d))
        elif du.is_saturated(d, new_rs):
            for rs in du.active(old):
                await self._scale(d, rs, 0)
        elif not du.is_recreate(d):
            sizes = du.proportional_sizes(d, new_rs, old)
            change = sum(size - replicas(rs) for rs, size in sizes)
            operation = "up" if change > 0 else "down" if change < 0 else ""
            for rs, size in sizes:
                await self._scale(d, rs, size, operation)
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, old)
        await self._save_status(d, du.calculate_status(d, _all(old, new_rs), new_rs, now_rfc3339()))

    async def _rollout_rolling(self, d: dict[str, Any], rs_list: list[dict[str, Any]],
                               new_rs: dict[str, Any] | None, old: list[dict[str, Any]]) -> None:
        if new_rs is None:
            new_rs, old, d = await self._replica_sets(d, rs_list, create=True)
            if new_rs is None:
                return
        all_rs = _all(old, new_rs)
        scaled = False
        want = du.desired(d)
        if replicas(new_rs) != want:  # reconcileNewReplicaSet
            target = want if replicas(new_rs) > want else new_rs_replicas(d, all_rs, new_rs)
            scaled = target != replicas(new_rs)
            if scaled:
                await self._scale(d, new_rs, target)
        if not scaled:  # reconcileOldReplicaSets
            down = old_scale_down(d, all_rs, du.active(old), new_rs)
            for rs in old:
                if rs["metadata"]["name"] in down:
                    await self._scale(d, rs, down[rs["metadata"]["name"]])
            if not down and du.deployment_complete(d, d.get("status") or {}):
                await self._cleanup(d, old)
        await self._sync_rollout_status(d, all_rs, new_rs)

    async def _rollout_recreate(self, d: dict[str, Any], rs_list: list[dict[str, Any]],
                                new_rs: dict[str, Any] | None, old: list[dict[str, Any]]) -> None:
        """rolloutRecreate: the old pods go entirely before the new ReplicaSet is created or scaled up."""
        scaled_down = False
        for rs in du.active(old):
            await self._scale(d, rs, 0)
            scaled_down = True
        if scaled_down or any(du.status_int(rs, "replicas") for rs in old):
            await self._sync_rollout_status(d, _all(old, new_rs), new_rs)
            return
        if new_rs is None:
            new_rs, old, d = await self._replica_sets(d, rs_list, create=True)
            if new_rs is None:
                return
        if replicas(new_rs) != du.desired(d):
            await self._scale(d, new_rs, du.desired(d))
        if du.deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old)
        await self._sync_rollout_status(d, _all(old, new_rs), new_rs)

    # -- the Deployment's status -----------------------------------------------------------------

    async def _sync_rollout_status(self, d: dict[str, Any], all_rs: list[dict[str, Any]],
                                   new_rs: dict[str, Any] | None) -> None:
        """syncRolloutStatus, then requeueStuckDeployment when nothing changed: the deadline is
        checked again when it falls due."""
        status = du.rollout_status(d, all_rs, new_rs, now_rfc3339(), time.time())
        if status != (d.get("status") or {}):
            await self._save_status(d, status)
            return
        after = du.requeue_after(d, status, time.time())
        if after is not None:
            self.queue.add_after((d["metadata"]["namespace"], d["metadata"]["name"]), after)

    async def _save(self, d: dict[str, Any], rev: str | None, status: dict[str, Any]) -> dict[str, Any]:
        """SetDeploymentRevision and the status, as upstream's one UpdateStatus writes them."""
        m = d["metadata"]
        if rev is not None and (m.get("annotations") or {}).get(REVISION) != rev:
            def annotate(cur: dict[str, Any]) -> dict[str, Any]:
                cur["metadata"]["annotations"] = {**(cur["metadata"].get("annotations") or {}), REVISION: rev}
                return cur
            d = (await self.client.update("deployments", m["namespace"], m["name"], annotate)).obj
        return await self._save_status(d, status)

    async def _save_status(self, d: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        if status == (d.get("status") or {}):
            return d
        m = d["metadata"]
        saved = await self.client.update_status("deployments", m["namespace"], m["name"], status)
        return d if saved is None else saved.obj


def _all(old: list[dict[str, Any]], new_rs: dict[str, Any] | None) -> list[dict[str, Any]]:
    return old + ([new_rs] if new_rs is not None else [])
