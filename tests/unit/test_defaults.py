"""Defaulting compared with upstream's defaulted objects in the goldens."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kubegate.api.defaults import apply_defaults, qos_class
from kubegate.api.resources import RESOURCES, Resource

from tests.fixtures import GOLDENS


def res(group: str, kind: str) -> Resource:
    return next(r for r in RESOURCES if r.group == group and r.kind == kind)


def golden(path: str) -> dict[str, Any]:
    return json.loads((GOLDENS / path).read_text())


def defaulted(resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    apply_defaults(resource, obj)
    return obj


def test_pod_defaults_match_golden() -> None:
    g = golden("podsecurity/enforce-restricted-deployment.json")
    want_template = g["response"]["body"]["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}
    got = defaulted(res("", "Pod"), pod)
    want_spec = dict(want_template["spec"], enableServiceLinks=True, priority=0,
                     preemptionPolicy="PreemptLowerPriority")
    assert got["spec"] == want_spec
    assert got["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_pod_golden_after_limitranger_is_burstable() -> None:
    body = golden("admission/limitrange-defaults-applied.json")["response"]["body"]
    spec = copy.deepcopy(body["spec"])
    assert qos_class(spec) == body["status"]["qosClass"] == "Burstable"
    # defaulting an already-defaulted pod changes nothing
    assert defaulted(res("", "Pod"), body) == body


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
    ("nginx@sha256:abc", "IfNotPresent"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    got = defaulted(res("", "Pod"), {"spec": {"containers": [{"name": "a", "image": image}]}})
    assert got["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_pod_container_details_and_guaranteed_qos() -> None:
    pod = {"spec": {"containers": [{
        "name": "a", "image": "i:1", "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "readinessProbe": {"httpGet": {"port": 80}}}],
        "volumes": [{"name": "s", "secret": {"secretName": "x"}}]}}
    got = defaulted(res("", "Pod"), pod)
    c = got["spec"]["containers"][0]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert c["readinessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert got["spec"]["volumes"][0]["secret"]["defaultMode"] == 420
    assert got["status"]["qosClass"] == "Guaranteed"


def test_deployment_defaults_match_golden() -> None:
    g = golden("podsecurity/enforce-restricted-deployment.json")
    got = defaulted(res("apps", "Deployment"), g["request"]["body"])
    want = g["response"]["body"]
    assert got["spec"] == want["spec"]
    assert got["status"] == want["status"] == {}


def test_replicaset_defaults() -> None:
    got = defaulted(res("apps", "ReplicaSet"), {"spec": {"template": {"spec": {"containers": []}}}})
    assert got["spec"]["replicas"] == 1
    assert got["status"] == {"replicas": 0}


def test_namespace_defaults_match_golden() -> None:
    g = golden("namespaces/create-namespace.json")
    got = defaulted(res("", "Namespace"), g["request"]["body"])
    want = g["response"]["body"]
    assert got["metadata"]["labels"] == want["metadata"]["labels"]
    # the `kubernetes` finalizer is a create-time strategy step (registry), not defaulting
    assert got["spec"] == {} and want["spec"] == {"finalizers": ["kubernetes"]}
    assert got["status"] == want["status"]
    # the name label is forced back (namespaces/patch-metadata-name-label.json)
    p = golden("namespaces/patch-metadata-name-label.json")["response"]["body"]
    forced = copy.deepcopy(p)
    forced["metadata"]["labels"]["kubernetes.io/metadata.name"] = "something-else"
    assert defaulted(res("", "Namespace"), forced)["metadata"]["labels"] == p["metadata"]["labels"]


def test_secret_defaults_match_golden() -> None:
    g = golden("secrets/secret-stringdata.json")
    got = defaulted(res("", "Secret"), g["request"]["body"])
    want = g["response"]["body"]
    assert got["data"] == want["data"] and got["type"] == "Opaque" and "stringData" not in got
    custom = golden("secrets/secret-custom-type.json")
    assert defaulted(res("", "Secret"), custom["request"]["body"])["type"] == "example.com/custom"


def test_status_structs_and_limitrange_golden() -> None:
    rq = golden("admission/resourcequota-create.json")
    assert defaulted(res("", "ResourceQuota"), rq["request"]["body"])["status"] == {}
    lr = golden("admission/limitrange-create.json")
    assert defaulted(res("", "LimitRange"), lr["request"]["body"])["spec"] == lr["response"]["body"]["spec"]
    csr = {"spec": {"signerName": "example.com/x"}}
    assert defaulted(res("certificates.k8s.io", "CertificateSigningRequest"), csr)["status"] == {}


def test_limitrange_max_fills_defaults() -> None:
    lr = {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]}}
    item = defaulted(res("", "LimitRange"), lr)["spec"]["limits"][0]
    assert item["default"] == {"cpu": "2"}
    assert item["defaultRequest"] == {"cpu": "2", "memory": "1Mi"}


def test_rbac_networking_storage_pvc_defaults() -> None:
    rb = defaulted(res("rbac.authorization.k8s.io", "RoleBinding"), {
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]})
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert rb["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io"
    assert "apiGroup" not in rb["subjects"][1]
    np = defaulted(res("networking.k8s.io", "NetworkPolicy"),
                   {"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}})
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert np["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"
    only_ingress = defaulted(res("networking.k8s.io", "NetworkPolicy"), {"spec": {}})
    assert only_ingress["spec"]["policyTypes"] == ["Ingress"]
    sc = defaulted(res("storage.k8s.io", "StorageClass"), {"provisioner": "x.io/p"})
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    pvc = defaulted(res("", "PersistentVolumeClaim"), {"spec": {}})
    assert pvc["spec"]["volumeMode"] == "Filesystem" and pvc["status"] == {"phase": "Pending"}


def test_kinds_without_defaults_untouched() -> None:
    cm = {"metadata": {"name": "c"}, "data": {"a": "b"}}
    assert defaulted(res("", "ConfigMap"), cm) == cm
    sa = golden("serviceaccounts/create-sa-automount-false.json")["request"]["body"]
    assert defaulted(res("", "ServiceAccount"), sa) == sa
