"""The autoscaling/v1 Scale subresource of deployments, replicasets, statefulsets and replicationcontrollers."""
from __future__ import annotations

from typing import Any

from kubegate.api import errors
from kubegate.api.resources import Resource


def _selector_string(sel: dict[str, Any]) -> str:
    from kubegate.api.selectors import label_selector_from_object
    return str(label_selector_from_object(sel or {}))


def to_scale(r: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    m = obj["metadata"]
    meta = {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector") or {}
    if r.kind == "ReplicationController":  # a plain label map, not a LabelSelector
        selector = {"matchLabels": selector}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": _selector_string(selector)}}


def apply_scale(r: Resource, cur: dict[str, Any], scale: dict[str, Any]) -> dict[str, Any]:
    """Write a Scale's spec.replicas into the owning object, honouring its resourceVersion."""
    want_rv = (scale.get("metadata") or {}).get("resourceVersion")
    if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
        raise errors.conflict(r.group_resource.split(".")[0], cur["metadata"]["name"],
                              "the object has been modified; please apply your changes to the latest "
                              "version and try again", r.group)
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid("Scale", cur["metadata"]["name"], [
            errors.field_invalid("spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")
    cur.setdefault("spec", {})["replicas"] = replicas
    return cur
