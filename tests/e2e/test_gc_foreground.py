"""The garbage collector's foreground deletion and invalid owner references through the real
server: a blocking dependent holds its owner, a non-blocking one does not, a dependent with another
live owner only loses its reference to the deleting one, and an owner named across namespaces is
treated as absent with upstream's OwnerRefInvalidNamespace event. Checks poll (the controller is
asynchronous); a finalizer of the test's own keeps a dependent in deletion as long as needed."""
from __future__ import annotations

from typing import Any

from tests.e2e.cluster import Cluster
from tests.e2e.test_controllers import eventually, get, items

HOLD = "example.com/hold"


def _cm(c: Cluster, ns: str, name: str, owners: list[dict[str, Any]] | None = None,
        finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owners:
        meta["ownerReferences"] = owners
    if finalizers:
        meta["finalizers"] = finalizers
    status, _, body = c.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})
    assert status == 201, body
    return body


def _ref(owner: dict[str, Any], block: bool | None) -> dict[str, Any]:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
    if block is not None:
        ref["blockOwnerDeletion"] = block
    return ref


def _path(ns: str, name: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps/{name}"


def _delete_foreground(c: Cluster, ns: str, name: str) -> dict[str, Any]:
    status, _, body = c.request("DELETE", _path(ns, name), {"kind": "DeleteOptions", "apiVersion": "v1",
                                                           "propagationPolicy": "Foreground"})
    assert status == 200, body
    assert body["metadata"]["finalizers"] == ["foregroundDeletion"]
    return body


def _release(c: Cluster, ns: str, name: str) -> None:
    status, _, body = c.request("PATCH", _path(ns, name), {"metadata": {"finalizers": None}},
                                headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200, body


def test_blocking_dependent_holds_its_owner_and_a_shared_one_is_released(cluster: Cluster, ns: str) -> None:
    owner = _cm(cluster, ns, "owner")
    other = _cm(cluster, ns, "other")
    _cm(cluster, ns, "blocking", [_ref(owner, True)], [HOLD])
    _cm(cluster, ns, "shared", [_ref(owner, True), _ref(other, None)])
    _cm(cluster, ns, "unset", [_ref(owner, None)])
    _delete_foreground(cluster, ns, "owner")

    # The dependent with another live owner keeps it and drops the deleting one.
    shared = eventually(lambda: (s := get(cluster, _path(ns, "shared")))
                        and len(s["metadata"]["ownerReferences"]) == 1 and s, "reference to the deleting owner dropped")
    assert shared["metadata"]["ownerReferences"] == [_ref(other, None)]
    assert "deletionTimestamp" not in shared["metadata"]
    eventually(lambda: get(cluster, _path(ns, "unset")) is None, "dependent without an owner deleted")
    blocking = eventually(lambda: (b := get(cluster, _path(ns, "blocking")))
                          and b["metadata"].get("deletionTimestamp") and b, "blocking dependent deleted")
    assert blocking["metadata"]["finalizers"] == [HOLD]
    # The owner waits while its blocking dependent exists.
    held = get(cluster, _path(ns, "owner"))
    assert held is not None and held["metadata"]["finalizers"] == ["foregroundDeletion"]
    _release(cluster, ns, "blocking")
    eventually(lambda: get(cluster, _path(ns, "owner")) is None, "owner deleted after its dependent")
    assert get(cluster, _path(ns, "other")) is not None


def test_non_blocking_dependent_does_not_hold_its_owner(cluster: Cluster, ns: str) -> None:
    owner = _cm(cluster, ns, "owner")
    _cm(cluster, ns, "free", [_ref(owner, False)], [HOLD])
    _delete_foreground(cluster, ns, "owner")
    eventually(lambda: get(cluster, _path(ns, "owner")) is None, "owner deleted without waiting")
    free = get(cluster, _path(ns, "free"))
    assert free is not None and free["metadata"].get("deletionTimestamp"), free
    _release(cluster, ns, "free")
    eventually(lambda: get(cluster, _path(ns, "free")) is None, "dependent gone once released")


def test_owner_in_another_namespace_is_absent_and_reported(cluster: Cluster, ns: str) -> None:
    other_ns = ns[:55] + "-o"
    cluster.ok("create", "namespace", other_ns)
    owner = _cm(cluster, other_ns, "owner")
    dep = _cm(cluster, ns, "dep", [_ref(owner, None)])
    eventually(lambda: get(cluster, _path(ns, "dep")) is None, "dependent of a foreign owner collected")
    assert get(cluster, _path(other_ns, "owner")) is not None

    def reported() -> dict[str, Any] | None:
        return next((e for e in items(cluster, f"/api/v1/namespaces/{ns}/events")
                     if e["reason"] == "OwnerRefInvalidNamespace"), None)
    ev = eventually(reported, "OwnerRefInvalidNamespace event")
    uid = owner["metadata"]["uid"]
    assert ev["type"] == "Warning"
    assert ev["message"] == (f"ownerRef [v1/ConfigMap, namespace: {ns}, name: owner, uid: {uid}] "
                             f"does not exist in namespace \"{ns}\"")
    assert ev["involvedObject"]["kind"] == "ConfigMap" and ev["involvedObject"]["name"] == "dep"
    assert ev["involvedObject"]["uid"] == dep["metadata"]["uid"]
    assert ev["source"] == {"component": "garbage-collector-controller"}
