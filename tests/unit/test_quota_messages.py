"""ResourceQuota admission messages with quantities as resource.Quantity.String() prints them, and
the limitedResources configuration (ResourceQuotaConfiguration) with its refusals."""
from __future__ import annotations

from typing import Any

import pytest

from kubegate.admission.interface import CREATE, AdmissionRequest
from kubegate.admission.resource_quota import LimitedResource, canonical, evaluate, parse_configuration
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
