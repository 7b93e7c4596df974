"""`kubegate.dev/v1alpha1`: who-can, explain-access and rolesum over HTTP, for tools and the CLI.

Three create-only review kinds, answered and never stored (like SubjectAccessReview):

  POST /apis/kubegate.dev/v1alpha1/whocanreviews      WhoCanReview
       spec: {verb, resource, group?, subresource?, name?, namespace?, allNamespaces?, nonResourceURL?}
  POST /apis/kubegate.dev/v1alpha1/accessexplanations  AccessExplanation
       spec: {user?, groups?, verb, resource, group?, subresource?, name?, namespace?, nonResourceURL?}
  POST /apis/kubegate.dev/v1alpha1/rolesummaries       RoleSummary
       spec: {kind: User|Group|ServiceAccount, name, groups?}

`resource` may be a plural, singular, short name or kind, optionally `resource.group` and/or
`resource/subresource` (`deploy`, `deployments.apps`, `pods/log`). The group is not in discovery,
so kubectl's view of the cluster is unchanged. Each question is authorized on its own, through the
server's whole authorizer chain, by what it reveals:

- who-can reads bindings: `list clusterrolebindings`, and `list rolebindings` in the namespace
  asked about (cluster-wide for allNamespaces);
- explain-access about yourself needs what `kubectl auth can-i` needs (create
  selfsubjectaccessreviews); about someone else, create subjectaccessreviews, or impersonate that
  user and each of the groups given;
- rolesum of yourself needs create selfsubjectrulesreviews; of anyone else, list
  clusterrolebindings and rolebindings cluster-wide.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from kubegate.api import errors
from kubegate.api.resources import RESOURCES
from kubegate.authn.user import UserInfo
from kubegate.authz import explain
from kubegate.authz.messages import forbidden_message
from kubegate.authz.privileged import PrivilegedGroups
from kubegate.authz.rbac import RBACAuthorizer
from kubegate.authz.types import Attributes, Decision
from kubegate.authz.union import UnionAuthorizer
from kubegate.server.bodies import read_body
from kubegate.server.negotiation import decode_body
from kubegate.server.requestinfo import RequestInfo
from kubegate.server.responses import object_response

GROUP = "kubegate.dev"
VERSION = "v1alpha1"
KINDS = {"whocanreviews": "WhoCanReview", "accessexplanations": "AccessExplanation",
         "rolesummaries": "RoleSummary"}
_RBAC = "rbac.authorization.k8s.io"


def resolve_resource(resource: str, group: str | None = None) -> tuple[str, str, str]:
    """(plural, group, subresource) for a name as kubectl accepts it; unknown names pass through."""
    resource, _, sub = resource.partition("/")
    name, _, suffix = resource.partition(".")
    want_group = group if group is not None else (suffix if suffix else None)
    lowered = name.lower()
    for r in RESOURCES:
        if want_group is not None and r.group != want_group:
            continue
        if lowered in (r.plural, r.singular, r.kind.lower(), *r.short_names):
            return r.plural, r.group, sub
    return name, want_group or "", sub


def authorizer_name(authorizer: Any) -> str:
    if authorizer is None:
        return ""
    if isinstance(authorizer, PrivilegedGroups):
        return "system:masters"
    cls = type(authorizer).__name__
    return cls[:-len("Authorizer")] if cls.endswith("Authorizer") and cls != "Authorizer" else cls


def attributes_from(spec: dict[str, Any], user: UserInfo) -> Attributes:
    verb = str(spec.get("verb") or "")
    if not verb:
        raise errors.invalid("", "", [errors.field_required("spec.verb")], GROUP)
    url = str(spec.get("nonResourceURL") or "")
    if url:
        return Attributes(user=user, verb=verb, path=url)
    if not spec.get("resource"):
        raise errors.invalid("", "", [errors.field_required(
            "spec.resource", "one of resource or nonResourceURL must be specified")], GROUP)
    plural, group, sub = resolve_resource(str(spec["resource"]), spec.get("group"))
    return Attributes(user=user, verb=verb, namespace=str(spec.get("namespace") or ""), api_group=group,
                      api_version="*", resource=plural, subresource=str(spec.get("subresource") or sub),
                      name=str(spec.get("name") or ""), resource_request=True)


class ExplainAPI:
    def __init__(self, chain: UnionAuthorizer, rbac: RBACAuthorizer) -> None:
        self.chain = chain
        self.rbac = rbac

    async def serve(self, http: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        kind = KINDS.get(info.resource) if info.api_version == VERSION else None
        if kind is None or info.subresource or info.name or info.namespace:
            raise errors.not_found_resource()
        if info.verb != "create":
            raise errors.method_not_allowed()
        obj, _ = decode_body(http.headers.get("Content-Type"), await read_body(http))
        if not isinstance(obj, dict) or not isinstance(obj.get("spec") or {}, dict):
            raise errors.bad_request("the body must be an object with a spec object")
        spec: dict[str, Any] = obj.get("spec") or {}
        if info.resource == "whocanreviews":
            status = await self._who_can(spec, user)
        elif info.resource == "accessexplanations":
            status = await self._explain(spec, user)
        else:
            status = await self._rolesum(spec, user)
        return object_response({"kind": kind, "apiVersion": f"{GROUP}/{VERSION}", "metadata": {},
                                "spec": spec, "status": status}, 201)

    async def _require(self, user: UserInfo, verb: str, resource: str, group: str, namespace: str = "",
                       name: str = "") -> None:
        if not await self._may(user, verb, resource, group, namespace, name):
            attrs = Attributes(user=user, verb=verb, namespace=namespace, api_group=group, resource=resource,
                               name=name, resource_request=True)
            raise forbidden_message(attrs, "")

    async def _may(self, user: UserInfo, verb: str, resource: str, group: str, namespace: str = "",
                   name: str = "") -> bool:
        attrs = Attributes(user=user, verb=verb, namespace=namespace, api_group=group, api_version="*",
                           resource=resource, name=name, resource_request=True)
        return (await self.chain.authorize(attrs)).decision is Decision.ALLOW

    async def _who_can(self, spec: dict[str, Any], user: UserInfo) -> dict[str, Any]:
        attrs = attributes_from(spec, UserInfo(name=""))
        all_ns = bool(spec.get("allNamespaces"))
        await self._require(user, "list", "clusterrolebindings", _RBAC)
        if all_ns or attrs.namespace:
            await self._require(user, "list", "rolebindings", _RBAC, "" if all_ns else attrs.namespace)
        doc = explain.who_can(self.rbac, attrs, all_namespaces=all_ns)
        others = [authorizer_name(a) for a in self.chain.authorizers if not isinstance(a, (PrivilegedGroups,
                                                                                             RBACAuthorizer))]
        if others:
            doc["notEnumerated"] = others  # authorizers that cannot list who they would allow
        doc["resource"] = {"resource": attrs.resource, "group": attrs.api_group, "subresource": attrs.subresource} \
            if attrs.resource_request else {"nonResourceURL": attrs.path}
        return doc

    async def _explain(self, spec: dict[str, Any], user: UserInfo) -> dict[str, Any]:
        name = spec.get("user")
        groups = tuple(str(g) for g in spec.get("groups") or ())
        if not name and not groups:
            subject = user
            await self._require(user, "create", "selfsubjectaccessreviews", "authorization.k8s.io")
        else:
            subject = UserInfo(name=str(name or ""), groups=groups)
            if not await self._may(user, "create", "subjectaccessreviews", "authorization.k8s.io"):
                if subject.name:
                    await self._require(user, "impersonate", "users", "", name=subject.name)
                for g in groups:
                    await self._require(user, "impersonate", "groups", "", name=g)
        attrs = attributes_from(spec, subject)
        result, decided_by = await self.chain.authorize_traced(attrs)
        return {"user": subject.name, "groups": list(subject.groups),
                **explain.explain(self.rbac, attrs, result, authorizer_name(decided_by))}

    async def _rolesum(self, spec: dict[str, Any], user: UserInfo) -> dict[str, Any]:
        kind = str(spec.get("kind") or "User")
        if kind not in ("User", "Group", "ServiceAccount"):
            raise errors.invalid("", "", [errors.field_not_supported("spec.kind", kind,
                                                                     ["User", "Group", "ServiceAccount"])], GROUP)
        if not spec.get("name"):
            raise errors.invalid("", "", [errors.field_required("spec.name")], GROUP)
        subject = explain.subject_user(kind, str(spec["name"]), [str(g) for g in spec.get("groups") or ()])
        if kind != "Group" and subject.name == user.name:
            await self._require(user, "create", "selfsubjectrulesreviews", "authorization.k8s.io")
        else:
            await self._require(user, "list", "clusterrolebindings", _RBAC)
            await self._require(user, "list", "rolebindings", _RBAC)
        return explain.rolesum(self.rbac, subject)


def is_explain_request(info: RequestInfo) -> bool:
    return info.is_resource_request and info.api_group == GROUP

