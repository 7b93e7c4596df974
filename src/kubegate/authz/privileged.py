"""The privileged-group authorizer kube-apiserver always puts first (members of system:masters)."""
from __future__ import annotations

from kubegate.authn.user import SYSTEM_PRIVILEGED_GROUP
from kubegate.authz.types import Attributes, AuthzResult, Decision


class PrivilegedGroups:
    def __init__(self, groups: tuple[str, ...] = (SYSTEM_PRIVILEGED_GROUP,)) -> None:
        self._groups = frozenset(groups)

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        if any(g in self._groups for g in attrs.user.groups):
            return AuthzResult(Decision.ALLOW)
        return AuthzResult(Decision.NO_OPINION)
