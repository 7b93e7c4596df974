"""Webhook authorizer (upstream apiserver/plugin/pkg/authorizer/webhook): every decision not
already cached is a SubjectAccessReview POSTed to a remote service configured by a kubeconfig
file. A failed call is NoOpinion with the error, so later authorizers still decide and, when
none allows, the request fails with 500 as upstream's filter answers evaluation errors."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

from kubegate.api.gojson import GoStruct, unmarshal_type_error
from kubegate.api.selectors import SelectorError, parse_label_selector_or_error, parse_raw_field_selector
from kubegate.authn.user import UserInfo
from kubegate.authz.types import Attributes, AuthzResult, Decision, RuleSet
from kubegate.webhook.client import DEFAULT_REQUEST_TIMEOUT, WebhookError

log = logging.getLogger("kubegate.authz.webhook")

VERSIONS = ("v1", "v1beta1")
DEFAULT_VERSION = "v1beta1"  # kube-apiserver's --authorization-webhook-version default
DEFAULT_AUTHORIZED_TTL = 300.0
DEFAULT_UNAUTHORIZED_TTL = 30.0
RULES_ERROR = "webhook authorizer does not support user rule resolution"
BOTH_ERROR = "webhook subject access review returned both allow and deny response"
# Requests whose requester-controlled attributes are this long or longer are never cached (DoS guard).
_MAX_CONTROLLED_ATTR_CACHE_SIZE = 10000
_CACHE_ENTRIES = 8192
_LABEL_OPS = {"=": "In", "==": "In", "in": "In", "!=": "NotIn", "notin": "NotIn", "exists": "Exists",
              "!": "DoesNotExist"}


class Poster(Protocol):
    async def post(self, body: Mapping[str, Any], timeout: float = DEFAULT_REQUEST_TIMEOUT) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def unsupported_version_error(version: str) -> str | None:
    if version in VERSIONS:
        return None
    return f'unsupported webhook authorizer version "{version}", supported versions are [{" ".join(VERSIONS)}]'


def _response_struct(version: str) -> GoStruct:
    """The parts of the SubjectAccessReview the answer is decoded into that the decision reads."""
    status = GoStruct(f"{version}.SubjectAccessReviewStatus", "SubjectAccessReviewStatus",
                      {"allowed": "bool", "denied": "bool", "reason": "string", "evaluationError": "string"})
    return GoStruct(f"{version}.SubjectAccessReview", "SubjectAccessReview", {
        "apiVersion": "string", "kind": "string",
        "metadata": GoStruct("v1.ObjectMeta", "ObjectMeta", {}),
        "spec": GoStruct(f"{version}.SubjectAccessReviewSpec", "SubjectAccessReviewSpec", {}),
        "status": status})


def review_spec(attrs: Attributes, version: str = "v1") -> dict[str, Any]:
    """The SubjectAccessReviewSpec for a request, keys in Go's field order, empty ones omitted.
    v1beta1 names the groups array `group`."""
    spec: dict[str, Any] = {}
    if attrs.resource_request:
        spec["resourceAttributes"] = _resource_attributes(attrs)
    else:
        spec["nonResourceAttributes"] = _omit_empty({"path": attrs.path, "verb": attrs.verb})
    user = attrs.user
    if user.name:
        spec["user"] = user.name
    if user.groups:
        spec["groups" if version == "v1" else "group"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(user.extra[k]) for k in sorted(user.extra)}
    if user.uid:
        spec["uid"] = user.uid
    return spec


def _omit_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v}


def _resource_attributes(attrs: Attributes) -> dict[str, Any]:
    out = _omit_empty({"namespace": attrs.namespace, "verb": attrs.verb, "group": attrs.api_group,
                       "version": attrs.api_version, "resource": attrs.resource,
                       "subresource": attrs.subresource, "name": attrs.name})
    # Selectors only narrow a request, so requirements that cannot be expressed (or a selector
    # that does not parse) are left out: the webhook then judges the broader request.
    fields = _field_requirements(attrs.field_selector)
    if fields:
        out["fieldSelector"] = {"requirements": fields}
    labels = _label_requirements(attrs.label_selector)
    if labels:
        out["labelSelector"] = {"requirements": labels}
    return out


def _field_requirements(raw: str) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        terms = parse_raw_field_selector(raw).terms
    except SelectorError:
        return []
    return [{"key": t.field, "operator": "In" if t.op == "=" else "NotIn", "values": [t.value]} for t in terms]


def _label_requirements(raw: str) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        reqs = parse_label_selector_or_error(raw).requirements
    except SelectorError:
        return []
    out: list[dict[str, Any]] = []
    for r in reqs:
        if r.op not in _LABEL_OPS:  # gt, lt
            continue
        req: dict[str, Any] = {"key": r.key, "operator": _LABEL_OPS[r.op]}
        if r.values:
            req["values"] = sorted(r.values)
        out.append(req)
    return out


def review_body(spec: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The SubjectAccessReview as client-go encodes it (metadata and status always present)."""
    return {"kind": "SubjectAccessReview", "apiVersion": f"authorization.k8s.io/{version}", "metadata": {},
            "spec": spec, "status": {"allowed": False}}


def decision(status: Mapping[str, Any]) -> AuthzResult:
    """The authorizer's answer for a review status: denied wins, both set is a Deny with an error."""
    reason = status.get("reason") or ""
    allowed, denied = bool(status.get("allowed")), bool(status.get("denied"))
    if denied and allowed:
        return AuthzResult(Decision.DENY, reason, BOTH_ERROR)
    if denied:
        return AuthzResult(Decision.DENY, reason)
    if allowed:
        return AuthzResult(Decision.ALLOW, reason)
    return AuthzResult(Decision.NO_OPINION, reason)


def _should_cache(attrs: Attributes) -> bool:
    size = sum(len(s.encode()) for s in (attrs.namespace, attrs.verb, attrs.api_group, attrs.api_version,
                                         attrs.resource, attrs.subresource, attrs.name, attrs.path))
    return size < _MAX_CONTROLLED_ATTR_CACHE_SIZE


class _ExpiringLRU:
    """cache.LRUExpireCache: bounded, least recently used evicted first, entries die at their TTL."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()

    def get(self, key: bytes) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry[0]:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def add(self, key: bytes, value: dict[str, Any], ttl: float) -> None:
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class WebhookAuthorizer:
    def __init__(self, client: Poster, version: str = DEFAULT_VERSION,
                 authorized_ttl: float = DEFAULT_AUTHORIZED_TTL, unauthorized_ttl: float = DEFAULT_UNAUTHORIZED_TTL,
                 timeout: float = DEFAULT_REQUEST_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        err = unsupported_version_error(version)
        if err:
            raise ValueError(err)
        self._client = client
        self._version = version
        self._response = _response_struct(version)
        self._authorized_ttl = authorized_ttl
        self._unauthorized_ttl = unauthorized_ttl
        self._timeout = timeout
        self._cache = _ExpiringLRU(_CACHE_ENTRIES, clock)

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        spec = review_spec(attrs, self._version)
        key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
        status = self._cache.get(key)
        if status is None:
            try:
                status = await self._review(spec)
            except WebhookError as e:
                log.error("Failed to make webhook authorizer request: %s", e)
                return AuthzResult(Decision.NO_OPINION, "", str(e))
            if _should_cache(attrs):
                ttl = self._authorized_ttl if status.get("allowed") else self._unauthorized_ttl
                self._cache.add(key, status, ttl)
        return decision(status)

    async def _review(self, spec: dict[str, Any]) -> dict[str, Any]:
        answer = await self._client.post(review_body(spec, self._version), self._timeout)
        err = unmarshal_type_error(answer, self._response)
        if err:
            raise WebhookError(err)
        status = answer.get("status") or {}
        return {k: status[k] for k in ("allowed", "denied", "reason") if status.get(k) is not None}

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        return RuleSet(incomplete=True, errors=(RULES_ERROR,))

    async def run(self) -> None:
        """Background task: keeps the client's connections until shutdown, then closes them."""
        try:
            await asyncio.Event().wait()
        finally:
            await self._client.close()
