"""AlwaysAllow and AlwaysDeny (upstream authorizerfactory)."""
from __future__ import annotations

from kubegate.authn.user import UserInfo
from kubegate.authz.types import Attributes, AuthzResult, Decision, PolicyRule, RuleSet

# What an authorizer that allows everything reports it allows.
EVERYTHING = RuleSet((PolicyRule(verbs=("*",), api_groups=("*",), resources=("*",)),
                      PolicyRule(verbs=("*",), non_resource_urls=("*",))))


class AlwaysAllow:
    async def authorize(self, attrs: Attributes) -> AuthzResult:
        return AuthzResult(Decision.ALLOW)

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        return EVERYTHING


class AlwaysDeny:
    """Upstream answers NoOpinion, not Deny: later authorizers could still allow, none does."""

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        return AuthzResult(Decision.NO_OPINION, "Everything is forbidden.")

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        return RuleSet()
