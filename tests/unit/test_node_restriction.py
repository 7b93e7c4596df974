"""NodeRestriction admission, against upstream's noderestriction/admission.go rules and messages."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kubegate.admission.node_restriction import NodeRestriction, forbidden_labels
from kubegate.api.errors import StatusError
from kubegate.api.resources import lookup
from kubegate.authn.user import UserInfo

N1 = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
PVCS = lookup("", "v1", "persistentvolumeclaims")
SAS = lookup("", "v1", "serviceaccounts")
LEASES = lookup("coordination.k8s.io", "v1", "leases")
SECRETS = lookup("", "v1", "secrets")

PODS_BY_NAME = {("ns", "mine"): {"metadata": {"name": "mine", "namespace": "ns", "uid": "pu1"},
                                 "spec": {"nodeName": "n1"}},
                ("ns", "theirs"): {"metadata": {"name": "theirs", "namespace": "ns", "uid": "pu2"},
                                   "spec": {"nodeName": "n2"}}}
NODE_OBJ = {"metadata": {"name": "n1", "uid": "nu1", "labels": {"kubernetes.io/hostname": "n1"}},
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}


@pytest.fixture
def nr() -> NodeRestriction:
    return NodeRestriction(lambda ns, name: PODS_BY_NAME.get((ns, name)),
                           lambda name: NODE_OBJ if name == "n1" else None)


def refused(fn: Any, *args: Any, **kw: Any) -> StatusError:
    with pytest.raises(StatusError) as e:
        fn(*args, **kw)
    assert e.value.code == 403 and e.value.reason == "Forbidden"
    return e.value


def mirror_pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "static-web-n1", "namespace": "ns",
                         "annotations": {"kubernetes.io/config.mirror": "hash"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "nu1",
                                              "controller": True}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}], **spec}}


# -- who is restricted -----------------------------------------------------------------------

def test_other_users_are_not_restricted(nr: NodeRestriction) -> None:
    nr.admit("update", NODES, {"metadata": {"name": "n2"}}, {"metadata": {"name": "n2"}}, None, UserInfo("alice"))
    nr.admit("update", NODES, {"metadata": {"name": "n2"}}, {"metadata": {"name": "n2"}}, None,
             UserInfo("system:node:n1"))  # not in system:nodes: not a node


def test_a_node_without_a_name(nr: NodeRestriction) -> None:
    user = UserInfo("system:node:", groups=("system:nodes",))
    err = refused(nr.admit, "create", SECRETS, {"metadata": {"name": "s"}}, None, "ns", user)
    assert err.message == 'secrets "s" is forbidden: could not determine node from user "system:node:"'


def test_unrelated_resources_pass(nr: NodeRestriction) -> None:
    nr.admit("create", SECRETS, {"metadata": {"name": "s"}}, None, "ns", N1)


# -- nodes -----------------------------------------------------------------------------------

def test_only_its_own_node(nr: NodeRestriction) -> None:
    err = refused(nr.admit, "update", NODES, {"metadata": {"name": "n2"}}, {"metadata": {"name": "n2"}}, None, N1)
    assert err.message == 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
    err = refused(nr.admit, "delete", NODES, None, {"metadata": {"name": "n2"}}, None, N1)
    assert err.message == 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
    nr.admit("delete", NODES, None, {"metadata": {"name": "n1"}}, None, N1)


def test_node_create_labels(nr: NodeRestriction) -> None:
    ok = {"metadata": {"name": "n1", "labels": {
        "kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "m",
        "kubelet.kubernetes.io/x": "1", "a.node.kubernetes.io/y": "2", "example.com/free": "z", "plain": "p"}}}
    nr.admit("create", NODES, ok, None, None, N1)
    bad = {"metadata": {"name": "n1", "labels": {
        "node-restriction.kubernetes.io/a": "1", "x.node-restriction.kubernetes.io/b": "1",
        "node-role.kubernetes.io/master": "", "foo.k8s.io/bar": "1", "k8s.io/baz": "1", "example.com/ok": "1"}}}
    err = refused(nr.admit, "create", NODES, bad, None, None, N1)
    assert err.message == (
        'nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: foo.k8s.io/bar, '
        'k8s.io/baz, node-restriction.kubernetes.io/a, node-role.kubernetes.io/master, '
        'x.node-restriction.kubernetes.io/b')


def test_node_create_config_source(nr: NodeRestriction) -> None:
    obj = {"metadata": {"name": "n1"}, "spec": {"configSource": {"configMap": {"name": "c"}}}}
    err = refused(nr.admit, "create", NODES, obj, None, None, N1)
    assert err.message == 'nodes "n1" is forbidden: node "n1" is not allowed to create pods with a non-nil configSource'


def test_node_update(nr: NodeRestriction) -> None:
    old = copy.deepcopy(NODE_OBJ)
    same = copy.deepcopy(NODE_OBJ)
    same["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    nr.admit("update", NODES, same, old, None, N1, subresource="status")

    untainted = copy.deepcopy(NODE_OBJ)
    untainted["spec"]["taints"] = []
    err = refused(nr.admit, "update", NODES, untainted, old, None, N1)
    assert err.message == 'nodes "n1" is forbidden: node "n1" is not allowed to modify taints'

    owned = copy.deepcopy(NODE_OBJ)
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Namespace", "name": "x", "uid": "u"}]
    err = refused(nr.admit, "update", NODES, owned, old, None, N1)
    assert err.message == 'nodes "n1" is forbidden: node "n1" is not allowed to modify ownerReferences'

    relabelled = copy.deepcopy(NODE_OBJ)
    relabelled["metadata"]["labels"] = {"node-role.kubernetes.io/control-plane": "", "team": "a"}
    err = refused(nr.admit, "update", NODES, relabelled, old, None, N1, subresource="status")
    # removing kubernetes.io/hostname is allowed (a kubelet label); upstream's text has no node name here
    assert err.message == 'nodes "n1" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane'

    sourced = copy.deepcopy(NODE_OBJ)
    sourced["spec"]["configSource"] = {"configMap": {"name": "c"}}
    err = refused(nr.admit, "update", NODES, sourced, old, None, N1)
    assert err.message == ('nodes "n1" is forbidden: node "n1" is not allowed to update configSource to a new '
                           'non-nil configSource')


def test_forbidden_labels_counts_removals_and_changes() -> None:
    assert forbidden_labels({"k8s.io/a": "2"}, {"k8s.io/a": "1", "kubernetes.io/b": "x"}) == ["k8s.io/a",
                                                                                              "kubernetes.io/b"]
    assert forbidden_labels({"k8s.io/a": "1"}, {"k8s.io/a": "1"}) == []


# -- pods ------------------------------------------------------------------------------------

def test_mirror_pod_create(nr: NodeRestriction) -> None:
    nr.admit("create", PODS, mirror_pod(), None, "ns", N1)


@pytest.mark.parametrize("change,message", [
    (lambda p: p["metadata"].pop("annotations"),
     'pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods'),
    (lambda p: p["spec"].update(nodeName="n2"), 'node "n1" can only create pods with spec.nodeName set to itself'),
    (lambda p: p["metadata"].pop("ownerReferences"),
     'node "n1" can only create pods with an owner reference set to itself'),
    (lambda p: p["metadata"]["ownerReferences"].append({"apiVersion": "v1", "kind": "Node", "name": "n1"}),
     'node "n1" can only create pods with a single owner reference set to itself'),
    (lambda p: p["metadata"]["ownerReferences"][0].update(name="n2"),
     'node "n1" can only create pods with an owner reference set to itself'),
    (lambda p: p["metadata"]["ownerReferences"][0].update(controller=False),
     'node "n1" can only create pods with a controller owner reference set to itself'),
    (lambda p: p["metadata"]["ownerReferences"][0].update(blockOwnerDeletion=True),
     'node "n1" must not set blockOwnerDeletion on an owner reference'),
    (lambda p: p["metadata"]["ownerReferences"][0].update(uid="stale"),
     "node n1 UID mismatch: expected stale got nu1"),
    (lambda p: p["spec"].update(serviceAccountName="default"),
     'node "n1" can not create pods that reference a service account'),
    (lambda p: p["spec"].update(serviceAccount="default"),
     'node "n1" can not create pods that reference a service account'),
    (lambda p: p["spec"].update(imagePullSecrets=[{"name": "s"}]),
     'node "n1" can not create pods that reference secrets'),
    (lambda p: p["spec"]["containers"][0].update(envFrom=[{"configMapRef": {"name": "c"}}]),
     'node "n1" can not create pods that reference configmaps'),
    (lambda p: p["spec"].update(volumes=[{"name": "v", "projected": {"sources": [
        {"clusterTrustBundle": {"name": "b", "path": "b"}}]}}]),
     'node "n1" can not create pods that reference clustertrustbundles'),
    (lambda p: p["spec"].update(volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]),
     'node "n1" can not create pods that reference persistentvolumeclaims'),
])
def test_mirror_pod_create_refusals(nr: NodeRestriction, change: Any, message: str) -> None:
    p = mirror_pod()
    change(p)
    err = refused(nr.admit, "create", PODS, p, None, "ns", N1)
    assert err.message == f'pods "static-web-n1" is forbidden: {message}'


def test_mirror_pod_for_a_node_not_registered() -> None:
    nr = NodeRestriction(lambda ns, name: None, lambda name: None)
    with pytest.raises(StatusError) as e:
        nr.admit("create", PODS, mirror_pod(), None, "ns", N1)
    assert e.value.code == 404 and e.value.message == 'nodes "n1" not found'


def test_generate_name_in_the_message(nr: NodeRestriction) -> None:
    p = {"metadata": {"generateName": "web-", "namespace": "ns"}, "spec": {"nodeName": "n1"}}
    err = refused(nr.admit, "create", PODS, p, None, "ns", N1)
    assert err.message.startswith('pods "web-" is forbidden: pod does not have')


def test_pod_delete_and_update(nr: NodeRestriction) -> None:
    nr.admit("delete", PODS, None, PODS_BY_NAME[("ns", "mine")], "ns", N1)
    err = refused(nr.admit, "delete", PODS, None, PODS_BY_NAME[("ns", "theirs")], "ns", N1)
    assert err.message == 'pods "theirs" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself'
    mine = PODS_BY_NAME[("ns", "mine")]
    err = refused(nr.admit, "update", PODS, mine, mine, "ns", N1)
    assert err.message == ('pods "mine" is forbidden: unexpected operation "UPDATE", node "n1" can only create and '
                           'delete mirror pods')


def test_pod_status(nr: NodeRestriction) -> None:
    mine = PODS_BY_NAME[("ns", "mine")]
    running = {**mine, "status": {"phase": "Running"}}
    nr.admit("update", PODS, running, mine, "ns", N1, subresource="status")
    theirs = PODS_BY_NAME[("ns", "theirs")]
    err = refused(nr.admit, "update", PODS, theirs, theirs, "ns", N1, subresource="status")
    assert err.message == ('pods "theirs" is forbidden: node "n1" can only update pod status for pods with '
                           'spec.nodeName set to itself')
    labelled = copy.deepcopy(running)
    labelled["metadata"]["labels"] = {"app": "x"}
    err = refused(nr.admit, "update", PODS, labelled, mine, "ns", N1, subresource="status")
    assert err.message == 'pods "mine" is forbidden: node "n1" cannot update labels through pod status'
    claimed = copy.deepcopy(running)
    claimed["status"]["resourceClaimStatuses"] = [{"name": "gpu", "resourceClaimName": "mine-gpu"}]
    err = refused(nr.admit, "update", PODS, claimed, mine, "ns", N1, subresource="status")
    assert err.message == 'pods "mine" is forbidden: node "n1" cannot update resource claim statues'
    err = refused(nr.admit, "update", PODS, mine, mine, "ns", N1, subresource="binding")
    assert err.message == ('pods "mine" is forbidden: unexpected pod subresource "binding", only \'status\' and '
                           '\'eviction\' are allowed')


def test_eviction(nr: NodeRestriction) -> None:
    eviction = {"metadata": {"name": "mine", "namespace": "ns"}}
    nr.admit("create", PODS, eviction, None, "ns", N1, subresource="eviction", name="mine")
    err = refused(nr.admit, "create", PODS, {"metadata": {}}, None, "ns", N1, subresource="eviction", name="theirs")
    assert err.message == 'pods "theirs" is forbidden: node n1 can only evict pods with spec.nodeName set to itself'
    with pytest.raises(StatusError) as e:
        nr.admit("create", PODS, {"metadata": {}}, None, "ns", N1, subresource="eviction", name="gone")
    assert e.value.code == 404


# -- claims, tokens, leases ------------------------------------------------------------------

def test_pvc_status(nr: NodeRestriction) -> None:
    old = {"metadata": {"name": "c", "namespace": "ns", "resourceVersion": "5"},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                    "volumeMode": "Filesystem"},
           "status": {"phase": "Bound"}}
    new = copy.deepcopy(old)
    del new["metadata"]["resourceVersion"]
    del new["spec"]["volumeMode"]  # defaulted again, as upstream's decoder would
    new["status"].update(capacity={"storage": "2Gi"}, conditions=[{"type": "Resizing", "status": "True"}])
    nr.admit("update", PVCS, new, old, "ns", N1, subresource="status")
    new["status"]["phase"] = "Lost"
    new["metadata"]["labels"] = {"x": "y"}
    err = refused(nr.admit, "update", PVCS, new, old, "ns", N1, subresource="status")
    assert err.message == ('persistentvolumeclaims "c" is forbidden: node "n1" is not allowed to update fields other '
                           'than status.quantity and status.conditions: changed metadata.labels, status.phase')
    err = refused(nr.admit, "update", PVCS, old, old, "ns", N1)
    assert err.message == 'persistentvolumeclaims "c" is forbidden: may only update PVC status'


def token_request(**ref: Any) -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": ["api"], "boundObjectRef": ref or None}}


def test_token_requests(nr: NodeRestriction) -> None:
    def admit(tr: dict[str, Any]) -> None:
        nr.admit("create", SAS, tr, None, "ns", N1, subresource="token", name="default")

    admit(token_request(apiVersion="v1", kind="Pod", name="mine", uid="pu1"))
    for tr, message in [
        (token_request(), "node requested token not bound to a pod"),
        (token_request(apiVersion="v1", kind="Secret", name="s", uid="x"), "node requested token not bound to a pod"),
        (token_request(apiVersion="v1", kind="Pod", name="mine"), "node requested token with a pod binding without a uid"),
        (token_request(apiVersion="v1", kind="Pod", name="mine", uid="old"),
         "the UID in the bound object reference (old) does not match the UID in record. The object might have been "
         "deleted and then recreated"),
        (token_request(apiVersion="v1", kind="Pod", name="theirs", uid="pu2"),
         "node requested token bound to a pod scheduled on a different node"),
    ]:
        err = refused(admit, tr)
        assert err.message == f'serviceaccounts "default" is forbidden: {message}'
    # other service-account writes are the authorizer's business
    nr.admit("update", SAS, {"metadata": {"name": "default"}}, {"metadata": {"name": "default"}}, "ns", N1)


def test_leases(nr: NodeRestriction) -> None:
    nr.admit("create", LEASES, {"metadata": {"name": "n1"}}, None, "kube-node-lease", N1)
    nr.admit("update", LEASES, {"metadata": {"name": "n1"}}, {"metadata": {"name": "n1"}}, "kube-node-lease", N1)
    err = refused(nr.admit, "create", LEASES, {"metadata": {"name": "n2"}}, None, "kube-node-lease", N1)
    assert err.message == ('leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same '
                           'name as the requesting node')
    err = refused(nr.admit, "delete", LEASES, None, {"metadata": {"name": "n1"}}, "kube-system", N1)
    assert err.message == ('leases.coordination.k8s.io "n1" is forbidden: can only access leases in the '
                           '"kube-node-lease" system namespace')
