"""Service-account issuer discovery documents (upstream pkg/serviceaccount/openidmetadata.go):
the OIDC provider configuration and the JWKS of the verification keys, rendered once."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from kubegate.serviceaccount.keys import KeySet

OPENID_CONFIG_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"


@dataclass(frozen=True)
class OpenIDMetadata:
    config_json: bytes
    jwks_json: bytes


def openid_metadata(issuer: str, jwks_uri: str, external_address: str, keys: KeySet) -> OpenIDMetadata:
    """Raises ValueError with upstream's reason when discovery cannot be served (upstream then logs
    it and leaves the endpoints out)."""
    if not issuer:
        raise ValueError("empty issuer URL")
    if not jwks_uri and not external_address:
        raise ValueError("either the JWKS URI or the default external address, or both, must be set")
    if not keys.keys:
        raise ValueError("no keys provided for validating keyset")
    iss = urlsplit(issuer)
    if iss.scheme != "https":
        raise ValueError(f"issuer URL must use https scheme, got: {issuer}")
    if iss.query:
        raise ValueError(f"issuer URL may not include a query, got: {issuer}")
    if iss.fragment:
        raise ValueError(f"issuer URL may not include a fragment, got: {issuer}")
    if not jwks_uri:
        jwks_uri = f"https://{external_address}{JWKS_PATH}"
    elif urlsplit(jwks_uri).scheme != "https":
        raise ValueError(f"jwksURI requires https scheme, parsed as: {jwks_uri}")
    config = {"issuer": issuer, "jwks_uri": jwks_uri, "response_types_supported": ["id_token"],
              "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": keys.algorithms()}
    return OpenIDMetadata(orjson.dumps(config), orjson.dumps(keys.jwks()))
