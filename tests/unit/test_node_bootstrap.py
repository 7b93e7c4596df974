"""Node TLS bootstrap pieces: kubeadm's bootstrap bindings in the default policy, NodeRestriction's
CSR rule, the csrcleaner's rules, `node join`'s request names and objects, and cRLSign on the CAs
`kubegate init` creates (checked with openssl's -crl_check)."""
from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from kubegate.admission.node_restriction import NodeRestriction
from kubegate.api import errors
from kubegate.api.resources import lookup
from kubegate.authn.user import UserInfo
from kubegate.authz.bootstrap import default_policy
from kubegate.authz.rbac import RBACAuthorizer
from kubegate.authz.types import Attributes
from kubegate.cli import node as join
from kubegate.controllers.csr_cleaner import CSRCleaner, cleanup_reason
from kubegate.pki import certs
from kubegate.pki.layout import init_pki
from kubegate.pki.revocation import build_crl

CSRS = lookup("certificates.k8s.io", "v1", "certificatesigningrequests")
N1 = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
KINDS = {"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding", "roles": "Role",
         "rolebindings": "RoleBinding"}


# -- kubeadm's bootstrap bindings ------------------------------------------------------------

@pytest.fixture(scope="module")
def rbac() -> RBACAuthorizer:
    r = RBACAuthorizer()
    for plural, obj in default_policy():
        r.upsert(KINDS[plural], obj)
    return r


def csr_attrs(user: UserInfo, verb: str, subresource: str = "") -> Attributes:
    return Attributes(user=user, verb=verb, api_group="certificates.k8s.io", api_version="*",
                      resource="certificatesigningrequests", subresource=subresource, resource_request=True)


BOOTSTRAPPER = UserInfo("system:bootstrap:abcdef", groups=(
    "system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token", "system:authenticated"))
OTHER_BOOTSTRAPPER = UserInfo("system:bootstrap:zzzzzz", groups=("system:bootstrappers", "system:authenticated"))


@pytest.mark.parametrize(("user", "verb", "sub", "binding"), [
    (BOOTSTRAPPER, "create", "", "kubeadm:kubelet-bootstrap"),
    (BOOTSTRAPPER, "get", "", "kubeadm:kubelet-bootstrap"),
    (BOOTSTRAPPER, "create", "nodeclient", "kubeadm:node-autoapprove-bootstrap"),
    (N1, "create", "selfnodeclient", "kubeadm:node-autoapprove-certificate-rotation"),
])
def test_kubeadm_bootstrap_bindings_allow(rbac: RBACAuthorizer, user: UserInfo, verb: str, sub: str,
                                          binding: str) -> None:
    res = rbac.decide(csr_attrs(user, verb, sub))
    assert res.allowed and f'ClusterRoleBinding "{binding}"' in res.reason


@pytest.mark.parametrize(("user", "verb", "sub"), [
    (OTHER_BOOTSTRAPPER, "create", ""),  # a token without kubeadm's default-node-token group
    (OTHER_BOOTSTRAPPER, "create", "nodeclient"),
    (BOOTSTRAPPER, "create", "selfnodeclient"),  # renewal is for nodes, not bootstrappers
    (BOOTSTRAPPER, "delete", ""),
    (N1, "create", "nodeclient"),  # a node may not ask for another node's certificate
])
def test_kubeadm_bootstrap_bindings_do_not_allow(rbac: RBACAuthorizer, user: UserInfo, verb: str, sub: str) -> None:
    assert not rbac.decide(csr_attrs(user, verb, sub)).allowed


# -- NodeRestriction: kubelet CSRs name the node itself ---------------------------------------

def request_b64(*cns: str, orgs: tuple[str, ...] = ("system:nodes",)) -> str:
    key = certs.new_key("ecdsa")
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs += [x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in cns]
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def csr(request: str, signer: str, name: str = "", generate_name: str = "") -> dict[str, Any]:
    meta = {"name": name} if name else {"generateName": generate_name}
    return {"metadata": meta, "spec": {"request": request, "signerName": signer, "usages": ["client auth"]}}


@pytest.fixture
def nr() -> NodeRestriction:
    return NodeRestriction(lambda ns, name: None, lambda name: None)


def admit(nr: NodeRestriction, obj: dict[str, Any], user: UserInfo = N1, operation: str = "create") -> None:
    nr.admit(operation, CSRS, obj, None, None, user)


@pytest.mark.parametrize("signer", ["kubernetes.io/kube-apiserver-client-kubelet", "kubernetes.io/kubelet-serving"])
def test_node_csr_in_its_own_name(nr: NodeRestriction, signer: str) -> None:
    admit(nr, csr(request_b64("system:node:n1"), signer, "own"))
    with pytest.raises(errors.StatusError) as e:
        admit(nr, csr(request_b64("system:node:n2"), signer, generate_name="csr-"))
    assert (e.value.code, e.value.message) == (403, 'certificatesigningrequests.certificates.k8s.io "csr-" is '
                                                    "forbidden: can only create a node CSR with CN=system:node:n1")


def test_node_csr_rule_bounds(nr: NodeRestriction) -> None:
    other = request_b64("system:node:n2")
    admit(nr, csr(other, "kubernetes.io/kube-apiserver-client", "c"))  # other signers: the signer decides
    admit(nr, csr(other, "example.com/x", "c"))
    admit(nr, csr(other, "kubernetes.io/kubelet-serving", "c"), operation="update")  # creates only
    admit(nr, csr(other, "kubernetes.io/kubelet-serving", "c"), user=UserInfo("alice"))  # nodes only
    with pytest.raises(errors.StatusError) as e:
        admit(nr, csr(base64.b64encode(b"garbage").decode(), "kubernetes.io/kubelet-serving", "g"))
    assert e.value.message.endswith("forbidden: unable to parse csr: PEM block type must be CERTIFICATE REQUEST")
    with pytest.raises(errors.StatusError) as e:
        admit(nr, csr("%%%", "kubernetes.io/kubelet-serving", "g"))
    assert "unable to parse csr" in e.value.message
    # Two CNs: whichever one a signer reads, it must be the node's own.
    with pytest.raises(errors.StatusError):
        admit(nr, csr(request_b64("system:node:n1", "system:node:n2"), "kubernetes.io/kubelet-serving", "two"))
    with pytest.raises(errors.StatusError):
        admit(nr, csr(request_b64(), "kubernetes.io/kubelet-serving", "none"))


# -- csrcleaner --------------------------------------------------------------------------------

def ts(delta: datetime.timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


H = datetime.timedelta(hours=1)
M = datetime.timedelta(minutes=1)


def cert_b64(not_after: datetime.datetime) -> str:
    key = certs.new_key("ecdsa")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(not_after - 10 * H).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return base64.b64encode(certs.cert_pem(cert)).decode()


def stored(created: datetime.timedelta, *conds: tuple[str, datetime.timedelta], certificate: str = "",
           name: str = "c") -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": [{"type": t, "status": "True", "lastUpdateTime": ts(age)}
                                             for t, age in conds]} if conds else {}
    if certificate:
        status["certificate"] = certificate
    return {"metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": ts(created)}, "status": status}


VALID = cert_b64(NOW + 100 * H)


@pytest.mark.parametrize(("obj", "reason"), [
    (stored(2 * H, ("Approved", H + M), certificate=VALID), "approvedExpiration duration old and approved"),
    (stored(2 * H, ("Denied", H + M)), "deniedExpiration duration old and denied"),
    (stored(2 * H, ("Failed", H + M)), "deniedExpiration duration old and failed"),
    (stored(24 * H + M), "pendingExpiration duration old and unhandled"),
    (stored(2 * M, ("Approved", M), certificate=cert_b64(NOW - M)), "the associated certificate is expired"),
])
def test_cleaner_deletes(obj: dict[str, Any], reason: str) -> None:
    got = cleanup_reason(obj, NOW)
    assert got is not None and reason in got


@pytest.mark.parametrize("obj", [
    stored(2 * H, ("Approved", H - M), certificate=VALID),  # issued, but less than an hour ago
    stored(30 * H, ("Approved", 2 * H)),  # approved but never issued: upstream keeps it
    stored(2 * H, ("Denied", H - M)),
    stored(24 * H - M),  # pending for less than a day
    stored(30 * H, ("Approved", M), certificate=base64.b64encode(b"garbage").decode()),  # unreadable: not expired
    {"metadata": {"name": "c"}, "status": {"conditions": [{"type": "Denied", "status": "True"}]}},  # no time
])
def test_cleaner_keeps(obj: dict[str, Any]) -> None:
    assert cleanup_reason(obj, NOW) is None


class FakeClient:
    def __init__(self, objs: list[dict[str, Any]], fail: dict[str, int]) -> None:
        self.objs, self.fail, self.deleted = objs, fail, []

    def cached_list(self, plural: str) -> list[dict[str, Any]]:
        return self.objs

    async def delete(self, plural: str, namespace: str | None, name: str, options: Any = None) -> None:
        if name in self.fail:
            raise errors.StatusError(self.fail[name], "NotFound", "gone")
        self.deleted.append((plural, name, options))


def test_cleaner_pass_deletes_with_uid_precondition() -> None:
    objs = [stored(25 * H, name="old"), stored(M, name="new"), stored(25 * H, name="gone"),
            stored(2 * H, ("Denied", 2 * H), name="denied")]
    client = FakeClient(objs, {"gone": 404})
    cleaner = CSRCleaner(client, clock=lambda: NOW)  # type: ignore[arg-type]
    assert asyncio.run(cleaner.clean()) == 2
    assert client.deleted == [("certificatesigningrequests", "old", {"preconditions": {"uid": "uid-old"}}),
                              ("certificatesigningrequests", "denied", {"preconditions": {"uid": "uid-denied"}})]


# -- node join's objects -------------------------------------------------------------------------

def test_csr_name_is_kubelets_digest() -> None:
    key = certs.new_key("ecdsa")
    usages = join.usages(key, "client auth")
    assert usages == ["digital signature", "client auth"]
    assert join.usages(certs.new_key("rsa"), "server auth") == ["digital signature", "key encipherment",
                                                               "server auth"]
    h = hashlib.new("sha512_256")
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for part in (spki, b"system:node:n1", b"system:nodes", b"digital signature", b"client auth"):
        h.update(base64.urlsafe_b64encode(part).rstrip(b"=") + b"|")
    expected = "node-csr-" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    assert join.csr_name("node-csr-", key, "n1", usages) == expected
    assert join.csr_name("node-csr-", key, "n2", usages) != expected


def test_join_objects() -> None:
    key = certs.new_key("ecdsa")
    obj = join.csr_object("csr-x", key, "n1", "kubernetes.io/kubelet-serving", ["digital signature", "server auth"],
                          join.serving_sans("n1", ["10.0.0.7"]))
    req = x509.load_pem_x509_csr(base64.b64decode(obj["spec"]["request"]))
    assert req.subject.rfc4514_string() == "CN=system:node:n1,O=system:nodes"
    sans = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["n1"]
    assert [str(i) for i in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
    lease = join.lease_object("n1", "u1", datetime.datetime(2026, 5, 1, 12, 0, 0, 1234, datetime.timezone.utc), 40)
    assert lease["spec"] == {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                             "renewTime": "2026-05-01T12:00:00.001234Z"}
    assert lease["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u1"}]


def test_usable_certificate(tmp_path: Path) -> None:
    init_pki(tmp_path)
    ca, ca_key = certs.load_pair(tmp_path / "pki" / "ca.crt", tmp_path / "pki" / "ca.key")
    mine = certs.cert_pem(certs.issue(ca, ca_key, cn="system:node:n1", orgs=["system:nodes"], client=True,
                                      key=certs.new_key("ecdsa")))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert join.usable_certificate(mine, "n1", now)
    assert not join.usable_certificate(mine, "n2", now)
    assert not join.usable_certificate(mine, "n1", now + datetime.timedelta(days=400))
    assert not join.usable_certificate(b"garbage", "n1", now)


# -- cRLSign on kubegate's CAs ----------------------------------------------------------------

def test_ca_crl_passes_openssl_crl_check(tmp_path: Path) -> None:
    init_pki(tmp_path)
    pki = tmp_path / "pki"
    for ca_name in ("ca", "front-proxy-ca", "etcd/ca"):
        usage = certs.load_cert(pki / f"{ca_name}.crt").extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.crl_sign and usage.key_cert_sign
    ca, ca_key = certs.load_pair(pki / "ca.crt", pki / "ca.key")
    leaves = {}
    for cn in ("revoked", "kept"):
        cert = certs.issue(ca, ca_key, cn=cn, client=True, key=certs.new_key("ecdsa"))
        leaves[cn] = tmp_path / f"{cn}.crt"
        leaves[cn].write_bytes(certs.cert_pem(cert))
        if cn == "revoked":
            serial = cert.serial_number
    crl = build_crl(ca, ca_key, {serial: datetime.datetime.now(datetime.timezone.utc)},
                    datetime.datetime.now(datetime.timezone.utc))
    (tmp_path / "ca.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))

    def verify(leaf: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", str(pki / "ca.crt"), "-CRLfile",
                               str(tmp_path / "ca.crl"), str(leaf)], capture_output=True, text=True)
    ok = verify(leaves["kept"])
    assert ok.returncode == 0 and ok.stdout.strip().endswith(": OK"), ok.stdout + ok.stderr
    bad = verify(leaves["revoked"])
    assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr
