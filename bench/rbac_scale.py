"""RBAC at scale: GET/s for a user bound by one RoleBinding with 10 other bindings in the cluster,
and with 2,000 ClusterRoleBindings and 5,000 RoleBindings (in the same namespace, the worst case
for an evaluator that scans bindings) for other subjects, in one run (two servers, alternating
short slices); the ratio must stay >= 0.9 (upstream kube-apiserver on this kind of machine: 0.35). Also
who-can latency at that size. Run alone with `python bench/rbac_scale.py`; `make bench` runs it after bench/run.py's rows.
"""
from __future__ import annotations

import asyncio
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import DURATION, ROUNDS  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402

NS = "rbac-bench"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
USER = "bench-user"


def _binding(kind: str, name: str, role_kind: str, role: str, subject: str, ns: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": subject}]}


async def _create_all(c: Cluster, items: list[tuple[str, dict[str, Any]]]) -> None:
    import aiohttp
    ctx = ssl.create_default_context(cafile=c.ca)
    ctx.load_cert_chain(*c.admin_pair())
    queue = list(reversed(items))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=20)) as s:
        async def worker() -> None:
            while queue:
                path, body = queue.pop()
                async with s.post(c.url + path, json=body) as r:
                    assert r.status == 201, await r.text()
        await asyncio.gather(*(worker() for _ in range(20)))


async def _get_slice(s: Any, url: str, seconds: float, lat: list[float]) -> float:
    """GETs from 20 workers on `s`'s open connections for `seconds`; returns req/s."""
    n = len(lat)
    stop = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            async with s.get(url) as r:
                await r.read()
                assert r.status == 200, r.status
            lat.append(time.perf_counter() - t)
    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(20)))
    return (len(lat) - n) / (time.monotonic() - t0)


async def _compare_gets(small: Cluster, large: Cluster, pairs: int,
                        seconds: float) -> tuple[dict[str, float], dict[str, float], float]:
    """GET req/s of both servers in `pairs` back-to-back slices (ABBA order, connections kept
    open), and the median of the per-pair ratios: the shared machine's load changes within
    seconds, so only slices measured next to each other see the same noise."""
    import aiohttp
    sides: list[dict[str, Any]] = []
    for c in (small, large):
        ctx = ssl.create_default_context(cafile=c.ca)
        ctx.load_cert_chain(*c.user_cert(USER))
        sides.append({"s": aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=20)),
                      "url": f"{c.url}/api/v1/namespaces/{NS}/configmaps/one", "lat": [], "rps": []})
    ratios: list[float] = []
    try:
        for side in sides:  # open the connections outside the measurement
            await _get_slice(side["s"], side["url"], 0.2, [])
        for i in range(pairs):
            for side in (sides if i % 2 == 0 else sides[::-1]):
                side["rps"].append(await _get_slice(side["s"], side["url"], seconds, side["lat"]))
            ratios.append(sides[1]["rps"][-1] / sides[0]["rps"][-1])
    finally:
        for side in sides:
            await side["s"].close()
    out = []
    for side in sides:
        lat, rps = sorted(side["lat"]), sorted(side["rps"])
        out.append({"rps": rps[len(rps) // 2], "p50_ms": lat[len(lat) // 2] * 1000,
                    "p99_ms": lat[int(len(lat) * 0.99)] * 1000})
    ratios.sort()
    return out[0], out[1], ratios[len(ratios) // 2]


async def _who_can_ms(c: Cluster, n: int = 20) -> tuple[float, int]:
    import aiohttp
    ctx = ssl.create_default_context(cafile=c.ca)
    ctx.load_cert_chain(*c.admin_pair())
    body = {"apiVersion": "kubegate.dev/v1alpha1", "kind": "WhoCanReview",
            "spec": {"verb": "get", "resource": "configmaps", "namespace": NS}}
    times: list[float] = []
    found = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        for _ in range(n):
            t = time.perf_counter()
            async with s.post(f"{c.url}/apis/kubegate.dev/v1alpha1/whocanreviews", json=body) as r:
                doc = await r.json()
                assert r.status == 201, doc
            times.append(time.perf_counter() - t)
            found = len(doc["status"]["subjects"])
    times.sort()
    return times[len(times) // 2] * 1000, found


def _setup(c: Cluster, others: int) -> None:
    c.ok("create", "namespace", NS)
    c.ok("-n", NS, "create", "configmap", "one", "--from-literal=k=v")
    c.ok("-n", NS, "create", "role", "reader", "--verb=get", "--resource=configmaps")
    c.ok("-n", NS, "create", "rolebinding", "bench-user", "--role=reader", f"--user={USER}")
    c.ok("create", "clusterrole", "bench-other", "--verb=get", "--resource=secrets")
    items = [(f"{RBAC}/namespaces/{NS}/rolebindings",
              _binding("RoleBinding", f"few-{i}", "ClusterRole", "bench-other", f"few-{i}", NS)) for i in range(10)]
    if others:
        items += [(f"{RBAC}/clusterrolebindings", _binding("ClusterRoleBinding", f"other-{i}", "ClusterRole",
                                                           "bench-other", f"other-crb-{i}")) for i in range(2000)]
        items += [(f"{RBAC}/namespaces/{NS}/rolebindings", _binding("RoleBinding", f"other-{i}", "ClusterRole",
                                                                    "bench-other", f"other-rb-{i}", NS))
                  for i in range(5000)]
    asyncio.run(_create_all(c, items))


def run(tmp: Path) -> list[str]:
    """Two servers in this run, one with 10 other bindings and one with 7,010, measured in
    alternating short slices right after the bulk writes (median of the per-pair ratios)."""
    small_c = Cluster(tmp / "rbac-10").start()
    large_c = Cluster(tmp / "rbac-7000").start()
    rows: list[str] = []
    try:
        _setup(small_c, 0)
        t0 = time.monotonic()
        _setup(large_c, 7000)
        created_s = time.monotonic() - t0
        # measured right after the bulk writes: the store needs no settling time
        small, large, ratio = asyncio.run(_compare_gets(small_c, large_c, ROUNDS * 5, DURATION / 5))
        who_ms, subjects = asyncio.run(_who_can_ms(large_c))
        rows += [
            f"{'GET as RoleBinding user, 10 other bindings':<48} {small['rps']:>8.0f} req/s  p50 {small['p50_ms']:6.2f} ms"
            f"  p99 {small['p99_ms']:7.2f} ms",
            f"{'  same, +2,000 CRBs +5,000 RBs (others)':<48} {large['rps']:>8.0f} req/s  p50 {large['p50_ms']:6.2f} ms"
            f"  p99 {large['p99_ms']:7.2f} ms   ratio {ratio:4.2f} (must be >= 0.90; upstream 0.35)",
            f"{'  setup incl. 7,000 bindings through the API':<48} {created_s:>8.1f} s",
            f"{'  who-can get configmaps at that size':<48} {who_ms:>8.1f} ms median ({subjects} subjects)",
        ]
        for row in rows:
            print(row, flush=True)
    finally:
        small_c.stop()
        large_c.stop()
    return rows


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kubegate-rbac-bench-"))
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
