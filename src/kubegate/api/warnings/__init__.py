"""Warnings a write returns, as upstream's registry strategies give them (WarningsOnCreate and
WarningsOnUpdate of the main resource; their status subresources warn about nothing here).

`for_write` takes the object as it will be stored (defaulted, generation set) and the stored object
(None on create), and returns the texts for the response's Warning headers.
"""
from __future__ import annotations

from typing import Any

from kubegate.api.resources import Resource
from kubegate.api.validation import names
from kubegate.api.validation.common import d, go_list, s

from .pod import spec_warnings, template_warnings

_POD_NAME = "metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; " \
            "a DNS label is recommended: "
_OWNER_NAME = "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; " \
              "a DNS label is recommended: "
# Workloads whose spec.template is a pod template.
_TEMPLATE_KINDS = frozenset({("apps", "Deployment"), ("apps", "ReplicaSet")})


def _name(message: str, obj: dict[str, Any]) -> list[str]:
    msgs = names.is_dns1123_label(s(d(obj.get("metadata")).get("name")))
    return [message + go_list(msgs)] if msgs else []


def for_write(resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
    key = (resource.group, resource.kind)
    if key == ("", "Pod"):
        # Pod updates warn about nothing: upstream skips the cost on a high-frequency path.
        if old is not None:
            return []
        return _name(_POD_NAME, obj) + spec_warnings("", d(obj.get("spec")), d(obj.get("metadata")))
    if key not in _TEMPLATE_KINDS:
        return []
    template = d(d(obj.get("spec")).get("template"))
    if old is None:
        return _name(_OWNER_NAME, obj) + template_warnings("spec.template", template)
    # Only an update that changes the spec (a new generation) warns about the template again.
    if d(obj.get("metadata")).get("generation") == d(old.get("metadata")).get("generation"):
        return []
    return template_warnings("spec.template", template)


__all__ = ["for_write"]
