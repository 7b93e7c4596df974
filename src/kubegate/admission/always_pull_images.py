"""AlwaysPullImages (plugin/pkg/admission/alwayspullimages): every container (and image volume) of
a pod pulls its image on every start, so a pod cannot use another tenant's cached private image."""
from __future__ import annotations

from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest
from kubegate.admission.refusals import aggregated, containers_with_path, forbidden, is_pod, pod_spec
from kubegate.api.errors import field_not_supported


def _images(pod: dict[str, Any] | None) -> list[str]:
    spec = (pod or {}).get("spec")
    if not isinstance(spec, dict):
        return []
    images = [str(c.get("image") or "") for c, _ in containers_with_path(spec)]
    return images + [str(v["image"].get("reference") or "") for v, _ in _image_volumes(spec)]


def _image_volumes(spec: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    return [(v, f"spec.volumes[{i}]") for i, v in enumerate(spec.get("volumes") or [])
            if isinstance(v, dict) and isinstance(v.get("image"), dict)]


def _ignored(req: AdmissionRequest) -> bool:
    if req.operation not in (CREATE, UPDATE) or not is_pod(req):
        return True
    if req.operation == UPDATE:
        # An update that brings no new image (a label change, say) is left as it is.
        old = set(_images(req.old))
        return all(image in old for image in _images(req.obj))
    return False


class AlwaysPullImages:
    name = "AlwaysPullImages"

    async def admit(self, req: AdmissionRequest) -> None:
        if _ignored(req):
            return
        assert req.obj is not None
        spec = pod_spec(req.obj)
        for c, _ in containers_with_path(spec):
            c["imagePullPolicy"] = "Always"
        for v, _ in _image_volumes(spec):
            v["image"]["pullPolicy"] = "Always"

    async def validate(self, req: AdmissionRequest) -> None:
        if _ignored(req):
            return
        assert req.obj is not None
        spec = pod_spec(req.obj)
        bad = [(c.get("imagePullPolicy", ""), f"{path}.imagePullPolicy") for c, path in containers_with_path(spec)]
        bad += [(v["image"].get("pullPolicy", ""), f"{path}.image.pullPolicy") for v, path in _image_volumes(spec)]
        refusals = []
        for policy, path in bad:
            if policy != "Always":
                cause = field_not_supported(path, policy, ["Always"])
                refusals.append(forbidden(req, f"{cause.field}: {cause.message}"))
        if refusals:
            raise aggregated(refusals)


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> AlwaysPullImages:
    return AlwaysPullImages()
