"""The webhook authorizer against a local policy webhook (HTTPS, its own CA): the SubjectAccessReview
it sends, how it reads answers, its cache, and what it does when the webhook fails."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubegate.authn.user import UserInfo
from kubegate.authz.always import AlwaysDeny
from kubegate.authz.types import Attributes, AuthzResult, Decision
from kubegate.authz.union import UnionAuthorizer, UnionRuleResolver
from kubegate.authz.webhook import WebhookAuthorizer, decision, review_body, review_spec, unsupported_version_error
from kubegate.webhook import Backoff, load_webhook_kubeconfig
from tests.policy_webhook import PolicyWebhook, Rule

ALICE = UserInfo("alice", uid="u-1", groups=("devs", "system:authenticated"),
                 extra={"scopes": ("openid", "email"), "a-first": ("x",)})
LIST_PODS = Attributes(user=ALICE, verb="list", namespace="ns1", api_version="v1", resource="pods",
                       resource_request=True, path="/api/v1/namespaces/ns1/pods")
GET_LOG = Attributes(user=ALICE, verb="get", namespace="ns1", api_version="v1", resource="pods",
                     subresource="log", name="p1", resource_request=True)
HEALTHZ = Attributes(user=ALICE, verb="get", path="/healthz")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hook() -> Iterator[PolicyWebhook]:
    h = PolicyWebhook([Rule("allow", "alice may list", user="alice", verb="list"),
                       Rule("deny", "never logs", resource="pods", verb="get"),
                       Rule("both", "confused", path="/both")]).start()
    yield h
    h.stop()


def run(hook: PolicyWebhook, tmp_path: Path, body: Callable[[WebhookAuthorizer], Awaitable[Any]],
        **kw: Any) -> Any:
    client = load_webhook_kubeconfig(hook.kubeconfig(tmp_path), backoff=Backoff(duration=0.001))

    async def go() -> Any:
        try:
            return await body(WebhookAuthorizer(client, **kw))
        finally:
            await client.close()
    return asyncio.run(go())


# --- what is sent ----------------------------------------------------------------------------------

def test_v1_review_body() -> None:
    spec = review_spec(LIST_PODS, "v1")
    assert review_body(spec, "v1") == {
        "kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "ns1", "verb": "list", "version": "v1", "resource": "pods"},
                 "user": "alice", "groups": ["devs", "system:authenticated"],
                 "extra": {"a-first": ["x"], "scopes": ["openid", "email"]}, "uid": "u-1"},
        "status": {"allowed": False}}
    # Go's field order, map keys sorted
    assert list(spec) == ["resourceAttributes", "user", "groups", "extra", "uid"]
    assert list(spec["extra"]) == ["a-first", "scopes"]


def test_v1beta1_names_groups_group_and_non_resource_attributes() -> None:
    spec = review_spec(HEALTHZ, "v1beta1")
    assert spec["nonResourceAttributes"] == {"path": "/healthz", "verb": "get"}
    assert spec["group"] == ["devs", "system:authenticated"] and "groups" not in spec
    assert review_body(spec, "v1beta1")["apiVersion"] == "authorization.k8s.io/v1beta1"


def test_subresource_name_and_selectors() -> None:
    assert review_spec(GET_LOG)["resourceAttributes"] == {
        "namespace": "ns1", "verb": "get", "version": "v1", "resource": "pods", "subresource": "log", "name": "p1"}
    attrs = Attributes(user=ALICE, verb="list", resource="pods", resource_request=True,
                       field_selector="spec.nodeName=n1,metadata.name!=x",
                       label_selector="app in (b,a),tier!=db,env,!gone,n>3")
    ra = review_spec(attrs)["resourceAttributes"]
    assert ra["fieldSelector"] == {"requirements": [
        {"key": "metadata.name", "operator": "NotIn", "values": ["x"]},
        {"key": "spec.nodeName", "operator": "In", "values": ["n1"]}]}
    assert ra["labelSelector"] == {"requirements": [
        {"key": "app", "operator": "In", "values": ["a", "b"]},
        {"key": "env", "operator": "Exists"},
        {"key": "gone", "operator": "DoesNotExist"},
        {"key": "tier", "operator": "NotIn", "values": ["db"]}]}
    # a selector that does not parse narrows nothing: the broader request is reviewed
    bad = Attributes(user=ALICE, verb="list", resource="pods", resource_request=True, field_selector="a",
                     label_selector="x in (")
    assert "fieldSelector" not in review_spec(bad)["resourceAttributes"]
    assert "labelSelector" not in review_spec(bad)["resourceAttributes"]


# --- how answers are read ------------------------------------------------------------------------------

@pytest.mark.parametrize("status,want", [
    ({"allowed": True, "reason": "ok"}, AuthzResult(Decision.ALLOW, "ok")),
    ({"allowed": False, "denied": True, "reason": "no"}, AuthzResult(Decision.DENY, "no")),
    ({"allowed": True, "denied": True, "reason": "?"},
     AuthzResult(Decision.DENY, "?", "webhook subject access review returned both allow and deny response")),
    ({"allowed": False, "reason": "dunno"}, AuthzResult(Decision.NO_OPINION, "dunno")),
    ({}, AuthzResult(Decision.NO_OPINION, "")),
])
def test_decision(status: dict[str, Any], want: AuthzResult) -> None:
    assert decision(status) == want


def test_decisions_from_the_webhook(hook: PolicyWebhook, tmp_path: Path) -> None:
    async def body(w: WebhookAuthorizer) -> list[AuthzResult]:
        both = Attributes(user=ALICE, verb="get", path="/both")
        return [await w.authorize(a) for a in (LIST_PODS, GET_LOG, both, HEALTHZ)]
    got = run(hook, tmp_path, body, version="v1")
    assert got == [AuthzResult(Decision.ALLOW, "alice may list"), AuthzResult(Decision.DENY, "never logs"),
                   AuthzResult(Decision.DENY, "confused",
                               "webhook subject access review returned both allow and deny response"),
                   AuthzResult(Decision.NO_OPINION, "")]
    assert hook.requests[0]["apiVersion"] == "authorization.k8s.io/v1"
    assert hook.requests[0]["spec"]["groups"] == ["devs", "system:authenticated"]
    assert hook.paths[0] == "/authorize?timeout=30s"


def test_v1beta1_is_the_default(hook: PolicyWebhook, tmp_path: Path) -> None:
    assert run(hook, tmp_path, lambda w: w.authorize(LIST_PODS)).allowed
    assert hook.requests[0]["apiVersion"] == "authorization.k8s.io/v1beta1"
    assert hook.requests[0]["spec"]["group"] == ["devs", "system:authenticated"]


# --- cache -------------------------------------------------------------------------------------------------

def test_answers_are_cached_for_their_ttl(hook: PolicyWebhook, tmp_path: Path) -> None:
    clock = Clock()

    async def body(w: WebhookAuthorizer) -> None:
        for _ in range(3):
            assert (await w.authorize(LIST_PODS)).allowed
            assert (await w.authorize(GET_LOG)).decision is Decision.DENY
        assert len(hook.requests) == 2
        clock.now += 31  # past the unauthorized TTL only
        await w.authorize(LIST_PODS)
        await w.authorize(GET_LOG)
        assert len(hook.requests) == 3
        clock.now += 270  # past the authorized TTL too
        await w.authorize(LIST_PODS)
        assert len(hook.requests) == 4
        # a different user is a different review
        await w.authorize(Attributes(user=UserInfo("bob"), verb="list", resource="pods", resource_request=True))
        assert len(hook.requests) == 5
    run(hook, tmp_path, body, clock=clock)


def test_zero_ttl_and_oversized_requests_are_not_cached(hook: PolicyWebhook, tmp_path: Path) -> None:
    huge = Attributes(user=ALICE, verb="list", namespace="n" * 10000, resource="pods", resource_request=True)

    async def body(w: WebhookAuthorizer) -> None:
        await w.authorize(LIST_PODS)
        await w.authorize(LIST_PODS)
    run(hook, tmp_path, body, authorized_ttl=0)
    assert len(hook.requests) == 2

    async def big(w: WebhookAuthorizer) -> None:
        await w.authorize(huge)
        await w.authorize(huge)
    run(hook, tmp_path, big)
    assert len(hook.requests) == 4


# --- failures --------------------------------------------------------------------------------------------

def test_unreachable_webhook_is_no_opinion_with_error(tmp_path: Path) -> None:
    hook = PolicyWebhook()  # never started: nothing listens on the port in its kubeconfig
    client = load_webhook_kubeconfig(hook.kubeconfig(tmp_path, server="https://127.0.0.1:1/authorize"))

    async def body() -> AuthzResult:
        try:
            return await WebhookAuthorizer(client).authorize(LIST_PODS)
        finally:
            await client.close()
    res = asyncio.run(body())
    assert res.decision is Decision.NO_OPINION and res.reason == ""
    assert res.error is not None and res.error.startswith('Post "https://127.0.0.1:1/authorize?timeout=30s": ')


@pytest.mark.parametrize("mode,error", [
    ("garbage", "couldn't get version/kind; json parse error: "),
    ("bad-type", "json: cannot unmarshal string into Go struct field SubjectAccessReviewStatus.status.allowed "
                 "of type bool"),
    ("500", 'an error on the server ("policy engine exploded") has prevented the request from succeeding'),
])
def test_bad_answers_are_no_opinion_with_error_and_not_cached(hook: PolicyWebhook, tmp_path: Path, mode: str,
                                                              error: str) -> None:
    hook.mode = mode

    async def body(w: WebhookAuthorizer) -> list[AuthzResult]:
        return [await w.authorize(LIST_PODS), await w.authorize(LIST_PODS)]
    first, second = run(hook, tmp_path, body, version="v1")
    assert first == second
    assert first.decision is Decision.NO_OPINION and first.error is not None and first.error.startswith(error)
    # failures are not cached (the 500 is retried by the client's backoff, 5 attempts each)
    assert len(hook.requests) == (10 if mode == "500" else 2)


def test_timeout(hook: PolicyWebhook, tmp_path: Path) -> None:
    hook.mode = "hang"
    res = run(hook, tmp_path, lambda w: w.authorize(LIST_PODS), timeout=0.3)
    assert res.decision is Decision.NO_OPINION
    assert res.error is not None and "context deadline exceeded" in res.error


def test_failure_lets_the_chain_continue(hook: PolicyWebhook, tmp_path: Path) -> None:
    hook.mode = "garbage"

    async def body(w: WebhookAuthorizer) -> AuthzResult:
        return await UnionAuthorizer([w, AlwaysDeny()]).authorize(LIST_PODS)
    res = run(hook, tmp_path, body)
    assert res.decision is Decision.NO_OPINION and res.reason == "Everything is forbidden."
    assert res.error is not None and res.error.startswith("couldn't get version/kind")


# --- rules and configuration ----------------------------------------------------------------------------

def test_rules_for_is_incomplete(tmp_path: Path) -> None:
    w = WebhookAuthorizer(load_webhook_kubeconfig(PolicyWebhook().kubeconfig(tmp_path, server="https://x")))
    rules = UnionRuleResolver([w]).rules_for(ALICE, "default")
    assert rules.rules == () and rules.incomplete
    assert rules.errors == ("webhook authorizer does not support user rule resolution",)


def test_unsupported_version() -> None:
    assert unsupported_version_error("v1") is None and unsupported_version_error("v1beta1") is None
    assert unsupported_version_error("v2") == \
        'unsupported webhook authorizer version "v2", supported versions are [v1 v1beta1]'
