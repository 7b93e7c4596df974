"""The plugin's gRPC server: upstream's KeyManagementService (v2) on a unix socket."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import grpc

from kubegate.storage.encryption import kms_api as api

from .keys import KeyFile, KeyFileError, UnknownKey

log = logging.getLogger(__name__)


class KMSPlugin:
    def __init__(self, keys: KeyFile) -> None:
        self._keys = keys

    async def status(self, request: bytes, context: grpc.aio.ServicerContext) -> api.StatusResponse:
        try:
            return api.StatusResponse("v2", "ok", self._keys.ring().current)
        except (OSError, KeyFileError) as e:
            # reported through Status so the API server's health check names it
            return api.StatusResponse("v2", f"key file: {e}", "")

    async def encrypt(self, request: api.EncryptRequest, context: grpc.aio.ServicerContext) -> api.EncryptResponse:
        try:
            key_id, ciphertext = self._keys.ring().encrypt(request.plaintext)
        except (OSError, KeyFileError) as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"key file: {e}")
        return api.EncryptResponse(ciphertext, key_id)

    async def decrypt(self, request: api.DecryptRequest, context: grpc.aio.ServicerContext) -> api.DecryptResponse:
        try:
            return api.DecryptResponse(self._keys.ring().decrypt(request.key_id, request.ciphertext))
        except (OSError, KeyFileError) as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"key file: {e}")
        except UnknownKey as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))

    def handler(self) -> grpc.GenericRpcHandler:
        def method(fn, decode):  # type: ignore[no-untyped-def]
            return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=decode,
                                                       response_serializer=lambda m: m.encode())
        return grpc.method_handlers_generic_handler(api.SERVICE, {
            "Status": method(self.status, lambda b: b),
            "Encrypt": method(self.encrypt, api.EncryptRequest.decode),
            "Decrypt": method(self.decrypt, api.DecryptRequest.decode),
        })


async def start(socket: Path, key_file: Path) -> grpc.aio.Server:
    """Listen on `socket` (a stale socket file is replaced; the socket is owner-only)."""
    KeyFile(key_file).ring()  # a bad key file fails here, before anything listens
    if socket.exists():
        socket.unlink()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([KMSPlugin(KeyFile(key_file)).handler()])
    old = os.umask(0o177)
    try:
        server.add_insecure_port(f"unix://{socket.resolve()}")
        await server.start()
    finally:
        os.umask(old)
    return server


async def serve(socket: Path, key_file: Path) -> None:
    server = await start(socket, key_file)
    log.info("kms plugin listening on %s", socket)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)
