"""`kubegate certs check-expiration|renew|revoke|crl`: kubeadm's certificate commands over the data
directory's PKI, plus revocation (kubegate.pki.revocation) through the API of a running server."""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kubegate.api.objects import rfc3339
from kubegate.pki import renewal, revocation
from kubegate.pki.certs import PKIError, is_signed_by, load_cert, load_pair, parse_cert_pem, write_public_file
from kubegate.pki.layout import PKIPaths


class CLIError(Exception):
    pass


def cmd_check_expiration(a: argparse.Namespace) -> int:
    sys.stdout.write(renewal.check_expiration(PKIPaths(a.data_dir), renewal.utcnow()))
    return 0


def _renew_one(paths: PKIPaths, r: renewal.Renewable) -> None:
    # kubeadm's renewCert messages.
    if not renewal.exists(paths, r):
        print(f"MISSING! {r.long_name}")
        return
    if not renewal.renew(paths, r.name):
        print(f"Detected external {r.ca.file}, {r.long_name} can't be renewed")
        return
    print(f"{r.long_name} renewed")


def cmd_renew(a: argparse.Namespace) -> int:
    paths = PKIPaths(a.data_dir)
    if a.name == "all":
        for r in renewal.CERTIFICATES:
            _renew_one(paths, r)
        print("\nDone renewing certificates. A running kubegate serves and uses the new certificates "
              "without a restart.")
        return 0
    r = renewal.BY_NAME.get(a.name)
    if r is None:
        raise CLIError(f"unknown certificate {a.name!r}: want all or one of "
                       f"{', '.join(c.name for c in renewal.CERTIFICATES)}")
    _renew_one(paths, r)
    return 0


# --- revocation -------------------------------------------------------------------------------


def _api(a: argparse.Namespace) -> Any:
    from kubernetes import config

    kubeconfig = a.kubeconfig or str(a.data_dir / "admin.conf")
    try:
        return config.new_client_from_config(config_file=kubeconfig)
    except (config.ConfigException, OSError, TypeError, ValueError) as e:
        raise CLIError(f"cannot load kubeconfig {kubeconfig}: {e}") from None


def _api_error(e: Exception) -> CLIError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(e, ApiException):
        return CLIError(f"the server refused the request: {e.reason} ({e.status})")
    return CLIError(f"cannot reach the server: {e}")


def _issued_by_cluster(paths: PKIPaths, api: Any) -> list[x509.Certificate]:
    """Every client certificate this cluster is known to have issued: the layout's files and
    kubeconfigs, and the certificates of CertificateSigningRequests."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    certs = [renewal.read(paths, r) for r in renewal.CERTIFICATES if renewal.exists(paths, r)]
    try:
        csrs = client.CertificatesV1Api(api).list_certificate_signing_request(_preload_content=False)
    except ApiException as e:
        if e.status == 404:  # no certificates API served: nothing issued through it
            return certs
        raise _api_error(e) from None
    for item in json.loads(csrs.data).get("items") or []:
        issued = (item.get("status") or {}).get("certificate")
        if issued:
            try:
                certs += x509.load_pem_x509_certificates(base64.b64decode(issued))
            except ValueError:
                continue
    return certs


def _target_serial(a: argparse.Namespace, paths: PKIPaths, api: Any) -> tuple[int, str]:
    """The serial to revoke and how to name it: from --cert (which must come from the cluster CA)
    or from --serial (which must belong to a certificate the cluster issued)."""
    ca = load_cert(paths.cert("ca"))
    if a.cert:
        try:
            cert = parse_cert_pem(Path(a.cert).read_bytes(), source=a.cert)
        except OSError as e:
            raise CLIError(f"cannot read {a.cert}: {e.strerror}") from None
        if not is_signed_by(cert, ca):
            raise CLIError(f"{a.cert} was not issued by the cluster CA {paths.cert('ca')}: "
                           "the server does not accept it anyway")
        return cert.serial_number, cert.subject.rfc4514_string()
    serial = revocation.parse_serial(a.serial)
    cert = revocation.find_serial(serial, (c for c in _issued_by_cluster(paths, api) if is_signed_by(c, ca)))
    if cert is None:
        raise CLIError(f"no certificate with serial {revocation.serial_key(serial)} was issued by the cluster CA: "
                       f"searched {paths.pki_dir}, the kubeconfigs in {paths.data_dir} and the "
                       "CertificateSigningRequests")
    return serial, cert.subject.rfc4514_string()


def cmd_revoke(a: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    paths = PKIPaths(a.data_dir)
    api = _api(a)
    core = client.CoreV1Api(api)
    try:
        serial, subject = _target_serial(a, paths, api)
        key = revocation.serial_key(serial)
        while True:
            try:
                cm = core.read_namespaced_config_map(revocation.CONFIGMAP, revocation.NAMESPACE)
            except ApiException as e:
                if e.status != 404:
                    raise
                cm = None
            data = dict((cm.data if cm is not None else None) or {})
            if key in data:
                print(f"certificate {key} ({subject}) was already revoked at {data[key]}")
                return 0
            data[key] = rfc3339(renewal.utcnow())
            try:
                if cm is None:
                    core.create_namespaced_config_map(revocation.NAMESPACE, client.V1ConfigMap(
                        metadata=client.V1ObjectMeta(name=revocation.CONFIGMAP), data=data))
                else:
                    cm.data = data  # the read resourceVersion makes a concurrent revoke conflict
                    core.replace_namespaced_config_map(revocation.CONFIGMAP, revocation.NAMESPACE, cm)
                break
            except ApiException as e:
                if e.status != 409:  # lost a race with another revoke: read again
                    raise
    except (ApiException, HTTPError) as e:
        raise _api_error(e) from None
    print(f"certificate {key} ({subject}) revoked")
    return 0


def cmd_crl(a: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    paths = PKIPaths(a.data_dir)
    ca_cert, ca_key = load_pair(paths.cert("ca"), paths.key("ca"), trusted=True)
    try:
        cm = client.CoreV1Api(_api(a)).read_namespaced_config_map(revocation.CONFIGMAP, revocation.NAMESPACE)
        doc: dict[str, Any] | None = {"data": cm.data}
    except ApiException as e:
        if e.status != 404:
            raise _api_error(e) from None
        doc = None
    except HTTPError as e:
        raise _api_error(e) from None
    revoked = revocation.revoked_serials(doc)
    crl = revocation.build_crl(ca_cert, ca_key, revoked, renewal.utcnow())
    out = Path(a.out) if a.out else paths.pki_dir / "ca.crl"
    write_public_file(out, crl.public_bytes(Encoding.PEM), overwrite=True)
    print(f"wrote {out}: {len(revoked)} revoked certificate(s)")
    return 0


def _run(fn: Any) -> Any:
    def run(a: argparse.Namespace) -> int:
        try:
            return int(fn(a))
        except (CLIError, PKIError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return run


def add_commands(sub: Any) -> None:
    p = sub.add_parser("certs", help="check, renew and revoke the cluster's certificates")
    certs = p.add_subparsers(dest="certs_command", required=True)

    def data_dir(q: argparse.ArgumentParser) -> None:
        q.add_argument("--data-dir", required=True, type=Path, help="the data directory holding pki/")

    q = certs.add_parser("check-expiration", help="expiry of every certificate and CA (kubeadm's tables)")
    data_dir(q)
    q.set_defaults(func=_run(cmd_check_expiration))
    q = certs.add_parser("renew", help="re-issue a certificate from its CA (same subject, SANs and usages)")
    q.add_argument("name", metavar="NAME|all",
                   help=f"one of {', '.join(c.name for c in renewal.CERTIFICATES)}, or all")
    data_dir(q)
    q.set_defaults(func=_run(cmd_renew))
    q = certs.add_parser("revoke", help="revoke a client certificate: it gets 401 from then on")
    target = q.add_mutually_exclusive_group(required=True)
    target.add_argument("--cert", help="PEM file of the certificate to revoke")
    target.add_argument("--serial", help="serial number in hexadecimal (as openssl x509 -serial prints it)")
    data_dir(q)
    q.add_argument("--kubeconfig", help="credentials for the server (default DIR/admin.conf)")
    q.set_defaults(func=_run(cmd_revoke))
    q = certs.add_parser("crl", help="write a CRL of the revoked certificates, signed by the cluster CA")
    data_dir(q)
    q.add_argument("--out", help="where to write the PEM CRL (default DIR/pki/ca.crl)")
    q.add_argument("--kubeconfig", help="credentials for the server (default DIR/admin.conf)")
    q.set_defaults(func=_run(cmd_crl))
