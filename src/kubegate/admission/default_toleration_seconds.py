"""DefaultTolerationSeconds (plugin/pkg/admission/defaulttolerationseconds): pods tolerate the
not-ready and unreachable NoExecute taints for a bounded time unless they say otherwise
(`--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`)."""
from __future__ import annotations

from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, PODS, UPDATE, AdmissionRequest
from kubegate.admission.refusals import is_pod, pod_spec

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def _tolerates(tolerations: list[Any], key: str) -> bool:
    return any(isinstance(t, dict) and t.get("key", "") in (key, "") and t.get("effect", "") in ("NoExecute", "")
               for t in tolerations)


class DefaultTolerationSeconds:
    name = "DefaultTolerationSeconds"
    resources = PODS

    def __init__(self, not_ready_seconds: int, unreachable_seconds: int) -> None:
        self.defaults = ((NOT_READY, not_ready_seconds), (UNREACHABLE, unreachable_seconds))

    async def admit(self, req: AdmissionRequest) -> None:
        if req.operation not in (CREATE, UPDATE) or not is_pod(req):
            return
        assert req.obj is not None
        spec = pod_spec(req.obj)
        tolerations = spec.get("tolerations") or []
        added = []
        for key, seconds in self.defaults:
            if not tolerations or not _tolerates(tolerations, key):
                added.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})
        if added:
            spec["tolerations"] = [*tolerations, *added]


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> DefaultTolerationSeconds:
    return DefaultTolerationSeconds(deps.cfg.default_not_ready_toleration_seconds,
                                    deps.cfg.default_unreachable_toleration_seconds)
