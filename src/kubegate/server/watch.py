"""Watch streams: newline-delimited watch events over a chunked response, served from the watch cache."""
from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any, Callable, Mapping

import orjson
from aiohttp import web

from kubegate.api import errors
from kubegate.api.registry import Decoded, ResourceRegistry
from kubegate.server.negotiation import Output
from kubegate.storage.cache import CacheEvent
from kubegate.storage.interface import CompactedError

if TYPE_CHECKING:
    from kubegate.server.rest import ListOptions

BOOKMARK_INTERVAL = 5.0
MIN_REQUEST_TIMEOUT = 1800  # upstream --min-request-timeout: watches end after 1-2x this

TableFn = Callable[[list[dict[str, Any]], dict[str, Any]], dict[str, Any]]

# Set by the server on shutdown so every open watch ends cleanly.
shutdown_event: asyncio.Event | None = None


def _line(kind: str, obj_json: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + obj_json + b"}\n"


class _Writer:
    def __init__(self, resp: web.StreamResponse, table: TableFn | None) -> None:
        self.resp = resp
        self.table = table
        self.first_table = True

    async def event(self, kind: str, d: Decoded) -> None:
        if self.table is None:
            await self.resp.write(_line(kind, d.json()))
            return
        t = self.table([d.obj], {"resourceVersion": d.obj["metadata"].get("resourceVersion", "")})
        if not self.first_table:
            t["columnDefinitions"] = None
        self.first_table = False
        await self.resp.write(_line(kind, orjson.dumps(t)))

    async def bookmark(self, kind: str, api_version: str, rv: int, initial_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        await self.resp.write(_line("BOOKMARK", orjson.dumps({"kind": kind, "apiVersion": api_version,
                                                              "metadata": meta})))

    async def error(self, err: errors.StatusError) -> None:
        await self.resp.write(_line("ERROR", orjson.dumps(err.status())))


async def serve_watch(http: web.Request, reg: ResourceRegistry, namespace: str | None, opts: "ListOptions",
                      out: Output, query: Mapping[str, str], table: TableFn | None) -> web.StreamResponse:
    r = reg.resource
    rv = opts.resource_version
    send_initial = opts.send_initial_events
    if send_initial is None:
        send_initial = rv in ("", "0")
    start_rev = 0
    if rv not in ("", "0"):
        try:
            start_rev = int(rv)
        except ValueError:
            raise errors.bad_request(f'resourceVersion: Invalid value: "{rv}": must be a valid resourceVersion') \
                from None
    resp = web.StreamResponse(status=200, headers={"Cache-Control": "no-cache, private",
                                                   "Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(http)
    w = _Writer(resp, table)
    prefix = r.list_prefix(namespace)
    timeout = opts.timeout_seconds if opts.timeout_seconds is not None else \
        MIN_REQUEST_TIMEOUT * (1 + random.random())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        await reg.cache.wait_for_revision(await reg.store.current_revision())
        try:
            stream = reg.cache.watch(0 if send_initial else start_rev + 1, prefix=prefix,
                                     initial_events=send_initial)
        except CompactedError as e:
            await w.error(errors.gone(f"too old resource version: {start_rev} ({e.compact_revision + 1})"))
            return resp
        initial_end = reg.cache.revision if send_initial and opts.allow_bookmarks else None
        await _follow(stream, w, opts, r.kind, r.api_version, deadline, initial_end, reg.present)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return resp


async def _follow(stream: Any, w: _Writer, opts: "ListOptions", kind: str, api_version: str,
                  deadline: float, initial_end: int | None, present: Callable[[Decoded], Decoded]) -> None:
    loop = asyncio.get_running_loop()
    it = stream.__aiter__()
    stop = shutdown_event
    try:
        while True:
            if initial_end is not None and stream.revision >= initial_end:
                await w.bookmark(kind, api_version, initial_end, initial_end=True)
                initial_end = None
            remaining = deadline - loop.time()
            if remaining <= 0 or (stop is not None and stop.is_set()):
                return
            wait = min(remaining, BOOKMARK_INTERVAL) if opts.allow_bookmarks else remaining
            next_ev = asyncio.ensure_future(it.__anext__())
            waiters: set[asyncio.Future[Any]] = {next_ev}
            stop_task = asyncio.ensure_future(stop.wait()) if stop is not None else None
            if stop_task is not None:
                waiters.add(stop_task)
            done, _ = await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if stop_task is not None:
                stop_task.cancel()
            if next_ev not in done:
                next_ev.cancel()
                if opts.allow_bookmarks and initial_end is None and loop.time() < deadline:
                    await w.bookmark(kind, api_version, stream.revision)
                continue
            try:
                ev: CacheEvent = next_ev.result()
            except StopAsyncIteration:
                return
            except CompactedError as e:
                await w.error(errors.gone(f"too old resource version: {stream.revision} "
                                          f"({e.compact_revision + 1})"))
                return
            await _emit(w, ev, opts, present)
    finally:
        stream.close()


async def _emit(w: _Writer, ev: CacheEvent, opts: "ListOptions", present: Callable[[Decoded], Decoded]) -> None:
    d = present(ev.entry.object)
    now = opts.match(d.obj)
    if ev.type == "ADDED" or ev.prev is None:
        if now:
            await w.event(ev.type, d)
        return
    if ev.type == "DELETED":
        if now:
            await w.event("DELETED", d)
        return
    before = opts.match(present(ev.prev.object).obj)
    if now and before:
        await w.event("MODIFIED", d)
    elif now:
        await w.event("ADDED", d)
    elif before:
        await w.event("DELETED", d)
