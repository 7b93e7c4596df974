"""Admission cost: CREATE of restricted-compliant pods in a namespace labelled
pod-security.kubernetes.io/enforce=restricted, on a server with upstream's default admission plugins
and on one started with every default plugin disabled, in one run: both servers in alternating short
slices (ABBA order) over open connections, the ratio being the median of adjacent pairs (the shared
machine's load swings within seconds). The ratio must stay >= 0.8. Each server's CPU time per pod
(from /proc, per slice) gives a second ratio, also the median of adjacent pairs: a cost view that the
machine's other load disturbs less than throughput. Also prints the pure Pod Security
fixture rate (bench/podsecurity.py). Run alone with `.venv/bin/python bench/admission.py`; `make bench`
runs it after bench/run.py's rows.
"""
from __future__ import annotations

import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench import podsecurity  # noqa: E402
from bench.common import Load, Request, abba, row, server_cpu_seconds, standalone, tls_context  # noqa: E402
from bench.run import DURATION, ROUNDS  # noqa: E402
from kubegate.admission.chain import DEFAULT_ON  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402

NS = "psa-bench"
_NAMES = itertools.count()
# A pod that passes restricted:latest, so every CREATE is evaluated in full and admitted.
POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"app": "bench"}},
    "spec": {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
             "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                             "securityContext": {"allowPrivilegeEscalation": False,
                                                 "capabilities": {"drop": ["ALL"]}}}]},
}


def _setup(c: Cluster) -> None:
    c.ok("create", "namespace", NS)
    c.ok("label", "namespace", NS, "pod-security.kubernetes.io/enforce=restricted")
    # The ServiceAccount plugin refuses pods until the namespace's default ServiceAccount exists.
    for _ in range(100):
        if c.kubectl("-n", NS, "get", "serviceaccount", "default").code == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("no default ServiceAccount in the bench namespace")


def _create(url: str) -> Request:
    """One CREATE. Names are numbered: random generateName suffixes collide within the tens of
    thousands of pods a run creates."""
    async def create(s: Any) -> None:
        body = {**POD, "metadata": {**POD["metadata"], "name": f"p-{next(_NAMES)}"}}
        async with s.post(url, json=body) as r:
            text = await r.read()
            assert r.status == 201, text[:300]
    return create


def _load(c: Cluster) -> Load:
    return Load(tls_context(c, c.admin_pair()), _create(f"{c.url}/api/v1/namespaces/{NS}/pods"))


def run(tmp: Path) -> list[str]:
    on_c = Cluster(tmp / "admission-on").start()
    off_c = Cluster(tmp / "admission-off",
                    ["--disable-admission-plugins=" + ",".join(sorted(DEFAULT_ON))]).start()
    rows: list[str] = []
    try:
        _setup(on_c)
        _setup(off_c)
        with _load(on_c) as a, _load(off_c) as b:
            a.warm()
            b.warm()
            on_cpu: list[float] = []
            off_cpu: list[float] = []

            def timed(load: Load, c: Cluster, cpu_us: list[float]) -> float:
                n, cpu = len(load.lat), server_cpu_seconds(c)
                rate = load.slice(DURATION / 5)
                cpu_us.append((server_cpu_seconds(c) - cpu) / max(1, len(load.lat) - n) * 1e6)
                return rate
            _, _, ratio = abba(lambda: timed(a, on_c, on_cpu), lambda: timed(b, off_c, off_cpu), ROUNDS * 8)
            on, off = a.stats(), b.stats()
            created = len(a.lat) + len(b.lat)
        on_us, off_us = statistics.median(on_cpu), statistics.median(off_cpu)
        cpu_ratio = statistics.median(off / on for on, off in zip(on_cpu, off_cpu))
        rows += [
            row("CREATE pod, enforce=restricted, default plugins", on, "pods/s"),
            row("  same, every default plugin disabled", off, "pods/s")
            + f"   ratio {ratio:4.2f} (must be >= 0.80; {created} pods)",
            f"  server CPU per pod: {on_us:.0f} us with the plugins, {off_us:.0f} us without   ratio {cpu_ratio:4.2f}",
        ]
        for line in rows:
            print(line, flush=True)
    finally:
        on_c.stop()
        off_c.stop()
    return rows


def main() -> None:
    podsecurity.main()
    standalone(run, "kubegate-admission-bench-")


if __name__ == "__main__":
    main()
