"""ExtendedResourceToleration (plugin/pkg/admission/extendedresourcetoleration): a pod requesting an
extended resource (e.g. example.com/gpu) tolerates the NoSchedule taint of that name, so nodes
tainted for the resource admit exactly the pods that want it."""
from __future__ import annotations

import re
from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest
from kubegate.admission.refusals import is_pod, pod_spec

# validation.IsQualifiedName: optional DNS-subdomain prefix, then a 63-char name.
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _qualified(name: str) -> bool:
    prefix, sep, short = name.rpartition("/")
    if sep and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        return False
    return 0 < len(short) <= 63 and bool(_NAME.match(short))


def is_extended_resource(name: str) -> bool:
    """helper.IsExtendedResourceName: prefixed, not kubernetes.io-native, a valid quota name."""
    if "/" not in name or "kubernetes.io/" in name or name.startswith("requests."):
        return False
    return _qualified("requests." + name)


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
