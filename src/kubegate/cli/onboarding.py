"""`kubegate kubeconfig user NAME`: a new user's kubeconfig in one command, through the Certificates
API exactly as the manual flow does it: a fresh key and PKCS#10 request (CN=NAME, O=each --group),
a CertificateSigningRequest for kubernetes.io/kube-apiserver-client, an approval when --approve
is given (and the caller may approve), the issued certificate, and a kubeconfig embedding it.

The private key never leaves this process except into the kubeconfig written. A CSR this command
created is deleted again when the flow does not end with a certificate, so nothing is left
half-done.
"""
from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from kubegate.cli.csr_flow import CSRClient, CSRFlowError
from kubegate.pki import certs
from kubegate.pki.certs import PKIError
from kubegate.pki.kubeconfig import build_kubeconfig, current_cluster, dump_kubeconfig, load_kubeconfig
from kubegate.pki.signer import KUBE_APISERVER_CLIENT
from kubegate.protobuf.codec import ProtobufError, parse_duration

APPROVE_REASON = "KubegateApprove"
APPROVE_MESSAGE = "This CSR was approved by kubegate kubeconfig user."


class OnboardingError(CSRFlowError):
    pass


def certificate_request(name: str, groups: list[str], key: certs.PrivateKey) -> bytes:
    """The PEM PKCS#10 request: CN is the user name, each group an O (what x509 authn reads)."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, name))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def csr_object(request_pem: bytes, expiration_seconds: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"request": base64.b64encode(request_pem).decode(), "signerName": KUBE_APISERVER_CLIENT,
                            "usages": ["client auth"]}
    if expiration_seconds is not None:
        spec["expirationSeconds"] = expiration_seconds
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "kubegate-user-"}, "spec": spec}


class _API(CSRClient):
    """The calls the flow makes with the credentials of a kubeconfig file."""

    def __init__(self, kubeconfig: str) -> None:
        from kubernetes import config
        try:
            api = config.new_client_from_config(config_file=kubeconfig)
        except (config.ConfigException, OSError, TypeError, ValueError) as e:
            raise OnboardingError(f"cannot load kubeconfig {kubeconfig}: {e}") from None
        super().__init__(api)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.must(self.csrs.create_certificate_signing_request, obj)

    def approve(self, csr: dict[str, Any]) -> dict[str, Any]:
        csr.setdefault("status", {}).setdefault("conditions", []).append(
            {"type": "Approved", "status": "True", "reason": APPROVE_REASON, "message": APPROVE_MESSAGE})
        return self.must(self.csrs.replace_certificate_signing_request_approval, csr["metadata"]["name"], csr)

    def delete(self, name: str) -> None:
        self.must(self.csrs.delete_certificate_signing_request, name)


def onboard(api: _API, name: str, groups: list[str], expiration_seconds: int | None, approve: bool,
            timeout: float, key_type: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `name`, or CSRFlowError with the CSR removed again."""
    key = certs.new_key(key_type)
    csr = api.create(csr_object(certificate_request(name, groups, key), expiration_seconds))
    csr_name = csr["metadata"]["name"]
    try:
        if approve:
            api.approve(csr)
        else:
            print(f"waiting for approval of certificate signing request {csr_name} "
                  f"(kubectl certificate approve {csr_name})", file=sys.stderr)
        cert = api.wait_for_certificate(csr_name, timeout)
    except CSRFlowError:
        try:
            api.delete(csr_name)
        except CSRFlowError:
            pass  # the original error is the one to report
        raise
    return cert, certs.key_pem(key)


def cmd_user(a: argparse.Namespace) -> int:
    kubeconfig = a.kubeconfig or str(Path(a.data_dir) / "admin.conf")
    try:
        expiration = None
        if a.expiration:
            try:
                expiration = int(parse_duration(a.expiration) // 10**9)
            except ProtobufError as e:
                raise OnboardingError(f"invalid --expiration {a.expiration!r}: {e}") from None
        source = load_kubeconfig(Path(kubeconfig))
        cluster = current_cluster(source) or {}
        ca_data = cluster.get("certificate-authority-data")
        if not cluster.get("server") or not isinstance(ca_data, str):
            raise OnboardingError(f"kubeconfig {kubeconfig} names no server with embedded certificate-authority-data")
        if a.out and Path(a.out).exists():
            raise OnboardingError(f"{a.out} already exists")
        cert, key = onboard(_API(kubeconfig), a.name, a.group, expiration, a.approve, a.timeout, a.key_type)
        cluster_name = next((c.get("context", {}).get("cluster") for c in source.get("contexts") or []
                             if c.get("name") == source.get("current-context")), None) or "kubernetes"
        config = build_kubeconfig(server=cluster["server"], ca_pem=base64.b64decode(ca_data), cluster=cluster_name,
                                  user=a.name, client_cert_pem=cert, client_key_pem=key)
        if a.out:
            certs.write_private_file(Path(a.out), dump_kubeconfig(config))
            print(f"kubeconfig for {a.name} written to {a.out}", file=sys.stderr)
        else:
            sys.stdout.write(dump_kubeconfig(config).decode())
    except (CSRFlowError, PKIError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("kubeconfig", help="write kubeconfigs for users")
    kinds = p.add_subparsers(dest="kubeconfig_command", required=True)
    u = kinds.add_parser("user", help="a kubeconfig for a new user, certified through the Certificates API")
    u.add_argument("name", help="the user name (the certificate's CN)")
    u.add_argument("--group", action="append", default=[], help="a group of the user (an O); repeatable")
    u.add_argument("--expiration", default="", help="requested validity, a Go duration (at least 10m; "
                                                    "default the signer's --cluster-signing-duration)")
    u.add_argument("--approve", action="store_true",
                   help="approve the request too (needs approve on signers kubernetes.io/kube-apiserver-client)")
    u.add_argument("--out", default="", help="file to write (mode 0600; default standard output)")
    u.add_argument("--data-dir", type=Path, default=Path("."), help="the data directory (its admin.conf is used)")
    u.add_argument("--kubeconfig", default="", help="credentials that create the request (default DIR/admin.conf)")
    u.add_argument("--key-type", choices=certs.KEY_TYPES, default="ecdsa", help="the new key's type")
    u.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the certificate")
    u.set_defaults(func=cmd_user)
