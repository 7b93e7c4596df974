"""The in-process API access of a controller, under its own identity.

Upstream's kube-controller-manager (with --use-service-account-credentials, as kubeadm runs it)
talks to the apiserver as `system:serviceaccount:kube-system:<controller>`, bound by the default
policy to `system:controller:<controller>`; the tokens controller uses the manager's own identity
`system:kube-controller-manager`. Every write here is authorized as that request would be, so
removing a default binding stops a controller exactly as it would upstream. Reads come from the
watch caches the controller follows; `require` checks list/watch on them once at start.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kubegate.api import errors
from kubegate.api.registry import Decoded, ResourceRegistry
from kubegate.authn.user import (
    ALL_AUTHENTICATED, KUBE_CONTROLLER_MANAGER, SERVICE_ACCOUNT_GROUP, UserInfo, service_account_username,
)
from kubegate.authz.messages import forbidden_message
from kubegate.authz.types import Attributes, Authorizer

log = logging.getLogger("kubegate.controllers")

CONTROLLER_NAMESPACE = "kube-system"
_RETRY_SECONDS = 5.0


def controller_user(name: str) -> UserInfo:
    """The service account identity of controller `name` (e.g. "namespace-controller")."""
    return UserInfo(service_account_username(CONTROLLER_NAMESPACE, name),
                    groups=(SERVICE_ACCOUNT_GROUP, f"{SERVICE_ACCOUNT_GROUP}:{CONTROLLER_NAMESPACE}", ALL_AUTHENTICATED))


CONTROLLER_MANAGER = UserInfo(KUBE_CONTROLLER_MANAGER, groups=(ALL_AUTHENTICATED,))


class ControllerClient:
    def __init__(self, user: UserInfo, authorizer: Authorizer, registries: dict[str, ResourceRegistry]) -> None:
        self.user = user
        self._authorizer = authorizer
        self._registries = registries

    def registry(self, plural: str) -> ResourceRegistry:
        return self._registries[plural]

    def cached(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        d = self._registries[plural].get_cached(namespace, name)
        return None if d is None else d.obj

    def cached_list(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        reg = self._registries[plural]
        entries, _, _ = reg.cache.list(reg.resource.list_prefix(namespace))
        return [e.object.obj for e in entries]

    async def authorize(self, verb: str, plural: str, namespace: str | None, name: str = "",
                        subresource: str = "", user: UserInfo | None = None) -> None:
        r = self._registries[plural].resource
        attrs = Attributes(user=user or self.user, verb=verb, namespace=namespace or "", api_group=r.group,
                           api_version=r.version, resource=plural, subresource=subresource, name=name,
                           resource_request=True)
        res = await self._authorizer.authorize(attrs)
        if not res.allowed:
            raise forbidden_message(attrs, res.reason)

    async def require(self, *plurals: str) -> None:
        """Waits for the list/watch permission behind the caches a controller reads, as an informer
        retries a forbidden list. Upstream's shared informers list and watch as the manager itself."""
        while True:
            try:
                for plural in plurals:
                    for verb in ("list", "watch"):
                        await self.authorize(verb, plural, None, user=CONTROLLER_MANAGER)
                return
            except errors.StatusError as e:
                log.warning("%s: %s", CONTROLLER_MANAGER.name, e.message)
                await asyncio.sleep(_RETRY_SECONDS)

    async def create(self, plural: str, obj: dict[str, Any], namespace: str | None) -> Decoded:
        await self.authorize("create", plural, namespace)
        return await self._registries[plural].create(obj, namespace=namespace)

    async def update(self, plural: str, namespace: str | None, name: str,
                     mutate: Callable[[dict[str, Any]], dict[str, Any]], *, subresource: str = "",
                     verb: str = "update") -> Decoded:
        """A read-modify-write retried on conflict, authorized as the update or patch upstream's
        controller sends."""
        await self.authorize(verb, plural, namespace, name, subresource)
        return await self._registries[plural].guaranteed_update(namespace, name, mutate, subresource=subresource)

    async def delete(self, plural: str, namespace: str | None, name: str,
                     options: dict[str, Any] | None = None) -> tuple[Decoded, bool]:
        await self.authorize("delete", plural, namespace, name)
        return await self._registries[plural].delete(namespace, name, options=options)
