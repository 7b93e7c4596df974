"""Pod Security admission through the real server with kubectl and HTTP, against the goldens."""
from __future__ import annotations

import json

from tests.e2e.cluster import Cluster
from tests.fixtures import GOLDENS

PRIVILEGED_POD = """apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  hostNetwork: true
  containers:
  - {name: app, image: registry.k8s.io/pause:3.10, securityContext: {privileged: true}}
"""
PLAIN_POD = """apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  containers:
  - {name: app, image: registry.k8s.io/pause:3.10}
"""
RESTRICTED_REASONS = ('allowPrivilegeEscalation != false (container "app" must set '
                      'securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "app" '
                      'must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container '
                      '"app" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "app" '
                      'must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')


def golden(name: str) -> dict:
    return json.loads((GOLDENS / "podsecurity" / name).read_text())


def test_enforce_baseline_refuses_a_privileged_pod(cluster: Cluster, ns: str) -> None:
    cluster.ok("label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline")
    r = cluster.kubectl("-n", ns, "apply", "-f", "-", input=PRIVILEGED_POD)
    assert r.code != 0
    assert ('pods "privileged" is forbidden: violates PodSecurity "baseline:latest": host namespaces '
            '(hostNetwork=true), privileged (container "app" must not set securityContext.privileged=true)') in r.stderr
    g = golden("enforce-baseline-privileged-pod.json")
    status, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", g["request"]["body"])
    assert (status, body) == (403, g["response"]["body"])
    cluster.ok("-n", ns, "apply", "-f", "-", input=PLAIN_POD)


def test_warn_restricted_makes_kubectl_print_warnings(cluster: Cluster, ns: str) -> None:
    cluster.ok("label", "namespace", ns, "pod-security.kubernetes.io/warn=restricted")
    r = cluster.kubectl("-n", ns, "apply", "-f", "-", input=PLAIN_POD)
    assert r.code == 0, r.stderr
    assert f'Warning: would violate PodSecurity "restricted:latest": {RESTRICTED_REASONS}' in r.stderr
    g = golden("warn-restricted-deployment.json")
    status, headers, _ = cluster.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments",
                                         g["request"]["body"])
    assert status == 201
    assert headers.get("Warning") == g["response"]["headers"]["Warning"][0]


def test_label_change_warns_about_existing_pods(cluster: Cluster, ns: str) -> None:
    cluster.ok("-n", ns, "apply", "-f", "-", input=PLAIN_POD)
    cluster.ok("-n", ns, "apply", "-f", "-", input=PRIVILEGED_POD)
    expected = [f'Warning: existing pods in namespace "{ns}" violate the new PodSecurity enforce level '
                '"restricted:latest"',
                "Warning: plain: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, "
                "seccompProfile",
                "Warning: privileged: host namespaces, privileged, allowPrivilegeEscalation != false, unrestricted "
                "capabilities, runAsNonRoot != true, seccompProfile"]
    dry = cluster.kubectl("label", "--dry-run=server", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    assert dry.code == 0, dry.stderr
    assert [line for line in dry.stderr.splitlines() if line.startswith("Warning")] == expected
    assert "pod-security.kubernetes.io/enforce" not in cluster.ok("get", "namespace", ns, "-o", "json")
    r = cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    assert r.code == 0, r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("Warning")] == expected
    bad = cluster.kubectl("label", "--overwrite", "namespace", ns, "pod-security.kubernetes.io/enforce=superstrict")
    assert bad.code != 0
    assert (f'Namespace "{ns}" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: '
            '"superstrict": must be one of privileged, baseline, restricted') in bad.stderr
