"""The ServiceAccount controller (upstream pkg/controller/serviceaccount/serviceaccounts_controller.go):
a `default` ServiceAccount in every active namespace, re-created when deleted."""
from __future__ import annotations

from typing import Any

from kubegate.api import errors
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer

DEFAULT_NAME = "default"


class ServiceAccountController:
    def __init__(self, client: ControllerClient) -> None:
        self.client = client
        self.queue: WorkQueue[str] = WorkQueue("serviceaccount-controller")
        self.informers = [Informer(client.registry("namespaces").cache, self._on_namespace),
                          Informer(client.registry("serviceaccounts").cache, self._on_serviceaccount)]

    def _on_namespace(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "DELETED" and obj is not None:
            self.queue.add(obj["metadata"]["name"])

    def _on_serviceaccount(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ == "DELETED" and obj is not None and obj["metadata"]["name"] == DEFAULT_NAME:
            self.queue.add(obj["metadata"]["namespace"])

    async def run(self) -> None:
        await self.client.require("namespaces", "serviceaccounts")
        await run_informers(self.informers, lambda: self.queue.drain(self.sync))

    async def sync(self, namespace: str) -> bool:
        ns = self.client.cached("namespaces", None, namespace)
        # Upstream skips namespaces that are not Active: the lifecycle plugin would refuse the create.
        if ns is None or ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            return True
        if self.client.cached("serviceaccounts", namespace, DEFAULT_NAME) is not None:
            return True
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT_NAME}}
        try:
            await self.client.create("serviceaccounts", sa, namespace)
        except errors.StatusError as e:
            if e.reason != "AlreadyExists":
                raise
        return True
