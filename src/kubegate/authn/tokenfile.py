"""Static bearer tokens from `--token-auth-file` (upstream token/tokenfile).

CSV `token,user,uid[,"group1,group2"]`, read once at start. Fewer than three columns stops the
server with upstream's message; an empty token is skipped and a repeated one replaces the earlier
record, each with upstream's warning. Log lines name the file and record number, never a token.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping

from kubegate.authn import AuthResult
from kubegate.authn.gocsv import CSVError, records
from kubegate.authn.user import UserInfo
from kubegate.server.config import ConfigError

log = logging.getLogger("kubegate.authn.tokenfile")


def read_auth_file(path: str) -> Iterator[list[str]]:
    """The records of an upstream CSV auth file, one at a time as Go reads them; a file that cannot
    be read or parsed is a ConfigError with Go's text (`open PATH: no such file or directory`,
    csv.ParseError)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        verb = "read" if isinstance(e, IsADirectoryError) else "open"
        raise ConfigError(f"{verb} {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        yield from records(data)
    except CSVError as e:
        raise ConfigError(str(e)) from None


def parse_token_file(path: str, rows: Iterable[list[str]]) -> dict[str, UserInfo]:
    tokens: dict[str, UserInfo] = {}
    for number, record in enumerate(rows, start=1):
        if len(record) < 3:
            raise ConfigError(f"token file '{path}' must have at least 3 columns (token, user name, user uid), "
                              f"found {len(record)}")
        token = record[0]
        if not token:
            log.warning("empty token has been found in token file '%s', record number '%d'", path, number)
            continue
        if token in tokens:
            log.warning("duplicate token has been found in token file '%s', record number '%d'", path, number)
        # Go's strings.Split: an empty fourth column is one empty group, as upstream.
        groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
        tokens[token] = UserInfo(name=record[1], uid=record[2], groups=groups)
    return tokens


class StaticTokenAuthenticator:
    """An exact match against the file's tokens; anything else is "not mine" for the next one."""

    def __init__(self, tokens: Mapping[str, UserInfo]) -> None:
        self._tokens = dict(tokens)

    @classmethod
    def from_file(cls, path: str) -> "StaticTokenAuthenticator":
        return cls(parse_token_file(path, read_auth_file(path)))

    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        user = self._tokens.get(token)
        return None if user is None else AuthResult(user)
