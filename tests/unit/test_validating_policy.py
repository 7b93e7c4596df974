"""ValidatingAdmissionPolicy as a pure plugin over in-memory policies, bindings and params, plus the
CEL compile checks made when a policy is written."""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from kubegate.admission import cel as admission_cel
from kubegate.admission.interface import AdmissionRequest
from kubegate.admission.validating_policy import AUDIT_FAILURE_KEY, ValidatingAdmissionPolicy
from kubegate.api import errors
from kubegate.api.resources import lookup
from kubegate.api.validation import validate
from kubegate.authn.user import UserInfo

DEPLOYMENTS = lookup("apps", "v1", "deployments")
VAP = lookup("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies")
VAPB = lookup("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings")
RULES = [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
          "resources": ["deployments"], "scope": "*"}]


def _policy(validations: list[dict[str, Any]], failure: str = "Fail", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "replicas"}, "spec": {
        "failurePolicy": failure, "validations": validations,
        "matchConstraints": {"resourceRules": RULES, "namespaceSelector": {}, "objectSelector": {},
                             "matchPolicy": "Equivalent"}, **spec}}


def _binding(actions: list[str], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "b"}, "spec": {"policyName": "replicas", "validationActions": actions, **spec}}


def _req(replicas: int, name: str = "web") -> AdmissionRequest:
    obj = {"metadata": {"name": name, "namespace": "ns"}, "spec": {"replicas": replicas}}
    return AdmissionRequest("CREATE", DEPLOYMENTS, "ns", name, UserInfo("alice"), obj)


def _run(policy: dict[str, Any], binding: dict[str, Any], req: AdmissionRequest,
         params: list[dict[str, Any]] | None = None) -> None:
    plugin = ValidatingAdmissionPolicy(lambda: [policy], lambda: [binding],
                                       lambda name: {"metadata": {"name": name}},
                                       lambda r, ns, name, sel: params or [])
    asyncio.run(plugin.validate(req))


MAX5 = {"expression": "object.spec.replicas <= 5"}


def test_deny_with_default_message_and_reason() -> None:
    _run(_policy([MAX5]), _binding(["Deny"]), _req(3))
    with pytest.raises(errors.StatusError) as e:
        _run(_policy([MAX5]), _binding(["Deny"]), _req(7))
    assert (e.value.code, e.value.reason) == (422, "Invalid")
    assert e.value.message == ('deployments.apps "web" is forbidden: ValidatingAdmissionPolicy \'replicas\' with '
                               "binding 'b' denied request: failed expression: object.spec.replicas <= 5")


def test_message_expression_reason_and_params() -> None:
    v = {"expression": "object.spec.replicas <= int(params.data.max)", "reason": "Forbidden",
         "messageExpression": "'at most ' + params.data.max + ' replicas'", "message": "fallback"}
    policy = _policy([v], paramKind={"apiVersion": "v1", "kind": "ConfigMap"})
    binding = _binding(["Deny"], paramRef={"name": "limits", "parameterNotFoundAction": "Deny"})
    with pytest.raises(errors.StatusError) as e:
        _run(policy, binding, _req(4), [{"data": {"max": "3"}}])
    assert (e.value.code, e.value.reason) == (403, "Forbidden")
    assert e.value.message.endswith("denied request: at most 3 replicas")
    with pytest.raises(errors.StatusError) as e:
        _run(policy, binding, _req(1), [])
    assert "no params found for policy binding with `Deny` parameterNotFoundAction" in e.value.message
    _run(policy, _binding(["Deny"], paramRef={"name": "limits", "parameterNotFoundAction": "Allow"}), _req(9), [])


def test_warn_and_audit() -> None:
    req = _req(7)
    _run(_policy([MAX5]), _binding(["Warn", "Audit"]), req)
    assert req.warnings == ["Validation failed for ValidatingAdmissionPolicy 'replicas' with binding 'b': "
                            "failed expression: object.spec.replicas <= 5"]
    assert orjson.loads(req.annotations[AUDIT_FAILURE_KEY]) == [
        {"message": "failed expression: object.spec.replicas <= 5", "policy": "replicas", "binding": "b",
         "expressionIndex": 0, "validationActions": ["Warn", "Audit"]}]


def test_runtime_errors_follow_failure_policy() -> None:
    v = {"expression": "object.spec.missing > 1"}
    _run(_policy([v], "Ignore"), _binding(["Deny"]), _req(1))
    with pytest.raises(errors.StatusError) as e:
        _run(_policy([v], "Fail"), _binding(["Deny"]), _req(1))
    assert "expression 'object.spec.missing > 1' resulted in error: no such key: missing" in e.value.message


def test_variables_and_match_conditions() -> None:
    policy = _policy([{"expression": "variables.big == false"}],
                     variables=[{"name": "big", "expression": "object.spec.replicas > 5"}],
                     matchConditions=[{"name": "not-system", "expression": "request.userInfo.username != 'root'"}])
    with pytest.raises(errors.StatusError):
        _run(policy, _binding(["Deny"]), _req(6))
    req = _req(6)
    req.user = UserInfo("root")
    _run(policy, _binding(["Deny"]), req)


def test_compile_errors() -> None:
    with pytest.raises(admission_cel.CELCompileError) as e:
        admission_cel.compile_expression("params.x == 1", admission_cel.BASE_VARIABLES)
    assert str(e.value) == ("compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' "
                            "(in container '')\n | params.x == 1\n | ^")
    admission_cel.compile_expression("object.spec.containers.all(c, c.name != '')", admission_cel.BASE_VARIABLES)


def test_policy_and_binding_validation() -> None:
    bad = _policy([{"expression": "object.spec.replicas <="}, {"expression": "params.max > 1"}])
    fields = {c.field: c.message for c in validate(VAP, bad)}
    assert fields["spec.validations[0].expression"].startswith(
        'Invalid value: "object.spec.replicas <=": compilation failed: ERROR: <input>:1:24: Syntax error:')
    assert "undeclared reference to 'params'" in fields["spec.validations[1].expression"]
    assert validate(VAP, _policy([MAX5])) == []
    fields = {c.field: c.message for c in validate(VAPB, _binding(["Deny", "Warn", "Block"]))}
    assert fields["spec.validationActions[2]"] == \
        'Unsupported value: "Block": supported values: "Audit", "Deny", "Warn"'
    assert fields["spec.validationActions"].startswith('Invalid value: ["Deny","Warn","Block"]: must not contain '
                                                       "both Deny and Warn")
    fields = {c.field: c.message for c in validate(VAPB, _binding([], paramRef={"name": "x"}))}
    assert fields["spec.validationActions"] == "Required value: at least one validation action is required"
    assert fields["spec.paramRef.parameterNotFoundAction"] == "Required value"
