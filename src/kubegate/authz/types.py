"""Authorizer protocol and the attributes it decides on (upstream authorizer.Attributes)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, Protocol

from kubegate.authn.user import UserInfo


@dataclass(frozen=True)
class Attributes:
    user: UserInfo
    verb: str
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    resource_request: bool = False
    path: str = ""
    # The raw fieldSelector of a list/watch/deletecollection (AuthorizeWithSelectors, GA in 1.34).
    field_selector: str = ""
    # The raw labelSelector of a list/watch/deletecollection (sent to webhooks as requirements).
    label_selector: str = ""


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no_opinion"


@dataclass(frozen=True)
class AuthzResult:
    decision: Decision
    reason: str = ""
    # An evaluation failure (e.g. a webhook unreachable); the filter answers 500 instead of 403.
    error: str | None = None

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


class Authorizer(Protocol):
    async def authorize(self, attrs: Attributes) -> AuthzResult: ...


@dataclass(frozen=True)
class PolicyRule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicyRule:
        return cls(tuple(d.get("verbs") or ()), tuple(d.get("apiGroups") or ()), tuple(d.get("resources") or ()),
                   tuple(d.get("resourceNames") or ()), tuple(d.get("nonResourceURLs") or ()))

    def to_dict(self) -> dict[str, list[str]]:
        """rbac/v1 PolicyRule JSON (empty lists omitted, as upstream's omitempty)."""
        out: dict[str, list[str]] = {"verbs": list(self.verbs)}
        for key, value in (("apiGroups", self.api_groups), ("resources", self.resources),
                           ("resourceNames", self.resource_names), ("nonResourceURLs", self.non_resource_urls)):
            if value:
                out[key] = list(value)
        return out


@dataclass(frozen=True)
class RuleSet:
    """What an authorizer can say a user may do in a namespace (upstream RuleResolver.RulesFor)."""
    rules: tuple[PolicyRule, ...] = ()
    # True when the authorizer cannot enumerate what it would allow (webhook, Node).
    incomplete: bool = False
    errors: tuple[str, ...] = ()


class RuleResolver(Protocol):
    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet: ...
