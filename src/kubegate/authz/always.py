"""AlwaysAllow and AlwaysDeny (upstream authorizerfactory)."""
from __future__ import annotations

from kubegate.authz.types import Attributes, AuthzResult, Decision


class AlwaysAllow:
    def authorize(self, attrs: Attributes) -> AuthzResult:
        return AuthzResult(Decision.ALLOW)


class AlwaysDeny:
    """Upstream answers NoOpinion, not Deny: later authorizers could still allow, none does."""

    def authorize(self, attrs: Attributes) -> AuthzResult:
        return AuthzResult(Decision.NO_OPINION, "Everything is forbidden.")
