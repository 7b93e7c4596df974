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
# Workloads holding a pod template: the path to it, and whether the strategy warns about a name that is no
# DNS label (a StatefulSet's name must be one; a PodTemplate's names no pod).
_TEMPLATE_KINDS: dict[tuple[str, str], tuple[tuple[str, ...], bool]] = {
    ("apps", "Deployment"): (("spec", "template"), True),
    ("apps", "ReplicaSet"): (("spec", "template"), True),
    ("apps", "DaemonSet"): (("spec", "template"), True),
    ("apps", "StatefulSet"): (("spec", "template"), False),
    ("batch", "Job"): (("spec", "template"), True),
    ("batch", "CronJob"): (("spec", "jobTemplate", "spec", "template"), True),
    ("", "ReplicationController"): (("spec", "template"), True),
    ("", "PodTemplate"): (("template",), False),
}
_NEGATIVE_HISTORY = "spec.revisionHistoryLimit: a negative value retains all historical revisions; a value >= 0 " \
                    "is recommended"


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
    entry = _TEMPLATE_KINDS.get(key)
    if entry is None:
        return []
    path, warn_name = entry
    template: Any = obj
    for part in path:
        template = d(d(template).get(part))
    warnings = template_warnings(".".join(path), template)
    if key == ("apps", "StatefulSet"):
        limit = d(obj.get("spec")).get("revisionHistoryLimit")
        if isinstance(limit, int) and limit < 0:
            warnings.append(_NEGATIVE_HISTORY)
    if old is None:
        return (_name(_OWNER_NAME, obj) if warn_name else []) + warnings
    # Only an update that changes the spec (a new generation) warns about the template again.
    if d(obj.get("metadata")).get("generation") == d(old.get("metadata")).get("generation"):
        return []
    return warnings


__all__ = ["for_write"]
