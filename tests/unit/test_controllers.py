"""Pure decision code of the in-process controllers: rollout arithmetic, naming, status, token
filling, garbage-collector edits, root CA publishing, and the controller identities."""
from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest

from kubegate.admission.chain import AdmissionChain
from kubegate.api import errors
from kubegate.authn.user import UserInfo
from kubegate.authz.rbac import RBACAuthorizer
from kubegate.authz.bootstrap import default_policy
from kubegate.controllers import deployment as dep
from kubegate.controllers import deployment_util as du
from kubegate.controllers.client import CONTROLLER_MANAGER, ControllerClient, controller_user
from kubegate.controllers.garbage_collector import without_finalizer, without_owners
from kubegate.controllers.replicaset import deletion_order, owner_ref, pod_from_template, replicaset_status
from kubegate.controllers.root_ca import DESCRIPTION, published
from kubegate.controllers.token import filled, references


def _deploy(replicas: int, surge: Any = "25%", unavailable: Any = "25%", strategy: str = "RollingUpdate") -> dict[str, Any]:
    s: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        s["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"spec": {"replicas": replicas, "strategy": s}}


def _rs(name: str, replicas: int, available: int = 0, created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"replicas": replicas},
            "status": {"availableReplicas": available}}


@pytest.mark.parametrize("replicas,surge,unavailable,want", [
    (4, "25%", "25%", (1, 1)),     # surge rounds up, unavailable down
    (1, "25%", "25%", (1, 0)),
    (10, "0%", "0%", (0, 1)),      # both zero: one may be unavailable
    (3, 2, 5, (2, 3)),             # unavailable capped at replicas
])
def test_fenceposts(replicas: int, surge: Any, unavailable: Any, want: tuple[int, int]) -> None:
    assert du.fenceposts(_deploy(replicas, surge, unavailable)) == want


def test_rolling_update_with_pods_never_available_stops_where_upstream_does() -> None:
    d = _deploy(4)
    old, new = _rs("old", 4), _rs("new", 0)
    assert du.new_rs_replicas(d, [old, new], new) == 1           # 4 + 1 surge
    new = _rs("new", 1)
    assert du.old_scale_down(d, [old, new], [old], new) == {"old": 3}
    old = _rs("old", 3)
    assert du.new_rs_replicas(d, [old, new], new) == 2
    new = _rs("new", 2)
    assert du.old_scale_down(d, [old, new], [old], new) == {}    # 5 pods, 3 kept: stuck, as upstream
    assert du.new_rs_replicas(d, [old, new], new) == 2


def test_single_replica_rollout_keeps_the_old_pod() -> None:
    d = _deploy(1)
    old, new = _rs("old", 1), _rs("new", 0)
    assert du.new_rs_replicas(d, [old, new], new) == 1
    assert du.old_scale_down(d, [old, _rs("new", 1)], [old], _rs("new", 1)) == {}


def test_template_hash_is_stable_safe_and_changes_with_collisions() -> None:
    t = {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
    h = dep.template_hash(t)
    assert h == dep.template_hash({"spec": t["spec"], "metadata": t["metadata"]})
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    assert dep.template_hash(t, 1) != h


def test_set_condition_keeps_unchanged_and_moves_changed_to_end() -> None:
    st: dict[str, Any] = {}
    du.set_condition(st, "Progressing", "True", "NewReplicaSetCreated", "m", "t1")
    du.set_condition(st, "Available", "False", "MinimumReplicasUnavailable", "m", "t1")
    du.set_condition(st, "Available", "False", "MinimumReplicasUnavailable", "m", "t2")
    assert st["conditions"][1]["lastUpdateTime"] == "t1"
    du.set_condition(st, "Progressing", "True", "ReplicaSetUpdated", "m2", "t3")
    assert [c["type"] for c in st["conditions"]] == ["Available", "Progressing"]
    assert st["conditions"][1]["lastTransitionTime"] == "t1" and st["conditions"][1]["lastUpdateTime"] == "t3"


def test_pod_from_template_and_status() -> None:
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-abc", "uid": "u1", "generation": 3},
          "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                                               "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    pod = pod_from_template(rs)
    assert pod["metadata"] == {"generateName": "web-abc-", "labels": {"app": "web"}, "annotations": {"a": "b"},
                               "ownerReferences": [owner_ref(rs)]}
    assert owner_ref(rs) == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u1",
                             "controller": True, "blockOwnerDeletion": True}
    assert replicaset_status(rs, [dict(pod, metadata={"labels": {"app": "web"}})]) == {
        "replicas": 1, "fullyLabeledReplicas": 1, "observedGeneration": 3}
    assert replicaset_status(rs, []) == {"replicas": 0, "observedGeneration": 3}


def test_deletion_order_prefers_unscheduled_then_newest() -> None:
    def pod(name: str, created: str, node: str = "") -> dict[str, Any]:
        return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"nodeName": node} if node else {},
                "status": {"phase": "Pending"}}
    pods = [pod("a", "2026-01-01T00:00:01Z"), pod("b", "2026-01-01T00:00:03Z", "n1"), pod("c", "2026-01-01T00:00:02Z")]
    assert [p["metadata"]["name"] for p in deletion_order(pods)] == ["c", "a", "b"]


def test_token_secret_filled_once_and_references() -> None:
    sa = {"metadata": {"name": "robot", "uid": "sa-uid"}}
    secret = {"metadata": {"name": "robot-token", "namespace": "ns",
                           "annotations": {"kubernetes.io/service-account.name": "robot"}},
              "type": "kubernetes.io/service-account-token"}
    assert references(secret, sa)
    signed: list[dict[str, Any]] = []

    def sign(claims: dict[str, Any]) -> str:
        signed.append(claims)
        return jwt.encode(claims, "k" * 32, algorithm="HS256")
    out = filled(secret, sa, "PEM", sign)
    assert out is not None and sorted(out["data"]) == ["ca.crt", "namespace", "token"]
    assert out["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == "sa-uid"
    assert signed[0]["kubernetes.io/serviceaccount/secret.name"] == "robot-token"
    assert filled(out, sa, "PEM", sign) is None and len(signed) == 1
    assert not references(out, {"metadata": {"name": "robot", "uid": "other"}})


def test_garbage_collector_edits() -> None:
    obj = {"metadata": {"ownerReferences": [{"uid": "a"}, {"uid": "b"}], "finalizers": ["orphan", "x"]}}
    assert without_owners(obj, {"a"})["metadata"]["ownerReferences"] == [{"uid": "b"}]
    assert "ownerReferences" not in without_owners(obj, {"b"})["metadata"]
    assert without_finalizer(obj, "orphan")["metadata"]["finalizers"] == ["x"]
    assert "finalizers" not in without_finalizer(obj, "x")["metadata"]


def test_root_ca_published_keeps_other_annotations() -> None:
    fresh = published(None, "PEM")
    assert fresh is not None and fresh["data"] == {"ca.crt": "PEM"}
    assert published(fresh, "PEM") is None
    changed = published({"metadata": {"name": "kube-root-ca.crt", "annotations": {"x": "y"}}, "data": {"ca.crt": "old"}}, "PEM")
    assert changed is not None and changed["metadata"]["annotations"] == {"x": "y", "kubernetes.io/description": DESCRIPTION}


def _rbac() -> RBACAuthorizer:
    kinds = {"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding", "roles": "Role",
             "rolebindings": "RoleBinding"}
    rbac = RBACAuthorizer()
    for plural, obj in default_policy():
        rbac.upsert(kinds[plural], obj)
    return rbac


@pytest.mark.parametrize("user,verb,plural,sub,allowed", [
    (controller_user("replicaset-controller"), "create", "pods", "", True),
    (controller_user("replicaset-controller"), "update", "pods", "", False),   # adoption patches
    (controller_user("replicaset-controller"), "patch", "pods", "", True),
    (controller_user("replicaset-controller"), "update", "replicasets", "status", True),
    (controller_user("deployment-controller"), "create", "replicasets", "", True),
    (controller_user("deployment-controller"), "create", "pods", "", False),
    (controller_user("service-account-controller"), "create", "serviceaccounts", "", True),
    (controller_user("root-ca-cert-publisher"), "update", "configmaps", "", True),
    (controller_user("generic-garbage-collector"), "patch", "deployments", "", True),
    (CONTROLLER_MANAGER, "update", "secrets", "", True),
    (CONTROLLER_MANAGER, "list", "pods", "", True),
    (UserInfo("system:serviceaccount:kube-system:nobody"), "create", "pods", "", False),
])
def test_default_policy_grants_what_each_controller_does(user: UserInfo, verb: str, plural: str, sub: str,
                                                         allowed: bool) -> None:
    from kubegate.api.resources import RESOURCES

    class Reg:
        def __init__(self, r: Any) -> None:
            self.resource = r
    regs: Any = {r.plural: Reg(r) for r in RESOURCES if r.persisted and r.group in ("", "apps")}
    client = ControllerClient(user, _rbac(), regs, AdmissionChain([]))

    async def check() -> bool:
        try:
            await client.authorize(verb, plural, "ns", "x", sub)
        except errors.StatusError as e:
            assert e.code == 403
            return False
        return True
    assert asyncio.run(check()) is allowed


def test_namespace_conditions_match_the_golden_and_flip_to_ok() -> None:
    import json

    from kubegate.controllers.namespace import failing_conditions, updated_conditions
    from tests.fixtures import GOLDENS
    g = json.loads((GOLDENS / "namespaces" / "get-terminating-namespace.json").read_text())
    want = g["response"]["body"]["status"]["conditions"]
    failing = failing_conditions({"configmaps.": 1}, {"golden.example.com/hold": 1}, [])
    conds = updated_conditions([], failing, "2026-11-23T11:17:42Z")
    assert conds == want
    later = updated_conditions(conds, failing_conditions({}, {}, []), "2026-11-23T11:18:00Z")
    assert [(c["type"], c["status"], c["reason"], c["message"], c["lastTransitionTime"]) for c in later][3:] == [
        ("NamespaceContentRemaining", "False", "ContentRemoved", "All content successfully removed",
         "2026-11-23T11:18:00Z"),
        ("NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
         "All content-preserving finalizers finished", "2026-11-23T11:18:00Z")]
    assert later[:3] == conds[:3]  # unchanged conditions keep their transition time
    failed = failing_conditions({"pods.": 2}, {}, ["unexpected items still remain in namespace: x for gvr: "
                                                   "/v1, Resource=pods"])
    assert failed["NamespaceDeletionContentFailure"] == (
        "ContentDeletionFailed", "Failed to delete all resource types, 1 remaining: unexpected items still remain "
                                 "in namespace: x for gvr: /v1, Resource=pods")


def test_quota_usage_counts_what_the_quota_names() -> None:
    from kubegate.admission.resource_quota import Evaluator
    from kubegate.controllers.resource_quota import calculate_usage, needs_update, quota_status
    q = {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "4", "configmaps": "2", "requests.cpu": "1",
                                                     "limits.memory": "2Gi", "count/deployments.apps": "3"}}}

    def pod(cpu: str, mem: str, phase: str = "Pending") -> dict[str, Any]:
        return {"metadata": {"name": "p"}, "status": {"phase": phase},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu},
                                                                     "limits": {"memory": mem}}}]}}
    resources = [(Evaluator("", "pods"), [pod("100m", "128Mi"), pod("250m", "128Mi"), pod("1", "1Gi", "Succeeded")]),
                 (Evaluator("", "configmaps"), [{"metadata": {"name": "kube-root-ca.crt"}}]),
                 (Evaluator("", "secrets"), [{"metadata": {"name": "s"}}]),
                 (Evaluator("apps", "deployments"), [])]
    used = calculate_usage(q, resources)
    assert used == {"configmaps": "1", "count/deployments.apps": "0", "limits.memory": "256Mi", "pods": "2",
                    "requests.cpu": "350m"}
    status = quota_status(q, used)
    assert status["hard"] == q["spec"]["hard"] and status["used"] == used
    assert needs_update(q, status)
    assert not needs_update(dict(q, status={"hard": dict(status["hard"]), "used": dict(used, pods="2.0")}), status)


def test_replicaset_failure_condition_added_once_and_removed() -> None:
    rs = {"metadata": {"name": "r", "generation": 1}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}
    st = replicaset_status(rs, [], ("FailedCreate", 'pods "r-x" is forbidden: no'), "T1")
    assert st["conditions"] == [{"type": "ReplicaFailure", "status": "True", "lastTransitionTime": "T1",
                                 "reason": "FailedCreate", "message": 'pods "r-x" is forbidden: no'}]
    again = replicaset_status(dict(rs, status=st), [], ("FailedCreate", 'pods "r-y" is forbidden: no'), "T2")
    assert again == st  # an existing failure condition is left as it is, as upstream
    assert "conditions" not in replicaset_status(dict(rs, status=st), [], None, "T3")
