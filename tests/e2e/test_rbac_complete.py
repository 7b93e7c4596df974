"""RBAC end to end: kubectl create role/rolebinding/clusterrole(binding) and auth reconcile,
escalation prevention with upstream's messages, the bind and escalate verbs, aggregation of a new
labelled ClusterRole, default-policy reconciliation at restart, and the who-can / explain-access /
rolesum commands against a live server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.e2e.cluster import Cluster

GRANT_MSG = ('is forbidden: user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC '
             'permissions not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')


def kubegate(c: Cluster, *args: str, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=kubeconfig or c.admin_conf)
    return subprocess.run([sys.executable, "-m", "kubegate.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def _developer(c: Cluster, ns: str) -> str:
    c.ok("-n", ns, "create", "role", "developer", "--verb=get,list", "--resource=pods")
    c.ok("-n", ns, "create", "rolebinding", "developer", "--role=developer", "--user=alice")
    # alice may manage roles and bindings in the namespace, so escalation prevention is what stops her
    c.ok("-n", ns, "create", "role", "rbac-editor", "--verb=get,create,update,patch",
         "--resource=roles,rolebindings")
    c.ok("-n", ns, "create", "rolebinding", "rbac-editor", "--role=rbac-editor", "--user=alice")
    return c.kubeconfig_for("alice")


def test_create_role_binding_can_i_and_exact_403(cluster: Cluster, ns: str) -> None:
    _developer(cluster, ns)
    assert cluster.ok("-n", ns, "auth", "can-i", "list", "pods", "--as", "alice").strip() == "yes"
    r = cluster.kubectl("-n", ns, "auth", "can-i", "delete", "pods", "--as", "alice")
    assert (r.code, r.stdout.strip()) == (1, "no")
    assert cluster.curl(f"/api/v1/namespaces/{ns}/pods", user=cluster.user_cert("alice")).code == 200
    r = cluster.curl(f"/api/v1/namespaces/{ns}/pods", user=cluster.user_cert("mallory"))
    assert r.code == 403
    assert json.loads(r.stdout)["message"] == (
        f'pods is forbidden: User "mallory" cannot list resource "pods" in API group "" in the namespace "{ns}"')


def test_escalation_is_denied_with_upstream_message(cluster: Cluster, ns: str) -> None:
    alice = _developer(cluster, ns)
    r = cluster.kubectl("-n", ns, "create", "role", "deleter", "--verb=delete", "--resource=pods", kubeconfig=alice)
    assert r.code == 1
    assert r.stderr == f'Error from server (Forbidden): roles.rbac.authorization.k8s.io "deleter" {GRANT_MSG}\n'
    # a role within what she holds is fine; so is binding it
    cluster.ok("-n", ns, "create", "role", "lister", "--verb=list", "--resource=pods", kubeconfig=alice)
    cluster.ok("-n", ns, "create", "rolebinding", "bob-lister", "--role=lister", "--user=bob", kubeconfig=alice)
    # widening an existing role is an update, checked the same way
    r = cluster.kubectl("-n", ns, "patch", "role", "lister", "--type=json", "-p",
                        '[{"op":"add","path":"/rules/0/verbs/-","value":"delete"}]', kubeconfig=alice)
    assert r.code == 1 and f'roles.rbac.authorization.k8s.io "lister" {GRANT_MSG}' in r.stderr


def test_bind_and_escalate_verbs(cluster: Cluster, ns: str) -> None:
    alice = _developer(cluster, ns)
    cluster.ok("create", "clusterrole", f"{ns}-deleter", "--verb=delete", "--resource=pods")
    r = cluster.kubectl("-n", ns, "create", "rolebinding", "bob-deleter", f"--clusterrole={ns}-deleter",
                        "--user=bob", kubeconfig=alice)
    assert r.code == 1
    assert f'rolebindings.rbac.authorization.k8s.io "bob-deleter" {GRANT_MSG}' in r.stderr
    cluster.ok("-n", ns, "create", "role", "binder", "--verb=bind", "--resource=clusterroles",
               f"--resource-name={ns}-deleter")
    cluster.ok("-n", ns, "create", "rolebinding", "binder", "--role=binder", "--user=alice")
    cluster.ok("-n", ns, "create", "rolebinding", "bob-deleter", f"--clusterrole={ns}-deleter", "--user=bob",
               kubeconfig=alice)
    assert cluster.ok("-n", ns, "auth", "can-i", "delete", "pods", "--as", "bob").strip() == "yes"
    cluster.ok("-n", ns, "create", "role", "escalator", "--verb=escalate", "--resource=roles")
    cluster.ok("-n", ns, "create", "rolebinding", "escalator", "--role=escalator", "--user=alice")
    cluster.ok("-n", ns, "create", "role", "deleter", "--verb=delete", "--resource=pods", kubeconfig=alice)


def test_binding_to_a_missing_role_without_bind_is_not_found(cluster: Cluster, ns: str) -> None:
    alice = _developer(cluster, ns)
    r = cluster.kubectl("-n", ns, "create", "rolebinding", "x", "--clusterrole=no-such-role", "--user=bob",
                        kubeconfig=alice)
    assert r.code == 1
    assert 'clusterroles.rbac.authorization.k8s.io "no-such-role" not found' in r.stderr


def test_invalid_roles_get_upstreams_422(cluster: Cluster, ns: str) -> None:
    body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "bad"},
            "rules": [{"verbs": [], "apiGroups": [""], "resources": ["pods"]},
                      {"verbs": ["get"], "resources": ["pods"]},
                      {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}
    status, _, doc = cluster.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", body)
    assert status == 422
    assert doc["message"] == (
        'Role.rbac.authorization.k8s.io "bad" is invalid: [rules[0].verbs: Required value: verbs must contain at '
        'least one value, rules[1].apiGroups: Required value: resource rules must supply at least one api group, '
        'rules[2].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs]')
    # kubectl only warns about an unknown verb, and the server, like upstream's, stores any verb string
    r = cluster.kubectl("-n", ns, "create", "role", "odd", "--verb=frobnicate", "--resource=pods")
    assert r.code == 0 and r.stderr == "Warning: 'frobnicate' is not a standard resource verb\n"


def _wait_for(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _has_nodes_rule(c: Cluster, role: str) -> bool:
    rules = json.loads(c.ok("get", "clusterrole", role, "-o", "json")).get("rules") or []
    return any("nodes" in (r.get("resources") or []) and r.get("verbs") == ["get"] for r in rules)


def test_aggregation_picks_up_a_new_labelled_clusterrole(cluster: Cluster) -> None:
    cluster.ok("create", "clusterrole", "e2e-node-viewer", "--verb=get", "--resource=nodes")
    cluster.ok("label", "clusterrole", "e2e-node-viewer", "rbac.authorization.k8s.io/aggregate-to-view=true")
    # view is aggregated into edit, and edit into admin
    assert _wait_for(lambda: all(_has_nodes_rule(cluster, r) for r in ("view", "edit", "admin")))
    cluster.ok("create", "clusterrole", "e2e-agg", "--aggregation-rule=e2e=yes")
    cluster.ok("create", "clusterrole", "e2e-part", "--verb=list", "--resource=secrets")
    cluster.ok("label", "clusterrole", "e2e-part", "e2e=yes")
    assert _wait_for(lambda: (json.loads(cluster.ok("get", "clusterrole", "e2e-agg", "-o", "json")).get("rules")
                              == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]))
    cluster.ok("delete", "clusterrole", "e2e-node-viewer")
    assert _wait_for(lambda: not any(_has_nodes_rule(cluster, r) for r in ("view", "edit", "admin")))


def test_auth_reconcile(cluster: Cluster, ns: str) -> None:
    manifest = f"""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: reconciled, namespace: {ns}}}
rules:
- {{apiGroups: [""], resources: [configmaps], verbs: [get, list]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reconciled, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reconciled}}
subjects:
- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: erin}}
"""
    out = cluster.ok("auth", "reconcile", "-f", "-", input=manifest)
    assert "role.rbac.authorization.k8s.io/reconciled reconciled" in out
    assert cluster.ok("-n", ns, "auth", "can-i", "list", "configmaps", "--as", "erin").strip() == "yes"
    widened = manifest.replace("verbs: [get, list]", "verbs: [get, list, watch]")
    r = cluster.kubectl("auth", "reconcile", "-f", "-", input=widened)
    assert r.code == 0 and "missing rules added" in r.stderr
    assert cluster.ok("-n", ns, "auth", "can-i", "watch", "configmaps", "--as", "erin").strip() == "yes"


def test_who_can_explain_access_and_rolesum_cli(cluster: Cluster, ns: str) -> None:
    _developer(cluster, ns)
    r = kubegate(cluster, "who-can", "list", "pods", "-n", ns)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["SUBJECT", "BINDING", "ROLE", "RULE"]
    assert lines[1].startswith("Group/system:masters")
    assert any(line.split()[:3] == ["User/alice", f"RoleBinding/{ns}/developer", "Role/developer"] for line in lines)
    assert not any(line.startswith("User/alice") for line in kubegate(cluster, "who-can", "delete", "pods", "-n", ns)
                   .stdout.splitlines())

    r = kubegate(cluster, "explain-access", "--as", "alice", "list", "pods", "-n", ns)
    assert r.returncode == 0
    assert r.stdout.splitlines()[:3] == [
        "ALLOWED (Allow by RBAC)",
        f'reason: RBAC: allowed by RoleBinding "developer/{ns}" of Role "developer" to User "alice"',
        f"binding: RoleBinding/{ns}/developer (subject User/alice)"]
    r = kubegate(cluster, "explain-access", "--as", "alice", "delete", "pods", "-n", ns)
    assert r.returncode == 1
    assert r.stdout.splitlines()[0] == "DENIED (NoOpinion, no authorizer had an opinion)"
    assert f"  wrong verb: RoleBinding/{ns}/developer -> Role/developer: verbs=get,list apiGroups=\"\" resources=pods" \
        in r.stdout.splitlines()
    r = kubegate(cluster, "explain-access", "--as", "alice", "list", "pods", "-n", "default")
    assert f"  wrong namespace: RoleBinding/{ns}/developer -> Role/developer" in r.stdout

    r = kubegate(cluster, "rolesum", "alice", "-o", "json")
    doc = json.loads(r.stdout)
    scope = next(s for s in doc["scopes"] if s["namespace"] == ns)
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]} in scope["rules"]
    text = kubegate(cluster, "rolesum", "alice").stdout
    assert f"Namespace {ns}" in text and "pods" in text


def test_explain_endpoints_are_authorized(cluster: Cluster, ns: str) -> None:
    alice = _developer(cluster, ns)
    r = kubegate(cluster, "who-can", "list", "pods", "-n", ns, kubeconfig=alice)
    assert r.returncode == 1
    assert r.stderr.strip() == ('error: clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "alice" cannot '
                                'list resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the '
                                'cluster scope')
    # about herself she may ask (as with kubectl auth can-i); about bob she may not
    assert kubegate(cluster, "explain-access", "list", "pods", "-n", ns, kubeconfig=alice).returncode == 0
    r = kubegate(cluster, "explain-access", "--as", "bob", "list", "pods", "-n", ns, kubeconfig=alice)
    assert r.returncode == 1 and 'cannot impersonate resource "users"' in r.stderr
    assert kubegate(cluster, "rolesum", "alice", kubeconfig=alice).returncode == 0
    assert kubegate(cluster, "rolesum", "bob", kubeconfig=alice).returncode == 1
    status, _, doc = cluster.request("GET", "/apis/kubegate.dev/v1alpha1/nothing")
    assert status == 404


def test_default_policy_reconciled_at_restart(fresh_cluster: Cluster) -> None:
    c = fresh_cluster.start()
    c.ok("patch", "clusterrole", "system:basic-user", "--type=json", "-p",
         '[{"op":"replace","path":"/rules","value":[{"apiGroups":[""],"resources":["pods"],"verbs":["get"]}]}]')
    c.ok("patch", "clusterrolebinding", "system:discovery", "--type=json", "-p", '[{"op":"remove","path":"/subjects"}]')
    c.ok("patch", "clusterrole", "system:public-info-viewer", "--type=merge", "-p",
         '{"metadata":{"annotations":{"rbac.authorization.kubernetes.io/autoupdate":"false"}},"rules":[]}')
    c.stop()
    c.start()
    basic = json.loads(c.ok("get", "clusterrole", "system:basic-user", "-o", "json"))
    assert basic["rules"][0] == {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}  # user addition kept
    assert {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"],
            "verbs": ["create"]} in basic["rules"]
    disc = json.loads(c.ok("get", "clusterrolebinding", "system:discovery", "-o", "json"))
    assert disc["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                 "name": "system:authenticated"}]
    piv = json.loads(c.ok("get", "clusterrole", "system:public-info-viewer", "-o", "json"))
    assert not piv.get("rules")  # opted out: left alone
