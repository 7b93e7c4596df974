"""The Deployment controller's rollout state through the real server and kubectl: the progress
deadline (and `kubectl rollout status` failing on it), pause/resume conditions, proportional
scaling during a rollout, and rollout history/undo. Pods never become ready here (no kubelet), so a
rollout stalls where upstream's arithmetic leaves it; checks poll until the state appears."""
from __future__ import annotations

from typing import Any

import yaml

from tests.e2e.cluster import Cluster
from tests.e2e.test_controllers import eventually, get, items

REVISION = "deployment.kubernetes.io/revision"


def _apply(c: Cluster, ns: str, name: str, replicas: int, **spec: Any) -> None:
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "nginx"}]}}, **spec}}
    c.ok("apply", "-f", "-", input=yaml.safe_dump(doc))


def _deployment(c: Cluster, ns: str, name: str) -> dict[str, Any]:
    d = get(c, f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    assert d is not None
    return d


def _progressing(c: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    st = _deployment(c, ns, name).get("status") or {}
    return next((x for x in st.get("conditions") or () if x["type"] == "Progressing"), None)


def _sets(c: Cluster, ns: str, app: str) -> dict[str, dict[str, Any]]:
    """The app's ReplicaSets by revision."""
    return {rs["metadata"]["annotations"][REVISION]: rs
            for rs in items(c, f"/apis/apps/v1/namespaces/{ns}/replicasets?labelSelector=app={app}")}


def _sizes(c: Cluster, ns: str, app: str) -> dict[str, int]:
    return {rev: rs["spec"]["replicas"] for rev, rs in _sets(c, ns, app).items()}


def test_rollout_exceeds_its_progress_deadline(cluster: Cluster, ns: str) -> None:
    _apply(cluster, ns, "slow", 2, progressDeadlineSeconds=2)
    # No event follows the pods' creation: only the controller's requeue at the deadline gets here.
    cond = eventually(lambda: (p := _progressing(cluster, ns, "slow")) and p["reason"] == "ProgressDeadlineExceeded"
                      and p, "ProgressDeadlineExceeded")
    rs = next(iter(_sets(cluster, ns, "slow").values()))["metadata"]["name"]
    assert cond["status"] == "False"
    assert cond["message"] == f'ReplicaSet "{rs}" has timed out progressing.'
    st = _deployment(cluster, ns, "slow")["status"]
    available = next(x for x in st["conditions"] if x["type"] == "Available")
    assert (available["status"], available["reason"], available["message"]) == (
        "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    assert st["replicas"] == 2 and st["updatedReplicas"] == 2 and st["unavailableReplicas"] == 2
    r = cluster.kubectl("rollout", "status", "deployment/slow", "-n", ns, "--timeout=60s")
    assert r.code == 1, r
    assert r.stderr.strip().splitlines()[-1] == 'error: deployment "slow" exceeded its progress deadline'


def test_pause_and_resume_set_their_conditions(cluster: Cluster, ns: str) -> None:
    _apply(cluster, ns, "pz", 1)
    eventually(lambda: (p := _progressing(cluster, ns, "pz")) and p["reason"] == "ReplicaSetUpdated", "progressing")
    cluster.ok("rollout", "pause", "deployment/pz", "-n", ns)
    paused = eventually(lambda: (p := _progressing(cluster, ns, "pz")) and p["reason"] == "DeploymentPaused" and p,
                        "paused condition")
    assert (paused["status"], paused["message"]) == ("Unknown", "Deployment is paused")
    cluster.ok("rollout", "resume", "deployment/pz", "-n", ns)
    resumed = eventually(lambda: (p := _progressing(cluster, ns, "pz")) and p["reason"] == "DeploymentResumed"
                         and p, "resumed condition")
    assert (resumed["status"], resumed["message"]) == ("Unknown", "Deployment is resumed")

    # A template change while paused waits for the resume.
    cluster.ok("rollout", "pause", "deployment/pz", "-n", ns)
    cluster.ok("set", "image", "deployment/pz", "app=nginx:1.27", "-n", ns)
    d = eventually(lambda: (x := _deployment(cluster, ns, "pz"))["status"].get("observedGeneration")
                   == x["metadata"]["generation"] and x, "paused change observed")
    assert list(_sets(cluster, ns, "pz")) == ["1"]
    assert d["metadata"]["annotations"][REVISION] == "1"
    cluster.ok("rollout", "resume", "deployment/pz", "-n", ns)
    eventually(lambda: set(_sets(cluster, ns, "pz")) == {"1", "2"}, "rollout after resume")
    p = eventually(lambda: (p := _progressing(cluster, ns, "pz")) and p["reason"] in (
        "NewReplicaSetCreated", "ReplicaSetUpdated") and p, "progressing after resume")
    assert p["status"] == "True"


def test_scaling_during_a_rollout_is_proportional(cluster: Cluster, ns: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    _apply(cluster, ns, "prop", 10, strategy=strategy)
    eventually(lambda: _sizes(cluster, ns, "prop") == {"1": 10}, "first ReplicaSet")
    cluster.ok("set", "image", "deployment/prop", "app=nginx:1.27", "-n", ns)
    # 13 pods at most (10 + surge 3), 8 kept (10 - 2): the new set gets 5, the old keeps 8.
    eventually(lambda: _sizes(cluster, ns, "prop") == {"1": 8, "2": 5}, "rollout stalled at 8/5")
    cluster.ok("scale", "deployment/prop", "--replicas=20", "-n", ns)
    # 23 allowed now: 8*23/13 = 14.15 -> 14 and 5*23/13 = 8.85 -> 9.
    eventually(lambda: _sizes(cluster, ns, "prop") == {"1": 14, "2": 9}, "proportional scale up")
    for rs in _sets(cluster, ns, "prop").values():
        ann = rs["metadata"]["annotations"]
        assert (ann["deployment.kubernetes.io/desired-replicas"], ann["deployment.kubernetes.io/max-replicas"]) \
            == ("20", "23")
    sets = _sets(cluster, ns, "prop")
    cluster.ok("scale", "deployment/prop", "--replicas=5", "-n", ns)
    # 8 allowed: 14*8/23 = 4.87 -> 5 and 9*8/23 = 3.13 -> 3; then the rollout goes on from 5/3
    # (8 pods, 3 kept) to 3/5.
    eventually(lambda: _sizes(cluster, ns, "prop") == {"1": 3, "2": 5}, "proportional scale down, rollout on")
    old, new = sets["1"]["metadata"]["name"], sets["2"]["metadata"]["name"]
    messages = [e["message"] for e in items(cluster, f"/api/v1/namespaces/{ns}/events")
                if e["reason"] == "ScalingReplicaSet" and e["involvedObject"]["name"] == "prop"]
    for step in (f"Scaled up replica set {new} from 0 to 3", f"Scaled down replica set {old} from 10 to 8",
                 f"Scaled up replica set {old} from 8 to 14", f"Scaled up replica set {new} from 5 to 9",
                 f"Scaled down replica set {old} from 14 to 5", f"Scaled down replica set {new} from 9 to 3"):
        assert step in messages, messages


def test_rollout_history_and_undo(cluster: Cluster, ns: str) -> None:
    _apply(cluster, ns, "hist", 1)
    eventually(lambda: set(_sets(cluster, ns, "hist")) == {"1"}, "revision 1")
    cluster.ok("set", "image", "deployment/hist", "app=nginx:1.27", "-n", ns)
    eventually(lambda: set(_sets(cluster, ns, "hist")) == {"1", "2"}, "revision 2")
    # The Deployment's annotations are copied to its current (new) ReplicaSet only.
    cluster.ok("annotate", "deployment/hist", "kubernetes.io/change-cause=to 1.27", "-n", ns)
    eventually(lambda: _sets(cluster, ns, "hist")["2"]["metadata"]["annotations"].get("kubernetes.io/change-cause"),
               "change-cause copied")
    out = cluster.ok("rollout", "history", "deployment/hist", "-n", ns)
    rows = [line.split(None, 1) for line in out.splitlines()[2:] if line.strip()]
    assert rows == [["1", "<none>"], ["2", "to 1.27"]], out
    assert "nginx:1.27" in cluster.ok("rollout", "history", "deployment/hist", "--revision=2", "-n", ns)

    cluster.ok("rollout", "undo", "deployment/hist", "-n", ns)
    sets = eventually(lambda: set(s := _sets(cluster, ns, "hist")) == {"2", "3"} and s, "undo to revision 3")
    first = sets["3"]
    assert first["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    eventually(lambda: _deployment(cluster, ns, "hist")["metadata"]["annotations"][REVISION] == "3",
               "deployment at revision 3")
    d = _deployment(cluster, ns, "hist")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"

    cluster.ok("rollout", "undo", "deployment/hist", "--to-revision=2", "-n", ns)
    eventually(lambda: set(_sets(cluster, ns, "hist")) == {"3", "4"}, "undo to revision 4")
    assert _deployment(cluster, ns, "hist")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_kubectl_scale_passes_admission_with_the_scale_object(cluster: Cluster, ns: str) -> None:
    name = f"scale-cap-{ns[-20:]}"
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": name},
              "spec": {"failurePolicy": "Fail",
                       "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                               "operations": ["UPDATE"],
                                                               "resources": ["deployments/scale"]}]},
                       "validations": [{"expression": "object.apiVersion == 'autoscaling/v1' && "
                                                      "object.kind == 'Scale' && object.spec.replicas <= 5",
                                        "message": "at most 5 replicas"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": name},
               "spec": {"policyName": name, "validationActions": ["Deny"]}}
    cluster.ok("apply", "-f", "-", input=yaml.safe_dump_all([policy, binding]))
    try:
        _apply(cluster, ns, "capped", 1)

        def scale_to(n: int) -> Any:
            return cluster.kubectl("scale", "deployment/capped", f"--replicas={n}", "-n", ns)
        # kubectl scale PATCHes deployments/scale: the policy sees an autoscaling/v1 Scale. It may
        # take a moment to be picked up; a scale within it always passes.
        eventually(lambda: scale_to(10).code != 0, "scale past the policy refused")
        r = scale_to(10)
        assert f"ValidatingAdmissionPolicy '{name}' with binding '{name}' denied request: at most 5 replicas" \
            in r.stderr, r
        assert scale_to(3).code == 0
        assert _deployment(cluster, ns, "capped")["spec"]["replicas"] == 3
    finally:
        cluster.ok("delete", "validatingadmissionpolicybinding", name)
        cluster.ok("delete", "validatingadmissionpolicy", name)
