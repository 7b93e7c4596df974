"""The ResourceQuota controller (upstream pkg/controller/resourcequota): status.hard follows
spec.hard and status.used is recounted from what is stored, with the evaluators the ResourceQuota
admission plugin charges by. As upstream, a quota is recounted when it is created or its spec.hard
changes, when something it may count is deleted (or a pod ends, a service changes type, a claim
changes its request), and every five minutes; creates need no recount, admission charged them."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from kubegate.admission.quantities import Amount, amount, render
from kubegate.admission.resource_quota import Evaluator, pod_usage
from kubegate.api.registry import ResourceRegistry
from kubegate.api.validation import quantity
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer

RESYNC_SECONDS = 300.0  # --resource-quota-sync-period


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _sum(total: dict[str, Amount], usage: dict[str, Amount]) -> None:
    """quota.Add onto zero-valued entries: a zero takes the format of what is added to it."""
    for k, (v, binary) in usage.items():
        cur = total.get(k)
        if cur is None or cur[0] == 0:
            total[k] = ((cur[0] if cur else Decimal(0)) + v, binary)
        else:
            total[k] = (cur[0] + v, cur[1])


def calculate_usage(q: dict[str, Any], resources: Iterable[tuple[Evaluator, list[dict[str, Any]]]]
                    ) -> dict[str, str]:
    """quota.CalculateUsage: for each evaluator matching some of the quota's hard resources, the
    usage of the namespace's objects its scopes select, zero for a matched resource nothing uses,
    masked to the hard resources."""
    hard = list(_d(_d(q.get("spec")).get("hard")))
    used: dict[str, Amount] = {}
    for ev, objects in resources:
        matched = ev.matching(hard)
        if not matched:
            continue
        stats: dict[str, Amount] = {k: (Decimal(0), False) for k in matched}
        for obj in objects:
            if ev.matches_scopes(q, obj):
                _sum(stats, ev.usage(obj))
        _sum(used, {k: v for k, v in stats.items() if k in matched})
    return {k: render(*used[k]) for k in sorted(used) if k in hard}


def quota_status(q: dict[str, Any], observed: dict[str, str]) -> dict[str, Any]:
    """syncResourceQuota's new status: hard from the spec, the last usage kept for resources no
    evaluator counts, replaced by the observed usage, and masked to the hard resources."""
    hard = {k: quantity.render(v) for k, v in sorted(_d(_d(q.get("spec")).get("hard")).items())}
    used = dict(_d(_d(q.get("status")).get("used")))
    used.update(observed)
    return {"hard": hard, "used": {k: used[k] for k in sorted(used) if k in hard}}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """quota.Equals: the same names with equal values, whatever their notation."""
    return a.keys() == b.keys() and all(amount(a[k])[0] == amount(b[k])[0] for k in a)


def needs_update(q: dict[str, Any], status: dict[str, Any]) -> bool:
    cur = _d(q.get("status"))
    if "hard" not in cur or "used" not in cur:
        return True
    return not _same(_d(cur["hard"]), status["hard"]) or not _same(_d(cur["used"]), status["used"])


def replenishes(plural: str, group: str, obj: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """The quota monitor's update filter: a pod that stops counting compute, a service whose type
    changes, a claim whose storage request changes."""
    if group or old is None:
        return False
    if plural == "pods":
        return len(pod_usage(old)) > 1 and len(pod_usage(obj)) == 1
    if plural == "services":
        return _d(old.get("spec")).get("type") != _d(obj.get("spec")).get("type")
    if plural == "persistentvolumeclaims":
        def storage(o: dict[str, Any]) -> Any:
            return _d(_d(_d(o.get("spec")).get("resources")).get("requests")).get("storage")
        return storage(old) != storage(obj)
    return False


class ResourceQuotaController:
    def __init__(self, client: ControllerClient, namespaced: list[ResourceRegistry]) -> None:
        self.client = client
        # One registry per (group, resource): what count/<resource>.<group> and the evaluators read.
        self.resources = list({(r.resource.group, r.resource.plural): r for r in namespaced}.values())
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue("resourcequota-controller")
        followed = {r.cache: r for r in self.resources}  # resources sharing storage share one cache
        self.informers = [Informer(client.registry("resourcequotas").cache, self._on_quota)]
        self.informers += [Informer(cache, self._replenish(r)) for cache, r in followed.items()
                           if r.resource.plural != "resourcequotas"]

    def _on_quota(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if obj is None or typ == "DELETED":
            return
        if typ == "ADDED" or old is None or _d(old.get("spec")).get("hard") != _d(obj.get("spec")).get("hard"):
            self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _replenish(self, reg: ResourceRegistry) -> Any:
        r = reg.resource

        def handle(typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
            if obj is None:
                return
            if typ == "DELETED" or (typ == "MODIFIED" and replenishes(r.plural, r.group, obj, old)):
                self._enqueue_namespace(obj["metadata"].get("namespace") or "")
        return handle

    def _enqueue_namespace(self, namespace: str) -> None:
        for q in self.client.cached_list("resourcequotas", namespace):
            self.queue.add((namespace, q["metadata"]["name"]))

    async def run(self) -> None:
        await self.client.require("resourcequotas")
        await run_informers(self.informers, self._work)

    async def _work(self) -> None:
        resync = asyncio.create_task(self._resync())
        try:
            await self.queue.drain(self.sync)
        finally:
            resync.cancel()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            for q in self.client.cached_list("resourcequotas"):
                self.queue.add((q["metadata"]["namespace"], q["metadata"]["name"]))

    async def sync(self, key: tuple[str, str]) -> bool:
        ns, name = key
        q = self.client.cached("resourcequotas", ns, name)
        if q is None:
            return True
        observed = calculate_usage(q, ((Evaluator(reg.resource.group, reg.resource.plural),
                                        self.client.cached_list(reg, ns)) for reg in self.resources))
        status = quota_status(q, observed)
        if not needs_update(q, status):
            return True
        await self.client.update_status("resourcequotas", ns, name, status)
        return True
