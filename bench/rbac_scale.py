"""RBAC at scale: GET/s for a user bound by one RoleBinding with 10 other bindings in the cluster,
and with 2,000 ClusterRoleBindings and 5,000 RoleBindings (in the same namespace, the worst case
for an evaluator that scans bindings) for other subjects, in one run (two servers, alternating
short slices); the ratio must stay >= 0.9 (upstream kube-apiserver on this kind of machine: 0.35). Also
who-can latency at that size. Run alone with `python bench/rbac_scale.py`; `make bench` runs it after bench/run.py's rows.
"""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import WORKERS, Load, compare, get_ok, row, session, standalone, tls_context  # noqa: E402
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
    queue = list(reversed(items))
    async with session(tls_context(c, c.admin_pair())) as s:
        async def worker() -> None:
            while queue:
                path, body = queue.pop()
                async with s.post(c.url + path, json=body) as r:
                    assert r.status == 201, await r.text()
        await asyncio.gather(*(worker() for _ in range(WORKERS)))


def _load(c: Cluster) -> Load:
    return Load(tls_context(c, c.user_cert(USER)), get_ok(f"{c.url}/api/v1/namespaces/{NS}/configmaps/one"))


async def _who_can_ms(c: Cluster, n: int = 20) -> tuple[float, int]:
    body = {"apiVersion": "kubegate.dev/v1alpha1", "kind": "WhoCanReview",
            "spec": {"verb": "get", "resource": "configmaps", "namespace": NS}}
    times: list[float] = []
    found = 0
    async with session(tls_context(c, c.admin_pair())) as s:
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
        # measured right after the bulk writes (the store needs no settling time), in back-to-back
        # slices: only slices measured next to each other see the same machine noise
        with _load(large_c) as a, _load(small_c) as b:
            large, small, ratio = compare(a, b, ROUNDS * 5, DURATION / 5)
        who_ms, subjects = asyncio.run(_who_can_ms(large_c))
        rows += [
            row("GET as RoleBinding user, 10 other bindings", small, "req/s"),
            row("  same, +2,000 CRBs +5,000 RBs (others)", large, "req/s")
            + f"   ratio {ratio:4.2f} (must be >= 0.90; upstream 0.35)",
            f"{'  setup incl. 7,000 bindings through the API':<48} {created_s:>8.1f} s",
            f"{'  who-can get configmaps at that size':<48} {who_ms:>8.1f} ms median ({subjects} subjects)",
        ]
        for line in rows:
            print(line, flush=True)
    finally:
        small_c.stop()
        large_c.stop()
    return rows


def main() -> None:
    standalone(run, "kubegate-rbac-bench-")


if __name__ == "__main__":
    main()
