"""Identity and access: x509 users, anonymous, RBAC with upstream's exact 403 text."""
from __future__ import annotations

import json

from tests.e2e.cluster import Cluster, golden


def test_bound_user_reads_pods_others_are_denied(cluster: Cluster, ns: str) -> None:
    cluster.ok("-n", ns, "create", "role", "developer", "--verb=get,list,watch", "--resource=pods")
    cluster.ok("-n", ns, "create", "rolebinding", "dev-alice", "--role=developer", "--user=alice")
    alice = cluster.kubeconfig_for("alice", ("developers",))
    bob = cluster.kubeconfig_for("bob")
    assert cluster.kubectl("-n", ns, "get", "pods", kubeconfig=alice).code == 0
    assert cluster.ok("-n", ns, "auth", "can-i", "list", "pods", kubeconfig=alice).strip() == "yes"
    r = cluster.kubectl("-n", ns, "get", "pods", kubeconfig=bob)
    assert r.code == 1
    assert (f'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "{ns}"'
            in r.stderr)
    r = cluster.kubectl("-n", ns, "auth", "can-i", "list", "pods", kubeconfig=bob)
    assert r.stdout.strip() == "no"
    # alice may not read secrets: the message names the verb, resource and namespace
    r = cluster.kubectl("-n", ns, "get", "secret", "x", kubeconfig=alice)
    assert (f'secrets "x" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the '
            f'namespace "{ns}"') in r.stderr


def test_admin_can_i_with_as(cluster: Cluster, ns: str) -> None:
    assert cluster.ok("auth", "can-i", "create", "deployments.apps", "-n", ns).strip() == "yes"


def test_group_binding_and_clusterrole(cluster: Cluster, ns: str) -> None:
    cluster.ok("-n", ns, "create", "rolebinding", "viewers", "--clusterrole=view", "--group=auditors")
    carol = cluster.kubeconfig_for("carol", ("auditors",))
    assert cluster.kubectl("-n", ns, "get", "configmaps", kubeconfig=carol).code == 0
    assert cluster.kubectl("-n", ns, "get", "secrets", kubeconfig=carol).code == 1  # view grants no secrets
    assert cluster.kubectl("get", "configmaps", "-n", "default", kubeconfig=carol).code == 1


def test_binding_to_missing_role_appends_rbac_reason(cluster: Cluster, ns: str) -> None:
    cluster.ok("-n", ns, "create", "rolebinding", "dangling", "--clusterrole=does-not-exist", "--user=dave")
    dave = cluster.user_cert("dave")
    r = cluster.curl(f"/api/v1/namespaces/{ns}/pods", user=dave)
    assert r.code == 403
    msg = json.loads(r.stdout)["message"]
    assert msg == (f'pods is forbidden: User "dave" cannot list resource "pods" in API group "" in the namespace '
                   f'"{ns}": RBAC: clusterrole.rbac.authorization.k8s.io "does-not-exist" not found')


def test_curl_with_admin_certificate(cluster: Cluster) -> None:
    r = cluster.curl("/api/v1/namespaces/default")
    assert r.code == 200 and json.loads(r.stdout)["metadata"]["name"] == "default"


def test_anonymous_health_and_version_only(cluster: Cluster) -> None:
    for path in ("/version", "/healthz", "/livez", "/readyz", "/readyz?verbose"):
        assert cluster.curl(path, admin=False).code == 200, path
    r = cluster.curl("/api", admin=False)
    assert r.code == 403
    assert json.loads(r.stdout)["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'


def test_forbidden_messages_match_goldens(cluster: Cluster) -> None:
    bob = cluster.user_cert("bob")
    cases = {
        "errors/403-cluster-scoped-list.json": "/api/v1/nodes",
        "errors/403-all-namespaces-list.json": "/api/v1/secrets",
        "errors/403-nonresource-metrics.json": "/metrics",
        "errors/403-apigroup-resource.json": None,
    }
    for name, path in cases.items():
        g = golden(name)
        path = path or g["request"]["path"]
        r = cluster.curl(path, user=bob)
        assert r.code == 403, (name, r.stdout)
        assert json.loads(r.stdout) == g["response"]["body"], name


def test_healthz_verbose_format(cluster: Cluster) -> None:
    r = cluster.curl("/readyz?verbose")
    lines = r.stdout.splitlines()
    assert lines[0] == "[+]ping ok"
    assert lines[-1] == "readyz check passed"
    r = cluster.curl("/livez/nosuchcheck")
    assert r.code == 404 and r.stdout == "404 page not found\n"
    assert cluster.curl("/readyz?verbose&exclude=etcd").stdout.splitlines()[2] == "[+]etcd excluded: ok"


def _essence(obj: dict) -> dict:
    m = obj["metadata"]
    keep = {k: obj.get(k) for k in ("rules", "aggregationRule", "roleRef", "subjects") if obj.get(k) is not None}
    return {"name": m["name"], "namespace": m.get("namespace"), "labels": m.get("labels"),
            "annotations": m.get("annotations"), **keep}


def test_fresh_server_holds_upstream_default_rbac(cluster: Cluster) -> None:
    import yaml
    from tests.fixtures import FIXTURES
    for plural, path in (("clusterroles", "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
                         ("clusterrolebindings", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"),
                         ("roles", "/apis/rbac.authorization.k8s.io/v1/roles"),
                         ("rolebindings", "/apis/rbac.authorization.k8s.io/v1/rolebindings")):
        want = {(o["metadata"].get("namespace"), o["metadata"]["name"]): _essence(o)
                for o in yaml.safe_load((FIXTURES / "rbac-bootstrap" / f"{plural}.yaml").read_text())["items"]}
        _, _, got_list = cluster.request("GET", path)
        got = {(o["metadata"].get("namespace"), o["metadata"]["name"]): _essence(o) for o in got_list["items"]}
        for key, obj in want.items():
            assert got.get(key) == obj, (plural, key)


def test_can_i_list_matches_upstream(cluster: Cluster, ns: str) -> None:
    """kubectl auth can-i --list reads SelfSubjectRulesReview; alice is granted what she held in
    upstream's recording, so the table must come out the same."""
    cluster.ok("-n", ns, "create", "role", "deployer", "--verb=*", "--resource=deployments.apps")
    cluster.ok("-n", ns, "create", "role", "reader", "--verb=get,list,watch", "--resource=pods,pods/log")
    cluster.ok("-n", ns, "create", "role", "config", "--verb=get,update", "--resource=configmaps",
               "--resource-name=app-config")
    for role in ("deployer", "reader", "config"):
        cluster.ok("-n", ns, "create", "rolebinding", f"alice-{role}", f"--role={role}", "--user=alice")
    alice = cluster.kubeconfig_for("alice", ("developers",))
    want = golden("authz/kubectl-auth-can-i-list-alice.txt.json")["response"]["stdout"]
    assert cluster.ok("auth", "can-i", "--list", "-n", ns, kubeconfig=alice) == want
    # Without a namespace in the spec upstream answers 400 with its own words.
    status, _, body = cluster.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                                      {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                                       "spec": {}})
    g = golden("authz/selfsubjectrulesreview-no-namespace.json")["response"]
    assert (status, body) == (g["status"], g["body"])


def test_rules_review_reports_a_missing_role(cluster: Cluster, ns: str) -> None:
    cluster.ok("-n", ns, "create", "rolebinding", "dangling", "--role=nonexistent", "--user=carol")
    status, _, body = cluster.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                                      {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
                                       "spec": {"namespace": ns}}, user=cluster.user_cert("carol"))
    assert status == 201
    # RBAC reports the error without calling the list incomplete, as upstream does.
    assert body["status"]["evaluationError"] == 'role.rbac.authorization.k8s.io "nonexistent" not found'
    assert body["status"]["incomplete"] is False
    assert {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
            "resources": ["selfsubjectreviews"]} in body["status"]["resourceRules"]
