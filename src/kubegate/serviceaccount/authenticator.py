"""Service-account JWT authenticators (upstream pkg/serviceaccount/jwt.go, claims.go, legacy.go).

One `JWTAuthenticator` per issuer family: legacy Secret-based tokens (issuer
`kubernetes/serviceaccount`) and bound TokenRequest tokens (the --service-account-issuer values).
A token whose issuer is not the authenticator's, or that is not a compact JWS, is "not mine"
(None); anything else that fails is an AuthenticationError with upstream's message. The checks
run synchronously over in-memory objects (`check`), so the decision is pure given a `Lookup`.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import orjson

from kubegate.authn import AuthenticationError, AuthResult
from kubegate.authn.union import aggregate_message
from kubegate.serviceaccount.claims import (
    LEEWAY_SECONDS, ClaimError, PublicClaims, ServiceAccountInfo, bound_private, check_times,
    credential_id_for_jti, go_quote_list, legacy_private, public_claims,
)
from kubegate.serviceaccount.keys import KeySet

log = logging.getLogger("kubegate.serviceaccount")

LAST_USED_LABEL = "kubernetes.io/legacy-token-last-used"
INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since"
_INVALIDATED = "service account token has been invalidated"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class Lookup(Protocol):
    """The objects a token may be bound to, as the watch caches hold them (None = absent)."""

    def service_account(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def pod(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def node(self, name: str) -> dict[str, Any] | None: ...


def b64url_decode(s: str) -> bytes:
    """Go's base64.RawURLEncoding: URL alphabet, no padding."""
    if not _B64URL.fullmatch(s) or len(s) % 4 == 1:
        raise ValueError("illegal base64 data")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _json_object(segment: str) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(b64url_decode(segment))
    except (ValueError, binascii.Error):
        return None
    return obj if isinstance(obj, dict) else None


def _uid(obj: dict[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("uid") or ""


def _deleted_before(obj: dict[str, Any], cutoff: float) -> bool:
    ts = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not ts:
        return False
    try:
        when = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return True
    return when < cutoff


class Validator(Protocol):
    def parse(self, claims: dict[str, Any], public: PublicClaims) -> Any: ...
    def validate(self, token: str, public: PublicClaims, private: Any, now: float) -> ServiceAccountInfo: ...


class JWTAuthenticator:
    """Signature, issuer and audience checks shared by legacy and bound tokens (upstream
    jwtTokenAuthenticator.AuthenticateToken), then the validator's own checks."""

    def __init__(self, issuers: list[str], keys: KeySet, implicit_audiences: list[str], validator: Validator,
                 clock: Callable[[], float] = time.time) -> None:
        self._issuers = frozenset(issuers)
        self._keys = keys
        self._implicit = tuple(implicit_audiences)
        self._validator = validator
        self._clock = clock

    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        return self.check(token, audiences)

    def check(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        if token.lstrip().startswith("{"):
            return None  # JWS JSON serialization is never a service-account token
        parts = token.split(".")
        if len(parts) != 3:
            return None
        payload = _json_object(parts[1])
        iss = None if payload is None else payload.get("iss")
        if not isinstance(iss, str) or iss not in self._issuers:
            return None
        header = _json_object(parts[0])
        if header is None or not isinstance(header.get("alg"), str):
            return None
        try:
            signature = b64url_decode(parts[2])
        except ValueError:
            return None
        kid = header.get("kid") if isinstance(header.get("kid"), str) else ""
        candidates = self._keys.candidates(kid)
        if not candidates:
            raise AuthenticationError("invalid signature, no keys found")
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        errors: list[str] = []
        parsed: tuple[PublicClaims, Any] | None = None
        for key in candidates:
            if header["alg"] != key.alg:
                errors.append("go-jose/go-jose: unexpected signature algorithm")
                continue
            if not key.verify(signing_input, signature):
                errors.append("go-jose/go-jose: error in cryptographic primitive")
                continue
            try:
                public = public_claims(payload)
                parsed = (public, self._validator.parse(payload, public))
            except ClaimError as e:
                errors.append(str(e))
                continue
            break
        if parsed is None:
            raise AuthenticationError(aggregate_message(errors))
        public, private = parsed
        if public.issuer not in self._issuers:
            raise AuthenticationError(f'token issuer "{public.issuer}" is invalid')
        token_audiences = public.audiences or self._implicit  # legacy tokens carry none
        requested = audiences or self._implicit
        accepted = tuple(a for a in token_audiences if a in requested)
        if not accepted and self._implicit:
            raise AuthenticationError(f"token audiences {go_quote_list(token_audiences)} is invalid for the "
                                      f"target audiences {go_quote_list(requested)}")
        try:
            info = self._validator.validate(token, public, private, self._clock())
        except ClaimError as e:
            raise AuthenticationError(str(e)) from None
        return AuthResult(info.user(), accepted)


class BoundValidator:
    """TokenRequest tokens: time window, then the ServiceAccount and the bound object must still
    exist with the uids in the claims (upstream claims.go validator; always looks up)."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup

    def parse(self, claims: dict[str, Any], public: PublicClaims) -> Any:
        return bound_private(claims)

    def validate(self, token: str, public: PublicClaims, private: Any, now: float) -> ServiceAccountInfo:
        check_times(public, now)
        cutoff = now - LEEWAY_SECONDS  # objects deleted within the leeway still count
        ns, saref = private.namespace, private.service_account
        sa = self._lookup.service_account(ns, saref.name)
        if sa is None:
            raise ClaimError(f'serviceaccounts "{saref.name}" not found')
        if _uid(sa) != saref.uid:
            raise ClaimError(f"service account UID ({_uid(sa)}) does not match claim ({saref.uid})")
        if _deleted_before(sa, cutoff):
            raise ClaimError(f"service account {ns}/{saref.name} has been deleted")
        if private.secret is not None:
            self._bound(self._lookup.secret(ns, private.secret.name), private.secret.uid, "secret", cutoff)
        pod_name = pod_uid = ""
        if private.pod is not None:
            self._bound(self._lookup.pod(ns, private.pod.name), private.pod.uid, "pod", cutoff)
            pod_name, pod_uid = private.pod.name, private.pod.uid
        node_name = node_uid = ""
        if private.node is not None:
            if private.pod is None:
                self._bound(self._lookup.node(private.node.name), private.node.uid, "node", cutoff)
            node_name, node_uid = private.node.name, private.node.uid
        return ServiceAccountInfo(namespace=ns, name=saref.name, uid=saref.uid, pod_name=pod_name,
                                  pod_uid=pod_uid, node_name=node_name, node_uid=node_uid,
                                  credential_id=credential_id_for_jti(public.jti))

    @staticmethod
    def _bound(obj: dict[str, Any] | None, claimed_uid: str, what: str, cutoff: float) -> None:
        if obj is None:
            raise ClaimError(_INVALIDATED)
        if _uid(obj) != claimed_uid:
            raise ClaimError(f"{what} UID ({_uid(obj)}) does not match service account {what} ref claim "
                             f"({claimed_uid})")
        if _deleted_before(obj, cutoff):
            raise ClaimError(_INVALIDATED)


class LegacyValidator:
    """Secret-based tokens (issuer kubernetes/serviceaccount). With lookup (the default) the Secret
    must exist and hold exactly this token, and the ServiceAccount must exist with the claimed uid;
    a successful use stamps the Secret's last-used label once a day (`on_use`)."""

    def __init__(self, lookup: Lookup | None, on_use: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._lookup = lookup
        self._on_use = on_use

    def parse(self, claims: dict[str, Any], public: PublicClaims) -> Any:
        return claims

    def validate(self, token: str, public: PublicClaims, private: Any, now: float) -> ServiceAccountInfo:
        legacy = legacy_private(private, public.subject)
        ns, sa_name, sa_uid = legacy.namespace, legacy.service_account.name, legacy.service_account.uid
        if self._lookup is not None:
            secret = self._lookup.secret(ns, legacy.secret_name)
            if secret is None or (secret.get("metadata") or {}).get("deletionTimestamp"):
                raise ClaimError("Token has been invalidated")
            if not hmac.compare_digest(_secret_token(secret), token.encode()):
                raise ClaimError("Token does not match server's copy")
            sa = self._lookup.service_account(ns, sa_name)
            if sa is None:
                raise ClaimError(f'serviceaccounts "{sa_name}" not found')
            if (sa.get("metadata") or {}).get("deletionTimestamp"):
                raise ClaimError(f"ServiceAccount {ns}/{sa_name} has been deleted")
            if _uid(sa) != sa_uid:
                raise ClaimError(f"ServiceAccount UID ({_uid(sa)}) does not match claim ({sa_uid})")
            labels = (secret.get("metadata") or {}).get("labels") or {}
            if labels.get(INVALID_SINCE_LABEL):
                if self._on_use is not None:
                    self._on_use(secret)
                raise ClaimError(
                    f"the token in secret {ns}/{legacy.secret_name} for service account {ns}/{sa_name} has been "
                    "marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, "
                    f"or remove the '{INVALID_SINCE_LABEL}' label from the secret to temporarily allow use of "
                    "this token")
            if self._on_use is not None:
                self._on_use(secret)
        return ServiceAccountInfo(namespace=ns, name=sa_name, uid=sa_uid)


def _secret_token(secret: dict[str, Any]) -> bytes:
    raw = (secret.get("data") or {}).get("token") or ""
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return b""


def needs_last_used_label(labels: dict[str, str], now: datetime) -> str | None:
    """Today's date when the Secret's last-used label is neither today nor tomorrow (UTC), as
    upstream patches it at most daily; else None."""
    today = now.strftime("%Y-%m-%d")
    tomorrow = (now + timedelta(days=1)).strftime("%Y-%m-%d")
    return None if labels.get(LAST_USED_LABEL) in (today, tomorrow) else today


class RegistryLookup:
    """`Lookup` over the registries' watch caches, plus the legacy last-used label writer."""

    def __init__(self, by_plural: dict[str, Any]) -> None:
        self._sa = by_plural["serviceaccounts"]
        self._secrets = by_plural["secrets"]
        self._pods = by_plural["pods"]
        self._nodes = by_plural["nodes"]
        self._pending: set[asyncio.Task[Any]] = set()

    @staticmethod
    def _obj(d: Any) -> dict[str, Any] | None:
        return None if d is None else d.obj

    def service_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._obj(self._sa.get_cached(namespace, name))

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._obj(self._secrets.get_cached(namespace, name))

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._obj(self._pods.get_cached(namespace, name))

    def node(self, name: str) -> dict[str, Any] | None:
        return self._obj(self._nodes.get_cached(None, name))

    def mark_legacy_used(self, secret: dict[str, Any]) -> None:
        meta = secret.get("metadata") or {}
        today = needs_last_used_label(meta.get("labels") or {}, datetime.now(timezone.utc))
        if today is None:
            return
        ns, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")

        def label(cur: dict[str, Any]) -> dict[str, Any]:
            if cur["metadata"].get("uid") != uid:
                raise LookupError("secret was replaced")
            cur["metadata"].setdefault("labels", {})[LAST_USED_LABEL] = today
            return cur

        async def write() -> None:
            try:
                await self._secrets.guaranteed_update(ns, name, label)
            except Exception as e:  # best effort, as upstream: a failed label never fails the request
                log.warning("failed to label legacy service account token %s/%s with last-used date: %s",
                            ns, name, e)

        task = asyncio.get_running_loop().create_task(write())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
