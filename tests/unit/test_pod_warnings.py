"""Pod and pod-template warnings (pkg/api/pod/warnings.go and the strategies' WarningsOnCreate/Update)."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kubegate.api.defaults import apply_defaults
from kubegate.api.resources import RESOURCES
from kubegate.api.warnings import for_write

POD = next(r for r in RESOURCES if r.group == "" and r.kind == "Pod")
DEPLOY = next(r for r in RESOURCES if r.group == "apps" and r.kind == "Deployment")
RS = next(r for r in RESOURCES if r.group == "apps" and r.kind == "ReplicaSet")
CM = next(r for r in RESOURCES if r.group == "" and r.kind == "ConfigMap")


def pod(spec: dict[str, Any] | None = None, container: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None, name: str = "p") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                           "spec": {"containers": [{"name": "c", "image": "nginx", **(container or {})}],
                                    **(spec or {})}}
    if annotations:
        obj["metadata"]["annotations"] = annotations
    apply_defaults(POD, obj)
    return obj


def deployment(pod_obj: dict[str, Any], name: str = "d", generation: int = 1) -> dict[str, Any]:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "generation": generation},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}, **pod_obj["metadata"]},
                                 "spec": pod_obj["spec"]}}}
    obj["spec"]["template"]["metadata"].pop("name", None)
    apply_defaults(DEPLOY, obj)
    return obj


CASES = [
    ({"nodeSelector": {"beta.kubernetes.io/os": "linux", "kubernetes.io/os": "linux"}}, {}, {},
     ['spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use "kubernetes.io/os" instead']),
    ({"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "failure-domain.beta.kubernetes.io/zone", "operator": "Exists"}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [
            {"key": "node-role.kubernetes.io/master", "operator": "Exists"}]}}]}}}, {}, {},
     ["spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
      ".matchExpressions[0].key: failure-domain.beta.kubernetes.io/zone is deprecated since v1.17; use "
      '"topology.kubernetes.io/zone" instead',
      "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0]"
      '.key: node-role.kubernetes.io/master is use "node-role.kubernetes.io/control-plane" instead']),
    ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "beta.kubernetes.io/arch",
                                     "whenUnsatisfiable": "DoNotSchedule"}]}, {}, {},
     ['spec.topologySpreadConstraints[0].topologyKey: beta.kubernetes.io/arch is deprecated since v1.14; use '
      '"kubernetes.io/arch" instead',
      "spec.topologySpreadConstraints[0].labelSelector: a null labelSelector results in matching no pod"]),
    ({}, {}, {"scheduler.alpha.kubernetes.io/critical-pod": "",
              "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
              "container.seccomp.security.alpha.kubernetes.io/c": "runtime/default"},
     ['metadata.annotations[scheduler.alpha.kubernetes.io/critical-pod]: non-functional in v1.16+; use the '
      '"priorityClassName" field instead',
      'metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: non-functional in v1.27+; use the '
      '"seccompProfile" field instead',
      'metadata.annotations[container.seccomp.security.alpha.kubernetes.io/c]: non-functional in v1.27+; use the '
      '"seccompProfile" field instead']),
    ({"volumes": [{"name": "g", "gitRepo": {"repository": "r"}},
                  {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {
                      "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1500m"}}}}}},
                  {"name": "s", "storageos": {"volumeName": "v"}}]}, {}, {},
     ["spec.volumes[0].gitRepo: deprecated in v1.11",
      'spec.volumes[1].ephemeral.volumeClaimTemplate.spec.resources.requests[storage]: fractional byte value "1500m" '
      "is invalid, must be an integer",
      "spec.volumes[2].storageOS: deprecated in v1.22, non-functional in v1.25+"]),
    ({"volumes": [{"name": "t", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}},
        {"configMap": {"name": "cm", "items": [{"key": "k", "path": "token"}]}}]}}]}, {}, {},
     ['spec.volumes[0].projected.sources.configMap[0]: has duplicated path with ServiceAccountToken "token"']),
    ({"hostAliases": [{"ip": "1.2.3.4"}, {"ip": "1.2.3.4"}],
      "imagePullSecrets": [{"name": "a"}, {"name": "a"}, {"name": ""}]}, {}, {},
     ['spec.hostAliases[1].ip: duplicate ip "1.2.3.4"',
      'spec.imagePullSecrets[1].name: duplicate name "a"',
      'spec.imagePullSecrets[2].name: invalid empty name ""']),
    ({"overhead": {"memory": "0.5"}}, {"resources": {"limits": {"ephemeral-storage": "1Gi"},
                                                      "requests": {"memory": "1.5"}}}, {},
     ['spec.overhead[memory]: fractional byte value "500m" is invalid, must be an integer',
      'spec.containers[0].resources.requests[memory]: fractional byte value "1500m" is invalid, must be an integer']),
    ({}, {"env": [{"name": "A", "value": "x"}, {"name": "A", "value": "$(A)-y"}, {"name": "A", "value": "z"},
                  {"name": "B", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
     {},
     ['spec.containers[0].env[2]: hides previous definition of "A", which may be dropped when using apply',
      'spec.containers[0].env[4]: hides previous definition of "B", which may be dropped when using apply']),
    ({"initContainers": [{"name": "i", "image": "busybox", "ports": [{"containerPort": 80}]}]},
     {"ports": [{"containerPort": 80}, {"containerPort": 53, "hostIP": "10.0.0.1"},
                {"containerPort": 8080, "hostPort": 8080}, {"containerPort": 8080, "hostPort": 8080,
                                                            "hostIP": "10.0.0.1"}]}, {},
     ["spec.containers[0].ports[0]: duplicate port definition with spec.initContainers[0].ports[0]",
      "spec.containers[0].ports[1]: hostIP set without hostPort: {Name: HostPort:0 ContainerPort:53 Protocol:TCP "
      "HostIP:10.0.0.1}",
      "spec.containers[0].ports[3]: dangerously ambiguous port definition with spec.containers[0].ports[2]"]),
    ({"terminationGracePeriodSeconds": -5}, {}, {},
     ["spec.terminationGracePeriodSeconds: must be >= 0; negative values are invalid and will be treated as 1"]),
    ({"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname"}],
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}}}, {}, {},
     ["spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector: a null "
      "labelSelector results in matching no pod",
      "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm"
      ".labelSelector: a null labelSelector results in matching no pod"]),
    ({}, {}, {}, []),
]


@pytest.mark.parametrize("spec,container,annotations,want", CASES)
def test_pod_warnings(spec: dict[str, Any], container: dict[str, Any], annotations: dict[str, str],
                      want: list[str]) -> None:
    assert for_write(POD, pod(spec, container, annotations), None) == want


def test_pod_name_that_is_no_dns_label_warns_first() -> None:
    got = for_write(POD, pod({"nodeSelector": {"beta.kubernetes.io/arch": "amd64"}}, name="a.b"), None)
    assert got[0] == ("metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; "
                      "a DNS label is recommended: [must not contain dots]")
    assert got[1].startswith("spec.nodeSelector[beta.kubernetes.io/arch]")


def test_pod_updates_do_not_warn() -> None:
    obj = pod({"nodeSelector": {"beta.kubernetes.io/os": "linux"}})
    assert for_write(POD, obj, copy.deepcopy(obj)) == []


def test_templates_use_the_template_path_and_warn_about_apparmor_annotations() -> None:
    obj = deployment(pod({"nodeSelector": {"beta.kubernetes.io/os": "linux"}},
                         annotations={"container.apparmor.security.beta.kubernetes.io/c": "runtime/default"}),
                     name="web.v1")
    assert for_write(DEPLOY, obj, None) == [
        "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS "
        "label is recommended: [must not contain dots]",
        'spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use "kubernetes.io/os" '
        "instead",
        "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]: deprecated since "
        'v1.30; use the "appArmorProfile" field instead',
    ]
    rs = dict(obj, kind="ReplicaSet")
    assert for_write(RS, rs, None) == for_write(DEPLOY, obj, None)


def test_template_updates_warn_only_with_a_new_generation() -> None:
    old = deployment(pod({"nodeSelector": {"beta.kubernetes.io/os": "linux"}}))
    same = copy.deepcopy(old)
    assert for_write(DEPLOY, same, old) == []
    changed = deployment(pod({"nodeSelector": {"beta.kubernetes.io/os": "linux"}}), generation=2)
    assert for_write(DEPLOY, changed, old) == [
        'spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use "kubernetes.io/os" '
        "instead"]


def test_other_kinds_have_no_warnings() -> None:
    assert for_write(CM, {"metadata": {"name": "a.b"}}, None) == []
