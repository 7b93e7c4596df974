"""A bearer token carried as a WebSocket subprotocol (upstream request/websocket): browsers cannot
set Authorization on a WebSocket, so clients send
`Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.<base64url(token)>, <real protocol>`.
The token goes to the same token chain as `Authorization: Bearer`.
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from kubegate.authn import AuthenticationError, AuthRequest, AuthResult, header_values
from kubegate.authn.token import TokenAuthenticator, authenticate_presented

PROTOCOL_PREFIX = "base64url.bearer.authorization.k8s.io."
_CONNECTION_UPGRADE = re.compile(r"(^|.*,\s*)upgrade($|\s*,)")
_BASE64URL = re.compile(r"\A[A-Za-z0-9_-]*\Z")


def is_websocket(headers: Mapping[str, str]) -> bool:
    """wsstream.IsWebSocketRequest: `Upgrade: websocket` and an `upgrade` token in Connection."""
    if headers.get("Upgrade", "").lower() != "websocket":
        return False
    return _CONNECTION_UPGRADE.search(headers.get("Connection", "").lower()) is not None


def _decode(encoded: str) -> str:
    """base64.RawURLEncoding then a UTF-8 check, with upstream's two error messages."""
    # RawURLEncoding: no padding, and a lone trailing character (length % 4 == 1) is corrupt.
    if not _BASE64URL.match(encoded) or len(encoded) % 4 == 1:
        raise AuthenticationError("invalid base64.bearer.authorization token encoding")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise AuthenticationError("invalid base64.bearer.authorization token encoding") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationError("invalid base64.bearer.authorization token") from None


def protocol_token(values: list[str]) -> str | None:
    """The token among the Sec-WebSocket-Protocol header values, or None when none is carried."""
    token = ""
    seen = False
    others = 0
    for header in values:
        for protocol in header.split(","):
            protocol = protocol.strip()
            if not protocol.startswith(PROTOCOL_PREFIX):
                others += 1
                continue
            if seen:
                raise AuthenticationError("multiple base64.bearer.authorization tokens specified")
            seen = True
            token = _decode(protocol[len(PROTOCOL_PREFIX):])
    # Another subprotocol is required so the server has one to echo back without the token.
    if token and not others:
        raise AuthenticationError("missing additional subprotocol")
    return token or None


class WebSocketProtocolAuthenticator:
    def __init__(self, tokens: TokenAuthenticator, audiences: tuple[str, ...]) -> None:
        self._tokens = tokens
        self._audiences = audiences

    async def authenticate(self, req: AuthRequest) -> AuthResult | None:
        if not is_websocket(req.headers):
            return None
        token = protocol_token(header_values(req.headers, "Sec-WebSocket-Protocol"))
        if token is None:
            return None
        return await authenticate_presented(self._tokens, token, self._audiences)
