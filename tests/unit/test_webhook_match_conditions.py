"""Webhook matchConditions with the `authorizer` variable: checks asked as the requesting user, each
asked once per request, and conditions that do not compile refused by configuration validation."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubegate.admission import webhooks
from kubegate.admission.interface import AdmissionRequest
from kubegate.api import errors
from kubegate.api.resources import lookup
from kubegate.api.validation import validate
from kubegate.authn.user import UserInfo
from kubegate.authz.types import Attributes, AuthzResult, Decision

PODS = lookup("", "v1", "pods")
VWC = lookup("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
MWC = lookup("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
RULE = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
CAN_LIST_SECRETS = "authorizer.group('').resource('secrets').namespace(request.namespace).check('list').allowed()"


class _Authorizer:
    """Allows what its table names for a user; records every question."""

    def __init__(self, allowed: set[tuple[str, str, str]]) -> None:
        self.allowed = allowed
        self.asked: list[Attributes] = []

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        self.asked.append(attrs)
        if (attrs.user.name, attrs.verb, attrs.resource) in self.allowed:
            return AuthzResult(Decision.ALLOW, "listed")
        return AuthzResult(Decision.NO_OPINION, "")


class _Dispatcher(webhooks.Dispatcher):
    """Records calls instead of making them; every webhook allows."""

    def __init__(self, hooks: list[dict[str, Any]], authorizer: _Authorizer | None) -> None:
        super().__init__(lambda: [{"metadata": {"name": "cfg"}, "webhooks": hooks}], lambda name: None, authorizer)
        self.calls: list[str] = []

    async def call(self, hook: webhooks.Hook, req: AdmissionRequest, matched: Any, mutating: bool) -> webhooks.Verdict:
        self.calls.append(hook.name)
        return webhooks.Verdict(True, {}, None, [], {})


def _hook(name: str, expression: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "rules": [RULE], "sideEffects": "None",
            "matchConditions": [{"name": "m", "expression": expression}], **extra}


def _req(user: str) -> AdmissionRequest:
    return AdmissionRequest("CREATE", PODS, "ns", "p", UserInfo(user, "", ("system:authenticated",)),
                            {"metadata": {"name": "p"}})


def test_authorizer_decides_which_webhooks_are_called() -> None:
    authz = _Authorizer({("admin", "list", "secrets")})
    hooks = [_hook("privileged.x.io", CAN_LIST_SECRETS), _hook("others.x.io", "!(" + CAN_LIST_SECRETS + ")"),
             _hook("also-privileged.x.io", CAN_LIST_SECRETS)]
    for user, called in (("admin", ["privileged.x.io", "also-privileged.x.io"]), ("bob", ["others.x.io"])):
        d = _Dispatcher(hooks, authz)
        authz.asked.clear()
        asyncio.run(webhooks.ValidatingAdmissionWebhook(d).validate(_req(user)))
        assert sorted(d.calls) == sorted(called)
        # Asked once for the request, as its user, with the attributes the expression built.
        assert [(a.user.name, a.verb, a.namespace, a.api_group, a.resource, a.resource_request)
                for a in authz.asked] == [(user, "list", "ns", "", "secrets", True)]


def test_checks_are_shared_by_both_plugins_of_one_request() -> None:
    authz = _Authorizer({("admin", "list", "secrets")})
    mutating = _Dispatcher([_hook("m.x.io", CAN_LIST_SECRETS)], authz)
    validating = _Dispatcher([_hook("v.x.io", CAN_LIST_SECRETS)], authz)
    req = _req("admin")
    asyncio.run(webhooks.MutatingAdmissionWebhook(mutating).admit(req))
    asyncio.run(webhooks.ValidatingAdmissionWebhook(validating).validate(req))
    assert (mutating.calls, validating.calls, len(authz.asked)) == (["m.x.io"], ["v.x.io"], 1)


def test_without_an_authorizer_the_condition_errors_per_failure_policy() -> None:
    d = _Dispatcher([_hook("a.x.io", CAN_LIST_SECRETS)], None)
    with pytest.raises(errors.StatusError) as e:
        asyncio.run(webhooks.ValidatingAdmissionWebhook(d).validate(_req("admin")))
    assert e.value.code == 500
    assert e.value.message.startswith('Internal error occurred: failed calling webhook "a.x.io": '
                                      "failed to evaluate match condition m: ")
    d = _Dispatcher([_hook("a.x.io", CAN_LIST_SECRETS, failurePolicy="Ignore")], None)
    req = _req("admin")
    asyncio.run(webhooks.ValidatingAdmissionWebhook(d).validate(req))
    assert d.calls == []
    assert req.annotations == {"failed-open.validating.webhook.admission.k8s.io/round_0_index_0": "a.x.io"}


def test_plain_conditions_still_select() -> None:
    d = _Dispatcher([_hook("named.x.io", "object.metadata.name == 'p'"), _hook("other.x.io", "request.name == 'q'")],
                    _Authorizer(set()))
    asyncio.run(webhooks.ValidatingAdmissionWebhook(d).validate(_req("bob")))
    assert d.calls == ["named.x.io"]


@pytest.mark.parametrize("resource", [VWC, MWC])
def test_conditions_that_do_not_compile_are_refused(resource: Any) -> None:
    def config(expression: str) -> dict[str, Any]:
        return {"metadata": {"name": "c"}, "webhooks": [
            {"name": "a.x.io", "clientConfig": {"url": "https://h/x"}, "sideEffects": "None",
             "admissionReviewVersions": ["v1"], "rules": [RULE],
             "matchConditions": [{"name": "m", "expression": expression}]}]}

    assert validate(resource, config(CAN_LIST_SECRETS)) == []
    messages = [f"{c.field}: {c.message}" for c in validate(resource, config("params.x == 1"))]
    assert messages == ['webhooks[0].matchConditions[0].expression: Invalid value: "params.x == 1": compilation '
                        "failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')\n"
                        " | params.x == 1\n | ^"]
    messages = [f"{c.field}: {c.message}" for c in validate(resource, config("authorizer.nope('x')"))]
    assert len(messages) == 1 and "undeclared reference to 'nope'" in messages[0]
