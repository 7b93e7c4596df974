"""Start-up reconciliation: the system namespaces and upstream's default RBAC policy.

Like the apiserver's rbac/bootstrap-roles post-start hook, missing defaults are created and
existing ones annotated `rbac.authorization.kubernetes.io/autoupdate: "true"` get missing
rules and subjects added back; objects a user set to autoupdate "false" are left alone.
"""
from __future__ import annotations

import copy
import logging
from typing import Any

from kubegate.api import errors
from kubegate.api.registry import ResourceRegistry
from kubegate.authz.bootstrap import default_policy

log = logging.getLogger("kubegate.bootstrap")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"


async def ensure_namespaces(ns: ResourceRegistry) -> None:
    for name in SYSTEM_NAMESPACES:
        if ns.get_cached(None, name) is None:
            try:
                await ns.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                                namespace=None)
            except errors.StatusError as e:
                if e.reason != "AlreadyExists":
                    raise


def _merge_missing(current: list[Any], wanted: list[Any]) -> list[Any]:
    return current + [w for w in wanted if w not in current]


async def reconcile_rbac(registries: dict[str, ResourceRegistry]) -> int:
    """Create or repair every default role and binding; returns how many objects were written."""
    written = 0
    for plural, obj in default_policy():
        reg = registries[plural]
        m = obj["metadata"]
        ns = m.get("namespace")
        existing = reg.get_cached(ns, m["name"])
        if existing is None:
            await reg.create(obj, namespace=ns)
            written += 1
            continue
        cur = existing.obj
        if (cur["metadata"].get("annotations") or {}).get(_AUTOUPDATE) == "false":
            continue
        new = copy.deepcopy(cur)
        if plural in ("clusterroles", "roles"):
            new["rules"] = _merge_missing(cur.get("rules") or [], obj.get("rules") or [])
            if obj.get("aggregationRule"):
                new["aggregationRule"] = obj["aggregationRule"]
        else:
            new["subjects"] = _merge_missing(cur.get("subjects") or [], obj.get("subjects") or [])
        for k in ("labels", "annotations"):
            merged = dict(cur["metadata"].get(k) or {})
            merged.update(m.get(k) or {})
            new["metadata"][k] = merged
        if new != cur:
            await reg.update(new, namespace=ns, name=m["name"], old=existing)
            written += 1
    return written
