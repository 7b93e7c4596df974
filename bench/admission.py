"""Admission cost: CREATE of restricted-compliant pods in a namespace labelled
pod-security.kubernetes.io/enforce=restricted, on servers with upstream's default admission plugins
and on servers started with every default plugin disabled, in one run. Each side runs COUPLES
servers (servers started alike measure up to 15% apart); each couple is measured in
alternating short slices (ABBA order) over open connections, the couples in turn, and the ratio is
the median of adjacent pairs (the shared machine's load swings within seconds). The ratio must stay
>= 0.8. Each server's CPU time per pod (from /proc, per slice) gives a second ratio, also the median
of adjacent pairs: a cost view that the machine's other load disturbs less than throughput. Also
prints the pure Pod Security fixture rate (bench/podsecurity.py). Run alone with
`.venv/bin/python bench/admission.py`; `make bench` runs it after bench/run.py's rows.
"""
from __future__ import annotations

import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench import podsecurity  # noqa: E402
from bench.common import (Load, Request, abba_rotating, latency_ms, row, server_cpu_seconds,  # noqa: E402
                          standalone, tls_context)
from bench.run import DURATION  # noqa: E402
from kubegate.admission.chain import DEFAULT_ON  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402

NS = "psa-bench"
COUPLES = 8
PAIRS_PER_COUPLE = 6  # even, so that each couple's ABBA order is balanced
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
    # Four servers started alike and measured in turn in one run came out up to 15% apart in CPU per
    # pod (also with address-space randomization off and one hash seed), so one server a side would
    # leave the ratio to chance, and four a side still left couples 0.72-1.01 apart within a run:
    # each side runs COUPLES servers, in turn.
    clusters: list[tuple[Cluster, Cluster]] = []
    try:
        for i in range(COUPLES):
            clusters.append((Cluster(tmp / f"admission-on-{i}").start(),
                             Cluster(tmp / f"admission-off-{i}",
                                     ["--disable-admission-plugins=" + ",".join(sorted(DEFAULT_ON))]).start()))
        for on_c, off_c in clusters:
            _setup(on_c)
            _setup(off_c)
        return _measure(clusters)
    finally:
        for couple in clusters:
            for c in couple:
                c.stop()


def _measure(clusters: list[tuple[Cluster, Cluster]]) -> list[str]:
    loads = [(_load(on_c), _load(off_c)) for on_c, off_c in clusters]
    try:
        rates: dict[Cluster, list[float]] = {c: [] for couple in clusters for c in couple}
        cpu_us: dict[Cluster, list[float]] = {c: [] for couple in clusters for c in couple}

        def timed(load: Load, c: Cluster) -> Callable[[], float]:
            def slice_() -> float:
                n, cpu = len(load.lat), server_cpu_seconds(c)
                rates[c].append(load.slice(DURATION / 5))
                cpu_us[c].append((server_cpu_seconds(c) - cpu) / max(1, len(load.lat) - n) * 1e6)
                return rates[c][-1]
            return slice_
        for a, b in loads:
            a.warm()
            b.warm()
        _, _, ratio = abba_rotating([(timed(a, on_c), timed(b, off_c))
                                     for (a, b), (on_c, off_c) in zip(loads, clusters)],
                                     COUPLES * PAIRS_PER_COUPLE)
        on_all = [s for a, _ in loads for s in a.rps]
        off_all = [s for _, b in loads for s in b.rps]
        on = {"rps": statistics.median(on_all), **latency_ms([x for a, _ in loads for x in a.lat])}
        off = {"rps": statistics.median(off_all), **latency_ms([x for _, b in loads for x in b.lat])}
        created = sum(len(a.lat) + len(b.lat) for a, b in loads)
        per_couple = [statistics.median(x / y for x, y in zip(rates[on_c], rates[off_c])) for on_c, off_c in clusters]
        cpu_pairs = [(x, y) for on_c, off_c in clusters for x, y in zip(cpu_us[on_c], cpu_us[off_c])]
        on_us = statistics.median(x for x, _ in cpu_pairs)
        off_us = statistics.median(y for _, y in cpu_pairs)
        cpu_ratio = statistics.median(y / x for x, y in cpu_pairs)
    finally:
        for a, b in loads:
            a.close()
            b.close()
    rows = [
        row("CREATE pod, enforce=restricted, default plugins", on, "pods/s"),
        row("  same, every default plugin disabled", off, "pods/s")
        + f"   ratio {ratio:4.2f} (must be >= 0.80; {created} pods)",
        f"  {COUPLES} servers a side; per couple of servers: " + ", ".join(f"{r:4.2f}" for r in per_couple),
        f"  server CPU per pod: {on_us:.0f} us with the plugins, {off_us:.0f} us without   ratio {cpu_ratio:4.2f}",
    ]
    for line in rows:
        print(line, flush=True)
    return rows


def main() -> None:
    podsecurity.main()
    standalone(run, "kubegate-admission-bench-")


if __name__ == "__main__":
    main()
