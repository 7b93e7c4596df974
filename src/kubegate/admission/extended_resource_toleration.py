"""ExtendedResourceToleration (plugin/pkg/admission/extendedresourcetoleration): a pod requesting an
extended resource (e.g. example.com/gpu) tolerates the NoSchedule taint of that name, so nodes
tainted for the resource admit exactly the pods that want it."""
from __future__ import annotations

from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest
from kubegate.admission.refusals import is_pod, pod_spec
from kubegate.api.validation import names

def is_extended_resource(name: str) -> bool:
    """helper.IsExtendedResourceName: prefixed, not kubernetes.io-native, a valid quota name."""
    if "/" not in name or "kubernetes.io/" in name or name.startswith("requests."):
        return False
    return not names.is_qualified_name("requests." + name)


def _matches(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Toleration.MatchToleration: same key, effect, operator and value."""
    return all(a.get(k, "") == b.get(k, "") for k in ("key", "effect", "operator", "value"))


class ExtendedResourceToleration:
    name = "ExtendedResourceToleration"

    async def admit(self, req: AdmissionRequest) -> None:
        if req.operation not in (CREATE, UPDATE) or not is_pod(req):
            return
        assert req.obj is not None
        spec = pod_spec(req.obj)
        names: set[str] = set()
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                requests = ((c or {}).get("resources") or {}).get("requests") or {}
                names.update(n for n in requests if is_extended_resource(n))
        for name in sorted(names):
            _add_or_update(spec, {"key": name, "operator": "Exists", "effect": "NoSchedule"})


def _add_or_update(spec: dict[str, Any], toleration: dict[str, Any]) -> None:
    """helper.AddOrUpdateTolerationInPod."""
    out, updated = [], False
    for t in spec.get("tolerations") or []:
        if isinstance(t, dict) and _matches(toleration, t):
            if t == toleration:
                return
            out.append(dict(toleration))
            updated = True
        else:
            out.append(t)
    if not updated:
        out.append(dict(toleration))
    spec["tolerations"] = out


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> ExtendedResourceToleration:
    return ExtendedResourceToleration()
