"""Pure parts of the admission webhooks: matching, the AdmissionReview, response checks, errors,
and the configurations' validation."""
from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
import pytest

from kubegate.admission import webhooks
from kubegate.admission.chain import AdmissionChain
from kubegate.admission.interface import AdmissionRequest
from kubegate.admission.matching import match_rules, namespace_matches, object_matches, rule_matches
from kubegate.api import errors
from kubegate.api.resources import lookup
from kubegate.api.validation import validate
from kubegate.authn.user import UserInfo

PODS = lookup("", "v1", "pods")
SAR_V1BETA1 = lookup("authorization.k8s.io", "v1beta1", "subjectaccessreviews")
NODES = lookup("", "v1", "nodes")
NAMESPACES = lookup("", "v1", "namespaces")
VWC = lookup("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
RULE = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}


def _req(resource: Any = PODS, namespace: str = "ns", obj: Any = None, operation: str = "CREATE",
         subresource: str = "") -> AdmissionRequest:
    obj = {"metadata": {"name": "p", "labels": {"app": "x"}}} if obj is None else obj
    return AdmissionRequest(operation, resource, namespace, "p", UserInfo("alice", "u1", ("g",)), obj,
                            subresource=subresource)


def test_rules() -> None:
    assert rule_matches(RULE, "CREATE", PODS, "", "ns")
    assert not rule_matches(RULE, "UPDATE", PODS, "", "ns")
    assert not rule_matches(RULE, "CREATE", PODS, "status", "ns")
    assert rule_matches({**RULE, "resources": ["pods/*"]}, "CREATE", PODS, "status", "ns")
    assert rule_matches({**RULE, "resources": ["*/*"], "operations": ["*"]}, "DELETE", PODS, "binding", "ns")
    assert not rule_matches({**RULE, "resources": ["*"]}, "CREATE", PODS, "status", "ns")
    assert not rule_matches({**RULE, "scope": "Cluster"}, "CREATE", PODS, "", "ns")
    assert rule_matches({**RULE, "resources": ["nodes"], "scope": "Cluster"}, "CREATE", NODES, "", "")
    assert not rule_matches({**RULE, "resources": ["nodes"], "scope": "Namespaced"}, "CREATE", NODES, "", "")


def test_match_policy_equivalent() -> None:
    rule = {"operations": ["*"], "apiGroups": ["authorization.k8s.io"], "apiVersions": ["v1"],
            "resources": ["subjectaccessreviews"]}
    matched = match_rules([rule], "CREATE", SAR_V1BETA1, "", "", "Equivalent")
    assert matched is not None and matched.version == "v1"
    assert match_rules([rule], "CREATE", SAR_V1BETA1, "", "", "Exact") is None


def test_selectors() -> None:
    labelled = {"metadata": {"name": "ns", "labels": {"env": "prod"}}}
    sel = {"matchLabels": {"env": "prod"}}
    assert namespace_matches(sel, _req(), lambda name: labelled)
    assert not namespace_matches(sel, _req(), lambda name: {"metadata": {"name": "ns"}})
    assert namespace_matches(sel, _req(NODES, ""), lambda name: None)  # cluster-scoped: always
    assert namespace_matches(sel, _req(NAMESPACES, "", labelled), lambda name: None)  # its own labels
    assert object_matches({"matchLabels": {"app": "x"}}, _req())
    assert not object_matches({"matchLabels": {"app": "y"}}, _req())
    assert object_matches({}, _req())


def test_review_request() -> None:
    req = _req()
    req.dry_run = True
    body = webhooks.review_request(req, "uid-1")
    assert body["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert body["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert body["userInfo"] == {"username": "alice", "uid": "u1", "groups": ["g"]}
    assert body["options"] == {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
    assert body["oldObject"] is None and body["dryRun"] is True and "subResource" not in body


def _resp(**response: Any) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", **response}}


@pytest.mark.parametrize("doc, mutating, message", [
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, True, "webhook response was absent"),
    (_resp(uid="other"), True, 'expected response.uid="u", got "other"'),
    ({**_resp(allowed=True), "apiVersion": "admission.k8s.io/v1beta2"}, True,
     "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got admission.k8s.io/v1beta2, "
     "Kind=AdmissionReview"),
    (_resp(allowed=True, patch="W10="), True, "webhook returned response.patch but not response.patchType"),
    (_resp(allowed=True, patchType="JSONPatch"), True, "webhook returned response.patchType but not response.patch"),
    (_resp(allowed=True, patchType="Merge", patch="W10="), True,
     'webhook returned invalid response.patchType of "Merge"'),
    (_resp(allowed=True, patchType="JSONPatch", patch="W10="), False, "validating webhook may not return response.patch"),
])
def test_verify_response_errors(doc: dict[str, Any], mutating: bool, message: str) -> None:
    with pytest.raises(ValueError) as e:
        webhooks.verify_response(doc, "u", mutating)
    assert str(e.value) == message


def test_verify_response_patch_and_extras() -> None:
    ops = [{"op": "add", "path": "/x", "value": 1}]
    v = webhooks.verify_response(_resp(allowed=True, patchType="JSONPatch",
                                       patch=base64.b64encode(orjson.dumps(ops)).decode(),
                                       warnings=["careful"], auditAnnotations={"k": "v"}), "u", True)
    assert v.allowed and v.patch == ops and v.warnings == ["careful"] and v.audit_annotations == {"k": "v"}


def test_rejection() -> None:
    e = webhooks.rejection("w.example.com", {"code": 200, "message": "no"})
    assert (e.code, e.message) == (400, 'admission webhook "w.example.com" denied the request: no')
    e = webhooks.rejection("w.example.com", {"code": 403, "reason": "Forbidden"})
    assert (e.code, e.reason, e.message) == (403, "Forbidden",
                                             'admission webhook "w.example.com" denied the request: Forbidden')
    assert webhooks.rejection("w.example.com", {}).message == \
        'admission webhook "w.example.com" denied the request without explanation'


class _FakeDispatcher(webhooks.Dispatcher):
    """Answers calls from a table instead of the network."""

    def __init__(self, hooks: list[dict[str, Any]], answers: dict[str, Any]) -> None:
        super().__init__(lambda: [{"metadata": {"name": "cfg"}, "webhooks": hooks}], lambda name: None)
        self.answers = answers
        self.calls: list[str] = []

    async def call(self, hook: webhooks.Hook, req: AdmissionRequest, matched: Any, mutating: bool) -> webhooks.Verdict:
        self.calls.append(hook.name)
        answer = self.answers[hook.name]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _hook(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "rules": [RULE], "sideEffects": "None", **extra}


def _verdict(patch: list[Any] | None = None, allowed: bool = True) -> webhooks.Verdict:
    return webhooks.Verdict(allowed, {}, patch, [], {})


def test_mutating_reinvocation_and_annotations() -> None:
    d = _FakeDispatcher([_hook("a.x.io", reinvocationPolicy="IfNeeded"), _hook("b.x.io")],
                        {"a.x.io": _verdict(), "b.x.io": _verdict([{"op": "add", "path": "/spec", "value": {}}])})
    req = _req(obj={"metadata": {"name": "p"}})
    asyncio.run(AdmissionChain([webhooks.MutatingAdmissionWebhook(d)]).admit(req))
    assert d.calls == ["a.x.io", "b.x.io", "a.x.io"]
    assert req.obj == {"metadata": {"name": "p"}, "spec": {}}
    assert orjson.loads(req.annotations["mutation.webhook.admission.k8s.io/round_0_index_1"]) == \
        {"configuration": "cfg", "webhook": "b.x.io", "mutated": True}
    assert "mutation.webhook.admission.k8s.io/round_1_index_0" in req.annotations


def test_failure_policy() -> None:
    failing = webhooks.CallError("a.x.io", "failed to call webhook: boom")
    d = _FakeDispatcher([_hook("a.x.io", failurePolicy="Ignore")], {"a.x.io": failing})
    req = _req()
    asyncio.run(webhooks.ValidatingAdmissionWebhook(d).validate(req))
    assert req.annotations == {"failed-open.validating.webhook.admission.k8s.io/round_0_index_0": "a.x.io"}
    d = _FakeDispatcher([_hook("a.x.io")], {"a.x.io": failing})
    with pytest.raises(errors.StatusError) as e:
        asyncio.run(webhooks.ValidatingAdmissionWebhook(d).validate(_req()))
    assert (e.value.code, e.value.message) == (
        500, 'Internal error occurred: failed calling webhook "a.x.io": failed to call webhook: boom')


def test_bad_patch_is_internal_error() -> None:
    d = _FakeDispatcher([_hook("a.x.io")], {"a.x.io": _verdict([{"op": "remove", "path": "/nothing"}])})
    with pytest.raises(errors.StatusError) as e:
        asyncio.run(webhooks.MutatingAdmissionWebhook(d).admit(_req()))
    assert e.value.code == 500 and e.value.message.startswith("Internal error occurred: ")


def test_dry_run_with_side_effects() -> None:
    d = webhooks.Dispatcher(lambda: [], lambda name: None)
    req = _req()
    req.dry_run = True
    hook = webhooks.Hook("cfg", _hook("a.x.io", sideEffects="Some"), 0)
    with pytest.raises(errors.StatusError) as e:
        asyncio.run(d.call(hook, req, PODS, mutating=False))
    assert (e.value.code, e.value.message) == (400, 'admission webhook "a.x.io" does not support dry run')


def test_configuration_validation() -> None:
    obj = {"metadata": {"name": "c"}, "webhooks": [
        {"name": "a.x.io", "clientConfig": {"url": "https://h/x"}, "sideEffects": "None",
         "admissionReviewVersions": ["v1"], "rules": [{**RULE, "operations": ["*", "CREATE"]}],
         "matchConditions": [{"name": "m", "expression": "object.x =="}]},
        {"name": "a.x.io", "clientConfig": {}, "sideEffects": "Some", "admissionReviewVersions": ["v2"]}]}
    messages = {f"{c.field}: {c.message}" for c in validate(VWC, obj)}
    assert "webhooks[0].rules[0].operations: Invalid value: [\"*\",\"CREATE\"]: if '*' is present, must not " \
           "specify other operations" in messages
    assert any(m.startswith('webhooks[0].matchConditions[0].expression: Invalid value: "object.x ==": '
                            "compilation failed: ERROR: <input>:1:12: Syntax error:") for m in messages)
    assert "webhooks[1].clientConfig: Required value: exactly one of url or service is required" in messages
    assert 'webhooks[1].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun"' in messages
    assert 'webhooks[1].name: Duplicate value: "a.x.io"' in messages
    assert 'webhooks[1].admissionReviewVersions: Invalid value: ["v2"]: must include at least one of v1, v1beta1' \
        in messages
