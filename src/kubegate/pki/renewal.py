"""Certificate expiry and renewal over the kubeadm layout (kubeadm's certs renewal manager).

The handler names, their CAs and the two check-expiration tables are kubeadm's. Renewal re-issues
a leaf from its local CA with a fresh key of the same type and the same subject, SANs and extended
key usages; certificates embedded in kubeconfigs are replaced in place, the rest of the file kept.
A CA whose key is absent is "externally managed": its leaves are reported but never re-issued.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubegate.pki.certs import (
    LEAF_VALIDITY_DAYS,
    PKIError,
    PrivateKey,
    cert_pem,
    issue,
    key_pem,
    load_cert,
    load_pair,
    new_key,
    parse_cert_pem,
    write_cert,
    write_key,
    write_private_file,
)
from kubegate.pki.kubeconfig import current_user, dump_kubeconfig, embedded_pem, load_kubeconfig
from kubegate.pki.layout import PKIPaths


@dataclass(frozen=True)
class CA:
    name: str  # kubeadm's handler name (etcd-ca)
    file: str  # base name under pki/ (etcd/ca)


@dataclass(frozen=True)
class Renewable:
    name: str  # kubeadm's handler name: the pki name with "/" -> "-", or the kubeconfig file name
    long_name: str
    ca: CA
    file: str  # base name under pki/, or the kubeconfig file name
    kubeconfig: bool = False


CA_CLUSTER = CA("ca", "ca")
CA_ETCD = CA("etcd-ca", "etcd/ca")
CA_FRONT_PROXY = CA("front-proxy-ca", "front-proxy-ca")
CAS: tuple[CA, ...] = (CA_CLUSTER, CA_ETCD, CA_FRONT_PROXY)

# Sorted by name, as kubeadm's Manager.Certificates() returns them.
CERTIFICATES: tuple[Renewable, ...] = tuple(sorted((
    Renewable("admin.conf", "certificate embedded in the kubeconfig file for the admin to use and for kubeadm "
              "itself", CA_CLUSTER, "admin.conf", kubeconfig=True),
    Renewable("apiserver", "certificate for serving the Kubernetes API", CA_CLUSTER, "apiserver"),
    Renewable("apiserver-etcd-client", "certificate the apiserver uses to access etcd", CA_ETCD,
              "apiserver-etcd-client"),
    Renewable("apiserver-kubelet-client", "certificate for the API server to connect to kubelet", CA_CLUSTER,
              "apiserver-kubelet-client"),
    Renewable("controller-manager.conf", "certificate embedded in the kubeconfig file for the controller "
              "manager to use", CA_CLUSTER, "controller-manager.conf", kubeconfig=True),
    Renewable("etcd-healthcheck-client", "certificate for liveness probes to healthcheck etcd", CA_ETCD,
              "etcd/healthcheck-client"),
    Renewable("etcd-peer", "certificate for etcd nodes to communicate with each other", CA_ETCD, "etcd/peer"),
    Renewable("etcd-server", "certificate for serving etcd", CA_ETCD, "etcd/server"),
    Renewable("front-proxy-client", "certificate for the front proxy client", CA_FRONT_PROXY,
              "front-proxy-client"),
    Renewable("scheduler.conf", "certificate embedded in the kubeconfig file for the scheduler manager to use",
              CA_CLUSTER, "scheduler.conf", kubeconfig=True),
    Renewable("super-admin.conf", "certificate embedded in the kubeconfig file for the super-admin",
              CA_CLUSTER, "super-admin.conf", kubeconfig=True),
), key=lambda r: r.name))
BY_NAME = {r.name: r for r in CERTIFICATES}

# What a running `kubegate up` renews by itself: its serving certificate, the client certificates it
# presents, and the kubeconfigs of the controllers it runs in-process. The admin kubeconfigs are
# credentials people copy elsewhere, so they are renewed only on request.
SERVER_OWNED = ("apiserver", "apiserver-etcd-client", "apiserver-kubelet-client", "controller-manager.conf",
                "front-proxy-client", "scheduler.conf")

EXPIRY_WARNING = datetime.timedelta(days=30)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


# --- reading ----------------------------------------------------------------------------------


def exists(paths: PKIPaths, r: Renewable) -> bool:
    if r.kubeconfig:
        return paths.kubeconfig(r.file).exists()
    return paths.cert(r.file).exists()


def read(paths: PKIPaths, r: Renewable) -> x509.Certificate:
    """The certificate `r` names (PKIError when it cannot be read)."""
    if not r.kubeconfig:
        return load_cert(paths.cert(r.file))
    path = paths.kubeconfig(r.file)
    data = embedded_pem(load_kubeconfig(path), "client-certificate-data")
    if data is None:
        raise PKIError(f"failed to load kubeconfig file {path}: it has no embedded client-certificate-data")
    return parse_cert_pem(data, source=f"the kubeconfig file {path}")


def externally_managed(paths: PKIPaths, ca: CA) -> bool:
    """The CA certificate is there but its key is not (kubeadm's UsingExternalCA)."""
    return paths.cert(ca.file).exists() and not paths.key(ca.file).exists()


# --- check-expiration -------------------------------------------------------------------------


def short_human_duration(d: datetime.timedelta) -> str:
    """apimachinery's duration.ShortHumanDuration."""
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    if (minutes := seconds // 60) < 60:
        return f"{minutes}m"
    if (hours := seconds // 3600) < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def _expires(t: datetime.datetime) -> str:
    return t.strftime("%b %d, %Y %H:%M UTC")


def _yes_no(b: bool) -> str:
    return "yes" if b else "no"


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter with (minwidth 10, tabwidth 4, padding 3, ' ', 0) for tables whose rows
    all have the same cells: every tab-terminated cell is padded to its column's width; the last
    cell of a line is written as is. A blank line starts a new table."""
    out: list[str] = []
    block: list[list[str]] = []

    def flush() -> None:
        widths: dict[int, int] = {}
        for cells in block:
            for i, c in enumerate(cells[:-1]):
                widths[i] = max(widths.get(i, minwidth), len(c) + padding)
        for cells in block:
            out.append("".join(c.ljust(widths[i]) for i, c in enumerate(cells[:-1])) + cells[-1])
        block.clear()

    for line in lines:
        if line == "":
            flush()
            out.append("")
        else:
            block.append(line.split("\t"))
    flush()
    return "\n".join(out) + "\n"


def check_expiration(paths: PKIPaths, now: datetime.datetime) -> str:
    """Both of kubeadm's check-expiration tables, as printed."""
    lines = ["CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tEXTERNALLY MANAGED"]
    for r in CERTIFICATES:
        if not exists(paths, r):
            lines.append(f"!MISSING! {r.name}\t\t\t\t")
            continue
        cert = read(paths, r)
        lines.append(f"{r.name}\t{_expires(cert.not_valid_after_utc)}\t"
                     f"{short_human_duration(cert.not_valid_after_utc - now)}\t{r.ca.name}\t"
                     f"{_yes_no(externally_managed(paths, r.ca)):<8}")
    lines += ["", "CERTIFICATE AUTHORITY\tEXPIRES\tRESIDUAL TIME\tEXTERNALLY MANAGED"]
    for ca in CAS:
        if not paths.cert(ca.file).exists():
            lines.append(f"!MISSING! {ca.name}\t\t\t")
            continue
        cert = load_cert(paths.cert(ca.file))
        lines.append(f"{ca.name}\t{_expires(cert.not_valid_after_utc)}\t"
                     f"{short_human_duration(cert.not_valid_after_utc - now)}\t"
                     f"{_yes_no(externally_managed(paths, ca)):<8}")
    return tabwrite(lines)


def expiry_warnings(paths: PKIPaths, now: datetime.datetime, within: datetime.timedelta = EXPIRY_WARNING
                    ) -> list[str]:
    """One line per certificate or CA of the layout that expires within `within` (or has expired)."""
    found: list[tuple[str, x509.Certificate]] = []
    for r in CERTIFICATES:
        if exists(paths, r):
            try:
                found.append((r.name, read(paths, r)))
            except PKIError:
                continue
    for ca in CAS:
        if paths.cert(ca.file).exists():
            try:
                found.append((ca.name, load_cert(paths.cert(ca.file))))
            except PKIError:
                continue
    warnings = []
    for name, cert in found:
        left = cert.not_valid_after_utc - now
        if left <= datetime.timedelta(0):
            warnings.append(f"certificate {name} expired on {_expires(cert.not_valid_after_utc)}")
        elif left < within:
            warnings.append(f"certificate {name} expires on {_expires(cert.not_valid_after_utc)} "
                            f"(in {short_human_duration(left)})")
    return warnings


# --- renewal ----------------------------------------------------------------------------------


def renewal_due(cert: x509.Certificate, now: datetime.datetime) -> bool:
    """Whether less than a third of the certificate's life remains.

    kubeadm backdates a leaf's NotBefore to its CA's, so NotAfter - NotBefore overstates the life
    of any leaf issued after the CA; the life is therefore capped at the nominal leaf validity, or
    a freshly renewed certificate would count as due again at once."""
    life = min(cert.not_valid_after_utc - cert.not_valid_before_utc, datetime.timedelta(days=LEAF_VALIDITY_DAYS))
    return cert.not_valid_after_utc - now < life / 3


def _key_type(cert: x509.Certificate) -> str:
    return "rsa" if isinstance(cert.public_key(), rsa.RSAPublicKey) else "ecdsa"


def _reissue(old: x509.Certificate, ca_cert: x509.Certificate, ca_key: PrivateKey, now: datetime.datetime
             ) -> tuple[x509.Certificate, PrivateKey]:
    """A fresh key and a certificate with `old`'s CN, O, SANs and extended key usages (certToConfig)."""
    cns = old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = [str(a.value) for a in old.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    try:
        san = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = list(san.get_values_for_type(x509.DNSName))
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = list(san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = [], []
    try:
        usages = old.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    key = new_key(_key_type(old))
    cert = issue(ca_cert, ca_key, cn=str(cns[-1].value) if cns else "", orgs=orgs, dns=dns, ips=ips,
                 client=ExtendedKeyUsageOID.CLIENT_AUTH in usages, server=ExtendedKeyUsageOID.SERVER_AUTH in usages,
                 key=key, now=now)
    return cert, key


def renew(paths: PKIPaths, name: str, now: datetime.datetime | None = None) -> bool:
    """Re-issue certificate `name` from its local CA; False when the CA is externally managed.

    The key is written before the certificate, so a reader that finds the pair mismatched only has
    to look again (the server's reload does)."""
    r = BY_NAME.get(name)
    if r is None:
        raise PKIError(f"{name} is not a valid certificate for this cluster")
    if externally_managed(paths, r.ca):
        return False
    old = read(paths, r)
    ca_cert, ca_key = load_pair(paths.cert(r.ca.file), paths.key(r.ca.file), trusted=True)
    cert, key = _reissue(old, ca_cert, ca_key, now or utcnow())
    if r.kubeconfig:
        _replace_kubeconfig_credentials(paths.kubeconfig(r.file), cert_pem(cert), key_pem(key))
    else:
        write_key(paths.key(r.file), key, overwrite=True)
        write_cert(paths.cert(r.file), cert, overwrite=True)
    return True


def _replace_kubeconfig_credentials(path: Path, cert: bytes, key: bytes) -> None:
    config = load_kubeconfig(path)
    user = current_user(config)
    if user is None:
        raise PKIError(f"failed to load kubeconfig file {path}: its current context names no user")
    user["client-certificate-data"] = base64.b64encode(cert).decode("ascii")
    user["client-key-data"] = base64.b64encode(key).decode("ascii")
    write_private_file(path, dump_kubeconfig(config), overwrite=True)
