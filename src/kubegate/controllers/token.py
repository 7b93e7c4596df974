"""The service account tokens controller (upstream pkg/controller/serviceaccount/tokens_controller.go,
as since 1.24: no Secret is created automatically).

A Secret of type kubernetes.io/service-account-token that a user creates gets `token` (a legacy
token signed with the service account signing key), `ca.crt` and `namespace`, and the
ServiceAccount's uid annotation. A token Secret whose ServiceAccount is gone (or was re-created
with another uid) is deleted, so deleting a ServiceAccount cleans up its token Secrets.
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from kubegate.api import errors
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.workqueue import WorkQueue, run_informers
from kubegate.server.informer import Informer
from kubegate.serviceaccount.claims import Ref, legacy_claims

SECRET_TYPE = "kubernetes.io/service-account-token"
SA_NAME = "kubernetes.io/service-account.name"
SA_UID = "kubernetes.io/service-account.uid"


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def filled(secret: dict[str, Any], sa: dict[str, Any], ca_pem: str,
           sign: Callable[[dict[str, Any]], str]) -> dict[str, Any] | None:
    """The Secret with what it lacks filled in (upstream generateTokenIfNeeded), or None when
    nothing is missing. An existing token is kept; ca.crt and namespace are corrected."""
    m = secret["metadata"]
    ns, name = m["namespace"], m["name"]
    data = dict(secret.get("data") or {})
    annotations = dict(m.get("annotations") or {})
    want_ca, want_ns = _b64(ca_pem), _b64(ns)
    if data.get("ca.crt") == want_ca and data.get("namespace") == want_ns and data.get("token") \
            and annotations.get(SA_UID) == sa["metadata"]["uid"] and annotations.get(SA_NAME) == sa["metadata"]["name"]:
        return None
    data["ca.crt"], data["namespace"] = want_ca, want_ns
    if not data.get("token"):
        ref = Ref(sa["metadata"]["name"], sa["metadata"]["uid"])
        data["token"] = _b64(sign(legacy_claims(ns, ref, name)))
    annotations[SA_NAME] = sa["metadata"]["name"]
    annotations[SA_UID] = sa["metadata"]["uid"]
    new = dict(secret, data=data)
    new["metadata"] = dict(m, annotations=annotations)
    return new


def references(secret: dict[str, Any], sa: dict[str, Any]) -> bool:
    """Whether the Secret's annotations name this live ServiceAccount (upstream IsServiceAccountToken)."""
    annotations = secret["metadata"].get("annotations") or {}
    if annotations.get(SA_NAME) != sa["metadata"]["name"]:
        return False
    uid = annotations.get(SA_UID)
    return not uid or uid == sa["metadata"]["uid"]


class TokensController:
    def __init__(self, client: ControllerClient, ca_pem: str, sign: Callable[[dict[str, Any]], str]) -> None:
        self.client = client
        self.ca_pem = ca_pem
        self.sign = sign
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue("tokens-controller")
        self.informers = [Informer(client.registry("secrets").cache, self._on_secret),
                          Informer(client.registry("serviceaccounts").cache, self._on_serviceaccount)]

    def _on_secret(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "DELETED" and obj is not None and obj.get("type") == SECRET_TYPE:
            self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _on_serviceaccount(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        if typ != "DELETED" or obj is None:
            return
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        for secret in self.client.cached_list("secrets", ns):
            if secret.get("type") == SECRET_TYPE and (secret["metadata"].get("annotations") or {}).get(SA_NAME) == name:
                self.queue.add((ns, secret["metadata"]["name"]))

    async def run(self) -> None:
        await self.client.require("secrets", "serviceaccounts")
        await run_informers(self.informers, lambda: self.queue.drain(self.sync))

    async def sync(self, key: tuple[str, str]) -> bool:
        ns, name = key
        secret = self.client.cached("secrets", ns, name)
        if secret is None or secret.get("type") != SECRET_TYPE or secret["metadata"].get("deletionTimestamp"):
            return True
        sa_name = (secret["metadata"].get("annotations") or {}).get(SA_NAME) or ""
        sa = self.client.cached("serviceaccounts", ns, sa_name)
        if sa is None:
            # A cache miss is confirmed against the latest revision (upstream's live GET) before deleting.
            reg = self.client.registry("serviceaccounts")
            await reg.cache.wait_for_revision(await reg.store.current_revision())
            sa = self.client.cached("serviceaccounts", ns, sa_name)
        if sa is None or not references(secret, sa):
            uid = secret["metadata"].get("uid")
            try:
                await self.client.delete("secrets", ns, name, {"preconditions": {"uid": uid}} if uid else None)
            except errors.StatusError as e:
                if e.code not in (404, 409):  # gone, or replaced by another Secret of that name
                    raise
            return True
        if filled(secret, sa, self.ca_pem, self.sign) is None:
            return True
        try:
            await self.client.update("secrets", ns, name, lambda cur: filled(cur, sa, self.ca_pem, self.sign) or cur)
        except errors.StatusError as e:
            if e.code != 404:
                raise
        return True
