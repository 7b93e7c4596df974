"""Service-account token claims, signing and verification (pure: keys in memory, objects in dicts)."""
from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubegate.authn import AuthenticationError
from kubegate.serviceaccount import claims as c
from kubegate.serviceaccount.authenticator import (
    BoundValidator, JWTAuthenticator, LegacyValidator, needs_last_used_label,
)
from kubegate.serviceaccount.discovery import openid_metadata
from kubegate.serviceaccount.keys import KeySet, Signer, jwk, key_id, public_keys_from_pem
from tests.fixtures import GOLDENS

ISS = "https://kubernetes.default.svc"
NOW = 1_795_432_616
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def obj(name: str, uid: str, **extra: Any) -> dict[str, Any]:
    meta = {"name": name, "uid": uid}
    meta.update(extra.pop("meta", {}))
    return {"metadata": meta, **extra}


class Objects:
    def __init__(self) -> None:
        self.sas = {("ns", "sa"): obj("sa", "sa-uid")}
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}

    def service_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.sas.get((namespace, name))

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get((namespace, name))

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pods.get((namespace, name))

    def node(self, name: str) -> dict[str, Any] | None:
        return self.nodes.get(name)


def bound(signer: Signer, **kw: Any) -> str:
    args: dict[str, Any] = dict(issuer=ISS, namespace="ns", service_account=c.Ref("sa", "sa-uid"), audiences=[ISS],
                                now=NOW, expiration_seconds=3600, jti="jti-1")
    args.update(kw)
    return signer.sign(c.bound_claims(**args))


def authenticator(objects: Objects, key: Any = RSA_KEY, now: float = NOW + 10,
                  issuers: tuple[str, ...] = (ISS,)) -> JWTAuthenticator:
    return JWTAuthenticator(list(issuers), KeySet([key.public_key()]), [ISS], BoundValidator(objects),
                            clock=lambda: now)


def reject(a: JWTAuthenticator, token: str, audiences: tuple[str, ...] = ()) -> str:
    with pytest.raises(AuthenticationError) as e:
        a.check(token, audiences)
    return str(e.value)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# -- claims and keys ---------------------------------------------------------------------------

def test_bound_claims_layout_matches_upstream_pod_bound_token() -> None:
    g = json.loads((GOLDENS / "authn" / "tokenrequest-bound-pod-3607.json").read_text())["decoded_token"]
    want = g["claims"]
    got = c.bound_claims(issuer=want["iss"], namespace="golden-authn",
                         service_account=c.Ref("default", want["kubernetes.io"]["serviceaccount"]["uid"]),
                         audiences=want["aud"], now=want["iat"], expiration_seconds=c.EXPIRATION_EXTENSION_SECONDS,
                         jti=want["jti"], pod=c.Ref("bound-pod", want["kubernetes.io"]["pod"]["uid"]),
                         warnafter_seconds=c.WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS)
    assert json.dumps(got) == json.dumps(want)  # same keys, same (sorted) order, same values


def test_token_header_is_alg_and_kid_only() -> None:
    token = bound(Signer(RSA_KEY))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "RS256", "kid": key_id(RSA_KEY.public_key())}
    assert list(header) == ["alg", "kid"]


def test_kid_is_base64url_sha256_of_pkix_der() -> None:
    g = json.loads((GOLDENS / "discovery" / "openid-v1-jwks-no-accept.json").read_text())
    published = g["response"]["body"]["keys"][0]
    n = int.from_bytes(base64.urlsafe_b64decode(published["n"] + "=="), "big")
    pub = rsa.RSAPublicNumbers(65537, n).public_key()
    assert key_id(pub) == published["kid"]
    assert jwk(pub) == published and list(jwk(pub)) == list(published)


def test_ec_keys_sign_es256_and_publish_ec_jwk() -> None:
    signer = Signer(EC_KEY)
    assert signer.alg == "ES256"
    objects = Objects()
    result = authenticator(objects, key=EC_KEY).check(bound(signer), ())
    assert result is not None and result.user.name == "system:serviceaccount:ns:sa"
    k = jwk(EC_KEY.public_key())
    assert list(k) == ["use", "kty", "kid", "crv", "alg", "x", "y"] and k["crv"] == "P-256"
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert Signer(p384).alg == "ES384"


def test_pem_file_may_hold_public_and_private_keys() -> None:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = (RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, spki)
           + EC_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    keys = public_keys_from_pem(pem, "sa.pub")
    assert [key_id(k) for k in keys] == [key_id(RSA_KEY.public_key()), key_id(EC_KEY.public_key())]
    from kubegate.server.config import ConfigError
    with pytest.raises(ConfigError, match="data does not contain any valid RSA or ECDSA public keys"):
        public_keys_from_pem(b"nothing here", "sa.pub")


def test_openid_metadata_documents() -> None:
    keys = KeySet([RSA_KEY.public_key(), EC_KEY.public_key()])
    md = openid_metadata(ISS, "", "192.0.2.2:16443", keys)
    assert json.loads(md.config_json) == {
        "issuer": ISS, "jwks_uri": "https://192.0.2.2:16443/openid/v1/jwks", "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["ES256", "RS256"]}
    assert [k["kid"] for k in json.loads(md.jwks_json)["keys"]] == [k.kid for k in keys.keys]
    with pytest.raises(ValueError, match="issuer URL must use https scheme, got: kubernetes/serviceaccount"):
        openid_metadata("kubernetes/serviceaccount", "", "h:1", keys)
    assert json.loads(openid_metadata(ISS, "https://x/jwks", "", keys).config_json)["jwks_uri"] == "https://x/jwks"


# -- bound tokens ------------------------------------------------------------------------------

def test_valid_bound_token_user_and_audiences() -> None:
    objects = Objects()
    objects.pods[("ns", "p")] = obj("p", "pod-uid", spec={"serviceAccountName": "sa"})
    token = bound(Signer(RSA_KEY), pod=c.Ref("p", "pod-uid"), node=c.Ref("n1", "node-uid"))
    result = authenticator(objects).check(token, ())
    assert result is not None
    assert result.audiences == (ISS,)
    u = result.user
    assert (u.name, u.uid, u.groups) == ("system:serviceaccount:ns:sa", "sa-uid",
                                        ("system:serviceaccounts", "system:serviceaccounts:ns"))
    assert dict(u.extra) == {
        "authentication.kubernetes.io/credential-id": ("JTI=jti-1",),
        "authentication.kubernetes.io/node-name": ("n1",), "authentication.kubernetes.io/node-uid": ("node-uid",),
        "authentication.kubernetes.io/pod-name": ("p",), "authentication.kubernetes.io/pod-uid": ("pod-uid",)}


def test_time_window_with_one_minute_leeway() -> None:
    objects, signer = Objects(), Signer(RSA_KEY)
    token = bound(signer)
    assert authenticator(objects, now=NOW + 3600 + 60).check(token, ()) is not None
    assert reject(authenticator(objects, now=NOW + 3600 + 61), token) == "service account token has expired"
    assert reject(authenticator(objects, now=NOW - 61), token) == "service account token is not valid yet"
    future_iat = c.bound_claims(issuer=ISS, namespace="ns", service_account=c.Ref("sa", "sa-uid"), audiences=[ISS],
                                now=NOW, expiration_seconds=3600, jti="j")
    future_iat.update(iat=NOW + 120, nbf=NOW)
    assert reject(authenticator(objects), signer.sign(future_iat)) == "service account token is issued in the future"


def test_audiences() -> None:
    objects, signer = Objects(), Signer(RSA_KEY)
    vault = bound(signer, audiences=["vault", "https://example.com"])
    assert reject(authenticator(objects), vault) == (
        'token audiences ["vault" "https://example.com"] is invalid for the target audiences '
        '["https://kubernetes.default.svc"]')
    result = authenticator(objects).check(vault, ("vault",))
    assert result is not None and result.audiences == ("vault",)
    assert reject(authenticator(objects), bound(signer), ("other",)) == (
        'token audiences ["https://kubernetes.default.svc"] is invalid for the target audiences ["other"]')


def test_issuer_not_ours_is_no_opinion_and_any_accepted_issuer_verifies() -> None:
    objects, signer = Objects(), Signer(RSA_KEY)
    assert authenticator(objects).check(bound(signer, issuer="https://elsewhere"), ()) is None
    old = bound(signer, issuer="https://old-issuer")
    assert authenticator(objects, issuers=(ISS, "https://old-issuer")).check(old, ()) is not None


def test_bad_signature_unknown_kid_and_alg_none() -> None:
    objects, signer = Objects(), Signer(RSA_KEY)
    token = bound(signer)
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    assert reject(authenticator(objects), forged) == "go-jose/go-jose: error in cryptographic primitive"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert reject(authenticator(objects), bound(Signer(other))) == "invalid signature, no keys found"
    unsigned = f"{b64({'alg': 'none', 'kid': key_id(RSA_KEY.public_key())})}.{payload}."
    assert reject(authenticator(objects), unsigned) == "go-jose/go-jose: unexpected signature algorithm"
    hs = jwt.encode(json.loads(base64.urlsafe_b64decode(payload + "==")), "s" * 32, algorithm="HS256")
    assert reject(authenticator(objects), hs) == "go-jose/go-jose: unexpected signature algorithm"


def test_truncated_oversized_and_garbage_tokens_are_not_ours_or_rejected() -> None:
    objects, signer = Objects(), Signer(RSA_KEY)
    token = bound(signer)
    a = authenticator(objects)
    odd_iss = f"{b64({'alg': 'RS256'})}.{b64({'iss': [ISS]})}.c2ln"
    for t in ("garbage", token[: len(token) // 2], token.rsplit(".", 1)[0], "a.b.c", "{" + token, "", "..",
              token.replace(".", "..", 1), odd_iss, token + "=", "é" + token):
        assert a.check(t, ()) is None
    head, payload, sig = token.split(".")
    assert reject(a, f"{head}.{payload}.{sig[:-10]}") == "go-jose/go-jose: error in cryptographic primitive"
    huge = dict(json.loads(base64.urlsafe_b64decode(payload + "==")), pad="x" * 200_000)
    assert reject(a, f"{head}.{b64(huge)}.{sig}") == "go-jose/go-jose: error in cryptographic primitive"


def test_bound_object_lookups() -> None:
    objects, signer = Objects(), Signer(RSA_KEY)
    a = authenticator(objects)
    secret_bound = bound(signer, secret=c.Ref("s", "secret-uid"))
    assert reject(a, secret_bound) == "service account token has been invalidated"
    objects.secrets[("ns", "s")] = obj("s", "other-uid")
    assert reject(a, secret_bound) == (
        "secret UID (other-uid) does not match service account secret ref claim (secret-uid)")
    objects.secrets[("ns", "s")] = obj("s", "secret-uid", meta={"deletionTimestamp": "2026-11-23T10:00:00Z"})
    assert reject(a, secret_bound) == "service account token has been invalidated"
    objects.secrets[("ns", "s")] = obj("s", "secret-uid")
    assert a.check(secret_bound, ()) is not None

    pod_bound = bound(signer, pod=c.Ref("p", "pod-uid"))
    assert reject(a, pod_bound) == "service account token has been invalidated"
    objects.pods[("ns", "p")] = obj("p", "new-uid")
    assert reject(a, pod_bound) == "pod UID (new-uid) does not match service account pod ref claim (pod-uid)"

    node_bound = bound(signer, node=c.Ref("n1", "node-uid"))
    assert reject(a, node_bound) == "service account token has been invalidated"
    objects.nodes["n1"] = obj("n1", "node-uid")
    assert a.check(node_bound, ()) is not None

    del objects.sas[("ns", "sa")]
    assert reject(a, node_bound) == 'serviceaccounts "sa" not found'
    objects.sas[("ns", "sa")] = obj("sa", "recreated")
    assert reject(a, node_bound) == "service account UID (recreated) does not match claim (sa-uid)"


# -- legacy tokens -----------------------------------------------------------------------------

def legacy_token(signer: Signer, **overrides: Any) -> str:
    claims = c.legacy_claims("ns", c.Ref("sa", "sa-uid"), "sa-token-x")
    claims.update(overrides)
    return signer.sign(claims)


def legacy(objects: Objects | None, used: list[str] | None = None) -> JWTAuthenticator:
    on_use = (lambda s: used.append(s["metadata"]["name"])) if used is not None else None
    return JWTAuthenticator([c.LEGACY_ISSUER], KeySet([RSA_KEY.public_key()]), [ISS],
                            LegacyValidator(objects, on_use), clock=lambda: NOW)


def test_legacy_claims_layout() -> None:
    assert list(c.legacy_claims("default", c.Ref("build-robot", "u"), "build-robot-token-x7kqs")) == [
        "iss", "kubernetes.io/serviceaccount/namespace", "kubernetes.io/serviceaccount/secret.name",
        "kubernetes.io/serviceaccount/service-account.name", "kubernetes.io/serviceaccount/service-account.uid",
        "sub"]


def test_legacy_token_with_lookup() -> None:
    objects, signer, used = Objects(), Signer(RSA_KEY), []
    token = legacy_token(signer)
    a = legacy(objects, used)
    assert reject(a, token) == "Token has been invalidated"
    objects.secrets[("ns", "sa-token-x")] = obj("sa-token-x", "s", data={"token": base64.b64encode(b"other").decode()})
    assert reject(a, token) == "Token does not match server's copy"
    objects.secrets[("ns", "sa-token-x")]["data"]["token"] = base64.b64encode(token.encode()).decode()
    result = a.check(token, ())
    assert result is not None and result.audiences == (ISS,) and used == ["sa-token-x"]
    assert result.user.name == "system:serviceaccount:ns:sa" and not result.user.extra
    objects.sas[("ns", "sa")] = obj("sa", "new")
    assert reject(a, token) == "ServiceAccount UID (new) does not match claim (sa-uid)"
    del objects.sas[("ns", "sa")]
    assert reject(a, token) == 'serviceaccounts "sa" not found'
    # bound tokens are not the legacy authenticator's business, nor legacy ones the bound one's
    assert a.check(bound(signer), ()) is None
    assert authenticator(objects).check(token, ()) is None


def test_legacy_token_without_lookup_and_claim_errors() -> None:
    signer = Signer(RSA_KEY)
    assert legacy(None).check(legacy_token(signer), ()) is not None
    assert reject(legacy(None), legacy_token(signer, sub="")) == "sub claim is missing"
    assert reject(legacy(None), legacy_token(signer, sub="system:serviceaccount:ns:other")) == "sub claim is invalid"
    assert reject(legacy(None), legacy_token(signer, **{"kubernetes.io/serviceaccount/secret.name": ""})) == (
        "secretName claim is missing")
    assert reject(legacy(None), legacy_token(signer), ("vault",)) == (
        'token audiences ["https://kubernetes.default.svc"] is invalid for the target audiences ["vault"]')


def test_last_used_label_written_at_most_daily() -> None:
    from datetime import datetime, timezone
    now = datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)
    assert needs_last_used_label({}, now) == "2026-11-23"
    assert needs_last_used_label({"kubernetes.io/legacy-token-last-used": "2026-11-23"}, now) is None
    assert needs_last_used_label({"kubernetes.io/legacy-token-last-used": "2026-11-24"}, now) is None
    assert needs_last_used_label({"kubernetes.io/legacy-token-last-used": "2026-11-01"}, now) == "2026-11-23"
