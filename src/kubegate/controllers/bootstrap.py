"""Start-up reconciliation: the system namespaces and upstream's default RBAC policy.

Like the apiserver's rbac/bootstrap-roles post-start hook (pkg/registry/rbac/reconciliation),
missing defaults are created and existing ones get missing permissions, aggregation selectors,
subjects, labels and annotations added back, keeping whatever a user added; objects a user
annotated `rbac.authorization.kubernetes.io/autoupdate: "false"` are left alone.
"""
from __future__ import annotations

import copy
import logging
from typing import Any

from kubegate.api import errors
from kubegate.api.registry import ResourceRegistry
from kubegate.authz.bootstrap import default_policy
from kubegate.authz.rbac import covers
from kubegate.authz.types import PolicyRule

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


def _merged_meta(existing: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Expected labels and annotations added; the existing object's values win (upstream merge)."""
    meta = copy.deepcopy(existing["metadata"])
    for key in ("labels", "annotations"):
        merged = dict(expected["metadata"].get(key) or {})
        merged.update(meta.get(key) or {})
        if merged:
            meta[key] = merged
    return meta


def reconcile_role(existing: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Upstream computeReconciledRole without removing anything: missing permissions (by coverage,
    added as single-verb rules) and missing aggregation selectors are appended."""
    result = copy.deepcopy(existing)
    result["metadata"] = _merged_meta(existing, expected)
    # Aggregated defaults (admin, edit, view) expect no rules of their own: the aggregation
    # controller owns them.
    wanted = [] if expected.get("aggregationRule") else [PolicyRule.from_dict(r) for r in expected.get("rules") or ()]
    _, missing = covers([PolicyRule.from_dict(r) for r in existing.get("rules") or ()], wanted)
    if missing:
        result["rules"] = list(existing.get("rules") or []) + [r.to_dict() for r in missing]
    want_agg = expected.get("aggregationRule")
    if want_agg is None:
        result.pop("aggregationRule", None)
    else:
        have = list((existing.get("aggregationRule") or {}).get("clusterRoleSelectors") or [])
        extra = [sel for sel in want_agg.get("clusterRoleSelectors") or [] if sel not in have]
        if extra or existing.get("aggregationRule") is None:
            result["aggregationRule"] = {"clusterRoleSelectors": have + extra}
    return result


def _subject_key(s: dict[str, Any]) -> tuple[str, str, str, str]:
    return (s.get("kind") or "", s.get("apiGroup") or "", s.get("name") or "", s.get("namespace") or "")


def reconcile_binding(existing: dict[str, Any], expected: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Upstream computeReconciledRoleBinding without removing subjects: (binding, recreate). A
    different roleRef cannot be updated, so the expected binding replaces the existing one."""
    if existing.get("roleRef") != expected.get("roleRef"):
        return copy.deepcopy(expected), True
    result = copy.deepcopy(existing)
    result["metadata"] = _merged_meta(existing, expected)
    have = {_subject_key(s) for s in existing.get("subjects") or ()}
    missing = [s for s in expected.get("subjects") or () if _subject_key(s) not in have]
    if missing:
        result["subjects"] = list(existing.get("subjects") or []) + missing
    return result, False


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
            continue  # the owner opted out of reconciliation
        if plural in ("clusterroles", "roles"):
            new, recreate = reconcile_role(cur, obj), False
        else:
            new, recreate = reconcile_binding(cur, obj)
        if recreate:
            await reg.delete(ns, m["name"])
            await reg.create(new, namespace=ns)
            written += 1
        elif new != cur:
            await reg.update(new, namespace=ns, name=m["name"], old=existing)
            written += 1
    return written
