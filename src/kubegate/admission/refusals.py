"""Upstream's admission error constructors (k8s.io/apiserver/pkg/admission/errors.go) and the pod
helpers several plugins share."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubegate.admission.interface import AdmissionRequest
from kubegate.api import errors


def forbidden(req: AdmissionRequest, message: str) -> errors.StatusError:
    """admission.NewForbidden: the request's name, else the object's name or generateName, else
    `Unknown`; the resource without its subresource."""
    name = req.name
    if not name:
        name = "Unknown"
        m = (req.obj or {}).get("metadata") if req.obj is not None else None
        if isinstance(m, dict):
            name = str(m.get("name") or m.get("generateName") or "Unknown")
    return errors.forbidden(req.resource.plural, name, message, req.resource.group)


def aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate's text."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


def aggregated(refusals: list[errors.StatusError]) -> errors.StatusError:
    """Several refusals as one error: the first one's Status carrying the aggregate's text."""
    first = refusals[0]
    first.message = aggregate([e.message for e in refusals])
    return first


def is_pod(req: AdmissionRequest) -> bool:
    """The pod itself (not a subresource): what most pod plugins look at."""
    return req.resource.group == "" and req.resource.plural == "pods" and not req.subresource \
        and isinstance(req.obj, dict)


def pod_spec(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        spec = pod["spec"] = {}
    return spec


def containers_with_path(spec: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """pods.VisitContainersWithPath: init containers, containers, then ephemeral containers."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(key) or []):
            if isinstance(c, dict):
                yield c, f"spec.{key}[{i}]"
