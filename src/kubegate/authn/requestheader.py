"""The authenticating proxy (upstream request/headerrequest + x509.Verifier): identity from request
headers, trusted only from a client whose certificate verifies against --requestheader-client-ca-file
and, when --requestheader-allowed-names is set, whose CN is one of those names.

Any other client's X-Remote-* headers are never read: the authenticator answers "not mine" (no
certificate) or fails (a certificate from another CA, a CN not allowed), and the union goes on to
the next authenticator. After authentication the server strips these headers (`cleared_headers`:
the standard X-Remote-* names plus the configured ones) so nothing further down can be fooled by them.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from cryptography import x509
from cryptography.x509.oid import NameOID

from kubegate.authn import AuthenticationError, AuthRequest, AuthResult, header_values
from kubegate.authn.user import UserInfo
from kubegate.authn.x509 import X509Authenticator

_GO_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class RequestHeaderConfig:
    """kube-apiserver's --requestheader-* header flags (their defaults are empty upstream)."""

    username_headers: tuple[str, ...] = ()
    uid_headers: tuple[str, ...] = ()
    group_headers: tuple[str, ...] = ()
    extra_prefixes: tuple[str, ...] = ()
    allowed_names: tuple[str, ...] = ()


# The front-proxy headers upstream's authentication filter deletes from every authenticated request,
# whatever is configured (filters/authentication.go: standardRequestHeaderConfig).
STANDARD = RequestHeaderConfig(("X-Remote-User",), ("X-Remote-Uid",), ("X-Remote-Group",), ("X-Remote-Extra-",))


def validate(cfg: RequestHeaderConfig) -> tuple[list[str], list[str]]:
    """RequestHeaderAuthenticationOptions.Validate: (errors, warnings)."""
    errs: list[str] = []
    for flag, values in (("requestheader-username-headers", cfg.username_headers),
                         ("requestheader-uid-headers", cfg.uid_headers),
                         ("requestheader-group-headers", cfg.group_headers),
                         ("requestheader-extra-headers-prefix", cfg.extra_prefixes),
                         ("requestheader-allowed-names", cfg.allowed_names)):
        if any(not v.strip() for v in values):
            errs.append(f'empty value in "{flag}"')
    warnings = []
    for flag, values, standard, what in (
            ("username-headers", cfg.username_headers, "X-Remote-User", "header"),
            ("uid-headers", cfg.uid_headers, "X-Remote-Uid", "header"),
            ("group-headers", cfg.group_headers, "X-Remote-Group", "header"),
            ("extra-headers-prefix", cfg.extra_prefixes, "X-Remote-Extra-", "header prefix")):
        if values and not any(v.lower() == standard.lower() for v in values):
            warnings.append(f"--requestheader-{flag} is set without specifying the standard {standard} {what} - "
                            "API aggregation will not work")
    return errs, warnings


def go_path_unescape(s: str) -> str:
    """url.PathUnescape, falling back to the input when it is malformed (upstream unescapeExtraKey)."""
    if "%" not in s:
        return s
    if _GO_ESCAPE.search(s):
        return s
    return unquote_to_bytes(s).decode("utf-8", errors="replace")


def user_from_headers(headers: Mapping[str, str], cfg: RequestHeaderConfig) -> UserInfo | None:
    """requestHeaderAuthRequestHandler: the first non-empty username header names the user (none ->
    not authenticated); uid likewise; groups are all non-empty values of all group headers
    (commas are not split); extra keys are the lower-cased, path-unescaped rest of each header
    that starts with an extra prefix."""
    name = _first_value(headers, cfg.username_headers)
    if not name:
        return None
    groups = tuple(v for h in cfg.group_headers for v in header_values(headers, h) if v)
    return UserInfo(name=name, uid=_first_value(headers, cfg.uid_headers), groups=groups,
                    extra=extra_from_headers(headers, cfg.extra_prefixes))


def extra_from_headers(headers: Mapping[str, str], prefixes: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Extra values from every header that starts (case-insensitively) with a prefix: the key is the
    rest of the name lower-cased, then path-unescaped, so `%2F` can carry a `/`."""
    extra: dict[str, tuple[str, ...]] = {}
    for prefix in prefixes:
        low = prefix.lower()
        for key, value in headers.items():
            if key.lower().startswith(low):
                k = go_path_unescape(key[len(prefix):].lower())
                extra[k] = extra.get(k, ()) + (value,)
    return extra


def _first_value(headers: Mapping[str, str], names: Iterable[str]) -> str:
    for h in names:
        # Header.Get: the first value of that header only.
        values = header_values(headers, h)
        if values and values[0]:
            return values[0]
    return ""


def _proxy_identity(allowed_names: tuple[str, ...]) -> Callable[[x509.Certificate, bytes], UserInfo]:
    """x509.Verifier.verifySubject as a user conversion: the verified proxy's CN must be allowed.
    The returned identity only marks the chain as verified; it never becomes the request's user."""
    allowed = frozenset(allowed_names)

    def convert(leaf: x509.Certificate, der: bytes) -> UserInfo:
        cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(cns[-1].value) if cns else ""
        if allowed and cn not in allowed:
            raise AuthenticationError(f"x509: subject with cn={cn} is not in the allowed list")
        return UserInfo(name=cn)
    return convert


class RequestHeaderAuthenticator:
    def __init__(self, ca_bundle_pem: bytes, cfg: RequestHeaderConfig) -> None:
        self._verifier = X509Authenticator(ca_bundle_pem, user_conversion=_proxy_identity(cfg.allowed_names))
        self.ca_pem = ca_bundle_pem
        self.config = cfg

    async def authenticate(self, req: AuthRequest) -> AuthResult | None:
        if not req.peer_certs:
            return None
        await self._verifier.authenticate(req)  # raises unless the proxy's certificate is trusted
        user = user_from_headers(req.headers, self.config)
        return AuthResult(user) if user is not None else None


@dataclass(frozen=True)
class HeaderNames:
    """A set of header names and name prefixes, matched case-insensitively."""

    names: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, names: Iterable[str], prefixes: Iterable[str]) -> HeaderNames:
        return cls(frozenset(n.lower() for n in names), tuple(p.lower() for p in prefixes))

    def __or__(self, other: HeaderNames) -> HeaderNames:
        return HeaderNames(self.names | other.names, tuple(dict.fromkeys(self.prefixes + other.prefixes)))

    def matches(self, name: str) -> bool:
        low = name.lower()
        return low in self.names or low.startswith(self.prefixes)

    def without(self, headers: Mapping[str, str]) -> list[tuple[str, str]] | None:
        """The headers minus those named here, or None when there is nothing to remove."""
        if not any(self.matches(k) for k in headers.keys()):
            return None
        return [(k, v) for k, v in headers.items() if not self.matches(k)]


def cleared_headers(cfg: RequestHeaderConfig | None) -> HeaderNames:
    """What ClearAuthenticationHeaders removes after authentication: the standard front-proxy
    headers, and the configured ones too."""
    out = HeaderNames.of((), ())
    for c in (STANDARD, cfg) if cfg is not None else (STANDARD,):
        out = out | HeaderNames.of((*c.username_headers, *c.uid_headers, *c.group_headers), c.extra_prefixes)
    return out
