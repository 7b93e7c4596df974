"""Service-account signing and verification keys, as upstream's pkg/serviceaccount/jwt.go and
openidmetadata.go use them: RS256 for RSA, ES256/384/512 for EC P-256/384/521, and a key id that
is the unpadded base64url SHA-256 of the key's PKIX DER."""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubegate.server.config import ConfigError

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_EC_CRV = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----\r?\n.*?-----END \1-----", re.S)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def algorithm_for(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    alg = _EC_ALGS.get(key.curve.name)
    if alg is None:
        raise ConfigError("unknown private key curve, must be 256, 384, or 521")
    return alg


def key_id(key: PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def _int_b64(n: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (n.bit_length() + 7) // 8)
    return b64url(n.to_bytes(length, "big"))


def jwk(key: PublicKey) -> dict[str, Any]:
    """The public JWK upstream publishes, in go-jose's field order."""
    out: dict[str, Any] = {"use": "sig"}
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        out.update(kty="RSA", kid=key_id(key), alg="RS256", n=_int_b64(nums.n), e=_int_b64(nums.e))
        return out
    ec_nums = key.public_numbers()
    size = (key.curve.key_size + 7) // 8
    out.update(kty="EC", kid=key_id(key), crv=_EC_CRV[key.curve.name], alg=algorithm_for(key),
               x=_int_b64(ec_nums.x, size), y=_int_b64(ec_nums.y, size))
    return out


@dataclass(frozen=True)
class VerificationKey:
    """A public key ready to check signatures: its id, its algorithm and PyJWT's verifier."""

    key: PublicKey
    kid: str
    alg: str
    _verifier: Any = field(repr=False, compare=False)

    @classmethod
    def of(cls, key: PublicKey) -> VerificationKey:
        alg = algorithm_for(key)
        verifier = jwt.get_algorithm_by_name(alg)
        return cls(key, key_id(key), alg, verifier)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        return bool(self._verifier.verify(signing_input, self.key, signature))


class KeySet:
    """Verification keys looked up by kid as upstream's static public-keys getter: a token without
    a kid is tried against every key; one whose kid is unknown against none."""

    def __init__(self, keys: list[PublicKey]) -> None:
        self.keys = [VerificationKey.of(k) for k in keys]
        self._by_kid: dict[str, list[VerificationKey]] = {}
        for k in self.keys:
            self._by_kid.setdefault(k.kid, []).append(k)

    def candidates(self, kid: str) -> list[VerificationKey]:
        if not kid:
            return self.keys
        return self._by_kid.get(kid, [])

    def jwks(self) -> dict[str, Any]:
        return {"keys": [jwk(k.key) for k in self.keys]}

    def algorithms(self) -> list[str]:
        return sorted({k.alg for k in self.keys})


class Signer:
    """Signs claims with the --service-account-signing-key-file key (upstream JWTTokenGenerator)."""

    def __init__(self, key: PrivateKey) -> None:
        self._key = key
        public = key.public_key()
        self.alg = algorithm_for(public)
        self.kid = key_id(public)

    def sign(self, claims: dict[str, Any]) -> str:
        # typ None drops PyJWT's "typ": upstream's header is exactly {"alg","kid"}.
        return jwt.encode(claims, self._key, algorithm=self.alg, headers={"kid": self.kid, "typ": None})


def public_keys_from_pem(data: bytes, source: str) -> list[PublicKey]:
    """Every RSA/ECDSA key in a PEM file, as client-go's keyutil.ParsePublicKeysPEM: public keys,
    private keys (their public half) and certificates."""
    keys: list[PublicKey] = []
    for m in _PEM_BLOCK.finditer(data):
        block, kind = m.group(0), m.group(1).decode()
        try:
            if kind == "CERTIFICATE":
                pub: Any = x509.load_pem_x509_certificate(block).public_key()
            elif kind.endswith("PRIVATE KEY"):
                pub = serialization.load_pem_private_key(block, password=None).public_key()
            elif kind.endswith("PUBLIC KEY"):
                pub = serialization.load_pem_public_key(block)
            else:
                continue
        except ValueError as e:
            raise ConfigError(f"error reading public key file {source}: {e}") from None
        if isinstance(pub, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
            keys.append(pub)
    if not keys:
        raise ConfigError(f"error reading public key file {source}: "
                        "data does not contain any valid RSA or ECDSA public keys")
    return keys


def load_public_keys(paths: list[str]) -> list[PublicKey]:
    keys: list[PublicKey] = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as e:
            raise ConfigError(f"error reading public key file {p}: {e.strerror}") from None
        keys.extend(public_keys_from_pem(data, p))
    return keys


def load_signing_key(path: str) -> PrivateKey:
    try:
        data = Path(path).read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"failed to parse service-account-issuer-key-file: {e}") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigError("failed to build token generator: unknown private key type")
    algorithm_for(key.public_key())
    return key

