"""NamespaceLifecycle (plugin/pkg/admission/namespace/lifecycle): no content in missing or
terminating namespaces, and the immortal namespaces cannot be deleted."""
from __future__ import annotations

from typing import Any, Callable

from kubegate.api import errors
from kubegate.api.resources import Resource

IMMORTAL = frozenset({"default", "kube-system", "kube-public"})

# Kinds that may still be created in a terminating namespace (upstream's access review exemptions
# and events emitted during deletion).
_ALLOWED_WHILE_TERMINATING = frozenset({"events", "localsubjectaccessreviews"})

NamespaceGetter = Callable[[str], dict[str, Any] | None]


class NamespaceLifecycle:
    def __init__(self, get_namespace: NamespaceGetter) -> None:
        self.get_namespace = get_namespace

    def admit(self, operation: str, r: Resource, obj: dict[str, Any] | None, namespace: str | None) -> None:
        if r.plural == "namespaces":
            if operation == "delete" and obj is not None:
                name = obj["metadata"]["name"]
                if name in IMMORTAL:
                    raise errors.forbidden("namespaces", name, "this namespace may not be deleted")
            return
        if operation != "create" or not r.namespaced or not namespace:
            return
        ns = self.get_namespace(namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating" and r.plural not in _ALLOWED_WHILE_TERMINATING:
            name = ((obj or {}).get("metadata") or {}).get("name", "")
            err = errors.forbidden(r.plural, name,
                                   f"unable to create new content in namespace {namespace} because it is "
                                   "being terminated", r.group)
            assert err.details is not None
            err.details["causes"] = [{"reason": "NamespaceTerminating",
                                      "message": f"namespace {namespace} is being terminated",
                                      "field": "metadata.namespace"}]
            raise err
