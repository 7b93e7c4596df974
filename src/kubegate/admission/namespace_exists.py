"""NamespaceExists (plugin/pkg/admission/namespace/exists): refuses writes into a namespace that
does not exist with the namespace's 404."""
from __future__ import annotations

from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CONNECT, AdmissionRequest
from kubegate.api import errors
from kubegate.api.registry import ResourceRegistry


class NamespaceExists:
    name = "NamespaceExists"

    def __init__(self, namespaces: ResourceRegistry) -> None:
        self.namespaces = namespaces

    async def validate(self, req: AdmissionRequest) -> None:
        if req.operation == CONNECT or not req.namespace or req.resource.kind == "Namespace":
            return
        if self.namespaces.get_cached(None, req.namespace) is None:
            raise errors.not_found("namespaces", req.namespace)


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> NamespaceExists:
    return NamespaceExists(deps.by_plural["namespaces"])
