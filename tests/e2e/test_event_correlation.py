"""Controllers' events pass the EventCorrelator: a Deployment whose ReplicaSet a quota keeps refusing
records one ReplicaSetCreateError Event whose count grows, not one Event per attempt."""
from __future__ import annotations

import json
from typing import Any

from tests.e2e.cluster import Cluster
from tests.e2e.test_controllers import eventually

QUOTA_REFUSAL = ('replicasets.apps "{rs}" is forbidden: exceeded quota: no-replicasets, requested: '
                 'count/replicasets.apps=1, used: count/replicasets.apps=0, limited: count/replicasets.apps=0')


def _refusals(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    events = json.loads(cluster.ok("get", "events", "-n", ns, "-o", "json"))["items"]
    return [e for e in events if e["reason"] == "ReplicaSetCreateError"]


def test_repeated_refusal_counts_on_one_event(cluster: Cluster, ns: str) -> None:
    cluster.ok("create", "quota", "no-replicasets", "--hard=count/replicasets.apps=0", "-n", ns)
    eventually(lambda: json.loads(cluster.ok("get", "quota", "no-replicasets", "-n", ns, "-o", "json")).get("status"),
               "quota status")
    cluster.ok("create", "deployment", "web", "--image=registry.k8s.io/pause:3.10", "-n", ns)

    repeated = eventually(lambda: [e for e in _refusals(cluster, ns) if e["count"] > 1], "a repeated event")
    ev = repeated[0]
    rs = ev["message"].split('"')[1]
    assert ev["message"] == f'Failed to create new replica set "{rs}": ' + QUOTA_REFUSAL.format(rs=rs)
    assert (ev["type"], ev["source"], ev["involvedObject"]["kind"], ev["involvedObject"]["name"]) == (
        "Warning", {"component": "deployment-controller"}, "Deployment", "web")
    assert ev["firstTimestamp"] <= ev["lastTimestamp"]
    # The repeats are counted on that one Event, not stored beside it.
    assert [e["metadata"]["name"] for e in _refusals(cluster, ns)] == [ev["metadata"]["name"]]
