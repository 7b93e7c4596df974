"""`kubegate secrets-encrypt`: rotation while serving, kill -9 and resume, status, reencrypt."""
from __future__ import annotations

import asyncio
import base64
import json
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import yaml

from tests.e2e.cluster import Cluster

KEY1 = base64.b64encode(b"1" * 32).decode()
KEY2 = base64.b64encode(b"2" * 32).decode()
NS = "rot"
COUNT = 2000


def _config(path: Path, providers: str) -> Path:
    path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    f"  - resources: [secrets]\n    providers: {providers}\n")
    return path


def _start(tmp: Path, config: Path, reload: bool = True) -> Cluster:
    args = ["--encryption-provider-config", str(config)]
    return Cluster(tmp / "data", args + (["--encryption-provider-config-automatic-reload"] if reload else [])).start()


def _cli(c: Cluster, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubegate.cli.main", "secrets-encrypt", args[0], "--data-dir",
                           str(c.data_dir), "--encryption-provider-config", str(config), *args[1:]],
                          capture_output=True, text=True, timeout=300)


def _popen(c: Cluster, config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kubegate.cli.main", "secrets-encrypt", args[0], "--data-dir",
                             str(c.data_dir), "--encryption-provider-config", str(config), *args[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _create_secrets(c: Cluster, n: int) -> None:
    c.ok("create", "namespace", NS)

    async def run() -> None:
        ctx = ssl.create_default_context(cafile=c.ca)
        ctx.load_cert_chain(*c.admin_pair())
        it = iter(range(n))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=16)) as s:
            async def worker() -> None:
                for i in it:
                    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i:05d}"},
                            "stringData": {"password": f"pw-{i}"}}
                    async with s.post(f"{c.url}/api/v1/namespaces/{NS}/secrets", json=body) as r:
                        assert r.status == 201, await r.text()
            await asyncio.gather(*(worker() for _ in range(16)))
    asyncio.run(run())


def _secrets(c: Cluster) -> dict[str, tuple[str, str]]:
    """name -> (password, resourceVersion), read through the API."""
    items = json.loads(c.ok("-n", NS, "get", "secrets", "-o", "json"))["items"]
    return {i["metadata"]["name"]: (base64.b64decode(i["data"]["password"]).decode(), i["metadata"]["resourceVersion"])
            for i in items}


def _stored_prefixes(c: Cluster) -> tuple[list[bytes], list[bytes]]:
    """The first 40 bytes of every stored secret and of every change-log entry for secrets."""
    db = sqlite3.connect(f"file:{c.data_dir / 'kubegate.db'}?mode=ro", uri=True)
    try:
        kv = [v[:40] for (v,) in db.execute("SELECT value FROM kv WHERE key LIKE '/registry/secrets/%'")]
        log = [v[:40] for row in db.execute("SELECT value, prev_value FROM log WHERE key LIKE '/registry/secrets/%'")
               for v in row if v is not None]
    finally:
        db.close()
    return kv, log


def _status(c: Cluster, config: Path) -> dict[str, int]:
    r = _cli(c, config, "status")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[1:] if line.startswith("secrets ")]
    return {row[1]: int(row[2]) for row in rows}


def _keys(config: Path) -> list[str]:
    doc = yaml.safe_load(config.read_text())
    return [f"{t}:{k['name']}" for p in doc["resources"][0]["providers"] for t, body in p.items()
            for k in (body or {}).get("keys", [])]


def _assert_rotated(c: Cluster, config: Path, expected: dict[str, str]) -> str:
    """Every secret has its value, only the new key remains, every stored byte uses it. Returns it."""
    keys = _keys(config)
    assert len(keys) == 1 and keys[0] != "aescbc:key1", keys
    assert not Path(str(config) + ".rotation.json").exists()
    assert {k: v[0] for k, v in _secrets(c).items()} == expected
    assert _status(c, config) == {keys[0]: len(expected)}
    prefix = b"k8s:enc:" + keys[0].replace(":", ":v1:").encode() + b":"
    kv, log = _stored_prefixes(c)
    assert len(kv) == len(expected) and all(v.startswith(prefix) for v in kv)
    assert log and all(v.startswith(prefix) for v in log)  # history too: old watches still decrypt
    return keys[0]


def test_rotate_while_serving_under_concurrent_writes(tmp_path: Path) -> None:
    config = _config(tmp_path / "enc.yaml", f"[{{aescbc: {{keys: [{{name: key1, secret: {KEY1}}}]}}}}, {{identity: {{}}}}]")
    c = _start(tmp_path, config)
    try:
        _create_secrets(c, COUNT)
        before = _secrets(c)
        assert _status(c, config) == {"aescbc:key1": COUNT}
        expected = {k: v[0] for k, v in before.items()}
        stop = threading.Event()
        written: list[int] = []

        def writer() -> None:  # a client keeps changing one secret and adding others during the rotation
            i = 0
            while not stop.is_set():
                c.ok("-n", NS, "create", "secret", "generic", f"live-{i}", f"--from-literal=password=live-{i}")
                c.ok("-n", NS, "patch", "secret", "s00007", "-p",
                     json.dumps({"data": {"password": base64.b64encode(f"changed-{i}".encode()).decode()}}))
                written.append(i)
                i += 1
        t = threading.Thread(target=writer)
        t.start()
        try:
            r = _cli(c, config, "rotate")
        finally:
            stop.set()
            t.join()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "rotation complete" in r.stdout and "re-encrypted and verified" in r.stderr
        assert written, "the concurrent writer never ran"
        expected["s00007"] = f"changed-{written[-1]}"
        expected.update({f"live-{i}": f"live-{i}" for i in written})
        _assert_rotated(c, config, expected)
        after = _secrets(c)
        # the bytes moved, the objects did not: only the one the server rewrote to prove its writer
        # (and the one the client patched) has a new resourceVersion
        changed = [k for k, v in before.items() if after[k][1] != v[1]]
        assert len(changed) <= 2 and set(changed) - {"s00007"} <= {"s00000"}, changed
        c.stop()
        c.start()  # the server starts only if it decrypts everything with the retired config
        assert {k: v[0] for k, v in _secrets(c).items()} == expected
    finally:
        c.stop()


def test_kill_9_mid_rotation_then_resume(tmp_path: Path) -> None:
    config = _config(tmp_path / "enc.yaml", f"[{{aescbc: {{keys: [{{name: key1, secret: {KEY1}}}]}}}}]")
    c = _start(tmp_path, config)
    try:
        _create_secrets(c, COUNT)
        expected = {k: v[0] for k, v in _secrets(c).items()}
        p = _popen(c, config, "rotate", "--batch-size", "1")
        state = Path(str(config) + ".rotation.json")
        mixed = None
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            if state.exists():
                counts = {}
                for v in _stored_prefixes(c)[0]:
                    counts[v.startswith(b"k8s:enc:aescbc:v1:key1:")] = counts.get(v.startswith(b"k8s:enc:aescbc:v1:key1:"), 0) + 1
                if counts.get(False, 0) > 10 and counts.get(True, 0) > 10:
                    p.send_signal(signal.SIGKILL)
                    mixed = counts
                    break
            time.sleep(0.005)
        p.wait(30)
        p.stdout and p.stdout.close()
        p.stderr and p.stderr.close()
        assert mixed is not None, "the rotation was not caught half-way"
        assert state.exists() and len(_keys(config)) == 2  # the new writer and key1: both read

        st = _status(c, config)
        assert st["aescbc:key1"] > 0 and sum(st.values()) == COUNT
        assert {k: v[0] for k, v in _secrets(c).items()} == expected
        c.stop(signal.SIGKILL)  # the server dies too, and restarts on the half-rotated store
        c.start()
        assert {k: v[0] for k, v in _secrets(c).items()} == expected

        r = _cli(c, config, "rotate")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "resuming the rotation" in r.stdout
        _assert_rotated(c, config, expected)
    finally:
        c.stop()


def test_without_reload_rotation_waits_then_resumes_after_restart(tmp_path: Path) -> None:
    config = _config(tmp_path / "enc.yaml", f"[{{aescbc: {{keys: [{{name: key1, secret: {KEY1}}}]}}}}]")
    c = _start(tmp_path, config, reload=False)
    try:
        _create_secrets(c, 50)
        expected = {k: v[0] for k, v in _secrets(c).items()}
        r = _cli(c, config, "rotate", "--reload-timeout", "2")
        assert r.returncode == 1
        assert "the server still writes secrets with another key than aescbc:key-" in r.stderr
        assert "--encryption-provider-config-automatic-reload" in r.stderr
        assert _status(c, config) == {_keys(config)[0]: 0, "aescbc:key1": 50}  # nothing moved, all readable
        c.stop()
        c.start()  # now the server reads the config with the new key
        r = _cli(c, config, "rotate")
        assert r.returncode == 0, r.stdout + r.stderr
        _assert_rotated(c, config, expected)
    finally:
        c.stop()


def test_reencrypt_after_a_manual_provider_change_and_status(tmp_path: Path) -> None:
    config = _config(tmp_path / "enc.yaml", f"[{{aescbc: {{keys: [{{name: key1, secret: {KEY1}}}]}}}}]")
    c = _start(tmp_path, config)
    try:
        _create_secrets(c, 100)
        expected = {k: v[0] for k, v in _secrets(c).items()}
        _config(config, f"[{{secretbox: {{keys: [{{name: key2, secret: {KEY2}}}]}}}}, "
                        f"{{aescbc: {{keys: [{{name: key1, secret: {KEY1}}}]}}}}]")
        assert _status(c, config) == {"secretbox:key2": 0, "aescbc:key1": 100}
        r = _cli(c, config, "reencrypt")
        assert r.returncode == 0, r.stdout + r.stderr
        assert _status(c, config) == {"secretbox:key2": 100}
        assert {k: v[0] for k, v in _secrets(c).items()} == expected
        out = _cli(c, config, "status").stdout
        assert out.splitlines()[0].split() == ["RESOURCE", "KEY", "OBJECTS", "WRITER"]
        r = _cli(c, config, "rotate", "--resources", "pods")
        assert r.returncode == 1 and 'resource "pods" is not listed' in r.stderr
    finally:
        c.stop()
