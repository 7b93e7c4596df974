"""A JSON POST client for one remote service described by a kubeconfig file: upstream's
apiserver/pkg/util/webhook GenericWebhook with client-go's clientcmd loading and rest-client error
texts, so token-review, authorization and admission webhooks fail the way kube-apiserver's do."""
from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import random
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from yarl import URL

from kubegate.protobuf.codec import format_duration

# upstream defaultRequestTimeout: the whole HTTP exchange of one attempt, reading the body included.
DEFAULT_REQUEST_TIMEOUT = 30.0
_MAX_ERROR_TEXT = 2048  # client-go caps the text of an unstructured error response

_GENERIC_MESSAGES = {
    400: "the server rejected our request for an unknown reason",
    401: "the server has asked for the client to provide credentials",
    404: "the server could not find the requested resource",
    405: "the server does not allow this method on the requested resource",
    409: "the server reported a conflict",
    422: "the server rejected our request due to an error in our request",
    429: "the server has received too many requests and has asked us to try again later",
    504: "the server was unable to return a response in the time allotted, but may still be processing the request",
}


class WebhookError(Exception):
    """The call failed: unreachable, timed out, a non-2xx answer, or a body that is not a JSON object."""


class WebhookConfigError(ValueError):
    """The kubeconfig file cannot configure a client (reported at startup)."""


class _TransientError(WebhookError):
    """What upstream's DefaultShouldRetry retries: connection reset, 5xx (InternalError/Timeout) and 429."""


@dataclass(frozen=True)
class Backoff:
    """wait.Backoff as DefaultRetryBackoffWithInitialDelay(500ms): `steps` attempts in all."""

    duration: float = 0.5
    factor: float = 1.5
    jitter: float = 0.2
    steps: int = 5

    def delays(self) -> Iterator[float]:
        """The sleeps between attempts, each stretched by up to `jitter` of itself (wait.Jitter)."""
        d = self.duration
        for _ in range(self.steps - 1):
            yield d + random.random() * self.jitter * d
            d *= self.factor


class WebhookClient:
    """POSTs JSON to one URL, retrying transient failures with upstream's backoff. The aiohttp
    session is made on first use in the running event loop (and again if the loop changes)."""

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None, headers: Mapping[str, str],
                 server_hostname: str | None = None, backoff: Backoff = Backoff()) -> None:
        self.url = url
        self._ssl = ssl_context
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", **headers}
        self._server_hostname = server_hostname
        self._backoff = backoff
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:  # never shows the credentials in the headers
        return f"WebhookClient({self.url!r})"

    async def post(self, body: Mapping[str, Any], timeout: float = DEFAULT_REQUEST_TIMEOUT) -> dict[str, Any]:
        """The decoded JSON object the service answered; WebhookError with client-go's message otherwise."""
        data = orjson.dumps(body)
        # client-go's rest client tells the server its timeout in the query string.
        url = str(URL(self.url, encoded=True).update_query(timeout=format_duration(round(timeout * 1e9))))
        delays = self._backoff.delays()
        while True:
            try:
                return await self._attempt(url, data, timeout)
            except _TransientError:
                delay = next(delays, None)
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self) -> None:
        """A server background task: idles until cancelled at shutdown, then closes the connections."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    def _http(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False)
            self._session = aiohttp.ClientSession(connector=connector)
            self._loop = loop
        return self._session

    async def _attempt(self, url: str, data: bytes, timeout: float) -> dict[str, Any]:
        where = f'Post "{url}"'
        try:
            async with self._http().post(url, data=data, headers=self._headers,
                                         timeout=aiohttp.ClientTimeout(total=timeout),
                                         server_hostname=self._server_hostname) as resp:
                raw = await resp.read()
                status, content_type = resp.status, resp.content_type
        except asyncio.TimeoutError:
            raise WebhookError(f"{where}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)") \
                from None
        except aiohttp.ClientOSError as e:
            cls = _TransientError if e.errno == errno.ECONNRESET else WebhookError
            raise cls(f"{where}: {e}") from None
        except aiohttp.ClientError as e:
            raise WebhookError(f"{where}: {e}") from None
        if 200 <= status < 300:
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise WebhookError(f"couldn't get version/kind; json parse error: {e}") from None
            if not isinstance(doc, dict):
                raise WebhookError(f"couldn't get version/kind; json parse error: expected a JSON object, "
                                   f"got {type(doc).__name__}")
            return doc
        message = _error_message(status, raw, content_type)
        raise (_TransientError if status == 429 or status >= 500 else WebhookError)(message)


def _error_message(status: int, raw: bytes, content_type: str) -> str:
    """client-go's error for a non-2xx answer: a Status body's message, else NewGenericServerResponse."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status" and isinstance(doc.get("message"), str):
        return doc["message"]
    text = raw[:_MAX_ERROR_TEXT].decode(errors="replace").strip() if content_type.startswith("text/") else "unknown"
    if status == 403:
        return text
    if status in _GENERIC_MESSAGES:
        return _GENERIC_MESSAGES[status]
    if status >= 500:
        return f"an error on the server ({orjson.dumps(text).decode()}) has prevented the request from succeeding"
    return f"the server responded with the status code {status} but did not return more information"


def load_webhook_kubeconfig(path: str | Path, backoff: Backoff = Backoff()) -> WebhookClient:
    """The client for the current context of a kubeconfig file (cluster `server`, CA, TLS options;
    user client certificate, token or basic credentials). File paths inside are relative to the file."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_bytes())
    except OSError as e:
        raise WebhookConfigError(f'error loading config file "{p}": {e.strerror or e}') from None
    except yaml.YAMLError as e:
        raise WebhookConfigError(f'error loading config file "{p}": {e}') from None
    if not isinstance(doc, dict):
        raise WebhookConfigError(f'error loading config file "{p}": not a kubeconfig document')
    base = p.resolve().parent
    context_name = doc.get("current-context") or ""
    if not context_name:
        raise WebhookConfigError(f'invalid configuration in "{p}": no configuration has been provided '
                                 f'(current-context is not set)')
    context = _named(doc, "contexts", "context", context_name)
    if context is None:
        raise WebhookConfigError(f'invalid configuration in "{p}": context was not found for specified context: '
                                 f'{context_name}')
    cluster_name = str(context.get("cluster") or "")
    cluster = _named(doc, "clusters", "cluster", cluster_name)
    if cluster is None or not cluster.get("server"):
        raise WebhookConfigError(f'invalid configuration in "{p}": no server found for cluster "{cluster_name}"')
    user_name = str(context.get("user") or "")
    user: dict[str, Any] = {}
    if user_name:
        found = _named(doc, "users", "user", user_name)
        if found is None:
            raise WebhookConfigError(f'invalid configuration in "{p}": user "{user_name}" was not found for '
                                     f'context "{context_name}"')
        user = found
    try:
        return _client(cluster, user, base, backoff)
    except WebhookConfigError as e:
        raise WebhookConfigError(f'invalid configuration in "{p}": {e}') from None


def _named(doc: Mapping[str, Any], section: str, key: str, name: str) -> dict[str, Any] | None:
    for item in doc.get(section) or []:
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(key)
            return value if isinstance(value, dict) else {}
    return None


def _client(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path, backoff: Backoff) -> WebhookClient:
    url = URL(str(cluster["server"]))
    if url.scheme not in ("http", "https") or not url.host:
        raise WebhookConfigError(f"server {str(cluster['server'])!r} must be an http or https URL")
    ca = _material(cluster, "certificate-authority", base)
    cert = _material(user, "client-certificate", base)
    key = _material(user, "client-key", base)
    insecure = bool(cluster.get("insecure-skip-tls-verify"))
    if insecure and ca is not None:
        raise WebhookConfigError("specifying a root certificates file with the insecure flag is not allowed")
    if (cert is None) != (key is None):
        raise WebhookConfigError("client-certificate and client-key must be specified together")
    ctx: ssl.SSLContext | None = None
    if url.scheme == "https":
        ctx = _tls_context(ca, cert, key, insecure)
    headers: dict[str, str] = {}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    elif user.get("username") or user.get("password"):
        pair = f"{user.get('username') or ''}:{user.get('password') or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return WebhookClient(str(url), ctx, headers, cluster.get("tls-server-name") or None, backoff)


def _material(section: Mapping[str, Any], name: str, base: Path) -> bytes | None:
    """`<name>-data` (base64) wins over the file `<name>`, as clientcmd."""
    data = section.get(f"{name}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except binascii.Error:
            raise WebhookConfigError(f"{name}-data is not valid base64") from None
    file = section.get(name)
    if not file:
        return None
    path = base / str(file)
    try:
        return path.read_bytes()
    except OSError as e:
        raise WebhookConfigError(f'unable to read {name} "{path}": {e.strerror or e}') from None


def tls_context(ca: bytes | None) -> ssl.SSLContext:
    """A verifying client context trusting `ca` (PEM), or the system roots when None: an admission
    webhook's clientConfig.caBundle."""
    return _tls_context(ca, None, None, False)


def _tls_context(ca: bytes | None, cert: bytes | None, key: bytes | None, insecure: bool) -> ssl.SSLContext:
    # A configured CA replaces the system roots, as in client-go.
    try:
        ctx = ssl.create_default_context(cadata=None if ca is None else ca.decode(errors="replace"))
    except (ssl.SSLError, ValueError):
        raise WebhookConfigError("unable to load root certificates: unable to parse bytes as PEM block") from None
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None and key is not None:
        # ssl only loads key pairs from files: a private directory that is removed at once.
        with tempfile.TemporaryDirectory() as tmp:
            cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            cert_file.write_bytes(cert)
            key_file.touch(mode=0o600)
            key_file.write_bytes(key)
            try:
                ctx.load_cert_chain(cert_file, key_file)
            except ssl.SSLError as e:
                raise WebhookConfigError(f"unable to load client certificate and key: {e.reason or e}") from None
    return ctx
