"""A webhook's matchConditions using `authorizer` through a real server: the webhook (a local HTTPS
server in this process) refuses every ConfigMap it sees, and its condition sends it only the
creations of users who may not list Secrets in the namespace."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.cluster import Cluster
from tests.local_tls import LocalCA, ThreadedServer, server_context

CONFIG = "t-authz-condition"
CONDITION = "!authorizer.group('').resource('secrets').namespace(request.namespace).check('list').allowed()"
SEEN: list[str] = []


async def _deny(http: web.Request) -> web.Response:
    req = (await http.json())["request"]
    SEEN.append(req["userInfo"]["username"])
    return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                              "response": {"uid": req["uid"], "allowed": False,
                                           "status": {"code": 403, "message": "only readers of secrets"}}})


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[ThreadedServer, LocalCA]]:
    ca = LocalCA("webhook-ca")
    app = web.Application()
    app.router.add_post("/deny", _deny)
    server = ThreadedServer(app, server_context(ca)).start()
    yield server, ca
    server.stop()


def _config(url: str, ca: LocalCA, expression: str) -> str:
    hook: dict[str, Any] = {
        "name": "readers.hooks.example.com",
        "clientConfig": {"url": f"{url}/deny", "caBundle": base64.b64encode(ca.pem).decode()},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "objectSelector": {"matchLabels": {"hook": "authz"}},
        "matchConditions": [{"name": "not-a-secret-reader", "expression": expression}],
        "sideEffects": "None", "admissionReviewVersions": ["v1"]}
    return json.dumps({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                       "metadata": {"name": CONFIG}, "webhooks": [hook]})


def _configmap(name: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": {"hook": "authz"}}, "data": {"a": "1"}})


def test_authorizer_in_match_conditions(cluster: Cluster, ns: str, webhook: tuple[ThreadedServer, LocalCA]) -> None:
    server, ca = webhook
    cluster.ok("create", "role", "writer", "-n", ns, "--verb=create", "--resource=configmaps")
    cluster.ok("create", "role", "reader", "-n", ns, "--verb=list", "--resource=secrets")
    cluster.ok("create", "rolebinding", "writers", "-n", ns, "--role=writer", "--user=mc-alice", "--user=mc-bob")
    cluster.ok("create", "rolebinding", "readers", "-n", ns, "--role=reader", "--user=mc-alice")
    alice, bob = cluster.kubeconfig_for("mc-alice"), cluster.kubeconfig_for("mc-bob")
    try:
        cluster.ok("create", "-f", "-", input=_config(server.url, ca, CONDITION))
        SEEN.clear()
        r = cluster.kubectl("create", "-n", ns, "-f", "-", input=_configmap("from-bob"), kubeconfig=bob)
        assert r.code != 0
        assert ('admission webhook "readers.hooks.example.com" denied the request: only readers of secrets'
                in r.stderr), r.stderr
        assert SEEN == ["mc-bob"]

        r = cluster.kubectl("create", "-n", ns, "-f", "-", input=_configmap("from-alice"), kubeconfig=alice)
        assert r.code == 0, r.stderr
        assert SEEN == ["mc-bob"]  # the condition was false: the webhook was not called
        assert cluster.ok("get", "configmap", "from-alice", "-n", ns, "-o", "name").strip() == "configmap/from-alice"
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", CONFIG, "--ignore-not-found")


def test_condition_that_does_not_compile_is_refused(cluster: Cluster, webhook: tuple[ThreadedServer, LocalCA]) -> None:
    server, ca = webhook
    bad = "authorizer.group('').resource('secrets').check('list').allowed() && nothing.here"
    r = cluster.kubectl("create", "-f", "-", input=_config(server.url, ca, bad))
    assert r.code != 0
    assert (f'The ValidatingWebhookConfiguration "{CONFIG}" is invalid: webhooks[0].matchConditions[0].expression: '
            f'Invalid value: "{bad}": compilation failed: ERROR: <input>:1:69: undeclared reference to \'nothing\' '
            "(in container '')") in r.stderr, r.stderr
    code, _, body = cluster.request("POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
                                    json.loads(_config(server.url, ca, bad)))
    assert (code, body["reason"], body["details"]["causes"][0]["field"]) == (
        422, "Invalid", "webhooks[0].matchConditions[0].expression")
