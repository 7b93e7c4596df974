"""Secrets through kubectl, and encryption at rest proven on the SQLite file itself."""
from __future__ import annotations

import base64
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster

KEY1 = base64.b64encode(b"1" * 32).decode()
KEY2 = base64.b64encode(b"2" * 32).decode()
PASSWORD = "kg-s3cret-value-0042"


def _write_config(path: Path, providers: str) -> None:
    path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    f"  - resources: [secrets]\n    providers: {providers}\n")


def _raw(cluster: Cluster) -> bytes:
    """Every byte kubegate keeps on disk: the database file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in sorted(cluster.data_dir.glob("kubegate.db*")))


def _stored(cluster: Cluster, key: str) -> bytes:
    db = sqlite3.connect(cluster.data_dir / "kubegate.db")
    try:
        return db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchall()[0][0]
    finally:
        db.close()


def _replace_all(cluster: Cluster) -> None:
    """upstream's documented rewrite step"""
    out = cluster.ok("get", "secrets", "-A", "-o", "json")
    cluster.ok("replace", "-f", "-", input=out)


def test_kubectl_secrets_of_every_kind(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.ok("-n", ns, "create", "secret", "generic", "db", f"--from-literal=password={PASSWORD}",
               "--from-literal=user=admin")
    got = subprocess.run(
        f"kubectl --kubeconfig {cluster.admin_conf} -n {ns} get secret db -o jsonpath='{{.data.password}}' "
        "| base64 --decode", shell=True, capture_output=True, text=True, check=True)
    assert got.stdout == PASSWORD
    cluster.ok("-n", ns, "create", "secret", "docker-registry", "reg", "--docker-server=r.example.com",
               "--docker-username=u", "--docker-password=p")
    assert cluster.ok("-n", ns, "get", "secret", "reg", "-o", "jsonpath={.type}") == "kubernetes.io/dockerconfigjson"
    key, crt = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=example.com", "-days", "1"],
                   check=True, capture_output=True)
    cluster.ok("-n", ns, "create", "secret", "tls", "web", f"--cert={crt}", f"--key={key}")
    assert base64.b64decode(cluster.ok("-n", ns, "get", "secret", "web", "-o", "jsonpath={.data.tls\\.crt}")) \
        == crt.read_bytes()
    bad = cluster.kubectl("-n", ns, "create", "secret", "generic", "bad", "--from-literal=a b=c")
    assert bad.code != 0 and "a valid config key must consist of alphanumeric characters" in bad.stderr
    cluster.ok("-n", ns, "create", "secret", "generic", "frozen", "--from-literal=k=v")
    cluster.ok("-n", ns, "patch", "secret", "frozen", "-p", '{"immutable":true}')
    r = cluster.kubectl("-n", ns, "patch", "secret", "frozen", "-p", '{"data":{"k":"dw=="}}')
    assert r.code != 0 and "field is immutable when `immutable` is set" in r.stderr


def test_encryption_at_rest_and_switching_providers(fresh_cluster: Cluster, tmp_path: Path) -> None:
    config = tmp_path / "enc.yaml"
    _write_config(config, f"[{{aescbc: {{keys: [{{name: key1, secret: {KEY1}}}]}}}}, {{identity: {{}}}}]")
    c = fresh_cluster
    c.extra_args = ["--encryption-provider-config", str(config)]
    c.start()
    c.ok("create", "secret", "generic", "s1", f"--from-literal=password={PASSWORD}")
    c.ok("create", "configmap", "plain", "--from-literal=note=visible-configmap-value")
    assert base64.b64decode(c.ok("get", "secret", "s1", "-o", "jsonpath={.data.password}")).decode() == PASSWORD
    assert _stored(c, "/registry/secrets/default/s1").startswith(b"k8s:enc:aescbc:v1:key1:")
    raw = _raw(c)
    assert PASSWORD.encode() not in raw and base64.b64encode(PASSWORD.encode()) not in raw
    assert b"visible-configmap-value" in raw  # only the configured resources are encrypted

    # identity -> aescbc happened above; now aescbc -> secretbox (old provider kept for reading)
    c.stop()
    _write_config(config, f"[{{secretbox: {{keys: [{{name: key2, secret: {KEY2}}}]}}}}, "
                          f"{{aescbc: {{keys: [{{name: key1, secret: {KEY1}}}]}}}}]")
    c.start()
    assert base64.b64decode(c.ok("get", "secret", "s1", "-o", "jsonpath={.data.password}")).decode() == PASSWORD
    rv = c.ok("get", "secret", "s1", "-o", "jsonpath={.metadata.resourceVersion}")
    _replace_all(c)  # a stale value is rewritten even though nothing changed
    assert c.ok("get", "secret", "s1", "-o", "jsonpath={.metadata.resourceVersion}") != rv
    assert _stored(c, "/registry/secrets/default/s1").startswith(b"k8s:enc:secretbox:v1:key2:")

    # secretbox -> identity, then drop secretbox: plaintext again, nothing lost
    c.stop()
    _write_config(config, f"[{{identity: {{}}}}, {{secretbox: {{keys: [{{name: key2, secret: {KEY2}}}]}}}}]")
    c.start()
    _replace_all(c)
    c.stop()
    _write_config(config, "[{identity: {}}]")
    c.start()
    assert base64.b64decode(c.ok("get", "secret", "s1", "-o", "jsonpath={.data.password}")).decode() == PASSWORD
    assert _stored(c, "/registry/secrets/default/s1").startswith(b"{")
    c.stop()


def test_bad_config_refuses_to_start_and_tampered_ciphertext_is_that_objects_500(fresh_cluster: Cluster,
                                                                                   tmp_path: Path) -> None:
    config = tmp_path / "enc.yaml"
    _write_config(config, "[{aesgcm: {keys: [{name: k, secret: c2hvcnQ=}]}}]")
    c = fresh_cluster
    c.extra_args = ["--encryption-provider-config", str(config)]
    with pytest.raises(RuntimeError, match="secret is not of the expected length, got 5, expected one of"):
        c.start()
    _write_config(config, f"[{{aesgcm: {{keys: [{{name: k, secret: {KEY1}}}]}}}}]")
    c.start()
    c.ok("create", "secret", "generic", "s1", f"--from-literal=password={PASSWORD}")
    c.ok("create", "secret", "generic", "s2", f"--from-literal=password={PASSWORD}")
    c.stop()
    key = "/registry/secrets/default/s1"
    value = bytearray(_stored(c, key))
    value[-3] ^= 0x01
    with sqlite3.connect(c.data_dir / "kubegate.db") as db:
        db.execute("UPDATE kv SET value = ? WHERE key = ?", (bytes(value), key))
    c.start()  # one unreadable object does not take the server down
    code, _, body = c.request("GET", "/api/v1/namespaces/default/secrets/s1")
    msg = (f"StorageError: corrupt object, Code: 7, Key: {key}, ResourceVersion: 0, "
           "AdditionalErrorMsg: cipher: message authentication failed")
    assert code == 500 and body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                    "message": f"Internal error occurred: {msg}", "reason": "InternalError",
                                    "details": {"causes": [{"message": msg}]}, "code": 500}
    assert base64.b64decode(c.ok("get", "secret", "s2", "-o", "jsonpath={.data.password}")).decode() == PASSWORD
    r = c.kubectl("get", "secret", "s1")
    assert r.code != 0 and "corrupt object" in r.stderr
    c.ok("create", "secret", "generic", "s3", "--from-literal=k=v")  # writes go on
    c.stop()
    log = c.log.read_text()
    # answered as a Status, not through the catch-all for bugs (which logs "internal error serving")
    assert PASSWORD not in log and "internal error serving" not in log
