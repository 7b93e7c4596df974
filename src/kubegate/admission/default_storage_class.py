"""DefaultStorageClass (plugin/pkg/admission/storage/storageclass/setdefault): a claim that names no
class gets the default StorageClass (the newest one marked default; an explicit "" stays)."""
from __future__ import annotations

from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, AdmissionRequest
from kubegate.api.registry import ResourceRegistry

IS_DEFAULT = "storageclass.kubernetes.io/is-default-class"
BETA_IS_DEFAULT = "storageclass.beta.kubernetes.io/is-default-class"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def default_class(classes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """volumeutil.GetDefaultClass: the newest default, ties by name ascending."""
    defaults = [c for c in classes if ((c.get("metadata") or {}).get("annotations") or {}).get(IS_DEFAULT) == "true"
                or ((c.get("metadata") or {}).get("annotations") or {}).get(BETA_IS_DEFAULT) == "true"]
    if not defaults:
        return None
    # RFC 3339 UTC timestamps sort as strings.
    defaults.sort(key=lambda c: c["metadata"]["name"])
    defaults.sort(key=lambda c: str(c["metadata"].get("creationTimestamp") or ""), reverse=True)
    return defaults[0]


class DefaultStorageClass:
    name = "DefaultStorageClass"
    resources = frozenset({("", "persistentvolumeclaims")})

    def __init__(self, classes: ResourceRegistry) -> None:
        self.classes = classes

    async def admit(self, req: AdmissionRequest) -> None:
        r = req.resource
        if req.operation != CREATE or (r.group, r.plural) != ("", "persistentvolumeclaims") or req.subresource \
                or not isinstance(req.obj, dict):
            return
        spec = req.obj.setdefault("spec", {})
        annotations = (req.obj.get("metadata") or {}).get("annotations") or {}
        if spec.get("storageClassName") is not None or BETA_CLASS_ANNOTATION in annotations:
            return
        found = default_class([d.obj for d in (await self.classes.list(None)).items])
        if found is not None:
            spec["storageClassName"] = found["metadata"]["name"]


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> DefaultStorageClass:
    return DefaultStorageClass(deps.by_plural["storageclasses"])
