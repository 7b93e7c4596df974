"""Webhook token authentication: a TokenReview POSTed to a remote service (upstream
plugin/pkg/authenticator/token/webhook), behind its own cache as kube-apiserver builds it."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubegate.authn import AuthenticationError, AuthResult
from kubegate.authn.token import TokenAuthenticator, TokenCache
from kubegate.authn.user import UserInfo
from kubegate.webhook import WebhookClient, WebhookError

log = logging.getLogger("kubegate.authn.webhook")

VERSIONS = ("v1", "v1beta1")
DEFAULT_CACHE_TTL = 120.0  # --authentication-token-webhook-cache-ttl 2m


class InvalidReview(ValueError):
    pass


class WebhookTokenAuthenticator:
    """One TokenReview per token. Audience handling as upstream: when the caller limits audiences they
    are sent in spec.audiences, and the answer's status.audiences (or, if it names none, the API's
    implicit audiences) must intersect them, else the token is not this authenticator's."""

    def __init__(self, client: WebhookClient, version: str, implicit_audiences: tuple[str, ...]) -> None:
        if version not in VERSIONS:
            raise ValueError(f'unsupported authentication webhook version "{version}", '
                             f'supported versions are "v1", "v1beta1"')
        self._client = client
        self._api_version = f"authentication.k8s.io/{version}"
        self._implicit = implicit_audiences

    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        spec: dict[str, Any] = {"token": token}
        if audiences:
            spec["audiences"] = list(audiences)
        # The wire shape of Go's TokenReview with empty metadata and status.
        review = {"kind": "TokenReview", "apiVersion": self._api_version,
                  "metadata": {"creationTimestamp": None}, "spec": spec, "status": {"user": {}}}
        try:
            answer = await self._client.post(review)
            status = parse_status(answer)
        except (WebhookError, InvalidReview) as e:
            # An outage or misconfiguration; the message never holds the token.
            log.error("Failed to make webhook authenticator request: %s", e)
            raise AuthenticationError(str(e)) from None
        return decide(status, audiences, self._implicit)


def decide(status: Mapping[str, Any], audiences: tuple[str, ...],
           implicit: tuple[str, ...]) -> AuthResult | None:
    """The answer for a parsed TokenReview status (upstream AuthenticateToken after the call)."""
    granted: tuple[str, ...] = ()
    if audiences:
        offered = status["audiences"] or implicit
        granted = tuple(a for a in audiences if a in offered)
        if not granted:
            return None
    if not status["authenticated"]:
        if status["error"]:
            raise AuthenticationError(status["error"])
        return None
    user = status["user"]
    return AuthResult(UserInfo(user["username"], user["uid"], tuple(user["groups"]), user["extra"]), granted)


def parse_status(answer: Mapping[str, Any]) -> dict[str, Any]:
    """status of a TokenReview answer with Go's zero values for absent fields; a field of the wrong
    type fails the call, as decoding into the typed object does upstream."""
    status = _field(answer, "status", dict, {}, "")
    user = _field(status, "user", dict, {}, "status.")
    extra = _field(user, "extra", dict, {}, "status.user.")
    return {
        "authenticated": _field(status, "authenticated", bool, False, "status."),
        "error": _field(status, "error", str, "", "status."),
        "audiences": _strings(status, "audiences", "status."),
        "user": {
            "username": _field(user, "username", str, "", "status.user."),
            "uid": _field(user, "uid", str, "", "status.user."),
            "groups": _strings(user, "groups", "status.user."),
            "extra": {str(k): tuple(_strings(extra, k, "status.user.extra.")) for k in extra},
        },
    }


_KINDS = {bool: "a boolean", str: "a string", dict: "an object", list: "an array"}


def _field(obj: Mapping[str, Any], name: str, typ: type, zero: Any, where: str) -> Any:
    value = obj.get(name)
    if value is None:
        return zero
    if not isinstance(value, typ):
        raise InvalidReview(f"invalid TokenReview from the webhook: {where}{name} must be {_KINDS[typ]}")
    return value


def _strings(obj: Mapping[str, Any], name: str, where: str) -> list[str]:
    values: list[Any] = _field(obj, name, list, [], where)
    if not all(isinstance(v, str) for v in values):
        raise InvalidReview(f"invalid TokenReview from the webhook: {where}{name} must be an array of strings")
    return values


def cached(authenticator: TokenAuthenticator, ttl: float) -> TokenAuthenticator:
    """kube-apiserver's webhook cache: successes and plain rejections kept for `ttl`, errors never."""
    return TokenCache(authenticator, ttl=ttl, failure_ttl=ttl) if ttl > 0 else authenticator
