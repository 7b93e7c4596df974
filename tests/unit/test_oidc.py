"""OIDC: the pure claim checks and mapping, and the authenticator against a local provider."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest

from kubegate.authn import AuthenticationError
from kubegate.authn.oidc import (OIDCAuthenticator, OIDCConfigError, OIDCOptions, RemoteKeySet, TokenError,
                                 check_claims, map_user, options_from_flags, parse_jwks, untrusted_issuer,
                                 verify_signature)
from kubegate.authn.user import CREDENTIAL_ID_KEY
from tests.local_tls import LocalCA
from tests.oidc_provider import Provider

ISS = "https://issuer.example.com/realms/test"
OPTS = OIDCOptions(ISS, "kubegate", username_prefix=ISS + "#")
NOW = 1_700_000_000.0


def flags(**kw: Any) -> OIDCOptions | None:
    args: dict[str, Any] = {"issuer_url": ISS, "client_id": "kubegate", "username_claim": "sub",
                            "username_prefix": "", "groups_claim": "", "groups_prefix": "",
                            "required_claims": [], "signing_algs": ["RS256"], "ca_file": None}
    args.update(kw)
    return options_from_flags(**args)


def unsigned(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """A token with a well-formed header and payload and a bogus signature: the claim checks run first."""
    head = orjson.dumps(header or {"alg": "RS256", "typ": "JWT"})
    b64 = jwt.utils.base64url_encode
    return f"{b64(head).decode()}.{b64(orjson.dumps(claims)).decode()}.c2ln"


def claims(**kw: Any) -> dict[str, Any]:
    base = {"iss": ISS, "aud": "kubegate", "sub": "u1", "exp": NOW + 60, "iat": NOW, "nbf": NOW}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


# -- flags -------------------------------------------------------------------------------------

def test_flags_off_and_together() -> None:
    assert flags(issuer_url="", client_id="") is None
    for kw in ({"client_id": ""}, {"issuer_url": ""}):
        with pytest.raises(OIDCConfigError, match="oidc-issuer-url and oidc-client-id must be specified together"):
            flags(**kw)


@pytest.mark.parametrize(("claim", "prefix", "want"), [
    ("sub", "", ISS + "#"), ("email", "", ""), ("sub", "-", ""), ("email", "-", ""),
    ("sub", "oidc:", "oidc:"), ("email", "oidc:", "oidc:")])
def test_username_prefix_defaults(claim: str, prefix: str, want: str) -> None:
    opts = flags(username_claim=claim, username_prefix=prefix)
    assert opts is not None and opts.username_prefix == want


@pytest.mark.parametrize(("kw", "message"), [
    ({"issuer_url": "http://issuer.example.com"}, "URL scheme must be https"),
    ({"issuer_url": "https://issuer.example.com?x=1"}, "must not contain a query"),
    ({"signing_algs": ["HS256"]}, 'oidc: unsupported signing alg: "HS256"'),
    ({"signing_algs": ["none"]}, 'unsupported signing alg: "none"'),
    ({"required_claims": ["novalue"]}, "must be formatted as key=value"),
    ({"ca_file": "/nonexistent/ca.crt"}, "Failed to read the CA file"),
])
def test_bad_flags(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(OIDCConfigError, match=message):
        opts = flags(**kw)
        assert opts is not None
        OIDCAuthenticator(opts)


def test_required_claims_repeatable_and_comma_separated() -> None:
    opts = flags(required_claims=["tier=gold,team=a", "env=prod"])
    assert opts is not None and opts.required_claims == (("env", "prod"), ("team", "a"), ("tier", "gold"))


# -- claim checks (go-oidc order: shape, iss, aud, exp, nbf, alg) -------------------------------

def test_untrusted_issuer() -> None:
    assert untrusted_issuer(unsigned(claims())) == ISS
    assert untrusted_issuer(unsigned(claims(iss=...))) == ""
    assert untrusted_issuer("a.b") is None
    assert untrusted_issuer("not-a-jwt") is None
    assert untrusted_issuer("x.!!!.y") is None
    assert untrusted_issuer(unsigned(claims(iss=5))) is None
    assert untrusted_issuer('{"iss":"x"}') is None


def test_valid_claims_pass() -> None:
    parsed = check_claims(unsigned(claims(aud=["other", "kubegate"])), OPTS, NOW)
    assert parsed.claims["sub"] == "u1" and parsed.header["alg"] == "RS256"


@pytest.mark.parametrize(("token_claims", "message"), [
    (claims(aud="other"), 'oidc: expected audience "kubegate" got \\["other"\\]'),
    (claims(aud=...), 'expected audience "kubegate" got \\[\\]'),
    (claims(iss="https://evil"), "id token issued by a different provider"),
    (claims(exp=NOW - 1), "oidc: token is expired \\(Token Expiry: 2023-11-14 22:13:19 \\+0000 UTC\\)"),
    (claims(exp=...), "token is expired \\(Token Expiry: 0001-01-01"),
    (claims(nbf=NOW + 301), "before the nbf \\(not before\\) time"),
    (claims(exp="soon"), "failed to unmarshal claims: claim exp is not a number"),
    (claims(aud=[1]), "failed to unmarshal claims: claim aud"),
])
def test_claims_rejected(token_claims: dict[str, Any], message: str) -> None:
    with pytest.raises(TokenError, match=message):
        check_claims(unsigned(token_claims), OPTS, NOW)


def test_leeway_is_upstreams() -> None:
    check_claims(unsigned(claims(nbf=NOW + 299)), OPTS, NOW)  # nbf: 5 minutes of skew
    check_claims(unsigned(claims(exp=NOW)), OPTS, NOW)  # exp: expired only once strictly before now
    check_claims(unsigned(claims(iat=NOW + 3600)), OPTS, NOW)  # iat is not checked


@pytest.mark.parametrize("alg", ["none", "HS256", "ES256"])
def test_algorithm_allow_list(alg: str) -> None:
    token = unsigned(claims())
    header = jwt.utils.base64url_encode(f'{{"alg":"{alg}","typ":"JWT"}}'.encode()).decode()
    with pytest.raises(TokenError, match=f'unexpected signature algorithm "{alg}"; expected \\["RS256"\\]'):
        check_claims(header + token[token.index("."):], OPTS, NOW)


def test_malformed_tokens() -> None:
    with pytest.raises(TokenError, match="malformed jwt payload"):
        check_claims("a.b=.c", OPTS, NOW)
    with pytest.raises(TokenError, match="failed to unmarshal claims"):
        check_claims("a." + jwt.utils.base64url_encode(b"[1]").decode() + ".c", OPTS, NOW)


# -- mapping ------------------------------------------------------------------------------------

def test_username_prefix_and_groups() -> None:
    opts = OIDCOptions(ISS, "kubegate", "sub", ISS + "#", "groups", "oidc:")
    user = map_user(claims(groups=["a", "b"]), opts)
    assert (user.name, user.uid, user.groups) == (ISS + "#u1", "", ("oidc:a", "oidc:b"))
    assert map_user(claims(groups="solo"), opts).groups == ("oidc:solo",)
    assert map_user(claims(), opts).groups == ()
    with pytest.raises(TokenError, match='oidc: parse groups claim "groups"'):
        map_user(claims(groups=[1]), opts)


def test_email_username_and_email_verified() -> None:
    opts = OIDCOptions(ISS, "kubegate", "email")
    assert map_user(claims(email="j@x.io", email_verified=True), opts).name == "j@x.io"
    assert map_user(claims(email="j@x.io"), opts).name == "j@x.io"  # checked only when present
    with pytest.raises(TokenError, match="^oidc: email not verified$"):
        map_user(claims(email="j@x.io", email_verified=False), opts)
    with pytest.raises(TokenError, match="oidc: parse 'email_verified' claim"):
        map_user(claims(email="j@x.io", email_verified="yes"), opts)
    with pytest.raises(TokenError, match='oidc: parse username claims "email": claim not present'):
        map_user(claims(), opts)
    with pytest.raises(TokenError, match="cannot unmarshal number into Go value of type string"):
        map_user(claims(email=7), opts)


def test_required_claims() -> None:
    opts = OIDCOptions(ISS, "kubegate", required_claims=(("tier", "gold"),))
    assert map_user(claims(tier="gold"), opts).name == "u1"
    with pytest.raises(TokenError, match="^oidc: required claim tier not present in ID token$"):
        map_user(claims(), opts)
    with pytest.raises(TokenError, match="^oidc: required claim tier value does not match. Got = tin, want = gold$"):
        map_user(claims(tier="tin"), opts)


def test_jti_becomes_the_credential_id() -> None:
    assert map_user(claims(jti="abc"), OPTS).extra == {CREDENTIAL_ID_KEY: ("JTI=abc",)}
    assert map_user(claims(), OPTS).extra == {}


# -- keys ---------------------------------------------------------------------------------------

def _jwk(kid: str, alg: str = "RS256") -> tuple[Any, jwt.PyJWK]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    key = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key(), as_dict=True)
    return key, parse_jwks({"keys": [{**public, "kid": kid}]})[0]


def test_verify_signature_by_kid() -> None:
    key1, jwk1 = _jwk("one")
    key2, jwk2 = _jwk("two")
    token = jwt.encode(claims(), key1, algorithm="RS256", headers={"kid": "one"})
    header = jwt.get_unverified_header(token)
    assert verify_signature(token, header, [jwk2, jwk1])
    assert not verify_signature(token, header, [jwk2])
    assert not verify_signature(token, {**header, "kid": "two"}, [jwk1, jwk2])  # kid names the key
    no_kid = jwt.encode(claims(), key1, algorithm="RS256")
    assert verify_signature(no_kid, jwt.get_unverified_header(no_kid), [jwk2, jwk1])
    tampered = token[: token.rindex(".") + 1] + ("A" if token[-1] != "A" else "B") * 4 + token[-10:]
    assert not verify_signature(tampered, header, [jwk1])


def test_key_type_must_match_the_algorithm() -> None:
    ec_key, ec_jwk = _jwk("ec", "ES256")
    token = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "ec"})
    assert verify_signature(token, {"alg": "ES256", "kid": "ec"}, [ec_jwk])
    assert not verify_signature(token, {"alg": "RS256", "kid": "ec"}, [ec_jwk])


def test_parse_jwks_skips_unusable_keys() -> None:
    _, good = _jwk("good")
    assert [k.key_id for k in parse_jwks({"keys": [{"kty": "weird"}, good._jwk_data]})] == ["good"]
    with pytest.raises(ValueError, match="not a JSON Web Key Set"):
        parse_jwks({"nokeys": []})


def test_key_refetch_is_rate_limited() -> None:
    key, jwk = _jwk("k1")
    fetched: list[int] = []
    now = [0.0]

    async def fetch() -> list[jwt.PyJWK]:
        fetched.append(1)
        return [jwk]

    async def main() -> None:
        keys = RemoteKeySet(fetch, interval=5.0, clock=lambda: now[0])
        good = jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "k1"})
        await keys.verify(good, jwt.get_unverified_header(good))  # first use fetches
        await keys.verify(good, jwt.get_unverified_header(good))  # then the cache answers
        assert len(fetched) == 1
        unknown = {"alg": "RS256", "kid": "nope"}
        with pytest.raises(TokenError, match="failed to verify id token signature"):
            await keys.verify(good, unknown)  # within the interval: no refetch
        assert len(fetched) == 1
        now[0] = 5.0
        with pytest.raises(TokenError, match="failed to verify id token signature"):
            await keys.verify(good, unknown)
        assert len(fetched) == 2
        # Concurrent misses share one fetch.
        now[0] = 20.0
        await asyncio.gather(*(keys.verify(good, unknown) for _ in range(5)), return_exceptions=True)
        assert len(fetched) == 3
    asyncio.run(main())


# -- against a provider -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA("oidc-test-ca")


@pytest.fixture
def provider(ca: LocalCA) -> Iterator[Provider]:
    p = Provider(ca).start()
    yield p
    p.stop()


def _authenticator(provider: Provider, tmp_path: Path, **kw: Any) -> OIDCAuthenticator:
    args: dict[str, Any] = {"issuer_url": provider.issuer, "client_id": "kubegate", "username_claim": "email",
                            "username_prefix": "", "groups_claim": "groups", "groups_prefix": "oidc:",
                            "required_claims": [], "signing_algs": ["RS256", "ES256"],
                            "ca_file": str(provider.ca.write(tmp_path))}
    args.update(kw)
    opts = options_from_flags(**args)
    assert opts is not None
    return OIDCAuthenticator(opts)


def test_end_to_end_with_rotation(provider: Provider, tmp_path: Path) -> None:
    auth = _authenticator(provider, tmp_path)

    async def main() -> None:
        token = provider.token()
        with pytest.raises(AuthenticationError, match="^oidc: authenticator not initialized$"):
            await auth.authenticate_token(token, ())
        await auth.initialize()
        result = await auth.authenticate_token(token, ())
        assert result is not None
        assert (result.user.name, result.user.groups) == ("jane@example.com", ("oidc:devs", "oidc:ops"))
        # Another issuer's token is not this authenticator's business.
        assert await auth.authenticate_token(provider.token(iss="https://other.example.com"), ()) is None
        # An ES256 key joins: its unknown kid makes the key set refetch (the first fetch was long enough ago).
        auth._keys._fetched_at = -100.0  # type: ignore[union-attr]
        provider.rotate("ES256")
        result = await auth.authenticate_token(provider.token(), ())
        assert result is not None and result.user.name == "jane@example.com"
        assert provider.jwks_requests == 2
        await auth.close()
    asyncio.run(main())


def test_discovery_must_name_the_configured_issuer(provider: Provider, tmp_path: Path) -> None:
    provider.discovery_issuer = "https://impostor.example.com"
    auth = _authenticator(provider, tmp_path)

    async def main() -> None:
        with pytest.raises(ValueError, match="oidc: issuer did not match the issuer returned by provider"):
            await auth.initialize()
        await auth.close()
    asyncio.run(main())


def test_provider_with_another_ca_is_not_trusted(provider: Provider, tmp_path: Path) -> None:
    other = LocalCA("other")
    auth = _authenticator(provider, tmp_path, ca_file=str(other.write(tmp_path, "other.crt")))

    async def main() -> None:
        with pytest.raises(Exception, match="certificate verify failed"):
            await auth.initialize()
        await auth.close()
    asyncio.run(main())


def test_bad_tokens_against_the_provider(provider: Provider, tmp_path: Path) -> None:
    auth = _authenticator(provider, tmp_path, required_claims=["tier=gold"])
    unpublished_kid = provider.add_key(kid="unpublished")
    unpublished = provider.token(tier="gold", kid=unpublished_kid)
    del provider.keys[unpublished_kid]

    async def main() -> None:
        await auth.initialize()
        cases = {
            provider.token(tier="gold", exp=int(time.time()) - 10): "token is expired",
            provider.token(tier="gold", aud="someone-else"): 'expected audience "kubegate"',
            provider.unsigned_token(tier="gold"): 'unexpected signature algorithm "none"',
            unpublished: "failed to verify id token signature",
            provider.forged_token(tier="gold"): "failed to verify id token signature",
            provider.token(): "required claim tier not present",
            provider.token(tier="gold", email_verified=False): "email not verified",
        }
        for token, message in cases.items():
            with pytest.raises(AuthenticationError, match=message):
                await auth.authenticate_token(token, ())
        await auth.close()
    asyncio.run(main())
