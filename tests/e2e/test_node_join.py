"""Node TLS bootstrap end to end: `kubegate token create` -> `kubegate node join` (auto-approved
client certificate, Node, Lease, manually approved kubelet-serving certificate) against a real server
with bootstrap tokens on, then what the node's identity may do; and joins that must fail."""
from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.e2e.cluster import Cluster

KUBEGATE = [sys.executable, "-m", "kubegate.cli.main"]
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def kubegate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KUBEGATE, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def boot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("node-join") / "data", ["--enable-bootstrap-token-auth"]).start()
    yield c
    c.stop()


def token(c: Cluster, *args: str) -> str:
    r = kubegate("token", "create", "--data-dir", str(c.data_dir), *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def join_args(c: Cluster, tok: str, node: str, directory: Path, *extra: str) -> list[str]:
    return ["node", "join", "--server", c.url, "--bootstrap-token", tok, "--node-name", node, "--ca-cert", c.ca,
            "--dir", str(directory), "--timeout", "30", *extra]


def get(c: Cluster, path: str, user: Any = None) -> tuple[int, Any]:
    status, _, body = c.request("GET", path, **({"user": user} if user is not None else {}))
    return status, body


def test_join_certifies_registers_and_restricts_the_node(boot: Cluster, tmp_path: Path) -> None:
    node, d = "join-n1", tmp_path / "n1"
    r = kubegate(*join_args(boot, token(boot), node, d, "--once", "--node-ip", "127.0.0.1"))
    assert r.returncode == 0, r.stderr
    conf = d / "kubelet.conf"
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    assert "token" not in conf.read_text()  # the bootstrap token is never written

    # The client CSR was the kubelet's: deterministic name, auto-approved for the bootstrapper.
    csrs = json.loads(boot.ok("get", "csr", "-o", "json"))["items"]
    client = next(x for x in csrs if x["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
                  and x["spec"]["username"].startswith("system:bootstrap:"))
    assert client["metadata"]["name"].startswith("node-csr-")
    assert "system:bootstrappers:kubeadm:default-node-token" in client["spec"]["groups"]
    approved = client["status"]["conditions"][0]
    assert (approved["type"], approved["reason"], approved["message"]) == (
        "Approved", "AutoApproved", "Auto approving kubelet client certificate after SubjectAccessReview.")

    # From now on it is the node, and only the node.
    info = json.loads(boot.ok("auth", "whoami", "-o", "json", kubeconfig=str(conf)))["status"]["userInfo"]
    assert (info["username"], info["groups"]) == (f"system:node:{node}", ["system:nodes", "system:authenticated"])
    cert = x509.load_pem_x509_certificate(base64.b64decode(
        yaml.safe_load(conf.read_text())["users"][0]["user"]["client-certificate-data"]))
    assert cert.subject.rfc4514_string() == f"CN=system:node:{node},O=system:nodes"
    subprocess.run(["openssl", "verify", "-CAfile", boot.ca], input=cert.public_bytes(Encoding.PEM),
                   check=True, capture_output=True)

    labels = json.loads(boot.ok("get", "node", node, "-o", "json"))["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == node
    lease = json.loads(boot.ok("get", "lease", "-n", "kube-node-lease", node, "-o", "json"))
    assert lease["spec"]["holderIdentity"] == node and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"

    boot.ok("create", "secret", "generic", "join-s", "--from-literal=k=v", "-n", "default")
    r = boot.kubectl("get", "secret", "join-s", "-n", "default", kubeconfig=str(conf))
    assert r.code != 0 and f"no relationship found between node '{node}' and this object" in r.stderr
    r = boot.kubectl("get", "secrets", "-A", kubeconfig=str(conf))
    assert r.code != 0 and "forbidden" in r.stderr
    r = boot.kubectl("label", "node", node, "node-role.kubernetes.io/control-plane=", kubeconfig=str(conf))
    assert r.code != 0 and "is not allowed to modify labels: node-role.kubernetes.io/control-plane" in r.stderr
    r = boot.kubectl("delete", "lease", "-n", "kube-system", "kube-scheduler", kubeconfig=str(conf))
    assert r.code != 0 and "forbidden" in r.stderr

    # The kubelet-serving request waits for a human, as upstream; then a re-run picks it up.
    serving = next(x for x in json.loads(boot.ok("get", "csr", "-o", "json"))["items"]
                   if x["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
                   and x["spec"]["username"] == f"system:node:{node}")
    assert "conditions" not in serving.get("status", {})
    # Before approval a re-run reuses the node's credentials (the token is not even valid) and names the request.
    r = kubegate(*join_args(boot, "000000.0000000000000000", node, d, "--once"))
    assert r.returncode == 0, r.stderr
    assert "using the node credentials in" in r.stderr
    assert f"kubectl certificate approve {serving['metadata']['name']}" in r.stderr
    assert not (d / "pki" / "kubelet-server.crt").exists()
    boot.ok("certificate", "approve", serving["metadata"]["name"])
    deadline = time.monotonic() + 30
    while not json.loads(boot.ok("get", "csr", serving["metadata"]["name"], "-o", "json")).get(
            "status", {}).get("certificate"):
        assert time.monotonic() < deadline, "the serving certificate was never issued"
        time.sleep(0.3)
    r = kubegate(*join_args(boot, "000000.0000000000000000", node, d, "--once"))
    assert r.returncode == 0, r.stderr
    crt = d / "pki" / "kubelet-server.crt"
    subprocess.run(["openssl", "verify", "-CAfile", boot.ca, str(crt)], check=True, capture_output=True)
    served = x509.load_pem_x509_certificate(crt.read_bytes())
    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [node]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]



def test_join_with_a_wrong_or_expired_token_fails_clearly(boot: Cluster, tmp_path: Path) -> None:
    refused = "error: 401 Unauthorized: the server does not accept the bootstrap token (wrong, expired, or not " \
              "for authentication)\n"
    tok = token(boot)
    wrong = tok.split(".")[0] + ".0123456789abcdef"
    r = kubegate(*join_args(boot, wrong, "join-bad", tmp_path / "wrong", "--once"))
    assert (r.returncode, r.stderr) == (1, refused)
    expiring = token(boot, "--ttl", "1s")
    time.sleep(2)
    r = kubegate(*join_args(boot, expiring, "join-bad", tmp_path / "expired", "--once"))
    assert (r.returncode, r.stderr) == (1, refused)
    signing_only = token(boot, "--usages", "signing", "--groups", "")
    r = kubegate(*join_args(boot, signing_only, "join-bad", tmp_path / "signing", "--once"))
    assert (r.returncode, r.stderr) == (1, refused)
    r = kubegate(*join_args(boot, "not-a-token", "join-bad", tmp_path / "format", "--once"))
    assert r.returncode == 1
    assert r.stderr == "error: --bootstrap-token must be of the form ID.SECRET ([a-z0-9]{6}.[a-z0-9]{16})\n"
    garbage = tmp_path / "ca.crt"
    garbage.write_text("not a certificate")
    r = kubegate("node", "join", "--server", boot.url, "--bootstrap-token", tok, "--node-name", "join-bad",
                 "--ca-cert", str(garbage), "--dir", str(tmp_path / "ca"), "--once")
    assert r.returncode == 1 and r.stderr.startswith(f"error: {garbage}"), r.stderr
    # Nothing was written, no Node registered, no certificate issued to anyone.
    for sub in ("wrong", "expired", "signing", "format", "ca"):
        assert not (tmp_path / sub).exists()
    assert boot.kubectl("get", "node", "join-bad").code != 0
    refused_users = {f"system:bootstrap:{t.split('.')[0]}" for t in (expiring, signing_only)}
    csrs = json.loads(boot.ok("get", "csr", "-o", "json"))["items"]
    assert not [x for x in csrs if x["spec"]["username"] in refused_users]


def test_a_node_may_only_request_certificates_in_its_own_name(boot: Cluster, tmp_path: Path) -> None:
    d = tmp_path / "n2"
    assert kubegate(*join_args(boot, token(boot), "join-n2", d, "--once")).returncode == 0
    key = subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"], capture_output=True,
                         check=True).stdout
    (tmp_path / "k.pem").write_bytes(key)
    req = subprocess.run(["openssl", "req", "-new", "-key", str(tmp_path / "k.pem"), "-subj",
                          "/O=system:nodes/CN=system:node:join-other"], capture_output=True, check=True).stdout
    manifest = yaml.safe_dump({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "csr-"},
        "spec": {"request": base64.b64encode(req).decode(), "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                 "usages": ["digital signature", "client auth"]}})
    r = boot.kubectl("create", "-f", "-", input=manifest, kubeconfig=str(d / "kubelet.conf"))
    assert r.code != 0
    assert ('certificatesigningrequests.certificates.k8s.io "csr-" is forbidden: can only create a node CSR with '
            'CN=system:node:join-n2') in r.stderr


def test_join_keeps_the_lease_renewed_until_sigterm(boot: Cluster, tmp_path: Path) -> None:
    args = join_args(boot, token(boot), "join-n3", tmp_path / "n3", "--lease-duration-seconds", "2")
    proc = subprocess.Popen([*KUBEGATE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def renew_time() -> str | None:
            r = boot.kubectl("get", "lease", "-n", "kube-node-lease", "join-n3", "-o", "jsonpath={.spec.renewTime}")
            return r.stdout or None if r.code == 0 else None
        deadline = time.monotonic() + 60
        while (first := renew_time()) is None:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
        while renew_time() == first:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
