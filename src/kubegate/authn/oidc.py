"""OpenID Connect ID tokens (`--oidc-*`), as upstream's apiserver/plugin/pkg/authenticator/token/oidc
with go-oidc's verifier: discovery and JWKS fetched over HTTPS, claims checked before the signature,
then mapped to a user.

The claim checks and the mapping are pure functions of the token, the options and the time; the
authenticator adds the network: discovery polled in the background until it succeeds (tokens get
`oidc: authenticator not initialized` until then), and a JWKS refetch whenever no cached key verifies
a signature (key rotation), at most once per KEYS_REFRESH_INTERVAL so unknown key ids cannot make the
server hammer the provider."""
from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import orjson
from yarl import URL

from kubegate.authn import AuthenticationError, AuthResult
from kubegate.authn.user import CREDENTIAL_ID_KEY, UserInfo

log = logging.getLogger("kubegate.authn.oidc")

ALLOWED_SIGNING_ALGS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512")
NBF_LEEWAY = 300.0  # go-oidc allows 5 minutes of clock skew on nbf; exp has none and iat is not checked
DISCOVERY_RETRY = 10.0  # upstream polls discovery every 10 s until it succeeds
KEYS_REFRESH_INTERVAL = 5.0
HTTP_TIMEOUT = 30.0  # upstream's http.Client timeout for discovery and keys
WELL_KNOWN = "/.well-known/openid-configuration"

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class OIDCConfigError(ValueError):
    """The --oidc-* flags cannot configure an authenticator (reported at startup)."""


class TokenError(Exception):
    """This issuer's token, rejected; the message is upstream's (it goes to logs, never to clients)."""


@dataclass(frozen=True)
class OIDCOptions:
    issuer_url: str
    client_id: str
    username_claim: str = "sub"
    username_prefix: str = ""  # the effective prefix (see options_from_flags)
    groups_claim: str = ""
    groups_prefix: str = ""
    required_claims: tuple[tuple[str, str], ...] = ()
    signing_algs: tuple[str, ...] = ("RS256",)
    ca_file: str | None = None


def options_from_flags(issuer_url: str, client_id: str, username_claim: str, username_prefix: str,
                       groups_claim: str, groups_prefix: str, required_claims: Sequence[str],
                       signing_algs: Sequence[str], ca_file: str | None) -> OIDCOptions | None:
    """kube-apiserver's reading of the legacy --oidc-* flags; None when OIDC is off."""
    if not issuer_url and not client_id:
        return None
    if not issuer_url or not client_id:
        raise OIDCConfigError("oidc-issuer-url and oidc-client-id must be specified together when any oidc-* "
                              "flags are set")
    url = URL(issuer_url)
    if url.scheme != "https":
        raise OIDCConfigError(f'issuer.url: Invalid value: "{issuer_url}": URL scheme must be https')
    if url.query_string or url.fragment or url.user is not None:
        raise OIDCConfigError(f'issuer.url: Invalid value: "{issuer_url}": URL must not contain a query, '
                              f'fragment or user info')
    if not username_claim:
        raise OIDCConfigError("no username claim provided")
    for alg in signing_algs or ("RS256",):
        if alg not in ALLOWED_SIGNING_ALGS:
            raise OIDCConfigError(f'oidc: unsupported signing alg: "{alg}"')
    # Legacy behaviour: claims other than email are prefixed with the issuer unless a prefix is
    # given; "-" turns prefixing off.
    prefix = username_prefix
    if not prefix and username_claim != "email":
        prefix = issuer_url + "#"
    if username_prefix == "-":
        prefix = ""
    pairs: dict[str, str] = {}
    for item in required_claims:
        for pair in item.split(","):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise OIDCConfigError(f"oidc-required-claim: {pair!r} must be formatted as key=value")
            pairs[key] = value
    return OIDCOptions(issuer_url, client_id, username_claim, prefix, groups_claim, groups_prefix,
                       tuple(sorted(pairs.items())), tuple(signing_algs or ("RS256",)), ca_file)


# -- the pure core -------------------------------------------------------------------------------

def _b64decode(segment: str) -> bytes:
    """base64.RawURLEncoding: URL alphabet, no padding."""
    if not _B64URL.fullmatch(segment):
        raise ValueError("illegal base64 data")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:
        raise ValueError("illegal base64 data") from None


def untrusted_issuer(token: str) -> str | None:
    """The unverified `iss` of a compact JWT, or None if the token is not one."""
    if token.strip().startswith("{"):
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(_b64decode(parts[1]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    iss = claims.get("iss")
    if iss is None:
        return ""
    return iss if isinstance(iss, str) else None


@dataclass(frozen=True)
class ParsedToken:
    header: Mapping[str, Any]
    claims: Mapping[str, Any]


def _go_time(seconds: float) -> str:
    t = datetime.datetime.fromtimestamp(int(seconds), datetime.UTC)
    return f"{t.year:04d}-{t:%m-%d %H:%M:%S} +0000 UTC"  # Go's Time.String


def _time_claim(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(f"oidc: failed to unmarshal claims: claim {name} is not a number")
    return float(int(value))  # go-oidc truncates to whole seconds


def check_claims(token: str, opts: OIDCOptions, now: float) -> ParsedToken:
    """go-oidc's IDTokenVerifier.Verify up to the signature: shape, iss, aud, exp, nbf, alg."""
    parts = token.split(".")
    if len(parts) < 2:
        raise TokenError(f"oidc: malformed jwt: malformed jwt, expected 3 parts got {len(parts)}")
    try:
        payload = _b64decode(parts[1])
    except ValueError as e:
        raise TokenError(f"oidc: malformed jwt: malformed jwt payload: {e}") from None
    try:
        claims = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise TokenError(f"oidc: failed to unmarshal claims: {e}") from None
    if not isinstance(claims, dict):
        raise TokenError("oidc: failed to unmarshal claims: the payload is not a JSON object")
    for name in ("iss", "sub"):
        if claims.get(name) is not None and not isinstance(claims[name], str):
            raise TokenError(f"oidc: failed to unmarshal claims: claim {name} is not a string")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if aud is not None else []
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise TokenError("oidc: failed to unmarshal claims: claim aud is not a string or an array of strings")
    exp, nbf = _time_claim(claims, "exp"), _time_claim(claims, "nbf")
    _time_claim(claims, "iat")

    if claims.get("iss") != opts.issuer_url:
        raise TokenError(f"oidc: verify token: oidc: id token issued by a different provider, expected "
                         f'"{opts.issuer_url}" got "{claims.get("iss") or ""}"')
    if opts.client_id not in audiences:
        got = "[" + " ".join(f'"{a}"' for a in audiences) + "]"
        raise TokenError(f'oidc: verify token: oidc: expected audience "{opts.client_id}" got {got}')
    expiry = exp if exp is not None else -62135596800.0  # Go's zero time: a token without exp is expired
    if expiry < now:
        raise TokenError(f"oidc: verify token: oidc: token is expired (Token Expiry: {_go_time(expiry)})")
    if nbf is not None and now + NBF_LEEWAY < nbf:
        raise TokenError(f"oidc: verify token: oidc: current time {_go_time(now)} before the nbf (not before) "
                         f"time: {_go_time(nbf)}")
    try:
        header = orjson.loads(_b64decode(parts[0]))
    except (ValueError, orjson.JSONDecodeError) as e:
        raise TokenError(f"oidc: verify token: oidc: malformed jwt: {e}") from None
    if len(parts) != 3 or not isinstance(header, dict):
        raise TokenError("oidc: verify token: oidc: malformed jwt: go-jose/go-jose: compact JWS format must have "
                         "three parts")
    alg = header.get("alg")
    if alg not in opts.signing_algs:
        expected = "[" + " ".join(f'"{a}"' for a in opts.signing_algs) + "]"
        raise TokenError(f'oidc: verify token: oidc: malformed jwt: go-jose/go-jose: unexpected signature '
                         f'algorithm "{alg}"; expected {expected}')
    return ParsedToken(header, claims)


def map_user(claims: Mapping[str, Any], opts: OIDCOptions) -> UserInfo:
    """Upstream's claim mapping for the legacy flags: username (with email_verified), groups,
    credential id from jti, then the required claims."""
    if opts.username_claim not in claims:
        raise TokenError(f'oidc: parse username claims "{opts.username_claim}": claim not present')
    username = claims[opts.username_claim]
    if username is None:
        username = ""  # JSON null decodes to Go's zero value
    if not isinstance(username, str):
        raise TokenError(f'oidc: parse username claims "{opts.username_claim}": json: cannot unmarshal '
                         f'{_json_kind(username)} into Go value of type string')
    if opts.username_claim == "email" and "email_verified" in claims:
        verified = claims["email_verified"]
        if verified is not None and not isinstance(verified, bool):
            raise TokenError(f"oidc: parse 'email_verified' claim: json: cannot unmarshal {_json_kind(verified)} "
                             f"into Go value of type bool")
        if not verified:
            raise TokenError("oidc: email not verified")
    groups: list[str] = []
    if opts.groups_claim and opts.groups_claim in claims:
        value = claims[opts.groups_claim]
        if isinstance(value, str):
            groups = [value]
        elif value is None:
            groups = []
        elif isinstance(value, list) and all(isinstance(g, str) for g in value):
            groups = value
        else:
            raise TokenError(f'oidc: parse groups claim "{opts.groups_claim}": json: cannot unmarshal '
                             f'{_json_kind(value)} into Go value of type string')
        groups = [opts.groups_prefix + g for g in groups]
    extra: dict[str, tuple[str, ...]] = {}
    if isinstance(claims.get("jti"), str):
        extra[CREDENTIAL_ID_KEY] = ("JTI=" + claims["jti"],)
    for claim, required in opts.required_claims:
        if claim not in claims:
            raise TokenError(f"oidc: required claim {claim} not present in ID token")
        value = claims[claim]
        if value is not None and not isinstance(value, str):
            raise TokenError(f"oidc: parse claim {claim}: json: cannot unmarshal {_json_kind(value)} into Go value "
                             f"of type string")
        if (value or "") != required:
            raise TokenError(f"oidc: required claim {claim} value does not match. Got = {value or ''}, "
                             f"want = {required}")
    return UserInfo(opts.username_prefix + username, "", tuple(groups), extra)


def _json_kind(value: Any) -> str:
    return {bool: "bool", str: "string", dict: "object", list: "array"}.get(type(value), "number")


def verify_signature(token: str, header: Mapping[str, Any], keys: Sequence[jwt.PyJWK]) -> bool:
    """go-oidc's RemoteKeySet.verify over one key set: a key with the token's kid (any key when the
    token names none) that verifies the signature with the header's (already allowed) algorithm."""
    kid = header.get("kid") or ""
    for key in keys:
        if kid and key.key_id != kid:
            continue
        try:
            jwt.api_jws.PyJWS().decode_complete(token, key=key.key, algorithms=[header["alg"]])
            return True
        except (jwt.PyJWTError, TypeError, ValueError):
            continue
    return False


def parse_jwks(doc: Any) -> list[jwt.PyJWK]:
    """The usable keys of a JWKS document; keys of unknown types are skipped."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("oidc: failed to decode keys: not a JSON Web Key Set")
    keys = []
    for item in doc["keys"]:
        try:
            keys.append(jwt.PyJWK(item))
        except (jwt.PyJWTError, TypeError, ValueError, KeyError):
            continue
    return keys


# -- the network ---------------------------------------------------------------------------------

class RemoteKeySet:
    """The provider's keys, fetched when none verifies a token, no more often than `interval`."""

    def __init__(self, fetch: Callable[[], Awaitable[list[jwt.PyJWK]]], interval: float = KEYS_REFRESH_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._interval = interval
        self._clock = clock
        self._keys: list[jwt.PyJWK] = []
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def verify(self, token: str, header: Mapping[str, Any]) -> None:
        if verify_signature(token, header, self._keys):
            return
        keys = await self._refresh()
        if not verify_signature(token, header, keys):
            raise TokenError("oidc: verify token: failed to verify signature: failed to verify id token signature")

    async def _refresh(self) -> list[jwt.PyJWK]:
        async with self._lock:  # concurrent misses share one fetch
            if self._fetched_at is not None and self._clock() - self._fetched_at < self._interval:
                return self._keys
            self._fetched_at = self._clock()
            try:
                self._keys = await self._fetch()
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, orjson.JSONDecodeError) as e:
                raise TokenError(f"oidc: verify token: failed to verify signature: fetching keys {e}") from None
            return self._keys


class OIDCAuthenticator:
    """Token authenticator for one issuer. Tokens of other issuers are not its business (None)."""

    def __init__(self, opts: OIDCOptions, clock: Callable[[], float] = time.time) -> None:
        self._opts = opts
        self._clock = clock
        self._ssl = _client_context(opts.ca_file)
        self._session: aiohttp.ClientSession | None = None
        self._keys: RemoteKeySet | None = None

    async def authenticate_token(self, token: str, audiences: tuple[str, ...]) -> AuthResult | None:
        if untrusted_issuer(token) != self._opts.issuer_url:
            return None
        if self._keys is None:
            raise AuthenticationError("oidc: authenticator not initialized")
        try:
            parsed = check_claims(token, self._opts, self._clock())
            await self._keys.verify(token, parsed.header)
            user = map_user(parsed.claims, self._opts)
        except TokenError as e:
            raise AuthenticationError(str(e)) from None
        return AuthResult(user)

    async def initialize(self) -> None:
        """Provider discovery (go-oidc NewProvider); raises on failure."""
        doc = await self._get_json(self._opts.issuer_url.rstrip("/") + WELL_KNOWN, "provider discovery object")
        if doc.get("issuer") != self._opts.issuer_url:
            raise ValueError(f'oidc: issuer did not match the issuer returned by provider, expected '
                             f'"{self._opts.issuer_url}" got "{doc.get("issuer")}"')
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise ValueError("oidc: provider discovery object has no jwks_uri")

        async def fetch() -> list[jwt.PyJWK]:
            return parse_jwks(await self._get_json(jwks_uri, "keys"))
        self._keys = RemoteKeySet(fetch)

    async def run(self) -> None:
        """A server background task: discovery every DISCOVERY_RETRY seconds until it works, then
        idle until cancelled at shutdown, when the HTTP connections are closed."""
        try:
            while self._keys is None:
                try:
                    await self.initialize()
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, orjson.JSONDecodeError) as e:
                    log.error("oidc authenticator: initializing plugin: %s", e)
                    await asyncio.sleep(DISCOVERY_RETRY)
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl))
        async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise ValueError(f"{resp.status} {resp.reason}: {body[:2048].decode(errors='replace')}")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"oidc: failed to decode {what}: {e}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"oidc: failed to decode {what}: not a JSON object")
        return doc


def _client_context(ca_file: str | None) -> ssl.SSLContext:
    """Only the --oidc-ca-file roots when given (as upstream), else the host's."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise OIDCConfigError(f"Failed to read the CA file: {e}") from None
