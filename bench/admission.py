"""Admission cost: CREATE of restricted-compliant pods in a namespace labelled
pod-security.kubernetes.io/enforce=restricted, on a server with upstream's default admission plugins
and on one started with every default plugin disabled, in one run: both servers in alternating short
slices (ABBA order) over open connections, the ratio being the median of adjacent pairs (the shared
machine's load swings within seconds). The ratio must stay >= 0.8. Also prints the pure Pod Security
fixture rate (bench/podsecurity.py). Run alone with `.venv/bin/python bench/admission.py`; `make bench`
runs it after bench/run.py's rows.
"""
from __future__ import annotations

import asyncio
import itertools
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench import podsecurity  # noqa: E402
from bench.run import DURATION, ROUNDS  # noqa: E402
from kubegate.admission.chain import DEFAULT_ON  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402

NS = "psa-bench"
WORKERS = 20
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


async def _create_slice(s: Any, url: str, seconds: float, lat: list[float]) -> float:
    """CREATEs from WORKERS workers for `seconds`; returns pods/s. Names are numbered: random
    generateName suffixes collide within the tens of thousands of pods a run creates."""
    n = len(lat)
    stop = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            body = {**POD, "metadata": {**POD["metadata"], "name": f"p-{next(_NAMES)}"}}
            async with s.post(url, json=body) as r:
                body = await r.read()
                assert r.status == 201, body[:300]
            lat.append(time.perf_counter() - t)
    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return (len(lat) - n) / (time.monotonic() - t0)


async def _compare(on: Cluster, off: Cluster, pairs: int, seconds: float) -> tuple[dict[str, float], dict[str, float],
                                                                                   float, int]:
    import aiohttp
    sides: list[dict[str, Any]] = []
    for c in (on, off):
        ctx = ssl.create_default_context(cafile=c.ca)
        ctx.load_cert_chain(*c.admin_pair())
        sides.append({"s": aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=WORKERS)),
                      "url": f"{c.url}/api/v1/namespaces/{NS}/pods", "lat": [], "rps": []})
    ratios: list[float] = []
    try:
        for side in sides:  # open the connections outside the measurement
            await _create_slice(side["s"], side["url"], 0.2, [])
        for i in range(pairs):
            for side in (sides if i % 2 == 0 else sides[::-1]):
                side["rps"].append(await _create_slice(side["s"], side["url"], seconds, side["lat"]))
            ratios.append(sides[0]["rps"][-1] / sides[1]["rps"][-1])
    finally:
        for side in sides:
            await side["s"].close()
    out = []
    for side in sides:
        lat, rps = sorted(side["lat"]), sorted(side["rps"])
        out.append({"rps": rps[len(rps) // 2], "p50_ms": lat[len(lat) // 2] * 1000,
                    "p99_ms": lat[int(len(lat) * 0.99)] * 1000})
    ratios.sort()
    return out[0], out[1], ratios[len(ratios) // 2], sum(len(side["lat"]) for side in sides)


def run(tmp: Path) -> list[str]:
    on_c = Cluster(tmp / "admission-on").start()
    off_c = Cluster(tmp / "admission-off",
                    ["--disable-admission-plugins=" + ",".join(sorted(DEFAULT_ON))]).start()
    rows: list[str] = []
    try:
        _setup(on_c)
        _setup(off_c)
        on, off, ratio, created = asyncio.run(_compare(on_c, off_c, ROUNDS * 5, DURATION / 5))
        rows += [
            f"{'CREATE pod, enforce=restricted, default plugins':<48} {on['rps']:>8.0f} pods/s  p50 {on['p50_ms']:6.2f} ms"
            f"  p99 {on['p99_ms']:7.2f} ms",
            f"{'  same, every default plugin disabled':<48} {off['rps']:>8.0f} pods/s  p50 {off['p50_ms']:6.2f} ms"
            f"  p99 {off['p99_ms']:7.2f} ms   ratio {ratio:4.2f} (must be >= 0.80; {created} pods)",
        ]
        for row in rows:
            print(row, flush=True)
    finally:
        on_c.stop()
        off_c.stop()
    return rows


def main() -> None:
    podsecurity.main()
    tmp = Path(tempfile.mkdtemp(prefix="kubegate-admission-bench-"))
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
