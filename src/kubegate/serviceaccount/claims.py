"""Service-account token claims, pure: building them (upstream Claims / LegacyClaims), reading
them back with go-jose's types, and the time checks with go-jose's one-minute leeway.

Claims are emitted with sorted keys at every level, as go-jose marshals the merged claim map."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubegate.api.gojson import json_kind
from kubegate.authn.user import CREDENTIAL_ID_KEY, SERVICE_ACCOUNT_GROUP, UserInfo, service_account_username

LEGACY_ISSUER = "kubernetes/serviceaccount"
# What the ServiceAccount admission plugin asks for; such pod-bound tokens get the extended expiry.
WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7
EXPIRATION_EXTENSION_SECONDS = 24 * 365 * 60 * 60
LEEWAY_SECONDS = 60  # go-jose jwt.DefaultLeeway

POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"

_LEGACY_NS = "kubernetes.io/serviceaccount/namespace"
_LEGACY_SECRET = "kubernetes.io/serviceaccount/secret.name"
_LEGACY_SA_NAME = "kubernetes.io/serviceaccount/service-account.name"
_LEGACY_SA_UID = "kubernetes.io/serviceaccount/service-account.uid"


class ClaimError(Exception):
    """A token's claims are unusable; the message is upstream's."""


@dataclass(frozen=True)
class Ref:
    name: str
    uid: str = ""

    def to_json(self) -> dict[str, str]:
        out = {}
        if self.name:
            out["name"] = self.name
        if self.uid:
            out["uid"] = self.uid
        return out


@dataclass(frozen=True)
class ServiceAccountInfo:
    """Who a valid token speaks for (upstream serviceaccount.ServiceAccountInfo)."""

    namespace: str
    name: str
    uid: str
    pod_name: str = ""
    pod_uid: str = ""
    node_name: str = ""
    node_uid: str = ""
    credential_id: str = ""

    def user(self) -> UserInfo:
        extra: dict[str, tuple[str, ...]] = {}
        if self.credential_id:
            extra[CREDENTIAL_ID_KEY] = (self.credential_id,)
        if self.node_name:
            extra[NODE_NAME_KEY] = (self.node_name,)
            if self.node_uid:
                extra[NODE_UID_KEY] = (self.node_uid,)
        if self.pod_name and self.pod_uid:
            extra[POD_NAME_KEY] = (self.pod_name,)
            extra[POD_UID_KEY] = (self.pod_uid,)
        return UserInfo(name=service_account_username(self.namespace, self.name), uid=self.uid,
                        groups=(SERVICE_ACCOUNT_GROUP, f"{SERVICE_ACCOUNT_GROUP}:{self.namespace}"),
                        extra=dict(sorted(extra.items())))


def credential_id_for_jti(jti: str) -> str:
    return f"JTI={jti}" if jti else ""


def split_username(sub: str) -> tuple[str, str] | None:
    """system:serviceaccount:<ns>:<name> -> (ns, name); None when it is not one."""
    prefix = "system:serviceaccount:"
    if not sub.startswith(prefix):
        return None
    parts = sub[len(prefix):].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def bound_claims(*, issuer: str, namespace: str, service_account: Ref, audiences: list[str], now: int,
                 expiration_seconds: int, jti: str, pod: Ref | None = None, secret: Ref | None = None,
                 node: Ref | None = None, warnafter_seconds: int = 0) -> dict[str, Any]:
    """Claims of a TokenRequest token. A token binds to one of pod (plus its node when scheduled),
    secret, or node."""
    if secret is not None and (pod is not None or node is not None):
        raise ValueError("internal error, token can only be bound to one object type")
    k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": service_account.to_json()}
    if pod is not None:
        k8s["pod"] = pod.to_json()
    if secret is not None:
        k8s["secret"] = secret.to_json()
    if node is not None:
        k8s["node"] = node.to_json()
    if warnafter_seconds:
        k8s["warnafter"] = now + warnafter_seconds
    claims: dict[str, Any] = {
        "aud": list(audiences), "exp": now + expiration_seconds, "iat": now, "iss": issuer,
        "kubernetes.io": dict(sorted(k8s.items())), "nbf": now,
        "sub": service_account_username(namespace, service_account.name),
    }
    if jti:
        claims["jti"] = jti
    return dict(sorted(claims.items()))


def legacy_claims(namespace: str, service_account: Ref, secret_name: str) -> dict[str, Any]:
    return {"iss": LEGACY_ISSUER, _LEGACY_NS: namespace, _LEGACY_SECRET: secret_name,
            _LEGACY_SA_NAME: service_account.name, _LEGACY_SA_UID: service_account.uid,
            "sub": service_account_username(namespace, service_account.name)}


# -- reading claims with go-jose's types ------------------------------------------------------

def _unmarshal_error(value: Any, field: str, go_type: str) -> ClaimError:
    return ClaimError(f"json: cannot unmarshal {json_kind(value)} into Go struct field {field} of type {go_type}")


def _string(claims: dict[str, Any], key: str, field: str) -> str:
    v = claims.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise _unmarshal_error(v, field, "string")
    return v


def _numeric_date(claims: dict[str, Any], key: str) -> int | None:
    v = claims.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ClaimError("go-jose/go-jose/jwt: expected number value to unmarshal")
    return int(v)


@dataclass(frozen=True)
class PublicClaims:
    issuer: str
    subject: str
    audiences: tuple[str, ...]
    expiry: int | None
    not_before: int | None
    issued_at: int | None
    jti: str


def public_claims(claims: dict[str, Any]) -> PublicClaims:
    aud = claims.get("aud")
    if aud is None:
        audiences: tuple[str, ...] = ()
    elif isinstance(aud, str):
        audiences = (aud,)
    elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        audiences = tuple(aud)
    else:
        raise ClaimError("go-jose/go-jose/jwt: expected string or array value to unmarshal to Audience")
    return PublicClaims(
        issuer=_string(claims, "iss", "Claims.iss"), subject=_string(claims, "sub", "Claims.sub"),
        audiences=audiences, expiry=_numeric_date(claims, "exp"), not_before=_numeric_date(claims, "nbf"),
        issued_at=_numeric_date(claims, "iat"), jti=_string(claims, "jti", "Claims.jti"))


def check_times(c: PublicClaims, now: float) -> None:
    """go-jose Claims.Validate with the default leeway, in its order, with upstream's messages."""
    if c.not_before is not None and now + LEEWAY_SECONDS < c.not_before:
        raise ClaimError("service account token is not valid yet")
    if c.expiry is not None and now - LEEWAY_SECONDS > c.expiry:
        raise ClaimError("service account token has expired")
    if c.issued_at is not None and now + LEEWAY_SECONDS < c.issued_at:
        raise ClaimError("service account token is issued in the future")


@dataclass(frozen=True)
class BoundPrivate:
    namespace: str
    service_account: Ref
    pod: Ref | None
    secret: Ref | None
    node: Ref | None
    warnafter: int | None


def _ref(v: Any, field: str) -> Ref | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _unmarshal_error(v, field, "serviceaccount.ref")
    return Ref(_string(v, "name", field + ".name"), _string(v, "uid", field + ".uid"))


def bound_private(claims: dict[str, Any]) -> BoundPrivate:
    k8s = claims.get("kubernetes.io")
    if k8s is None:
        k8s = {}
    if not isinstance(k8s, dict):
        raise _unmarshal_error(k8s, "privateClaims.kubernetes.io", "serviceaccount.kubernetes")
    return BoundPrivate(
        namespace=_string(k8s, "namespace", "kubernetes.namespace"),
        service_account=_ref(k8s.get("serviceaccount"), "kubernetes.serviceaccount") or Ref(""),
        pod=_ref(k8s.get("pod"), "kubernetes.pod"), secret=_ref(k8s.get("secret"), "kubernetes.secret"),
        node=_ref(k8s.get("node"), "kubernetes.node"), warnafter=_numeric_date(k8s, "warnafter"))


@dataclass(frozen=True)
class LegacyPrivate:
    namespace: str
    secret_name: str
    service_account: Ref


def legacy_private(claims: dict[str, Any], subject: str) -> LegacyPrivate:
    """The legacy claims, checked in upstream's order with its messages."""
    private = LegacyPrivate(
        namespace=_string(claims, _LEGACY_NS, "legacyPrivateClaims." + _LEGACY_NS),
        secret_name=_string(claims, _LEGACY_SECRET, "legacyPrivateClaims." + _LEGACY_SECRET),
        service_account=Ref(_string(claims, _LEGACY_SA_NAME, "legacyPrivateClaims." + _LEGACY_SA_NAME),
                            _string(claims, _LEGACY_SA_UID, "legacyPrivateClaims." + _LEGACY_SA_UID)))
    if not subject:
        raise ClaimError("sub claim is missing")
    if not private.namespace:
        raise ClaimError("namespace claim is missing")
    if not private.secret_name:
        raise ClaimError("secretName claim is missing")
    if not private.service_account.name:
        raise ClaimError("serviceAccountName claim is missing")
    if not private.service_account.uid:
        raise ClaimError("serviceAccountUID claim is missing")
    if split_username(subject) != (private.namespace, private.service_account.name):
        raise ClaimError("sub claim is invalid")
    return private


def go_quote_list(values: tuple[str, ...] | list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    import json
    return "[" + " ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"
