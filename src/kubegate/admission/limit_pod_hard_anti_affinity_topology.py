"""LimitPodHardAntiAffinityTopology (plugin/pkg/admission/antiaffinity): required pod anti-affinity
may only use the hostname topology, so one pod cannot keep others off a whole zone."""
from __future__ import annotations

from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest
from kubegate.admission.refusals import is_pod
from kubegate.api import errors

HOSTNAME = "kubernetes.io/hostname"


class LimitPodHardAntiAffinityTopology:
    name = "LimitPodHardAntiAffinityTopology"

    async def validate(self, req: AdmissionRequest) -> None:
        if req.operation not in (CREATE, UPDATE) or not is_pod(req):
            return
        assert req.obj is not None
        anti = (((req.obj.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {})
        for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
            key = (term or {}).get("topologyKey", "")
            if key != HOSTNAME:
                # Upstream names the pod itself here, not the request (empty for generateName).
                name = str((req.obj.get("metadata") or {}).get("name") or "")
                raise errors.forbidden(req.resource.plural, name,
                                       f"affinity.PodAntiAffinity.RequiredDuringScheduling has TopologyKey {key} "
                                       f"but only key {HOSTNAME} is allowed")


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> LimitPodHardAntiAffinityTopology:
    return LimitPodHardAntiAffinityTopology()
