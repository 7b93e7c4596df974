"""Upstream's built-in admission plugins as pure decisions, with upstream's texts."""
from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from kubegate.admission.always_deny import AlwaysDeny
from kubegate.admission.always_pull_images import AlwaysPullImages
from kubegate.admission.default_storage_class import default_class
from kubegate.admission.default_toleration_seconds import DefaultTolerationSeconds
from kubegate.admission.event_rate_limit import EventRateLimit, parse_configuration as erl_config
from kubegate.admission.extended_resource_toleration import ExtendedResourceToleration, is_extended_resource
from kubegate.admission.image_policy_webhook import ImagePolicyWebhook, parse_configuration as ipw_config
from kubegate.admission.interface import CREATE, DELETE, UPDATE, AdmissionRequest
from kubegate.admission.limit_pod_hard_anti_affinity_topology import LimitPodHardAntiAffinityTopology
from kubegate.admission.limit_ranger import default_pod, validate_claim, validate_pod
from kubegate.admission.quantities import render
from kubegate.admission.resource_quota import evaluate
from kubegate.admission.service_account import (
    mount_token, secret_reference_error, should_automount,
)
from kubegate.api.errors import StatusError
from kubegate.api.resources import RESOURCES
from kubegate.authn.user import UserInfo
from kubegate.webhook.client import WebhookError


def _res(group: str, plural: str) -> Any:
    return next(r for r in RESOURCES if r.group == group and r.plural == plural)


PODS, CONFIGMAPS, EVENTS = _res("", "pods"), _res("", "configmaps"), _res("", "events")


def _req(op: str, obj: dict[str, Any] | None, old: dict[str, Any] | None = None, r: Any = PODS, ns: str = "ns",
         name: str | None = None, **kw: Any) -> AdmissionRequest:
    if name is None:
        name = ((obj or old or {}).get("metadata") or {}).get("name", "")
    return AdmissionRequest(op, r, ns, name, UserInfo(kw.pop("user", "alice")), obj, old, **kw)


def _pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": "nginx"}], **spec}}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def refused(coro: Any) -> StatusError:
    with pytest.raises(StatusError) as e:
        asyncio.run(coro)
    return e.value


def test_always_deny_names_object_or_generate_name() -> None:
    err = refused(AlwaysDeny().admit(_req(CREATE, {"metadata": {"generateName": "web-"}}, name="")))
    assert (err.code, err.message) == (403, 'pods "web-" is forbidden: admission control is denying all modifications')
    err = refused(AlwaysDeny().validate(_req(DELETE, None, {"metadata": {"name": "x"}}, r=CONFIGMAPS)))
    assert err.message == 'configmaps "x" is forbidden: admission control is denying all modifications'
    assert refused(AlwaysDeny().admit(_req(CREATE, {}, name=""))).message.startswith('pods "Unknown" is forbidden')


def test_always_pull_images() -> None:
    plugin = AlwaysPullImages()
    pod = _pod(initContainers=[{"name": "init", "image": "busybox", "imagePullPolicy": "IfNotPresent"}],
               volumes=[{"name": "v", "image": {"reference": "data:1"}}])
    run(plugin.admit(_req(CREATE, pod)))
    assert [c["imagePullPolicy"] for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]] == ["Always"] * 2
    assert pod["spec"]["volumes"][0]["image"]["pullPolicy"] == "Always"
    run(plugin.validate(_req(CREATE, pod)))
    bad = _pod()
    bad["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    err = refused(plugin.validate(_req(CREATE, bad)))
    assert err.message == ('pods "p" is forbidden: spec.containers[0].imagePullPolicy: Unsupported value: "Never": '
                           'supported values: "Always"')
    # An update that brings no new image is left alone; a new image is not.
    run(plugin.validate(_req(UPDATE, bad, copy.deepcopy(bad))))
    newer = copy.deepcopy(bad)
    newer["spec"]["containers"][0]["image"] = "nginx:2"
    assert refused(plugin.validate(_req(UPDATE, newer, bad))).code == 403


def test_default_toleration_seconds() -> None:
    plugin = DefaultTolerationSeconds(300, 60)
    pod = _pod(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
    run(plugin.admit(_req(CREATE, pod)))
    assert pod["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]
    everything = _pod(tolerations=[{"operator": "Exists"}])
    run(plugin.admit(_req(CREATE, everything)))
    assert everything["spec"]["tolerations"] == [{"operator": "Exists"}]
    status = _pod()
    run(plugin.admit(_req(UPDATE, status, _pod(), subresource="status")))
    assert "tolerations" not in status["spec"]


def test_extended_resource_toleration() -> None:
    assert is_extended_resource("example.com/gpu")
    assert not is_extended_resource("cpu") and not is_extended_resource("kubernetes.io/x")
    assert not is_extended_resource("requests.example.com/gpu")
    pod = _pod(tolerations=[{"key": "example.com/gpu", "operator": "Exists", "effect": "NoSchedule",
                             "tolerationSeconds": 5}])
    pod["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "1", "cpu": "1",
                                                              "a.io/fpga": "1"}}
    run(ExtendedResourceToleration().admit(_req(CREATE, pod)))
    assert pod["spec"]["tolerations"] == [
        {"key": "example.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "a.io/fpga", "operator": "Exists", "effect": "NoSchedule"}]


def test_anti_affinity_topology() -> None:
    plugin = LimitPodHardAntiAffinityTopology()
    term = {"labelSelector": {}, "topologyKey": "kubernetes.io/hostname"}
    run(plugin.validate(_req(CREATE, _pod(affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term]}}))))
    zone = dict(term, topologyKey="zone")
    pod = _pod(affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [zone]}})
    pod["metadata"] = {"generateName": "web-"}
    err = refused(plugin.validate(_req(CREATE, pod, name="")))
    # Upstream names the pod (empty before name generation), not the request.
    assert err.message == ('pods is forbidden: affinity.PodAntiAffinity.RequiredDuringScheduling has TopologyKey '
                           'zone but only key kubernetes.io/hostname is allowed')


def test_default_storage_class_newest_default_wins() -> None:
    def sc(name: str, ts: str, default: str | None = None, beta: bool = False) -> dict[str, Any]:
        ann = {}
        if default is not None:
            key = "storageclass.beta.kubernetes.io/is-default-class" if beta else \
                "storageclass.kubernetes.io/is-default-class"
            ann[key] = default
        return {"metadata": {"name": name, "creationTimestamp": ts, "annotations": ann}}
    assert default_class([sc("a", "2026-01-01T00:00:00Z")]) is None
    found = default_class([sc("old", "2026-01-01T00:00:00Z", "true"), sc("new", "2026-02-01T00:00:00Z", "true", True),
                           sc("off", "2026-03-01T00:00:00Z", "false")])
    assert found is not None and found["metadata"]["name"] == "new"
    tie = default_class([sc("b", "2026-01-01T00:00:00Z", "true"), sc("a", "2026-01-01T00:00:00Z", "true")])
    assert tie is not None and tie["metadata"]["name"] == "a"


LIMITS = {"spec": {"limits": [
    {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}, "min": {"cpu": "50m"},
     "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
     "maxLimitRequestRatio": {"cpu": "10"}},
    {"type": "Pod", "max": {"memory": "1Gi"}},
    {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]}}


def test_limit_ranger_defaults_and_annotation() -> None:
    pod = _pod(initContainers=[{"name": "init", "image": "x", "resources": {"limits": {"cpu": "200m"},
                                                                          "requests": {"cpu": "200m"}}}])
    default_pod(LIMITS, pod)
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"},
                                                         "requests": {"cpu": "100m", "memory": "128Mi"}}
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app; "
        "memory request for init container init; memory limit for init container init")
    assert validate_pod(LIMITS, pod) == []


def test_limit_ranger_bounds() -> None:
    def pod_with(requests: dict[str, str], limits: dict[str, str]) -> dict[str, Any]:
        p = _pod()
        p["spec"]["containers"][0]["resources"] = {"requests": requests, "limits": limits}
        return p
    assert validate_pod(LIMITS, pod_with({"cpu": "2", "memory": "1"}, {"cpu": "2", "memory": "1"})) == [
        "maximum cpu usage per Container is 1, but limit is 2"]
    assert validate_pod(LIMITS, pod_with({"cpu": "10m", "memory": "1"}, {"cpu": "200m", "memory": "1"})) == [
        "minimum cpu usage per Container is 50m, but request is 10m",
        "cpu max limit to request ratio per Container is 10, but provided ratio is 20.000000"]
    assert validate_pod(LIMITS, pod_with({}, {"memory": "1"})) == [
        "minimum cpu usage per Container is 50m.  No request is specified",
        "maximum cpu usage per Container is 1.  No limit is specified",
        "cpu max limit to request ratio per Container is 10, but no request is specified or request is 0"]
    two = pod_with({"cpu": "100m", "memory": "600Mi"}, {"cpu": "100m", "memory": "600Mi"})
    two["spec"]["containers"].append(copy.deepcopy(two["spec"]["containers"][0]) | {"name": "b"})
    assert validate_pod(LIMITS, two) == ["maximum memory usage per Pod is 1Gi, but limit is 1200Mi"]
    claim = {"spec": {"resources": {"requests": {"storage": "20Gi"}}}}
    assert validate_claim(LIMITS, claim) == ["maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"]
    assert validate_claim(LIMITS, {"spec": {}}) == [
        "minimum storage usage per PersistentVolumeClaim is 1Gi.  No request is specified",
        "maximum storage usage per PersistentVolumeClaim is 10Gi.  No request is specified"]


def test_service_account_token_volume() -> None:
    assert should_automount({}, _pod())
    assert not should_automount({"automountServiceAccountToken": False}, _pod())
    assert should_automount({"automountServiceAccountToken": False}, _pod(automountServiceAccountToken=True))
    spec = _pod(initContainers=[{"name": "i", "image": "x"}])["spec"]
    spec["containers"].append({"name": "own", "image": "x", "volumeMounts": [
        {"name": "mine", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]})
    mount_token(spec)
    (vol,) = spec["volumes"]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == len("kube-api-access-") + 5
    assert vol["projected"]["sources"][0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert vol["projected"]["defaultMode"] == 420
    mount = {"name": vol["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    assert spec["initContainers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][1]["volumeMounts"][0]["name"] == "mine"
    # An existing kube-api-access volume is reused, not duplicated.
    again = {"containers": [{"name": "c"}], "volumes": [{"name": "kube-api-access-abcde", "emptyDir": {}}]}
    mount_token(again)
    assert len(again["volumes"]) == 1 and again["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


def test_service_account_mountable_secrets() -> None:
    sa = {"metadata": {"name": "sa"}, "secrets": [{"name": "ok"}], "imagePullSecrets": [{"name": "pull"}]}
    good = _pod(volumes=[{"name": "v", "secret": {"secretName": "ok"}}], imagePullSecrets=[{"name": "pull"}])
    assert secret_reference_error(sa, good) is None
    bad = _pod(volumes=[{"name": "v", "secret": {"secretName": "other"}}])
    assert secret_reference_error(sa, bad) == ('volume with secret.secretName="other" is not allowed because service '
                                               'account sa does not reference that secret')
    env = _pod()
    env["spec"]["containers"][0]["env"] = [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]
    assert secret_reference_error(sa, env) == ('container app with envVar E referencing secret.secretName="x" is not '
                                               'allowed because service account sa does not reference that secret')
    pull = _pod(imagePullSecrets=[{"name": "nope"}])
    assert secret_reference_error(sa, pull) == ('imagePullSecrets[0].name="nope" is not allowed because service '
                                                'account sa does not reference that imagePullSecret')


def _quota(name: str, hard: dict[str, str], used: dict[str, str] | None, **spec: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"hard": hard}
    if used is not None:
        status["used"] = used
    return {"metadata": {"name": name}, "spec": {"hard": hard, **spec}, "status": status}


def test_resource_quota_charges_and_refuses() -> None:
    q = _quota("compute", {"pods": "2", "requests.cpu": "1", "limits.memory": "1Gi"},
               {"pods": "1", "requests.cpu": "300m", "limits.memory": "512Mi"})
    pod = _pod()
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "200m"}, "limits": {"memory": "256Mi"}}
    assert evaluate(_req(CREATE, pod), [q]) == {
        "compute": {"pods": "2", "requests.cpu": "500m", "limits.memory": "768Mi"}}
    pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "800m"
    err = refused(_async(evaluate, _req(CREATE, pod), [q]))
    assert err.message == ('pods "p" is forbidden: exceeded quota: compute, requested: requests.cpu=800m, '
                           'used: requests.cpu=300m, limited: requests.cpu=1')
    err = refused(_async(evaluate, _req(CREATE, _pod()), [q]))
    assert err.message == ('pods "p" is forbidden: failed quota: compute: must specify limits.memory for: app; '
                           'requests.cpu for: app')


def test_resource_quota_counts_scopes_and_unknown_status() -> None:
    cm = {"metadata": {"name": "c"}}
    counts = _quota("objects", {"count/configmaps": "1"}, {"count/configmaps": "1"})
    err = refused(_async(evaluate, _req(CREATE, cm, r=CONFIGMAPS), [counts]))
    assert err.message == ('configmaps "c" is forbidden: exceeded quota: objects, requested: count/configmaps=1, '
                           'used: count/configmaps=1, limited: count/configmaps=1')
    unknown = _quota("fresh", {"configmaps": "5"}, None)
    err = refused(_async(evaluate, _req(CREATE, cm, r=CONFIGMAPS), [unknown]))
    assert err.message == 'configmaps "c" is forbidden: status unknown for quota: fresh, resources: configmaps'
    # Without status.hard the controller has not seen the quota yet: it does not apply.
    assert evaluate(_req(CREATE, cm, r=CONFIGMAPS), [{"metadata": {"name": "new"}, "spec": {"hard": {}}}]) == {}
    best_effort = _quota("be", {"pods": "0"}, {"pods": "0"}, scopes=["BestEffort"])
    sized = _pod()
    sized["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    assert evaluate(_req(CREATE, sized), [best_effort]) == {}
    assert refused(_async(evaluate, _req(CREATE, _pod()), [best_effort])).code == 403
    # Updates of pods are not charged; dry-run evaluation is the caller's business.
    assert evaluate(_req(UPDATE, _pod(), _pod()), [counts]) == {}


def test_quantity_rendering() -> None:
    from decimal import Decimal
    assert [render(Decimal(v), b) for v, b in (("0.5", False), ("2", False), ("2000", False),
                                                (str(768 * 2**20), True), ("0", True), ("1.5", True))] == [
        "500m", "2", "2k", "768Mi", "0", "1500m"]


def _async(fn: Any, *args: Any) -> Any:
    async def call() -> Any:
        return fn(*args)
    return call()


def test_event_rate_limit() -> None:
    now = [0.0]
    plugin = EventRateLimit(erl_config({"limits": [{"type": "Namespace", "qps": 1, "burst": 2},
                                                   {"type": "User", "qps": 10, "burst": 10}]}), clock=lambda: now[0])
    ev = {"metadata": {"name": "e"}}
    run(plugin.validate(_req(CREATE, ev, r=EVENTS, ns="ns1")))
    run(plugin.validate(_req(CREATE, ev, r=EVENTS, ns="ns1")))
    err = refused(plugin.validate(_req(CREATE, ev, r=EVENTS, ns="ns1")))
    assert (err.code, err.reason, err.message) == (429, "TooManyRequests",
                                                   "Too many requests: limit reached on type Namespace for key ns1")
    run(plugin.validate(_req(CREATE, ev, r=EVENTS, ns="ns2")))
    run(plugin.validate(_req(CREATE, ev, r=EVENTS, ns="ns1", dry_run=True)))
    now[0] = 1.0
    run(plugin.validate(_req(CREATE, ev, r=EVENTS, ns="ns1")))


def test_event_rate_limit_configuration_errors() -> None:
    with pytest.raises(ValueError) as e:
        erl_config(None)
    assert str(e.value) == "limits: Invalid value: null: must not be empty"
    with pytest.raises(ValueError) as e:
        erl_config({"limits": [{"type": "Pod", "qps": 0, "burst": 1}]})
    assert str(e.value) == ('[limits[0].type: Unsupported value: "Pod": supported values: "Namespace", "Server", '
                            '"SourceAndObject", "User", limits[0].qps: Invalid value: 0: must be positive]')


class _FakeClient:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.sent: list[dict[str, Any]] = []

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(body)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_image_policy_webhook_review_cache_and_denial() -> None:
    client = _FakeClient([{"status": {"allowed": True, "auditAnnotations": {"k": "v"}}},
                          {"status": {"allowed": False, "reason": "image currently blacklisted"}}])
    plugin = ImagePolicyWebhook(client, 300, 30, False)  # type: ignore[arg-type]
    pod = _pod(initContainers=[{"name": "i", "image": "busybox"}])
    pod["metadata"]["annotations"] = {"mycluster.image-policy.k8s.io/ticket-1234": "break-glass", "other": "x"}
    req = _req(CREATE, pod)
    run(plugin.validate(req))
    assert client.sent[0] == {"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
                              "metadata": {"creationTimestamp": None},
                              "spec": {"containers": [{"image": "nginx"}, {"image": "busybox"}],
                                       "annotations": {"mycluster.image-policy.k8s.io/ticket-1234": "break-glass"},
                                       "namespace": "ns"},
                              "status": {"allowed": False}}
    assert req.annotations == {"imagepolicywebhook.image-policy.k8s.io/k": "v"}
    run(plugin.validate(_req(CREATE, copy.deepcopy(pod))))  # cached: no second call
    assert len(client.sent) == 1
    err = refused(plugin.validate(_req(CREATE, _pod("q"))))
    assert err.message == ('pods "q" is forbidden: image policy webhook backend denied one or more images: '
                           'image currently blacklisted')


def test_image_policy_webhook_failure_policy() -> None:
    closed = ImagePolicyWebhook(_FakeClient([WebhookError("connection refused")]), 300, 30, False)  # type: ignore[arg-type]
    assert refused(closed.validate(_req(CREATE, _pod()))).message == 'pods "p" is forbidden: connection refused'
    open_ = ImagePolicyWebhook(_FakeClient([WebhookError("connection refused")]), 300, 30, True)  # type: ignore[arg-type]
    pod = _pod()
    req = _req(CREATE, pod)
    run(open_.validate(req))
    assert req.annotations == {"imagepolicywebhook.image-policy.k8s.io/failed-open": "true"}
    assert pod["metadata"]["annotations"] == {"alpha.image-policy.k8s.io/failed-open": "true"}


def test_image_policy_configuration() -> None:
    path, durations, allow = ipw_config({"imagePolicy": {"kubeConfigFile": "/k", "allowTTL": 50, "denyTTL": -1,
                                                         "defaultAllow": True}})
    assert (path, durations, allow) == ("/k", {"retryBackoff": 0.5, "allowTTL": 50.0, "denyTTL": 0.0}, True)
    with pytest.raises(ValueError) as e:
        ipw_config({"imagePolicy": {"kubeConfigFile": "/k", "allowTTL": 3600}})
    assert str(e.value) == "valid value is between 1s and 30m0s, got 60m0s for allow cache"
    with pytest.raises(ValueError):
        ipw_config(None)
