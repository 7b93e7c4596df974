"""NetworkPolicyReview (netpol.kubegate.dev/v1alpha1): the engine's answers over HTTP.

Create-only and never stored, like SubjectAccessReview:

  POST /apis/netpol.kubegate.dev/v1alpha1/networkpolicyreviews
  spec: {from: "ns/pod"|IP, to: "ns/pod"|IP, port: 80, protocol: TCP}   -> status: the verdict
  spec: {namespaces: ["ns", ...] (empty = all), port: 80, protocol: TCP} -> status: the matrix

The request itself is authorized by the server's authorizer chain (`create
networkpolicyreviews.netpol.kubegate.dev`). Because an answer reveals pods and policies, the
handler then also requires `list pods` and `list networkpolicies` in every namespace the answer
is computed from (cluster-wide for a matrix of all namespaces) and answers 403 otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubegate.api import errors
from kubegate.api.errors import Cause, field_forbidden, field_invalid, field_not_supported, field_required
from kubegate.api.registry import ResourceRegistry
from kubegate.api.resources import Resource
from kubegate.api.validation import names
from kubegate.authn.user import UserInfo
from kubegate.authz.messages import forbidden_message
from kubegate.authz.types import Attributes, Authorizer, Decision
from kubegate.netpol.engine import Engine
from kubegate.netpol.model import PROTOCOLS, EndpointRef, ModelError, Snapshot
from kubegate.server.requestinfo import RequestInfo
from kubegate.server.responses import object_response
from kubegate.server.reviews import read_review

GROUP = "netpol.kubegate.dev"
KIND = "NetworkPolicyReview"


@dataclass(frozen=True)
class Question:
    """A validated review spec: a check (src and dst) or a matrix (namespaces, None = all)."""

    port: int
    protocol: str
    src: EndpointRef | None = None
    dst: EndpointRef | None = None
    namespaces: list[str] | None = None

    def scope(self) -> list[str]:
        """The namespaces whose pods and policies the answer depends on ("" = all of them)."""
        if self.src is not None and self.dst is not None:
            return sorted({r.namespace for r in (self.src, self.dst) if r.ip is None})
        return sorted(set(self.namespaces)) if self.namespaces else [""]


def _invalid(causes: list[Cause]) -> errors.StatusError:
    return errors.invalid(KIND, "", causes, GROUP)


def parse_spec(spec: Any) -> Question:
    """The spec's question, or 422 with every problem as a field cause."""
    spec = spec if isinstance(spec, dict) else {}
    causes: list[Cause] = []
    port = spec.get("port")
    if port is None:
        causes.append(field_required("spec.port"))
    elif not isinstance(port, int) or isinstance(port, bool):
        causes.append(field_invalid("spec.port", port, "must be an integer"))
    else:
        causes += [field_invalid("spec.port", port, m) for m in names.is_valid_port_num(port)]
    protocol = spec.get("protocol") or "TCP"
    if protocol not in PROTOCOLS:
        causes.append(field_not_supported("spec.protocol", protocol, list(PROTOCOLS)))
    refs: dict[str, EndpointRef] = {}
    check = spec.get("from") is not None or spec.get("to") is not None
    if check:
        for key in ("from", "to"):
            value = spec.get(key)
            if not value:
                causes.append(field_required(f"spec.{key}", "with `from` or `to`, both are needed"))
                continue
            try:
                refs[key] = EndpointRef.parse(str(value))
            except ModelError as e:
                causes.append(field_invalid(f"spec.{key}", value, str(e)))
        if spec.get("namespaces"):
            causes.append(field_forbidden("spec.namespaces", "may not be specified with `from` and `to`"))
    namespaces = spec.get("namespaces") or []
    if not isinstance(namespaces, list) or not all(isinstance(n, str) and n for n in namespaces):
        causes.append(field_invalid("spec.namespaces", namespaces, "must be a list of namespace names"))
    if causes:
        raise _invalid(causes)
    if check:
        return Question(port, protocol, refs["from"], refs["to"])
    return Question(port, protocol, namespaces=namespaces or None)


def answer(q: Question, snap: Snapshot) -> dict[str, Any]:
    """The status for a question over a snapshot (pure)."""
    engine = Engine(snap)
    if q.src is not None and q.dst is not None:
        causes = []
        ends = []
        for key, ref in (("from", q.src), ("to", q.dst)):
            try:
                ends.append(snap.resolve(ref))
            except ModelError as e:
                causes.append(field_invalid(f"spec.{key}", str(ref), str(e)))
        if causes:
            raise _invalid(causes)
        return engine.evaluate(ends[0], ends[1], q.port, q.protocol).to_json()
    wanted = q.namespaces
    if wanted:
        missing = [field_invalid(f"spec.namespaces[{i}]", ns, f'namespace "{ns}" not found')
                   for i, ns in enumerate(wanted) if not snap.known_namespace(ns)]
        if missing:
            raise _invalid(missing)
    pods = [p for p in snap.pods.values() if not wanted or p.namespace in wanted]
    return engine.matrix(pods, q.port, q.protocol).to_json()


class NetpolReviews:
    def __init__(self, authorizer: Authorizer, registries: dict[str, ResourceRegistry]) -> None:
        self.authorizer = authorizer
        self.registries = registries  # namespaces, pods, networkpolicies

    def _objects(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        reg = self.registries[plural]
        entries = reg.cache.list(reg.resource.list_prefix(namespace or None)).entries
        return [reg.present(e.object).obj for e in entries]

    def snapshot(self, scope: list[str]) -> Snapshot:
        snap = Snapshot()
        for ns in scope:
            if ns:
                found = self.registries["namespaces"].get_cached(None, ns)
                nss = [found.obj] if found is not None else []
            else:
                nss = self._objects("namespaces", "")
            for obj in nss:
                snap.add(dict(obj, kind="Namespace"))
            for obj in self._objects("pods", ns):
                snap.add(dict(obj, kind="Pod"))
            for obj in self._objects("networkpolicies", ns):
                snap.add(dict(obj, kind="NetworkPolicy"))
        return snap

    async def _may_read(self, user: UserInfo, namespaces: list[str]) -> None:
        for ns in namespaces:
            for group, plural in (("", "pods"), ("networking.k8s.io", "networkpolicies")):
                attrs = Attributes(user=user, verb="list", namespace=ns, api_group=group, api_version="v1",
                                   resource=plural, subresource="", name="", resource_request=True, path="")
                res = await self.authorizer.authorize(attrs)
                if res.decision != Decision.ALLOW:
                    raise forbidden_message(attrs, res.reason)

    async def serve(self, http: web.Request, info: RequestInfo, r: Resource, user: UserInfo) -> web.StreamResponse:
        obj, warnings, out = await read_review(http, info, r)
        q = parse_spec(obj.get("spec"))
        scope = q.scope()
        await self._may_read(user, scope)
        try:
            obj["status"] = answer(q, self.snapshot(scope))
        except ModelError as e:  # a stored object the engine cannot use
            raise errors.internal(str(e)) from None
        return object_response(obj, 201, out, warnings=warnings)
