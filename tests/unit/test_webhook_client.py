"""The shared webhook client against a local HTTPS service with its own CA."""
from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from kubegate.webhook import Backoff, WebhookConfigError, WebhookError, load_webhook_kubeconfig
from kubegate.webhook.client import WebhookClient
from tests.local_tls import LocalCA, ThreadedServer, server_context

FAST = Backoff(duration=0.001)


class Service:
    """Answers POST /review from a queue of (status, body, content-type) replies, recording requests."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, bytes, str]] = []
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({"body": await request.read(), "headers": dict(request.headers),
                              "query": dict(request.query), "peercert": request.transport.get_extra_info("peercert")
                              if request.transport else None})
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body, ctype = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return web.Response(status=status, body=body, content_type=ctype)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/review", self.handle)
        return app


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA()


@pytest.fixture(scope="module")
def client_ca() -> LocalCA:
    return LocalCA("webhook-client-ca")


@pytest.fixture
def service(ca: LocalCA, client_ca: LocalCA) -> Iterator[tuple[Service, ThreadedServer]]:
    svc = Service()
    svc.replies = [(200, b'{"kind":"TokenReview","status":{"authenticated":true}}', "application/json")]
    server = ThreadedServer(svc.app(), server_context(ca, client_ca=None)).start()
    yield svc, server
    server.stop()


@pytest.fixture
def mtls_service(ca: LocalCA, client_ca: LocalCA) -> Iterator[tuple[Service, ThreadedServer]]:
    svc = Service()
    svc.replies = [(200, b'{"ok":true}', "application/json")]
    server = ThreadedServer(svc.app(), server_context(ca, client_ca=client_ca.pem)).start()
    yield svc, server
    server.stop()


def kubeconfig(tmp: Path, server: str, cluster: dict[str, Any] | None = None,
               user: dict[str, Any] | None = None) -> Path:
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": "hook", "cluster": {"server": server, **(cluster or {})}}],
           "users": [{"name": "apiserver", "user": user or {}}],
           "contexts": [{"name": "webhook", "context": {"cluster": "hook", "user": "apiserver"}}],
           "current-context": "webhook"}
    path = tmp / "webhook.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def post(client: WebhookClient, body: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        try:
            return await client.post(body, timeout)
        finally:
            await client.close()
    return asyncio.run(run())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_posts_json_with_token_and_relative_ca_file(tmp_path: Path, ca: LocalCA,
                                                    service: tuple[Service, ThreadedServer]) -> None:
    svc, server = service
    (tmp_path / "certs").mkdir()
    ca.write(tmp_path / "certs")
    path = kubeconfig(tmp_path, server.url + "/review", {"certificate-authority": "certs/ca.crt"},
                      {"token": "s3cret"})
    client = load_webhook_kubeconfig(path, FAST)
    answer = post(client, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"})
    assert answer == {"kind": "TokenReview", "status": {"authenticated": True}}
    req = svc.requests[0]
    assert req["body"] == b'{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview"}'
    assert req["headers"]["Authorization"] == "Bearer s3cret"
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["query"] == {"timeout": "30s"}  # client-go's rest client sends its timeout
    assert "s3cret" not in repr(client)


def test_client_certificate_data_for_mutual_tls(tmp_path: Path, ca: LocalCA, client_ca: LocalCA,
                                                mtls_service: tuple[Service, ThreadedServer]) -> None:
    svc, server = mtls_service
    cert, key = client_ca.pair("kube-apiserver", client=True)
    path = kubeconfig(tmp_path, server.url + "/review", {"certificate-authority-data": b64(ca.pem)},
                      {"client-certificate-data": b64(cert), "client-key-data": b64(key)})
    assert post(load_webhook_kubeconfig(path, FAST), {}) == {"ok": True}
    # Without the client certificate the same service refuses the handshake.
    bare = kubeconfig(tmp_path, server.url + "/review", {"certificate-authority-data": b64(ca.pem)})
    with pytest.raises(WebhookError, match=r'^Post "https://127\.0\.0\.1:\d+/review\?timeout=30s": '):
        post(load_webhook_kubeconfig(bare, FAST), {})


def test_client_certificate_files_relative_to_kubeconfig(tmp_path: Path, ca: LocalCA, client_ca: LocalCA,
                                                         mtls_service: tuple[Service, ThreadedServer]) -> None:
    _, server = mtls_service
    cert, key = client_ca.pair("kube-apiserver", client=True)
    (tmp_path / "c.crt").write_bytes(cert)
    (tmp_path / "c.key").write_bytes(key)
    ca.write(tmp_path)
    path = kubeconfig(tmp_path, server.url + "/review", {"certificate-authority": "ca.crt"},
                      {"client-certificate": "c.crt", "client-key": "c.key"})
    assert post(load_webhook_kubeconfig(path, FAST), {}) == {"ok": True}


def test_server_from_another_ca_is_refused_unless_insecure(tmp_path: Path,
                                                           service: tuple[Service, ThreadedServer]) -> None:
    _, server = service
    other = LocalCA("other")
    path = kubeconfig(tmp_path, server.url + "/review", {"certificate-authority-data": b64(other.pem)})
    with pytest.raises(WebhookError, match="certificate verify failed"):
        post(load_webhook_kubeconfig(path, FAST), {})
    insecure = kubeconfig(tmp_path, server.url + "/review", {"insecure-skip-tls-verify": True})
    assert post(load_webhook_kubeconfig(insecure, FAST), {})["kind"] == "TokenReview"


def test_system_roots_are_not_trusted_without_ca(tmp_path: Path, service: tuple[Service, ThreadedServer]) -> None:
    _, server = service
    path = kubeconfig(tmp_path, server.url + "/review")
    with pytest.raises(WebhookError, match="certificate verify failed"):
        post(load_webhook_kubeconfig(path, FAST), {})


def _client(tmp_path: Path, ca: LocalCA, server: ThreadedServer, backoff: Backoff = FAST) -> WebhookClient:
    path = kubeconfig(tmp_path, server.url + "/review", {"certificate-authority-data": b64(ca.pem)})
    return load_webhook_kubeconfig(path, backoff)


@pytest.mark.parametrize("status", [500, 503, 504, 429])
def test_transient_answers_are_retried_then_succeed(tmp_path: Path, ca: LocalCA, status: int,
                                                    service: tuple[Service, ThreadedServer]) -> None:
    svc, server = service
    svc.replies = [(status, b"busy", "text/plain"), (status, b"busy", "text/plain"),
                   (200, b'{"done":1}', "application/json")]
    assert post(_client(tmp_path, ca, server), {}) == {"done": 1}
    assert len(svc.requests) == 3


def test_retries_stop_after_five_attempts_with_upstream_message(tmp_path: Path, ca: LocalCA,
                                                                 service: tuple[Service, ThreadedServer]) -> None:
    svc, server = service
    svc.replies = [(500, b"boom\n", "text/plain")]
    with pytest.raises(WebhookError) as e:
        post(_client(tmp_path, ca, server), {})
    assert str(e.value) == 'an error on the server ("boom") has prevented the request from succeeding'
    assert len(svc.requests) == 5


@pytest.mark.parametrize(("status", "body", "ctype", "message"), [
    (400, b"no", "text/plain", "the server rejected our request for an unknown reason"),
    (401, b"", "text/plain", "the server has asked for the client to provide credentials"),
    (403, b"go away", "text/plain", "go away"),
    (404, b"", "text/plain", "the server could not find the requested resource"),
    (418, b"", "text/plain", "the server responded with the status code 418 but did not return more information"),
    (403, b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"denied by policy","code":403}',
     "application/json", "denied by policy"),
])
def test_client_errors_are_not_retried(tmp_path: Path, ca: LocalCA, service: tuple[Service, ThreadedServer],
                                       status: int, body: bytes, ctype: str, message: str) -> None:
    svc, server = service
    svc.replies = [(status, body, ctype)]
    with pytest.raises(WebhookError) as e:
        post(_client(tmp_path, ca, server), {})
    assert str(e.value) == message
    assert len(svc.requests) == 1


def test_binary_error_body_is_not_quoted(tmp_path: Path, ca: LocalCA, service: tuple[Service, ThreadedServer]) -> None:
    svc, server = service
    svc.replies = [(502, b"\x00\x01", "application/octet-stream")]
    with pytest.raises(WebhookError, match=r'^an error on the server \("unknown"\)'):
        post(_client(tmp_path, ca, server, Backoff(duration=0.001, steps=1)), {})


@pytest.mark.parametrize("body", [b"garbage", b"[1,2]", b'"str"', b""])
def test_success_status_with_a_body_that_is_not_an_object(tmp_path: Path, ca: LocalCA, body: bytes,
                                                          service: tuple[Service, ThreadedServer]) -> None:
    svc, server = service
    svc.replies = [(200, body, "application/json")]
    with pytest.raises(WebhookError, match="^couldn't get version/kind; json parse error: "):
        post(_client(tmp_path, ca, server), {})
    assert len(svc.requests) == 1


def test_timeout_is_an_error_and_not_retried(tmp_path: Path, ca: LocalCA,
                                             service: tuple[Service, ThreadedServer]) -> None:
    svc, server = service
    svc.delay = 2.0
    with pytest.raises(WebhookError, match=r"\?timeout=200ms\": context deadline exceeded"):
        post(_client(tmp_path, ca, server), {}, timeout=0.2)
    assert len(svc.requests) == 1


def test_connection_refused(tmp_path: Path, ca: LocalCA) -> None:
    path = kubeconfig(tmp_path, "https://127.0.0.1:1/review", {"certificate-authority-data": b64(ca.pem)})
    with pytest.raises(WebhookError, match=r'^Post "https://127\.0\.0\.1:1/review\?timeout=30s": .*'):
        post(load_webhook_kubeconfig(path, FAST), {})


def test_backoff_is_upstreams() -> None:
    delays = list(Backoff().delays())
    assert len(delays) == 4  # five attempts
    for got, base in zip(delays, (0.5, 0.75, 1.125, 1.6875)):
        assert base <= got <= base * 1.2


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.pop("current-context"), "no configuration has been provided"),
    (lambda d: d.update({"current-context": "nope"}), "context was not found for specified context: nope"),
    (lambda d: d.update({"clusters": []}), 'no server found for cluster "hook"'),
    (lambda d: d["clusters"][0]["cluster"].pop("server"), 'no server found for cluster "hook"'),
    (lambda d: d.update({"users": []}), 'user "apiserver" was not found for context "webhook"'),
    (lambda d: d["clusters"][0]["cluster"].update({"server": "ftp://x"}), "must be an http or https URL"),
    (lambda d: d["clusters"][0]["cluster"].update({"insecure-skip-tls-verify": True}),
     "specifying a root certificates file with the insecure flag is not allowed"),
    (lambda d: d["clusters"][0]["cluster"].update({"certificate-authority-data": "!!"}),
     "certificate-authority-data is not valid base64"),
    (lambda d: d["clusters"][0]["cluster"].update({"certificate-authority-data": b64(b"not pem")}),
     "unable to load root certificates"),
    (lambda d: d["clusters"][0]["cluster"].update({"certificate-authority-data": None,
                                                   "certificate-authority": "missing.crt"}),
     'unable to read certificate-authority ".*missing.crt": No such file or directory'),
    (lambda d: d["users"][0]["user"].update({"client-certificate-data": b64(b"x")}),
     "client-certificate and client-key must be specified together"),
])
def test_bad_kubeconfigs_fail_at_load(tmp_path: Path, ca: LocalCA, edit: Any, message: str) -> None:
    doc = {"clusters": [{"name": "hook", "cluster": {"server": "https://127.0.0.1:1",
                                                     "certificate-authority-data": b64(ca.pem)}}],
           "users": [{"name": "apiserver", "user": {}}],
           "contexts": [{"name": "webhook", "context": {"cluster": "hook", "user": "apiserver"}}],
           "current-context": "webhook"}
    edit(doc)
    path = tmp_path / "k"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(WebhookConfigError, match=message):
        load_webhook_kubeconfig(path)


@pytest.mark.parametrize(("content", "message"), [
    (None, r'error loading config file ".*absent": No such file or directory'),
    ("a: [", 'error loading config file ".*absent": while parsing'),
    ("- 1", 'error loading config file ".*absent": not a kubeconfig document'),
])
def test_unreadable_kubeconfig(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "absent"
    if content is not None:
        path.write_text(content)
    with pytest.raises(WebhookConfigError, match=message):
        load_webhook_kubeconfig(path)


def test_tls_server_name_is_what_the_certificate_must_name(tmp_path: Path, ca: LocalCA,
                                                           service: tuple[Service, ThreadedServer]) -> None:
    _, server = service
    named = kubeconfig(tmp_path, server.url + "/review", {"certificate-authority-data": b64(ca.pem),
                                                          "tls-server-name": "localhost"})
    assert post(load_webhook_kubeconfig(named, FAST), {})["kind"] == "TokenReview"
    wrong = kubeconfig(tmp_path, server.url + "/review", {"certificate-authority-data": b64(ca.pem),
                                                          "tls-server-name": "webhook.example.com"})
    with pytest.raises(WebhookError, match="certificate verify failed"):
        post(load_webhook_kubeconfig(wrong, FAST), {})
