"""GET /.well-known/openid-configuration and /openid/v1/jwks (upstream pkg/routes/openidmetadata.go):
pre-rendered documents, publicly cacheable, each served only in its one media type."""
from __future__ import annotations

from aiohttp import web

from kubegate.api import errors
from kubegate.serviceaccount.discovery import JWKS_PATH, OPENID_CONFIG_PATH, OpenIDMetadata

PATHS = (OPENID_CONFIG_PATH, JWKS_PATH)
JWKS_TYPE = "application/jwk-set+json"


def _acceptable(accept: str | None, produces: str) -> bool:
    """go-restful's route matching on Accept: empty, */* or the exact media type."""
    if not accept:
        return True
    for item in accept.split(","):
        media = item.split(";", 1)[0].strip()
        if media in ("*/*", produces):
            return True
    return False


def serve(http: web.Request, metadata: OpenIDMetadata) -> web.Response:
    if http.method != "GET":
        raise errors.method_not_allowed()
    body, produces = ((metadata.config_json, "application/json") if http.path == OPENID_CONFIG_PATH
                      else (metadata.jwks_json, JWKS_TYPE))
    if not _acceptable(http.headers.get("Accept"), produces):
        raise errors.StatusError(406, "NotAcceptable",
                                 f"406: Not Acceptable\n\nAvailable representations: {produces}", {})
    return web.Response(body=body, headers={"Cache-Control": "public, max-age=3600", "Content-Type": produces})
