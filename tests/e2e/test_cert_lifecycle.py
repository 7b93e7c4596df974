"""Certificate lifecycle against a real server: check-expiration, renewal with the serving certificate
swapped live, automatic renewal at start-up, expiry warnings, revocation and the CRL."""
from __future__ import annotations

import base64
import datetime
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from kubegate.pki import certs
from kubegate.pki.layout import init_pki
from kubegate.pki.revocation import CONFIGMAP
from tests.e2e.cluster import Cluster

KUBEGATE = [sys.executable, "-m", "kubegate.cli.main"]


def kubegate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KUBEGATE, *args], capture_output=True, text=True, timeout=60)


def openssl(*args: str, input: bytes | None = None) -> str:
    p = subprocess.run(["openssl", *args], capture_output=True, input=input, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def served_cert(c: Cluster) -> x509.Certificate:
    """The certificate a new TLS connection is served."""
    ctx = ssl.create_default_context(cafile=c.ca)
    with socket.create_connection(("127.0.0.1", c.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.fixture
def running(tmp_path: Path):
    c = Cluster(tmp_path / "data").start()
    yield c
    c.stop()


def test_check_expiration_matches_openssl(running: Cluster) -> None:
    r = kubegate("certs", "check-expiration", "--data-dir", str(running.data_dir))
    assert r.returncode == 0, r.stderr
    end = openssl("x509", "-in", str(running.data_dir / "pki" / "apiserver.crt"), "-noout", "-enddate")
    when = datetime.datetime.strptime(end.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT")
    row = next(line for line in r.stdout.splitlines() if line.startswith("apiserver "))
    assert re.split(r" {3,}", row)[1] == when.strftime("%b %d, %Y %H:%M UTC")
    assert row.split()[-2:] == ["ca", "no"]
    assert "CERTIFICATE AUTHORITY   EXPIRES" in r.stdout


def test_renew_swaps_serving_cert_without_restart(running: Cluster) -> None:
    before = served_cert(running)
    r = kubegate("certs", "renew", "apiserver", "--data-dir", str(running.data_dir))
    assert r.returncode == 0 and r.stdout == "certificate for serving the Kubernetes API renewed\n", r.stderr
    on_disk = certs.load_cert(running.data_dir / "pki" / "apiserver.crt")
    assert on_disk.serial_number != before.serial_number
    deadline = time.monotonic() + 60  # the server polls its files every 10 s
    while served_cert(running).serial_number != on_disk.serial_number:
        assert time.monotonic() < deadline, "the renewed serving certificate was never served"
        time.sleep(1)
    assert running.curl("/api").code == 200
    assert running.proc is not None and running.proc.poll() is None
    assert "serving the new certificate" in running.log.read_text()
    # The renewed pair verifies against the cluster CA with openssl too.
    assert "OK" in openssl("verify", "-CAfile", running.ca, str(running.data_dir / "pki" / "apiserver.crt"))


def test_renew_all_refreshes_kubeconfigs(running: Cluster) -> None:
    old = Path(running.admin_conf).read_text()
    r = kubegate("certs", "renew", "all", "--data-dir", str(running.data_dir))
    assert r.returncode == 0, r.stderr
    assert "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself renewed" \
        in r.stdout
    assert Path(running.admin_conf).read_text() != old
    assert running.kubectl("get", "namespaces").code == 0  # the new admin credentials log in


def test_unknown_certificate_name(tmp_path: Path) -> None:
    init_pki(tmp_path / "d")
    r = kubegate("certs", "renew", "nope", "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 1 and r.stderr.startswith("error: unknown certificate 'nope'")


def test_start_renews_due_certs_and_warns(tmp_path: Path) -> None:
    data = tmp_path / "data"
    now = datetime.datetime.now(datetime.timezone.utc)
    # A CA issued 40 days ago, so its leaves (NotBefore = the CA's) have lived 40 days.
    ca_key = certs.new_key("ecdsa")
    ca = certs.self_signed_ca("kubernetes", ca_key, now=now - datetime.timedelta(days=40))
    certs.write_key(data / "pki" / "ca.key", ca_key)
    certs.write_cert(data / "pki" / "ca.crt", ca)
    init_pki(data)
    etcd_ca, etcd_key = certs.load_pair(data / "pki" / "etcd" / "ca.crt", data / "pki" / "etcd" / "ca.key")
    san = certs.load_cert(data / "pki" / "apiserver.crt").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    for name, ca_pair, days, kw in (
            ("apiserver", (ca, ca_key), 3, {"cn": "kube-apiserver", "dns": san.get_values_for_type(x509.DNSName),
                                             "ips": san.get_values_for_type(x509.IPAddress), "server": True}),
            ("etcd/healthcheck-client", (etcd_ca, etcd_key), 10, {"cn": "kube-etcd-healthcheck-client",
                                                                  "client": True})):
        key = certs.new_key("ecdsa")
        certs.write_key(data / "pki" / f"{name}.key", key, overwrite=True)
        certs.write_cert(data / "pki" / f"{name}.crt",
                         certs.issue(*ca_pair, key=key, days=days, **kw), overwrite=True)  # type: ignore[arg-type]
    c = Cluster(data).start()
    try:
        served = served_cert(c)
        assert served.not_valid_after_utc - now > datetime.timedelta(days=300)  # renewed before serving
        log = c.log.read_text()
        assert "renewed certificate apiserver: less than a third of its life remained" in log
        assert "certificate etcd-healthcheck-client expires on" in log  # not the server's: only warned about
        ready = c.curl("/readyz?verbose")
        assert ready.code == 200
        assert "\n[!]certificate etcd-healthcheck-client expires on " in ready.stdout
        assert "[!]certificate apiserver" not in ready.stdout
        assert c.curl("/readyz").stdout == "ok"
    finally:
        c.stop()


def test_revoked_cert_gets_401_and_crl(running: Cluster, tmp_path: Path) -> None:
    crt, key = running.user_cert("revoke-me")
    other = running.user_cert("keep-me")
    assert running.curl("/api", user=(crt, key)).code == 200
    r = kubegate("certs", "revoke", "--cert", crt, "--data-dir", str(running.data_dir))
    assert r.returncode == 0, r.stderr
    serial = openssl("x509", "-in", crt, "-noout", "-serial").strip().split("=", 1)[1]
    res = running.curl("/api", user=(crt, key))
    assert res.code == 401 and '"reason":"Unauthorized"' in res.stdout
    assert running.curl("/api", user=other).code == 200
    # Recorded in the store, visible with kubectl.
    data = running.ok("get", "configmap", "-n", "kube-system", CONFIGMAP, "-o", "jsonpath={.data}")
    assert serial.lower().lstrip("0") in data
    again = kubegate("certs", "revoke", "--cert", crt, "--data-dir", str(running.data_dir))
    assert again.returncode == 0 and "already revoked" in again.stdout

    # --serial accepts openssl's spelling of a certificate the cluster issued.
    sched = subprocess.run(["sh", "-c", f"grep client-certificate-data {running.data_dir}/scheduler.conf | "
                            "awk '{print $2}' | base64 -d | openssl x509 -noout -serial"],
                           capture_output=True, text=True).stdout.strip()
    r = kubegate("certs", "revoke", "--serial", sched, "--data-dir", str(running.data_dir))
    assert r.returncode == 0 and "(CN=system:kube-scheduler) revoked" in r.stdout, r.stderr

    crl = tmp_path / "ca.crl"
    r = kubegate("certs", "crl", "--data-dir", str(running.data_dir), "--out", str(crl))
    assert r.returncode == 0, r.stderr
    p = subprocess.run(["openssl", "crl", "-in", str(crl), "-CAfile", running.ca, "-noout", "-text"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "verify OK" in p.stderr  # signed by the cluster CA
    assert f"Serial Number: {serial.upper()}" in p.stdout and f"Serial Number: {sched.split('=')[1]}" in p.stdout


def test_revoke_bad_input(running: Cluster, tmp_path: Path) -> None:
    d = str(running.data_dir)
    r = kubegate("certs", "revoke", "--serial", "0123abcd", "--data-dir", d)
    assert r.returncode == 1
    assert r.stderr.startswith("error: no certificate with serial 123abcd was issued by the cluster CA")
    r = kubegate("certs", "revoke", "--serial", "zz", "--data-dir", d)
    assert r.returncode == 1 and "invalid serial 'zz'" in r.stderr
    foreign_key = certs.new_key("ecdsa")
    foreign_ca = certs.self_signed_ca("elsewhere", foreign_key)
    foreign = tmp_path / "foreign.crt"
    foreign.write_bytes(certs.cert_pem(certs.issue(foreign_ca, foreign_key, cn="x", client=True, key=foreign_key)))
    r = kubegate("certs", "revoke", "--cert", str(foreign), "--data-dir", d)
    assert r.returncode == 1 and "was not issued by the cluster CA" in r.stderr
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate")
    r = kubegate("certs", "revoke", "--cert", str(garbage), "--data-dir", d)
    assert r.returncode == 1 and "does not contain a valid PEM certificate" in r.stderr
    assert CONFIGMAP not in running.ok("get", "configmap", "-n", "kube-system", "-o", "name")


def test_token_create_authenticates_as_bootstrapper(tmp_path: Path) -> None:
    c = Cluster(tmp_path / "data", ["--enable-bootstrap-token-auth"]).start()
    try:
        d = str(c.data_dir)
        r = kubegate("token", "create", "--data-dir", d, "--description", "e2e")
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip()
        assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token)
        token_id = token.split(".")[0]
        secret = c.ok("get", "secret", "-n", "kube-system", f"bootstrap-token-{token_id}", "-o",
                      "jsonpath={.type} {.data.auth-extra-groups} {.data.usage-bootstrap-authentication}")
        kind, groups, usage = secret.split()
        assert kind == "bootstrap.kubernetes.io/token"
        assert base64.b64decode(groups) == b"system:bootstrappers:kubeadm:default-node-token"
        assert base64.b64decode(usage) == b"true"
        status, _, body = c.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                                    user=None, headers={"Authorization": f"Bearer {token}"})
        assert status == 201, body
        info = body["status"]["userInfo"]
        assert info["username"] == f"system:bootstrap:{token_id}"
        assert info["groups"] == ["system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token",
                                  "system:authenticated"]
        # The same token again, and bad flags, are refused with kubeadm's messages.
        r = kubegate("token", "create", token, "--data-dir", d)
        assert r.returncode == 1 and r.stderr == f'error: a token with id "{token_id}" already exists\n'
        r = kubegate("token", "create", "--data-dir", d, "--usages", "signing,bogus")
        assert r.returncode == 1 and "invalid bootstrap token usage string: bogus" in r.stderr
        r = kubegate("token", "create", "--data-dir", d, "--groups", "system:nodes")
        assert r.returncode == 1 and "bootstrap group 'system:nodes' is invalid" in r.stderr
        r = kubegate("token", "create", "abc.def", "--data-dir", d)
        assert r.returncode == 1 and 'the bootstrap token "abc.def" was not of the form' in r.stderr
    finally:
        c.stop()
