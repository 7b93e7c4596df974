"""Webhook token authentication: the TokenReview decision and the request/cache behaviour against a
local TokenReview service."""
from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web

from kubegate.authn import AuthenticationError, AuthResult
from kubegate.authn.webhook_token import InvalidReview, WebhookTokenAuthenticator, cached, decide, parse_status
from kubegate.webhook import Backoff, load_webhook_kubeconfig
from tests.local_tls import LocalCA, ThreadedServer, server_context


def status(**kw: Any) -> dict[str, Any]:
    return parse_status({"status": kw})


def test_authenticated_user_is_mapped() -> None:
    st = status(authenticated=True, user={"username": "jane", "uid": "42", "groups": ["dev"],
                                          "extra": {"scopes": ["a", "b"]}})
    result = decide(st, (), ())
    assert result is not None
    assert (result.user.name, result.user.uid, result.user.groups) == ("jane", "42", ("dev",))
    assert result.user.extra == {"scopes": ("a", "b")} and result.audiences == ()


def test_rejections() -> None:
    assert decide(status(authenticated=False), (), ()) is None
    assert decide(status(), (), ()) is None
    with pytest.raises(AuthenticationError, match="^token expired$"):
        decide(status(authenticated=False, error="token expired"), (), ())


def test_audiences_as_upstream() -> None:
    ok = {"authenticated": True, "user": {"username": "jane"}}
    # The answer's audiences must intersect the requested ones...
    granted = decide(status(**ok, audiences=["b", "c"]), ("a", "b"), ("x",))
    assert granted is not None and granted.audiences == ("b",)
    assert decide(status(**ok, audiences=["c"]), ("a", "b"), ("a",)) is None
    # ...and when it names none, the API's implicit audiences stand in.
    assert decide(status(**ok), ("a", "b"), ("b",)).audiences == ("b",)  # type: ignore[union-attr]
    assert decide(status(**ok), ("a",), ("b",)) is None
    # An audience mismatch is "not mine" even when the webhook reported an error.
    assert decide(status(authenticated=False, error="x", audiences=["c"]), ("a",), ()) is None


@pytest.mark.parametrize(("answer", "field"), [
    ({"status": []}, "status"), ({"status": {"authenticated": "yes"}}, "status.authenticated"),
    ({"status": {"user": {"groups": "dev"}}}, "status.user.groups"),
    ({"status": {"user": {"groups": [1]}}}, "status.user.groups"),
    ({"status": {"user": {"extra": {"k": "v"}}}}, "status.user.extra.k"),
    ({"status": {"audiences": "a"}}, "status.audiences"),
])
def test_wrongly_typed_answers(answer: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidReview, match=f"invalid TokenReview from the webhook: {field} must be"):
        parse_status(answer)


class Reviewer:
    """A TokenReview service: `tokens` maps a token to the status to answer; others get garbage or errors."""

    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.requests.append(review)
        if self.fail_with:
            return web.Response(status=self.fail_with, text="down")
        st = self.tokens.get(review["spec"]["token"], {"authenticated": False})
        return web.json_response({"apiVersion": review["apiVersion"], "kind": "TokenReview", "status": st})


@pytest.fixture
def reviewer(tmp_path: Path) -> Iterator[tuple[Reviewer, Path]]:
    ca = LocalCA()
    svc = Reviewer()
    app = web.Application()
    app.router.add_post("/tokenreview", svc.handle)
    server = ThreadedServer(app, server_context(ca)).start()
    path = tmp_path / "authn-webhook.kubeconfig"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "authn", "cluster": {"server": server.url + "/tokenreview",
                                                   "certificate-authority-data": base64.b64encode(ca.pem).decode()}}],
        "users": [{"name": "apiserver", "user": {}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "authn", "user": "apiserver"}}],
        "current-context": "ctx"}))
    yield svc, path
    server.stop()


def test_review_sent_and_answers_cached(reviewer: tuple[Reviewer, Path]) -> None:
    svc, path = reviewer
    svc.tokens["good"] = {"authenticated": True, "user": {"username": "jane", "groups": ["dev"]}}
    svc.tokens["bad"] = {"authenticated": False, "error": "revoked"}
    client = load_webhook_kubeconfig(path, Backoff(duration=0.001))
    now = [0.0]
    auth = WebhookTokenAuthenticator(client, "v1", ("api",))
    chain = cached(auth, 120.0)
    chain._clock = lambda: now[0]  # type: ignore[attr-defined]

    async def main() -> None:
        result = await chain.authenticate_token("good", ("api",))
        assert result == AuthResult(result.user, ("api",)) and result.user.name == "jane"  # type: ignore[union-attr]
        assert svc.requests[0] == {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                                   "metadata": {"creationTimestamp": None},
                                   "spec": {"token": "good", "audiences": ["api"]}, "status": {"user": {}}}
        await chain.authenticate_token("good", ("api",))
        assert len(svc.requests) == 1  # success cached
        assert await chain.authenticate_token("unknown", ("api",)) is None
        assert await chain.authenticate_token("unknown", ("api",)) is None
        assert len(svc.requests) == 2  # a plain rejection is cached too
        for _ in range(2):
            with pytest.raises(AuthenticationError, match="^revoked$"):
                await chain.authenticate_token("bad", ("api",))
        assert len(svc.requests) == 4  # errors are not
        now[0] = 121.0
        await chain.authenticate_token("good", ("api",))
        assert len(svc.requests) == 5  # the TTL passed
        await client.close()
    asyncio.run(main())


def test_v1beta1_and_no_audiences(reviewer: tuple[Reviewer, Path]) -> None:
    svc, path = reviewer
    svc.tokens["t"] = {"authenticated": True, "user": {"username": "bob"}}
    client = load_webhook_kubeconfig(path, Backoff(duration=0.001))

    async def main() -> None:
        result = await WebhookTokenAuthenticator(client, "v1beta1", ()).authenticate_token("t", ())
        assert result is not None and result.user.name == "bob"
        assert svc.requests[0]["apiVersion"] == "authentication.k8s.io/v1beta1"
        assert "audiences" not in svc.requests[0]["spec"]
        await client.close()
    asyncio.run(main())


def test_unsupported_version(reviewer: tuple[Reviewer, Path]) -> None:
    with pytest.raises(ValueError, match='unsupported authentication webhook version "v2", supported versions '
                                         'are "v1", "v1beta1"'):
        WebhookTokenAuthenticator(load_webhook_kubeconfig(reviewer[1]), "v2", ())


def test_outage_is_an_authentication_error_without_the_token(reviewer: tuple[Reviewer, Path],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    svc, path = reviewer
    svc.fail_with = 503
    client = load_webhook_kubeconfig(path, Backoff(duration=0.001))

    async def main() -> None:
        with pytest.raises(AuthenticationError, match='an error on the server \\("down"\\)'):
            await WebhookTokenAuthenticator(client, "v1", ()).authenticate_token("s3cret-token", ())
        await client.close()
    asyncio.run(main())
    assert len(svc.requests) == 5  # upstream's five attempts
    assert "Failed to make webhook authenticator request" in caplog.text
    assert "s3cret-token" not in caplog.text
    assert orjson.dumps(svc.requests[0]["spec"]) == b'{"token":"s3cret-token"}'
