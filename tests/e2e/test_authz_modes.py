"""Authorization modes end to end: ABAC policy files, a Webhook authorizer backed by a local policy
webhook, chained modes, start-up validation, the v1beta1 SubjectAccessReview, and kubectl auth can-i
against upstream's recordings."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.e2e.cluster import Cluster, golden
from tests.fixtures import FIXTURES
from tests.policy_webhook import PolicyWebhook, Rule

EXAMPLE_POLICY = FIXTURES / "abac" / "example_policy_file.jsonl"
V1 = '{"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy", "spec": %s}'
# upstream's example file, plus a team namespace with a writer, a reader and a legacy (v0) line
POLICY = EXAMPLE_POLICY.read_text() + "\n" + "\n".join([
    "# team-a",
    V1 % '{"user": "alice", "namespace": "team-a", "resource": "*", "apiGroup": "*"}',
    V1 % '{"user": "bob", "namespace": "team-a", "resource": "*", "apiGroup": "*", "readonly": true}',
    '{"user": "legacy", "resource": "configmaps"}',
    "# kubectl auth can-i asks through self access reviews, which RBAC's basic-user role grants otherwise",
    V1 % ('{"group": "system:authenticated", "namespace": "*", "apiGroup": "authorization.k8s.io", '
          '"resource": "selfsubjectaccessreviews"}'),
    V1 % ('{"group": "system:authenticated", "namespace": "*", "apiGroup": "authorization.k8s.io", '
          '"resource": "selfsubjectrulesreviews"}'),
    "",
])


def forbidden(resource: str, message: str) -> dict[str, object]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "Forbidden", "details": {"kind": resource}, "code": 403}


def super_admin(c: Cluster) -> str:
    """kubeadm's admin.conf is only bound by RBAC; super-admin.conf is in system:masters."""
    return str(c.data_dir / "super-admin.conf")


def fingerprint(cert_file: str) -> str:
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex()


def kubegate_up(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubegate up` expected to refuse to start: its exit status and stderr."""
    return subprocess.run([sys.executable, "-m", "kubegate.cli.main", "up", "--data-dir", str(data_dir),
                           "--secure-port", "0", *args], capture_output=True, text=True, timeout=60)


# --- ABAC -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def abac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    d = tmp_path_factory.mktemp("abac")
    (d / "policy.jsonl").write_text(POLICY)
    c = Cluster(d / "data", ["--authorization-mode", "ABAC", "--authorization-policy-file",
                             str(d / "policy.jsonl")]).start()
    c.ok("create", "namespace", "team-a", kubeconfig=super_admin(c))
    yield c
    c.stop()


def test_abac_decides(abac: Cluster) -> None:
    alice, bob = abac.kubeconfig_for("alice"), abac.kubeconfig_for("bob")
    abac.ok("-n", "team-a", "create", "configmap", "cm", "--from-literal=a=b", kubeconfig=alice)
    assert "cm" in abac.ok("-n", "team-a", "get", "configmaps", kubeconfig=bob)
    r = abac.kubectl("-n", "team-a", "delete", "configmap", "cm", kubeconfig=bob)
    assert r.code == 1 and r.stderr.strip() == (
        'Error from server (Forbidden): configmaps "cm" is forbidden: User "bob" cannot delete resource '
        '"configmaps" in API group "" in the namespace "team-a": No policy matched.')
    # bob's line names team-a only
    status, _, body = abac.request("GET", "/api/v1/namespaces/default/pods", user=abac.user_cert("bob"))
    assert (status, body) == (403, forbidden("pods", 'pods is forbidden: User "bob" cannot list resource "pods" in '
                                                     'API group "" in the namespace "default": No policy matched.'))
    # the legacy v0 line: configmaps in every namespace (and every API group), nothing else
    legacy = abac.kubeconfig_for("legacy")
    abac.ok("-n", "default", "create", "configmap", "l", "--from-literal=a=b", kubeconfig=legacy)
    assert abac.kubectl("-n", "default", "get", "secrets", kubeconfig=legacy).code == 1
    assert abac.kubectl("get", "namespaces").code == 1  # admin.conf is bound by RBAC only, not in this chain
    # the example file's group lines: any authenticated or anonymous client may read non-resource paths
    assert abac.curl("/version", admin=False).code == 200
    assert abac.curl("/api/v1/namespaces", admin=False).code == 403
    assert abac.request("POST", "/version", {}, user=abac.user_cert("carol"))[0] == 403


def test_abac_can_i(abac: Cluster) -> None:
    bob = abac.kubeconfig_for("bob")
    assert abac.ok("-n", "team-a", "auth", "can-i", "watch", "deployments.apps", kubeconfig=bob) == "yes\n"
    r = abac.kubectl("-n", "team-a", "auth", "can-i", "create", "pods", kubeconfig=bob)
    assert (r.code, r.stdout) == (1, "no - No policy matched.\n")
    assert abac.ok("auth", "can-i", "get", "/healthz", kubeconfig=bob) == "yes\n"
    # SelfSubjectRulesReview from the policy lines: bob's read-only line for team-a; the
    # authenticated group's non-resource line has no namespace, so upstream leaves it out.
    out = abac.ok("-n", "team-a", "auth", "can-i", "--list", kubeconfig=bob)
    assert [line.split() for line in out.splitlines()] == [
        ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"],
        ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[*]"],
        ["selfsubjectrulesreviews.authorization.k8s.io", "[]", "[]", "[*]"],
        ["*.*", "[]", "[]", "[get", "list", "watch]"]]


def test_malformed_policy_stops_startup(tmp_path: Path) -> None:
    policy = tmp_path / "policy.jsonl"
    policy.write_text(V1 % '{"user": "a", "namespace": "*", "resource": "*"}' + "\n\n"
                      '{"user": "b", "readonly": "yes"}\n')
    r = kubegate_up(tmp_path / "data", "--authorization-mode", "ABAC", "--authorization-policy-file", str(policy))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f'error: error reading policy file {policy}, line 3: {{"user": "b", "readonly": "yes"}}: '
        'json: cannot unmarshal string into Go struct field Policy.readonly of type bool')


@pytest.mark.parametrize("args,message", [
    (["--authorization-mode", "ABAC"], "authorization-mode ABAC's authorization policy file not passed"),
    (["--authorization-mode", "RBAC,Webhook"], "authorization-mode Webhook's authorization config file not passed"),
    (["--authorization-policy-file", "/p"], "cannot specify --authorization-policy-file without mode ABAC"),
    (["--authorization-webhook-config-file", "/k"],
     "cannot specify --authorization-webhook-config-file without mode Webhook"),
    (["--authorization-mode", "RBAC,Magic,RBAC"], '[authorization-mode "Magic" is not a valid mode, '
                                                  'authorization-mode ["RBAC" "Magic" "RBAC"] has mode specified '
                                                  'more than once]'),
    (["--authorization-mode", ""], "at least one authorization-mode must be passed"),
    (["--authorization-mode", "ABAC", "--authorization-policy-file", "/nonexistent/policy"],
     "open /nonexistent/policy: no such file or directory"),
])
def test_mode_validation(tmp_path_factory: pytest.TempPathFactory, args: list[str], message: str) -> None:
    r = kubegate_up(tmp_path_factory.getbasetemp() / "validation", *args)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == f"error: {message}"


# --- chained modes ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    d = tmp_path_factory.mktemp("chained")
    (d / "policy.jsonl").write_text(POLICY)
    c = Cluster(d / "data", ["--authorization-mode", "AlwaysDeny,ABAC,RBAC", "--authorization-policy-file",
                             str(d / "policy.jsonl")]).start()
    c.ok("create", "namespace", "team-a", kubeconfig=super_admin(c))
    yield c
    c.stop()


def test_chain_first_allow_wins_and_reasons_join(chained: Cluster) -> None:
    # AlwaysDeny has no opinion (upstream): ABAC and RBAC after it still allow
    assert chained.request("GET", "/api/v1/namespaces/team-a/pods", user=chained.user_cert("alice"))[0] == 200
    chained.ok("create", "clusterrolebinding", "erin-view", "--clusterrole=view", "--user=erin")
    assert chained.request("GET", "/api/v1/namespaces/default/pods", user=chained.user_cert("erin"))[0] == 200
    status, _, body = chained.request("GET", "/api/v1/namespaces/default/secrets", user=chained.user_cert("erin"))
    assert (status, body) == (403, forbidden(
        "secrets", 'secrets is forbidden: User "erin" cannot list resource "secrets" in API group "" in the '
                   'namespace "default": Everything is forbidden.\nNo policy matched.'))
    # SelfSubjectRulesReview concatenates every mode's rules
    erin = chained.kubeconfig_for("erin")
    out = chained.ok("-n", "default", "auth", "can-i", "--list", kubeconfig=erin)
    assert "[get list watch]" in out and "[/healthz]" in out


# --- Webhook --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hook() -> Iterator[PolicyWebhook]:
    h = PolicyWebhook([Rule("allow", "carol is on call", user="carol"),
                       Rule("deny", "dave is suspended", user="dave", resource="pods"),
                       Rule("allow", "", path="/version")]).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def webhooked(tmp_path_factory: pytest.TempPathFactory, hook: PolicyWebhook) -> Iterator[Cluster]:
    d = tmp_path_factory.mktemp("webhook")
    c = Cluster(d / "data", ["--authorization-mode", "Node,Webhook,RBAC", "--authorization-webhook-version", "v1",
                             "--authorization-webhook-config-file", str(hook.kubeconfig(d))]).start()
    yield c
    c.stop()


def test_webhook_allows_denies_and_sees_the_review(webhooked: Cluster, hook: PolicyWebhook) -> None:
    hook.mode = "ok"
    carol = webhooked.user_cert("carol", ("oncall",))
    before = len(hook.requests)
    assert webhooked.request("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb", user=carol)[0] == 200
    # the in-process controllers' own requests reach the webhook too: look at carol's only
    mine = [i for i in range(before, len(hook.requests)) if hook.requests[i]["spec"].get("user") == "carol"]
    assert hook.requests[mine[0]] == {
        "kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "version": "v1", "resource": "pods",
                                        "labelSelector": {"requirements": [
                                            {"key": "app", "operator": "In", "values": ["web"]}]}},
                 "user": "carol", "groups": ["oncall", "system:authenticated"],
                 "extra": {"authentication.kubernetes.io/credential-id": [f"X509SHA256={fingerprint(carol[0])}"]}},
        "status": {"allowed": False}}
    assert hook.paths[mine[0]] == "/authorize?timeout=30s"
    # an authorized answer is cached (5m): the same request does not reach the webhook again
    webhooked.request("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb", user=carol)
    assert [r for r in hook.requests[before:] if r["spec"].get("user") == "carol"] == [hook.requests[mine[0]]]
    # an explicit deny wins over RBAC, which would allow dave's read
    webhooked.ok("create", "clusterrolebinding", "dave-view", "--clusterrole=view", "--user=dave")
    status, _, body = webhooked.request("GET", "/api/v1/namespaces/default/pods", user=webhooked.user_cert("dave"))
    assert (status, body) == (403, forbidden(
        "pods", 'pods is forbidden: User "dave" cannot list resource "pods" in API group "" in the namespace '
                '"default": dave is suspended'))
    # non-resource requests are reviewed as such
    assert webhooked.request("GET", "/version", user=webhooked.user_cert("erin"))[0] == 200
    erin = [r for r in hook.requests if r["spec"].get("user") == "erin"]
    assert erin[-1]["spec"]["nonResourceAttributes"] == {"path": "/version", "verb": "get"}


def test_webhook_can_i(webhooked: Cluster, hook: PolicyWebhook) -> None:
    hook.mode = "ok"
    carol, dave = webhooked.kubeconfig_for("carol"), webhooked.kubeconfig_for("dave")
    assert webhooked.ok("auth", "can-i", "delete", "nodes", kubeconfig=carol) == "yes\n"
    r = webhooked.kubectl("-n", "default", "auth", "can-i", "get", "pods", kubeconfig=dave)
    assert (r.code, r.stdout) == (1, "no - dave is suspended\n")
    r = webhooked.kubectl("-n", "default", "auth", "can-i", "--list", kubeconfig=carol)
    assert r.code == 0
    assert "the list may be incomplete: webhook authorizer does not support user rule resolution" in r.stderr


def test_webhook_failures(webhooked: Cluster, hook: PolicyWebhook) -> None:
    frank = webhooked.user_cert("frank")
    webhooked.ok("create", "rolebinding", "grace-view", "--clusterrole=view", "--user=grace", "-n", "default")
    try:
        for mode, error in (("garbage", "couldn't get version/kind; json parse error: "),
                            ("bad-type", "json: cannot unmarshal string into Go struct field "
                                         "SubjectAccessReviewStatus.status.allowed of type bool")):
            hook.mode = mode
            # nothing else allows: the evaluation error is upstream's plain-text 500
            status, headers, body = webhooked.request("GET", "/api/v1/namespaces/default/pods?limit=5", user=frank)
            assert status == 500 and headers["Content-Type"] == "text/plain; charset=utf-8"
            assert body.startswith(f'Internal Server Error: "/api/v1/namespaces/default/pods?limit=5": {error}')
            # the chain goes on: RBAC still allows grace
            status, _, _ = webhooked.request("GET", "/api/v1/namespaces/default/pods",
                                             user=webhooked.user_cert("grace"))
            assert status == 200
            # an access review reports the failure as its evaluationError
            status, _, sar = webhooked.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": "frank", "resourceAttributes": {"verb": "get", "resource": "nodes"}}})
            assert status == 201 and sar["status"]["allowed"] is False
            assert sar["status"]["evaluationError"].startswith(error)
        hook.mode = "500"  # retried with upstream's backoff (5 attempts), then the same failure path
        status, _, body = webhooked.request("GET", "/api/v1/nodes", user=frank)
        assert status == 500 and body.endswith(
            ': an error on the server ("policy engine exploded") has prevented the request from succeeding\n')
    finally:
        hook.mode = "ok"


def test_unreachable_webhook(tmp_path: Path) -> None:
    down = PolicyWebhook()  # never started
    c = Cluster(tmp_path / "data", ["--authorization-mode", "Webhook,RBAC", "--authorization-webhook-config-file",
                                    str(down.kubeconfig(tmp_path, server="https://127.0.0.1:1/authorize"))]).start()
    try:
        status, _, body = c.request("GET", "/api/v1/namespaces/default/pods", user=c.user_cert("frank"))
        assert status == 500 and body.startswith(
            'Internal Server Error: "/api/v1/namespaces/default/pods": Post "https://127.0.0.1:1/authorize?timeout=30s": ')
        assert c.request("GET", "/api/v1/namespaces", user="admin")[0] == 200  # RBAC after it still allows
    finally:
        c.stop()


def test_bad_webhook_configuration_stops_startup(tmp_path: Path) -> None:
    kubeconfig = PolicyWebhook().kubeconfig(tmp_path, server="https://127.0.0.1:1/authorize")
    r = kubegate_up(tmp_path / "data", "--authorization-mode", "Webhook", "--authorization-webhook-config-file",
                    str(kubeconfig), "--authorization-webhook-version", "v2")
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == (
        'error: unsupported webhook authorizer version "v2", supported versions are [v1 v1beta1]')
    r = kubegate_up(tmp_path / "data", "--authorization-mode", "Webhook", "--authorization-webhook-config-file",
                    str(tmp_path / "missing.kubeconfig"))
    assert r.returncode == 1 and "missing.kubeconfig" in r.stderr.strip().splitlines()[-1]


# --- v1beta1 SubjectAccessReview --------------------------------------------------------------------------

V1BETA1_SAR = """apiVersion: authorization.k8s.io/v1beta1
kind: SubjectAccessReview
spec:
  user: jane
  group: [%s]
  resourceAttributes: {namespace: default, verb: get, resource: pods}
"""


def test_v1beta1_subject_access_review(cluster: Cluster) -> None:
    create = ("create", "-o", "json", "-f", "-")
    allowed = json.loads(cluster.ok(*create, input=V1BETA1_SAR % "system:masters"))
    assert allowed["apiVersion"] == "authorization.k8s.io/v1beta1"
    assert allowed["spec"]["group"] == ["system:masters"] and allowed["status"] == {"allowed": True}
    denied = json.loads(cluster.ok(*create, input=V1BETA1_SAR % "nobody"))
    assert denied["status"] == {"allowed": False}
    r = cluster.kubectl(*create, input=V1BETA1_SAR.replace("  user: jane\n", "") % "")
    assert r.code == 1 and "at least one of user or group must be specified" in r.stderr
    # v1 stays the preferred version
    _, _, group = cluster.request("GET", "/apis/authorization.k8s.io")
    assert group["preferredVersion"] == {"groupVersion": "authorization.k8s.io/v1", "version": "v1"}
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    _, _, resources = cluster.request("GET", "/apis/authorization.k8s.io/v1beta1")
    assert [r["name"] for r in resources["resources"]] == ["subjectaccessreviews"]


# --- kubectl auth can-i against upstream's recordings ---------------------------------------------------------

@pytest.fixture(scope="module")
def golden_authz(cluster: Cluster) -> str:
    """golden-authz / golden-authz-view as the recording had them; returns alice's kubeconfig."""
    for ns in ("golden-authz", "golden-authz-view"):
        if cluster.kubectl("get", "namespace", ns).code != 0:
            cluster.ok("create", "namespace", ns)
    cluster.ok("apply", "-f", "-", input="""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: golden-authz}
rules:
- {apiGroups: [""], resources: [pods, pods/log], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [configmaps], resourceNames: [app-config], verbs: [get, update]}
- {apiGroups: [apps], resources: [deployments], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-pod-reader, namespace: golden-authz}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: developers-view, namespace: golden-authz-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: developers}]
""")
    return cluster.kubeconfig_for("alice", ("developers",))


@pytest.mark.parametrize("name", ["kubectl-auth-can-i-yes", "kubectl-auth-can-i-no", "kubectl-auth-can-i-list-alice",
                                  "kubectl-auth-can-i-list-alice-default",
                                  "kubectl-auth-can-i-list-alice-group-view"])
@pytest.mark.parametrize("how", ["own-identity", "impersonated"])
def test_can_i_matches_upstream(cluster: Cluster, golden_authz: str, name: str, how: str) -> None:
    g = golden(f"authz/{name}.txt.json")
    args = g["request"]["command"].split()[1:]
    if how == "own-identity":
        r = cluster.kubectl(*args, kubeconfig=golden_authz)
    else:
        r = cluster.kubectl(*args, "--as", "alice", "--as-group", "developers")
    assert (r.code, r.stdout, r.stderr) == (g["response"]["exit_code"], g["response"]["stdout"],
                                            g["response"]["stderr"])


@pytest.mark.parametrize("args,code,out", [
    (["get", "pods", "--subresource=log", "-n", "golden-authz"], 0, "yes\n"),
    (["get", "pods", "--subresource=exec", "-n", "golden-authz"], 1, "no\n"),
    (["update", "configmaps/app-config", "-n", "golden-authz"], 0, "yes\n"),
    (["update", "configmaps/other", "-n", "golden-authz"], 1, "no\n"),
    (["list", "services", "-n", "golden-authz-view"], 0, "yes\n"),
    (["list", "pods", "-n", "default"], 1, "no\n"),
    (["get", "/healthz"], 0, "yes\n"),
    (["get", "/metrics"], 1, "no\n"),
])
def test_can_i_variants(cluster: Cluster, golden_authz: str, args: list[str], code: int, out: str) -> None:
    r = cluster.kubectl("auth", "can-i", *args, kubeconfig=golden_authz)
    assert (r.code, r.stdout) == (code, out), r.stderr
    r = cluster.kubectl("auth", "can-i", *args, "--as", "alice", "--as-group", "developers")
    assert (r.code, r.stdout) == (code, out), r.stderr
