"""KMS v2 end to end: `kubegate kms-plugin` as its own process, the server encrypting secrets through it,
the kms-providers health check, a plugin that is down (writes fail with upstream's 500, health names it)
and that comes back (everything recovers without a restart)."""
from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster

PASSWORD = "kms-e2e-hunter2"


class Plugin:
    def __init__(self, tmp_path: Path) -> None:
        self.socket = tmp_path / "kms.sock"
        self.key_file = tmp_path / "kms-keys"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "kubegate.cli.main", "kms-plugin", "--socket",
                                      str(self.socket), "--key-file", str(self.key_file)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.socket.exists():
                return
            time.sleep(0.05)
        raise RuntimeError("kms plugin did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[Plugin]:
    p = Plugin(tmp_path)
    p.start()
    yield p
    p.stop()


def _config(path: Path, plugin: Plugin) -> None:
    path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    "  - resources: [secrets]\n    providers:\n"
                    f"      - kms: {{apiVersion: v2, name: local, endpoint: 'unix://{plugin.socket}', timeout: 2s}}\n"
                    "      - identity: {}\n")


def _stored(c: Cluster, key: str) -> bytes:
    with sqlite3.connect(c.data_dir / "kubegate.db") as db:
        return bytes(db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()[0])


def _password(c: Cluster, name: str) -> str:
    return base64.b64decode(c.ok("get", "secret", name, "-o", "jsonpath={.data.password}")).decode()


def _until(check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.3)


def test_secrets_encrypted_through_the_plugin_and_health(fresh_cluster: Cluster, plugin: Plugin,
                                                         tmp_path: Path) -> None:
    config = tmp_path / "enc.yaml"
    _config(config, plugin)
    c = fresh_cluster
    c.extra_args = ["--encryption-provider-config", str(config)]
    c.start()
    c.ok("create", "secret", "generic", "s1", f"--from-literal=password={PASSWORD}")
    assert _password(c, "s1") == PASSWORD
    assert _stored(c, "/registry/secrets/default/s1").startswith(b"k8s:enc:kms:v2:local:")
    raw = (c.data_dir / "kubegate.db").read_bytes()
    assert PASSWORD.encode() not in raw and base64.b64encode(PASSWORD.encode()) not in raw
    r = c.curl("/healthz/kms-providers")
    assert (r.code, r.stdout) == (200, "ok")
    assert "[+]kms-providers ok" in c.curl("/readyz?verbose").stdout

    c.stop()  # a restarted server has no data key cached: it asks the plugin to decrypt it
    c.start()
    assert _password(c, "s1") == PASSWORD
    c.stop()


def test_plugin_down_fails_writes_and_health_then_recovers(fresh_cluster: Cluster, plugin: Plugin,
                                                           tmp_path: Path) -> None:
    config = tmp_path / "enc.yaml"
    _config(config, plugin)
    c = fresh_cluster
    c.extra_args = ["--encryption-provider-config", str(config)]
    c.start()
    c.ok("create", "secret", "generic", "s1", f"--from-literal=password={PASSWORD}")
    c.stop()

    plugin.stop()
    c.start()  # the plugin may start after the server, as upstream allows
    r = c.curl("/healthz/kms-providers")
    assert r.code == 500 and r.stdout.startswith(
        "internal server error: kms-provider-0: failed to perform status section of the healthz check for KMS "
        "Provider local, error: rpc error: code = Unavailable desc = ")
    assert c.curl("/healthz").code == 500 and "[-]kms-providers failed: reason withheld" in c.curl("/readyz").stdout
    code, _, body = c.request("POST", "/api/v1/namespaces/default/secrets",
                              {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2"},
                               "stringData": {"password": PASSWORD}})
    assert code == 500 and body["reason"] == "InternalError"
    assert body["message"] == "Internal error occurred: got unexpected nil transformer"
    assert c.kubectl("get", "secret", "s2").code != 0  # nothing half-written
    code, _, body = c.request("GET", "/api/v1/namespaces/default/secrets/s1")
    assert code == 500 and "failed to decrypt DEK, error: rpc error: code = Unavailable" in body["message"]
    c.ok("create", "configmap", "plain", "--from-literal=k=v")  # resources not using the plugin are unaffected

    plugin.start()
    _until(lambda: c.curl("/healthz/kms-providers").code == 200)
    c.ok("create", "secret", "generic", "s2", f"--from-literal=password={PASSWORD}")
    assert _password(c, "s2") == PASSWORD
    _until(lambda: c.request("GET", "/api/v1/namespaces/default/secrets/s1")[0] == 200)
    assert _password(c, "s1") == PASSWORD
    c.stop()
    assert PASSWORD not in c.log.read_text()
