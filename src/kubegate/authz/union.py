"""Chains of authorizers and of rule resolvers (upstream authorization/union): the first Allow or
Deny decides; rules are the concatenation of every resolver's."""
from __future__ import annotations

from collections.abc import Sequence

from kubegate.authn.union import aggregate_message
from kubegate.authn.user import UserInfo
from kubegate.authz.types import Attributes, Authorizer, AuthzResult, Decision, RuleResolver, RuleSet


class UnionAuthorizer:
    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self._authorizers = tuple(authorizers)

    @property
    def authorizers(self) -> tuple[Authorizer, ...]:
        return self._authorizers

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        return (await self.authorize_traced(attrs))[0]

    async def authorize_traced(self, attrs: Attributes) -> tuple[AuthzResult, Authorizer | None]:
        """The decision and the authorizer that made it (None when every one had no opinion)."""
        reasons: list[str] = []
        errors: list[str] = []
        for authorizer in self._authorizers:
            result = await authorizer.authorize(attrs)
            if result.error:
                errors.append(result.error)
            if result.reason:
                reasons.append(result.reason)
            if result.decision is not Decision.NO_OPINION:
                return result, authorizer
        return AuthzResult(Decision.NO_OPINION, "\n".join(reasons),
                           aggregate_message(errors) if errors else None), None


class UnionRuleResolver:
    def __init__(self, resolvers: Sequence[RuleResolver]) -> None:
        self._resolvers = tuple(resolvers)

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        sets = [r.rules_for(user, namespace) for r in self._resolvers]
        # Each resolver's errors are already one aggregate upstream, so they nest as "[a, b]".
        return RuleSet(tuple(rule for s in sets for rule in s.rules), any(s.incomplete for s in sets),
                       tuple(aggregate_message(s.errors) for s in sets if s.errors))
