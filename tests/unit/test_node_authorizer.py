"""The Node authorizer and its graph, against upstream's node_authorizer.go / graph.go rules."""
from __future__ import annotations

from typing import Any

import pytest

from kubegate.authn.user import UserInfo
from kubegate.authz import node_graph as g
from kubegate.authz.messages import forbidden_message
from kubegate.authz.node import NodeAuthorizer, node_identity
from kubegate.authz.types import Attributes, Decision

N1 = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
N2 = UserInfo("system:node:n2", groups=("system:nodes", "system:authenticated"))
NO_RELATIONSHIP = "no relationship found between node 'n1' and this object"


def pod(name: str, node: str = "n1", ns: str = "ns", uid: str = "u1", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "uid": uid},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}], **spec}}


FULL_SPEC: dict[str, Any] = {
    "serviceAccountName": "sa",
    "imagePullSecrets": [{"name": "pull"}],
    "initContainers": [{"name": "init", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-s",
                                                                                               "key": "k"}}}]}],
    "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "env-cm"}}, {"secretRef": {"name": "from-s"}}],
                    "env": [{"name": "B", "valueFrom": {"configMapKeyRef": {"name": "key-cm", "key": "k"}}}]}],
    "volumes": [
        {"name": "v1", "secret": {"secretName": "vol-s"}},
        {"name": "v2", "configMap": {"name": "vol-cm"}},
        {"name": "v3", "projected": {"sources": [{"secret": {"name": "proj-s"}}, {"configMap": {"name": "proj-cm"}}]}},
        {"name": "v4", "persistentVolumeClaim": {"claimName": "claim"}},
        {"name": "v5", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
        {"name": "v6", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-s"}}},
    ],
}


def attrs(user: UserInfo, verb: str, resource: str, name: str = "", namespace: str = "ns", group: str = "",
          subresource: str = "", field_selector: str = "") -> Attributes:
    return Attributes(user=user, verb=verb, namespace=namespace, api_group=group, api_version="v1",
                      resource=resource, subresource=subresource, name=name, resource_request=True,
                      field_selector=field_selector)


@pytest.fixture
def graph() -> g.Graph:
    graph = g.Graph()
    graph.pod_event("ADDED", pod("p1", **FULL_SPEC), None)
    return graph


@pytest.fixture
def authz(graph: g.Graph) -> NodeAuthorizer:
    return NodeAuthorizer(graph)


def decide(authz: NodeAuthorizer, a: Attributes) -> tuple[Decision, str]:
    r = authz.decide(a)
    return r.decision, r.reason


# -- identity --------------------------------------------------------------------------------

def test_identity_needs_the_prefix_and_the_group() -> None:
    assert node_identity(N1) == ("n1", True)
    assert node_identity(UserInfo("system:node:n1", groups=("system:authenticated",))) == ("", False)
    assert node_identity(UserInfo("n1", groups=("system:nodes",))) == ("", False)


def test_non_nodes_get_no_opinion_without_reason(authz: NodeAuthorizer) -> None:
    for user in (UserInfo("alice", groups=("system:nodes",)), UserInfo("system:node:n1")):
        assert decide(authz, attrs(user, "get", "secrets", "vol-s")) == (Decision.NO_OPINION, "")


def test_unknown_node(authz: NodeAuthorizer) -> None:
    user = UserInfo("system:node:", groups=("system:nodes",))
    assert decide(authz, attrs(user, "get", "secrets", "vol-s")) == (
        Decision.NO_OPINION, 'unknown node for user "system:node:"')


# -- the graph -------------------------------------------------------------------------------

@pytest.mark.parametrize("resource,name", [
    ("secrets", "pull"), ("secrets", "env-s"), ("secrets", "from-s"), ("secrets", "vol-s"), ("secrets", "proj-s"),
    ("secrets", "csi-s"), ("configmaps", "env-cm"), ("configmaps", "key-cm"), ("configmaps", "vol-cm"),
    ("configmaps", "proj-cm"), ("persistentvolumeclaims", "claim"), ("persistentvolumeclaims", "p1-v5"),
])
def test_objects_referenced_by_a_bound_pod_are_readable_by_its_node_only(
        authz: NodeAuthorizer, resource: str, name: str) -> None:
    assert decide(authz, attrs(N1, "get", resource, name)) == (Decision.ALLOW, "")
    assert decide(authz, attrs(N2, "get", resource, name)) == (
        Decision.NO_OPINION, "no relationship found between node 'n2' and this object")
    # the same name in another namespace is another object
    assert decide(authz, attrs(N1, "get", resource, name, namespace="other")) == (Decision.NO_OPINION,
                                                                                 NO_RELATIONSHIP)


def test_deleting_the_pod_removes_access_and_orphans(graph: g.Graph, authz: NodeAuthorizer) -> None:
    graph.pod_event("DELETED", pod("p1", **FULL_SPEC), None)
    assert decide(authz, attrs(N1, "get", "secrets", "vol-s")) == (Decision.NO_OPINION, NO_RELATIONSHIP)
    assert len(graph) == 0  # the secrets, configmaps, claims, account and the node all went with it


def test_a_shared_secret_stays_readable_by_the_other_node(graph: g.Graph, authz: NodeAuthorizer) -> None:
    graph.pod_event("ADDED", pod("p2", node="n2", uid="u2", volumes=[{"name": "v", "secret": {"secretName": "vol-s"}}]),
                    None)
    graph.pod_event("DELETED", pod("p1", **FULL_SPEC), None)
    assert decide(authz, attrs(N2, "get", "secrets", "vol-s"))[0] is Decision.ALLOW
    assert decide(authz, attrs(N1, "get", "secrets", "vol-s"))[0] is Decision.NO_OPINION
    assert (g.SECRET, "ns", "pull") not in graph


def test_pods_enter_the_graph_when_bound() -> None:
    graph = g.Graph()
    authz = NodeAuthorizer(graph)
    pending = pod("p", node="", volumes=[{"name": "v", "secret": {"secretName": "s"}}])
    graph.pod_event("ADDED", pending, None)
    assert len(graph) == 0
    bound = pod("p", node="n1", volumes=[{"name": "v", "secret": {"secretName": "s"}}])
    graph.pod_event("MODIFIED", bound, pending)
    assert decide(authz, attrs(N1, "get", "secrets", "s"))[0] is Decision.ALLOW
    # a status update of the same pod on the same node leaves the edges alone
    graph.pod_event("MODIFIED", {**bound, "status": {"phase": "Running"}}, bound)
    assert decide(authz, attrs(N1, "get", "secrets", "s"))[0] is Decision.ALLOW
    graph.pod_event("DELETED", None, bound)
    assert decide(authz, attrs(N1, "get", "secrets", "s"))[0] is Decision.NO_OPINION


def test_a_recreated_pod_replaces_its_edges() -> None:
    graph = g.Graph()
    authz = NodeAuthorizer(graph)
    first = pod("p", uid="a", volumes=[{"name": "v", "secret": {"secretName": "old"}}])
    graph.pod_event("ADDED", first, None)
    graph.pod_event("MODIFIED", pod("p", uid="b", volumes=[{"name": "v", "secret": {"secretName": "new"}}]), first)
    assert decide(authz, attrs(N1, "get", "secrets", "new"))[0] is Decision.ALLOW
    assert decide(authz, attrs(N1, "get", "secrets", "old"))[0] is Decision.NO_OPINION


def test_mirror_pods_grant_nothing_but_the_pod() -> None:
    graph = g.Graph()
    authz = NodeAuthorizer(graph)
    mirror = pod("m", **FULL_SPEC)
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    graph.add_pod(mirror)
    assert decide(authz, attrs(N1, "get", "pods", "m"))[0] is Decision.ALLOW
    assert decide(authz, attrs(N1, "get", "secrets", "vol-s"))[0] is Decision.NO_OPINION
    assert decide(authz, attrs(N1, "create", "serviceaccounts", "sa", subresource="token"))[0] is Decision.NO_OPINION


def test_persistent_volumes_through_their_claim(graph: g.Graph, authz: NodeAuthorizer) -> None:
    pv = {"metadata": {"name": "pv1"},
          "spec": {"claimRef": {"namespace": "ns", "name": "claim"},
                   "csi": {"driver": "d", "nodeStageSecretRef": {"name": "stage", "namespace": "sec"},
                           "controllerPublishSecretRef": {"name": "ctrl", "namespace": "sec"}}}}
    graph.pv_event("ADDED", pv, None)
    assert decide(authz, attrs(N1, "get", "persistentvolumes", "pv1", namespace="")) == (Decision.ALLOW, "")
    assert decide(authz, attrs(N2, "get", "persistentvolumes", "pv1", namespace=""))[0] is Decision.NO_OPINION
    assert decide(authz, attrs(N1, "get", "secrets", "stage", namespace="sec")) == (Decision.ALLOW, "")
    # controller secrets are not the kubelet's
    assert decide(authz, attrs(N1, "get", "secrets", "ctrl", namespace="sec"))[0] is Decision.NO_OPINION
    graph.pv_event("MODIFIED", {"metadata": {"name": "pv1"}, "spec": {}}, pv)  # released
    assert decide(authz, attrs(N1, "get", "persistentvolumes", "pv1", namespace=""))[0] is Decision.NO_OPINION
    assert decide(authz, attrs(N1, "get", "secrets", "stage", namespace="sec"))[0] is Decision.NO_OPINION
    graph.pv_event("ADDED", pv, None)
    graph.pv_event("DELETED", pv, None)
    assert decide(authz, attrs(N1, "get", "persistentvolumes", "pv1", namespace=""))[0] is Decision.NO_OPINION
    assert decide(authz, attrs(N1, "get", "persistentvolumeclaims", "claim"))[0] is Decision.ALLOW


def test_pv_secret_without_namespace_uses_the_claims() -> None:
    graph = g.Graph()
    graph.add_pod(pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]))
    graph.add_pv({"metadata": {"name": "pv"}, "spec": {"claimRef": {"namespace": "ns", "name": "c"},
                                                       "rbd": {"secretRef": {"name": "ceph"}}}})
    assert NodeAuthorizer(graph).decide(attrs(N1, "get", "secrets", "ceph")).allowed


# -- per-resource rules ----------------------------------------------------------------------

@pytest.mark.parametrize("a,want", [
    (attrs(N1, "list", "secrets"), "No Object name found"),
    (attrs(N1, "watch", "secrets", "vol-s"), ""),  # fieldSelector metadata.name=vol-s names it
    (attrs(N1, "create", "secrets"), "can only read resources of this type"),
    (attrs(N1, "get", "secrets", "vol-s", subresource="x"), "cannot read subresource"),
    (attrs(N1, "get", "configmaps", "vol-cm", namespace=""), "can only read namespaced object of this type"),
    (attrs(N1, "list", "persistentvolumeclaims", "claim"), "can only get individual resources of this type"),
    (attrs(N1, "get", "persistentvolumeclaims", "claim", subresource="status"), "can only get/update/patch this type"),
    (attrs(N1, "patch", "persistentvolumeclaims", "claim", subresource="status"), ""),
    (attrs(N1, "get", "serviceaccounts", "sa"), "can only create tokens for individual service accounts"),
    (attrs(N1, "create", "serviceaccounts", "sa"), "can only create token subresource of serviceaccount"),
    (attrs(N1, "create", "serviceaccounts", "sa", subresource="token"), ""),
    (attrs(N1, "create", "serviceaccounts", "other", subresource="token"), NO_RELATIONSHIP),
    (attrs(N1, "get", "pods", "p1"), ""),
    (attrs(N1, "get", "pods", "p1", namespace="other"), NO_RELATIONSHIP),
    (attrs(N1, "list", "pods", field_selector="spec.nodeName=n1"), ""),
    (attrs(N1, "watch", "pods", namespace="", field_selector="status.phase=Running,spec.nodeName==n1"), ""),
    (attrs(N1, "list", "pods", field_selector="spec.nodeName=n2"),
     "can only list/watch pods with spec.nodeName field selector"),
    (attrs(N1, "list", "pods", field_selector="spec.nodeName!=n1"),
     "can only list/watch pods with spec.nodeName field selector"),
    (attrs(N1, "list", "pods"), "can only list/watch pods with spec.nodeName field selector"),
    (attrs(N1, "list", "pods", "p1"), ""),
    (attrs(N1, "create", "pods"), ""),
    (attrs(N1, "delete", "pods", "anything"), ""),
    (attrs(N1, "update", "pods", "p1"), None),
    (attrs(N1, "patch", "pods", "x", subresource="status"), ""),
    (attrs(N1, "create", "pods", "x", subresource="eviction"), ""),
    (attrs(N1, "get", "pods", "p1", subresource="log"), None),
    (attrs(N1, "get", "nodes", "n1", namespace=""), ""),
    (attrs(N1, "watch", "nodes", "n1", namespace=""), ""),
    (attrs(N1, "list", "nodes", namespace=""), "node 'n1' cannot read all nodes, only its own Node object"),
    (attrs(N1, "get", "nodes", "n2", namespace=""), "node 'n1' cannot read 'n2', only its own Node object"),
    (attrs(N1, "update", "nodes", "n2", namespace=""), ""),  # NodeRestriction's job
    (attrs(N1, "patch", "nodes", "n1", namespace="", subresource="status"), ""),
    (attrs(N1, "delete", "nodes", "n1", namespace=""), None),
    (attrs(N1, "get", "leases", "n1", namespace="kube-node-lease", group="coordination.k8s.io"), ""),
    (attrs(N1, "create", "leases", namespace="kube-node-lease", group="coordination.k8s.io"), ""),
    (attrs(N1, "update", "leases", "n2", namespace="kube-node-lease", group="coordination.k8s.io"),
     "can only access node lease with the same name as the requesting node"),
    (attrs(N1, "get", "leases", "n1", namespace="kube-system", group="coordination.k8s.io"),
     'can only access leases in the "kube-node-lease" system namespace'),
    (attrs(N1, "list", "leases", namespace="kube-node-lease", group="coordination.k8s.io"),
     "can only get, create, update, patch, or delete a node lease"),
    # the static system:node rules
    (attrs(N1, "create", "events"), ""),
    (attrs(N1, "patch", "events", "e", group="events.k8s.io"), ""),
    (attrs(N1, "list", "services"), ""),
    (attrs(N1, "create", "certificatesigningrequests", namespace="", group="certificates.k8s.io"), ""),
    (attrs(N1, "create", "tokenreviews", namespace="", group="authentication.k8s.io"), ""),
    (attrs(N1, "get", "deployments", "d", group="apps"), None),
    (attrs(N1, "delete", "services", "s"), None),
])
def test_decisions(authz: NodeAuthorizer, a: Attributes, want: str | None) -> None:
    """`want` is the NoOpinion reason, "" for Allow, None for NoOpinion without a reason."""
    got = authz.decide(a)
    if want == "":
        assert got.decision is Decision.ALLOW, got
    else:
        assert got.decision is Decision.NO_OPINION and got.reason == (want or ""), got


def test_non_resource_requests_fall_to_the_static_rules() -> None:
    a = Attributes(user=N1, verb="get", path="/metrics")
    assert NodeAuthorizer(g.Graph()).decide(a).decision is Decision.NO_OPINION


def test_rules_for_is_incomplete_for_nodes_only(authz: NodeAuthorizer) -> None:
    rules = authz.rules_for(N1, "ns")
    assert rules.incomplete and rules.errors == ("node authorizer does not support user rule resolution",)
    assert not rules.rules
    other = authz.rules_for(UserInfo("alice"), "ns")
    assert not other.incomplete and not other.errors


def test_the_403_carries_the_reason(authz: NodeAuthorizer) -> None:
    a = attrs(N1, "get", "secrets", "s", namespace="ns")
    err = forbidden_message(a, authz.decide(a).reason)
    assert err.message == ('secrets "s" is forbidden: User "system:node:n1" cannot get resource "secrets" in API '
                           'group "" in the namespace "ns": no relationship found between node \'n1\' and this '
                           'object')
