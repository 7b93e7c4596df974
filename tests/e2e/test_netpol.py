"""NetworkPolicy end to end: kubectl apply/get/describe, `kubegate netpol check|matrix` against the
live server and offline on manifests, and the NetworkPolicyReview API through curl."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, Result

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: NS, labels: {team: shop}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: NS, labels: {app: web}}
spec:
  containers:
  - {name: c, image: nginx, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: NS, labels: {app: api}}
spec:
  containers:
  - {name: c, image: api}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: NS, labels: {app: db}}
spec:
  containers:
  - {name: c, image: mysql, ports: [{name: mysql, containerPort: 3306}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-api, namespace: NS}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: api}}}]
    ports: [{port: mysql}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-anywhere, namespace: NS}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports: [{port: 8080}]
  - from: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}}]
"""


def kubegate(*args: str) -> Result:
    p = subprocess.run([sys.executable, "-m", "kubegate.cli.main", *args], capture_output=True, text=True,
                       timeout=120)
    return Result(p.returncode, p.stdout, p.stderr)


@pytest.fixture
def shop(cluster: Cluster, ns: str, tmp_path: Path) -> str:
    """The web/api/db scenario applied to the live server and written to tmp_path/shop.yaml."""
    text = MANIFESTS.replace("NS", ns)
    (tmp_path / "shop.yaml").write_text(text)
    # the namespace exists already (fixture); apply the rest
    cluster.ok("apply", "-f", "-", input=text.split("---\n", 1)[1])
    cluster.ok("label", "namespace", ns, "team=shop")
    return ns


def live(cluster: Cluster, *args: str) -> Result:
    return kubegate("netpol", *args, "--kubeconfig", cluster.admin_conf)


def test_kubectl_get_and_describe_netpol(cluster: Cluster, shop: str) -> None:
    out = cluster.ok("get", "netpol", "-n", shop)
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert lines[1].split()[:2] == ["db-from-api", "app=db"]
    assert lines[2].split()[:2] == ["web-from-anywhere", "app=web"]
    out = cluster.ok("describe", "netpol", "db-from-api", "-n", shop)
    assert "Name:         db-from-api" in out
    assert f"Namespace:    {shop}" in out
    assert "  PodSelector:     app=db" in out
    assert "  Allowing ingress traffic:\n    To Port: mysql/TCP\n    From:\n      PodSelector: app=api" in out
    assert "  Not affecting egress traffic" in out
    assert "  Policy Types: Ingress" in out
    out = cluster.ok("describe", "netpol", "web-from-anywhere", "-n", shop)
    assert "      IPBlock:\n        CIDR: 203.0.113.0/24\n        Except: 203.0.113.128/25" in out


def test_invalid_policies_get_upstreams_422(cluster: Cluster, ns: str) -> None:
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "bad"},
           "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 90}],
                                                    "from": [{"ipBlock": {"cidr": "10.0.0.0/16",
                                                                          "except": ["10.1.0.0/24"]}}]}]}}
    code, _, body = cluster.request("POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", bad)
    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'NetworkPolicy.networking.k8s.io "bad" is invalid: ['
        "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric, "
        'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of '
        "`cidr`]")
    r = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(
        {**bad, "spec": {"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]}}))
    assert r.code != 0
    assert 'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", ' \
           '"SCTP"' in r.stderr


def test_check_live(cluster: Cluster, shop: str) -> None:
    r = live(cluster, "check", "--from", f"{shop}/api", "--to", f"{shop}/db", "--port", "3306")
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"allowed: {shop}/api -> {shop}/db on 3306/TCP",
        f"  egress from {shop}/api: not isolated (no NetworkPolicy selects it for egress), allowed",
        f"  ingress to {shop}/db: isolated by {shop}/db-from-api; allowed by {shop}/db-from-api ingress[0] "
        f"(from pods [app=api] in namespace {shop}; ports mysql/TCP)"]
    r = live(cluster, "check", "--from", f"{shop}/web", "--to", f"{shop}/db", "--port", "3306", "-o", "json")
    assert r.code == 1
    doc = json.loads(r.stdout)
    assert doc["allowed"] is False and doc["ingress"]["policies"] == [f"{shop}/db-from-api"]
    assert live(cluster, "check", "--from", "203.0.113.7", "--to", f"{shop}/web", "--port", "22").code == 0
    assert live(cluster, "check", "--from", "203.0.113.200", "--to", f"{shop}/web", "--port", "22").code == 1


def test_check_unknown_pod_or_namespace(cluster: Cluster, shop: str) -> None:
    r = live(cluster, "check", "--from", f"{shop}/nope", "--to", f"{shop}/db", "--port", "80")
    assert (r.code, r.stderr) == (2, f'error: --from {shop}/nope: pod "nope" not found in namespace "{shop}"\n')
    r = live(cluster, "check", "--from", f"{shop}/api", "--to", "no-such-ns/db", "--port", "80")
    assert (r.code, r.stderr) == (2, 'error: --to no-such-ns/db: namespace "no-such-ns" not found\n')
    r = live(cluster, "check", "--from", "api", "--to", f"{shop}/db", "--port", "80")
    assert (r.code, r.stderr) == (2, "error: --from: want NAMESPACE/POD or an IP address, got 'api'\n")


def test_matrix_live_and_offline_agree(cluster: Cluster, shop: str, tmp_path: Path) -> None:
    r = live(cluster, "matrix", "-n", shop, "--port", "3306", "-o", "json")
    assert r.code == 0, r.stderr
    pods = [f"{shop}/api", f"{shop}/db", f"{shop}/web"]
    want = {"port": 3306, "protocol": "TCP", "pods": pods,
            "allowed": {s: {d: not (d.endswith("/db") and not s.endswith("/api")) and not d.endswith("/web")
                            for d in pods} for s in pods}}
    assert json.loads(r.stdout) == want
    assert r.stdout == json.dumps(want) + "\n"
    offline = kubegate("netpol", "matrix", "--port", "3306", "-o", "json", "--objects", str(tmp_path / "shop.yaml"))
    assert offline.code == 0, offline.stderr
    assert offline.stdout == r.stdout
    table = live(cluster, "matrix", "-n", shop, "--port", "3306")
    assert table.stdout.startswith("Ingress:\n+--")
    assert "Combined:\n" in table.stdout


def test_matrix_svg_and_png(cluster: Cluster, shop: str, tmp_path: Path) -> None:
    r = kubegate("netpol", "matrix", "--port", "8080", "-o", "svg", "--objects", str(tmp_path / "shop.yaml"))
    assert r.code == 0, r.stderr
    assert r.stdout.startswith("<svg xmlns=") and r.stdout.rstrip().endswith("</svg>")
    # on 8080 every pair of distinct pods may connect except into db (api only, via mysql=3306): 4 flows
    flows = r.stdout.split('<g class="flows"', 1)[1].split("</g>", 1)[0]
    assert "4 of 6 ordered pairs" in r.stdout and flows.count("<path d=") == 4
    assert r.stdout.count('class="namespace"') == 1 and r.stdout.count('class="pod"') == 3
    p = subprocess.run([sys.executable, "-m", "kubegate.cli.main", "netpol", "matrix", "--port", "8080", "-o", "png",
                        "--objects", str(tmp_path / "shop.yaml")], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"\x89PNG\r\n\x1a\n") and len(p.stdout) > 1000


def test_offline_bad_manifests_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\n"
                 "metadata:\n  name: p\n  labels: [unclosed\n")
    r = kubegate("netpol", "matrix", "--port", "80", "--objects", str(f))
    assert r.code == 2
    assert r.stderr.startswith(f"error: {f}:10: invalid YAML")
    g = tmp_path / "policy.yaml"
    g.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n# the policy\n"
                 "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\n"
                 "spec: {podSelector: {}, ingress: [{ports: [{endPort: 5}]}]}\n")
    r = kubegate("netpol", "check", "--from", "default/p", "--to", "default/p", "--port", "80", "--objects", str(g))
    assert (r.code, r.stderr) == (2, f'error: {g}:6: NetworkPolicy.networking.k8s.io "np" is invalid: '
                                     "spec.ingress[0].ports[0].endPort: Invalid value: 5: may not be specified "
                                     "when `port` is not specified\n")
    r = kubegate("netpol", "check", "--from", "default/p", "--to", "x/y", "--port", "99999", "--objects", str(g))
    assert r.code == 2 and "port must be between 1 and 65535, inclusive" in r.stderr


# -- the review API ------------------------------------------------------------------------------

PATH = "/apis/netpol.kubegate.dev/v1alpha1/networkpolicyreviews"


def review(cluster: Cluster, spec: dict[str, Any], user: tuple[str, str] | None = None) -> tuple[int, Any]:
    body = json.dumps({"apiVersion": "netpol.kubegate.dev/v1alpha1", "kind": "NetworkPolicyReview", "spec": spec})
    r = cluster.curl(PATH, "-X", "POST", "-H", "Content-Type: application/json", "-d", body, user=user)
    return r.code, json.loads(r.stdout)


def test_review_api_check_and_matrix(cluster: Cluster, shop: str) -> None:
    code, doc = review(cluster, {"from": f"{shop}/api", "to": f"{shop}/db", "port": 3306})
    assert code == 201, doc
    assert doc["kind"] == "NetworkPolicyReview" and doc["apiVersion"] == "netpol.kubegate.dev/v1alpha1"
    status = doc["status"]
    assert status["allowed"] is True
    assert status["ingress"] == {"isolated": True, "policies": [f"{shop}/db-from-api"],
                                 "allowedBy": [{"policy": f"{shop}/db-from-api", "rule": 0}], "allowed": True}
    code, doc = review(cluster, {"namespaces": [shop], "port": 3306, "protocol": "TCP"})
    assert code == 201
    cli = live(cluster, "matrix", "-n", shop, "--port", "3306", "-o", "json")
    assert doc["status"] == json.loads(cli.stdout)
    # the group is in discovery like any other
    assert "networkpolicyreviews" in cluster.ok("api-resources", "--api-group=netpol.kubegate.dev")


def test_review_api_bad_input(cluster: Cluster, shop: str) -> None:
    code, doc = review(cluster, {"from": f"{shop}/api", "port": 0, "protocol": "ICMP"})
    assert code == 422 and doc["reason"] == "Invalid"
    assert doc["message"] == (
        'NetworkPolicyReview.netpol.kubegate.dev "" is invalid: ['
        "spec.port: Invalid value: 0: must be between 1 and 65535, inclusive, "
        'spec.protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP", '
        "spec.to: Required value: with `from` or `to`, both are needed]")
    code, doc = review(cluster, {"from": f"{shop}/ghost", "to": "10.0.0.1", "port": 80})
    assert code == 422
    assert doc["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.from", "message":
                                         f'Invalid value: "{shop}/ghost": pod "ghost" not found in namespace "{shop}"'}]
    code, doc = review(cluster, {"namespaces": ["no-such-ns"], "port": 80})
    assert code == 422 and 'namespace "no-such-ns" not found' in doc["message"]
    r = cluster.curl(PATH, admin=True)
    assert r.code == 405


def test_review_api_is_authorized_by_rbac(cluster: Cluster, shop: str) -> None:
    bob = cluster.user_cert("netpol-bob")
    code, doc = review(cluster, {"namespaces": [shop], "port": 80}, user=bob)
    assert code == 403
    assert doc["message"] == ('networkpolicyreviews.netpol.kubegate.dev is forbidden: User "netpol-bob" cannot '
                              'create resource "networkpolicyreviews" in API group "netpol.kubegate.dev" at the '
                              "cluster scope")
    cluster.ok("create", "clusterrole", "netpol-reviewer", "--verb=create",
               "--resource=networkpolicyreviews.netpol.kubegate.dev")
    cluster.ok("create", "clusterrolebinding", "netpol-bob", "--clusterrole=netpol-reviewer", "--user=netpol-bob")
    code, doc = review(cluster, {"namespaces": [shop], "port": 80}, user=bob)
    assert code == 403  # the answer would reveal the namespace's pods and policies
    assert doc["message"] == (f'pods is forbidden: User "netpol-bob" cannot list resource "pods" in API group "" '
                              f'in the namespace "{shop}"')
    cluster.ok("create", "role", "reader", "-n", shop, "--verb=list", "--resource=pods,networkpolicies")
    cluster.ok("create", "rolebinding", "bob-reads", "-n", shop, "--role=reader", "--user=netpol-bob")
    code, doc = review(cluster, {"namespaces": [shop], "port": 80}, user=bob)
    assert code == 201 and doc["status"]["pods"] == [f"{shop}/api", f"{shop}/db", f"{shop}/web"]
    code, doc = review(cluster, {"port": 80}, user=bob)  # every namespace: needs cluster-wide list
    assert code == 403 and "at the cluster scope" in doc["message"]
