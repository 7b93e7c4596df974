"""Small HTTPS services for tests (OIDC providers, webhooks): a private CA and an aiohttp application
served from a background thread of the test process on a free loopback port."""
from __future__ import annotations

import asyncio
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from kubegate.pki import certs


class LocalCA:
    """A CA of its own, so the server under test can only trust what the test hands it."""

    def __init__(self, name: str = "local-test-ca") -> None:
        self.key = certs.new_key("ecdsa")
        self.cert = certs.self_signed_ca(name, self.key)
        self.pem = certs.cert_pem(self.cert)

    def pair(self, cn: str, *, server: bool = False, client: bool = False,
             dns: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)) -> tuple[bytes, bytes]:
        key = certs.new_key("ecdsa")
        cert = certs.issue(self.cert, self.key, cn=cn, server=server, client=client,
                           dns=dns if server else (), ips=ips if server else (), key=key)
        return certs.cert_pem(cert), certs.key_pem(key)

    def write(self, directory: Path, name: str = "ca.crt") -> Path:
        path = directory / name
        path.write_bytes(self.pem)
        return path


def server_context(ca: LocalCA, client_ca: bytes | None = None) -> ssl.SSLContext:
    cert, key = ca.pair("localhost", server=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "c").write_bytes(cert)
        (Path(tmp) / "k").write_bytes(key)
        ctx.load_cert_chain(Path(tmp) / "c", Path(tmp) / "k")
    if client_ca is not None:
        ctx.load_verify_locations(cadata=client_ca.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class ThreadedServer:
    """Serves `app` on 127.0.0.1 from a daemon thread with its own event loop until stop()."""

    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext | None) -> None:
        self._app = app
        self._ssl = ssl_context
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> "ThreadedServer":
        self._thread.start()
        self.call(self._start)
        return self

    def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Runs a coroutine function in the server's loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(30)

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        self.call(self._stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Handlers still running (a deliberately slow webhook) end here, not with the loop.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
