"""Admission webhooks and ValidatingAdmissionPolicy through a real server: a local HTTPS webhook
with its own CA in a thread of this process, configurations written with kubectl."""
from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.cluster import Cluster
from tests.local_tls import LocalCA, ThreadedServer, server_context

SEEN: list[dict[str, Any]] = []


def _review(request: dict[str, Any], **response: Any) -> web.Response:
    return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                              "response": {"uid": request["uid"], **response}})


def _patch(ops: list[dict[str, Any]]) -> dict[str, str]:
    return {"patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(ops).encode()).decode()}


async def _handle(http: web.Request) -> web.Response:
    case = http.match_info["case"]
    req = (await http.json())["request"]
    SEEN.append({"case": case, "query": dict(http.query), **req})
    if case == "deny":
        return _review(req, allowed=False, status={"code": 403, "message": "no configmaps named " + req["name"]})
    if case == "mutate":
        return _review(req, allowed=True, warnings=["mutated by the test"],
                       **_patch([{"op": "add", "path": "/data/added", "value": "by-webhook"}]))
    if case == "slow":
        await asyncio.sleep(5)
        return _review(req, allowed=True)
    if case == "garbage":
        return web.Response(text="this is not json", content_type="application/json")
    if case == "breaks":
        return _review(req, allowed=True, **_patch([{"op": "replace", "path": "/data", "value": 42}]))
    return _review(req, allowed=True)


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[ThreadedServer, LocalCA]]:
    ca = LocalCA("webhook-ca")
    app = web.Application()
    app.router.add_post("/{case}", _handle)
    server = ThreadedServer(app, server_context(ca)).start()
    yield server, ca
    server.stop()


def _config(cluster: Cluster, kind: str, name: str, url: str, ca: LocalCA, case: str, **extra: Any) -> None:
    hook = {"name": f"{case}.hooks.example.com",
            "clientConfig": {"url": f"{url}/{case}", "caBundle": base64.b64encode(ca.pem).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}],
            "objectSelector": {"matchLabels": {"hook": case}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"], **extra}
    doc = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
           "webhooks": [hook]}
    cluster.ok("apply", "-f", "-", input=json.dumps(doc))


def _configmap(name: str, case: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": {"hook": case}}, "data": {"a": "1"}})


def _create(cluster: Cluster, ns: str, name: str, case: str) -> Any:
    return cluster.kubectl("create", "-n", ns, "-f", "-", input=_configmap(name, case))


def test_webhooks(cluster: Cluster, ns: str, webhook: tuple[ThreadedServer, LocalCA]) -> None:
    server, ca = webhook
    cfgs = [("ValidatingWebhookConfiguration", "t-deny", "deny", {}),
            ("MutatingWebhookConfiguration", "t-mutate", "mutate", {}),
            ("ValidatingWebhookConfiguration", "t-slow", "slow", {"timeoutSeconds": 1}),
            ("ValidatingWebhookConfiguration", "t-garbage", "garbage", {}),
            ("ValidatingWebhookConfiguration", "t-garbage-ignored", "garbage-ignored",
             {"failurePolicy": "Ignore", "clientConfig": {"url": "https://127.0.0.1:1/nothing"}}),
            ("MutatingWebhookConfiguration", "t-breaks", "breaks", {})]
    try:
        for kind, name, case, extra in cfgs:
            if "clientConfig" in extra:
                hook_extra = dict(extra)
                cc = hook_extra.pop("clientConfig")
                _config(cluster, kind, name, cc["url"], ca, case, **hook_extra)
            else:
                _config(cluster, kind, name, server.url, ca, case, **extra)

        r = _create(cluster, ns, "bad", "deny")
        assert r.code != 0
        assert 'admission webhook "deny.hooks.example.com" denied the request: no configmaps named bad' in r.stderr
        seen = [s for s in SEEN if s["case"] == "deny"][-1]
        assert seen["operation"] == "CREATE" and seen["namespace"] == ns
        assert seen["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        assert seen["query"] == {"timeout": "10s"}
        assert seen["userInfo"]["username"]

        r = _create(cluster, ns, "changed", "mutate")
        assert r.code == 0, r.stderr
        assert "Warning: mutated by the test" in r.stderr
        data = json.loads(cluster.ok("get", "configmap", "changed", "-n", ns, "-o", "json"))["data"]
        assert data == {"a": "1", "added": "by-webhook"}

        r = _create(cluster, ns, "late", "slow")
        assert r.code != 0
        assert ('Internal error occurred: failed calling webhook "slow.hooks.example.com": failed to call webhook: '
                f'Post "{server.url}/slow?timeout=1s": context deadline exceeded') in r.stderr

        r = _create(cluster, ns, "junk", "garbage")
        assert r.code != 0
        assert 'failed calling webhook "garbage.hooks.example.com"' in r.stderr

        # failurePolicy Ignore: an unreachable webhook lets the write through.
        assert _create(cluster, ns, "ignored", "garbage-ignored").code == 0

        r = _create(cluster, ns, "broken", "breaks")
        assert r.code != 0
        assert "Internal error occurred: json: cannot unmarshal number" in r.stderr
        assert cluster.kubectl("get", "configmap", "broken", "-n", ns).code != 0

        # dry run reaches webhooks whose sideEffects allow it
        r = cluster.kubectl("create", "-n", ns, "--dry-run=server", "-f", "-", input=_configmap("dry", "deny"))
        assert r.code != 0 and "denied the request" in r.stderr
        assert [s for s in SEEN if s["case"] == "deny"][-1]["dryRun"] is True
    finally:
        for kind, name, _, _ in cfgs:
            cluster.kubectl("delete", kind.lower(), name, "--ignore-not-found")


def test_webhook_configuration_validation(cluster: Cluster) -> None:
    doc = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": "t-invalid"},
           "webhooks": [{"name": "short", "clientConfig": {"url": "http://example.com/x"},
                         "admissionReviewVersions": ["v1"], "timeoutSeconds": 31}]}
    r = cluster.kubectl("create", "-f", "-", input=json.dumps(doc))
    assert r.code != 0
    for text in ('webhooks[0].name: Invalid value: "short": should be a domain with at least three segments '
                 'separated by dots',
                 "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                 "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
                 "webhooks[0].clientConfig.url: Invalid value: \"http://example.com/x\": 'https' is the only "
                 "allowed URL scheme"):
        assert text in r.stderr, r.stderr


POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: t-max-keys}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["configmaps"]}
    objectSelector: {matchLabels: {vap: test}}
  variables:
  - {name: keys, expression: "has(object.data) ? size(object.data) : 0"}
  validations:
  - expression: "variables.keys <= int(params.data.max)"
    messageExpression: "'too many keys: ' + string(variables.keys)"
    reason: Forbidden
  - expression: "!object.metadata.name.startsWith('warn')"
    message: names starting with warn are frowned upon
"""

BINDING = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: t-max-keys-%(name)s}
spec:
  policyName: t-max-keys
  paramRef: {name: limits, namespace: %(ns)s, parameterNotFoundAction: Deny}
  validationActions: [%(actions)s]
"""


def _labelled(name: str, keys: int) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": {"vap": "test"}},
                       "data": {f"k{i}": "v" for i in range(keys)}})


def test_validating_admission_policy(cluster: Cluster, ns: str) -> None:
    cluster.ok("create", "configmap", "limits", "-n", ns, "--from-literal=max=2")
    try:
        cluster.ok("apply", "-f", "-", input=POLICY)
        cluster.ok("apply", "-f", "-", input=BINDING % {"actions": "Deny", "name": "deny", "ns": ns})
        assert cluster.kubectl("create", "-n", ns, "-f", "-", input=_labelled("small", 2)).code == 0
        r = cluster.kubectl("create", "-n", ns, "-f", "-", input=_labelled("big", 3))
        assert r.code != 0
        assert ('configmaps "big" is forbidden: ValidatingAdmissionPolicy \'t-max-keys\' with binding '
                '\'t-max-keys-deny\' denied request: too many keys: 3') in r.stderr

        code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", json.loads(_labelled("big", 3)))
        assert (code, body["reason"], body["code"]) == (403, "Forbidden", 403)
        code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                        json.loads(_labelled("warn-x", 1)))
        assert (code, body["reason"]) == (422, "Invalid")
        assert body["message"].endswith("denied request: names starting with warn are frowned upon")

        cluster.ok("delete", "validatingadmissionpolicybinding", "t-max-keys-deny")
        cluster.ok("apply", "-f", "-", input=BINDING % {"actions": "Warn", "name": "warn", "ns": ns})
        r = cluster.kubectl("create", "-n", ns, "-f", "-", input=_labelled("warned", 3))
        assert r.code == 0, r.stderr
        assert ("Warning: Validation failed for ValidatingAdmissionPolicy 't-max-keys' with binding "
                "'t-max-keys-warn': too many keys: 3") in r.stderr
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding", "t-max-keys-deny", "t-max-keys-warn",
                        "--ignore-not-found")
        cluster.kubectl("delete", "validatingadmissionpolicy", "t-max-keys", "--ignore-not-found")


def test_policy_that_does_not_compile_is_refused(cluster: Cluster) -> None:
    bad = POLICY.replace("variables.keys <= int(params.data.max)", "object.data ==").replace(
        "t-max-keys", "t-bad-cel")
    r = cluster.kubectl("create", "-f", "-", input=bad)
    assert r.code != 0
    assert ('The ValidatingAdmissionPolicy "t-bad-cel" is invalid: '
            'spec.validations[0].expression: Invalid value: "object.data ==": compilation failed: ERROR: '
            "<input>:1:15: Syntax error:") in r.stderr, r.stderr
    r = cluster.kubectl("create", "-f", "-", input=bad.replace("object.data ==", "nothing.here == 1"))
    assert "undeclared reference to 'nothing'" in r.stderr, r.stderr
