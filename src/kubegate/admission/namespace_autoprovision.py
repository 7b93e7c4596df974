"""NamespaceAutoProvision (plugin/pkg/admission/namespace/autoprovision): a create in a namespace
that does not exist creates the namespace first (not on dry run)."""
from __future__ import annotations

from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, AdmissionRequest
from kubegate.admission.refusals import forbidden
from kubegate.api import errors
from kubegate.api.registry import ResourceRegistry


class NamespaceAutoProvision:
    name = "NamespaceAutoProvision"

    def __init__(self, namespaces: ResourceRegistry) -> None:
        self.namespaces = namespaces

    async def admit(self, req: AdmissionRequest) -> None:
        if req.operation != CREATE or req.dry_run or not req.namespace or req.resource.kind == "Namespace":
            return
        if self.namespaces.get_cached(None, req.namespace) is not None:
            return
        try:
            await self.namespaces.create({"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": req.namespace}}, namespace=None)
        except errors.StatusError as e:
            if e.reason != "AlreadyExists":
                raise forbidden(req, e.message) from None


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> NamespaceAutoProvision:
    return NamespaceAutoProvision(deps.by_plural["namespaces"])
