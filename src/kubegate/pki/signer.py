"""The built-in CSR signers' pure core: which requests a kubernetes.io signer accepts and how it
signs them (upstream pkg/controller/certificates/signer/signer.go, .../authority/authority.go and
policies.go, pkg/apis/certificates/v1/helpers.go). No I/O: the controller hands in the CA and time.
"""
from __future__ import annotations

import base64
import datetime
import secrets
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubegate.pki.certs import PrivateKey

KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
KUBE_APISERVER_CLIENT_KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
LEGACY_UNKNOWN = "kubernetes.io/legacy-unknown"
# What kube-controller-manager's csrsigning signs; legacy-unknown CSRs cannot be made through v1.
SIGNERS = (KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET, KUBELET_SERVING)

DEFAULT_DURATION = datetime.timedelta(hours=8760)  # --cluster-signing-duration
MIN_DURATION = datetime.timedelta(minutes=10)  # twice the backdate
BACKDATE = datetime.timedelta(minutes=5)
BACKDATE_HORIZON = datetime.timedelta(hours=8)  # shorter certificates are not backdated
SERIAL_LIMIT = 2**128

_NODE_PREFIX = "system:node:"
_KUBELET_CLIENT_USAGES = ({"key encipherment", "digital signature", "client auth"},
                          {"digital signature", "client auth"})
_KUBELET_SERVING_USAGES = ({"key encipherment", "digital signature", "server auth"},
                           {"digital signature", "server auth"})

# authority/policies.go keyUsageDict and extKeyUsageDict; ExtKeyUsages are emitted in Go's enum order.
_KEY_USAGE_BITS = {
    "signing": "digital_signature", "digital signature": "digital_signature",
    "content commitment": "content_commitment", "key encipherment": "key_encipherment",
    "key agreement": "key_agreement", "data encipherment": "data_encipherment", "cert sign": "key_cert_sign",
    "crl sign": "crl_sign", "encipher only": "encipher_only", "decipher only": "decipher_only",
}
_EXT_KEY_USAGES = {
    "any": (0, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE), "server auth": (1, ExtendedKeyUsageOID.SERVER_AUTH),
    "client auth": (2, ExtendedKeyUsageOID.CLIENT_AUTH), "code signing": (3, ExtendedKeyUsageOID.CODE_SIGNING),
    "email protection": (4, ExtendedKeyUsageOID.EMAIL_PROTECTION),
    "s/mime": (4, ExtendedKeyUsageOID.EMAIL_PROTECTION),
    "ipsec end system": (5, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5")),
    "ipsec tunnel": (6, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6")),
    "ipsec user": (7, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7")),
    "timestamping": (8, ExtendedKeyUsageOID.TIME_STAMPING), "ocsp signing": (9, ExtendedKeyUsageOID.OCSP_SIGNING),
    "microsoft sgc": (10, x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3")),
    "netscape sgc": (11, x509.ObjectIdentifier("2.16.840.1.113730.4.1")),
}
# Go's pkix.Name.ToRDNSequence: these attributes, in this order, each type's values in one RDN.
_SUBJECT_ORDER = (NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME,
                  NameOID.STREET_ADDRESS, NameOID.POSTAL_CODE, NameOID.ORGANIZATION_NAME,
                  NameOID.ORGANIZATIONAL_UNIT_NAME)


class SignerError(Exception):
    """The request does not satisfy its signer (becomes a Failed condition)."""


def parse_request(request_b64: str) -> x509.CertificateSigningRequest:
    """spec.request (base64 of PEM) as upstream's ParseCSR reads it; validation has already
    checked it, so failures here mean a stored object predates validation."""
    try:
        return x509.load_pem_x509_csr(base64.b64decode(request_b64))
    except ValueError as e:
        raise SignerError(f"unable to parse csr: {e}") from None


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def organizations(csr: x509.CertificateSigningRequest) -> list[str]:
    return _attr(csr.subject, NameOID.ORGANIZATION_NAME)


def common_name(csr: x509.CertificateSigningRequest) -> str:
    cns = _attr(csr.subject, NameOID.COMMON_NAME)
    return cns[0] if cns else ""


def _sans(csr: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _san_counts(csr: x509.CertificateSigningRequest) -> dict[type, int]:
    sans = _sans(csr)
    kinds = (x509.DNSName, x509.IPAddress, x509.RFC822Name, x509.UniformResourceIdentifier)
    return {k: len(sans.get_values_for_type(k)) if sans else 0 for k in kinds}  # type: ignore[arg-type]


def kubelet_client_error(csr: x509.CertificateSigningRequest, usages: Iterable[str]) -> str | None:
    """ValidateKubeletClientCSR, with upstream's error text (None when the request is valid)."""
    if organizations(csr) != ["system:nodes"]:
        return "subject organization is not system:nodes"
    n = _san_counts(csr)
    for kind, label in ((x509.DNSName, "DNS"), (x509.RFC822Name, "Email"), (x509.IPAddress, "IP"),
                        (x509.UniformResourceIdentifier, "URI")):
        if n[kind]:
            return f"{label} subjectAltNames are not allowed"
    if not common_name(csr).startswith(_NODE_PREFIX):
        return f"subject common name does not begin with {_NODE_PREFIX}"
    if set(usages) not in _KUBELET_CLIENT_USAGES:
        return f"usages did not match [{' '.join(sorted(_KUBELET_CLIENT_USAGES[0]))}]"
    return None


def kubelet_serving_error(csr: x509.CertificateSigningRequest, usages: Iterable[str]) -> str | None:
    """ValidateKubeletServingCSR."""
    if organizations(csr) != ["system:nodes"]:
        return "subject organization is not system:nodes"
    n = _san_counts(csr)
    if not n[x509.DNSName] and not n[x509.IPAddress]:
        return "DNS or IP subjectAltName is required"
    if n[x509.RFC822Name]:
        return "Email subjectAltNames are not allowed"
    if n[x509.UniformResourceIdentifier]:
        return "URI subjectAltNames are not allowed"
    if set(usages) not in _KUBELET_SERVING_USAGES:
        return f"usages did not match [{' '.join(sorted(_KUBELET_SERVING_USAGES[0]))}]"
    if not common_name(csr).startswith(_NODE_PREFIX):
        return f"subject common name does not begin with {_NODE_PREFIX}"
    return None


def apiserver_client_error(usages: Iterable[str]) -> str | None:
    """validAPIServerClientUsages."""
    has_client_auth = False
    for u in usages:
        if u == "client auth":
            has_client_auth = True
        elif u not in ("digital signature", "key encipherment"):
            return f"invalid usage for client certificate: {u}"
    if not has_client_auth:
        return "missing required usage for client certificate: client auth"
    return None


def check(signer_name: str, csr: x509.CertificateSigningRequest, usages: Sequence[str]) -> bool:
    """isRequestForSignerFn: False for signers this controller does not sign for; raises
    SignerError when the request is for a built-in signer but breaks its rules."""
    if signer_name == KUBE_APISERVER_CLIENT:
        err = apiserver_client_error(usages)
    elif signer_name == KUBE_APISERVER_CLIENT_KUBELET:
        err = kubelet_client_error(csr, usages)
    elif signer_name == KUBELET_SERVING:
        err = kubelet_serving_error(csr, usages)
    else:
        return False
    if err:
        raise SignerError(err)
    return True


def duration(expiration_seconds: int | None, max_duration: datetime.timedelta) -> datetime.timedelta:
    """The certificate's lifetime: the requested one within [10m, --cluster-signing-duration]."""
    if expiration_seconds is None:
        return max_duration
    requested = datetime.timedelta(seconds=expiration_seconds)
    return max(MIN_DURATION, min(requested, max_duration))


def boundaries(now: datetime.datetime, ttl: datetime.timedelta,
               ca_not_after: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    backdate = BACKDATE if ttl >= BACKDATE_HORIZON else datetime.timedelta(0)
    if ca_not_after < now:
        raise SignerError(f"the signer has expired: NotAfter={ca_not_after.isoformat()}")
    return now - backdate, min(now + ttl - backdate, ca_not_after)


def go_subject(name: x509.Name) -> x509.Name:
    """The subject as Go re-encodes a parsed pkix.Name: O before CN, multi-valued RDNs."""
    rdns = [x509.RelativeDistinguishedName(name.get_attributes_for_oid(oid))
            for oid in _SUBJECT_ORDER if name.get_attributes_for_oid(oid)]
    for oid in (NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER):
        attrs = name.get_attributes_for_oid(oid)
        if attrs:
            rdns.append(x509.RelativeDistinguishedName(attrs[-1:]))  # Go keeps the last value
    return x509.Name(rdns)


def _key_usage(usages: Iterable[str]) -> x509.KeyUsage | None:
    bits = {_KEY_USAGE_BITS[u] for u in usages if u in _KEY_USAGE_BITS}
    if not bits:
        return None
    flags = {f: f in bits for f in set(_KEY_USAGE_BITS.values())}
    return x509.KeyUsage(**flags)


def sign(csr: x509.CertificateSigningRequest, usages: Sequence[str], ttl: datetime.timedelta,
         ca_cert: x509.Certificate, ca_key: PrivateKey, now: datetime.datetime) -> x509.Certificate:
    """CertificateAuthority.Sign with the permissive policy: subject, SANs and key from the
    request, usages from spec.usages, never a CA."""
    not_before, not_after = boundaries(now, ttl, ca_cert.not_valid_after_utc)
    builder = (x509.CertificateBuilder()
               .subject_name(go_subject(csr.subject))
               .issuer_name(ca_cert.subject)
               .public_key(csr.public_key())
               .serial_number(secrets.randbelow(SERIAL_LIMIT - 1) + 1)
               .not_valid_before(not_before)
               .not_valid_after(not_after))
    key_usage = _key_usage(usages)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    ekus = sorted({_EXT_KEY_USAGES[u] for u in usages if u in _EXT_KEY_USAGES}, key=lambda e: e[0])
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage([oid for _, oid in ekus]), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                        critical=False)
    except x509.ExtensionNotFound:
        pass  # Go names the authority key only when the CA carries a subject key identifier
    sans = _sans(csr)
    if sans is not None and len(sans):
        builder = builder.add_extension(sans, critical=not len(csr.subject))
    return builder.sign(ca_key, hashes.SHA256())
