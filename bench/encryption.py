"""Encryption at rest: what each provider costs, and how fast `secrets-encrypt rotate` moves data.

1. Secret GET and CREATE on four servers started in this run, one per provider (identity, aescbc,
   aesgcm, secretbox, each `resources: [secrets]`), through wrk as anonymous with an RBAC grant on
   secrets. Each provider runs against identity in alternating short slices (ABBA), and its ratio
   is the median of adjacent pairs, since the shared machine's load swings within seconds. The
   overhead must stay within 10 % (ratio >= 0.90).
2. `kubegate secrets-encrypt rotate` on the aescbc server, over every secret the CREATE slices left
   there, while that server keeps serving: objects re-encrypted per second (target >= 1,000/s).

Run alone with `.venv/bin/python bench/encryption.py`; `make bench` runs it after bench/run.py's rows.
"""
from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common import abba, standalone  # noqa: E402
from bench.run import DURATION, ROUNDS, wrk  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402

NS = "enc-bench"
PROVIDERS = ("aescbc", "aesgcm", "secretbox")
GRANT = f"""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: bench-anon, namespace: {NS}}}
rules:
- {{apiGroups: [""], resources: [secrets], verbs: [get, create]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: bench-anon, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: bench-anon}}
subjects:
- {{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:unauthenticated"}}
"""
CREATE_LUA = """
request = function()
  local body = '{"apiVersion":"v1","kind":"Secret","metadata":{"generateName":"w-"},' ..
               '"data":{"password":"aHVudGVyMi1odW50ZXIyLWh1bnRlcjI=","user":"YWRtaW4="}}'
  return wrk.format("POST", nil, {["Content-Type"]="application/json"}, body)
end
"""


def _config(path: Path, provider: str) -> Path:
    body = "identity: {}" if provider == "identity" else \
        f"{provider}: {{keys: [{{name: key1, secret: {base64.b64encode(os.urandom(32)).decode()}}}]}}"
    path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    f"  - resources: [secrets]\n    providers: [{{{body}}}]\n")
    return path


def _server(tmp: Path, provider: str) -> Cluster:
    config = _config(tmp / f"enc-{provider}.yaml", provider)
    c = Cluster(tmp / f"enc-{provider}", ["--encryption-provider-config", str(config),
                                           "--encryption-provider-config-automatic-reload"]).start()
    c.config = config  # type: ignore[attr-defined]
    c.ok("create", "namespace", NS)
    c.ok("apply", "-f", "-", input=GRANT)
    c.ok("-n", NS, "create", "secret", "generic", "one", "--from-literal=password=hunter2")
    return c


def _rotate(c: Cluster) -> str:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "kubegate.cli.main", "secrets-encrypt", "rotate", "--data-dir",
                        str(c.data_dir), "--encryption-provider-config", str(c.config)],  # type: ignore[attr-defined]
                       capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    m = re.search(r"secrets: (\d+) objects and (\d+) history entries re-encrypted and verified in ([\d.]+)s "
                  r"\(([\d,]+) objects/s; ([\d.]+)s waiting", r.stderr)
    if r.returncode != 0 or not m:
        return f"{'secrets-encrypt rotate':<40} failed: {r.stdout}{r.stderr}"
    n, hist, secs, rate, wait = m.groups()
    return (f"{'secrets-encrypt rotate (aescbc, serving)':<40} {rate:>9} secrets/s  ({n} secrets + {hist} history "
            f"entries in {secs}s; {wait}s for the server's reload; {wall:.1f}s end to end; target >= 1,000/s)")


def run(tmp: Path) -> list[str]:
    servers = {p: _server(tmp, p) for p in ("identity", *PROVIDERS)}
    rows: list[str] = []
    try:
        lua = tmp / "create-secret.lua"
        lua.write_text(CREATE_LUA)
        slice_s, pairs = max(1, DURATION // 3), 2 * ROUNDS
        for name, path, script in (("GET secret", f"/api/v1/namespaces/{NS}/secrets/one", None),
                                   ("CREATE secret", f"/api/v1/namespaces/{NS}/secrets", str(lua))):
            for p in PROVIDERS:
                t, b, ratio = abba(lambda: wrk(servers[p].url + path, script, slice_s)["rps"],
                                   lambda: wrk(servers["identity"].url + path, script, slice_s)["rps"], pairs)
                rows.append(f"{name + ' ' + p:<40} {t:>9.0f} req/s   | identity {b:>9.0f}   ratio {ratio:4.2f} "
                            "(must be >= 0.90)")
                print(rows[-1], flush=True)
        rows.append(_rotate(servers["aescbc"]))
        print(rows[-1], flush=True)
    finally:
        for c in servers.values():
            c.stop()
    return rows


def main() -> None:
    standalone(run, "kubegate-encryption-bench-")


if __name__ == "__main__":
    main()
