"""The built-in signers (pki/signer.py) and the decisions of the signing and approving
controllers, against upstream's rules and the golden issued certificate."""
from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubegate.controllers import csr_approving, csr_signing
from kubegate.pki import certs, signer
from tests.fixtures import GOLDENS

NOW = datetime.datetime(2026, 11, 23, 11, 17, 55, tzinfo=datetime.timezone.utc)
YEAR = signer.DEFAULT_DURATION


def make_csr(cn: str, orgs: tuple[str, ...] = (), dns: tuple[str, ...] = (), ips: tuple[str, ...] = (),
             emails: tuple[str, ...] = (), key: Any = None) -> x509.CertificateSigningRequest:
    key = key or ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)
                                                             for o in orgs]
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + \
        [x509.IPAddress(ipaddress.ip_address(i)) for i in ips] + [x509.RFC822Name(e) for e in emails]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(key, hashes.SHA256())


def b64(csr: x509.CertificateSigningRequest) -> str:
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return certs.self_signed_ca("kubernetes", key, now=NOW - datetime.timedelta(days=1)), key


def csr_obj(request: x509.CertificateSigningRequest, signer_name: str, usages: list[str],
            conditions: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "c", "uid": "u1"},
            "spec": {"request": b64(request), "signerName": signer_name, "usages": usages, **spec},
            "status": {"conditions": conditions or []}}


APPROVED = [{"type": "Approved", "status": "True", "reason": "KubectlApprove"}]
NODE = ("system:nodes",)


@pytest.mark.parametrize("usages,err", [
    (["client auth"], None),
    (["digital signature", "key encipherment", "client auth"], None),
    (["server auth"], "invalid usage for client certificate: server auth"),
    (["digital signature"], "missing required usage for client certificate: client auth"),
])
def test_apiserver_client_usages(usages: list[str], err: str | None) -> None:
    assert signer.apiserver_client_error(usages) == err


def test_golden_failed_condition_text() -> None:
    g = json.loads((GOLDENS / "certificates" / "csr-server-auth-usage-failed.json").read_text())
    failed = g["response"]["body"]["status"]["conditions"][1]
    assert signer.apiserver_client_error(g["response"]["body"]["spec"]["usages"]) == failed["message"]


@pytest.mark.parametrize("csr,usages,err", [
    (make_csr("system:node:n1", NODE), ["digital signature", "client auth"], None),
    (make_csr("system:node:n1", NODE), ["key encipherment", "digital signature", "client auth"], None),
    (make_csr("system:node:n1", ("system:nodes", "x")), ["client auth"], "subject organization is not system:nodes"),
    (make_csr("system:node:n1", NODE, dns=("n1",)), ["client auth"], "DNS subjectAltNames are not allowed"),
    (make_csr("system:node:n1", NODE, ips=("10.0.0.1",)), ["client auth"], "IP subjectAltNames are not allowed"),
    (make_csr("alice", NODE), ["digital signature", "client auth"],
     "subject common name does not begin with system:node:"),
    (make_csr("system:node:n1", NODE), ["client auth"],
     "usages did not match [client auth digital signature key encipherment]"),
])
def test_kubelet_client_rules(csr: x509.CertificateSigningRequest, usages: list[str], err: str | None) -> None:
    assert signer.kubelet_client_error(csr, usages) == err


@pytest.mark.parametrize("csr,usages,err", [
    (make_csr("system:node:n1", NODE, dns=("n1",)), ["digital signature", "server auth"], None),
    (make_csr("system:node:n1", NODE, ips=("10.0.0.1",)), ["digital signature", "key encipherment", "server auth"],
     None),
    (make_csr("system:node:n1", NODE), ["digital signature", "server auth"], "DNS or IP subjectAltName is required"),
    (make_csr("system:node:n1", NODE, dns=("n1",), emails=("a@b.c",)), ["digital signature", "server auth"],
     "Email subjectAltNames are not allowed"),
    (make_csr("golden", NODE, dns=("n1",)), ["digital signature", "server auth"],
     "subject common name does not begin with system:node:"),
    (make_csr("system:node:n1", NODE, dns=("n1",)), ["client auth"],
     "usages did not match [digital signature key encipherment server auth]"),
])
def test_kubelet_serving_rules(csr: x509.CertificateSigningRequest, usages: list[str], err: str | None) -> None:
    assert signer.kubelet_serving_error(csr, usages) == err


def test_duration_is_clamped() -> None:
    assert signer.duration(None, YEAR) == YEAR
    assert signer.duration(86400, YEAR) == datetime.timedelta(days=1)
    assert signer.duration(600, YEAR) == datetime.timedelta(minutes=10)
    assert signer.duration(10**9, YEAR) == YEAR
    assert signer.duration(3600 * 24 * 30, datetime.timedelta(days=7)) == datetime.timedelta(days=7)


def test_signed_certificate_matches_the_golden_shape(ca: tuple[x509.Certificate, Any], tmp_path: Path) -> None:
    request = make_csr("golden-user", ("golden-team", "auditors"))
    cert = signer.sign(request, ["client auth"], datetime.timedelta(seconds=86400), ca[0], ca[1], NOW)
    golden = json.loads((GOLDENS / "certificates" / "csr-signed.json").read_text())["decoded_certificate"]
    assert cert.subject.rfc4514_string() == golden["subject"]
    assert cert.not_valid_before_utc.isoformat() == "2026-11-23T11:12:55+00:00"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() == golden["validity_seconds"]
    names = [type(e.value).__name__ for e in cert.extensions]
    assert names == ["ExtendedKeyUsage", "BasicConstraints", "AuthorityKeyIdentifier"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).critical
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert 0 < cert.serial_number < 2**128
    assert cert.public_key().public_numbers() == request.public_key().public_numbers()
    (tmp_path / "ca.crt").write_bytes(certs.cert_pem(ca[0]))
    (tmp_path / "user.crt").write_bytes(certs.cert_pem(cert))
    out = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "user.crt")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_serving_certificate_carries_key_usage_and_sans(ca: tuple[x509.Certificate, Any]) -> None:
    request = make_csr("system:node:n1", NODE, dns=("n1.local",), ips=("10.0.0.7",))
    cert = signer.sign(request, ["digital signature", "key encipherment", "server auth"],
                       datetime.timedelta(hours=1), ca[0], ca[1], NOW)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment and not ku.value.key_cert_sign
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["n1.local"]
    assert cert.not_valid_before_utc == NOW  # under 8h: no backdate
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(hours=1)


def test_lifetime_never_outlives_the_ca(ca: tuple[x509.Certificate, Any]) -> None:
    cert = signer.sign(make_csr("a"), ["client auth"], datetime.timedelta(days=36500), ca[0], ca[1], NOW)
    assert cert.not_valid_after_utc == ca[0].not_valid_after_utc


def test_outcome_signs_only_approved_known_and_valid(ca: tuple[x509.Certificate, Any]) -> None:
    req = make_csr("bob", ("dev",))
    pending = csr_obj(req, signer.KUBE_APISERVER_CLIENT, ["client auth"])
    assert csr_signing.outcome(pending, ca[0], ca[1], YEAR, NOW) is None
    denied = csr_obj(req, signer.KUBE_APISERVER_CLIENT, ["client auth"],
                     [{"type": "Denied", "status": "True"}])
    assert csr_signing.outcome(denied, ca[0], ca[1], YEAR, NOW) is None
    other = csr_obj(req, "example.com/custom", ["client auth"], APPROVED)
    assert csr_signing.outcome(other, ca[0], ca[1], YEAR, NOW) is None
    legacy = csr_obj(req, signer.LEGACY_UNKNOWN, ["client auth"], APPROVED)
    assert csr_signing.outcome(legacy, ca[0], ca[1], YEAR, NOW) is None
    bad = csr_obj(req, signer.KUBE_APISERVER_CLIENT, ["server auth"], APPROVED)
    assert csr_signing.outcome(bad, ca[0], ca[1], YEAR, NOW) == {
        "failed": "invalid usage for client certificate: server auth"}
    failed = csr_obj(req, signer.KUBE_APISERVER_CLIENT, ["client auth"],
                     APPROVED + [{"type": "Failed", "status": "True"}])
    assert csr_signing.outcome(failed, ca[0], ca[1], YEAR, NOW) is None
    good = csr_obj(req, signer.KUBE_APISERVER_CLIENT, ["client auth"], APPROVED, expirationSeconds=3600)
    out = csr_signing.outcome(good, ca[0], ca[1], YEAR, NOW)
    assert out is not None
    cert = x509.load_pem_x509_certificate(base64.b64decode(out["certificate"]))
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(hours=1)
    good["status"]["certificate"] = out["certificate"]
    assert csr_signing.outcome(good, ca[0], ca[1], YEAR, NOW) is None  # issued once


def test_approver_recognizes_bootstrap_and_renewal() -> None:
    req = make_csr("system:node:n1", NODE)
    usages = ["digital signature", "client auth"]
    bootstrap = csr_obj(req, signer.KUBE_APISERVER_CLIENT_KUBELET, usages, username="system:bootstrap:abcdef")
    assert [r.subresource for r in csr_approving.candidates(bootstrap)] == ["nodeclient"]
    renewal = csr_obj(req, signer.KUBE_APISERVER_CLIENT_KUBELET, usages, username="system:node:n1")
    assert [r.subresource for r in csr_approving.candidates(renewal)] == ["selfnodeclient", "nodeclient"]
    approved = csr_obj(req, signer.KUBE_APISERVER_CLIENT_KUBELET, usages, APPROVED, username="system:node:n1")
    assert csr_approving.candidates(approved) == []
    client = csr_obj(req, signer.KUBE_APISERVER_CLIENT, ["client auth"], username="system:node:n1")
    assert csr_approving.candidates(client) == []
    wrong = csr_obj(make_csr("system:node:n1", ("x",)), signer.KUBE_APISERVER_CLIENT_KUBELET, usages)
    assert csr_approving.candidates(wrong) == []
    cond = csr_approving.approved(bootstrap, csr_approving.RECOGNIZERS[1].message)["status"]["conditions"][-1]
    assert cond == {"type": "Approved", "status": "True", "reason": "AutoApproved",
                    "message": "Auto approving kubelet client certificate after SubjectAccessReview."}


def test_requester_is_the_csr_spec_identity() -> None:
    obj = {"spec": {"username": "system:bootstrap:abcdef", "uid": "", "groups": ["system:bootstrappers"],
                    "extra": {"k": ["v"]}}}
    user = csr_approving.requester(obj)
    assert (user.name, user.groups, dict(user.extra)) == ("system:bootstrap:abcdef", ("system:bootstrappers",),
                                                          {"k": ("v",)})
