"""Server-side Tables against the captured upstream goldens (ages aside, which are relative)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kubegate.api import resources as R
from kubegate.api.errors import StatusError
from kubegate.api.resources import Resource
from kubegate.api.tables import human_duration, partial_object_metadata_list, to_table

from tests.fixtures import GOLDENS as _ALL_GOLDENS

GOLDENS = _ALL_GOLDENS / "tables"
NOW = datetime(2026, 11, 23, 11, 18, 32, tzinfo=timezone.utc)
CREATED = "2026-11-23T11:18:29Z"  # three seconds before NOW


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDENS / f"{name}.json").read_text())["response"]["body"]


def res(group: str, plural: str) -> Resource:
    r = R.lookup(group, "v1", plural)
    assert r is not None
    return r


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "golden-tables", "creationTimestamp": CREATED, **extra}


def cells(resource: Resource, objects: list[dict[str, Any]]) -> list[list[Any]]:
    return [r["cells"] for r in to_table(resource, objects, list_meta={}, now=NOW)["rows"]]


def golden_cells(name: str, skip: tuple[int, ...] = ()) -> list[list[Any]]:
    return [[c for i, c in enumerate(r["cells"]) if i not in skip] for r in golden(name)["rows"]]


def drop(rows: list[list[Any]], skip: tuple[int, ...]) -> list[list[Any]]:
    return [[c for i, c in enumerate(r) if i not in skip] for r in rows]


@pytest.mark.parametrize("d,want", [
    (timedelta(seconds=-5), "<invalid>"), (timedelta(seconds=-1), "0s"), (timedelta(0), "0s"),
    (timedelta(seconds=5), "5s"), (timedelta(seconds=119), "119s"), (timedelta(seconds=150), "2m30s"),
    (timedelta(minutes=5), "5m"), (timedelta(minutes=16), "16m"), (timedelta(hours=3), "3h"),
    (timedelta(hours=3, minutes=20), "3h20m"), (timedelta(hours=24), "24h"), (timedelta(days=2), "2d"),
    (timedelta(days=3, hours=4), "3d4h"), (timedelta(days=30), "30d"), (timedelta(days=365 * 3), "3y"),
    (timedelta(days=365 * 2 + 10), "2y10d"), (timedelta(days=365 * 9), "9y"),
])
def test_human_duration(d: timedelta, want: str) -> None:
    assert human_duration(d) == want


@pytest.mark.parametrize("name,group,plural", [
    ("certificatesigningrequests", "certificates.k8s.io", "certificatesigningrequests"),
    ("clusterrolebindings", "rbac.authorization.k8s.io", "clusterrolebindings"),
    ("clusterroles", "rbac.authorization.k8s.io", "clusterroles"),
    ("configmaps", "", "configmaps"), ("deployments", "apps", "deployments"), ("events", "", "events"),
    ("limitranges", "", "limitranges"), ("namespaces", "", "namespaces"),
    ("networkpolicies", "networking.k8s.io", "networkpolicies"), ("nodes", "", "nodes"), ("pods", "", "pods"),
    ("replicasets", "apps", "replicasets"), ("resourcequotas", "", "resourcequotas"),
    ("rolebindings", "rbac.authorization.k8s.io", "rolebindings"), ("roles", "rbac.authorization.k8s.io", "roles"),
    ("secrets", "", "secrets"), ("serviceaccounts", "", "serviceaccounts"),
])
def test_column_definitions_match_upstream(name: str, group: str, plural: str) -> None:
    table = to_table(res(group, plural), [], list_meta={"resourceVersion": "1709"}, now=NOW)
    assert table["columnDefinitions"] == golden(name)["columnDefinitions"]
    assert table["metadata"] == {"resourceVersion": "1709"}


def full_pods() -> list[dict[str, Any]]:
    return [r["object"] for r in golden("pods-include-object-full")["rows"]]


def test_pods_table_matches_golden() -> None:
    pods = res("", "pods")
    table = to_table(pods, full_pods(), list_meta={"resourceVersion": "1709"}, now=NOW)
    want = golden("pods")
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == want["metadata"]
    assert [r["cells"] for r in table["rows"]] == [r["cells"] for r in golden("pods-include-object-none")["rows"]]
    # default includeObject=Metadata: rows carry PartialObjectMetadata
    assert [r["object"] for r in table["rows"]] == [r["object"] for r in want["rows"]]


def test_include_object_modes_and_v1beta1() -> None:
    pods = res("", "pods")
    full = to_table(pods, full_pods(), list_meta={"resourceVersion": "1709"}, include_object="Object", now=NOW)
    assert [r["object"] for r in full["rows"]] == full_pods()
    none = to_table(pods, full_pods(), list_meta={"resourceVersion": "1709"}, include_object="None", now=NOW)
    assert [r["object"] for r in none["rows"]] == [None, None, None]
    beta = to_table(pods, full_pods(), list_meta={"resourceVersion": "1709"}, api_version="meta.k8s.io/v1beta1",
                    now=NOW)
    want = golden("pods-table-v1beta1")
    assert beta["apiVersion"] == want["apiVersion"] == "meta.k8s.io/v1beta1"
    assert [r["object"] for r in beta["rows"]] == [r["object"] for r in want["rows"]]
    with pytest.raises(StatusError) as e:
        to_table(pods, [], list_meta={}, include_object="Everything")
    assert e.value.code == 400 and e.value.message == 'unrecognized includeObject value: "Everything"'


def test_single_pod_table() -> None:
    pod = full_pods()[2]
    table = to_table(res("", "pods"), [pod], list_meta={"resourceVersion": pod["metadata"]["resourceVersion"]},
                     now=NOW)
    assert table == golden("pod-single")


def test_pod_status_reasons() -> None:
    base = {"metadata": meta("p"), "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    running = {**base, "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}],
                                  "conditions": [{"type": "Ready", "status": "False"}],
                                  "containerStatuses": [
                                      {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}},
                                       "lastState": {"terminated": {"finishedAt": "2026-11-23T11:13:32Z"}}},
                                      {"name": "b", "ready": False, "restartCount": 0,
                                       "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    row = cells(res("", "pods"), [running])[0]
    assert row[:4] == ["p", "1/2", "CrashLoopBackOff", "2 (5m ago)"]
    assert row[5] == "10.0.0.5"
    deleting = {**base, "metadata": meta("p", deletionTimestamp=CREATED), "status": {"phase": "Running"}}
    assert cells(res("", "pods"), [deleting])[0][2] == "Terminating"
    init = {**base, "spec": {**base["spec"], "initContainers": [{"name": "i"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}]}}
    assert cells(res("", "pods"), [init])[0][2] == "Init:0/1"


def test_deployments_and_replicasets() -> None:
    template = {"spec": {"containers": [{"name": "api", "image": "registry.k8s.io/pause:3.10"},
                                        {"name": "sidecar", "image": "registry.k8s.io/busybox:1.36"}]}}
    dep = {"metadata": meta("api"), "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                                             "template": template},
           "status": {"replicas": 2, "updatedReplicas": 2, "unavailableReplicas": 2}}
    assert drop(cells(res("apps", "deployments"), [dep]), (4,)) == golden_cells("deployments", (4,))
    rs = {"metadata": meta("api-5d8d7b894c"),
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api", "pod-template-hash": "5d8d7b894c"}},
                   "template": template},
          "status": {"replicas": 2, "fullyLabeledReplicas": 2}}
    assert drop(cells(res("apps", "replicasets"), [rs]), (4,)) == golden_cells("replicasets", (4,))


def test_secrets_configmaps_serviceaccounts_namespaces() -> None:
    secret = {"metadata": meta("db"), "type": "Opaque", "data": {"user": "YQ==", "pass": "Yg=="}}
    assert cells(res("", "secrets"), [secret]) == golden_cells("secrets")
    cms = [{"metadata": meta("kube-root-ca.crt"), "data": {"ca.crt": "x"}},
           {"metadata": meta("settings"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}}]
    assert cells(res("", "configmaps"), cms) == golden_cells("configmaps")
    sas = [{"metadata": meta("builder")}, {"metadata": meta("default")}]
    assert cells(res("", "serviceaccounts"), sas) == golden_cells("serviceaccounts")
    ns = {"metadata": {"name": "golden-tables", "creationTimestamp": CREATED}, "status": {"phase": "Active"}}
    assert cells(res("", "namespaces"), [ns]) == golden_cells("namespaces")


def test_rbac_bindings() -> None:
    rb = {"metadata": meta("reader-binding"), "roleRef": {"kind": "Role", "name": "reader"},
          "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "developers"},
                       {"kind": "ServiceAccount", "name": "builder", "namespace": "golden-tables"}]}
    assert cells(res("rbac.authorization.k8s.io", "rolebindings"), [rb]) == golden_cells("rolebindings")
    crbs = [{"metadata": {"name": "cluster-admin", "creationTimestamp": "2026-11-23T11:02:20Z"},
             "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
             "subjects": [{"kind": "Group", "name": "system:masters"}]},
            {"metadata": {"name": "system:basic-user", "creationTimestamp": "2026-11-23T11:02:20Z"},
             "roleRef": {"kind": "ClusterRole", "name": "system:basic-user"},
             "subjects": [{"kind": "Group", "name": "system:authenticated"}]},
            {"metadata": {"name": "system:controller:attachdetach-controller",
                          "creationTimestamp": "2026-11-23T11:02:20Z"},
             "roleRef": {"kind": "ClusterRole", "name": "system:controller:attachdetach-controller"},
             "subjects": [{"kind": "ServiceAccount", "name": "attachdetach-controller", "namespace": "kube-system"}]}]
    got = cells(res("rbac.authorization.k8s.io", "clusterrolebindings"), crbs)
    assert got == golden_cells("clusterrolebindings")  # created 16m12s before NOW -> "16m"


def test_default_table_for_kinds_without_printer() -> None:
    role = {"metadata": {"name": "reader", "namespace": "golden-tables", "creationTimestamp": CREATED}}
    want = golden("roles")
    table = to_table(res("rbac.authorization.k8s.io", "roles"), [role], list_meta={"resourceVersion": "1709"},
                     now=NOW)
    assert [r["cells"] for r in table["rows"]] == [r["cells"] for r in want["rows"]]
    lr = {"metadata": {"name": "container-defaults", "creationTimestamp": "2026-11-23T11:17:21Z"}}
    assert cells(res("", "limitranges"), [lr]) == golden_cells("limitranges")
    listed = golden("clusterroles")
    table = to_table(res("rbac.authorization.k8s.io", "clusterroles"), [], list_meta=listed["metadata"], now=NOW)
    assert table["metadata"] == listed["metadata"]  # continue and remainingItemCount are kept
    assert table["rows"] is None  # the default convertor leaves rows nil on an empty list
    assert to_table(res("", "pods"), [], list_meta={}, now=NOW)["rows"] == []


def test_csr_nodes_networkpolicies_quotas() -> None:
    def csr(name: str, signer: str, conds: list[str], cert: bool = False, exp: int | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"signerName": signer, "username": "kubernetes-admin"}
        if exp:
            spec["expirationSeconds"] = exp
        status: dict[str, Any] = {"conditions": [{"type": c, "status": "True"} for c in conds]}
        if cert:
            status["certificate"] = "LS0t"
        return {"metadata": {"name": name, "creationTimestamp": CREATED}, "spec": spec, "status": status}

    csrs = [csr("golden-denied", "kubernetes.io/kube-apiserver-client", ["Denied"]),
            csr("golden-kubelet-serving", "kubernetes.io/kubelet-serving", []),
            csr("golden-server-usage", "kubernetes.io/kube-apiserver-client", ["Approved", "Failed"]),
            csr("golden-user", "kubernetes.io/kube-apiserver-client", ["Approved"], True, 86400)]
    got = cells(res("certificates.k8s.io", "certificatesigningrequests"), csrs)
    assert drop(got, (1,)) == golden_cells("certificatesigningrequests", (1,))

    node = {"metadata": {"name": "golden-node-1", "creationTimestamp": CREATED,
                         "labels": {"node-role.kubernetes.io/worker": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                       "addresses": [{"type": "InternalIP", "address": "192.0.2.10"}],
                       "nodeInfo": {"kubeletVersion": "v1.36.2", "osImage": "Golden Linux",
                                    "kernelVersion": "6.1.0 (amd64)", "containerRuntimeVersion": "containerd://2.0.0"}}}
    assert cells(res("", "nodes"), [node]) == golden_cells("nodes")

    nps = [{"metadata": meta("allow-web"), "spec": {"podSelector": {"matchLabels": {"app": "web"}}}},
           {"metadata": meta("deny-all"), "spec": {"podSelector": {}}}]
    assert cells(res("networking.k8s.io", "networkpolicies"), nps) == golden_cells("networkpolicies")

    quota = {"metadata": meta("tiny"),
             "status": {"hard": {"pods": "1", "configmaps": "2", "requests.cpu": "1"},
                        "used": {"pods": "1", "configmaps": "2", "requests.cpu": "100m"}}}
    assert drop(cells(res("", "resourcequotas"), [quota]), (3,)) == golden_cells("resourcequotas", (3,))
    limits = {"metadata": meta("q"), "status": {"hard": {"limits.cpu": "2", "requests.memory": "1Gi"}}}
    assert cells(res("", "resourcequotas"), [limits])[0][1:3] == ["requests.memory: 0/1Gi", "limits.cpu: 0/2"]


def test_events_core_and_events_v1() -> None:
    core = [{"metadata": meta("api-5d8d7b894c.18eaa8897f50f0b8"), "type": "Normal", "reason": "SuccessfulCreate",
             "involvedObject": {"kind": "ReplicaSet", "name": "api-5d8d7b894c"},
             "message": "Created pod: api-5d8d7b894c-6dqzw", "source": {"component": "replicaset-controller"},
             "firstTimestamp": CREATED, "lastTimestamp": CREATED, "count": 1}]
    got = cells(res("", "events"), core)
    assert got == golden_cells("events")[:1]
    assert got[0][0] == "3s" and got[0][7] == "3s"
    v1 = {"metadata": meta("x.1"), "type": "Warning", "reason": "FailedCreate", "note": "  boom ",
          "regarding": {"kind": "ReplicaSet", "name": "web"}, "reportingController": "replicaset-controller",
          "reportingInstance": "node-a", "eventTime": "2026-11-23T11:18:30.123456Z"}
    row = cells(res("events.k8s.io", "events"), [v1])[0]
    # 1.88s elapsed: Go truncates toward zero
    assert row == ["1s", "Warning", "FailedCreate", "replicaset/web", "", "replicaset-controller, node-a", "boom",
                   "1s", 1, "x.1"]
    series = {**v1, "series": {"count": 4, "lastObservedTime": CREATED}}
    assert cells(res("events.k8s.io", "events"), [series])[0][8] == 4


def test_leases_storageclasses_pvcs() -> None:
    lease = {"metadata": meta("kube-controller-manager"), "spec": {"holderIdentity": "host_1234"}}
    assert cells(res("coordination.k8s.io", "leases"), [lease]) == [["kube-controller-manager", "host_1234", "3s"]]
    sc = {"metadata": {"name": "standard", "creationTimestamp": CREATED,
                       "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
          "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}
    assert cells(res("storage.k8s.io", "storageclasses"), [sc]) == [
        ["standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", False, "3s"]]
    pvc = {"metadata": meta("data"), "spec": {"volumeName": "pv-1", "storageClassName": "standard"},
           "status": {"phase": "Bound", "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                      "capacity": {"storage": "1Gi"}}}
    assert cells(res("", "persistentvolumeclaims"), [pvc]) == [
        ["data", "Bound", "pv-1", "1Gi", "RWO,RWX", "standard", "<unset>", "3s", "<unset>"]]
    pending = {"metadata": meta("p"), "spec": {"volumeMode": "Block"}, "status": {"phase": "Pending"}}
    assert cells(res("", "persistentvolumeclaims"), [pending]) == [
        ["p", "Pending", "", "", "", "", "<unset>", "3s", "Block"]]


def test_every_served_resource_produces_a_table() -> None:
    obj = {"metadata": meta("x")}
    for r in R.RESOURCES:
        table = to_table(r, [obj], list_meta={"resourceVersion": "7"}, now=NOW)
        assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"]), r.plural


def test_no_headers_and_partial_object_metadata_list() -> None:
    table = to_table(res("", "configmaps"), [], list_meta={"resourceVersion": "3"}, no_headers=True, now=NOW)
    assert table["columnDefinitions"] is None
    want = golden("pods-partial-object-metadata-list")
    got = partial_object_metadata_list(res("", "pods"), full_pods(), {"resourceVersion": "1709"})
    assert got == want
