"""Keys and X.509 certificates the way kubeadm's pkiutil makes them, built on `cryptography`.

Certificates carry the same extensions Go's ``x509.CreateCertificate`` emits for kubeadm's
templates: critical basicConstraints and keyUsage (digitalSignature + keyEncipherment, plus
keyCertSign and, unlike kubeadm, cRLSign on CAs), extKeyUsage on leaves, a subjectKeyIdentifier
on CAs, an authorityKeyIdentifier on leaves, and a DNS SAN equal to the CN on CAs. Key files use the
PEM types client-go's keyutil writes ("EC PRIVATE KEY" / "RSA PRIVATE KEY").
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

KEY_TYPES = ("ecdsa", "rsa")
RSA_KEY_BITS = 2048
# kubeadm constants: CACertificateValidityPeriod, CertificateValidityPeriod, CertificateBackdate.
CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 365
CERTIFICATE_BACKDATE = datetime.timedelta(minutes=5)
# Serials are uniform in [1, 2^63-1], as kubeadm's NewSignedCert draws them.
_MAX_SERIAL = 2**63 - 1

CERT_FILE_MODE = 0o644
KEY_FILE_MODE = 0o600


class PKIError(Exception):
    """A PKI file is unusable (missing half of a pair, mismatched key, wrong issuer, bad PEM)."""


def new_key(key_type: str) -> PrivateKey:
    """A fresh private key: ECDSA P-256 for "ecdsa", RSA 2048 for "rsa"."""
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    raise PKIError(f"unsupported key type {key_type!r}: must be one of {', '.join(KEY_TYPES)}")


def _utcnow() -> datetime.datetime:
    # X.509 times have second precision; truncating keeps NotBefore/NotAfter comparisons exact.
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _subject(cn: str, orgs: Sequence[str]) -> x509.Name:
    # Go's pkix.Name puts O before CN and all O values in one (multi-valued) RDN.
    rdns: list[x509.RelativeDistinguishedName] = []
    if orgs:
        rdns.append(
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
            )
        )
    rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    return x509.Name(rdns)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,  # kubegate's CRL (`certs crl`) must pass `openssl verify -crl_check`
        encipher_only=False,
        decipher_only=False,
    )


def _serial() -> int:
    return secrets.randbelow(_MAX_SERIAL - 1) + 1


def self_signed_ca(
    cn: str,
    key: PrivateKey,
    days: int = CA_VALIDITY_DAYS,
    *,
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    """A self-signed CA certificate named `cn`, backdated by CERTIFICATE_BACKDATE."""
    now = now or _utcnow()
    name = _subject(cn, ())
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(_serial())
        .not_valid_before(now - CERTIFICATE_BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def issue(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    cn: str,
    orgs: Sequence[str] = (),
    dns: Sequence[str] = (),
    ips: Sequence[str | IPAddress] = (),
    client: bool = False,
    server: bool = False,
    days: int = LEAF_VALIDITY_DAYS,
    key: PrivateKey,
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    """A leaf certificate for `key`, signed by the CA.

    Like kubeadm, NotBefore is the CA's NotBefore and NotAfter is now + `days`; duplicate SANs
    are dropped.
    """
    if not client and not server:
        raise PKIError(f"certificate {cn!r} must have at least one ExtKeyUsage")
    now = now or _utcnow()
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(cn, orgs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(ca_cert.not_valid_before_utc)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    # kubeadm's RemoveDuplicateAltNames sorts DNS names and keeps IPs in order.
    alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in sorted(set(dns))]
    ip_values = _dedupe(str(ipaddress.ip_address(i)) for i in ips)
    alt_names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_values]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            _public_key(ca_cert)
        )
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _public_key(cert: x509.Certificate) -> PublicKey:
    public = cert.public_key()
    if not isinstance(public, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise PKIError(f"certificate {cert.subject.rfc4514_string()} has neither an RSA nor an ECDSA key")
    return public


# --- PEM --------------------------------------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """SEC1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY", as client-go's keyutil writes."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_key_pem(key: PublicKey) -> bytes:
    """PKIX "PUBLIC KEY" (the sa.pub format)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_cert_pem(data: bytes, *, source: str = "certificate") -> x509.Certificate:
    """The first certificate in `data` (the leaf comes first in a bundle)."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as err:
        raise PKIError(f"{source} does not contain a valid PEM certificate: {err}") from err
    return certs[0]


def parse_key_pem(data: bytes, *, source: str = "private key", trusted: bool = False) -> PrivateKey:
    """A private key from PEM (PKCS#1, SEC1 or PKCS#8).

    `trusted` skips RSA's expensive consistency checks; only pass it for files kubegate wrote
    itself, since those checks are what protect against a crafted key.
    """
    try:
        key = serialization.load_pem_private_key(
            data, password=None, unsafe_skip_rsa_key_validation=trusted
        )
    except (ValueError, TypeError) as err:
        raise PKIError(f"{source} does not contain a valid unencrypted PEM private key") from err
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise PKIError(f"the private key file {source} is neither in RSA nor ECDSA format")
    return key


def parse_public_key_pem(data: bytes, *, source: str = "public key") -> PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as err:
        raise PKIError(f"{source} does not contain a valid PEM public key") from err
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise PKIError(f"the public key file {source} is neither in RSA nor ECDSA format")
    return key


# --- checks -----------------------------------------------------------------------------------


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_keys_equal(a: PublicKey, b: PublicKey) -> bool:
    return _spki(a) == _spki(b)


def key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    return public_keys_equal(_public_key(cert), key.public_key())


def is_signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """Whether `ca_cert` issued `cert` (issuer name and signature both check out)."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# --- files ------------------------------------------------------------------------------------


def load_cert(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PKIError(f"couldn't load the certificate file {path}: {err.strerror}") from err
    return parse_cert_pem(data, source=f"the certificate file {path}")


def load_key(path: Path, *, trusted: bool = False) -> PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PKIError(f"couldn't load the private key file {path}: {err.strerror}") from err
    return parse_key_pem(data, source=str(path), trusted=trusted)


def load_pair(
    cert_path: Path, key_path: Path, *, trusted: bool = False
) -> tuple[x509.Certificate, PrivateKey]:
    """Certificate and key from disk; PKIError naming both files when the key is not the cert's."""
    cert = load_cert(cert_path)
    key = load_key(key_path, trusted=trusted)
    if not key_matches(cert, key):
        raise PKIError(
            f"the private key {key_path} does not match the public key in the certificate {cert_path}"
        )
    return cert, key


def _write_atomic(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Write via a temp file in the same directory so readers never see a partial file.

    Without `overwrite` the final step is a hard link, which fails if the name exists, so two
    concurrent writers cannot clobber each other's key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_key(path: Path, key: PrivateKey, *, overwrite: bool = False) -> None:
    """Private key PEM at `path`, mode 0600, atomically; FileExistsError unless `overwrite`."""
    _write_atomic(path, key_pem(key), KEY_FILE_MODE, overwrite=overwrite)


def write_cert(path: Path, cert: x509.Certificate, *, overwrite: bool = False) -> None:
    """Certificate PEM at `path`, mode 0644, atomically; FileExistsError unless `overwrite`."""
    _write_atomic(path, cert_pem(cert), CERT_FILE_MODE, overwrite=overwrite)


def write_public_key(path: Path, key: PublicKey, *, overwrite: bool = False) -> None:
    """Public key PEM at `path`, mode 0600 (keyutil.WriteKey is used for sa.pub too)."""
    _write_atomic(path, public_key_pem(key), KEY_FILE_MODE, overwrite=overwrite)


def write_public_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Any non-secret file (a CRL) at mode 0644, atomically."""
    _write_atomic(path, data, CERT_FILE_MODE, overwrite=overwrite)


def write_private_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Any secret-bearing file (kubeconfigs) at mode 0600, atomically."""
    _write_atomic(path, data, KEY_FILE_MODE, overwrite=overwrite)
