"""A small OpenID Connect provider for tests: discovery and JWKS over HTTPS with its own CA, and
signing keys it can add and rotate. Runs in a background thread of the test process."""
from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.local_tls import LocalCA, ThreadedServer, server_context

REALM = "/realms/test"


def _new_key(alg: str) -> Any:
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
        return ec.generate_private_key(curve)
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Provider:
    def __init__(self, ca: LocalCA) -> None:
        self.ca = ca
        self.keys: dict[str, tuple[str, Any]] = {}  # kid -> (alg, private key); all are published
        self.current = ""
        self.jwks_requests = 0
        self.discovery_issuer: str | None = None  # overrides the issuer the discovery document names
        app = web.Application()
        app.router.add_get(REALM + "/.well-known/openid-configuration", self._discovery)
        app.router.add_get(REALM + "/keys", self._jwks)
        self.server = ThreadedServer(app, server_context(ca))

    @property
    def issuer(self) -> str:
        return self.server.url + REALM

    def start(self) -> "Provider":
        self.server.start()
        self.rotate()
        return self

    def stop(self) -> None:
        self.server.stop()

    def add_key(self, alg: str = "RS256", kid: str | None = None) -> str:
        kid = kid or f"key-{len(self.keys) + 1}"
        self.keys[kid] = (alg, _new_key(alg))
        return kid

    def rotate(self, alg: str = "RS256", drop_old: bool = True) -> str:
        """A new signing key becomes current; the old ones leave the JWKS unless kept."""
        kid = self.add_key(alg)
        if drop_old:
            self.keys = {kid: self.keys[kid]}
        self.current = kid
        return kid

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": self.issuer, "aud": "kubegate", "sub": "u-1234", "email": "jane@example.com",
                "email_verified": True, "groups": ["devs", "ops"], "iat": now, "nbf": now, "exp": now + 600}
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not ...}

    def token(self, kid: str | None = None, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        kid = kid or self.current
        alg, key = self.keys[kid]
        return jwt.encode(self.claims(**claims), key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def forged_token(self, **claims: Any) -> str:
        """Signed by a key the provider never published, under the current key's kid."""
        alg, _ = self.keys[self.current]
        return jwt.encode(self.claims(**claims), _new_key(alg), algorithm=alg, headers={"kid": self.current})

    def unsigned_token(self, **claims: Any) -> str:
        """alg "none": no signature at all."""
        header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        return f"{header}.{_b64(json.dumps(self.claims(**claims)).encode())}."

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": self.discovery_issuer or self.issuer,
                                  "jwks_uri": self.issuer + "/keys",
                                  "id_token_signing_alg_values_supported": ["RS256", "ES256"]})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        keys = []
        for kid, (alg, key) in self.keys.items():
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return web.json_response({"keys": keys})
