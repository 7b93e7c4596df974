"""The in-process API access of a controller, under its own identity.

Upstream's kube-controller-manager (with --use-service-account-credentials, as kubeadm runs it)
talks to the apiserver as `system:serviceaccount:kube-system:<controller>`, bound by the default
policy to `system:controller:<controller>`; the tokens controller uses the manager's own identity
`system:kube-controller-manager`. Every write here is authorized as that request would be, so
removing a default binding stops a controller exactly as it would upstream; and every write passes
the admission chain as a request would (defaulting, mutating plugins, validation, validating plugins),
so a controller's pod gets its service account volume and Pod Security can refuse it. Reads come
from the watch caches the controller follows; `require` checks list/watch on them once at start.
"""
from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from typing import Any

from kubegate.admission.chain import AdmissionChain
from kubegate.admission.interface import CREATE, DELETE, UPDATE, AdmissionRequest, validating_name
from kubegate.api import defaults, errors
from kubegate.api.registry import AdmitHook, Decoded, ResourceRegistry
from kubegate.authn.user import (
    ALL_AUTHENTICATED, KUBE_CONTROLLER_MANAGER, SERVICE_ACCOUNT_GROUP, UserInfo, service_account_username,
)
from kubegate.authz.messages import forbidden_message
from kubegate.authz.types import Attributes, Authorizer

log = logging.getLogger("kubegate.controllers")

CONTROLLER_NAMESPACE = "kube-system"
_RETRY_SECONDS = 5.0
_UPDATE_ATTEMPTS = 16

Target = str | ResourceRegistry  # a plural of the client's registries, or a registry itself


def controller_user(name: str) -> UserInfo:
    """The service account identity of controller `name` (e.g. "namespace-controller")."""
    return UserInfo(service_account_username(CONTROLLER_NAMESPACE, name),
                    groups=(SERVICE_ACCOUNT_GROUP, f"{SERVICE_ACCOUNT_GROUP}:{CONTROLLER_NAMESPACE}", ALL_AUTHENTICATED))


CONTROLLER_MANAGER = UserInfo(KUBE_CONTROLLER_MANAGER, groups=(ALL_AUTHENTICATED,))


class ControllerClient:
    def __init__(self, user: UserInfo, authorizer: Authorizer, registries: dict[str, ResourceRegistry],
                 admission: AdmissionChain) -> None:
        self.user = user
        self._authorizer = authorizer
        self._registries = registries
        self._admission = admission

    def registry(self, target: Target) -> ResourceRegistry:
        return self._registries[target] if isinstance(target, str) else target

    def cached(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        d = self._registries[plural].get_cached(namespace, name)
        return None if d is None else d.obj

    def cached_list(self, target: Target, namespace: str | None = None) -> list[dict[str, Any]]:
        reg = self.registry(target)
        entries, _, _ = reg.cache.list(reg.resource.list_prefix(namespace))
        return [e.object.obj for e in entries]

    async def authorize(self, verb: str, target: Target, namespace: str | None, name: str = "",
                        subresource: str = "", user: UserInfo | None = None) -> None:
        r = self.registry(target).resource
        attrs = Attributes(user=user or self.user, verb=verb, namespace=namespace or "", api_group=r.group,
                           api_version=r.version, resource=r.plural, subresource=subresource, name=name,
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

    def _request(self, operation: str, reg: ResourceRegistry, namespace: str | None, name: str,
                 obj: dict[str, Any] | None, old: dict[str, Any] | None, subresource: str = "",
                 options: dict[str, Any] | None = None) -> AdmissionRequest:
        return AdmissionRequest(operation, reg.resource, namespace or "", name, self.user, obj, old,
                                subresource=subresource, options=options or {})

    def _validating(self, areq: AdmissionRequest) -> AdmitHook:
        """The validating phase, run by the registry on the object as it will be stored."""
        async def validate(obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
            areq.obj, areq.old = obj, old
            areq.name = validating_name(areq)
            await self._admission.validate(areq)
        return validate

    async def create(self, target: Target, obj: dict[str, Any], namespace: str | None) -> Decoded:
        reg = self.registry(target)
        await self.authorize("create", reg, namespace)
        defaults.apply_defaults(reg.resource, obj)  # the apiserver decodes with defaulting
        areq = self._request(CREATE, reg, namespace, str((obj.get("metadata") or {}).get("name") or ""), obj, None)
        await self._admission.admit(areq)
        return await reg.create(areq.obj or obj, namespace=namespace, admit=self._validating(areq))

    async def update(self, target: Target, namespace: str | None, name: str,
                     mutate: Callable[[dict[str, Any]], dict[str, Any]], *, subresource: str = "",
                     verb: str = "update") -> Decoded:
        """A read-modify-write retried on conflict, authorized as the update or patch upstream's
        controller sends; each attempt is admitted like the apiserver's update inside its retry."""
        reg = self.registry(target)
        r = reg.resource
        await self.authorize(verb, reg, namespace, name, subresource)
        conflict: errors.StatusError | None = None
        for _ in range(_UPDATE_ATTEMPTS):
            current = await reg.get(namespace, name)
            new = mutate(copy.deepcopy(current.obj))
            new["metadata"]["resourceVersion"] = current.obj["metadata"]["resourceVersion"]
            if not subresource:
                defaults.apply_defaults(r, new)
            areq = self._request(UPDATE, reg, namespace, name, new, current.obj, subresource)
            await self._admission.admit(areq)
            try:
                return await reg.update(areq.obj or new, namespace=namespace, name=name, subresource=subresource,
                                        old=current, admit=self._validating(areq))
            except errors.StatusError as e:
                if e.reason != "Conflict":
                    raise
                conflict = e
        assert conflict is not None
        raise conflict

    async def update_status(self, target: Target, namespace: str | None, name: str,
                            status: dict[str, Any]) -> Decoded | None:
        """Writes `status` through the status subresource; None when the object is gone meanwhile."""
        try:
            return await self.update(target, namespace, name, lambda cur: dict(cur, status=status),
                                     subresource="status")
        except errors.StatusError as e:
            if e.code != 404:
                raise
            return None

    async def delete(self, target: Target, namespace: str | None, name: str,
                     options: dict[str, Any] | None = None) -> tuple[Decoded, bool]:
        reg = self.registry(target)
        await self.authorize("delete", reg, namespace, name)
        current = await reg.get(namespace, name)
        areq = self._request(DELETE, reg, namespace, name, None, current.obj, options=options)
        await self._admission.admit(areq)
        return await reg.delete(namespace, name, options=options, admit=self._validating(areq))
