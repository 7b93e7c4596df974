"""--allow-privileged: on by default (as kubeadm sets it); off refuses privileged containers in pods and in
workload templates with upstream's 422."""
from __future__ import annotations

import json
from typing import Any

from tests.e2e.cluster import Cluster

FORBIDDEN = "securityContext.privileged: Forbidden: disallowed by cluster policy"


def _pod(name: str, privileged: bool) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": privileged}}]}}


def test_privileged_pods_are_allowed_by_default(cluster: Cluster, ns: str) -> None:
    r = cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(_pod("priv", True)))
    assert r.code == 0, r.stderr


def test_allow_privileged_false_refuses_them(fresh_cluster: Cluster) -> None:
    c = fresh_cluster
    c.extra_args = ["--allow-privileged=false"]
    c.start()
    status, _, body = c.request("POST", "/api/v1/namespaces/default/pods", _pod("priv", True))
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["message"] == f'Pod "priv" is invalid: spec.containers[0].{FORBIDDEN}'
    assert body["details"]["causes"] == [{"reason": "FieldValueForbidden", "message": "Forbidden: disallowed by "
                                          "cluster policy", "field": "spec.containers[0].securityContext.privileged"}]
    status, _, _ = c.request("POST", "/api/v1/namespaces/default/pods", _pod("plain", False))
    assert status == 201
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"initContainers": [_pod("x", True)["spec"]["containers"][0]],
                                          "containers": [{"name": "c2", "image": "nginx"}]}}}}
    r = c.kubectl("create", "-f", "-", input=json.dumps(dep))
    assert r.code != 0
    assert f'The Deployment "d" is invalid: spec.template.spec.initContainers[0].{FORBIDDEN}' in r.stderr
