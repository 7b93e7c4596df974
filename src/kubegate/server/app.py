"""Composition of the API server: the one place where the request path is assembled.

TLS -> request info -> authentication -> impersonation -> authorization -> REST handler (decode, admission,
validation) -> registry -> store, in kube-apiserver's order.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from kubegate.api import defaults, errors, validation
from kubegate.api.errors import StatusError
from kubegate.api.resources import RESOURCES, Resource, lookup
from kubegate.authn import AuthenticationError, AuthRequest
from kubegate.authn.requestheader import HeaderNames
from kubegate.authn.user import UserInfo
from kubegate.authz.messages import forbidden_message, go_quote
from kubegate.authz.types import Attributes, Decision
from kubegate.server import composition, watch as watch_mod
from kubegate.server import issuer_discovery
from kubegate.server.discovery import AGGREGATED_CT, Discovery
from kubegate.server.explain_api import ExplainAPI, is_explain_request
from kubegate.server.health import HealthEndpoint
from kubegate.server.netpol_api import GROUP as NETPOL_GROUP, NetpolReviews
from kubegate.server.impersonation import Impersonator, wanted_user
from kubegate.server.memory import tune_gc
from kubegate.server.requestinfo import RequestInfo, RequestInfoError, parse_request_info
from kubegate.server.responses import (
    BASE_HEADERS, WARNINGS, not_found_page, object_response, recorded_warnings, status_response, text_response,
    warning_header,
)
from kubegate.server.rest import Request, RESTHandler
from kubegate.serviceaccount.discovery import OpenIDMetadata

log = logging.getLogger("kubegate.server")


class _RedactParseErrors(logging.Filter):
    """aiohttp logs a malformed request's offending bytes (e.g. the start of an oversized
    Authorization header); keep only the kind of error, so no credential reaches the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args, record.exc_info, record.exc_text = (
                "rejected a malformed HTTP request: %s", (type(exc).__name__,), None, None)
        return True


logging.getLogger("aiohttp.server").addFilter(_RedactParseErrors())

VERSION_INFO = {
    "major": "1", "minor": "36", "emulationMajor": "1", "emulationMinor": "36",
    "minCompatibilityMajor": "1", "minCompatibilityMinor": "35", "gitVersion": "v1.36.2-kubegate",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-11-23T00:00:00Z", "goVersion": "python3.11", "compiler": "gc",
    "platform": "linux/amd64",
}

_HEALTH_NAMES = ("livez", "readyz", "healthz")


@dataclass
class Components:
    """Everything the request path calls; built by kubegate.server.composition."""

    store: Any
    authenticate: Callable[[AuthRequest], Awaitable[UserInfo]]
    authorizer: Any
    rest: RESTHandler
    discovery: Discovery
    reviews: Any
    openapi: Any
    background: list[Callable[[], Awaitable[None]]]
    impersonator: Impersonator
    # Front-proxy and Impersonate-* headers: consumed before authorization, invisible after it.
    cleared_headers: HeaderNames
    explain: ExplainAPI
    # Service-account issuer discovery documents; None when they cannot be served (upstream logs why).
    issuer_discovery: OpenIDMetadata | None = None
    netpol: NetpolReviews | None = None  # NetworkPolicyReview; composition always sets it
    # Certificates expiring within 30 days, shown as warning lines in /readyz?verbose.
    cert_warnings: Callable[[], list[str]] | None = None
    # The `kms-providers` check of encryption at rest (KMS v2 plugins), on livez, readyz and healthz.
    kms_health: Callable[[], str | None] | None = None


class APIServer:
    def __init__(self, c: Components) -> None:
        self.c = c
        self.ready = False
        self.shutting_down = False
        self.stopped = False
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.health = {
            "livez": HealthEndpoint("livez", [("ping", _ok), ("log", _ok), ("etcd", self._store_check)]),
            "readyz": HealthEndpoint("readyz", [("ping", _ok), ("log", _ok), ("etcd", self._store_check),
                                                ("informer-sync", self._ready_check),
                                                ("poststarthook/rbac/bootstrap-roles", self._ready_check),
                                                ("shutdown", self._shutdown_check)],
                                     warnings=c.cert_warnings),
            "healthz": HealthEndpoint("healthz", [("ping", _ok), ("log", _ok), ("etcd", self._store_check),
                                                  ("poststarthook/rbac/bootstrap-roles", self._ready_check)]),
        }
        if c.kms_health is not None:
            for endpoint in self.health.values():
                endpoint.checks.append(("kms-providers", c.kms_health))

    def _store_check(self) -> str | None:
        return "store closed" if self.c.store.closed else None

    def _ready_check(self) -> str | None:
        return None if self.ready else "not finished"

    def _shutdown_check(self) -> str | None:
        return "process is shutting down" if self.shutting_down else None

    def app(self) -> web.Application:
        # Go's http.Server allows 1 MiB of headers; a long bearer token must reach the
        # authenticator (and get its 401) rather than be cut off by the HTTP parser.
        app = web.Application(client_max_size=0, handler_args={"max_field_size": 1 << 20})
        app.router.add_route("*", "/{tail:.*}", self._tracked)
        app.on_response_prepare.append(_add_authn_warnings)
        return app

    async def _tracked(self, http: web.Request) -> web.StreamResponse:
        if self.stopped:
            # A connection aiohttp accepted while shutting down: the store is closing, so drop
            # it unanswered, as if the listener had already been closed.
            if http.transport is not None:
                http.transport.close()
            raise asyncio.CancelledError
        self._inflight += 1
        self._idle.clear()
        try:
            return await self.handle(http)
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()

    async def drained(self, timeout: float) -> None:
        """Wait for handlers still running: aiohttp's cleanup can return while a request that
        arrived during shutdown is being served, and the store must outlive it."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def handle(self, http: web.Request) -> web.StreamResponse:
        try:
            info = parse_request_info(http.method, http.path, http.query)
        except RequestInfoError as e:
            return status_response(errors.bad_request(str(e)))
        try:
            user = await self._authenticate(http)
        except StatusError as e:
            return status_response(e)
        try:
            attrs = _attributes(info, user)
            cleared = self.c.cleared_headers.without(http.headers)
            if cleared is not None:
                wanted = wanted_user(http.headers)
                if wanted is not None:
                    attrs = replace(attrs, user=await self.c.impersonator.impersonate(wanted, attrs))
                    user = attrs.user
                http = http.clone(headers=cleared)
            if is_explain_request(info):
                return await self.c.explain.serve(http, info, user)  # authorizes each question itself
            await self._authorize(attrs)
            if info.is_resource_request:
                return await self._resource(http, info, user)
            return await self._nonresource(http, info, user)
        except _EvaluationError as e:
            return text_response(_sanitize(f"Internal Server Error: {go_quote(http.raw_path)}: {e}") + "\n", 500)
        except StatusError as e:
            return status_response(e)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # a bug must still answer with a Status, never a stack trace
            log.exception("internal error serving %s %s", http.method, http.path)
            return status_response(errors.internal(str(e) or type(e).__name__))

    async def _authenticate(self, http: web.Request) -> UserInfo:
        peer = []
        ssl_obj = http.transport.get_extra_info("ssl_object") if http.transport else None
        if ssl_obj is not None:
            der = ssl_obj.getpeercert(binary_form=True)
            if der:
                peer = [der]
        req = AuthRequest(headers=http.headers, peer_certs=peer, path=http.path)
        http[_AUTHN_WARNINGS] = req.warnings
        try:
            return await self.c.authenticate(req)
        except AuthenticationError:
            raise errors.unauthorized() from None

    async def _authorize(self, attrs: Attributes) -> None:
        res = await self.c.authorizer.authorize(attrs)
        if res.decision == Decision.ALLOW:
            return
        if res.error:
            # Upstream's filter: any evaluation error (a webhook down, or allowing and denying at
            # once) fails the request with its plain-text 500, not a 403.
            raise _EvaluationError(res.error)
        raise forbidden_message(attrs, res.reason)

    async def _resource(self, http: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        r = lookup(info.api_group, info.api_version, info.resource)
        if r is None:
            if info.api_prefix == "apis" and not self._known_group_version(info.api_group, info.api_version):
                return not_found_page()
            raise errors.not_found_resource()
        if r.group == NETPOL_GROUP and self.c.netpol is not None:
            return await self.c.netpol.serve(http, info, r, user)
        if not r.persisted:
            return await self.c.reviews.serve(http, info, r, user)
        return await self.c.rest.serve(Request(http, info, r, user, http.query))

    @staticmethod
    def _known_group_version(group: str, version: str) -> bool:
        return any(r.group == group and r.version == version for r in RESOURCES)

    async def _nonresource(self, http: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        path = http.path
        parts = [p for p in path.split("/") if p]
        if path in ("/version", "/version/"):
            if http.method != "GET":
                raise errors.method_not_allowed()
            return object_response(VERSION_INFO)
        if path in issuer_discovery.PATHS and self.c.issuer_discovery is not None:
            return issuer_discovery.serve(http, self.c.issuer_discovery)
        if parts and parts[0] in _HEALTH_NAMES:
            if http.method != "GET":
                raise errors.method_not_allowed()
            ep = self.health[parts[0]]
            excludes = http.query.getall("exclude", [])
            res = ep.render("/".join(parts[1:]), http.query, excludes)
            if res is None:
                return not_found_page()
            return text_response(res[1], res[0])
        if parts and parts[0] == "openapi":
            return await self.c.openapi.serve(http)
        if parts and parts[0] in ("api", "apis"):
            return self._discovery(http, parts)
        return not_found_page()

    def _discovery(self, http: web.Request, parts: list[str]) -> web.StreamResponse:
        d = self.c.discovery
        if http.method != "GET":
            raise errors.method_not_allowed()
        if len(parts) == 1:
            want = d.wants_aggregated(http.headers.get("Accept"))
            if want is None:
                raise errors.StatusError(406, "NotAcceptable",
                                         "only the following media types are accepted: application/json, "
                                         "application/yaml, application/vnd.kubernetes.protobuf", {})
            if want:
                doc = d.aggregated_api if parts[0] == "api" else d.aggregated_apis
                headers = dict(BASE_HEADERS)
                headers.update({"Cache-Control": "public", "Content-Type": AGGREGATED_CT,
                                "Etag": doc.etag, "Vary": "Accept"})
                if http.headers.get("If-None-Match") == doc.etag:
                    return web.Response(status=304, headers=headers)
                return web.Response(body=doc.body, headers=headers)
            doc = d.api if parts[0] == "api" else d.apis
            return _json_doc(doc.body)
        if parts[0] == "api":
            if len(parts) == 2 and ("", parts[1]) in d.resource_lists:
                return _json_doc(d.resource_lists[("", parts[1])].body)
            raise errors.not_found_resource()
        if len(parts) == 2 and parts[1] in d.groups:
            return _json_doc(d.groups[parts[1]].body)
        if len(parts) == 3 and (parts[1], parts[2]) in d.resource_lists:
            return _json_doc(d.resource_lists[(parts[1], parts[2])].body)
        return not_found_page()


def _attributes(info: RequestInfo, user: UserInfo) -> Attributes:
    return Attributes(user=user, verb=info.verb, namespace=info.namespace, api_group=info.api_group,
                      api_version=info.api_version, resource=info.resource, subresource=info.subresource,
                      name=info.name, resource_request=info.is_resource_request, path=info.path,
                      field_selector=info.field_selector, label_selector=info.label_selector)


class _EvaluationError(Exception):
    """An authorizer could not evaluate the request (upstream answers responsewriters.InternalError)."""


def _sanitize(text: str) -> str:
    """responsewriters' sanitizer: nothing in an error text may look like HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_AUTHN_WARNINGS = WARNINGS


async def _add_authn_warnings(http: web.Request, resp: web.StreamResponse) -> None:
    """Warnings raised during authentication go on every response, success or not, as upstream's
    warning recorder writes them before the handler runs."""
    for w in recorded_warnings(http.get(_AUTHN_WARNINGS, ())):
        resp.headers.add("Warning", warning_header(w))


def _json_doc(body: bytes) -> web.Response:
    headers = dict(BASE_HEADERS)
    headers["Content-Type"] = "application/json"
    return web.Response(body=body, headers=headers)


def _ok() -> str | None:
    return None


async def serve(cfg: Any, *, ready_cb: Callable[[int], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Run the server until `stop` is set (or SIGTERM/SIGINT); shut down gracefully."""
    started = time.monotonic()
    comps, ssl_ctx = await composition.build(cfg)
    server = APIServer(comps)
    watch_mod.shutdown_event = asyncio.Event()
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False, shutdown_timeout=10.0)
    await runner.setup()
    site = web.TCPSite(runner, cfg.bind_address, cfg.secure_port, ssl_context=ssl_ctx, backlog=1024,
                       reuse_address=True)
    await site.start()
    port = _bound_port(site)
    tasks = [asyncio.create_task(fn()) for fn in comps.background]
    tune_gc()
    server.ready = True
    log.info("kubegate serving on https://%s:%d (ready in %.0f ms)", cfg.bind_address, port,
             (time.monotonic() - started) * 1000)
    if ready_cb is not None:
        ready_cb(port)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing in-flight requests")
    server.shutting_down = True
    if cfg.shutdown_delay_duration:
        await asyncio.sleep(cfg.shutdown_delay_duration)
    watch_mod.shutdown_event.set()
    await runner.cleanup()
    await server.drained(10.0)
    server.stopped = True
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await comps.store.close()
    log.info("stopped")


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp exposes the asyncio server only here
    for s in getattr(server, "sockets", []) or []:
        if s.family in (socket.AF_INET, socket.AF_INET6):
            return int(s.getsockname()[1])
    raise RuntimeError("server has no listening socket")


def registry_hooks(pod_options: validation.PodOptions = validation.PodOptions()) -> tuple[
        Callable[[Resource, dict[str, Any], dict[str, Any] | None], None],
        Callable[[Resource, dict[str, Any], dict[str, Any] | None], None]]:
    def prepare(r: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        defaults.apply_defaults(r, obj)
        if old is None:
            defaults.prepare_for_create(r, obj)
        else:
            defaults.prepare_for_update(r, obj, old)

    def validate(r: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        causes = validation.validate(r, obj, old, pod_options)
        if causes:
            name = (obj.get("metadata") or {}).get("name") or ""
            raise errors.invalid(r.kind, name, causes, r.group)
    return prepare, validate
