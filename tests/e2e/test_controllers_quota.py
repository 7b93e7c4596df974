"""The ResourceQuota controller, the namespace controller's deletion conditions, and controller
writes passing admission (ServiceAccount volume, Pod Security refusals as FailedCreate events and
the ReplicaFailure condition), through the real server and kubectl. Controllers are asynchronous,
so checks poll until the state appears."""
from __future__ import annotations

import json
from typing import Any

from tests.e2e.cluster import Cluster, golden
from tests.e2e.test_controllers import eventually, get, items


def _quota_status(c: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    q = get(c, f"/api/v1/namespaces/{ns}/resourcequotas/{name}")
    return (q or {}).get("status") or None


def test_quota_status_kept_current_and_creates_beyond_it_refused(cluster: Cluster, ns: str) -> None:
    eventually(lambda: get(cluster, f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"), "kube-root-ca.crt")
    cluster.ok("create", "quota", "tiny", "--hard=pods=1,configmaps=2,requests.cpu=1", "-n", ns)
    # The controller's first count (resourcequota-status.json): kube-root-ca.crt is one configmap.
    want = golden("admission/resourcequota-status.json")["response"]["body"]["status"]
    assert eventually(lambda: _quota_status(cluster, ns, "tiny"), "quota status") == want

    cluster.ok("create", "configmap", "one", "-n", ns)
    r = cluster.kubectl("create", "configmap", "two", "-n", ns)
    assert r.code != 0
    assert ('configmaps "two" is forbidden: exceeded quota: tiny, requested: configmaps=1, used: configmaps=2, '
            'limited: configmaps=2') in r.stderr
    g = golden("admission/resourcequota-exceeded-configmaps.json")
    code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", g["request"]["body"])
    assert (code, body) == (403, json.loads(json.dumps(g["response"]["body"]).replace("golden-quota", ns)))

    # A deletion gives the usage back: the controller recounts from what is stored.
    cluster.ok("delete", "configmap", "one", "-n", ns)
    eventually(lambda: (_quota_status(cluster, ns, "tiny") or {}).get("used", {}).get("configmaps") == "1",
               "configmap usage given back")
    cluster.ok("create", "configmap", "two", "-n", ns)

    # A spec change is recounted into status.hard, usage zero-filled for the new resource.
    cluster.ok("patch", "quota", "tiny", "-n", ns, "--type=merge", "-p", '{"spec":{"hard":{"secrets":"5"}}}')
    st = eventually(lambda: (s := _quota_status(cluster, ns, "tiny")) and "secrets" in s["hard"] and s,
                    "secrets tracked")
    assert st["used"] == {"configmaps": "2", "pods": "0", "requests.cpu": "0", "secrets": "0"}


def test_quota_counts_replicaset_pods_and_refuses_the_one_too_many(cluster: Cluster, ns: str) -> None:
    cluster.ok("create", "quota", "two-pods", "--hard=pods=2,count/replicasets.apps=5", "-n", ns)
    eventually(lambda: _quota_status(cluster, ns, "two-pods"), "quota status")
    cluster.ok("create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", ns)

    def failed() -> dict[str, Any] | None:
        for rs in items(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets"):
            for c in (rs.get("status") or {}).get("conditions") or ():
                if c["type"] == "ReplicaFailure" and "exceeded quota" in c["message"]:
                    return rs
        return None
    rs = eventually(failed, "ReplicaFailure condition")
    cond = next(c for c in rs["status"]["conditions"] if c["type"] == "ReplicaFailure")
    assert (cond["status"], cond["reason"]) == ("True", "FailedCreate")
    assert cond["message"].startswith(f'pods "{rs["metadata"]["name"]}-')
    assert cond["message"].endswith('is forbidden: exceeded quota: two-pods, requested: pods=1, used: pods=2, '
                                    'limited: pods=2')
    st = eventually(lambda: (s := _quota_status(cluster, ns, "two-pods")) and s["used"]["pods"] == "2" and s,
                    "two pods counted")
    assert st["used"]["count/replicasets.apps"] == "1"
    assert len(items(cluster, f"/api/v1/namespaces/{ns}/pods")) == 2


def test_replicaset_pods_pass_admission(cluster: Cluster, ns: str) -> None:
    """A ReplicaSet's pods get the ServiceAccount plugin's kube-api-access volume; in an
    enforce=restricted namespace Pod Security refuses them: FailedCreate events with upstream's
    message and the ReplicaFailure condition."""
    cluster.ok("create", "deployment", "ok", "--image=nginx", "-n", ns)
    pod = eventually(lambda: items(cluster, f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dok"), "pod")[0]
    vols = [v for v in pod["spec"].get("volumes") or () if v["name"].startswith("kube-api-access-")]
    assert len(vols) == 1 and vols[0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3607
    assert pod["spec"]["serviceAccountName"] == "default"

    cluster.ok("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    g = golden("podsecurity/enforce-restricted-deployment.json")
    code, _, body = cluster.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", g["request"]["body"])
    assert code == 201, body
    want = golden("podsecurity/enforce-restricted-replicaset-events.json")["response"]["body"]["items"][0]
    path = f"/api/v1/namespaces/{ns}/events?fieldSelector=reason%3DFailedCreate"
    events = eventually(lambda: items(cluster, path), "FailedCreate event")
    ev = events[0]
    rs_name = ev["involvedObject"]["name"]
    assert rs_name.startswith("violator-")
    prefix = 'Error creating: pods "'
    assert ev["message"].startswith(prefix + rs_name + "-")
    pod_name = ev["message"][len(prefix):].split('"')[0]
    assert ev["message"] == want["message"].replace("violator-6f96f464df-8tjmj", pod_name)
    assert ev["metadata"]["name"].startswith(rs_name + ".")
    for k in ("reason", "source", "count", "type", "eventTime", "reportingComponent", "reportingInstance"):
        assert ev[k] == want[k], k
    assert {k: ev["involvedObject"][k] for k in ("kind", "apiVersion", "namespace")} == {
        "kind": "ReplicaSet", "apiVersion": "apps/v1", "namespace": ns}
    rs = get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets/{rs_name}")
    assert rs is not None
    conds = (rs.get("status") or {}).get("conditions") or eventually(
        lambda: ((get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets/{rs_name}") or {}).get("status") or {})
        .get("conditions"), "ReplicaFailure")
    assert [(c["type"], c["status"], c["reason"]) for c in conds] == [("ReplicaFailure", "True", "FailedCreate")]
    assert "violates PodSecurity \"restricted:latest\"" in conds[0]["message"]
    out = cluster.ok("get", "events", "-n", ns, "--field-selector=reason=FailedCreate")
    assert "violates PodSecurity" in out
    assert items(cluster, f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dviolator") == []


def test_terminating_namespace_conditions(cluster: Cluster) -> None:
    ns = "t-nsdel-conditions"
    cluster.ok("create", "namespace", ns)
    cluster.ok("create", "configmap", "plain", "-n", ns)
    held = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "held", "finalizers": ["golden.example.com/hold"]}}
    cluster.ok("create", "-f", "-", "-n", ns, input=json.dumps(held))
    cluster.ok("create", "deployment", "web", "--image=nginx", "-n", ns)
    eventually(lambda: items(cluster, f"/api/v1/namespaces/{ns}/pods"), "deployment pod")
    code, _, body = cluster.request("DELETE", f"/api/v1/namespaces/{ns}")
    assert code == 200 and body["status"]["phase"] == "Terminating"

    want = golden("namespaces/get-terminating-namespace.json")["response"]["body"]["status"]

    def settled() -> dict[str, Any] | None:
        st = (get(cluster, f"/api/v1/namespaces/{ns}") or {}).get("status") or {}
        conds = st.get("conditions") or []
        return st if len(conds) == 5 and conds[3]["message"] == want["conditions"][3]["message"] else None
    st = eventually(settled, "deletion conditions")
    strip = lambda conds: [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conds]  # noqa: E731
    assert st["phase"] == "Terminating"
    assert strip(st["conditions"]) == strip(want["conditions"])
    assert [c["type"] for c in st["conditions"]] == [c["type"] for c in want["conditions"]]
    assert items(cluster, f"/api/v1/namespaces/{ns}/configmaps") == [
        get(cluster, f"/api/v1/namespaces/{ns}/configmaps/held")]

    # Releasing the finalizer lets the namespace go.
    cluster.ok("patch", "configmap", "held", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    eventually(lambda: cluster.request("GET", f"/api/v1/namespaces/{ns}")[0] == 404, "namespace gone")
