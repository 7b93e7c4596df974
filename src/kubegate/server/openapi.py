"""OpenAPI v2 and v3 documents built from the schema tables.

kubectl uses the v3 documents for `explain`, for the patch metadata of client-side `apply`,
and to learn that the server does field validation (the `fieldValidation` query parameter on
write operations), so `apply`/`create` validate on the server. Kinds without a PATCH operation
(the create-only reviews) are validated by kubectl itself against /openapi/v2 in gnostic's
protobuf encoding. Documents are built lazily, once, and served as prebuilt bytes with a
content hash.
"""
from __future__ import annotations

import email.utils
import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

import orjson
from aiohttp import web

from kubegate import schema
from kubegate.api import errors
from kubegate.api.resources import RESOURCES, Resource, group_versions
from kubegate.server.negotiation import JSON
from kubegate.server.openapi_v2_proto import encode_document
from kubegate.server.responses import BASE_HEADERS, not_found_page

_SCALARS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"},
    "bool": {"type": "boolean"},
    "bytes": {"type": "string", "format": "byte"},
    "double": {"type": "number", "format": "double"},
}

_SPECIAL: dict[str, dict[str, Any]] = {
    schema.QUANTITY: {"type": "string"},
    schema.INT_OR_STRING: {"type": "string", "format": "int-or-string"},
    schema.TIME: {"type": "string", "format": "date-time"},
    schema.MICRO_TIME: {"type": "string", "format": "date-time"},
    schema.DURATION: {"type": "string"},
    schema.RAW_EXTENSION: {"type": "object"},
    schema.FIELDS_V1: {"type": "object"},
}


def _ref(name: str, v3: bool) -> dict[str, Any]:
    return {"$ref": ("#/components/schemas/" if v3 else "#/definitions/") + name}


def _value(kind: str, ref: str | None, v3: bool) -> dict[str, Any]:
    if kind in _SCALARS:
        return dict(_SCALARS[kind])
    if ref:
        return _ref(ref, v3)
    return {"type": "object"}


def _property(f: schema.Field, v3: bool) -> dict[str, Any]:
    if f.type == "map":
        mv = f.map_value or "string"
        inner = _value(mv, None if mv in _SCALARS else mv, v3)
        prop: dict[str, Any] = {"type": "object", "additionalProperties": inner}
    else:
        inner = _value(f.type, f.ref, v3)
        prop = {"type": "array", "items": inner} if f.repeated else inner
    if "$ref" in prop and v3:
        prop = {"allOf": [prop]}
    if f.description:
        prop["description"] = f.description
    if f.patch_strategy:
        prop["x-kubernetes-patch-strategy"] = f.patch_strategy
    if f.patch_merge_key:
        prop["x-kubernetes-patch-merge-key"] = f.patch_merge_key
    if f.list_type:
        prop["x-kubernetes-list-type"] = f.list_type
    if f.list_map_keys:
        prop["x-kubernetes-list-map-keys"] = list(f.list_map_keys)
    return prop


# TypeMeta, which kinds embed but no proto field carries (kubectl's client-side validation rejects
# keys a definition does not list)
_TYPE_META: dict[str, dict[str, Any]] = {
    "apiVersion": {"type": "string", "description": (
        "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
        "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources")},
    "kind": {"type": "string", "description": (
        "Kind is a string value representing the REST resource this object represents. Servers may infer this "
        "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")},
}


def _definition(d: schema.Definition, v3: bool) -> dict[str, Any]:
    if d.name in _SPECIAL:
        out = dict(_SPECIAL[d.name])
        if d.description:
            out["description"] = d.description
        return out
    props = {k: dict(v) for k, v in _TYPE_META.items()} if d.gvks else {}
    props.update((f.name, _property(f, v3)) for f in schema.json_fields(d).values())
    out = {"type": "object", "properties": props}
    if d.description:
        out["description"] = d.description
    if d.gvks:
        out["x-kubernetes-group-version-kind"] = [{"group": g, "kind": k, "version": v} for g, v, k in d.gvks]
    return out


def _closure(roots: list[str]) -> list[str]:
    defs = schema.definitions()
    seen: dict[str, None] = {}
    stack = [r for r in roots if r in defs]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen[name] = None
        for f in schema.json_fields(defs[name]).values():
            for ref in (f.ref, f.map_value):
                if ref and ref in defs and ref not in seen:
                    stack.append(ref)
    return sorted(seen)


_COMMON = [
    {"name": "pretty", "in": "query", "schema": {"type": "string"}, "description": "If 'true', then the output is pretty printed."},
]
_WRITE = [
    {"name": "dryRun", "in": "query", "schema": {"type": "string"},
     "description": "When present, indicates that modifications should not be persisted."},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string"},
     "description": "fieldManager is a name associated with the actor or entity that is making these changes."},
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
     "description": "fieldValidation instructs the server on how to handle objects in the request containing "
                    "unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict."},
]
_LIST = [{"name": n, "in": "query", "schema": {"type": t}} for n, t in (
    ("allowWatchBookmarks", "boolean"), ("continue", "string"), ("fieldSelector", "string"),
    ("labelSelector", "string"), ("limit", "integer"), ("resourceVersion", "string"),
    ("resourceVersionMatch", "string"), ("sendInitialEvents", "boolean"), ("timeoutSeconds", "integer"),
    ("watch", "boolean"))]


def _op(r: Resource, action: str, kind: str, params: list[dict[str, Any]], body: bool, v3: bool,
        sub: str = "") -> dict[str, Any]:
    op_id = f"{action}{r.kind}{sub.capitalize()}"
    op: dict[str, Any] = {"operationId": op_id, "tags": [r.group or "core"],
                          "x-kubernetes-action": action,
                          "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": kind},
                          "responses": {"200": {"description": "OK"}}}
    if v3:
        op["parameters"] = params
        if body:
            op["requestBody"] = {"content": {"*/*": {"schema": _ref(r.schema, True)}}, "required": True}
    else:
        op["parameters"] = [dict(p, type=p["schema"]["type"]) if "schema" in p else p for p in params]
        for p in op["parameters"]:
            p.pop("schema", None)
        if body:
            op["parameters"].append({"name": "body", "in": "body", "required": True, "schema": _ref(r.schema, False)})
    return op


def _paths(rs: list[Resource], v3: bool) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in rs:
        if not r.schema:  # kubegate's own review kinds have no upstream schema to reference
            continue
        base = f"/api/{r.version}" if not r.group else f"/apis/{r.group}/{r.version}"
        coll = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
        item = coll + "/{name}"
        cp: dict[str, Any] = {}
        if "create" in r.verbs:
            cp["post"] = _op(r, "post", r.kind, _COMMON + _WRITE, True, v3)
        if "list" in r.verbs:
            cp["get"] = _op(r, "list", r.kind, _COMMON + _LIST, False, v3)
        if "deletecollection" in r.verbs:
            cp["delete"] = _op(r, "deletecollection", r.kind, _COMMON + _LIST, False, v3)
        if cp:
            paths[coll] = cp
        ip: dict[str, Any] = {}
        if "get" in r.verbs:
            ip["get"] = _op(r, "get", r.kind, _COMMON, False, v3)
        if "update" in r.verbs:
            ip["put"] = _op(r, "put", r.kind, _COMMON + _WRITE, True, v3)
        if "patch" in r.verbs:
            ip["patch"] = _op(r, "patch", r.kind, _COMMON + _WRITE + [
                {"name": "force", "in": "query", "schema": {"type": "boolean"}}], True, v3)
        if "delete" in r.verbs:
            ip["delete"] = _op(r, "delete", r.kind, _COMMON + _WRITE[:1], False, v3)
        if ip:
            paths[item] = ip
    return paths


def _doc_bytes(doc: dict[str, Any]) -> tuple[bytes, str]:
    body = orjson.dumps(doc)
    return body, hashlib.sha512(body).hexdigest().upper()


V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
# kube-openapi's /openapi/v2 handler: the media types an Accept clause may name, in the order it
# tries them, and the Content-Type it answers with (the deprecated "@" form gets the dotted one,
# which is what kubectl sends: application/com.github.proto-openapi.spec.v2@v1.0+protobuf).
_V2_MEDIA = (("application", "json", JSON),
             ("application", "com.github.proto-openapi.spec.v2@v1.0+protobuf", V2_PROTOBUF),
             ("application", "com.github.proto-openapi.spec.v2.v1.0+protobuf", V2_PROTOBUF))


def negotiate_v2(accept: str | None) -> str | None:
    """The Content-Type /openapi/v2 is served in, or None: 406.

    As kube-openapi does it: goautoneg's parse and order of the Accept clauses, then the first
    clause that matches one of _V2_MEDIA wins (q only orders; even q=0 matches).
    """
    for ctype, csub, _ in _goautoneg(accept or "*/*"):
        for mtype, msub, content_type in _V2_MEDIA:
            if ctype in (mtype, "*") and csub in (msub, "*"):
                return content_type
    return None


def _goautoneg(header: str) -> list[tuple[str, str, float]]:
    clauses: list[tuple[str, str, float]] = []
    for part in header.split(","):
        media_range, *params = part.strip(" ").split(";")
        mtype, *rest = media_range.split("/")
        mtype = mtype.strip(" ")
        if not rest and mtype == "*":
            msub = "*"
        elif len(rest) == 1:
            msub = rest[0].strip(" ")
        else:
            continue
        q = 1.0
        for param in params:
            key, eq, value = param.partition("=")
            if eq and key.strip(" ") == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0  # Go's ParseFloat error leaves 0
        clauses.append((mtype, msub, q))
    # Go's sort.Sort is an insertion sort at this size, with goautoneg's (non-transitive) Less
    for i in range(1, len(clauses)):
        j = i
        while j > 0 and _goautoneg_less(clauses[j], clauses[j - 1]):
            clauses[j], clauses[j - 1] = clauses[j - 1], clauses[j]
            j -= 1
    return clauses


def _goautoneg_less(a: tuple[str, str, float], b: tuple[str, str, float]) -> bool:
    return a[2] > b[2] or (a[0] != "*" and b[0] == "*") or (a[1] != "*" and b[1] == "*")


def not_modified(headers: Mapping[str, str], etag: str, last_modified: datetime) -> bool:
    """Whether a GET gets 304, by Go's http.ServeContent preconditions (which kube-openapi uses).

    `etag` is quoted. If-None-Match, when present, decides alone (weak comparison, `*` matches);
    otherwise If-Modified-Since at or after the second of `last_modified`.
    """
    inm = headers.get("If-None-Match", "").strip()
    if inm:
        return any(t == "*" or t.removeprefix("W/") == etag for t in (x.strip() for x in inm.split(",")))
    ims = headers.get("If-Modified-Since", "")
    if not ims:
        return False
    try:
        since = email.utils.parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return last_modified.replace(microsecond=0) <= since


class OpenAPI:
    def __init__(self) -> None:
        # upstream's Last-Modified is when the spec was (re)built; kubegate's is fixed at start
        self._modified = datetime.now(timezone.utc)

    @cached_property
    def _v3(self) -> dict[str, tuple[bytes, str]]:
        docs: dict[str, tuple[bytes, str]] = {}
        for group, versions in group_versions().items():
            for v in versions:
                rs = [r for r in RESOURCES if r.group == group and r.version == v]
                key = f"api/{v}" if not group else f"apis/{group}/{v}"
                names = _closure([r.schema for r in rs] + [schema.META + ".Status", schema.META + ".DeleteOptions"])
                defs = schema.definitions()
                doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.36.2"},
                       "paths": _paths(rs, True),
                       "components": {"schemas": {n: _definition(defs[n], True) for n in names}}}
                docs[key] = _doc_bytes(doc)
        return docs

    @cached_property
    def _v3_index(self) -> bytes:
        return orjson.dumps({"paths": {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={h}"}
                                       for k, (_, h) in sorted(self._v3.items())}})

    @cached_property
    def _v2_doc(self) -> dict[str, Any]:
        names = _closure([r.schema for r in RESOURCES] + [schema.META + ".Status", schema.META + ".DeleteOptions"])
        defs = schema.definitions()
        return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.36.2"},
                "paths": _paths(list(RESOURCES), False),
                "definitions": {n: _definition(defs[n], False) for n in names}}

    @cached_property
    def _v2(self) -> tuple[bytes, str]:
        return _doc_bytes(self._v2_doc)

    @cached_property
    def _v2_proto(self) -> bytes:
        return encode_document(self._v2_doc)

    async def serve(self, http: web.Request) -> web.StreamResponse:
        if http.method != "GET":
            raise errors.method_not_allowed()
        path = http.path.rstrip("/")
        accept = http.headers.get("Accept", "")
        if path == "/openapi/v2":
            return self._serve_v2(http)
        if path == "/openapi/v3":
            return _json(self._v3_index)
        if path.startswith("/openapi/v3/"):
            doc = self._v3.get(path[len("/openapi/v3/"):])
            if doc is None:
                return not_found_page()
            if accept and "json" not in accept and "*/*" not in accept:
                raise errors.not_acceptable("application/json")
            immutable = http.query.get("hash") == doc[1]
            return _json(doc[0], "public, immutable" if immutable else "no-cache, private", doc[1])
        return not_found_page()

    def _serve_v2(self, http: web.Request) -> web.Response:
        headers = dict(BASE_HEADERS)
        headers["Vary"] = "Accept"
        content_type = negotiate_v2(http.headers.get("Accept"))
        if content_type is None:
            return web.Response(status=406, headers=headers)  # upstream writes no body here
        json_body, digest = self._v2
        # one ETag for both encodings: upstream hashes the JSON document for the protobuf one too
        headers["Etag"] = f'"{digest}"'
        if not_modified(http.headers, headers["Etag"], self._modified):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = content_type
        headers["Last-Modified"] = email.utils.format_datetime(self._modified, usegmt=True)
        return web.Response(body=self._v2_proto if content_type == V2_PROTOBUF else json_body, headers=headers)


def _json(body: bytes, cache: str = "no-cache, private", etag: str = "") -> web.Response:
    headers = dict(BASE_HEADERS)
    headers["Cache-Control"] = cache
    headers["Content-Type"] = "application/json"
    if etag:
        headers["Etag"] = f'"{etag}"'
    return web.Response(body=body, headers=headers)
