"""admissionReviewVersions through a real server: a webhook listing v1beta1 first gets an
admission.k8s.io/v1beta1 AdmissionReview and its v1beta1 answer is honoured; a list naming no version
kubegate speaks is refused when the configuration is created."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.cluster import Cluster
from tests.local_tls import LocalCA, ThreadedServer, server_context

SEEN: list[dict[str, Any]] = []


async def _handle(http: web.Request) -> web.Response:
    review = await http.json()
    SEEN.append(review)
    req = review["request"]
    patch = base64.b64encode(json.dumps([{"op": "add", "path": "/data/reviewed", "value": "v1beta1"}]).encode())
    # v1beta1 answers were never checked for the request's uid.
    return web.json_response({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                              "response": {"uid": "not-" + req["uid"], "allowed": True, "warnings": ["said v1beta1"],
                                           "patchType": "JSONPatch", "patch": patch.decode()}})


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[ThreadedServer, LocalCA]]:
    ca = LocalCA("webhook-ca")
    app = web.Application()
    app.router.add_post("/review", _handle)
    server = ThreadedServer(app, server_context(ca)).start()
    yield server, ca
    server.stop()


def _config(url: str, ca: LocalCA, versions: list[str]) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "t-review-versions"},
            "webhooks": [{"name": "v1beta1.hooks.example.com",
                          "clientConfig": {"url": f"{url}/review", "caBundle": base64.b64encode(ca.pem).decode()},
                          "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                     "resources": ["configmaps"]}],
                          "objectSelector": {"matchLabels": {"hook": "review-versions"}},
                          "sideEffects": "None", "admissionReviewVersions": versions}]}


def test_v1beta1_is_sent_and_its_answer_applied(cluster: Cluster, ns: str,
                                                webhook: tuple[ThreadedServer, LocalCA]) -> None:
    server, ca = webhook
    cluster.ok("apply", "-f", "-", input=json.dumps(_config(server.url, ca, ["v1beta1", "v1"])))
    try:
        cm = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "cm", "labels": {"hook": "review-versions"}}, "data": {"a": "1"}}
        r = cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(cm))
        assert r.code == 0, r.stderr
        assert "Warning: said v1beta1" in r.stderr
        assert SEEN[-1]["apiVersion"] == "admission.k8s.io/v1beta1"
        assert SEEN[-1]["kind"] == "AdmissionReview"
        assert SEEN[-1]["request"]["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        data = json.loads(cluster.ok("get", "configmap", "cm", "-n", ns, "-o", "json"))["data"]
        assert data == {"a": "1", "reviewed": "v1beta1"}
    finally:
        cluster.kubectl("delete", "mutatingwebhookconfiguration", "t-review-versions", "--ignore-not-found")


def test_unknown_versions_are_refused_at_create(cluster: Cluster) -> None:
    status, _, body = cluster.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                                      _config("https://127.0.0.1:1", LocalCA("unused"), ["v2"]))
    assert status == 422
    assert body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "webhooks[0].admissionReviewVersions",
        "message": 'Invalid value: ["v2"]: must include at least one of v1, v1beta1'}]
