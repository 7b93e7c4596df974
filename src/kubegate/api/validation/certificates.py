"""certificates.k8s.io/v1 CertificateSigningRequest validation (pkg/apis/certificates/validation)."""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from kubegate.api.errors import (
    Cause, field_duplicate, field_forbidden, field_invalid, field_not_supported, field_required, field_too_long,
)

from . import names
from .common import d, lst, s
from .meta import validate_object_meta, validate_object_meta_update

LEGACY_SIGNER = "kubernetes.io/legacy-unknown"
USAGES = sorted([
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any", "server auth",
    "client auth", "code signing", "email protection", "s/mime", "ipsec end system", "ipsec tunnel",
    "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
])
_CONDITION_STATUSES = ["False", "True", "Unknown"]
_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for m in _PEM_RE.finditer(data):
        body = b"".join(line for line in m.group(2).split(b"\n") if b":" not in line)
        try:
            out.append((m.group(1).decode(), base64.b64decode(body)))
        except (binascii.Error, ValueError):
            continue
    return out


def _decode_b64(value: Any) -> bytes:
    try:
        return base64.b64decode(s(value), validate=True)
    except (binascii.Error, ValueError):
        return b""


def parse_csr(request: bytes) -> x509.CertificateSigningRequest:
    """certificates.ParseCSR: the first PEM block must be a CERTIFICATE REQUEST (ValueError with Go's text)."""
    blocks = _pem_blocks(request)
    if not blocks or blocks[0][0] != "CERTIFICATE REQUEST":
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        return x509.load_der_x509_csr(blocks[0][1])
    except ValueError:
        raise ValueError("x509: malformed certificate request") from None


def csr_request_error(request: bytes) -> str | None:
    """validateCSR: the first PEM block must be a CERTIFICATE REQUEST whose signature verifies."""
    try:
        csr = parse_csr(request)
    except ValueError as e:
        return str(e)
    try:
        if not csr.is_signature_valid:
            # Go's CheckSignature texts: crypto/rsa's for RSA keys, x509's own for ECDSA.
            if isinstance(csr.public_key(), rsa.RSAPublicKey):
                return "crypto/rsa: verification error"
            return "x509: ECDSA verification failure"
    except (InvalidSignature, UnsupportedAlgorithm):
        return "x509: cannot verify signature: algorithm unimplemented"
    return None


def signer_name(path: str, name: str) -> list[Cause]:
    """ValidateSignerName: `<DNS domain>/<path of DNS subdomains>`."""
    if not name:
        return [field_required(path)]
    segments = name.split("/")
    if len(segments) != 2:
        return [field_invalid(path, name, "must be a fully qualified domain and path of the form "
                                          "'example.com/signer-name'")]
    domain, rest = segments
    causes: list[Cause] = []
    if len(domain) > names.DNS1123_SUBDOMAIN_MAX:
        causes.append(field_too_long(path, names.DNS1123_SUBDOMAIN_MAX))
    labels = domain.split(".")
    for lbl in labels:
        errs = names.is_dns1123_label(lbl)
        if errs:
            causes += [field_invalid(path, domain, f"validating label \"{lbl}\": {e}") for e in errs]
            break
    if len(labels) < 2:
        causes.append(field_invalid(path, domain, "should be a domain with at least two segments separated by dots"))
    for lbl in rest.split("."):
        causes += [field_invalid(path, rest, f"validating component \"{lbl}\": {e}")
                   for e in names.is_dns1123_subdomain(lbl)]
    max_path = names.DNS1123_SUBDOMAIN_MAX - len(domain) - 1
    if len(rest) > max_path:
        causes.append(field_too_long(path, max_path))
    return causes


def _conditions(status: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    approved = denied = False
    for i, c in enumerate(lst(status.get("conditions"))):
        c = d(c)
        ctype, cstatus = s(c.get("type")), s(c.get("status"))
        ip = f"status.conditions[{i}]"
        if not ctype:
            causes.append(field_required(f"{ip}.type"))
        # Approved and Denied may only be "True" (upstream's trueConditionTypes).
        allowed = ["True"] if ctype in ("Approved", "Denied") else _CONDITION_STATUSES
        if not cstatus:
            causes.append(field_required(f"{ip}.status"))
        elif cstatus not in allowed:
            causes.append(field_not_supported(f"{ip}.status", cstatus, allowed))
        if ctype == "Approved":
            approved = True
            if denied:
                causes.append(field_invalid("status.conditions", ctype,
                                            "Approved and Denied conditions are mutually exclusive"))
        elif ctype == "Denied":
            denied = True
            if approved:
                causes.append(field_invalid("status.conditions", ctype,
                                            "Approved and Denied conditions are mutually exclusive"))
        if ctype in seen:
            causes.append(field_duplicate(f"{ip}.type", ctype))
        seen.add(ctype)
    return causes


def _certificate(status: dict[str, Any]) -> list[Cause]:
    raw = status.get("certificate")
    if not raw:
        return []
    blocks = _pem_blocks(_decode_b64(raw))
    if not blocks:
        return [field_invalid("status.certificate", "<certificate data>", "must contain at least one CERTIFICATE "
                                                                          "PEM block")]
    for typ, der in blocks:
        if typ != "CERTIFICATE":
            return [field_invalid("status.certificate", "<certificate data>",
                                  f"only CERTIFICATE PEM blocks are allowed, found \"{typ}\"")]
        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            return [field_invalid("status.certificate", "<certificate data>", "x509: malformed certificate")]
    return []


def csr(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    causes = (validate_object_meta(m, False, names.any_name) if old is None
              else validate_object_meta_update(m, d(old.get("metadata"))))
    spec = d(obj.get("spec"))
    err = csr_request_error(_decode_b64(spec.get("request")))
    if err:
        causes.append(field_invalid("spec.request", s(spec.get("request")), err))
    usages = lst(spec.get("usages"))
    if not usages:
        causes.append(field_required("spec.usages"))
    for i, u in enumerate(usages):
        if u not in USAGES:
            causes.append(field_not_supported(f"spec.usages[{i}]", u, USAGES))
    seen: set[str] = set()
    for i, u in enumerate(usages):
        if u in seen:
            causes.append(field_duplicate(f"spec.usages[{i}]", u))
        seen.add(u)
    signer = s(spec.get("signerName"))
    if signer == LEGACY_SIGNER:
        causes.append(field_invalid("spec.signerName", signer,
                                    "the legacy signerName is not allowed via this API version"))
    else:
        causes += signer_name("spec.signerName", signer)
    exp = spec.get("expirationSeconds")
    if isinstance(exp, int) and exp < 600:
        causes.append(field_invalid("spec.expirationSeconds", exp,
                                    "may not specify a duration less than 600 seconds (10 minutes)"))
    status = d(obj.get("status"))
    return causes + _conditions(status) + _certificate(status)


def _of_type(obj: dict[str, Any], ctype: str) -> list[Any]:
    return [c for c in lst(d(obj.get("status")).get("conditions")) if s(d(c).get("type")) == ctype]


def update_rules(obj: dict[str, Any], old: dict[str, Any], *, approval: bool = False,
                 certificate: bool = False) -> list[Cause]:
    """What validateCertificateSigningRequestUpdate adds to `csr` for the main resource (neither
    flag), /approval (`approval`: Approved/Denied may change) or /status (`certificate`: may be set once)."""
    causes: list[Cause] = []
    for t in ("Approved", "Denied", "Failed"):
        if len(_of_type(obj, t)) < len(_of_type(old, t)):
            causes.append(field_forbidden("status.conditions", f"updates may not remove a condition of type \"{t}\""))
    if not approval:
        for t in ("Approved", "Denied"):
            new_c, old_c = _of_type(obj, t), _of_type(old, t)
            if len(new_c) > len(old_c):
                causes.append(field_forbidden("status.conditions", f"updates may not add a condition of type \"{t}\""))
            elif len(new_c) == len(old_c) and new_c != old_c:
                # Upstream appends a cmp.Diff of the two condition lists, which has no stable text to match.
                causes.append(field_forbidden("status.conditions",
                                              f"updates may not modify a condition of type \"{t}\""))
    new_cert, old_cert = d(obj.get("status")).get("certificate") or "", d(old.get("status")).get("certificate") or ""
    if new_cert != old_cert:
        if not certificate:
            causes.append(field_forbidden("status.certificate", "updates may not set certificate content"))
        elif old_cert:
            causes.append(field_forbidden("status.certificate", "updates may not modify existing certificate content"))
    return causes


def csr_status(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """The /status subresource's ValidateUpdate."""
    return csr(obj, old) + update_rules(obj, old, certificate=True)


def csr_approval(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """The /approval subresource's ValidateUpdate."""
    return csr(obj, old) + update_rules(obj, old, approval=True)
