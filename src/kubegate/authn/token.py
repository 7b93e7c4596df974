"""Bearer tokens: the token-authenticator protocol, the token union, the success cache and the
request authenticator that reads `Authorization: Bearer` (upstream request/bearertoken,
token/union, token/cache).

Every token authenticator (static file, service-account JWTs, bootstrap, OIDC, webhook) sits
behind one union, which one cache fronts; TokenReview calls the same chain with its own audiences.
"""
from __future__ import annotations

import functools
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from kubegate.authn import AuthenticationError, AuthRequest, AuthResult
from kubegate.authn.union import first_success

INVALID_BEARER_TOKEN = "invalid bearer token"
EXTRA_SPACE_WARNING = ("the provided Authorization header contains extra space before the bearer token, "
                       "and is ignored")


class TokenAuthenticator(Protocol):
    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        """`audiences` are those the caller accepts (the API server's, or a TokenReview's). None
        means "not mine"; AuthenticationError means "mine, and invalid"."""
        ...


class TokenUnion:
    """First success wins; errors are collected and raised together if nothing succeeds."""

    def __init__(self, authenticators: Sequence[TokenAuthenticator]) -> None:
        self._authenticators = tuple(authenticators)

    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        return await first_success(functools.partial(a.authenticate_token, token, audiences)
                                   for a in self._authenticators)


class TokenCache:
    """Remembers successful authentications for `ttl` seconds (upstream TokenSuccessCacheTTL, 10 s)
    and, for `failure_ttl` seconds, tokens nobody accepted (upstream's failure TTL: 0 for the chain,
    the webhook's cache TTL for the webhook). Errors are never cached. Keys are SHA-256 digests, so
    no token is held in memory as a key."""

    def __init__(self, inner: TokenAuthenticator, ttl: float = 10.0, size: int = 4096,
                 clock: Callable[[], float] = time.monotonic, *, failure_ttl: float = 0.0) -> None:
        self._inner = inner
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, AuthResult | None]] = OrderedDict()

    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        key = hashlib.sha256("\x00".join((*audiences, token)).encode()).digest()
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        result = await self._inner.authenticate_token(token, audiences)
        ttl = self._ttl if result is not None else self._failure_ttl
        if ttl > 0:
            self._entries[key] = (now + ttl, result)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return result


class AudienceAgnostic:
    """Upstream's WrapAudienceAgnosticToken, for authenticators whose tokens carry no audience
    (static file, bootstrap, legacy service-account tokens): such a token is valid for the API's own
    audiences only. When the caller accepts audiences, the token is only tried if one of them is an
    API audience, and the result carries that intersection."""

    def __init__(self, inner: TokenAuthenticator, api_audiences: tuple[str, ...]) -> None:
        self._inner = inner
        self._api_audiences = frozenset(api_audiences)

    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        if not audiences:
            return await self._inner.authenticate_token(token, audiences)
        accepted = tuple(a for a in audiences if a in self._api_audiences)
        if not accepted:
            return None
        result = await self._inner.authenticate_token(token, audiences)
        if result is None:
            return None
        return AuthResult(result.user, accepted)


def bearer_token(header: str) -> tuple[str | None, bool]:
    """The token of an Authorization header, and whether upstream would warn about an extra space."""
    parts = header.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None, False
    if not parts[1]:
        return None, len(parts) == 3
    return parts[1], False


async def authenticate_presented(tokens: TokenAuthenticator, token: str, audiences: tuple[str, ...]) -> AuthResult:
    """A token the client presented: one nobody accepts is an error (`invalid bearer token`), so
    it never falls back to anonymous."""
    result = await tokens.authenticate_token(token, audiences)
    if result is None:
        raise AuthenticationError(INVALID_BEARER_TOKEN)
    return result


class BearerAuthenticator:
    """Authorization: Bearer <token> against the token chain. A token nobody accepts is an error
    (`invalid bearer token`), so it never falls back to anonymous."""

    def __init__(self, tokens: TokenAuthenticator, audiences: tuple[str, ...]) -> None:
        self._tokens = tokens
        self._audiences = audiences

    async def authenticate(self, req: AuthRequest) -> AuthResult | None:
        token, extra_space = bearer_token(req.headers.get("Authorization", ""))
        if extra_space:
            req.warnings.append(EXTRA_SPACE_WARNING)
        if token is None:
            return None
        return await authenticate_presented(self._tokens, token, self._audiences)
