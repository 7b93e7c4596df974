"""Measurement machinery the benches share: Python-client load over connections kept open between
slices, two sides measured in alternating short slices (ABBA) with the median of the per-pair
ratios (the shared machine's load swings within seconds, so only adjacent slices see the same
noise), latency summaries, row formatting and the standalone entry point.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from tests.e2e.cluster import Cluster

WORKERS = 20
Request = Callable[[Any], Awaitable[None]]  # one request on an aiohttp.ClientSession, checked


def tls_context(c: Cluster, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    """Trusts `c`'s CA; presents `cert` (certificate, key) when given."""
    ctx = ssl.create_default_context(cafile=c.ca)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def session(ctx: ssl.SSLContext, limit: int = WORKERS, headers: dict[str, str] | None = None) -> Any:
    import aiohttp
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=limit), headers=headers)


def get_ok(url: str) -> Request:
    async def get(s: Any) -> None:
        async with s.get(url) as r:
            await r.read()
            assert r.status == 200, r.status
    return get


def latency_ms(lat: list[float]) -> dict[str, float]:
    """p50 and p99 of latencies in seconds, in ms."""
    lat = sorted(lat)
    return {"p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": lat[int(len(lat) * 0.99)] * 1000}


class Load:
    """`workers` concurrent `request`s in slices over one session whose connections stay open
    between slices; owns its event loop so that slices of two Loads can alternate."""

    def __init__(self, ctx: ssl.SSLContext, request: Request, workers: int = WORKERS,
                 headers: dict[str, str] | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._request, self._workers = request, workers
        self._session = self._loop.run_until_complete(self._open(ctx, headers))
        self.lat: list[float] = []
        self.rps: list[float] = []

    async def _open(self, ctx: ssl.SSLContext, headers: dict[str, str] | None) -> Any:
        return session(ctx, self._workers, headers)

    def warm(self) -> None:
        """Opens the connections outside the measurement."""
        self._loop.run_until_complete(self._slice(0.2, []))

    def slice(self, seconds: float) -> float:
        """Requests for `seconds`; records and returns their rate."""
        self.rps.append(self._loop.run_until_complete(self._slice(seconds, self.lat)))
        return self.rps[-1]

    async def _slice(self, seconds: float, lat: list[float]) -> float:
        n = len(lat)
        stop = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < stop:
                t = time.perf_counter()
                await self._request(self._session)
                lat.append(time.perf_counter() - t)
        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(self._workers)))
        return (len(lat) - n) / (time.monotonic() - t0)

    def stats(self) -> dict[str, float]:
        """The median slice rate and the latency percentiles over every slice."""
        return {"rps": statistics.median(self.rps), **latency_ms(self.lat)}

    def close(self) -> None:
        self._loop.run_until_complete(self._session.close())
        self._loop.close()

    def __enter__(self) -> Load:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def abba(a: Callable[[], float], b: Callable[[], float], pairs: int) -> tuple[float, float, float]:
    """Rates of `a` and `b` over `pairs` adjacent pairs in ABBA order: (median a, median b,
    median of the per-pair ratios a/b)."""
    return abba_rotating([(a, b)], pairs)


def abba_rotating(sides: list[tuple[Callable[[], float], Callable[[], float]]],
                  pairs: int) -> tuple[float, float, float]:
    """`abba` over several (a, b) couples taken in turn, each couple alternating which side goes
    first: (median a, median b, median of the per-pair ratios a/b)."""
    rates_a, rates_b, ratios = [], [], []
    for i in range(pairs):
        a, b = sides[i % len(sides)]
        first_a = (i // len(sides)) % 2 == 0
        for run, rates in ((a, rates_a), (b, rates_b)) if first_a else ((b, rates_b), (a, rates_a)):
            rates.append(run())
        ratios.append(rates_a[-1] / rates_b[-1] if rates_b[-1] else 0.0)
    return statistics.median(rates_a), statistics.median(rates_b), statistics.median(ratios)


def compare(a: Load, b: Load, pairs: int, seconds: float) -> tuple[dict[str, float], dict[str, float], float]:
    """Both Loads in `pairs` ABBA pairs of `seconds`-second slices: their stats and the median
    per-pair ratio a/b."""
    a.warm()
    b.warm()
    _, _, ratio = abba(lambda: a.slice(seconds), lambda: b.slice(seconds), pairs)
    return a.stats(), b.stats(), ratio


def server_cpu_seconds(c: Cluster) -> float:
    """The server process's user+system CPU time so far (Linux /proc), for a cost per request that
    other load on the machine disturbs less than throughput."""
    assert c.proc is not None
    fields = Path(f"/proc/{c.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def row(label: str, s: dict[str, float], unit: str) -> str:
    return f"{label:<48} {s['rps']:>8.0f} {unit}  p50 {s['p50_ms']:6.2f} ms  p99 {s['p99_ms']:7.2f} ms"


def standalone(run: Callable[[Path], list[str]], prefix: str) -> None:
    """Runs a bench's `run(tmp)` alone in a temporary directory removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
