"""The Certificates API end to end: the seed's manual openssl flow through kubectl, the signer and
approver controllers, admission, and bad input answered as upstream."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kubegate.pki import certs
from tests.e2e.cluster import Cluster, golden

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def openssl(*args: str, cwd: Path) -> str:
    p = subprocess.run(["openssl", *args], capture_output=True, text=True, cwd=cwd, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def openssl_csr(tmp: Path, name: str, subj: str) -> str:
    """openssl genrsa + openssl req, as the seed does; the base64 request for spec.request."""
    openssl("genrsa", "-out", f"{name}.key", "2048", cwd=tmp)
    openssl("req", "-new", "-key", f"{name}.key", "-subj", subj, "-out", f"{name}.csr", cwd=tmp)
    return base64.b64encode((tmp / f"{name}.csr").read_bytes()).decode()


def manifest(name: str, request: str, signer: str = "kubernetes.io/kube-apiserver-client",
             usages: tuple[str, ...] = ("client auth",), **spec: Any) -> str:
    return yaml.safe_dump({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                           "metadata": {"name": name},
                           "spec": {"request": request, "signerName": signer, "usages": list(usages), **spec}})


def wait_for(cluster: Cluster, name: str, done: Any) -> dict[str, Any]:
    """Poll until the controllers have acted on `name` (a generous bound, not a speed check)."""
    deadline = time.monotonic() + 30
    while True:
        _, _, csr = cluster.request("GET", f"{CSRS}/{name}")
        if done(csr) or time.monotonic() > deadline:
            return csr
        time.sleep(0.2)


def issued(csr: dict[str, Any]) -> bool:
    return bool(csr.get("status", {}).get("certificate"))


def conditions(csr: dict[str, Any]) -> list[str]:
    return [c["type"] for c in csr.get("status", {}).get("conditions", [])]


def test_manual_seed_flow_issues_a_certificate_that_logs_in(cluster: Cluster, tmp_path: Path) -> None:
    request = openssl_csr(tmp_path, "jane", "/CN=jane/O=devs/O=auditors")
    out = cluster.ok("apply", "-f", "-", input=manifest("jane", request, expirationSeconds=86400))
    assert out.strip() == "certificatesigningrequest.certificates.k8s.io/jane created"

    table = cluster.ok("get", "csr", "jane")
    header, row = table.splitlines()
    assert header.split() == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"]
    assert row.split()[2:] == ["kubernetes.io/kube-apiserver-client", "kubernetes-admin", "24h", "Pending"]

    pending = yaml.safe_load(cluster.ok("get", "csr", "jane", "-o", "yaml"))
    assert pending["spec"]["username"] == "kubernetes-admin"
    assert pending["spec"]["groups"] == ["kubeadm:cluster-admins", "system:authenticated"]

    assert cluster.ok("certificate", "approve", "jane").strip() == \
        "certificatesigningrequest.certificates.k8s.io/jane approved"
    csr = wait_for(cluster, "jane", issued)
    assert issued(csr), csr
    approved = csr["status"]["conditions"][0]
    assert (approved["type"], approved["reason"], approved["message"]) == (
        "Approved", "KubectlApprove", "This CSR was approved by kubectl certificate approve.")
    assert approved["lastUpdateTime"] and approved["lastTransitionTime"]
    assert cluster.ok("get", "csr", "jane").splitlines()[1].split()[-1] == "Approved,Issued"

    # Extract as the seed does, then verify and log in with curl and kubectl.
    cert_pem = base64.b64decode(cluster.ok("get", "csr", "jane", "-o", "jsonpath={.status.certificate}"))
    (tmp_path / "jane.crt").write_bytes(cert_pem)
    assert "jane.crt: OK" in openssl("verify", "-CAfile", cluster.ca, "jane.crt", cwd=tmp_path)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() == 86400

    r = cluster.curl("/apis/authentication.k8s.io/v1/selfsubjectreviews", "-X", "POST",
                     "-H", "Content-Type: application/json", "-d",
                     json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
                     user=(str(tmp_path / "jane.crt"), str(tmp_path / "jane.key")))
    assert r.code == 201, r.stdout
    info = json.loads(r.stdout)["status"]["userInfo"]
    assert info["username"] == "jane"
    assert sorted(info["groups"]) == ["auditors", "devs", "system:authenticated"]

    kubeconfig = tmp_path / "jane.conf"
    env_conf = ["--kubeconfig", str(kubeconfig)]
    for args in (["config", "set-cluster", "k", "--server", cluster.url, "--certificate-authority", cluster.ca],
                 ["config", "set-credentials", "jane", "--client-certificate", str(tmp_path / "jane.crt"),
                  "--client-key", str(tmp_path / "jane.key")],
                 ["config", "set-context", "jane", "--cluster", "k", "--user", "jane"],
                 ["config", "use-context", "jane"]):
        cluster.ok(*env_conf, *args)
    assert cluster.ok("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}",
                      kubeconfig=str(kubeconfig)) == "jane"

    # The issued certificate never changes; the spec neither (a patch is a no-op as upstream).
    cluster.ok("patch", "csr", "jane", "--type", "merge", "-p", '{"spec":{"usages":["digital signature"]}}')
    assert cluster.request("GET", f"{CSRS}/jane")[2]["spec"]["usages"] == ["client auth"]

    assert cluster.ok("delete", "csr", "jane").strip() == \
        'certificatesigningrequest.certificates.k8s.io "jane" deleted'


def test_deny_then_approve_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    request = openssl_csr(tmp_path, "den", "/CN=den")
    cluster.ok("apply", "-f", "-", input=manifest("den", request))
    assert cluster.ok("certificate", "deny", "den").strip() == \
        "certificatesigningrequest.certificates.k8s.io/den denied"
    r = cluster.kubectl("certificate", "approve", "den")
    assert r.code != 0 and 'certificate signing request "den" is already Denied' in r.stderr
    # Straight at the API: upstream's 422 for both conditions (csr-approve-again golden, mirrored).
    _, _, csr = cluster.request("GET", f"{CSRS}/den")
    csr["status"]["conditions"].append({"type": "Approved", "status": "True", "reason": "X", "message": "x"})
    status, _, body = cluster.request("PUT", f"{CSRS}/den/approval", csr)
    assert status == 422
    assert body["message"] == ('CertificateSigningRequest.certificates.k8s.io "den" is invalid: status.conditions: '
                               'Invalid value: "Approved": Approved and Denied conditions are mutually exclusive')
    time.sleep(0.5)
    assert not issued(cluster.request("GET", f"{CSRS}/den")[2])


def test_signer_refuses_what_it_must_not_issue(cluster: Cluster, tmp_path: Path) -> None:
    request = openssl_csr(tmp_path, "srv", "/CN=srv")
    cluster.ok("apply", "-f", "-", input=manifest("srv", request, usages=("server auth",)))
    cluster.ok("certificate", "approve", "srv")
    csr = wait_for(cluster, "srv", lambda c: "Failed" in conditions(c))
    failed = csr["status"]["conditions"][-1]
    want = golden("certificates/csr-server-auth-usage-failed.json")["response"]["body"]["status"]["conditions"][1]
    assert {k: failed[k] for k in ("type", "status", "reason", "message")} == \
        {k: want[k] for k in ("type", "status", "reason", "message")}
    assert not issued(csr)
    assert cluster.ok("get", "csr", "srv").splitlines()[1].split()[-1] == "Approved,Failed"


def test_system_masters_is_refused_as_golden(cluster: Cluster) -> None:
    g = golden("certificates/csr-system-masters.json")
    status, _, body = cluster.request("POST", CSRS, g["request"]["body"])
    assert (status, body["message"]) == (g["response"]["status"], g["response"]["body"]["message"])


@pytest.mark.parametrize("name", ["csr-invalid-request.json", "csr-invalid-usage.json",
                                  "csr-legacy-unknown-signer.json", "csr-missing-signer.json",
                                  "csr-short-expiration.json"])
def test_bad_input_as_golden(cluster: Cluster, name: str) -> None:
    g = golden(f"certificates/{name}")
    status, _, body = cluster.request("POST", CSRS, g["request"]["body"])
    assert status == g["response"]["status"]
    assert body["message"] == g["response"]["body"]["message"]
    assert cluster.request("GET", f"{CSRS}/{g['request']['body']['metadata']['name']}")[0] == 404


def test_approving_needs_approve_on_the_signer(cluster: Cluster, tmp_path: Path) -> None:
    request = openssl_csr(tmp_path, "own", "/CN=own")
    cluster.ok("apply", "-f", "-", input=manifest("own", request, signer="example.com/own"))
    cluster.ok("create", "clusterrole", "csr-approval-only", "--verb=get,update",
               "--resource=certificatesigningrequests,certificatesigningrequests/approval")
    cluster.ok("create", "clusterrolebinding", "carol-approval", "--clusterrole=csr-approval-only", "--user=carol")
    carol = cluster.kubeconfig_for("carol")
    r = cluster.kubectl("certificate", "approve", "own", kubeconfig=carol)
    assert r.code != 0
    assert ('certificatesigningrequests.certificates.k8s.io "own" is forbidden: user not permitted to approve '
            'requests with signerName "example.com/own"') in r.stderr
    # signers are not a served resource, so (as upstream) the role is written out rather than `kubectl create`d.
    cluster.ok("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "example-approver"},
        "rules": [{"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
                   "resourceNames": ["example.com/*"]}]}))
    cluster.ok("create", "clusterrolebinding", "carol-approver", "--clusterrole=example-approver", "--user=carol")
    assert "approved" in cluster.ok("certificate", "approve", "own", kubeconfig=carol)
    time.sleep(0.5)
    assert not issued(cluster.request("GET", f"{CSRS}/own")[2])  # no built-in signer for example.com


def test_node_client_csrs_are_auto_approved(cluster: Cluster, tmp_path: Path) -> None:
    # kubeadm's binding that lets kubelets renew their own client certificate.
    cluster.ok("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "kubeadm:node-autoapprove-certificate-rotation"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}]}))
    node = cluster.kubeconfig_for("system:node:csr-n1", ("system:nodes",))
    request = openssl_csr(tmp_path, "n1", "/O=system:nodes/CN=system:node:csr-n1")
    cluster.ok("apply", "-f", "-", kubeconfig=node,
               input=manifest("node-csr-n1", request, signer="kubernetes.io/kube-apiserver-client-kubelet",
                              usages=("digital signature", "key encipherment", "client auth")))
    csr = wait_for(cluster, "node-csr-n1", issued)
    assert issued(csr), csr
    cond = csr["status"]["conditions"][0]
    assert (cond["reason"], cond["message"]) == (
        "AutoApproved", "Auto approving self kubelet client certificate after SubjectAccessReview.")
    cert = x509.load_pem_x509_certificate(base64.b64decode(csr["status"]["certificate"]))
    assert cert.subject.rfc4514_string() == "CN=system:node:csr-n1,O=system:nodes"

    # A CSR creator without nodeclient permission asking for a node's certificate gets nothing.
    cluster.ok("create", "clusterrolebinding", "csr-mallory", "--clusterrole=system:node-bootstrapper",
               "--user=mallory")
    request = openssl_csr(tmp_path, "n2", "/O=system:nodes/CN=system:node:csr-n2")
    cluster.ok("apply", "-f", "-", kubeconfig=cluster.kubeconfig_for("mallory"),
               input=manifest("node-csr-n2", request, signer="kubernetes.io/kube-apiserver-client-kubelet",
                              usages=("digital signature", "client auth")))
    time.sleep(1)
    assert conditions(cluster.request("GET", f"{CSRS}/node-csr-n2")[2]) == []


def onboard(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubegate.cli.main", "kubeconfig", "user", *args,
                           "--data-dir", str(cluster.data_dir), "--timeout", "30"],
                          capture_output=True, text=True, timeout=60)


def test_onboarding_in_one_command(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "dana.conf"
    p = onboard(cluster, "dana", "--group", "qa", "--group", "ops", "--expiration", "24h", "--approve",
                "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    info = json.loads(cluster.ok("auth", "whoami", "-o", "json", kubeconfig=str(out)))["status"]["userInfo"]
    assert (info["username"], sorted(info["groups"])) == ("dana", ["ops", "qa", "system:authenticated"])
    cert = x509.load_pem_x509_certificate(base64.b64decode(
        yaml.safe_load(out.read_text())["users"][0]["user"]["client-certificate-data"]))
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() == 86400
    (tmp_path / "dana.crt").write_bytes(certs.cert_pem(cert))
    assert "dana.crt: OK" in openssl("verify", "-CAfile", cluster.ca, "dana.crt", cwd=tmp_path)


def test_onboarding_refusals_leave_nothing_behind(cluster: Cluster, tmp_path: Path) -> None:
    before = {i["metadata"]["name"] for i in cluster.request("GET", CSRS)[2]["items"]}
    p = onboard(cluster, "root", "--group", "system:masters", "--approve", "--out", str(tmp_path / "r.conf"))
    assert p.returncode == 1
    assert "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed" in p.stderr
    p = onboard(cluster, "quick", "--expiration", "5m", "--approve", "--out", str(tmp_path / "q.conf"))
    assert p.returncode == 1
    assert "may not specify a duration less than 600 seconds (10 minutes)" in p.stderr
    # A caller who may create CSRs but not approve them: the request is removed again.
    cluster.ok("create", "clusterrole", "csr-maker", "--verb=create,get,update,delete",
               "--resource=certificatesigningrequests,certificatesigningrequests/approval")
    cluster.ok("create", "clusterrolebinding", "csr-maker-erin", "--clusterrole=csr-maker", "--user=erin")
    erin = cluster.kubeconfig_for("erin")
    p = subprocess.run([sys.executable, "-m", "kubegate.cli.main", "kubeconfig", "user", "frank", "--approve",
                        "--kubeconfig", erin, "--out", str(tmp_path / "f.conf")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert 'user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client"' in p.stderr
    after = {i["metadata"]["name"] for i in cluster.request("GET", CSRS)[2]["items"]}
    assert after == before
    assert not any((tmp_path / f).exists() for f in ("r.conf", "q.conf", "f.conf"))


def test_signing_flags(fresh_cluster: Cluster, tmp_path: Path) -> None:
    key = certs.new_key("ecdsa")
    signing_ca = certs.self_signed_ca("csr-signer", key)
    certs.write_cert(tmp_path / "signer.crt", signing_ca)
    certs.write_key(tmp_path / "signer.key", key)
    fresh_cluster.extra_args = ["--cluster-signing-cert-file", str(tmp_path / "signer.crt"),
                                "--cluster-signing-key-file", str(tmp_path / "signer.key"),
                                "--cluster-signing-duration", "2h"]
    fresh_cluster.start()
    request = openssl_csr(tmp_path, "gil", "/CN=gil")
    fresh_cluster.ok("apply", "-f", "-", input=manifest("gil", request, expirationSeconds=86400))
    fresh_cluster.ok("certificate", "approve", "gil")
    csr = wait_for(fresh_cluster, "gil", issued)
    (tmp_path / "gil.crt").write_bytes(base64.b64decode(csr["status"]["certificate"]))
    cert = x509.load_pem_x509_certificate((tmp_path / "gil.crt").read_bytes())
    assert cert.issuer.rfc4514_string() == "CN=csr-signer"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() == 7200  # clamped to 2h
    assert "gil.crt: OK" in openssl("verify", "-CAfile", "signer.crt", "gil.crt", cwd=tmp_path)


def test_signing_cert_without_key_is_refused(tmp_path: Path) -> None:
    c = Cluster(tmp_path / "data", ["--cluster-signing-cert-file", str(tmp_path / "x.crt")])
    with pytest.raises(RuntimeError) as e:
        c.start()
    assert "cannot specify --cluster-signing-cert-file without --cluster-signing-key-file" in str(e.value)


def test_request_signed_by_another_key_is_invalid(cluster: Cluster, tmp_path: Path) -> None:
    openssl_csr(tmp_path, "forged", "/CN=forged")
    der = bytearray(x509.load_pem_x509_csr((tmp_path / "forged.csr").read_bytes()).public_bytes(
        serialization.Encoding.DER))
    der[-5] ^= 0xFF  # the signature no longer verifies with the key the request names
    pem = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(der)) + \
        b"-----END CERTIFICATE REQUEST-----\n"
    r = cluster.kubectl("apply", "-f", "-", input=manifest("forged", base64.b64encode(pem).decode()))
    assert r.code != 0
    assert 'spec.request: Invalid value: ' in r.stderr and "crypto/rsa: verification error" in r.stderr
    assert cluster.request("GET", f"{CSRS}/forged")[0] == 404
