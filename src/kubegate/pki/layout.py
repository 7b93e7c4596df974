"""`kubegate init`: the kubeadm PKI layout and kubeconfigs under a data directory.

Layout (kubeadm's names, with DIR standing for /etc/kubernetes)::

    DIR/pki/ca.{crt,key}                       CN=kubernetes
    DIR/pki/apiserver.{crt,key}                CN=kube-apiserver, serverAuth
    DIR/pki/apiserver-kubelet-client.{crt,key} CN=kube-apiserver-kubelet-client, clientAuth
    DIR/pki/front-proxy-ca.{crt,key}           CN=front-proxy-ca
    DIR/pki/front-proxy-client.{crt,key}       CN=front-proxy-client, clientAuth
    DIR/pki/etcd/ca.{crt,key}                  CN=etcd-ca
    DIR/pki/etcd/{server,peer}.{crt,key}       CN=<node>, serverAuth+clientAuth
    DIR/pki/etcd/healthcheck-client.{crt,key}  CN=kube-etcd-healthcheck-client, clientAuth
    DIR/pki/apiserver-etcd-client.{crt,key}    CN=kube-apiserver-etcd-client, clientAuth
    DIR/pki/sa.{key,pub}                       service-account token signing key pair
    DIR/{admin,super-admin,controller-manager,scheduler}.conf

Deviations from kubeadm, on purpose:
- The apiserver certificate also names ``localhost`` and ``127.0.0.1``: kubegate is usually
  reached on the loopback address, and curl/kubectl must verify it there.
- apiserver-kubelet-client has no ``O=system:masters`` (kubeadm v1.36.1+, kubernetes#138957);
  its rights come from the ``kubeadm:apiserver-kubelet-client`` ClusterRoleBinding.
- Certificate keys default to ECDSA P-256 (kubeadm: RSA 2048) because generating the whole
  layout then takes milliseconds. sa.key is RSA 2048 whatever ``key_type`` says: verifying RS256
  is about three times faster than ES256, and every service-account token request pays a verify
  while only token issuance pays a sign.

Existing files are never overwritten: a pair on disk is loaded, checked (key matches the
certificate, certificate signed by its CA, server SANs still cover what is asked) and reused; a
missing leaf is issued from the existing CA. Anything inconsistent raises PKIError naming the
files involved.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from kubegate.pki.certs import (
    CA_VALIDITY_DAYS,
    KEY_TYPES,
    LEAF_VALIDITY_DAYS,
    PKIError,
    PrivateKey,
    cert_pem,
    is_signed_by,
    issue,
    key_pem,
    load_key,
    load_pair,
    new_key,
    parse_cert_pem,
    parse_public_key_pem,
    public_keys_equal,
    self_signed_ca,
    write_cert,
    write_key,
    write_public_key,
)
from kubegate.pki.kubeconfig import current_cluster, embedded_pem, load_kubeconfig, write_kubeconfig

__all__ = [
    "CLUSTER_NAME",
    "CertSpec",
    "InitResult",
    "KUBECONFIG_SPECS",
    "KubeconfigSpec",
    "PKIError",
    "PKIPaths",
    "apiserver_url",
    "cert_specs",
    "init_pki",
    "node_name_from_host",
]

CLUSTER_NAME = "kubernetes"
DNS_DOMAIN = "cluster.local"
# First address of kubeadm's default service subnet 10.96.0.0/12: the `kubernetes` Service IP.
APISERVER_SERVICE_IP = "10.96.0.1"
LOOPBACK_V4 = "127.0.0.1"
LOOPBACK_V6 = "::1"
DEFAULT_SECURE_PORT = 6443

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
_WILDCARD_SUBDOMAIN = re.compile(rf"\*\.{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
_DNS1123_SUBDOMAIN_MAX = 253


@dataclass(frozen=True)
class CertSpec:
    """One certificate of the layout. `name` is the path under pki/ without extension."""

    name: str
    cn: str
    ca: str | None = None  # issuing CA's name; None for a self-signed CA
    orgs: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    client: bool = False
    server: bool = False

    @property
    def is_ca(self) -> bool:
        return self.ca is None


@dataclass(frozen=True)
class KubeconfigSpec:
    """One kubeconfig file: a client certificate for `user` (CN) in `orgs` (O), signed by ca."""

    file: str
    user: str
    orgs: tuple[str, ...] = ()


KUBECONFIG_SPECS: tuple[KubeconfigSpec, ...] = (
    KubeconfigSpec("admin.conf", "kubernetes-admin", ("kubeadm:cluster-admins",)),
    KubeconfigSpec("super-admin.conf", "kubernetes-super-admin", ("system:masters",)),
    KubeconfigSpec("controller-manager.conf", "system:kube-controller-manager"),
    KubeconfigSpec("scheduler.conf", "system:kube-scheduler"),
)


@dataclass(frozen=True)
class PKIPaths:
    """Where each file of the layout lives under a data directory."""

    data_dir: Path

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    def cert(self, name: str) -> Path:
        return self.pki_dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.pki_dir / f"{name}.key"

    @property
    def sa_key(self) -> Path:
        return self.pki_dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.pki_dir / "sa.pub"

    def kubeconfig(self, file: str) -> Path:
        return self.data_dir / file


@dataclass
class InitResult:
    """What `init_pki` did: files created and files found and reused, in layout order."""

    paths: PKIPaths
    server: str
    created: list[Path] = field(default_factory=list)
    reused: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # kubeadm-style progress lines ("[certs] Generating "ca" certificate and key", ...).
    messages: list[str] = field(default_factory=list)


def node_name_from_host() -> str:
    """kubeadm's default node name: the host name, trimmed and lower-cased."""
    return socket.gethostname().strip().lower()


def apiserver_url(advertise_address: str | None, secure_port: int) -> str:
    host = advertise_address or LOOPBACK_V4
    if ipaddress.ip_address(host).version == 6:
        host = f"[{host}]"
    return f"https://{host}:{secure_port}"


def _split_sans(sans: Sequence[str], cert_name: str) -> tuple[list[str], list[str], list[str]]:
    """Extra SANs split into (dns, ips, warnings), with kubeadm's rule and warning text."""
    dns: list[str] = []
    ips: list[str] = []
    warnings: list[str] = []
    for san in sans:
        try:
            ips.append(str(ipaddress.ip_address(san)))
            continue
        except ValueError:
            pass
        if len(san) <= _DNS1123_SUBDOMAIN_MAX and (
            _DNS1123_SUBDOMAIN.fullmatch(san) or _WILDCARD_SUBDOMAIN.fullmatch(san)
        ):
            dns.append(san)
        else:
            warnings.append(
                f"[certificates] WARNING: '{san}' was not added to the '{cert_name}' SAN, "
                "because it is not a valid IP or RFC-1123 compliant DNS entry"
            )
    return dns, ips, warnings


def cert_specs(
    *,
    node_name: str,
    advertise_address: str | None = None,
    extra_sans: Sequence[str] = (),
) -> tuple[list[CertSpec], list[str]]:
    """Every certificate of the layout in creation order (CAs before their leaves), plus the
    warnings for extra SANs that were dropped."""
    extra_dns, extra_ips, warnings = _split_sans(extra_sans, "apiserver")
    advertise = [advertise_address] if advertise_address else []
    etcd_dns = (node_name, "localhost")
    etcd_ips = (*advertise, LOOPBACK_V4, LOOPBACK_V6)
    specs = [
        CertSpec("ca", CLUSTER_NAME),
        CertSpec(
            "apiserver",
            "kube-apiserver",
            ca="ca",
            dns=(
                node_name,
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                f"kubernetes.default.svc.{DNS_DOMAIN}",
                "localhost",
                *extra_dns,
            ),
            ips=(APISERVER_SERVICE_IP, LOOPBACK_V4, *advertise, *extra_ips),
            server=True,
        ),
        CertSpec("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ca="ca", client=True),
        CertSpec("front-proxy-ca", "front-proxy-ca"),
        CertSpec("front-proxy-client", "front-proxy-client", ca="front-proxy-ca", client=True),
        CertSpec("etcd/ca", "etcd-ca"),
        CertSpec(
            "etcd/server", node_name, ca="etcd/ca", dns=etcd_dns, ips=etcd_ips, client=True, server=True
        ),
        CertSpec(
            "etcd/peer", node_name, ca="etcd/ca", dns=etcd_dns, ips=etcd_ips, client=True, server=True
        ),
        CertSpec("etcd/healthcheck-client", "kube-etcd-healthcheck-client", ca="etcd/ca", client=True),
        CertSpec("apiserver-etcd-client", "kube-apiserver-etcd-client", ca="etcd/ca", client=True),
    ]
    return specs, warnings


def _missing_sans(cert: x509.Certificate, spec: CertSpec) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    have_dns = set(san.get_values_for_type(x509.DNSName))
    have_ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    missing = [d for d in spec.dns if d not in have_dns]
    missing += [i for i in spec.ips if str(ipaddress.ip_address(i)) not in have_ips]
    return missing


def _is_ca_cert(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


class _Builder:
    """Carries the state of one init run; every method either reuses or creates one item."""

    def __init__(self, paths: PKIPaths, key_type: str, result: InitResult) -> None:
        self.paths = paths
        self.key_type = key_type
        self.result = result
        self.loaded: dict[str, tuple[x509.Certificate, PrivateKey]] = {}

    def _existing_pair(self, cert_path: Path, key_path: Path) -> bool:
        has_cert, has_key = cert_path.exists(), key_path.exists()
        if has_cert != has_key:
            present, absent = (cert_path, key_path) if has_cert else (key_path, cert_path)
            raise PKIError(
                f"found {present} but not {absent}: restore {absent} or remove {present} "
                "to have both generated again"
            )
        return has_cert

    def cert(self, spec: CertSpec) -> None:
        cert_path, key_path = self.paths.cert(spec.name), self.paths.key(spec.name)
        if self._existing_pair(cert_path, key_path):
            self._reuse(spec, cert_path, key_path)
        else:
            self._create(spec, cert_path, key_path)

    def _reuse(self, spec: CertSpec, cert_path: Path, key_path: Path) -> None:
        cert, key = load_pair(cert_path, key_path, trusted=True)
        if spec.ca is None:
            if not _is_ca_cert(cert):
                raise PKIError(f"the certificate {cert_path} is not a CA certificate")
            self.result.messages.append(f"[certs] Using existing {spec.name} certificate authority")
        else:
            ca_cert = self.loaded[spec.ca][0]
            if not is_signed_by(cert, ca_cert):
                raise PKIError(
                    f"the certificate {cert_path} is not signed by the CA {self.paths.cert(spec.ca)}"
                )
            missing = _missing_sans(cert, spec) if spec.server else []
            if missing:
                raise PKIError(
                    f"the certificate {cert_path} is not valid for {', '.join(missing)}; remove "
                    f"{cert_path} and {key_path} to have it issued again with these names"
                )
            self.result.messages.append(
                f"[certs] Using existing {spec.name} certificate and key on disk"
            )
        self.loaded[spec.name] = (cert, key)
        self.result.reused += [cert_path, key_path]

    def _create(self, spec: CertSpec, cert_path: Path, key_path: Path) -> None:
        key = new_key(self.key_type)
        if spec.ca is None:
            cert = self_signed_ca(spec.cn, key, CA_VALIDITY_DAYS)
        else:
            ca_cert, ca_key = self.loaded[spec.ca]
            cert = issue(
                ca_cert,
                ca_key,
                cn=spec.cn,
                orgs=spec.orgs,
                dns=spec.dns,
                ips=spec.ips,
                client=spec.client,
                server=spec.server,
                days=LEAF_VALIDITY_DAYS,
                key=key,
            )
        self.result.messages.append(f'[certs] Generating "{spec.name}" certificate and key')
        if spec.server:
            self.result.messages.append(_signed_for(spec.name, cert))
        # Key first: a crash in between leaves a lone key, which the next run reports.
        write_key(key_path, key)
        write_cert(cert_path, cert)
        self.loaded[spec.name] = (cert, key)
        self.result.created += [cert_path, key_path]

    def service_account_keys(self) -> None:
        key_path, pub_path = self.paths.sa_key, self.paths.sa_pub
        if key_path.exists():
            key = load_key(key_path, trusted=True)
            self.result.reused.append(key_path)
            if pub_path.exists():
                pub = parse_public_key_pem(pub_path.read_bytes(), source=str(pub_path))
                if not public_keys_equal(pub, key.public_key()):
                    raise PKIError(f"the public key {pub_path} does not match the private key {key_path}")
                self.result.reused.append(pub_path)
            else:
                write_public_key(pub_path, key.public_key())
                self.result.created.append(pub_path)
            self.result.messages.append('[certs] Using the existing "sa" key')
            return
        if pub_path.exists():
            raise PKIError(
                f"found {pub_path} but not {key_path}: restore {key_path} or remove {pub_path} "
                "to have both generated again"
            )
        # RSA whatever key_type says: see the module docstring.
        key = new_key("rsa")
        write_key(key_path, key)
        write_public_key(pub_path, key.public_key())
        self.result.created += [key_path, pub_path]
        self.result.messages.append('[certs] Generating "sa" key and public key')

    def kubeconfig(self, spec: KubeconfigSpec, server: str) -> None:
        path = self.paths.kubeconfig(spec.file)
        ca_cert, ca_key = self.loaded["ca"]
        if path.exists():
            self._check_kubeconfig(path, ca_cert, server)
            self.result.reused.append(path)
            self.result.messages.append(f'[kubeconfig] Using existing kubeconfig file: "{path}"')
            return
        key = new_key(self.key_type)
        cert = issue(ca_cert, ca_key, cn=spec.user, orgs=spec.orgs, client=True, key=key)
        write_kubeconfig(
            path,
            server=server,
            ca_pem=cert_pem(ca_cert),
            cluster=CLUSTER_NAME,
            user=spec.user,
            client_cert_pem=cert_pem(cert),
            client_key_pem=key_pem(key),
        )
        self.result.created.append(path)
        self.result.messages.append(f'[kubeconfig] Writing "{spec.file}" kubeconfig file')

    def _check_kubeconfig(self, path: Path, ca_cert: x509.Certificate, server: str) -> None:
        config = load_kubeconfig(path)
        ca_data = embedded_pem(config, "certificate-authority-data")
        if ca_data is None or _cert_or_none(ca_data) != ca_cert:
            raise PKIError(f'a kubeconfig file "{path}" exists already but has got the wrong CA cert')
        current = (current_cluster(config) or {}).get("server")
        if current != server:
            self.result.warnings.append(
                f'a kubeconfig file "{path}" exists already but has an unexpected API Server URL: '
                f"expected: {server}, got: {current}"
            )


def _cert_or_none(data: bytes) -> x509.Certificate | None:
    try:
        return parse_cert_pem(data)
    except PKIError:
        return None


def _signed_for(name: str, cert: x509.Certificate) -> str:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = " ".join(san.get_values_for_type(x509.DNSName))
    ips = " ".join(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return f"[certs] {name} serving cert is signed for DNS names [{dns}] and IPs [{ips}]"


def init_pki(
    data_dir: Path,
    *,
    extra_sans: Sequence[str] = (),
    advertise_address: str | None = None,
    key_type: str = "ecdsa",
    secure_port: int = DEFAULT_SECURE_PORT,
    node_name: str | None = None,
) -> InitResult:
    """Create (or complete) the PKI layout and kubeconfigs under `data_dir`."""
    if key_type not in KEY_TYPES:
        raise PKIError(f"unsupported key type {key_type!r}: must be one of {', '.join(KEY_TYPES)}")
    if advertise_address is not None:
        try:
            advertise_address = str(ipaddress.ip_address(advertise_address))
        except ValueError:
            raise PKIError(
                f"error parsing LocalAPIEndpoint AdvertiseAddress {advertise_address}: "
                "is not a valid textual representation of an IP address"
            ) from None
    if not 1 <= secure_port <= 65535:
        raise PKIError(f"secure port {secure_port} is not between 1 and 65535")
    paths = PKIPaths(Path(data_dir))
    specs, warnings = cert_specs(
        node_name=node_name or node_name_from_host(),
        advertise_address=advertise_address,
        extra_sans=extra_sans,
    )
    server = apiserver_url(advertise_address, secure_port)
    result = InitResult(paths=paths, server=server, warnings=warnings)

    # Secrets live below data_dir, so it is private; pki/ and pki/etcd/ get kubeadm's 0755.
    paths.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (paths.pki_dir / "etcd").mkdir(mode=0o755, parents=True, exist_ok=True)

    builder = _Builder(paths, key_type, result)
    for spec in specs:
        builder.cert(spec)
    builder.service_account_keys()
    for kc in KUBECONFIG_SPECS:
        builder.kubeconfig(kc, server)
    return result
