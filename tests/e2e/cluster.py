"""A real `kubegate up` on a free loopback port with a temporary data dir, and ways to drive it."""
from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from kubegate.pki import certs
from kubegate.pki.kubeconfig import write_kubeconfig
from tests.fixtures import GOLDENS

KUBECTL = "/usr/bin/kubectl"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


class Cluster:
    def __init__(self, data_dir: Path, extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.log = data_dir.parent / f"{data_dir.name}.log"
        self.cache_dir = data_dir.parent / f"{data_dir.name}-kubectl-cache"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> "Cluster":
        args = [sys.executable, "-m", "kubegate.cli.main", "up", "--data-dir", str(self.data_dir),
                "--secure-port", str(self.port or 0), *self.extra_args]
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=logf, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"kubegate exited early:\n{self.log.read_text()}")
            if line.startswith("kubegate is ready on "):
                self.port = int(line.rsplit(":", 1)[1])
                self.proc.stdout.readline()  # the export KUBECONFIG line
                return self
        raise RuntimeError("kubegate did not become ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.data_dir / "pki" / "ca.crt")

    @property
    def admin_conf(self) -> str:
        return str(self.data_dir / "admin.conf")

    # -- identities --------------------------------------------------------------------------

    def user_cert(self, user: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
        """A client certificate signed by the cluster CA for `user` in `groups`; returns (crt, key) paths."""
        pki = self.data_dir / "pki"
        ca_cert, ca_key = certs.load_pair(pki / "ca.crt", pki / "ca.key")
        key = certs.new_key("ecdsa")
        cert = certs.issue(ca_cert, ca_key, cn=user, orgs=groups, client=True, key=key)
        safe = user.replace(":", "_")
        crt_path = self.data_dir.parent / f"{safe}.crt"
        key_path = self.data_dir.parent / f"{safe}.key"
        crt_path.write_bytes(certs.cert_pem(cert))
        key_path.write_bytes(certs.key_pem(key))
        return str(crt_path), str(key_path)

    def kubeconfig_for(self, user: str, groups: tuple[str, ...] = ()) -> str:
        crt, key = self.user_cert(user, groups)
        path = self.data_dir.parent / f"{user.replace(':', '_')}.conf"
        if path.exists():
            path.unlink()
        write_kubeconfig(path, server=self.url, ca_pem=Path(self.ca).read_bytes(), cluster="kubernetes",
                         user=user, client_cert_pem=Path(crt).read_bytes(), client_key_pem=Path(key).read_bytes())
        return str(path)

    # -- clients -----------------------------------------------------------------------------

    def kubectl(self, *args: str, kubeconfig: str | None = None, input: str | None = None,
                timeout: float = 60) -> Result:
        env = dict(os.environ, KUBECONFIG=kubeconfig or self.admin_conf, HOME=str(self.cache_dir))
        p = subprocess.run([KUBECTL, "--cache-dir", str(self.cache_dir), *args], capture_output=True, text=True,
                           env=env, input=input, timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)

    def ok(self, *args: str, **kw: Any) -> str:
        r = self.kubectl(*args, **kw)
        assert r.code == 0, f"kubectl {' '.join(args)} failed ({r.code}):\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def curl(self, path: str, *args: str, user: tuple[str, str] | None = None, admin: bool = True) -> Result:
        cmd = ["curl", "-sS", "--cacert", self.ca, "-w", "\n%{http_code}"]
        if user is not None:
            cmd += ["--cert", user[0], "--key", user[1]]
        elif admin:
            crt, key = self.admin_pair()
            cmd += ["--cert", crt, "--key", key]
        cmd += [*args, self.url + path]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        body, _, code = p.stdout.rpartition("\n")
        return Result(int(code or 0), body, p.stderr)

    def admin_pair(self) -> tuple[str, str]:
        crt = self.data_dir.parent / f"{self.data_dir.name}-admin.crt"
        key = self.data_dir.parent / f"{self.data_dir.name}-admin.key"
        if not crt.exists():
            import base64
            import yaml
            kc = yaml.safe_load(Path(self.admin_conf).read_text())
            u = kc["users"][0]["user"]
            crt.write_bytes(base64.b64decode(u["client-certificate-data"]))
            key.write_bytes(base64.b64decode(u["client-key-data"]))
        return str(crt), str(key)

    def ssl_context(self, user: tuple[str, str] | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca)
        if user is not None:
            ctx.load_cert_chain(*user)
        return ctx

    def request(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                user: tuple[str, str] | None | str = "admin", raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
        """One HTTP exchange; returns (status, headers, parsed JSON body or text)."""
        pair = self.admin_pair() if user == "admin" else user
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Accept": "application/json"}
        if data is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        ctx = self.ssl_context(pair if isinstance(pair, tuple) else None)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                status, rh, payload = resp.status, _headers(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            status, rh, payload = e.code, _headers(e.headers), e.read()
        try:
            parsed: Any = json.loads(payload)
        except ValueError:
            parsed = payload.decode(errors="replace")
        return status, rh, parsed


def _headers(h: Any) -> dict[str, str]:
    """Repeated headers (Warning) joined with ", " instead of keeping only the last one."""
    return {k: ", ".join(h.get_all(k)) for k in dict.fromkeys(h.keys())}


def golden(path: str) -> dict[str, Any]:
    return json.loads((GOLDENS / path).read_text())


def private_key_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
