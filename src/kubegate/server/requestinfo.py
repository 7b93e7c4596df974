"""URL + method -> request attributes, as upstream's RequestInfoFactory (apiserver endpoints/request).

Pure: no I/O. The authorizer, audit and the REST router all read the same `RequestInfo`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from kubegate.api.selectors import SelectorError, parse_label_selector_or_error, parse_raw_field_selector

API_PREFIXES = frozenset({"api", "apis"})
GROUPLESS_API_PREFIXES = frozenset({"api"})
# Path segments that carry the verb (deprecated /watch/ and /proxy/ forms).
SPECIAL_VERBS = frozenset({"proxy", "watch"})
SPECIAL_VERBS_NO_SUBRESOURCES = frozenset({"proxy"})
# Segments after /namespaces/<ns> that are subresources of the namespace itself.
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})

_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
_INT64 = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


class RequestInfoError(ValueError):
    """The URL looks like a resource request but cannot be resolved (upstream answers 500)."""


@dataclass(frozen=True)
class RequestInfo:
    is_resource_request: bool
    path: str
    verb: str
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()
    # Raw selectors for list/watch/deletecollection (AuthorizeWithSelectors, GA in 1.34).
    field_selector: str = ""
    label_selector: str = ""


def _split_path(path: str) -> list[str]:
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def _watch_requested(value: str) -> bool:
    """Upstream's query bool conversion: anything but "0"/"false" (any case) is true."""
    return value.lower() not in ("false", "0")


def field_selector_exact_match(selector: str, field: str) -> str | None:
    """Parse a field selector as upstream's fields.ParseSelector and return the value the selector
    requires `field` to equal, or None. Raises ValueError for a selector upstream rejects."""
    if not selector:
        return None
    try:
        return parse_raw_field_selector(selector).requires_exact_match(field)
    except SelectorError as e:
        raise ValueError(str(e)) from None


def _valid_path_segment_name(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name


def _parses_int64(value: str) -> bool:
    return bool(_INT64.fullmatch(value)) and _INT64_MIN <= int(value) <= _INT64_MAX


def _list_name(query: Mapping[str, str]) -> str | None:
    """Decode the ListOptions fields that can fail; on failure upstream keeps only `watch`."""
    if "limit" in query and not _parses_int64(query["limit"]):
        return None
    timeout = query.get("timeoutSeconds", "")
    if timeout and not _parses_int64(timeout):
        return None
    try:
        parse_label_selector_or_error(query.get("labelSelector", ""))
        return field_selector_exact_match(query.get("fieldSelector", ""), "metadata.name")
    except (SelectorError, ValueError):
        return None


def parse_request_info(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """Resolve the request attributes for `method path?query` (query holds each key's first value)."""
    non_resource = RequestInfo(is_resource_request=False, path=path, verb=method.lower())
    parts = _split_path(path)
    if len(parts) < 3 or parts[0] not in API_PREFIXES:
        return non_resource
    api_prefix = parts[0]
    parts = parts[1:]
    api_group = ""
    if api_prefix not in GROUPLESS_API_PREFIXES:
        if len(parts) < 3:
            return non_resource
        api_group = parts[0]
        parts = parts[1:]
    api_version = parts[0]
    parts = parts[1:]

    if parts[0] in SPECIAL_VERBS:
        if len(parts) < 2:
            url = path + ("?" + urlencode(dict(query)) if query else "")
            raise RequestInfoError(f"unable to determine kind and namespace from url, {url}")
        verb = parts[0]
        parts = parts[1:]
    else:
        verb = _METHOD_VERBS.get(method, "")

    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        # /namespaces/<ns>/<resource>/...: everything after the namespace is relative to the resource
        if len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
            parts = parts[2:]

    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb not in SPECIAL_VERBS_NO_SUBRESOURCES else ""

    if not name and verb == "get":
        selected = _list_name(query)
        verb = "watch" if "watch" in query and _watch_requested(query["watch"]) else "list"
        if selected is not None and _valid_path_segment_name(selected):
            name = selected
    if not name and verb == "delete":
        verb = "deletecollection"

    field_selector = label_selector = ""
    if verb in ("list", "watch", "deletecollection"):
        field_selector = query.get("fieldSelector", "")
        label_selector = query.get("labelSelector", "")

    return RequestInfo(
        is_resource_request=True, path=path, verb=verb, api_prefix=api_prefix, api_group=api_group,
        api_version=api_version, namespace=namespace, resource=resource, subresource=subresource,
        name=name, parts=tuple(parts), field_selector=field_selector, label_selector=label_selector,
    )
