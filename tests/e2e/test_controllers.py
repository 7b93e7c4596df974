"""The in-process controllers through the real server: default ServiceAccount, kube-root-ca.crt,
token Secrets, Deployment -> ReplicaSet -> Pod with rollout, and the garbage collector's three
propagation policies. Controllers are asynchronous, so checks poll until the state appears."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any, Callable

import jwt

from tests.e2e.cluster import Cluster, golden

WAIT = 30.0


def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll until `check` returns something truthy (the controllers work in the background)."""
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)


def get(c: Cluster, path: str) -> dict[str, Any] | None:
    status, _, body = c.request("GET", path)
    return body if status == 200 else None


def items(c: Cluster, path: str) -> list[dict[str, Any]]:
    status, _, body = c.request("GET", path)
    assert status == 200, body
    return body["items"]


def test_default_serviceaccount_in_new_namespace(cluster: Cluster, ns: str) -> None:
    sa = eventually(lambda: get(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts/default"), "default SA")
    want = golden("serviceaccounts/default-sa-new-namespace.json")["response"]["body"]
    assert sorted(sa["metadata"]) == sorted(k for k in want["metadata"] if k != "managedFields")
    assert set(sa) == set(want)
    cluster.ok("delete", "serviceaccount", "default", "-n", ns)
    eventually(lambda: (s := get(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts/default"))
               and s["metadata"]["uid"] != sa["metadata"]["uid"], "default SA re-created")


def test_kube_root_ca_published_and_restored(cluster: Cluster, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"
    cm = eventually(lambda: get(cluster, path), "kube-root-ca.crt")
    want = golden("serviceaccounts/kube-root-ca-configmap-default.json")["response"]["body"]
    assert cm["metadata"]["annotations"] == want["metadata"]["annotations"]
    assert cm["data"] == {"ca.crt": Path(cluster.ca).read_text()}
    cluster.ok("patch", "configmap", "kube-root-ca.crt", "-n", ns, "-p", '{"data":{"ca.crt":"tampered"}}')
    eventually(lambda: (get(cluster, path) or {}).get("data") == cm["data"], "bundle restored")
    cluster.ok("delete", "configmap", "kube-root-ca.crt", "-n", ns)
    eventually(lambda: get(cluster, path), "kube-root-ca.crt re-created")
    assert get(cluster, "/api/v1/namespaces/default/configmaps/kube-root-ca.crt") is not None


def test_token_secret_filled_then_removed_with_its_serviceaccount(cluster: Cluster, ns: str) -> None:
    cluster.ok("create", "serviceaccount", "robot", "-n", ns)
    sa = get(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts/robot")
    assert sa is not None
    status, _, created = cluster.request("POST", f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}})
    assert status == 201, created
    path = f"/api/v1/namespaces/{ns}/secrets/robot-token"
    secret = eventually(lambda: (s := get(cluster, path)) and "token" in (s.get("data") or {}) and s, "token filled")
    assert sorted(secret["data"]) == ["ca.crt", "namespace", "token"]
    assert base64.b64decode(secret["data"]["namespace"]).decode() == ns
    assert base64.b64decode(secret["data"]["ca.crt"]).decode() == Path(cluster.ca).read_text()
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == sa["metadata"]["uid"]
    token = base64.b64decode(secret["data"]["token"]).decode()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "kubernetes/serviceaccount"
    assert claims["sub"] == f"system:serviceaccount:{ns}:robot"
    assert claims["kubernetes.io/serviceaccount/secret.name"] == "robot-token"
    # the token authenticates as the service account
    status, _, review = cluster.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                                        headers={"Authorization": f"Bearer {token}"}, user=None)
    assert status == 201, review
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:robot"
    # none is created automatically for the service account itself
    assert [s["metadata"]["name"] for s in items(cluster, f"/api/v1/namespaces/{ns}/secrets")] == ["robot-token"]
    cluster.ok("delete", "serviceaccount", "robot", "-n", ns)
    eventually(lambda: get(cluster, path) is None, "token secret deleted with its SA")


def _rs(c: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    return items(c, f"/apis/apps/v1/namespaces/{ns}/replicasets?labelSelector={selector}")


def _pods(c: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    return items(c, f"/api/v1/namespaces/{ns}/pods?labelSelector={selector}")


def test_create_deployment_yields_replicaset_and_pods(cluster: Cluster, ns: str) -> None:
    cluster.ok("create", "deployment", "nginx", "--image=nginx", "--replicas=2", "-n", ns)
    d = get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/nginx")
    assert d is not None
    rs = eventually(lambda: _rs(cluster, ns, "app=nginx"), "replicaset")[0]
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"nginx-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "nginx", "pod-template-hash": h}
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx",
                                                  "uid": d["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]
    pods = eventually(lambda: len(p := _pods(cluster, ns, "app=nginx")) == 2 and p, "two pods")
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"nginx-{h}-")
        assert len(pod["metadata"]["name"]) == len(f"nginx-{h}-") + 5
        assert pod["metadata"]["labels"] == {"app": "nginx", "pod-template-hash": h}
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert pod["status"]["phase"] == "Pending"
    out = cluster.ok("get", "pods", "-n", ns, "-l", "app=nginx", "-o", "name")
    assert sorted(out.split()) == sorted(f"pod/{p['metadata']['name']}" for p in pods)

    def settled() -> dict[str, Any] | None:
        cur = get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/nginx")
        st = (cur or {}).get("status") or {}
        return cur if st.get("replicas") == 2 and len(st.get("conditions") or ()) == 2 else None
    d = eventually(settled, "deployment status")
    st = d["status"]
    assert st["updatedReplicas"] == 2 and st["unavailableReplicas"] == 2 and "availableReplicas" not in st
    conds = {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}
    assert conds == {"Available": ("False", "MinimumReplicasUnavailable"),
                     "Progressing": ("True", "ReplicaSetUpdated")}
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    rs_now = get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets/{rs['metadata']['name']}")
    assert rs_now is not None and rs_now["status"]["replicas"] == 2

    # scaling down deletes pods; a deleted pod is replaced
    cluster.ok("scale", "deployment", "nginx", "--replicas=1", "-n", ns)
    eventually(lambda: len(_pods(cluster, ns, "app=nginx")) == 1, "scaled to one pod")
    victim = _pods(cluster, ns, "app=nginx")[0]["metadata"]["name"]
    cluster.ok("delete", "pod", victim, "-n", ns)
    eventually(lambda: [p["metadata"]["name"] for p in _pods(cluster, ns, "app=nginx")] not in ([], [victim]),
               "pod replaced")


def test_rollout_of_template_change(cluster: Cluster, ns: str) -> None:
    # 4 replicas: maxSurge 1, maxUnavailable 1; pods never become available, so upstream's rolling
    # update stops at new=2, old=3 (5 pods, the surge limit, with 3 >= 4-1 kept).
    cluster.ok("create", "deployment", "web", "--image=nginx", "--replicas=4", "-n", ns)
    eventually(lambda: len(_pods(cluster, ns, "app=web")) == 4, "four pods")
    cluster.ok("set", "image", "deployment/web", "nginx=nginx:1.27", "-n", ns)

    def rolled() -> dict[str, int] | None:
        sets = {r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r["spec"]["replicas"]
                for r in _rs(cluster, ns, "app=web")}
        return sets if sets == {"1": 3, "2": 2} else None
    eventually(rolled, "rollout to new=2 old=3")
    eventually(lambda: len(_pods(cluster, ns, "app=web")) == 5, "five pods")
    new = next(r for r in _rs(cluster, ns, "app=web")
               if r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    d = get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert d is not None and d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    # rolling back re-uses the first ReplicaSet under the next revision
    cluster.ok("set", "image", "deployment/web", "nginx=nginx", "-n", ns)
    eventually(lambda: {r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                        for r in _rs(cluster, ns, "app=web")} == {"2", "3"}, "rollback to revision 3")


def _deployment_with_pods(c: Cluster, ns: str, name: str) -> tuple[str, list[str]]:
    c.ok("create", "deployment", name, "--image=nginx", "-n", ns)
    rs = eventually(lambda: _rs(c, ns, f"app={name}"), "replicaset")[0]["metadata"]["name"]
    pods = eventually(lambda: _pods(c, ns, f"app={name}"), "pod")
    return rs, [p["metadata"]["name"] for p in pods]


def test_delete_background_removes_dependents(cluster: Cluster, ns: str) -> None:
    rs, pods = _deployment_with_pods(cluster, ns, "bg")
    cluster.ok("delete", "deployment", "bg", "-n", ns, "--cascade=background")
    eventually(lambda: not _rs(cluster, ns, "app=bg") and not _pods(cluster, ns, "app=bg"), "all gone")


def test_delete_foreground_waits_for_dependents(cluster: Cluster, ns: str) -> None:
    rs, pods = _deployment_with_pods(cluster, ns, "fg")
    status, _, body = cluster.request("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/fg",
                                      {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"})
    assert status == 200, body
    assert body["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert body["metadata"]["deletionTimestamp"]
    eventually(lambda: get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/fg") is None, "owner gone last")
    assert not _rs(cluster, ns, "app=fg") and not _pods(cluster, ns, "app=fg")


def test_delete_orphan_keeps_dependents(cluster: Cluster, ns: str) -> None:
    rs, pods = _deployment_with_pods(cluster, ns, "or")
    cluster.ok("delete", "deployment", "or", "-n", ns, "--cascade=orphan")
    eventually(lambda: get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/or") is None, "owner gone")
    left = eventually(lambda: (r := get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets/{rs}"))
                      and "ownerReferences" not in r["metadata"] and r, "replicaset orphaned")
    assert left["metadata"].get("finalizers") is None
    assert [p["metadata"]["name"] for p in _pods(cluster, ns, "app=or")] == pods


def test_dangling_owner_reference_is_collected(cluster: Cluster, ns: str) -> None:
    cluster.ok("create", "configmap", "owner", "-n", ns)
    owner = get(cluster, f"/api/v1/namespaces/{ns}/configmaps/owner")
    assert owner is not None
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    for name, refs in (("dep", [ref]),
                       ("shared", [ref, {"apiVersion": "v1", "kind": "ConfigMap", "name": "kube-root-ca.crt",
                                         "uid": eventually(lambda: get(cluster, f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"), "ca")["metadata"]["uid"]}])):
        status, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                          {"apiVersion": "v1", "kind": "ConfigMap",
                                           "metadata": {"name": name, "ownerReferences": refs}})
        assert status == 201, body
    cluster.ok("delete", "configmap", "owner", "-n", ns)
    eventually(lambda: get(cluster, f"/api/v1/namespaces/{ns}/configmaps/dep") is None, "dependent collected")
    shared = eventually(lambda: (s := get(cluster, f"/api/v1/namespaces/{ns}/configmaps/shared"))
                        and len(s["metadata"]["ownerReferences"]) == 1 and s, "dangling ref dropped")
    assert shared["metadata"]["ownerReferences"][0]["name"] == "kube-root-ca.crt"


def test_controllers_act_through_rbac(cluster: Cluster, ns: str) -> None:
    """Removing the default binding of the replicaset controller stops it from creating pods."""
    binding = json.loads(cluster.ok("get", "clusterrolebinding", "system:controller:replicaset-controller", "-o", "json"))
    cluster.ok("annotate", "clusterrolebinding", "system:controller:replicaset-controller",
               "rbac.authorization.kubernetes.io/autoupdate=false", "--overwrite")
    cluster.ok("delete", "clusterrolebinding", "system:controller:replicaset-controller")
    try:
        cluster.ok("create", "deployment", "blocked", "--image=nginx", "-n", ns)
        eventually(lambda: _rs(cluster, ns, "app=blocked"), "replicaset still created by the deployment controller")
        time.sleep(2.0)
        assert _pods(cluster, ns, "app=blocked") == []
    finally:
        for k in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
            binding["metadata"].pop(k, None)
        cluster.ok("create", "-f", "-", input=json.dumps(binding))
    eventually(lambda: _pods(cluster, ns, "app=blocked"), "pods once the binding is back")
