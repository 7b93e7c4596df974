"""Bootstrap tokens (`--enable-bootstrap-token-auth`; upstream plugin/pkg/auth/authenticator/token/
bootstrap and k8s.io/cluster-bootstrap).

A token `<id>.<secret>` is checked against the Secret `kube-system/bootstrap-token-<id>` of type
bootstrap.kubernetes.io/token, read from the secrets watch cache. Every failure is "not mine" (no
error), as upstream: the bearer authenticator then answers 401 `invalid bearer token`. The expiry
helpers are shared with the token cleaner.
"""
from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from kubegate.api.validation.core import secret_data
from kubegate.authn import AuthResult
from kubegate.authn.user import UserInfo

NAMESPACE = "kube-system"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
USER_PREFIX = "system:bootstrap:"
DEFAULT_GROUP = "system:bootstrappers"

ID_KEY = "token-id"
SECRET_KEY = "token-secret"
EXPIRATION_KEY = "expiration"
USAGE_AUTHENTICATION_KEY = "usage-bootstrap-authentication"
EXTRA_GROUPS_KEY = "auth-extra-groups"

_TOKEN = re.compile(r"\A([a-z0-9]{6})\.([a-z0-9]{16})\Z")
_GROUP = re.compile(r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\Z")
# Go's time.Parse(time.RFC3339, ...): fractional seconds optional, offset required.
_RFC3339 = re.compile(r"\A([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
                      r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z")

SecretLookup = Callable[[str], "dict[str, Any] | None"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_token(token: str) -> tuple[str, str] | None:
    m = _TOKEN.match(token)
    return None if m is None else (m.group(1), m.group(2))


def is_valid_group(group: str) -> bool:
    """cluster-bootstrap ValidateBootstrapGroupName."""
    return _GROUP.match(group) is not None


def _parse_rfc3339(v: str) -> datetime | None:
    m = _RFC3339.match(v)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, sign, oh, om = m.groups()
    offset = timedelta()
    if sign:
        if int(oh) >= 24 or int(om) >= 60:
            return None
        offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
    try:
        t = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                     tzinfo=timezone(offset))
    except ValueError:
        return None
    if frac:
        t += timedelta(microseconds=int(frac[:6].ljust(6, "0")))
    return t


def _data(data: dict[str, bytes], key: str) -> str:
    return data.get(key, b"").decode("utf-8", "surrogateescape")


def expiration(secret: dict[str, Any], now: datetime) -> tuple[float, bool]:
    """cluster-bootstrap GetExpiration: (seconds remaining, expired). No expiration -> (0, False);
    an unparseable one counts as expired; so does one at or before `now`."""
    value = _data(secret_data(secret), EXPIRATION_KEY)
    if not value:
        return 0.0, False
    at = _parse_rfc3339(value)
    if at is None:
        return 0.0, True
    remaining = (at - now).total_seconds()
    if remaining <= 0:
        return 0.0, True
    return remaining, False


def is_bootstrap_secret(secret: dict[str, Any]) -> bool:
    return secret.get("type") == SECRET_TYPE


def authenticate_secret(secret: dict[str, Any] | None, token_id: str, token_secret: str,
                        now: datetime) -> UserInfo | None:
    """The pure decision, in upstream's order of checks."""
    if secret is None or (secret.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if not is_bootstrap_secret(secret) or not secret.get("data"):
        return None
    data = secret_data(secret)
    if not hmac.compare_digest(data.get(SECRET_KEY, b""), token_secret.encode()):
        return None
    if _data(data, ID_KEY) != token_id:
        return None
    if expiration(secret, now)[1]:
        return None
    if _data(data, USAGE_AUTHENTICATION_KEY) != "true":
        return None
    groups = {DEFAULT_GROUP}
    extra = _data(data, EXTRA_GROUPS_KEY)
    if extra:
        for g in extra.split(","):
            if not _GROUP.match(g):
                return None
            groups.add(g)
    return UserInfo(name=USER_PREFIX + token_id, groups=tuple(sorted(groups)))


class BootstrapTokenAuthenticator:
    def __init__(self, lookup: SecretLookup, clock: Callable[[], datetime] = _utcnow) -> None:
        self._lookup = lookup  # Secret name in kube-system -> object, from the watch cache
        self._clock = clock

    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, token_secret = parsed
        user = authenticate_secret(self._lookup(SECRET_PREFIX + token_id), token_id, token_secret, self._clock())
        return None if user is None else AuthResult(user)
