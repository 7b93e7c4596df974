"""`make bench`: load against real kubegate servers over TLS on loopback.

Each scenario runs against two servers started in this same run, one with the full chain
(x509/anonymous authentication + RBAC) and one with --authorization-mode=AlwaysAllow, and prints
requests/s, p50/p99 and the ratio full/AlwaysAllow, so noise on a shared machine cancels out.

Load comes from wrk (HTTP/1.1 keep-alive, 50 connections, pinned to the other core where
possible). wrk cannot present client certificates, so the wrk scenarios run as system:anonymous,
which RBAC grants read/create on configmaps in the bench namespace: authentication, the RBAC
subject index and rule matching all run on every request. A Python client with the admin
certificate measures the x509 path too. Watch fan-out opens 1,000 watches and measures how fast
each event reaches all of them.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Load, get_ok, session, tls_context  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402

DURATION = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 50
NS = "bench"

GRANT = """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: bench-anon, namespace: bench}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bench-anon, namespace: bench}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: bench-anon}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:unauthenticated"}
"""

CREATE_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"w-"},"data":{"k":"v"}}'
  return wrk.format("POST", nil, {["Content-Type"]="application/json"}, body)
end
"""


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("installing wrk (Debian package) ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    path = shutil.which("wrk")
    if not path:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        path = shutil.which("wrk")
    if not path:
        sys.exit("wrk is needed for make bench (apt-get install wrk)")
    return path


def _pin(cmd: list[str], cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1 \
        else cmd


def wrk(url: str, script: str | None = None, duration: int = DURATION) -> dict[str, float]:
    cmd = [ensure_wrk(), "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(_pin(cmd + [url], 1), capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": _ms(lat.get("50", "0ms")), "p99_ms": _ms(lat.get("99", "0ms")),
            "errors": float(non2xx.group(1)) if non2xx else 0.0}


def _ms(s: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    if not m:
        return 0.0
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def start(tmp: Path, name: str, extra: list[str]) -> Cluster:
    c = Cluster(tmp / name, extra)
    t0 = time.monotonic()
    c.start()
    c.startup_ms = (time.monotonic() - t0) * 1000  # type: ignore[attr-defined]
    c.ok("create", "namespace", NS)
    c.ok("apply", "-f", "-", input=GRANT)
    c.ok("-n", NS, "create", "configmap", "one", "--from-literal=k=v")
    manifests = "\n---\n".join(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: item-{i:03d}, namespace: {NS}}}\ndata: {{k: v{i}}}"
        for i in range(100))
    c.ok("apply", "-f", "-", input=manifests)
    return c


def _x509_get(c: Cluster, seconds: float) -> dict[str, float]:
    with Load(tls_context(c, c.admin_pair()), get_ok(f"{c.url}/api/v1/namespaces/{NS}/configmaps/one")) as load:
        load.slice(seconds)
        return load.stats()


async def _fanout(c: Cluster, watchers: int = 1000, events: int = 20) -> dict[str, float]:
    """Open `watchers` watches, then create `events` objects; time until every watcher saw each one."""
    import aiohttp
    # A fresh label per run, so a second fan-out on the same server starts from nothing; like an
    # informer, each watcher lists once and watches from that resourceVersion.
    label = f"run{time.monotonic_ns()}"
    created: dict[str, float] = {}
    seen: dict[str, list[float]] = {}
    ready = 0
    all_ready = asyncio.Event()
    async with session(tls_context(c, c.admin_pair()), limit=0) as s:
        async with s.get(f"{c.url}/api/v1/namespaces/{NS}/configmaps?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        url = (f"{c.url}/api/v1/namespaces/{NS}/configmaps?watch=true&resourceVersion={rv}"
               f"&labelSelector=fan%3D{label}")

        async def watcher() -> None:
            nonlocal ready
            async with s.get(url, timeout=aiohttp.ClientTimeout(total=120)) as r:
                ready += 1
                if ready == watchers:
                    all_ready.set()
                n = 0
                async for line in r.content:
                    ev = json.loads(line)
                    name = ev["object"]["metadata"]["name"]
                    seen.setdefault(name, []).append(time.perf_counter())
                    n += 1
                    if n == events:
                        return
        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 120)
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        for _ in range(events):
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"generateName": "fan-", "labels": {"fan": label}}}
            t = time.perf_counter()
            async with s.post(f"{c.url}/api/v1/namespaces/{NS}/configmaps", json=body) as r:
                assert r.status == 201, await r.text()
                created[(await r.json())["metadata"]["name"]] = t
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        total = time.perf_counter() - t0
    lat = sorted(max(ts) - created[n] for n, ts in seen.items())
    delivered = sum(len(ts) for ts in seen.values())
    return {"rps": delivered / total, "p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": lat[-1] * 1000}


def _rounds(run_full: Callable[[], dict[str, float]],
            run_base: Callable[[], dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Alternate the two servers ROUNDS times and keep each side's median run: machine noise
    hits both sides alike instead of whichever happened to run during a burst."""
    fulls, bases = [], []
    for _ in range(ROUNDS):
        fulls.append(run_full())
        bases.append(run_base())

    def median(runs: list[dict[str, float]]) -> dict[str, float]:
        return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return median(fulls), median(bases)


def fmt(name: str, full: dict[str, float], base: dict[str, float], unit: str = "req/s", *,
        base_name: str = "AlwaysAllow", ratio: float | None = None) -> str:
    """A row: `ratio` defaults to the ratio of the two rates."""
    if ratio is None:
        ratio = full["rps"] / base["rps"] if base["rps"] else 0.0
    return (f"{name:<34} {full['rps']:>9.0f} {unit:<9} p50 {full['p50_ms']:>6.2f} ms  p99 {full['p99_ms']:>7.2f} ms"
            f"   | {base_name} {base['rps']:>9.0f}   ratio {ratio:4.2f}")


def main() -> None:
    from bench import admission, authn_tokens, encryption, netpol, podsecurity, rbac_scale
    netpol.main()  # in-process, so it runs before any server starts
    podsecurity.main()
    tmp = Path(tempfile.mkdtemp(prefix="kubegate-bench-"))
    full = start(tmp, "full", [])
    base = start(tmp, "allow", ["--authorization-mode=AlwaysAllow"])
    print(f"startup to ready on an empty data dir: full {full.startup_ms:.0f} ms, "  # type: ignore[attr-defined]
          f"AlwaysAllow {base.startup_ms:.0f} ms (process start included)")
    rows = []
    try:
        lua = tmp / "create.lua"
        lua.write_text(CREATE_LUA)
        scenarios = [
            ("GET one object (anonymous+RBAC)", f"/api/v1/namespaces/{NS}/configmaps/one", None),
            ("LIST 100 objects (anonymous+RBAC)", f"/api/v1/namespaces/{NS}/configmaps?limit=100", None),
            ("CREATE (anonymous+RBAC)", f"/api/v1/namespaces/{NS}/configmaps", str(lua)),
        ]
        for name, path, script in scenarios:
            a, b = _rounds(lambda: wrk(full.url + path, script), lambda: wrk(base.url + path, script))
            rows.append(fmt(name, a, b))
            print(rows[-1], flush=True)
        a, b = _rounds(lambda: _x509_get(full, DURATION), lambda: _x509_get(base, DURATION))
        rows.append(fmt("GET one object (x509 client cert)", a, b))
        print(rows[-1], flush=True)
        for row in authn_tokens.main(full, ROUNDS, DURATION):  # SA token vs client cert, full server
            rows.append(row)
            print(row, flush=True)
        a = asyncio.run(_fanout(full))
        b = asyncio.run(_fanout(base))
        rows.append(fmt("watch fan-out 1,000 watchers", a, b, "events/s"))
        print(rows[-1], flush=True)
        rows += rbac_scale.run(tmp)
        rows += admission.run(tmp)
        rows += encryption.run(tmp)
    finally:
        full.stop()
        base.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
