"""Client-certificate revocation, which upstream never shipped.

Revoked serials live in the ConfigMap kube-system/kubegate-revoked-certificates: one data key per
serial (lower-case hex, no separators, so it is a valid ConfigMap key) whose value is the RFC 3339
time of revocation. A ConfigMap keeps the list in the store, visible and auditable with kubectl,
readable by an informer, and guarded by RBAC like any other kube-system object. Serials are
compared without their issuer: every certificate kubegate issues carries a random serial of 63
bits or more, so a collision between CAs is not a practical concern.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from kubegate.pki.certs import PKIError, PrivateKey

NAMESPACE = "kube-system"
CONFIGMAP = "kubegate-revoked-certificates"
# What `kubegate certs crl` writes by default: the next update a week after this one.
CRL_VALIDITY = datetime.timedelta(days=7)

_HEX = re.compile(r"[0-9a-f]+")


def parse_serial(text: str) -> int:
    """A serial as openssl prints it (`serial=0A1B...`), with or without colons or a 0x prefix."""
    cleaned = text.strip().lower()
    cleaned = cleaned.removeprefix("serial=").removeprefix("0x").replace(":", "")
    if not cleaned or not _HEX.fullmatch(cleaned):
        raise PKIError(f"invalid serial {text!r}: want the certificate's serial number in hexadecimal")
    value = int(cleaned, 16)
    if value == 0:
        raise PKIError(f"invalid serial {text!r}: serial numbers are positive")
    return value


def serial_key(serial: int) -> str:
    return f"{serial:x}"


def revoked_serials(configmap: Mapping[str, Any] | None) -> dict[int, datetime.datetime]:
    """Serial -> revocation time from the ConfigMap; entries it cannot read are skipped, since an
    unreadable entry must not stop every other revocation from taking effect."""
    out: dict[int, datetime.datetime] = {}
    for key, value in ((configmap or {}).get("data") or {}).items():
        try:
            serial = int(key, 16)
            at = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            continue
        out[serial] = at if at.tzinfo else at.replace(tzinfo=datetime.timezone.utc)
    return out


def build_crl(ca_cert: x509.Certificate, ca_key: PrivateKey, revoked: Mapping[int, datetime.datetime],
              now: datetime.datetime, validity: datetime.timedelta = CRL_VALIDITY) -> x509.CertificateRevocationList:
    """A CRL over `revoked`, issued and signed by the CA."""
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca_cert.subject)
               .last_update(now)
               .next_update(now + validity)
               # RFC 5280 wants a CRL number that grows with every CRL; the issue time does.
               .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False))
    for serial, at in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at).build())
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                        critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(ca_key, hashes.SHA256())


def find_serial(serial: int, certs: Iterable[x509.Certificate]) -> x509.Certificate | None:
    return next((c for c in certs if c.serial_number == serial), None)


class RevocationSet:
    """The revoked serials, kept current by an informer over ConfigMaps (`handle`)."""

    def __init__(self) -> None:
        self._serials: frozenset[int] = frozenset()

    def __contains__(self, serial: int) -> bool:
        return serial in self._serials

    def handle(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        meta = (obj or old or {}).get("metadata") or {}
        if meta.get("namespace") != NAMESPACE or meta.get("name") != CONFIGMAP:
            return
        self._serials = frozenset() if typ == "DELETED" else frozenset(revoked_serials(obj))
