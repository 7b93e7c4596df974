"""Pod and workload warnings through a real server: kubectl prints them, curl shows upstream's header."""
from __future__ import annotations

import json

from tests.e2e.cluster import Cluster

DEPRECATED = 'deprecated since v1.14; use "kubernetes.io/os" instead'


def _deployment(name: str, node_selector: dict[str, str]) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"nodeSelector": node_selector,
                                       "containers": [{"name": "c", "image": "nginx",
                                                       "env": [{"name": "A", "value": "1"},
                                                               {"name": "A", "value": "2"}]}]}}}})


def test_kubectl_prints_the_deployment_warnings(cluster: Cluster, ns: str) -> None:
    r = cluster.kubectl("create", "-n", ns, "-f", "-", input=_deployment("web", {"beta.kubernetes.io/os": "linux"}))
    assert r.code == 0, r.stderr
    assert f"Warning: spec.template.spec.nodeSelector[beta.kubernetes.io/os]: {DEPRECATED}" in r.stderr
    assert ('Warning: spec.template.spec.containers[0].env[1]: hides previous definition of "A", which may be '
            "dropped when using apply") in r.stderr
    # An update that leaves the spec alone (same generation) does not warn again.
    r = cluster.kubectl("label", "-n", ns, "deployment", "web", "touched=yes")
    assert r.code == 0, r.stderr
    assert "Warning:" not in r.stderr
    # A spec change does.
    r = cluster.kubectl("patch", "-n", ns, "deployment", "web", "--type=merge",
                        "-p", '{"spec":{"template":{"spec":{"terminationGracePeriodSeconds":-1}}}}')
    assert r.code == 0, r.stderr
    assert ("Warning: spec.template.spec.terminationGracePeriodSeconds: must be >= 0; negative values are invalid "
            "and will be treated as 1") in r.stderr


def test_curl_shows_the_warning_header(cluster: Cluster, ns: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a.b"},
           "spec": {"nodeSelector": {"beta.kubernetes.io/os": "linux"},
                    "containers": [{"name": "c", "image": "nginx"}]}}
    r = cluster.curl(f"/api/v1/namespaces/{ns}/pods", "-i", "-X", "POST", "-H", "Content-Type: application/json",
                     "-d", json.dumps(pod))
    assert r.code == 201, r.stdout
    headers = [line.rstrip("\r") for line in r.stdout.splitlines() if line.lower().startswith("warning:")]
    assert headers == [
        'Warning: 299 - "metadata.name: this is used in the Pod\'s hostname, which can result in surprising '
        'behavior; a DNS label is recommended: [must not contain dots]"',
        f'Warning: 299 - "spec.nodeSelector[beta.kubernetes.io/os]: {DEPRECATED.replace(chr(34), chr(92) + chr(34))}"',
    ]
