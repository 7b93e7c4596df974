"""Authorizer protocol and the attributes it decides on (upstream authorizer.Attributes)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

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
    def authorize(self, attrs: Attributes) -> AuthzResult: ...
