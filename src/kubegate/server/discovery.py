"""Discovery documents: /api, /apis, per group-version lists, and aggregated discovery (v2).

All documents are computed once from the resource registry and served as prebuilt bytes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from kubegate.api.resources import GROUP_ORDER, Resource, group_versions, resources_in

AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _api_resource(r: Resource) -> list[dict[str, Any]]:
    main: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": list(r.verbs)}
    if r.short_names:
        main["shortNames"] = list(r.short_names)
    if r.categories:
        main["categories"] = list(r.categories)
    if r.storage_version_hash:
        main["storageVersionHash"] = r.storage_version_hash
    out = [main]
    for s in r.subresources:
        sub: dict[str, Any] = {"name": f"{r.plural}/{s.name}", "singularName": "", "namespaced": r.namespaced}
        if s.group is not None:
            sub["group"] = s.group
            sub["version"] = s.version
        sub["kind"] = s.kind
        sub["verbs"] = list(s.verbs)
        out.append(sub)
    return out


def _resource_list(group: str, version: str) -> dict[str, Any]:
    gv = f"{group}/{version}" if group else version
    resources: list[dict[str, Any]] = []
    for r in resources_in(group, version):
        resources.extend(_api_resource(r))
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


def _aggregated_resource(r: Resource) -> dict[str, Any]:
    d: dict[str, Any] = {"resource": r.plural, "responseKind": {"group": "", "version": "", "kind": r.kind},
                         "scope": "Namespaced" if r.namespaced else "Cluster",
                         "singularResource": r.singular, "verbs": list(r.verbs)}
    if r.short_names:
        d["shortNames"] = list(r.short_names)
    if r.categories:
        d["categories"] = list(r.categories)
    if r.subresources:
        d["subresources"] = [
            {"subresource": s.name,
             "responseKind": {"group": s.group or "", "version": s.version or "", "kind": s.kind},
             "verbs": list(s.verbs)}
            for s in r.subresources]
    return d


def _aggregated_group(name: str, versions: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": name} if name else {},
            "versions": [{"version": v, "resources": [_aggregated_resource(r) for r in resources_in(name, v)],
                          "freshness": "Current"} for v in versions]}


@dataclass(frozen=True)
class Doc:
    body: bytes
    etag: str = ""


def _doc(obj: Any, etag: bool = False) -> Doc:
    body = orjson.dumps(obj)
    return Doc(body, '"' + hashlib.sha512(body).hexdigest().upper() + '"' if etag else "")


class Discovery:
    def __init__(self, server_address: str) -> None:
        gvs = group_versions()
        groups = [g for g in GROUP_ORDER if g in gvs]
        self.api = _doc({"kind": "APIVersions", "versions": gvs[""],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                         "serverAddress": server_address}]})
        self.apis = _doc({"kind": "APIGroupList", "apiVersion": "v1",
                          "groups": [_group(g, gvs[g]) for g in groups]})
        self.groups = {g: _doc({"kind": "APIGroup", "apiVersion": "v1", **_group(g, gvs[g])}) for g in groups}
        self.resource_lists = {(g, v): _doc(_resource_list(g, v)) for g, vs in gvs.items() for v in vs}
        self.aggregated_api = _doc({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                                    "metadata": {}, "items": [_aggregated_group("", gvs[""])]}, etag=True)
        self.aggregated_apis = _doc({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                                     "metadata": {}, "items": [_aggregated_group(g, gvs[g]) for g in groups]},
                                    etag=True)

    @staticmethod
    def wants_aggregated(accept: str | None) -> bool | None:
        """True for v2, False for plain JSON, None when only an unsupported form is asked for (406)."""
        from kubegate.server.negotiation import parse_accept
        for mt in parse_accept(accept):
            if mt.params.get("g") == "apidiscovery.k8s.io":
                if mt.params.get("v") == "v2" and mt.params.get("as") == "APIGroupDiscoveryList":
                    return True
                continue
            if mt.type in ("application/json", "*/*", "application/*") and not mt.params.get("as"):
                return False
        return None

