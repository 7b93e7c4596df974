"""The anonymous authenticator (upstream request/anonymous): the fallback for requests without credentials."""
from __future__ import annotations

from kubegate.authn import AuthRequest, AuthResult
from kubegate.authn.user import ALL_UNAUTHENTICATED, ANONYMOUS, UserInfo

ANONYMOUS_USER = UserInfo(name=ANONYMOUS, groups=(ALL_UNAUTHENTICATED,))


class AnonymousAuthenticator:
    """Authenticates every request as system:anonymous, or, when `paths` is given (the
    AuthenticationConfiguration `anonymous.conditions`), only requests whose path is one of them."""

    def __init__(self, paths: tuple[str, ...] = ()) -> None:
        self._paths = frozenset(paths)

    async def authenticate(self, req: AuthRequest) -> AuthResult | None:
        if self._paths and req.path not in self._paths:
            return None
        return AuthResult(ANONYMOUS_USER)
