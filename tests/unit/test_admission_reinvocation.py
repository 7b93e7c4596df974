"""Mutating admission reinvocation as upstream's reinvoker and webhook reinvocation context: an IfNeeded
webhook is called again (round 1) when a later webhook, or an in-tree plugin in the second pass, changed
the object after it; a Never webhook, or one whose output nobody changed, is not."""
from __future__ import annotations

import asyncio
from typing import Any

import orjson

from kubegate.admission import webhooks
from kubegate.admission.chain import AdmissionChain
from kubegate.admission.interface import AdmissionRequest
from kubegate.api.resources import lookup
from kubegate.authn.user import UserInfo

PODS = lookup("", "v1", "pods")
RULE = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}


class _Dispatcher(webhooks.Dispatcher):
    """Webhooks answered by functions of the object they are sent, instead of the network."""

    def __init__(self, hooks: list[dict[str, Any]], answers: dict[str, Any]) -> None:
        super().__init__(lambda: [{"metadata": {"name": "cfg"}, "webhooks": hooks}], lambda name: None)
        self.answers = answers
        self.calls: list[str] = []

    async def call(self, hook: webhooks.Hook, req: AdmissionRequest, matched: Any, mutating: bool) -> webhooks.Verdict:
        self.calls.append(hook.name)
        return webhooks.Verdict(True, {}, self.answers[hook.name](req.obj), [], {})


def _hook(name: str, policy: str = "IfNeeded") -> dict[str, Any]:
    return {"name": name, "rules": [RULE], "sideEffects": "None", "reinvocationPolicy": policy}


def _label(key: str) -> Any:
    """A webhook that adds a label once (idempotent, as upstream asks of reinvocable webhooks)."""
    def answer(obj: dict[str, Any]) -> list[Any] | None:
        labels = obj["metadata"].get("labels")
        if labels is None:
            return [{"op": "add", "path": "/metadata/labels", "value": {key: "y"}}]
        if key not in labels:
            return [{"op": "add", "path": f"/metadata/labels/{key}", "value": "y"}]
        return None
    return answer


def _nothing(obj: dict[str, Any]) -> None:
    return None


class _InTree:
    """An in-tree mutating plugin: it sets an annotation from what the webhooks did (idempotently)."""

    name = "InTree"

    def __init__(self) -> None:
        self.runs = 0

    async def admit(self, req: AdmissionRequest) -> None:
        self.runs += 1
        assert req.obj is not None
        n = len(req.obj["metadata"].get("labels") or {})
        req.obj["metadata"].setdefault("annotations", {})["labels"] = str(n)


def _req() -> AdmissionRequest:
    return AdmissionRequest("CREATE", PODS, "ns", "p", UserInfo("alice", "u1", ()), {"metadata": {"name": "p"}})


def _run(chain: AdmissionChain) -> AdmissionRequest:
    req = _req()
    asyncio.run(chain.admit(req))
    return req


def test_later_webhook_change_reinvokes_only_earlier_ifneeded_ones() -> None:
    d = _Dispatcher([_hook("a", "IfNeeded"), _hook("b", "Never"), _hook("c", "IfNeeded"), _hook("d", "IfNeeded")],
                    {"a": _nothing, "b": _nothing, "c": _label("c"), "d": _nothing})
    req = _run(AdmissionChain([webhooks.MutatingAdmissionWebhook(d)]))
    # round 0: all four; round 1: `a` only (called before the change and IfNeeded); `b` is Never, `c` made
    # the change itself and `d` came after it.
    assert d.calls == ["a", "b", "c", "d", "a"]
    assert "mutation.webhook.admission.k8s.io/round_1_index_0" in req.annotations
    assert orjson.loads(req.annotations["mutation.webhook.admission.k8s.io/round_0_index_2"])["mutated"] is True


def test_no_change_no_second_round() -> None:
    in_tree = _InTree()
    d = _Dispatcher([_hook("a"), _hook("b")], {"a": _nothing, "b": _nothing})
    _run(AdmissionChain([in_tree, webhooks.MutatingAdmissionWebhook(d)]))
    assert d.calls == ["a", "b"] and in_tree.runs == 1


def test_in_tree_change_in_second_pass_reinvokes_all_ifneeded_webhooks() -> None:
    # `b` changes the object, so the whole mutating phase runs again; the in-tree plugin (before the
    # webhooks) then changes the annotation, so every IfNeeded webhook called so far is due again,
    # `b` included, but not the Never one.
    in_tree = _InTree()
    d = _Dispatcher([_hook("a"), _hook("b"), _hook("n", "Never")], {"a": _nothing, "b": _label("b"), "n": _nothing})
    req = _run(AdmissionChain([in_tree, webhooks.MutatingAdmissionWebhook(d)]))
    assert in_tree.runs == 2
    assert d.calls == ["a", "b", "n", "a", "b"]
    assert req.obj == {"metadata": {"name": "p", "labels": {"b": "y"}, "annotations": {"labels": "1"}}}
    assert req.reinvocation.is_reinvoke


def test_second_pass_without_outside_change_calls_only_the_due_webhooks() -> None:
    # The in-tree plugin here does not depend on the webhooks' output, so after round 0 nothing but
    # the webhooks changed the object: only `a` (before the change) is called again.
    class Static(_InTree):
        async def admit(self, req: AdmissionRequest) -> None:
            self.runs += 1
            assert req.obj is not None
            req.obj["metadata"]["annotations"] = {"static": "1"}

    d = _Dispatcher([_hook("a"), _hook("b")], {"a": _nothing, "b": _label("b")})
    _run(AdmissionChain([Static(), webhooks.MutatingAdmissionWebhook(d)]))
    assert d.calls == ["a", "b", "a"]
