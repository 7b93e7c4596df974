"""Client-certificate authentication against the --client-ca-file bundle (upstream request/x509).

Chain verification follows Go's crypto/x509 Verify as kube-apiserver uses it: roots from the bundle,
intermediates from the presented chain, every certificate inside its validity window, issuers that
are intermediates must be CAs within their path length, and the ClientAuth extended key usage must
be permitted by every certificate that restricts usages (a certificate without the extension is
unrestricted, as in Go). Upstream checks no revocation; kubegate rejects a leaf whose serial is in the
`revoked` set (kubegate.pki.revocation), consulted on every request so a revocation applies at once.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Container
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubegate.api.objects import rfc3339
from kubegate.authn import AuthenticationError, AuthRequest, AuthResult
from kubegate.authn.user import CREDENTIAL_ID_KEY, UserInfo

_MAX_CHAIN_DEPTH = 10
_UNKNOWN_AUTHORITY = "x509: certificate signed by unknown authority"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _hex_colon(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


def _identifier(cert: x509.Certificate) -> str:
    """What upstream logs for a failed certificate: serial, subject and authority key ids."""
    skid = akid = ""
    try:
        skid = _hex_colon(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    except x509.ExtensionNotFound:
        pass
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        akid = _hex_colon(aki.key_identifier or b"")
    except x509.ExtensionNotFound:
        pass
    return f"SN={cert.serial_number}, SKID={skid}, AKID={akid}"


def _time_error(cert: x509.Certificate, now: datetime) -> str | None:
    if now < cert.not_valid_before_utc:
        return ("x509: certificate has expired or is not yet valid: current time "
                f"{rfc3339(now)} is before {rfc3339(cert.not_valid_before_utc)}")
    if now > cert.not_valid_after_utc:
        return ("x509: certificate has expired or is not yet valid: current time "
                f"{rfc3339(now)} is after {rfc3339(cert.not_valid_after_utc)}")
    return None


def _basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _allows_client_auth(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def _user_from_leaf(leaf: x509.Certificate, leaf_der: bytes) -> UserInfo | None:
    """CommonNameUserConversion: CN -> name, O values -> groups, LDAP UID -> uid."""
    cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    # Go keeps the last CN when a subject carries several.
    name = str(cns[-1].value) if cns else ""
    if not name:
        return None
    groups = tuple(str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    uids = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.USER_ID)]
    if len(uids) > 1:
        raise AuthenticationError(f"expected 1 UID, but found multiple: [{' '.join(uids)}]")
    if uids and not uids[0]:
        raise AuthenticationError("UID cannot be an empty string")
    fingerprint = hashlib.sha256(leaf_der).hexdigest()
    return UserInfo(name=name, uid=uids[0] if uids else "", groups=groups,
                    extra={CREDENTIAL_ID_KEY: (f"X509SHA256={fingerprint}",)})


# Upstream's x509.UserConversion: the identity a verified leaf (and its DER) stands for, None if none.
UserConversion = Callable[[x509.Certificate, bytes], UserInfo | None]


class X509Authenticator:
    """Authenticates the TLS peer's certificate chain; results are cached per presented chain. The
    requestheader authenticator reuses it with its own conversion to verify the proxy's certificate."""

    def __init__(self, ca_bundle_pem: bytes, cache_size: int = 4096,
                 clock: Callable[[], datetime] = _utcnow, user_conversion: UserConversion = _user_from_leaf,
                 revoked: Container[int] = frozenset()) -> None:
        roots = x509.load_pem_x509_certificates(ca_bundle_pem)
        self._roots_by_subject: dict[bytes, list[x509.Certificate]] = {}
        for root in roots:
            self._roots_by_subject.setdefault(root.subject.public_bytes(), []).append(root)
        self._root_ders = frozenset(r.public_bytes(Encoding.DER) for r in roots)
        self._clock = clock
        self._cache_size = cache_size
        self._user_conversion = user_conversion
        self._revoked = revoked
        # chain digest -> (result, the time it stops being valid: the earliest NotAfter in the chain,
        # the leaf's serial)
        self._cache: OrderedDict[bytes, tuple[AuthResult | None, datetime, int]] = OrderedDict()

    async def authenticate(self, req: AuthRequest) -> AuthResult | None:
        if not req.peer_certs:
            return None
        now = self._clock()
        key = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in req.peer_certs)).digest()
        hit = self._cache.get(key)
        if hit is not None and now <= hit[1]:
            self._cache.move_to_end(key)
            result, _, serial = hit
        else:
            if hit is not None:
                del self._cache[key]
            result, expires, serial = self._verify(req.peer_certs, now)
            self._cache[key] = (result, expires, serial)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if serial in self._revoked:
            raise AuthenticationError(f"verifying certificate SN={serial} failed: certificate has been revoked")
        return result

    def _verify(self, ders: list[bytes], now: datetime) -> tuple[AuthResult | None, datetime, int]:
        try:
            certs = [x509.load_der_x509_certificate(d) for d in ders]
        except ValueError as e:
            raise AuthenticationError(f"failed to parse client certificate: {e}") from e
        leaf = certs[0]
        chain = self._verified_chain(leaf, ders[0], certs[1:], now)
        if not all(_allows_client_auth(c) for c in chain):
            raise AuthenticationError(f"verifying certificate {_identifier(leaf)} failed: "
                                      "x509: certificate specifies an incompatible key usage")
        user = self._user_conversion(leaf, ders[0])
        expires = min(c.not_valid_after_utc for c in chain)
        return (AuthResult(user) if user is not None else None), expires, leaf.serial_number

    def _verified_chain(self, leaf: x509.Certificate, leaf_der: bytes,
                        intermediates: list[x509.Certificate], now: datetime) -> list[x509.Certificate]:
        def fail(msg: str) -> AuthenticationError:
            return AuthenticationError(f"verifying certificate {_identifier(leaf)} failed: {msg}")

        err = _time_error(leaf, now)
        if err:
            raise fail(err)
        if leaf_der in self._root_ders:
            return [leaf]
        last_error = [_UNKNOWN_AUTHORITY]

        def build(chain: list[x509.Certificate]) -> list[x509.Certificate] | None:
            cert = chain[-1]
            below = len(chain) - 1  # intermediates between this cert's issuer and the leaf
            issuer_key = cert.issuer.public_bytes()
            for root in self._roots_by_subject.get(issuer_key, []):
                if not _signed_by(cert, root):
                    continue
                problem = _time_error(root, now) or _path_len_error(root, below)
                if problem:
                    last_error[0] = problem
                    continue
                return chain + [root]
            if len(chain) >= _MAX_CHAIN_DEPTH:
                return None
            for inter in intermediates:
                if inter in chain or inter.subject.public_bytes() != issuer_key or not _signed_by(cert, inter):
                    continue
                bc = _basic_constraints(inter)
                if bc is None or not bc.ca:
                    last_error[0] = "x509: certificate is not authorized to sign other certificates"
                    continue
                problem = _time_error(inter, now) or _path_len_error(inter, below)
                if problem:
                    last_error[0] = problem
                    continue
                found = build(chain + [inter])
                if found is not None:
                    return found
            return None

        chain = build([leaf])
        if chain is None:
            raise fail(last_error[0])
        return chain


def _path_len_error(issuer: x509.Certificate, intermediates_below: int) -> str | None:
    bc = _basic_constraints(issuer)
    if bc is not None and bc.path_length is not None and intermediates_below > bc.path_length:
        return "x509: too many intermediates for path length constraint"
    return None
