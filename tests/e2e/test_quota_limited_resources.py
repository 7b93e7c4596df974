"""ResourceQuota admission's limitedResources through a real server started with an
--admission-control-config-file: memory requests (matchContains) and BestEffort pods (matchScopes)
are refused in a namespace until a quota covers them, then admitted and charged."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.cluster import Cluster
from tests.e2e.test_controllers import eventually, get

PAUSE = "registry.k8s.io/pause:3.10"
CONFIG = """apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ResourceQuota
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: ResourceQuotaConfiguration
    limitedResources:
    - resource: pods
      matchContains: [requests.memory]
    - resource: pods
      matchScopes:
      - scopeName: BestEffort
        operator: Exists
"""


def _pod(name: str, requests: dict[str, str] | None = None) -> str:
    container: dict[str, Any] = {"name": "app", "image": PAUSE}
    if requests:
        container["resources"] = {"requests": requests}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"containers": [container]}})


def _quota_used(c: Cluster, name: str) -> dict[str, str] | None:
    q = get(c, f"/api/v1/namespaces/default/resourcequotas/{name}")
    return ((q or {}).get("status") or {}).get("used")


def test_limited_resources_and_scopes_need_a_covering_quota(fresh_cluster: Cluster, tmp_path: Path) -> None:
    conf = tmp_path / "admission.yaml"
    conf.write_text(CONFIG)
    c = fresh_cluster
    c.extra_args = ["--admission-control-config-file", str(conf)]
    c.start()
    eventually(lambda: get(c, "/api/v1/namespaces/default/serviceaccounts/default"), "default ServiceAccount")

    # Neither limited: a pod asking only for cpu is not best effort and requests no memory.
    c.ok("create", "-n", "default", "-f", "-", input=_pod("cpu-only", {"cpu": "100m"}))

    r = c.kubectl("create", "-n", "default", "-f", "-", input=_pod("best-effort"))
    assert r.code != 0
    # Upstream returns this one as a plain error, not a Forbidden.
    assert r.stderr.strip() == ('Error from server: error when creating "STDIN": insufficient quota to match '
                                "these scopes: [{BestEffort Exists []}]"), r.stderr
    code, _, body = c.request("POST", "/api/v1/namespaces/default/pods", json.loads(_pod("best-effort")))
    assert (code, body["reason"], body["message"]) == (
        500, "", "insufficient quota to match these scopes: [{BestEffort Exists []}]")

    r = c.kubectl("create", "-n", "default", "-f", "-", input=_pod("memory", {"memory": "64Mi"}))
    assert r.code != 0
    assert r.stderr.strip() == ('Error from server (Forbidden): error when creating "STDIN": pods "memory" is '
                                'forbidden: insufficient quota to consume: requests.memory'), r.stderr

    c.ok("create", "quota", "best-effort", "--hard=pods=5", "--scopes=BestEffort", "-n", "default")
    # Scoped, or it would oblige the best-effort pod to state its memory.
    c.ok("create", "quota", "memory", "--hard=requests.memory=1Gi", "--scopes=NotBestEffort", "-n", "default")
    eventually(lambda: _quota_used(c, "best-effort"), "best-effort quota status")
    eventually(lambda: _quota_used(c, "memory"), "memory quota status")

    c.ok("create", "-n", "default", "-f", "-", input=_pod("best-effort"))
    c.ok("create", "-n", "default", "-f", "-", input=_pod("memory", {"memory": "64Mi"}))
    assert eventually(lambda: _quota_used(c, "best-effort") == {"pods": "1"}, "best-effort pod charged")
    # Admission charges "64Mi"; the controller's recount prints the same amount in decimal.
    used = eventually(lambda: _quota_used(c, "memory"), "memory quota status")
    assert used["requests.memory"] in ("64Mi", "67108864"), used
