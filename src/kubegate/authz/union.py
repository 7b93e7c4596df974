"""Chain of authorizers (upstream authorization/union): the first Allow or Deny decides."""
from __future__ import annotations

from collections.abc import Sequence

from kubegate.authn.union import aggregate_message
from kubegate.authz.types import Attributes, Authorizer, AuthzResult, Decision


class UnionAuthorizer:
    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self._authorizers = tuple(authorizers)

    def authorize(self, attrs: Attributes) -> AuthzResult:
        reasons: list[str] = []
        errors: list[str] = []
        for authorizer in self._authorizers:
            result = authorizer.authorize(attrs)
            if result.error:
                errors.append(result.error)
            if result.reason:
                reasons.append(result.reason)
            if result.decision is not Decision.NO_OPINION:
                return result
        return AuthzResult(Decision.NO_OPINION, "\n".join(reasons),
                           aggregate_message(errors) if errors else None)
