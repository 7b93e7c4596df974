"""Authentication: the authenticator protocol and its request/result types.

Each authenticator answers one `AuthRequest`: a result (these credentials are valid), None (no
credentials of its kind) or `AuthenticationError` (credentials present but invalid -> 401). The protocol is async because some authenticators
(webhook, OIDC discovery) wait on the network; the rest simply never await.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kubegate.authn.user import UserInfo


@dataclass(frozen=True)
class AuthRequest:
    headers: Mapping[str, str]
    peer_certs: list[bytes] = field(default_factory=list)  # DER, leaf first, as the TLS peer sent them
    path: str = "/"
    # Warning headers an authenticator asks for (upstream warning.AddWarning from bearertoken);
    # the server adds them to whatever response the request gets.
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AuthResult:
    user: UserInfo
    audiences: tuple[str, ...] = ()


class AuthenticationError(Exception):
    """Credentials were presented and rejected; the request gets 401, never anonymous."""


class Authenticator(Protocol):
    async def authenticate(self, req: AuthRequest) -> AuthResult | None: ...


def header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of a (case-insensitive) header, in order (Go's Header[key]); aiohttp's headers are
    a multidict, a plain mapping holds one value per name."""
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, ()))
    value = headers.get(name)
    return [] if value is None else [value]
