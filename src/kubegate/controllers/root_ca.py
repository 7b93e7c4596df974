"""The root CA publisher (upstream pkg/controller/certificates/rootcacertpublisher): the
`kube-root-ca.crt` ConfigMap in every active namespace holds the cluster CA bundle, and is put
back when deleted or changed."""
from __future__ import annotations

from typing import Any

from kubegate.api import errors
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer

CONFIGMAP_NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


def published(existing: dict[str, Any] | None, ca_pem: str) -> dict[str, Any] | None:
    """The ConfigMap to write (None when `existing` is already right); as upstream, the data is
    exactly the bundle and the description annotation is added to whatever annotations exist."""
    if existing is None:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": CONFIGMAP_NAME, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                "data": {"ca.crt": ca_pem}}
    annotations = existing["metadata"].get("annotations") or {}
    if existing.get("data") == {"ca.crt": ca_pem} and annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION:
        return None
    new = dict(existing)
    new["metadata"] = dict(existing["metadata"], annotations={**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION})
    new["data"] = {"ca.crt": ca_pem}
    new.pop("binaryData", None)
    return new


class RootCAPublisher:
    def __init__(self, client: ControllerClient, ca_pem: str) -> None:
        self.client = client
        self.ca_pem = ca_pem
        self.queue: WorkQueue[str] = WorkQueue("root-ca-cert-publisher")
        self.informers = [Informer(client.registry("namespaces").cache, self._on_namespace),
                          Informer(client.registry("configmaps").cache, self._on_configmap)]

    def _on_namespace(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "DELETED" and obj is not None:
            self.queue.add(obj["metadata"]["name"])

    def _on_configmap(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "ADDED" and obj is not None and obj["metadata"]["name"] == CONFIGMAP_NAME:
            self.queue.add(obj["metadata"]["namespace"])

    async def run(self) -> None:
        await self.client.require("namespaces", "configmaps")
        await run_informers(self.informers, lambda: self.queue.drain(self.sync))

    async def sync(self, namespace: str) -> bool:
        ns = self.client.cached("namespaces", None, namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return True
        existing = self.client.cached("configmaps", namespace, CONFIGMAP_NAME)
        want = published(existing, self.ca_pem)
        if want is None:
            return True
        try:
            if existing is None:
                await self.client.create("configmaps", want, namespace)
            else:
                await self.client.update("configmaps", namespace, CONFIGMAP_NAME,
                                         lambda cur: published(cur, self.ca_pem) or cur)
        except errors.StatusError as e:
            if e.reason not in ("AlreadyExists", "NotFound"):  # a conflict is retried
                raise
        return True
