"""TokenReview (authentication.k8s.io/v1, upstream pkg/registry/authentication/tokenreview): who
does a bearer token authenticate as, for the given audiences (default: the API audiences). It runs
the very token chain (and success cache) that authenticates requests."""
from __future__ import annotations

from typing import Any

from kubegate.api import errors
from kubegate.authn import AuthenticationError, AuthRequest, AuthResult
from kubegate.authn.token import INVALID_BEARER_TOKEN, BearerAuthenticator, TokenAuthenticator
from kubegate.authn.union import AuthenticatedGroupAdder, aggregate_message
from kubegate.authn.user import user_info_json


class TokenReviewer:
    def __init__(self, tokens: TokenAuthenticator | None, api_audiences: list[str]) -> None:
        self._tokens = tokens
        self._api_audiences = tuple(api_audiences)

    async def review(self, obj: dict[str, Any]) -> dict[str, Any]:
        spec = obj.get("spec") or {}
        token = spec.get("token") or ""
        if not token:
            raise errors.bad_request("token is required for TokenReview in authentication")
        status: dict[str, Any] = {"user": {}}
        obj = {"kind": obj["kind"], "apiVersion": obj["apiVersion"], "metadata": obj.get("metadata") or {},
               "spec": spec, "status": status}
        if self._tokens is None:
            return obj
        audiences = tuple(spec.get("audiences") or ()) or self._api_audiences
        # Upstream sends the token through its request authenticator as "Bearer <token>".
        bearer = AuthenticatedGroupAdder(BearerAuthenticator(self._tokens, audiences))
        result: AuthResult | None = None
        try:
            result = await bearer.authenticate(AuthRequest(headers={"Authorization": f"Bearer {token}"}))
        except AuthenticationError as e:
            # v1.36.2 reports a rejected token's reason after the bearer default
            # (goldens authn/tokenreview-audience-mismatch.json).
            status["error"] = aggregate_message([INVALID_BEARER_TOKEN, str(e)])
        if result is None:
            if "error" not in status:
                status["error"] = INVALID_BEARER_TOKEN
            return obj
        if audiences and not set(audiences) & set(result.audiences):
            raise errors.internal("error validating audiences")
        obj["status"] = {"authenticated": True, "user": user_info_json(result.user)}
        if result.audiences:
            obj["status"]["audiences"] = list(result.audiences)
        return obj
