"""Node identities (client certificates for system:node:<name> in system:nodes) against a real server
with the default Node,RBAC authorization and NodeRestriction admission."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.cluster import Cluster

# Node objects are cluster-wide in the shared session cluster: names of this module's own.
N1, N2 = "nid-n1", "nid-n2"


@pytest.fixture(scope="module")
def n1(cluster: Cluster) -> tuple[str, str]:
    return cluster.user_cert(f"system:node:{N1}", ("system:nodes",))


@pytest.fixture(scope="module")
def n2(cluster: Cluster) -> tuple[str, str]:
    return cluster.user_cert(f"system:node:{N2}", ("system:nodes",))


def forbidden(status: int, body: Any, message: str) -> None:
    assert status == 403, body
    assert body["reason"] == "Forbidden" and body["code"] == 403
    assert body["message"] == message


def no_relationship(kind: str, name: str, node: str, ns: str) -> str:
    return (f'{kind} "{name}" is forbidden: User "system:node:{node}" cannot get resource "{kind}" in API group "" '
            f"in the namespace \"{ns}\": no relationship found between node '{node}' and this object")


def pod(name: str, node: str = "", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}
    if node:
        body["spec"]["nodeName"] = node
    return body


def test_secret_follows_the_pod(cluster: Cluster, ns: str, n1: tuple[str, str], n2: tuple[str, str]) -> None:
    cluster.ok("create", "secret", "generic", "s", "--from-literal=k=v", "-n", ns)
    path = f"/api/v1/namespaces/{ns}/secrets/s"
    status, _, body = cluster.request("GET", path, user=n1)
    forbidden(status, body, no_relationship("secrets", "s", N1, ns))

    volumes = [{"name": "v", "secret": {"secretName": "s"}}]
    status, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", pod("p", N1, volumes=volumes))
    assert status == 201, body
    status, _, body = cluster.request("GET", path, user=n1)
    assert status == 200 and body["data"] == {"k": "dg=="}, body
    status, _, body = cluster.request("GET", path, user=n2)
    forbidden(status, body, no_relationship("secrets", "s", N2, ns))
    # the node reads only that one secret, never the list
    status, _, body = cluster.request("GET", f"/api/v1/namespaces/{ns}/secrets", user=n1)
    forbidden(status, body, f'secrets is forbidden: User "system:node:{N1}" cannot list resource "secrets" in API '
                            f'group "" in the namespace "{ns}": No Object name found')
    status, _, body = cluster.request("GET", f"/api/v1/namespaces/{ns}/secrets?fieldSelector=metadata.name%3Ds",
                                      user=n1)
    assert status == 200 and [i["metadata"]["name"] for i in body["items"]] == ["s"], body

    status, _, body = cluster.request("DELETE", f"/api/v1/namespaces/{ns}/pods/p")
    assert status == 200, body
    status, _, body = cluster.request("GET", path, user=n1)
    forbidden(status, body, no_relationship("secrets", "s", N1, ns))


def test_binding_a_pod_grants_its_configmap(cluster: Cluster, ns: str, n1: tuple[str, str]) -> None:
    cluster.ok("create", "configmap", "cfg", "--from-literal=a=b", "-n", ns)
    env_from = [{"configMapRef": {"name": "cfg"}}]
    spec_pod = pod("pending")
    spec_pod["spec"]["containers"][0]["envFrom"] = env_from
    status, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", spec_pod)
    assert status == 201, body
    path = f"/api/v1/namespaces/{ns}/configmaps/cfg"
    assert cluster.request("GET", path, user=n1)[0] == 403
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "pending"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": N1}}
    status, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods/pending/binding", binding)
    assert status == 201, body
    status, _, body = cluster.request("GET", path, user=n1)
    assert status == 200 and body["data"] == {"a": "b"}, body


def test_kubectl_as_a_node(cluster: Cluster, ns: str, n1: tuple[str, str]) -> None:
    cluster.ok("create", "secret", "generic", "kc", "--from-literal=k=v", "-n", ns)
    kubeconfig = cluster.kubeconfig_for(f"system:node:{N2}", ("system:nodes",))
    r = cluster.kubectl("get", "secret", "kc", "-n", ns, "-o", "name", kubeconfig=kubeconfig)
    assert r.code == 1
    assert r.stderr.strip() == f"Error from server (Forbidden): {no_relationship('secrets', 'kc', N2, ns)}"
    volumes = [{"name": "v", "secret": {"secretName": "kc"}}]
    assert cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", pod("kp", N2, volumes=volumes))[0] == 201
    assert cluster.ok("get", "secret", "kc", "-n", ns, "-o", "name", kubeconfig=kubeconfig).strip() == "secret/kc"
    # pods: its own by name or through the spec.nodeName selector; never the whole list
    assert cluster.ok("get", "pod", "kp", "-n", ns, "-o", "name", kubeconfig=kubeconfig).strip() == "pod/kp"
    out = cluster.ok("get", "pods", "-A", f"--field-selector=spec.nodeName={N2}", "-o", "name",
                     kubeconfig=kubeconfig)
    assert "pod/kp" in out.split()
    r = cluster.kubectl("get", "pods", "-n", ns, kubeconfig=kubeconfig)
    assert r.stderr.strip() == (
        f'Error from server (Forbidden): pods is forbidden: User "system:node:{N2}" cannot list resource "pods" in '
        f'API group "" in the namespace "{ns}": can only list/watch pods with spec.nodeName field selector')


def test_own_node_only(cluster: Cluster, n1: tuple[str, str]) -> None:
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": N1, "labels": {"kubernetes.io/hostname": N1}}}
    status, _, body = cluster.request("POST", "/api/v1/nodes", node, user=n1)
    assert status == 201, body
    status, _, body = cluster.request("POST", "/api/v1/nodes", {**node, "metadata": {"name": N2}}, user=n1)
    forbidden(status, body, f'nodes "{N2}" is forbidden: node "{N1}" is not allowed to modify node "{N2}"')

    merge = {"Content-Type": "application/merge-patch+json"}
    status, _, body = cluster.request("PATCH", f"/api/v1/nodes/{N1}", raw=b'{"metadata":{"labels":'
                                      b'{"kubernetes.io/arch":"amd64","rack":"r1"}}}', headers=merge, user=n1)
    assert status == 200 and body["metadata"]["labels"]["rack"] == "r1", body
    status, _, body = cluster.request("PATCH", f"/api/v1/nodes/{N1}", raw=b'{"metadata":{"labels":'
                                      b'{"node-role.kubernetes.io/control-plane":""}}}', headers=merge, user=n1)
    forbidden(status, body, f'nodes "{N1}" is forbidden: is not allowed to modify labels: '
                            'node-role.kubernetes.io/control-plane')
    status, _, body = cluster.request("PATCH", f"/api/v1/nodes/{N1}", raw=b'{"spec":{"taints":[{"key":"k",'
                                      b'"effect":"NoSchedule"}]}}', headers=merge, user=n1)
    forbidden(status, body, f'nodes "{N1}" is forbidden: node "{N1}" is not allowed to modify taints')
    status, _, body = cluster.request("PATCH", f"/api/v1/nodes/{N1}/status",
                                      raw=b'{"status":{"conditions":[{"type":"Ready","status":"True"}]}}',
                                      headers=merge, user=n1)
    assert status == 200, body

    # the administrator creates the other node; n1 can neither read nor change it
    assert cluster.request("POST", "/api/v1/nodes", {**node, "metadata": {"name": N2}})[0] == 201
    status, _, body = cluster.request("GET", f"/api/v1/nodes/{N2}", user=n1)
    forbidden(status, body, f'nodes "{N2}" is forbidden: User "system:node:{N1}" cannot get resource "nodes" in API '
                            f"group \"\" at the cluster scope: node '{N1}' cannot read '{N2}', only its own Node "
                            "object")
    status, _, body = cluster.request("PATCH", f"/api/v1/nodes/{N2}/status", raw=b'{"status":{}}', headers=merge,
                                      user=n1)
    forbidden(status, body, f'nodes "{N2}" is forbidden: node "{N1}" is not allowed to modify node "{N2}"')


def test_mirror_pods(cluster: Cluster, ns: str, n1: tuple[str, str], n2: tuple[str, str]) -> None:
    status, _, node = cluster.request("GET", f"/api/v1/nodes/{N1}")
    if status == 404:
        status, _, node = cluster.request("POST", "/api/v1/nodes", {"metadata": {"name": N1}})
    assert status in (200, 201), node
    pods = f"/api/v1/namespaces/{ns}/pods"

    status, _, body = cluster.request("POST", pods, pod("plain", N1), user=n1)
    forbidden(status, body, f'pods "plain" is forbidden: pod does not have "kubernetes.io/config.mirror" '
                            f'annotation, node "{N1}" can only create mirror pods')

    mirror = pod("static-web", N1)
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    mirror["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": N1,
                                              "uid": node["metadata"]["uid"], "controller": True}]
    with_secret = {**mirror, "metadata": {**mirror["metadata"], "name": "static-secret"},
                   "spec": {**mirror["spec"], "volumes": [{"name": "v", "secret": {"secretName": "x"}}]}}
    status, _, body = cluster.request("POST", pods, with_secret, user=n1)
    forbidden(status, body, f'pods "static-secret" is forbidden: node "{N1}" can not create pods that reference '
                            'secrets')
    elsewhere = {**mirror, "spec": {**mirror["spec"], "nodeName": N2}}
    status, _, body = cluster.request("POST", pods, elsewhere, user=n1)
    forbidden(status, body, f'pods "static-web" is forbidden: node "{N1}" can only create pods with spec.nodeName '
                            'set to itself')

    status, _, body = cluster.request("POST", pods, mirror, user=n1)
    assert status == 201, body
    assert cluster.request("GET", f"{pods}/static-web", user=n1)[0] == 200
    status, _, body = cluster.request("DELETE", f"{pods}/static-web", user=n2)
    forbidden(status, body, f'pods "static-web" is forbidden: node "{N2}" can only delete pods with spec.nodeName '
                            'set to itself')
    status, _, body = cluster.request("PATCH", f"{pods}/static-web/status", raw=b'{"status":{"phase":"Running"}}',
                                      headers={"Content-Type": "application/merge-patch+json"}, user=n1)
    assert status == 200 and body["status"]["phase"] == "Running", body
    assert cluster.request("DELETE", f"{pods}/static-web", user=n1)[0] == 200


def test_lease_and_rules_review(cluster: Cluster, n1: tuple[str, str]) -> None:
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": N1},
             "spec": {"holderIdentity": N1, "leaseDurationSeconds": 40}}
    status, _, body = cluster.request("POST", leases, lease, user=n1)
    assert status in (201, 409), body
    status, _, body = cluster.request("POST", leases, {**lease, "metadata": {"name": N2}}, user=n1)
    forbidden(status, body, f'leases.coordination.k8s.io "{N2}" is forbidden: can only access node lease with the '
                            'same name as the requesting node')
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
              "spec": {"namespace": "default"}}
    status, _, body = cluster.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", review,
                                      user=n1)
    assert status == 201, body
    assert body["status"]["incomplete"] is True
    assert body["status"]["evaluationError"] == "node authorizer does not support user rule resolution"
