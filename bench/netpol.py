"""NetworkPolicy engine: the full truth table for 1,000 pods in 20 namespaces under 200 policies,
computed by the indexed matrix and by the per-pair evaluation of the same engine, in one run.

Pure and in-process (no server). Prints pairs/s for both and the ratio, after checking that both
give the same answer for every one of the 1,000,000 ordered pairs.
Run it alone with `.venv/bin/python bench/netpol.py`; `make bench` calls it too.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kubegate.netpol.engine import Engine  # noqa: E402
from kubegate.netpol.model import Endpoint, Snapshot  # noqa: E402

NAMESPACES, PODS_PER_NS, POLICIES, PORT = 20, 50, 200, 80
APPS = ("web", "api", "db", "cache", "queue", "worker", "auth", "search", "metrics", "batch")
TIERS = ("frontend", "backend", "data")


def cluster(seed: int = 7) -> list[dict[str, Any]]:
    """A reproducible cluster: labelled namespaces, pods with named ports and IPs, mixed policies."""
    rnd = random.Random(seed)
    objs: list[dict[str, Any]] = []
    for n in range(NAMESPACES):
        ns = f"ns-{n:02d}"
        objs.append({"kind": "Namespace", "metadata": {"name": ns, "labels": {
            "team": f"team-{n % 5}", "env": ("prod", "staging", "dev")[n % 3]}}})
        for i in range(PODS_PER_NS):
            app = APPS[rnd.randrange(len(APPS))]
            port = rnd.choice((80, 8080, 5000))
            objs.append({"kind": "Pod", "metadata": {"name": f"{app}-{i:02d}", "namespace": ns, "labels": {
                "app": app, "tier": TIERS[rnd.randrange(3)], "version": f"v{rnd.randrange(3)}"}},
                "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port},
                                                                {"name": "metrics", "containerPort": 9090}]}]},
                "status": {"podIP": f"10.{n}.{i // 250}.{i % 250 + 1}"}})
    for k in range(POLICIES):
        ns = f"ns-{k % NAMESPACES:02d}"
        objs.append({"kind": "NetworkPolicy", "metadata": {"name": f"np-{k:03d}", "namespace": ns},
                     "spec": _policy_spec(rnd)})
    return objs


def _selector(rnd: random.Random) -> dict[str, Any]:
    r = rnd.random()
    if r < 0.15:
        return {}
    if r < 0.6:
        return {"matchLabels": {"app": rnd.choice(APPS)}}
    if r < 0.85:
        return {"matchLabels": {"app": rnd.choice(APPS), "tier": rnd.choice(TIERS)}}
    return {"matchExpressions": [{"key": "app", "operator": "In", "values": rnd.sample(APPS, 3)}]}


def _peer(rnd: random.Random) -> dict[str, Any]:
    r = rnd.random()
    if r < 0.4:
        return {"podSelector": _selector(rnd)}
    if r < 0.6:
        return {"namespaceSelector": {"matchLabels": {"team": f"team-{rnd.randrange(5)}"}}}
    if r < 0.9:
        return {"namespaceSelector": {"matchLabels": {"env": rnd.choice(("prod", "staging", "dev"))}},
                "podSelector": _selector(rnd)}
    n = rnd.randrange(NAMESPACES)
    return {"ipBlock": {"cidr": f"10.{n}.0.0/16", "except": [f"10.{n}.0.0/28"]}}


def _rules(rnd: random.Random, key: str) -> list[dict[str, Any]]:
    rules = []
    for _ in range(rnd.randrange(1, 4)):
        rule: dict[str, Any] = {}
        if rnd.random() < 0.9:
            rule[key] = [_peer(rnd) for _ in range(rnd.randrange(1, 3))]
        r = rnd.random()
        if r < 0.3:
            rule["ports"] = [{"port": 80}]
        elif r < 0.5:
            rule["ports"] = [{"port": "http"}]
        elif r < 0.6:
            rule["ports"] = [{"port": 8000, "endPort": 8100}, {"protocol": "UDP", "port": 53}]
        rules.append(rule)
    return rules


def _policy_spec(rnd: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": _selector(rnd)}
    r = rnd.random()
    if r < 0.6:
        spec["ingress"] = _rules(rnd, "from")
    elif r < 0.85:
        spec["policyTypes"] = ["Ingress", "Egress"]
        spec["ingress"] = _rules(rnd, "from")
        spec["egress"] = _rules(rnd, "to")
    else:
        spec["policyTypes"] = ["Egress"]
        spec["egress"] = _rules(rnd, "to")
    return spec


def run() -> dict[str, float]:
    snap = Snapshot.of(cluster())
    engine = Engine(snap)
    pods = sorted(snap.pods.values(), key=lambda p: p.key)
    pairs = len(pods) ** 2

    t0 = time.perf_counter()
    m = engine.matrix(pods, PORT)
    table = m.combined
    fast = time.perf_counter() - t0

    ends = [Endpoint.of_pod(p) for p in pods]
    t0 = time.perf_counter()
    naive_rows = []
    for src in ends:
        row = 0
        for j, dst in enumerate(ends):
            if engine.allowed(src, dst, PORT):
                row |= 1 << j
        naive_rows.append(row)
    naive = time.perf_counter() - t0
    if naive_rows != table:
        raise SystemExit("the indexed matrix and the per-pair evaluation disagree")
    allowed = sum(bin(r).count("1") for r in table)
    return {"pairs": pairs, "allowed": allowed, "fast_s": fast, "naive_s": naive,
            "fast_rate": pairs / fast, "naive_rate": pairs / naive, "ratio": naive / fast}


def main() -> None:
    r = run()
    print(f"netpol matrix, {NAMESPACES * PODS_PER_NS} pods in {NAMESPACES} namespaces, {POLICIES} policies, "
          f"{r['pairs']:,.0f} ordered pairs ({r['allowed']:,.0f} allowed on {PORT}/TCP):")
    print(f"  indexed matrix      {r['fast_s'] * 1000:9.0f} ms  {r['fast_rate']:12,.0f} pairs/s")
    print(f"  per-pair evaluation {r['naive_s'] * 1000:9.0f} ms  {r['naive_rate']:12,.0f} pairs/s")
    print(f"  ratio {r['ratio']:.0f}x (target >= 20x); both agree on every pair", flush=True)


if __name__ == "__main__":
    main()
