"""`kubegate node join`: a node's TLS bootstrap as kubeadm join and the kubelet do it.

With a bootstrap token (as `system:bootstrap:<id>` in system:bootstrappers:kubeadm:default-node-token)
it submits a kubernetes.io/kube-apiserver-client-kubelet CSR for `CN=system:node:NAME,
O=system:nodes` under kubelet's deterministic name, which the csrapproving controller approves
through kubeadm's kubeadm:node-autoapprove-bootstrap binding. With the issued certificate it writes
DIR/kubelet.conf and from then on acts only as the node: it registers the Node, keeps its Lease in
kube-node-lease renewed, and requests a kubelet-serving certificate, which (as upstream) waits for
a human's `kubectl certificate approve`. The token never leaves this process.

Re-running with an existing DIR/kubelet.conf whose certificate is still valid skips the bootstrap,
as the kubelet does; the pending serving key is kept in DIR/pki so a later run picks up the
certificate once it is approved.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kubegate.authn import bootstrap_token as bt
from kubegate.authz.node import NODE_LEASE_NAMESPACE, NODE_USER_PREFIX, NODES_GROUP
from kubegate.cli.csr_flow import CSRClient, CSRFlowError, issued_certificate
from kubegate.pki import certs
from kubegate.pki.certs import PKIError
from kubegate.pki.kubeconfig import build_kubeconfig, dump_kubeconfig
from kubegate.pki.signer import KUBE_APISERVER_CLIENT_KUBELET, KUBELET_SERVING

KUBECONFIG = "kubelet.conf"
SERVING_CERT = "pki/kubelet-server.crt"
SERVING_KEY = "pki/kubelet-server.key"
LEASE_DURATION_SECONDS = 40  # the kubelet's nodeLeaseDurationSeconds default
RENEW_FRACTION = 0.25  # the kubelet renews its lease at a quarter of the duration


class JoinError(CSRFlowError):
    pass


def node_user(node: str) -> str:
    return NODE_USER_PREFIX + node


def _subject(node: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODES_GROUP),
                      x509.NameAttribute(NameOID.COMMON_NAME, node_user(node))])


def usages(key: certs.PrivateKey, eku: str) -> list[str]:
    """The kubelet's usages: key encipherment only for RSA keys."""
    return ["digital signature", *(["key encipherment"] if isinstance(key, rsa.RSAPrivateKey) else []), eku]


def csr_name(prefix: str, key: certs.PrivateKey, node: str, key_usages: Sequence[str]) -> str:
    """kubelet's digestedName: SHA-512/256 over the public key, CN, O and usages, so a retry with
    the same key finds its own request instead of making another."""
    digest = hashes.Hash(hashes.SHA512_256())
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for part in (spki, node_user(node).encode(), NODES_GROUP.encode(), *(u.encode() for u in key_usages)):
        digest.update(base64.urlsafe_b64encode(part).rstrip(b"=") + b"|")
    return prefix + base64.urlsafe_b64encode(digest.finalize()).rstrip(b"=").decode()


def csr_object(name: str, key: certs.PrivateKey, node: str, signer_name: str, key_usages: Sequence[str],
               sans: Sequence[x509.GeneralName] = ()) -> dict[str, Any]:
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(node))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer_name,
                     "usages": list(key_usages)}}


def serving_sans(node: str, node_ips: Sequence[str]) -> list[x509.GeneralName]:
    """The kubelet's serving SANs: its hostname and addresses."""
    return [x509.DNSName(node), *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in node_ips)]


def node_object(node: str) -> dict[str, Any]:
    """The Node as the kubelet first registers it (its well-known labels only)."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                                                  "beta.kubernetes.io/arch": "amd64"}}}


def micro_time(t: datetime.datetime) -> str:
    """metav1.MicroTime's RFC 3339 form with microseconds."""
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_object(node: str, node_uid: str, now: datetime.datetime, duration: int) -> dict[str, Any]:
    """The kubelet's node Lease, owned by its Node so it goes when the Node does."""
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": node, "namespace": NODE_LEASE_NAMESPACE,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}]},
            "spec": {"holderIdentity": node, "leaseDurationSeconds": duration,
                     "renewTime": micro_time(now)}}


def usable_certificate(cert_pem: bytes, node: str, now: datetime.datetime) -> bool:
    """Whether a stored client certificate is still this node's and unexpired."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return False
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return cns == [node_user(node)] and cert.not_valid_before_utc <= now < cert.not_valid_after_utc


class _Client(CSRClient):
    """The few calls a joining node makes."""

    def __init__(self, kubeconfig: dict[str, Any], unauthorized: str) -> None:
        from kubernetes import client, config
        try:
            api = config.new_client_from_config_dict(kubeconfig)
        except (config.ConfigException, OSError, TypeError, ValueError) as e:
            raise JoinError(f"invalid server or CA certificate: {e}") from None
        super().__init__(api, unauthorized)
        self.core = client.CoreV1Api(api)
        self.leases = client.CoordinationV1Api(api)

    def submit(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The request named in `obj`: the existing one of that name (same key, same request), else a new one."""
        existing = self.get_csr(obj["metadata"]["name"])
        if existing is not None:
            return existing
        return self.must(self.csrs.create_certificate_signing_request, obj)


def bootstrap_kubeconfig(server: str, ca_pem: bytes, token: str) -> dict[str, Any]:
    """kubeadm's bootstrap-kubelet.conf, kept in memory only."""
    return {"apiVersion": "v1", "kind": "Config", "current-context": "tls-bootstrap-token-user@kubernetes",
            "clusters": [{"name": "kubernetes", "cluster": {
                "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
            "contexts": [{"name": "tls-bootstrap-token-user@kubernetes",
                          "context": {"cluster": "kubernetes", "user": "tls-bootstrap-token-user"}}],
            "users": [{"name": "tls-bootstrap-token-user", "user": {"token": token}}]}


def bootstrap(a: argparse.Namespace, ca_pem: bytes) -> dict[str, Any]:
    """The node's kubeconfig, certified through the Certificates API under the bootstrap token."""
    if bt.parse_token(a.bootstrap_token) is None:
        raise JoinError("--bootstrap-token must be of the form ID.SECRET ([a-z0-9]{6}.[a-z0-9]{16})")
    api = _Client(bootstrap_kubeconfig(a.server, ca_pem, a.bootstrap_token),
                  "the server does not accept the bootstrap token (wrong, expired, or not for authentication)")
    key = certs.new_key(a.key_type)
    key_usages = usages(key, "client auth")
    name = csr_name("node-csr-", key, a.node_name, key_usages)
    api.submit(csr_object(name, key, a.node_name, KUBE_APISERVER_CLIENT_KUBELET, key_usages))
    print(f"certificate signing request {name} submitted, waiting for approval", file=sys.stderr)
    cert = api.wait_for_certificate(name, a.timeout, f" (is it approved? kubectl get csr {name})")
    return build_kubeconfig(server=a.server, ca_pem=ca_pem, cluster="kubernetes", user=node_user(a.node_name),
                            client_cert_pem=cert, client_key_pem=certs.key_pem(key))


def register(api: _Client, node: str) -> dict[str, Any]:
    """Creates the Node, or takes the one registered before (as the kubelet does)."""
    created = api.call(api.core.create_node, node_object(node), tolerate=(409,))
    if created is not None:
        return created
    return api.must(api.core.read_node, node)


def renew_lease(api: _Client, node: str, node_uid: str, duration: int) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    lease = api.call(api.leases.read_namespaced_lease, node, NODE_LEASE_NAMESPACE, tolerate=(404,))
    if lease is None:
        api.call(api.leases.create_namespaced_lease, NODE_LEASE_NAMESPACE, lease_object(node, node_uid, now, duration))
        return
    lease.setdefault("spec", {}).update(holderIdentity=node, leaseDurationSeconds=duration,
                                        renewTime=micro_time(now))
    api.call(api.leases.replace_namespaced_lease, node, NODE_LEASE_NAMESPACE, lease)


class ServingCertificate:
    """The kubelet-serving certificate: requested once with a key kept in DIR/pki, written next to
    it once a human has approved the request and the signer has issued it. A denied or failed
    request drops the key (the next join starts afresh); a request removed meanwhile (the csrcleaner
    drops pending ones after a day) is made again."""

    def __init__(self, api: _Client, directory: Path, node: str, node_ips: Sequence[str], key_type: str) -> None:
        self.api, self.node, self.node_ips = api, node, node_ips
        self.cert_path, self.key_path = directory / SERVING_CERT, directory / SERVING_KEY
        self.key_type = key_type
        self.done = self.cert_path.exists()  # issued, or given up on for this run
        self.name = ""

    def _key(self) -> certs.PrivateKey:
        if self.key_path.exists():
            return certs.load_key(self.key_path)
        key = certs.new_key(self.key_type)
        certs.write_key(self.key_path, key)
        return key

    def request(self) -> None:
        if self.done:
            return
        key = self._key()
        key_usages = usages(key, "server auth")
        self.name = csr_name("csr-", key, self.node, key_usages)
        self.api.submit(csr_object(self.name, key, self.node, KUBELET_SERVING, key_usages,
                                   serving_sans(self.node, self.node_ips)))

    def check(self) -> bool:
        """Writes the certificate once issued; True when there is one."""
        if self.done:
            return True
        csr = self.api.get_csr(self.name)
        if csr is None:
            self.request()
            return False
        try:
            cert = issued_certificate(csr)
        except CSRFlowError as e:
            print(f"warning: no kubelet-serving certificate: {e}", file=sys.stderr)
            self.key_path.unlink(missing_ok=True)
            self.done = True
            return False
        if cert is None:
            return False
        certs.write_public_file(self.cert_path, cert, overwrite=True)
        self.done = True
        print(f"kubelet-serving certificate written to {self.cert_path}", file=sys.stderr)
        return True


def join(a: argparse.Namespace, stop: threading.Event) -> None:
    try:
        ca_pem = Path(a.ca_cert).read_bytes()
    except OSError as e:
        raise JoinError(f"cannot read --ca-cert: {e}") from None
    certs.parse_cert_pem(ca_pem, source=str(a.ca_cert))
    if a.lease_duration_seconds <= 0:
        raise JoinError("--lease-duration-seconds must be positive")
    for ip in a.node_ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise JoinError(f"invalid --node-ip {ip!r}") from None
    directory = Path(a.dir)
    kubeconfig_path = directory / KUBECONFIG
    kubeconfig = _existing_kubeconfig(kubeconfig_path, a, ca_pem)
    if kubeconfig is None:
        kubeconfig = bootstrap(a, ca_pem)
        directory.mkdir(parents=True, exist_ok=True)
        certs.write_private_file(kubeconfig_path, dump_kubeconfig(kubeconfig), overwrite=True)
        print(f"node {a.node_name} certified as {node_user(a.node_name)}; kubeconfig written to {kubeconfig_path}",
              file=sys.stderr)
    else:
        print(f"using the node credentials in {kubeconfig_path}", file=sys.stderr)
    api = _Client(kubeconfig, f"the server does not accept the certificate of node {a.node_name} (revoked?)")
    node = register(api, a.node_name)
    uid = str(node["metadata"].get("uid") or "")
    renew_lease(api, a.node_name, uid, a.lease_duration_seconds)
    print(f"node {a.node_name} registered; lease {NODE_LEASE_NAMESPACE}/{a.node_name} renewed", file=sys.stderr)
    serving = ServingCertificate(api, directory, a.node_name, a.node_ip, a.key_type)
    serving.request()
    if not serving.check():
        print(f"kubelet-serving certificate requested: approve it with "
              f"`kubectl certificate approve {serving.name}`", file=sys.stderr)
    if a.once:
        return
    while not stop.wait(a.lease_duration_seconds * RENEW_FRACTION):
        try:
            renew_lease(api, a.node_name, uid, a.lease_duration_seconds)
            serving.check()
        except CSRFlowError as e:  # as the kubelet, keep trying while the server is away
            print(f"warning: {e}", file=sys.stderr)


def _existing_kubeconfig(path: Path, a: argparse.Namespace, ca_pem: bytes) -> dict[str, Any] | None:
    """The kubeconfig from an earlier join when its certificate is still this node's and valid."""
    import yaml
    try:
        doc = yaml.safe_load(path.read_bytes())
        user = doc["users"][0]["user"]
        cert_pem, key_pem = (base64.b64decode(user[k]) for k in ("client-certificate-data", "client-key-data"))
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError, ValueError):
        return None
    if not usable_certificate(cert_pem, a.node_name, datetime.datetime.now(datetime.timezone.utc)):
        return None
    # The server and CA given now are the ones to trust.
    return build_kubeconfig(server=a.server, ca_pem=ca_pem, cluster="kubernetes", user=node_user(a.node_name),
                            client_cert_pem=cert_pem, client_key_pem=key_pem)


def cmd_join(a: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        join(a, stop)
    except (CSRFlowError, PKIError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("node", help="join a node through TLS bootstrap (as kubeadm join and the kubelet)")
    cmds = p.add_subparsers(dest="node_command", required=True)
    j = cmds.add_parser("join", help="certify, register and keep alive a node with a bootstrap token")
    j.add_argument("--server", required=True, help="the API server URL, e.g. https://10.0.0.1:6443")
    j.add_argument("--bootstrap-token", required=True, help="ID.SECRET from `kubegate token create`")
    j.add_argument("--node-name", required=True, help="the node's name (its certificate is system:node:NAME)")
    j.add_argument("--ca-cert", required=True, help="the cluster CA certificate the server must present")
    j.add_argument("--dir", default=".", help="where kubelet.conf and pki/kubelet-server.* are written")
    j.add_argument("--node-ip", action="append", default=[], help="an IP SAN of the serving certificate; repeatable")
    j.add_argument("--once", action="store_true", help="join, renew the lease once and exit instead of running on")
    j.add_argument("--lease-duration-seconds", type=int, default=LEASE_DURATION_SECONDS,
                   help="the Lease's duration (the kubelet's nodeLeaseDurationSeconds); renewed every quarter of it")
    j.add_argument("--key-type", choices=certs.KEY_TYPES, default="ecdsa", help="the new keys' type")
    j.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the client certificate")
    j.set_defaults(func=cmd_join)
