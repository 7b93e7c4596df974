"""Turning a request body into an object of the kind the URL names, as upstream's decoder does."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from kubegate.api import errors
from kubegate.api.gojson import json_kind
from kubegate.api.resources import Resource
from kubegate.server.negotiation import decode_body

MAX_REQUEST_BYTES = 3 * 1024 * 1024  # upstream --max-request-bytes default

# Upstream's internal group names, which appear in conversion errors.
_INTERNAL_GROUP = {"": "core", "apps": "apps", "rbac.authorization.k8s.io": "rbac",
                   "certificates.k8s.io": "certificates", "networking.k8s.io": "networking",
                   "coordination.k8s.io": "coordination", "events.k8s.io": "core",
                   "storage.k8s.io": "storage", "authentication.k8s.io": "authentication",
                   "authorization.k8s.io": "authorization", "autoscaling": "autoscaling",
                   "policy": "policy"}

FIELD_VALIDATION = ("", "Ignore", "Strict", "Warn")


async def read_body(http: "web.Request") -> bytes:
    """The whole request body, or 413 once it passes --max-request-bytes (checked before decoding)."""
    if http.content_length is not None and http.content_length > MAX_REQUEST_BYTES:
        raise errors.too_large(MAX_REQUEST_BYTES)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await http.content.read(1 << 20)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise errors.too_large(MAX_REQUEST_BYTES)
        chunks.append(chunk)


def _version_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[-1]


def decode_object(r: Resource, kind: str, api_version: str, content_type: str | None, body: bytes,
                  field_validation: str) -> tuple[dict[str, Any], list[str]]:
    """Decode, check kind/apiVersion, and apply fieldValidation. Returns (object, warnings)."""
    try:
        obj, fmt = decode_body(content_type, body)
    except errors.StatusError as e:
        if e.code == 400 and e.message.startswith("couldn't get version/kind"):
            e.message = f"the object provided is unrecognized (must be of type {kind}): {e.message}"
        raise
    if not isinstance(obj, dict):
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; "
            f"json parse error: json: cannot unmarshal {json_kind(obj)} into Go value of type "
            "struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }")
    got_kind = obj.get("kind") or ""
    got_av = obj.get("apiVersion") or ""
    if (got_kind and got_kind != kind) or (got_av and got_av != api_version):
        shown = got_kind or kind
        raise errors.bad_request(
            f'{shown} in version "{_version_of(got_av or api_version)}" cannot be handled as a {kind}: '
            f"converting ({_version_of(got_av or api_version)}.{shown}) to "
            f"({_INTERNAL_GROUP.get(r.group, r.group)}.{kind}): unknown conversion")
    warnings: list[str] = []
    if field_validation != "Ignore":
        problems = []
        if fmt == "json":
            problems.extend(f'duplicate field "{p}"' for p in duplicate_fields(body))
        problems = _unknown(kind, api_version, obj) + problems
        type_error = _type_error(kind, api_version, obj)
        if type_error:
            raise errors.bad_request(f'{kind} in version "{_version_of(api_version)}" cannot be handled as a '
                                     f"{kind}: {type_error}")
        if problems:
            if field_validation == "Strict":
                raise errors.bad_request(
                    f'{kind} in version "{_version_of(api_version)}" cannot be handled as a {kind}: '
                    f"strict decoding error: {', '.join(problems)}")
            warnings = problems
    out: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    for k, v in obj.items():
        if k not in ("kind", "apiVersion"):
            out[k] = v
    return out, warnings


def _unknown(kind: str, api_version: str, obj: dict[str, Any]) -> list[str]:
    from kubegate import schema
    group, _, version = api_version.rpartition("/")
    d = schema.definition_for_gvk(group, version, kind)
    if d is None:
        return []
    return [f'unknown field "{p}"' for p in schema.unknown_fields(d.name, obj)]


def _type_error(kind: str, api_version: str, obj: dict[str, Any]) -> str:
    from kubegate import schema
    group, _, version = api_version.rpartition("/")
    d = schema.definition_for_gvk(group, version, kind)
    if d is None:
        return ""
    return schema.type_error(d.name, obj) or ""


def duplicate_fields(body: bytes) -> list[str]:
    """Paths of keys that appear twice in one JSON object (orjson keeps the last silently)."""
    found: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                found.append(k)
            seen.add(k)
        return dict(pairs)

    if body.count(b'"') < 4:
        return found
    try:
        json.loads(body, object_pairs_hook=hook)
    except ValueError:
        return []
    return found
