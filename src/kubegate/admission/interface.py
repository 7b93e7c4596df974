"""The admission stage's one protocol (upstream k8s.io/apiserver/pkg/admission): what a plugin sees
of a write, and the two phases it may take part in.

Upstream's order for a write: mutating admission (plugins may change `obj`), then the object's own
validation, then validating admission (plugins may only refuse). A plugin refuses by raising a
`kubegate.api.errors.StatusError` (403, 422, 404, 429 ... as its upstream counterpart does).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubegate.api.resources import Resource
from kubegate.authn.user import UserInfo

CREATE = "CREATE"
UPDATE = "UPDATE"
DELETE = "DELETE"
CONNECT = "CONNECT"


@dataclass
class ReinvocationContext:
    """Upstream's admission.ReinvocationContext: a plugin that changed the object after a plugin that
    asked to see later changes sets `should_reinvoke`; the chain then runs the mutating phase once more
    with `is_reinvoke` set. `values` holds each plugin's own record of the first pass, by plugin name."""

    is_reinvoke: bool = False
    should_reinvoke: bool = False
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class AdmissionRequest:
    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    resource: Resource
    namespace: str  # "" for cluster-scoped objects
    name: str  # the request's name (for a create, the object's name or "" with generateName)
    user: UserInfo
    obj: dict[str, Any] | None  # the new object (None for DELETE); mutating plugins may change it
    old: dict[str, Any] | None = None  # the stored object for UPDATE and DELETE
    subresource: str = ""
    dry_run: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # CreateOptions / UpdateOptions / DeleteOptions
    # What plugins add: Warning headers (upstream's text, without the "299 - " framing) and
    # audit annotations ("<plugin>/<key>": value).
    warnings: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    reinvocation: ReinvocationContext = field(default_factory=ReinvocationContext)

    @property
    def kind(self) -> str:
        return self.resource.kind


def validating_name(req: AdmissionRequest) -> str:
    """The name validating admission sees (AdmissionToValidateObjectFunc): the request's, else the
    object's own, which a create with generateName has by then."""
    if req.name or req.obj is None:
        return req.name
    m = req.obj.get("metadata")
    return str(m.get("name") or "") if isinstance(m, dict) else ""


# A plugin may declare `resources`, the (group, plural) pairs it can act on; the chain then calls it
# only for those (upstream's Handles). A plugin without it is called for every write.
Resources = frozenset[tuple[str, str]]
PODS: Resources = frozenset({("", "pods")})
CSRS: Resources = frozenset({("certificates.k8s.io", "certificatesigningrequests")})

# A plugin that changes and refuses nothing while it has no configuration objects (limit ranges,
# quotas, webhook configurations, policies) may declare `configured_by`, the caches they come from;
# the chain leaves it out of every write while all of them are empty.


class ConfigCache(Protocol):
    """A watch cache of a plugin's configuration objects (storage.cache.WatchCache)."""

    def __len__(self) -> int: ...

    def on_emptiness_change(self, listener: Callable[[], None]) -> None: ...


class MutatingPlugin(Protocol):
    name: str  # upstream's plugin name, e.g. "ServiceAccount"

    async def admit(self, req: AdmissionRequest) -> None: ...


class ValidatingPlugin(Protocol):
    name: str

    async def validate(self, req: AdmissionRequest) -> None: ...
