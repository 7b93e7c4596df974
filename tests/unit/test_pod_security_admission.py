"""The PodSecurity admission plugin against upstream's recorded responses (goldens/podsecurity)."""
from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest
from kubegate.admission.pod_security import PodSecurity, parse_configuration
from kubegate.api import resources
from kubegate.api.errors import StatusError
from kubegate.authn.user import UserInfo
from kubegate.podsecurity.api import LATEST, LevelVersion
from tests.fixtures import GOLDENS

PODS = resources.lookup("", "v1", "pods")
NAMESPACES = resources.lookup("", "v1", "namespaces")
DEPLOYMENTS = resources.lookup("apps", "v1", "deployments")
ADMIN = UserInfo("admin", groups=("system:masters",))


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDENS / "podsecurity" / name).read_text())


def warning_texts(g: dict[str, Any]) -> list[str]:
    """The Warning header values without the `299 - "..."` framing and escaping."""
    return [json.loads(w[len("299 - "):]) for w in g["response"]["headers"].get("Warning", [])]


class World:
    def __init__(self, namespaces: dict[str, dict[str, str]], pods: dict[str, list[dict[str, Any]]] | None = None,
                 config: dict[str, Any] | None = None) -> None:
        self.namespaces = {n: {"metadata": {"name": n, "labels": labels}} for n, labels in namespaces.items()}
        self.pods = pods or {}
        self.plugin = PodSecurity(config, self.namespaces.get, lambda ns: self.pods.get(ns, []))

    def run(self, resource: Any, namespace: str, obj: dict[str, Any], op: str = CREATE,
            old: dict[str, Any] | None = None, user: UserInfo = ADMIN) -> AdmissionRequest:
        req = AdmissionRequest(op, resource, namespace, obj["metadata"].get("name", ""), user, obj, old)
        asyncio.run(self.plugin.validate(req))
        return req


def _pod_golden_case(name: str, labels: dict[str, str]) -> tuple[dict[str, Any], World, str]:
    g = golden(name)
    ns = g["request"]["path"].split("/")[4]
    return g, World({ns: labels}), ns


@pytest.mark.parametrize("name,labels", [
    ("enforce-baseline-privileged-pod.json", {"pod-security.kubernetes.io/enforce": "baseline"}),
    ("enforce-baseline-hostpath-pod.json", {"pod-security.kubernetes.io/enforce": "baseline"}),
    ("enforce-restricted-plain-pod.json", {"pod-security.kubernetes.io/enforce": "restricted"}),
    ("enforce-restricted-dry-run.json", {"pod-security.kubernetes.io/enforce": "restricted"}),
    ("mixed-labels-privileged-pod.json", {"pod-security.kubernetes.io/enforce": "baseline",
                                          "pod-security.kubernetes.io/enforce-version": "v1.30",
                                          "pod-security.kubernetes.io/warn": "restricted",
                                          "pod-security.kubernetes.io/audit": "restricted"}),
])
def test_enforce_refuses_with_upstreams_status(name: str, labels: dict[str, str]) -> None:
    g, world, ns = _pod_golden_case(name, labels)
    with pytest.raises(StatusError) as e:
        world.run(PODS, ns, g["request"]["body"])
    assert e.value.code == 403
    assert e.value.status() == g["response"]["body"]


@pytest.mark.parametrize("name,labels", [
    ("warn-restricted-pod.json", {"pod-security.kubernetes.io/warn": "restricted"}),
    ("warn-restricted-privileged-pod.json", {"pod-security.kubernetes.io/warn": "restricted"}),
    ("warn-restricted-compliant-pod.json", {"pod-security.kubernetes.io/warn": "restricted"}),
    ("enforce-baseline-ok-pod.json", {"pod-security.kubernetes.io/enforce": "baseline"}),
    ("enforce-restricted-compliant-pod.json", {"pod-security.kubernetes.io/enforce": "restricted"}),
    ("mixed-labels-pod.json", {"pod-security.kubernetes.io/enforce": "baseline",
                               "pod-security.kubernetes.io/enforce-version": "v1.30",
                               "pod-security.kubernetes.io/warn": "restricted",
                               "pod-security.kubernetes.io/audit": "restricted"}),
    ("warn-restricted-deployment.json", {"pod-security.kubernetes.io/warn": "restricted"}),
    ("enforce-restricted-deployment.json", {"pod-security.kubernetes.io/enforce": "restricted"}),
])
def test_allowed_requests_carry_upstreams_warnings(name: str, labels: dict[str, str]) -> None:
    g, world, ns = _pod_golden_case(name, labels)
    resource = DEPLOYMENTS if "deployments" in g["request"]["path"] else PODS
    req = world.run(resource, ns, g["request"]["body"])
    assert req.warnings == warning_texts(g)


def test_audit_annotations() -> None:
    world = World({"a": {"pod-security.kubernetes.io/enforce": "baseline",
                         "pod-security.kubernetes.io/audit": "restricted",
                         "pod-security.kubernetes.io/audit-version": "v1.30"}})
    req = world.run(PODS, "a", golden("warn-restricted-pod.json")["request"]["body"])
    assert req.annotations["pod-security.kubernetes.io/enforce-policy"] == "baseline:latest"
    assert req.annotations["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:v1.30": allowPrivilegeEscalation != false (container "app"')
    # Enforce=baseline implies warn=baseline, which the plain pod meets.
    assert req.warnings == []


def test_invalid_labels_fail_closed_for_enforce_and_are_recorded() -> None:
    world = World({"a": {"pod-security.kubernetes.io/enforce": "bogus"}})
    with pytest.raises(StatusError) as e:
        world.run(PODS, "a", golden("warn-restricted-pod.json")["request"]["body"])
    assert 'violates PodSecurity "restricted:latest"' in e.value.message
    world = World({"a": {"pod-security.kubernetes.io/warn": "bogus", "pod-security.kubernetes.io/enforce-version": "x"}})
    req = world.run(PODS, "a", golden("warn-restricted-privileged-pod.json")["request"]["body"])
    assert req.warnings == []  # invalid warn level fails open
    assert req.annotations["pod-security.kubernetes.io/error"] == (
        'Failed to parse policy: [metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: "x": '
        'must be "latest" or "v1.x", metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "bogus": '
        "must be one of privileged, baseline, restricted]")


@pytest.mark.parametrize("name", ["label-namespace-invalid-level.json", "label-namespace-invalid-version.json"])
def test_invalid_namespace_labels_are_422(name: str) -> None:
    g = golden(name)
    world = World({})
    old = {"metadata": {"name": "golden-psa-relabel", "labels": {}}}
    new = copy.deepcopy(old)
    new["metadata"]["labels"].update(g["request"]["body"]["metadata"]["labels"])
    with pytest.raises(StatusError) as e:
        world.run(NAMESPACES, "", new, UPDATE, old)
    assert e.value.status() == g["response"]["body"]
    # An update that leaves the same invalid labels in place is allowed.
    world.run(NAMESPACES, "", new, UPDATE, copy.deepcopy(new))


def test_namespace_label_change_warns_about_existing_pods() -> None:
    g = golden("label-namespace-existing-violations.json")
    ns = "golden-psa-relabel"
    pods = [golden("enforce-restricted-plain-pod.json")["request"]["body"],
            golden("enforce-restricted-dry-run.json")["request"]["body"]]
    world = World({}, {ns: pods})
    old = {"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}
    new = copy.deepcopy(old)
    new["metadata"]["labels"].update(g["request"]["body"]["metadata"]["labels"])
    req = world.run(NAMESPACES, "", new, UPDATE, old)
    assert req.warnings == warning_texts(g)
    # Relaxing, or leaving enforce unchanged, evaluates nothing.
    assert world.run(NAMESPACES, "", old, UPDATE, new).warnings == []
    assert world.run(NAMESPACES, "", new, UPDATE, copy.deepcopy(new)).warnings == []


def test_existing_pod_warnings_group_by_reasons() -> None:
    plain = golden("enforce-restricted-plain-pod.json")["request"]["body"]
    pods = []
    for n in ("c", "b", "a"):
        p = copy.deepcopy(plain)
        p["metadata"]["name"] = n
        pods.append(p)
    world = World({}, {"x": pods})
    warnings = world.plugin.evaluate_pods_in_namespace("x", LevelVersion("restricted", LATEST))
    assert warnings[1] == ("a (and 2 other pods): allowPrivilegeEscalation != false, unrestricted capabilities, "
                           "runAsNonRoot != true, seccompProfile")


def test_metadata_only_update_is_not_evaluated() -> None:
    g = golden("enforce-baseline-privileged-pod.json")
    world = World({"golden-psa-baseline": {"pod-security.kubernetes.io/enforce": "restricted"}})
    old = g["request"]["body"]
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"touched": "yes"}
    world.run(PODS, "golden-psa-baseline", new, UPDATE, old)
    new["spec"]["containers"][0]["image"] = "other"
    with pytest.raises(StatusError):
        world.run(PODS, "golden-psa-baseline", new, UPDATE, old)


def test_exemptions_and_defaults_from_configuration() -> None:
    config = {"apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
              "defaults": {"enforce": "baseline"},
              "exemptions": {"usernames": ["ops"], "namespaces": ["kube-system"], "runtimeClasses": ["kata"]}}
    pod = golden("enforce-baseline-privileged-pod.json")["request"]["body"]
    world = World({"a": {}, "kube-system": {}}, config=config)
    with pytest.raises(StatusError):
        world.run(PODS, "a", pod)  # the default enforce level applies to unlabelled namespaces
    assert world.run(PODS, "a", pod, user=UserInfo("ops")).annotations == {"pod-security.kubernetes.io/exempt": "user"}
    assert world.run(PODS, "kube-system", pod).annotations == {"pod-security.kubernetes.io/exempt": "namespace"}
    kata = copy.deepcopy(pod)
    kata["spec"]["runtimeClassName"] = "kata"
    assert world.run(PODS, "a", kata).annotations == {"pod-security.kubernetes.io/exempt": "runtimeClass"}
    ns = {"metadata": {"name": "kube-system", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    assert world.run(NAMESPACES, "", ns).warnings == [
        'namespace "kube-system" is exempt from Pod Security, and the policy (enforce=restricted:latest) '
        "will be ignored"]


@pytest.mark.parametrize("config", [
    {"apiVersion": "v1", "kind": "Foo"},
    {"apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
     "defaults": {"enforce": "strict"}},
    {"apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
     "defaults": {"warn-version": "1.2"}},
])
def test_bad_configuration_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse_configuration(config)
