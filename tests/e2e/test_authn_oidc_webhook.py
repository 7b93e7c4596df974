"""OIDC and webhook token authentication on a real server: a local OpenID provider and a local
TokenReview service (each with its own CA, in threads of this process), curl, kubectl and TokenReview."""
from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.e2e.cluster import Cluster, Result, golden
from tests.local_tls import LocalCA, ThreadedServer, server_context
from tests.oidc_provider import Provider

SSR_BODY = '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'
UNAUTHORIZED = golden("errors/401-bad-bearer-token.json")["response"]["body"]
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"  # kubegate's default issuer, hence audience


class TokenReviewService:
    """Answers TokenReviews: known tokens authenticate; `mode-*` tokens misbehave as their name says."""

    USERS = {
        "wh-alice": {"authenticated": True, "user": {"username": "alice-wh", "uid": "wh-1", "groups": ["wh-devs"],
                                                     "extra": {"scopes": ["read", "write"]}}},
        "wh-revoked": {"authenticated": False, "error": "token has been revoked"},
        # Would authenticate, but answers too late.
        "mode-slow": {"authenticated": True, "user": {"username": "too-late"}},
    }

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        review = await request.json()
        self.requests.append(review)
        token = review["spec"]["token"]
        if token == "mode-garbage":
            return web.Response(text="<html>surprise</html>", content_type="text/html")
        if token == "mode-500":
            return web.Response(status=500, text="backend exploded")
        if token == "mode-slow":
            await asyncio.sleep(35)  # beyond the client's 30 s request timeout
        status = self.USERS.get(token, {"authenticated": False})
        return web.json_response({"apiVersion": review["apiVersion"], "kind": "TokenReview", "status": status})

    def count(self, token: str) -> int:
        return sum(1 for r in self.requests if r["spec"]["token"] == token)


def webhook_kubeconfig(path: Path, server: str, ca_pem: bytes) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "webhook",
        "clusters": [{"name": "authn", "cluster": {"server": server,
                                                   "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "kube-apiserver", "user": {}}],
        "contexts": [{"name": "webhook", "context": {"cluster": "authn", "user": "kube-apiserver"}}]}))
    return path


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Provider, TokenReviewService, Path]]:
    d = tmp_path_factory.mktemp("oidc-webhook")
    provider = Provider(LocalCA("oidc-provider-ca")).start()
    reviews = TokenReviewService()
    app = web.Application()
    app.router.add_post("/authenticate", reviews.handle)
    webhook_ca = LocalCA("token-webhook-ca")
    hook = ThreadedServer(app, server_context(webhook_ca)).start()
    kc = webhook_kubeconfig(d / "authn-webhook.kubeconfig", hook.url + "/authenticate", webhook_ca.pem)
    yield provider, reviews, kc
    hook.stop()
    provider.stop()


@pytest.fixture(scope="module")
def oc(services: tuple[Provider, TokenReviewService, Path],
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    provider, _, kc = services
    d = tmp_path_factory.mktemp("oidc-cluster")
    ca_file = provider.ca.write(d, "oidc-ca.crt")
    c = Cluster(d / "data", [
        "--oidc-issuer-url", provider.issuer, "--oidc-client-id", "kubegate", "--oidc-ca-file", str(ca_file),
        "--oidc-username-claim", "email", "--oidc-groups-claim", "groups", "--oidc-groups-prefix", "oidc:",
        "--oidc-required-claim", "tier=gold", "--oidc-signing-algs", "RS256,ES256",
        "--authentication-token-webhook-config-file", str(kc), "--authentication-token-webhook-version", "v1",
        "--authentication-token-webhook-cache-ttl", "2m"]).start()
    wait_for_oidc(c, provider)
    yield c
    c.stop()


def wait_for_oidc(c: Cluster, provider: Provider) -> None:
    """Discovery runs in the background after start; until it has, tokens get 401."""
    deadline = time.monotonic() + 20
    while whoami(c, provider.token(tier="gold")).code != 201:
        assert time.monotonic() < deadline, c.log.read_text()
        time.sleep(0.2)


def whoami(c: Cluster, token: str, *args: str) -> Result:
    return c.curl("/apis/authentication.k8s.io/v1/selfsubjectreviews", "-X", "POST", "-H",
                  "Content-Type: application/json", "-d", SSR_BODY, "-H", f"Authorization: Bearer {token}",
                  *args, admin=False)


def user_info(r: Result) -> dict[str, Any]:
    assert r.code == 201, r
    return json.loads(r.stdout)["status"]["userInfo"]


def assert_unauthorized(r: Result) -> None:
    assert r.code == 401, r
    assert json.loads(r.stdout) == UNAUTHORIZED


def token_kubeconfig(c: Cluster, name: str, token: str) -> str:
    path = c.data_dir.parent / f"{name}.kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": "kubegate", "cluster": {"server": c.url, "certificate-authority": c.ca}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "kubegate", "user": name}}]}))
    return str(path)


def whoami_table(out: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(" ") for line in out.splitlines() if line.strip())}


def token_review(c: Cluster, token: str) -> dict[str, Any]:
    status, _, body = c.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                 "spec": {"token": token}})
    assert status == 201, body
    return body["status"]


# --- OIDC ----------------------------------------------------------------------------------------

def test_oidc_token_with_curl(oc: Cluster, services: tuple[Provider, TokenReviewService, Path]) -> None:
    provider, _, _ = services
    info = user_info(whoami(oc, provider.token(tier="gold", jti="id-77")))
    assert info == {"username": "jane@example.com", "groups": ["oidc:devs", "oidc:ops", "system:authenticated"],
                    "extra": {"authentication.kubernetes.io/credential-id": ["JTI=id-77"]}}
    # A single string works as the groups claim too.
    assert user_info(whoami(oc, provider.token(tier="gold", groups="admins")))["groups"] == [
        "oidc:admins", "system:authenticated"]


def test_oidc_token_with_kubectl_and_rbac(oc: Cluster, services: tuple[Provider, TokenReviewService, Path]) -> None:
    provider, _, _ = services
    kc = token_kubeconfig(oc, "oidc-jane", provider.token(tier="gold", email="dev@example.com", groups=["team-a"]))
    assert whoami_table(oc.ok("auth", "whoami", kubeconfig=kc)) == {
        "ATTRIBUTE": "VALUE", "Username": "dev@example.com", "Groups": "[oidc:team-a system:authenticated]"}
    r = oc.kubectl("get", "namespaces", kubeconfig=kc)
    assert r.code == 1 and 'User "dev@example.com" cannot list resource "namespaces"' in r.stderr
    oc.ok("create", "clusterrolebinding", "oidc-team-a-view", "--clusterrole=view", "--group=oidc:team-a")
    oc.ok("create", "namespace", "oidc-e2e")
    deadline = time.monotonic() + 15
    while oc.kubectl("get", "pods", "-n", "oidc-e2e", kubeconfig=kc).code != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "No resources found" in oc.kubectl("get", "pods", "-n", "oidc-e2e", kubeconfig=kc).stderr


def test_oidc_token_review_as_vault_would(oc: Cluster, services: tuple[Provider, TokenReviewService, Path]) -> None:
    provider, _, _ = services
    status = token_review(oc, provider.token(tier="gold"))
    assert status["authenticated"] is True and status["audiences"] == [API_AUDIENCE]
    assert status["user"]["username"] == "jane@example.com"
    status = token_review(oc, provider.token(tier="gold", exp=int(time.time()) - 5))
    assert status == {"user": {}, "error": status["error"]}
    assert status["error"].startswith(
        "[invalid bearer token, oidc: verify token: oidc: token is expired (Token Expiry: ")


def test_oidc_key_rotation_without_restart(oc: Cluster, services: tuple[Provider, TokenReviewService, Path]) -> None:
    provider, _, _ = services
    old_unused = provider.token(tier="gold", email="old@example.com")
    requests_before = provider.jwks_requests
    provider.rotate("ES256")
    fresh = provider.token(tier="gold", email="rotated@example.com")
    # The unknown kid makes kubegate refetch the JWKS (at most every few seconds).
    deadline = time.monotonic() + 20
    while (r := whoami(oc, fresh)).code != 201:
        assert r.code == 401 and time.monotonic() < deadline, r
        time.sleep(0.5)
    assert user_info(r)["username"] == "rotated@example.com"
    assert provider.jwks_requests > requests_before
    # The old key left the provider's key set, so tokens it signed no longer verify.
    assert_unauthorized(whoami(oc, old_unused))


def _bad_tokens(provider: Provider) -> dict[str, str]:
    unpublished = provider.add_key("RS256", kid="never-published")
    token_unknown_kid = provider.token(tier="gold", kid=unpublished)
    del provider.keys[unpublished]
    now = int(time.time())
    return {
        "expired": provider.token(tier="gold", exp=now - 60),
        "not yet valid": provider.token(tier="gold", nbf=now + 3600),
        "wrong audience": provider.token(tier="gold", aud="another-client"),
        "wrong issuer": provider.token(tier="gold", iss="https://login.example.com"),
        "bad signature": provider.forged_token(tier="gold"),
        "alg none": provider.unsigned_token(tier="gold"),
        "unknown kid": token_unknown_kid,
        "required claim missing": provider.token(),
        "required claim wrong": provider.token(tier="silver"),
        "email not verified": provider.token(tier="gold", email_verified=False),
        "truncated": provider.token(tier="gold")[:-10],
    }


def test_bad_oidc_tokens_are_401(oc: Cluster, services: tuple[Provider, TokenReviewService, Path]) -> None:
    provider, _, _ = services
    for name, token in _bad_tokens(provider).items():
        r = whoami(oc, token)
        assert r.code == 401 and json.loads(r.stdout) == UNAUTHORIZED, (name, r)
        r = oc.curl("/api/v1/namespaces/default/pods", "-H", f"Authorization: Bearer {token}", admin=False)
        assert r.code == 401 and json.loads(r.stdout) == UNAUTHORIZED, (name, r)


# --- webhook -------------------------------------------------------------------------------------

def test_webhook_token_with_curl(oc: Cluster, services: tuple[Provider, TokenReviewService, Path]) -> None:
    _, reviews, _ = services
    assert user_info(whoami(oc, "wh-alice")) == {
        "username": "alice-wh", "uid": "wh-1", "groups": ["wh-devs", "system:authenticated"],
        "extra": {"scopes": ["read", "write"]}}
    sent = next(r for r in reviews.requests if r["spec"]["token"] == "wh-alice")
    assert sent == {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"creationTimestamp": None},
                    "spec": {"token": "wh-alice", "audiences": [API_AUDIENCE]}, "status": {"user": {}}}


def test_webhook_token_with_kubectl(oc: Cluster) -> None:
    kc = token_kubeconfig(oc, "wh-alice", "wh-alice")
    out = oc.ok("auth", "whoami", kubeconfig=kc)
    assert whoami_table(out) == {
        "ATTRIBUTE": "VALUE", "Username": "alice-wh", "UID": "wh-1", "Groups": "[wh-devs system:authenticated]",
        "Extra:": "scopes   [read write]"}
    r = oc.kubectl("get", "secrets", "-n", "default", kubeconfig=kc)
    assert r.code == 1 and 'User "alice-wh" cannot list resource "secrets"' in r.stderr


def test_webhook_rejections_are_cached(oc: Cluster, services: tuple[Provider, TokenReviewService, Path]) -> None:
    _, reviews, _ = services
    for _ in range(3):
        assert_unauthorized(whoami(oc, "wh-nobody"))
    assert reviews.count("wh-nobody") == 1  # a plain "not authenticated" is kept for the cache TTL
    for _ in range(2):
        assert_unauthorized(whoami(oc, "wh-revoked"))
    assert reviews.count("wh-revoked") == 2  # an answer with an error is not


def test_webhook_error_reaches_token_review(oc: Cluster) -> None:
    assert token_review(oc, "wh-revoked") == {"user": {}, "error": "[invalid bearer token, token has been revoked]"}


def test_misbehaving_webhook_is_401_never_500(oc: Cluster, services: tuple[Provider, TokenReviewService, Path]) -> None:
    _, reviews, _ = services
    assert_unauthorized(whoami(oc, "mode-garbage"))
    assert reviews.count("mode-garbage") == 1
    assert_unauthorized(whoami(oc, "mode-500"))
    assert reviews.count("mode-500") == 5  # upstream's retry: five attempts with backoff


def test_webhook_timing_out_is_401(oc: Cluster) -> None:
    """The webhook answers after kubegate's 30 s request timeout (upstream's); curl waits longer."""
    p = subprocess.run(["curl", "-sS", "--max-time", "60", "--cacert", oc.ca, "-w", "\n%{http_code}", "-X", "POST",
                        "-H", "Content-Type: application/json", "-d", SSR_BODY, "-H", "Authorization: Bearer mode-slow",
                        oc.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews"],
                       capture_output=True, text=True, timeout=90)
    body, _, code = p.stdout.rpartition("\n")
    assert_unauthorized(Result(int(code), body, p.stderr))


def test_webhook_down_is_401(tmp_path: Path, services: tuple[Provider, TokenReviewService, Path]) -> None:
    kc = webhook_kubeconfig(tmp_path / "down.kubeconfig", "https://127.0.0.1:1/authenticate", LocalCA().pem)
    c = Cluster(tmp_path / "data", ["--authentication-token-webhook-config-file", str(kc)]).start()
    try:
        assert_unauthorized(whoami(c, "wh-alice"))
        assert "Failed to make webhook authenticator request" in c.log.read_text()
        assert "wh-alice" not in c.log.read_text()  # tokens never reach the log
    finally:
        c.stop()


@pytest.mark.parametrize(("args", "message"), [
    (["--oidc-issuer-url", "https://issuer.example.com"],
     "oidc-issuer-url and oidc-client-id must be specified together when any oidc-* flags are set"),
    (["--oidc-issuer-url", "http://issuer.example.com", "--oidc-client-id", "k"], "URL scheme must be https"),
    (["--oidc-issuer-url", "https://i.example.com", "--oidc-client-id", "k", "--oidc-signing-algs", "HS256"],
     'oidc: unsupported signing alg: "HS256"'),
    (["--authentication-token-webhook-config-file", "/nonexistent/webhook.kubeconfig"],
     'error loading config file "/nonexistent/webhook.kubeconfig"'),
    (["--authentication-token-webhook-config-file", "{kc}", "--authentication-token-webhook-version", "v2"],
     'unsupported authentication webhook version "v2"'),
])
def test_bad_flags_stop_start_up(tmp_path: Path, services: tuple[Provider, TokenReviewService, Path],
                                 args: list[str], message: str) -> None:
    args = [a.replace("{kc}", str(services[2])) for a in args]
    c = Cluster(tmp_path / "data", args)
    with pytest.raises(RuntimeError, match="exited early"):
        c.start()
    assert f"error: {message}" in c.log.read_text() or message in c.log.read_text()
