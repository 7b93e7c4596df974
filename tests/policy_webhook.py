"""A small OPA-like authorization webhook for tests: SubjectAccessReviews in, decisions out, from an
ordered list of rules, served over HTTPS with a CA of its own from a thread of the test process.
It can also misbehave (hang, answer garbage or 500) to exercise the failure paths."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.local_tls import LocalCA, ThreadedServer, server_context


@dataclass
class Rule:
    """Matches when every given condition holds; `groups` matches if the subject has that group."""
    decision: str  # "allow" | "deny"
    reason: str = ""
    user: str | None = None
    group: str | None = None
    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    path: str | None = None

    def matches(self, spec: dict[str, Any]) -> bool:
        attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
        groups = spec.get("groups", spec.get("group")) or []
        checks = ((self.user, spec.get("user", "")), (self.verb, attrs.get("verb", "")),
                  (self.resource, attrs.get("resource")), (self.namespace, attrs.get("namespace", "")),
                  (self.path, attrs.get("path")))
        return (all(want is None or want == have for want, have in checks)
                and (self.group is None or self.group in groups))


@dataclass
class PolicyWebhook:
    rules: list[Rule] = field(default_factory=list)
    # "ok", or a failure: "hang", "garbage" (200, not JSON), "bad-type" (allowed is a string), "500"
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ca = LocalCA("policy-webhook-ca")
        self._server: ThreadedServer | None = None
        self._stopping = False

    def start(self) -> PolicyWebhook:
        app = web.Application()
        app.router.add_post("/authorize", self._handle)
        self._server = ThreadedServer(app, server_context(self.ca)).start()
        return self

    def stop(self) -> None:
        self._stopping = True  # releases hanging handlers so the server can shut down
        if self._server is not None:
            self._server.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"{self._server.url}/authorize"

    def kubeconfig(self, directory: Path, server: str | None = None) -> Path:
        ca = self.ca.write(directory, "policy-webhook-ca.crt")
        path = directory / "authz-webhook.kubeconfig"
        path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: policy
  cluster:
    server: {server or self.url}
    certificate-authority: {ca.name}
users:
- name: apiserver
  user: {{}}
contexts:
- name: webhook
  context: {{cluster: policy, user: apiserver}}
current-context: webhook
""")
        return path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        review = await request.json()
        self.requests.append(review)
        self.paths.append(request.path_qs)
        while self.mode == "hang" and not self._stopping:
            await asyncio.sleep(0.05)
        if self.mode == "garbage":
            return web.Response(text="<html>not a review</html>", content_type="text/html")
        if self.mode == "500":
            return web.Response(status=500, text="policy engine exploded")
        status: dict[str, Any] = {"allowed": False}
        for rule in self.rules:
            if rule.matches(review.get("spec") or {}):
                status = {"allowed": rule.decision in ("allow", "both"), "reason": rule.reason}
                if rule.decision in ("deny", "both"):
                    status["denied"] = True
                break
        if self.mode == "bad-type":
            status["allowed"] = "yes"
        return web.json_response({"apiVersion": review.get("apiVersion"), "kind": "SubjectAccessReview",
                                  "status": status})
