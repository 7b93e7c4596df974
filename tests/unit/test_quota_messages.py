"""ResourceQuota admission messages with quantities as resource.Quantity.String() prints them, and
the limitedResources configuration (ResourceQuotaConfiguration) with its refusals."""
from __future__ import annotations

from typing import Any

import pytest

from kubegate.admission.interface import CREATE, AdmissionRequest
from kubegate.admission.resource_quota import (LimitedResource, ScopeRequirement, canonical, evaluate,
                                               parse_configuration)
from kubegate.api import errors
from kubegate.api.resources import RESOURCES
from kubegate.authn.user import UserInfo

PODS = next(r for r in RESOURCES if (r.group, r.plural) == ("", "pods"))
CONFIGMAPS = next(r for r in RESOURCES if (r.group, r.plural) == ("", "configmaps"))


def _req(obj: dict[str, Any], r: Any = PODS) -> AdmissionRequest:
    return AdmissionRequest(CREATE, r, "ns", obj["metadata"]["name"], UserInfo("alice"), obj, None)


def _pod(**requests: str) -> dict[str, Any]:
    return {"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "image": "nginx", "resources": {"requests": requests}}]}}


def _quota(hard: dict[str, str], used: dict[str, str], name: str = "q") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"hard": hard}, "status": {"hard": hard, "used": used}}


def _refusal(req: AdmissionRequest, quotas: list[dict[str, Any]], limited: list[LimitedResource] | None = None
             ) -> errors.StatusError:
    with pytest.raises(errors.StatusError) as e:
        evaluate(req, quotas, limited)
    assert e.value.code == 403 and e.value.reason == "Forbidden"
    return e.value


@pytest.mark.parametrize("written,printed", [
    ("1", "1"), ("1000m", "1"), ("1.5", "1500m"), ("0.5", "500m"), ("500m", "500m"), ("2000", "2k"),
    ("2048Mi", "2Gi"), ("1Gi", "1Gi"), ("1536Mi", "1536Mi"), ("1.5Gi", "1536Mi"), ("0.1Gi", "107374182400m"),
    ("1e3", "1e3"), ("1.5e3", "1500"), ("1E", "1E"), ("0", "0"), ("100Ki", "100Ki"), ("1024Ki", "1Mi"),
])
def test_canonical_quantities(written: str, printed: str) -> None:
    assert canonical(written) == printed


def test_exceeded_message_prints_canonical_quantities() -> None:
    q = _quota({"requests.cpu": "1.5", "requests.memory": "2048Mi"},
               {"requests.cpu": "1.0", "requests.memory": "1536Mi"})
    err = _refusal(_req(_pod(cpu="0.75", memory="1Gi")), [q])
    assert err.message == ('pods "p" is forbidden: exceeded quota: q, requested: requests.cpu=750m,'
                           'requests.memory=1Gi, used: requests.cpu=1,requests.memory=1536Mi, '
                           'limited: requests.cpu=1500m,requests.memory=2Gi')


def test_limited_resources_require_a_covering_quota() -> None:
    limited = parse_configuration({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "ResourceQuotaConfiguration",
                                   "limitedResources": [{"resource": "pods", "matchContains": ["cpu"]}]})
    assert limited == [LimitedResource("", "pods", ("cpu",))]
    # No quota at all: consuming cpu is refused, a pod without cpu requests is not.
    err = _refusal(_req(_pod(cpu="100m")), [], limited)
    assert err.message == 'pods "p" is forbidden: insufficient quota to consume: cpu,requests.cpu'
    assert evaluate(_req(_pod(memory="1Gi")), [], limited) == {}
    # A quota that covers only one of the usage names still leaves the other uncovered.
    partial = _quota({"requests.cpu": "1"}, {"requests.cpu": "0"})
    err = _refusal(_req(_pod(cpu="100m")), [partial], limited)
    assert err.message == 'pods "p" is forbidden: insufficient quota to consume: cpu'
    full = _quota({"cpu": "1", "requests.cpu": "1"}, {"cpu": "0", "requests.cpu": "0"})
    assert evaluate(_req(_pod(cpu="100m")), [full], limited) == {"q": {"cpu": "100m", "requests.cpu": "100m"}}
    # Other resources are not limited by a pods entry.
    assert evaluate(_req({"metadata": {"name": "c"}}, CONFIGMAPS), [], limited) == {}


def test_limited_resources_of_an_api_group() -> None:
    limited = [LimitedResource("", "configmaps", ("configmaps",))]
    err = _refusal(_req({"metadata": {"name": "c"}}, CONFIGMAPS), [], limited)
    assert err.message == 'configmaps "c" is forbidden: insufficient quota to consume: configmaps,count/configmaps'
    other_group = [LimitedResource("example.com", "configmaps", ("configmaps",))]
    assert evaluate(_req({"metadata": {"name": "c"}}, CONFIGMAPS), [], other_group) == {}


def _scoped_quota(hard: dict[str, str], *expressions: dict[str, Any], scopes: tuple[str, ...] = (),
                  name: str = "q") -> dict[str, Any]:
    q = _quota(hard, {k: "0" for k in hard}, name)
    q["spec"]["scopes"] = list(scopes)
    q["spec"]["scopeSelector"] = {"matchExpressions": list(expressions)}
    return q


def _scope_refusal(req: AdmissionRequest, quotas: list[dict[str, Any]], limited: list[LimitedResource]) -> str:
    with pytest.raises(errors.StatusError) as e:
        evaluate(req, quotas, limited)
    # Upstream returns a plain error here, not admission.NewForbidden: a 500 with no reason.
    assert (e.value.code, e.value.reason) == (500, "")
    return e.value.message


def _prioritized(priority_class: str, **requests: str) -> dict[str, Any]:
    pod = _pod(**requests)
    pod["spec"]["priorityClassName"] = priority_class
    return pod


CRITICAL = {"scopeName": "PriorityClass", "operator": "In", "values": ["cluster-services", "node-critical"]}


def test_limited_scopes_configuration() -> None:
    limited = parse_configuration({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "ResourceQuotaConfiguration",
                                   "limitedResources": [{"resource": "pods", "matchScopes": [CRITICAL]}]})
    assert limited == [LimitedResource("", "pods", (), (
        ScopeRequirement("PriorityClass", "In", ("cluster-services", "node-critical")),))]
    assert str(limited[0].match_scopes[0]) == "{PriorityClass In [cluster-services node-critical]}"
    assert str(ScopeRequirement("BestEffort", "Exists")) == "{BestEffort Exists []}"


def test_limited_priority_class_needs_a_quota_selecting_it() -> None:
    limited = [LimitedResource("", "pods", (), (ScopeRequirement("PriorityClass", "In", ("cluster-services",)),))]
    assert _scope_refusal(_req(_prioritized("cluster-services")), [], limited) == \
        "insufficient quota to match these scopes: [{PriorityClass In [cluster-services]}]"
    # A pod the limited scope does not select needs nothing.
    assert evaluate(_req(_prioritized("low")), [], limited) == {}
    assert evaluate(_req(_pod()), [], limited) == {}
    # A quota that selects pods by priority class covers it, and is charged.
    covering = _scoped_quota({"pods": "10"}, {**CRITICAL, "values": ["cluster-services"]})
    assert evaluate(_req(_prioritized("cluster-services")), [covering], limited) == {"q": {"pods": "1"}}
    # A quota without scopes, or by another scope, does not cover it.
    plain = _quota({"pods": "10"}, {"pods": "0"})
    assert _scope_refusal(_req(_prioritized("cluster-services")), [plain], limited).startswith(
        "insufficient quota to match these scopes: ")
    other = _scoped_quota({"pods": "10"}, scopes=("NotBestEffort",))
    assert _scope_refusal(_req(_prioritized("cluster-services", cpu="1")), [other], limited).startswith(
        "insufficient quota to match these scopes: ")


def test_covering_is_by_scope_name() -> None:
    """UncoveredQuotaScopes compares scope names: a quota selecting the pod by any PriorityClass
    requirement covers a limited PriorityClass requirement, even when the quota itself does not apply."""
    limited = [LimitedResource("", "pods", (), (ScopeRequirement("PriorityClass", "Exists"),))]
    exists = _scoped_quota({"pods": "10"}, {"scopeName": "PriorityClass", "operator": "Exists"}, name="a")
    assert evaluate(_req(_prioritized("anything")), [exists], limited) == {"a": {"pods": "1"}}
    # Selected by its PriorityClass requirement but not by its Terminating scope: covers, charges nothing.
    partial = _scoped_quota({"pods": "10"}, {"scopeName": "PriorityClass", "operator": "Exists"},
                            scopes=("Terminating",), name="b")
    assert evaluate(_req(_prioritized("anything")), [partial], limited) == {}


def test_limited_best_effort_and_terminating_scopes() -> None:
    limited = [LimitedResource("", "pods", (), (ScopeRequirement("BestEffort", "Exists"),
                                                ScopeRequirement("Terminating", "Exists")))]
    terminating = _pod()
    terminating["spec"]["activeDeadlineSeconds"] = 60
    assert _scope_refusal(_req(terminating), [], limited) == \
        "insufficient quota to match these scopes: [{BestEffort Exists []} {Terminating Exists []}]"
    assert _scope_refusal(_req(_pod()), [], limited) == \
        "insufficient quota to match these scopes: [{BestEffort Exists []}]"
    # Neither best effort nor terminating: nothing limited.
    assert evaluate(_req(_pod(cpu="100m")), [], limited) == {}
    best_effort = _scoped_quota({"pods": "5"}, scopes=("BestEffort",))
    assert evaluate(_req(_pod()), [best_effort], limited) == {"q": {"pods": "1"}}
    assert _scope_refusal(_req(terminating), [best_effort], limited) == \
        "insufficient quota to match these scopes: [{Terminating Exists []}]"


def test_limited_scopes_do_not_apply_to_other_resources() -> None:
    limited = [LimitedResource("", "pods", (), (ScopeRequirement("BestEffort", "Exists"),))]
    assert evaluate(_req({"metadata": {"name": "c"}}, CONFIGMAPS), [], limited) == {}


def test_consume_is_checked_before_scopes() -> None:
    limited = [LimitedResource("", "pods", ("cpu",), (ScopeRequirement("PriorityClass", "Exists"),))]
    err = _refusal(_req(_prioritized("x", cpu="1")), [], limited)
    assert err.message == 'pods "p" is forbidden: insufficient quota to consume: cpu,requests.cpu'


@pytest.mark.parametrize("conf,message", [
    ({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "ResourceQuotaConfiguration",
      "limitedResources": [{"matchContains": ["cpu"]}]}, "limitedResources[0].resource: Required value"),
    ({"apiVersion": "v1", "kind": "Other"}, 'no kind "Other" is registered for version "v1"'),
])
def test_configuration_errors(conf: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_configuration(conf)
    assert str(e.value) == message


def test_no_configuration_limits_nothing() -> None:
    assert parse_configuration(None) == []
    assert parse_configuration({}) == []
