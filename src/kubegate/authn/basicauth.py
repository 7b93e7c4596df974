"""HTTP Basic authentication from `--basic-auth-file` (upstream passwordfile + request/basicauth,
removed in 1.19; kubegate keeps it, off unless the flag is given).

CSV `password,user,uid[,"group1,group2"]`, keyed by user name (a later record for the same user
wins, with upstream's warning). Two deliberate differences, both stricter: a record with an empty
password is skipped (upstream would accept an empty password), and an `Authorization: Basic` header
that is not base64 of `user:password` is rejected with 401 (Go's BasicAuth() would treat it as
absent and let the request fall through to anonymous).
"""
from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Iterable, Mapping

from kubegate.authn import AuthenticationError, AuthRequest, AuthResult
from kubegate.authn.tokenfile import read_auth_file
from kubegate.authn.user import UserInfo
from kubegate.server.config import ConfigError

log = logging.getLogger("kubegate.authn.basicauth")

INVALID_AUTH = "invalid username/password combination"
INVALID_HEADER = "invalid basic auth header"
INSECURE_WARNING = ("--basic-auth-file is enabled: static passwords travel with every request and "
                    "cannot be revoked without a restart (upstream removed this authenticator in 1.19)")
_PREFIX = "basic "
# Compared against when the user is unknown, so a miss costs what a wrong password costs.
_ABSENT = b"\x00" * 32


def parse_password_file(path: str, rows: Iterable[list[str]]) -> dict[str, tuple[bytes, UserInfo]]:
    users: dict[str, tuple[bytes, UserInfo]] = {}
    for number, record in enumerate(rows, start=1):
        if len(record) < 3:
            raise ConfigError(f"password file '{path}' must have at least 3 columns (password, user name, user uid), "
                              f"found {len(record)}")
        password, name = record[0], record[1]
        if not password:
            log.warning("empty password has been found in password file '%s', record number '%d'", path, number)
            continue
        if name in users:
            log.warning("duplicate username '%s' has been found in password file '%s', record number '%d'",
                        name, path, number)
        groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
        users[name] = (_bytes(password), UserInfo(name=name, uid=record[2], groups=groups))
    return users


def basic_credentials(header: str) -> tuple[str, str] | None:
    """Go's Request.BasicAuth(): `Basic ` (any case) + standard base64 of `user:password`, split at
    the first colon. Raises AuthenticationError for a Basic header that does not decode."""
    if header[:len(_PREFIX)].lower() != _PREFIX:
        return None
    try:
        decoded = base64.b64decode(header[len(_PREFIX):], validate=True).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError):
        raise AuthenticationError(INVALID_HEADER) from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise AuthenticationError(INVALID_HEADER)
    return user, password


def _bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


class BasicAuthenticator:
    def __init__(self, users: Mapping[str, tuple[bytes, UserInfo]]) -> None:
        self._users = dict(users)

    @classmethod
    def from_file(cls, path: str) -> "BasicAuthenticator":
        return cls(parse_password_file(path, read_auth_file(path)))

    async def authenticate(self, req: AuthRequest) -> AuthResult | None:
        creds = basic_credentials(req.headers.get("Authorization", ""))
        if creds is None:
            return None
        name, password = creds
        expected, user = self._users.get(name, (_ABSENT, None))
        if not hmac.compare_digest(expected, _bytes(password)) or user is None:
            raise AuthenticationError(INVALID_AUTH)
        return AuthResult(user)
