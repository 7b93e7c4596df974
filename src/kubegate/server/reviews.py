"""Create-only review APIs answered from the authorizer and the request's own identity:
SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview,
SelfSubjectReview. Nothing is stored."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from kubegate.api import errors
from kubegate.api.objects import now_rfc3339
from kubegate.api.resources import Resource
from kubegate.authn.user import UserInfo, user_info_json
from kubegate.authn.union import aggregate_message
from kubegate.authz.types import Attributes, Authorizer, Decision, PolicyRule, RuleResolver
from kubegate.server.bodies import decode_object, read_body
from kubegate.server.negotiation import negotiate_object
from kubegate.server.requestinfo import RequestInfo
from kubegate.server.responses import object_response

_GROUP = "authorization.k8s.io"


def _invalid(field: str, value: Any, detail: str) -> errors.StatusError:
    return errors.invalid("", "", [errors.field_invalid(field, value, detail)], _GROUP)


def _go_struct(d: dict[str, Any]) -> str:
    """The JSON form upstream prints for a Go struct value: exported field names, all fields."""
    import orjson
    return orjson.dumps({"Path": d.get("path", ""), "Verb": d.get("verb", "")}).decode()


def attributes_from_spec(spec: dict[str, Any], user: UserInfo) -> Attributes:
    ra = spec.get("resourceAttributes")
    nra = spec.get("nonResourceAttributes")
    if ra and nra:
        raise _invalid("spec.nonResourceAttributes", _GoRaw(_go_struct(nra)),
                       "cannot be specified in combination with resourceAttributes")
    if not ra and not nra:
        raise _invalid("spec.resourceAttributes", None,
                       "exactly one of nonResourceAttributes or resourceAttributes must be specified")
    if ra:
        return Attributes(user=user, verb=ra.get("verb", ""), namespace=ra.get("namespace", ""),
                          api_group=ra.get("group", ""), api_version=ra.get("version", ""),
                          resource=ra.get("resource", ""), subresource=ra.get("subresource", ""),
                          name=ra.get("name", ""), resource_request=True, path="")
    return Attributes(user=user, verb=nra.get("verb", ""), namespace="", api_group="", api_version="",
                      resource="", subresource="", name="", resource_request=False, path=nra.get("path", ""))


class _GoRaw(str):
    """A value already rendered by Go's %#v (printed unquoted in field errors)."""


def user_from_spec(spec: dict[str, Any], groups_key: str = "groups") -> UserInfo:
    extra = {k: tuple(v or ()) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(name=spec.get("user", ""), uid=spec.get("uid", ""),
                    groups=tuple(spec.get(groups_key) or ()), extra=extra)


async def read_review(http: web.Request, info: RequestInfo, r: Resource) -> tuple[dict[str, Any], list[str], Any]:
    """The body of a create-only review request (any other verb is 405): the decoded object, its
    field-validation warnings and the negotiated output format."""
    if info.verb != "create" or info.name:
        raise errors.method_not_allowed()
    out = negotiate_object(http.headers.get("Accept"), allow_transform=False)
    body = await read_body(http)
    obj, warnings = decode_object(r, r.kind, r.api_version, http.headers.get("Content-Type"), body,
                                  http.query.get("fieldValidation") or "Warn")
    obj.setdefault("metadata", {})
    return obj, warnings, out


class Reviews:
    def __init__(self, authorizer: Authorizer, rules: RuleResolver, token_reviewer: Any = None) -> None:
        self.authorizer = authorizer
        self.rules = rules
        self.token_reviewer = token_reviewer  # server.tokenreview.TokenReviewer

    async def serve(self, http: web.Request, info: RequestInfo, r: Resource, user: UserInfo) -> web.StreamResponse:
        obj, warnings, out = await read_review(http, info, r)
        spec = obj.get("spec") or {}
        if r.plural == "tokenreviews":
            obj = await self.token_reviewer.review(obj)
        elif r.plural == "selfsubjectreviews":
            obj["metadata"]["creationTimestamp"] = now_rfc3339()
            obj["status"] = {"userInfo": user_info_json(user)}
        elif r.plural == "selfsubjectrulesreviews":
            # Upstream answers a fresh object: the request's spec is not echoed.
            obj = {"kind": obj["kind"], "apiVersion": obj["apiVersion"], "metadata": {}, "spec": {},
                   "status": self._rules(spec, user)}
        else:
            subject = user
            if r.plural in ("subjectaccessreviews", "localsubjectaccessreviews"):
                groups_key = "group" if r.version == "v1beta1" else "groups"  # v1beta1's JSON name
                if not spec.get("user") and not spec.get(groups_key):
                    raise _invalid("spec.user", "", "at least one of user or group must be specified")
                subject = user_from_spec(spec, groups_key)
            attrs = attributes_from_spec(spec, subject)
            if r.plural == "localsubjectaccessreviews":
                ns = info.namespace
                if attrs.namespace != ns:
                    raise _invalid("spec.resourceAttributes.namespace", attrs.namespace,
                                   "must match metadata.namespace")
                obj["metadata"]["namespace"] = ns
            res = await self.authorizer.authorize(attrs)
            status: dict[str, Any] = {"allowed": res.decision == Decision.ALLOW}
            if res.decision == Decision.DENY:
                status["denied"] = True
            if res.reason:
                status["reason"] = res.reason
            if res.error:
                status["evaluationError"] = str(res.error)
            obj["status"] = status
        return object_response(obj, 201, out, warnings=warnings)

    def _rules(self, spec: dict[str, Any], user: UserInfo) -> dict[str, Any]:
        ns = spec.get("namespace") or ""
        if not ns:
            raise errors.bad_request("no namespace on request")
        found = self.rules.rules_for(user, ns)
        status: dict[str, Any] = {
            "resourceRules": [_resource_rule(r) for r in found.rules if r.resources],
            "nonResourceRules": [_non_resource_rule(r) for r in found.rules if r.non_resource_urls],
            "incomplete": found.incomplete,
        }
        if found.errors:
            status["evaluationError"] = aggregate_message(found.errors)
        return status


def _resource_rule(rule: PolicyRule) -> dict[str, Any]:
    out: dict[str, Any] = {"verbs": list(rule.verbs)}
    for key, value in (("apiGroups", rule.api_groups), ("resources", rule.resources),
                       ("resourceNames", rule.resource_names)):
        if value:
            out[key] = list(value)
    return out


def _non_resource_rule(rule: PolicyRule) -> dict[str, Any]:
    return {"verbs": list(rule.verbs), "nonResourceURLs": list(rule.non_resource_urls)}
