"""The authenticating proxy and impersonation on a real server, driven by curl and kubectl, compared
with upstream's captured responses."""
from __future__ import annotations

import json
import subprocess
from typing import Any, Iterator

import pytest

from kubegate.pki import certs
from tests.e2e.cluster import Cluster, golden

PROXY_FLAGS = ["--requestheader-allowed-names", "front-proxy-client",
               "--requestheader-username-headers", "X-Remote-User",
               "--requestheader-uid-headers", "X-Remote-Uid",
               "--requestheader-group-headers", "X-Remote-Group",
               "--requestheader-extra-headers-prefix", "X-Remote-Extra-"]
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SSR_BODY = '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'


@pytest.fixture(scope="module")
def kg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One server with kubeadm's front-proxy flags (the CA file is written by `up`'s init)."""
    data = tmp_path_factory.mktemp("kg-proxy") / "data"
    c = Cluster(data, ["--requestheader-client-ca-file", str(data / "pki" / "front-proxy-ca.crt"), *PROXY_FLAGS])
    c.start()
    c.ok("create", "namespace", "golden-imp")
    yield c
    c.stop()


def front_proxy_pair(c: Cluster, cn: str = "front-proxy-client") -> tuple[str, str]:
    """kubeadm's front-proxy-client, or another certificate from the front-proxy CA."""
    pki = c.data_dir / "pki"
    if cn == "front-proxy-client":
        return str(pki / "front-proxy-client.crt"), str(pki / "front-proxy-client.key")
    ca_cert, ca_key = certs.load_pair(pki / "front-proxy-ca.crt", pki / "front-proxy-ca.key")
    key = certs.new_key("ecdsa")
    crt_path, key_path = c.data_dir.parent / f"{cn}.crt", c.data_dir.parent / f"{cn}.key"
    crt_path.write_bytes(certs.cert_pem(certs.issue(ca_cert, ca_key, cn=cn, client=True, key=key)))
    key_path.write_bytes(certs.key_pem(key))
    return str(crt_path), str(key_path)


def curl(c: Cluster, path: str, *args: str, pair: tuple[str, str] | None = None) -> tuple[int, Any]:
    r = c.curl(path, *args, user=pair, admin=False)
    try:
        return r.code, json.loads(r.stdout)
    except ValueError:
        return r.code, r.stdout


def whoami(c: Cluster, *headers: str, pair: tuple[str, str] | None = None) -> tuple[int, Any]:
    args = ["-X", "POST", "-H", "Content-Type: application/json", "-d", SSR_BODY]
    for h in headers:
        args += ["-H", h]
    code, body = curl(c, SSR, *args, pair=pair)
    return code, body["status"]["userInfo"] if code == 201 else body


PROXY_IDENTITY = ("X-Remote-User: alice", "X-Remote-Uid: 42", "X-Remote-Group: developers",
                  "X-Remote-Group: qa", "X-Remote-Extra-Acme.com%2Fproject: p1", "X-Remote-Extra-Scopes: view")


# -- the authenticating proxy -------------------------------------------------------------------

def test_front_proxy_certificate_makes_the_headers_the_identity(kg: Cluster) -> None:
    code, user = whoami(kg, *PROXY_IDENTITY, pair=front_proxy_pair(kg))
    assert code == 201
    assert user == {"username": "alice", "uid": "42", "groups": ["developers", "qa", "system:authenticated"],
                    "extra": {"acme.com/project": ["p1"], "scopes": ["view"]}}


def test_trusted_proxy_groups_decide_authorization(kg: Cluster) -> None:
    pair = front_proxy_pair(kg)
    code, body = curl(kg, "/api/v1/namespaces/golden-imp/configmaps", "-H", "X-Remote-User: alice", pair=pair)
    assert code == 403 and body["message"].startswith('configmaps is forbidden: User "alice" cannot list')
    code, body = curl(kg, "/api/v1/namespaces/golden-imp/configmaps", "-H", "X-Remote-User: alice",
                      "-H", "X-Remote-Group: system:masters", pair=pair)
    assert code == 200 and body["kind"] == "ConfigMapList"


def test_headers_from_a_normal_client_certificate_are_ignored(kg: Cluster) -> None:
    code, user = whoami(kg, *PROXY_IDENTITY, "X-Remote-Group: system:masters", pair=kg.user_cert("mallory"))
    assert code == 201
    assert user["username"] == "mallory" and user["groups"] == ["system:authenticated"]
    assert "extra" not in user or "scopes" not in user["extra"]


def test_headers_without_a_certificate_are_ignored(kg: Cluster) -> None:
    code, body = curl(kg, "/api/v1/namespaces", "-H", "X-Remote-User: kubernetes-admin",
                      "-H", "X-Remote-Group: system:masters")
    assert code == 403
    assert body["message"] == ('namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" '
                               'in API group "" at the cluster scope')


def test_proxy_certificate_with_a_cn_not_allowed_is_refused(kg: Cluster) -> None:
    code, body = curl(kg, "/api/v1/namespaces", "-H", "X-Remote-User: alice",
                      "-H", "X-Remote-Group: system:masters", pair=front_proxy_pair(kg, "rogue-proxy"))
    assert code == 401
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_proxy_certificate_without_a_username_header_is_refused(kg: Cluster) -> None:
    # The proxy's own certificate is not from --client-ca-file, so it is no identity by itself.
    code, _ = curl(kg, "/api/v1/namespaces", "-H", "X-Remote-Group: system:masters", pair=front_proxy_pair(kg))
    assert code == 401


def test_blank_header_flag_stops_the_server(fresh_cluster: Cluster) -> None:
    fresh_cluster.extra_args = ["--requestheader-client-ca-file", str(fresh_cluster.data_dir / "pki/front-proxy-ca.crt"),
                                "--requestheader-username-headers", "X-Remote-User, "]
    with pytest.raises(RuntimeError, match="exited early"):
        fresh_cluster.start()
    assert 'error: empty value in "requestheader-username-headers"' in fresh_cluster.log.read_text()


def test_proxy_flags_are_off_by_default(cluster: Cluster) -> None:
    pki = cluster.data_dir / "pki"
    pair = (str(pki / "front-proxy-client.crt"), str(pki / "front-proxy-client.key"))
    code, _ = curl(cluster, "/api/v1/namespaces", "-H", "X-Remote-User: alice", pair=pair)
    assert code == 401


# -- impersonation: upstream's captured exchanges, replayed as the admin --------------------------

ADMIN_GOLDENS = ["admin-as-alice-list-pods.json", "admin-as-alice-selfsubjectreview.json",
                 "admin-as-anonymous.json", "admin-as-node.json", "admin-as-serviceaccount-list.json",
                 "admin-as-serviceaccount.json", "admin-as-user-in-masters-group.json",
                 "admin-as-user-uid-extra.json", "admin-as-user-with-groups.json",
                 "admin-impersonate-group-only.json", "admin-uid-without-user.json"]


def replay(c: Cluster, name: str, pair: tuple[str, str] | str = "admin") -> None:
    """Send a golden's request (headers and all) and compare status, body and nosniff with upstream."""
    g = golden(f"impersonation/{name}")
    req, want = g["request"], g["response"]
    args = ["-X", req["method"]]
    for k, v in req["headers"].items():
        for value in v if isinstance(v, list) else [v]:
            args += ["-H", f"{k}: {value}"]
    if req["body"] is not None:
        args += ["-d", json.dumps(req["body"])]
    r = subprocess.run(["curl", "-sS", "-i", "--cacert", c.ca, *_cert_args(c, pair), *args, c.url + req["path"]],
                       capture_output=True, text=True, timeout=30)
    head, _, body = r.stdout.partition("\n\n")  # text mode has turned CRLF into LF
    status = int(head.split()[1])
    got = json.loads(body)
    for doc in (got, want["body"]):
        doc.get("metadata", {}).pop("creationTimestamp", None)
        doc.get("metadata", {}).pop("resourceVersion", None)
    assert (status, got) == (want["status"], want["body"]), name
    nosniff = "x-content-type-options: nosniff" in head.lower()
    assert nosniff == ("X-Content-Type-Options" in want["headers"]), name


def _cert_args(c: Cluster, pair: tuple[str, str] | str) -> list[str]:
    crt, key = c.admin_pair() if pair == "admin" else pair
    return ["--cert", crt, "--key", key]


@pytest.mark.parametrize("name", ADMIN_GOLDENS)
def test_admin_impersonation_matches_upstream(kg: Cluster, name: str) -> None:
    replay(kg, name)


def test_empty_impersonate_user_is_no_impersonation(kg: Cluster) -> None:
    code, user = whoami(kg, "Impersonate-User;", pair=kg.admin_pair())
    assert code == 201 and user["username"] == "kubernetes-admin"


def test_empty_group_without_user_is_400(kg: Cluster) -> None:
    code, body = whoami(kg, "Impersonate-Group;", pair=kg.admin_pair())
    assert (code, body["message"]) == (400, 'requested &user.DefaultInfo{Name:"", UID:"", Groups:[]string{""}, '
                                             'Extra:map[string][]string(nil)} without impersonating a user name')


# -- impersonation with kubectl ------------------------------------------------------------------

def test_kubectl_as_as_group_as_uid(kg: Cluster) -> None:
    out = json.loads(kg.ok("auth", "whoami", "-o", "json", "--as", "alice", "--as-group", "developers",
                           "--as-group", "golden-auditors", "--as-uid", "alice-uid-1234"))
    assert out["status"]["userInfo"] == {"username": "alice", "uid": "alice-uid-1234",
                                         "groups": ["developers", "golden-auditors", "system:authenticated"]}
    r = kg.kubectl("get", "pods", "-n", "default", "--as", "alice")
    assert r.code == 1
    assert r.stderr.strip() == "Error from server (Forbidden): " + \
        golden("impersonation/admin-as-alice-list-pods.json")["response"]["body"]["message"]
    assert kg.ok("auth", "whoami", "--as", "system:serviceaccount:golden-imp:default").split() == [
        "ATTRIBUTE", "VALUE", "Username", "system:serviceaccount:golden-imp:default",
        "Groups", "[system:serviceaccounts", "system:serviceaccounts:golden-imp", "system:authenticated]"]
    assert kg.ok("auth", "can-i", "list", "pods", "-n", "golden-imp", "--as", "someone",
                 "--as-group", "system:masters").strip() == "yes"


def error_of(name: str) -> str:
    return "Error from server (Forbidden): " + golden(f"impersonation/{name}")["response"]["body"]["message"]


def test_kubectl_alice_impersonating_bob_with_and_without_permission(kg: Cluster) -> None:
    alice = kg.kubeconfig_for("alice", ("developers",))
    # alice has never impersonated: the constrained user-info check is the first error, as upstream
    r = kg.kubectl("get", "pods", "-n", "default", "--as", "bob", kubeconfig=alice)
    assert (r.code, r.stderr.strip()) == (1, error_of("alice-impersonates-bob.json"))
    r = kg.kubectl("get", "pods", "-n", "default", "--as", "alice", "--as-group", "system:masters", kubeconfig=alice)
    assert r.stderr.strip() == error_of("alice-impersonates-group.json")
    kg.ok("create", "clusterrole", "golden-impersonate-bob", "--verb=impersonate", "--resource=users",
          "--resource-name=bob")
    kg.ok("create", "clusterrolebinding", "golden-alice-impersonate-bob", "--clusterrole=golden-impersonate-bob",
          "--user=alice")
    out = json.loads(kg.ok("auth", "whoami", "-o", "json", "--as", "bob", kubeconfig=alice))
    assert out["status"]["userInfo"] == \
        golden("impersonation/alice-impersonates-bob-allowed.json")["response"]["body"]["status"]["userInfo"]
    r = kg.kubectl("get", "pods", "-n", "default", "--as", "bob", kubeconfig=alice)
    assert r.stderr.strip() == error_of("alice-impersonates-bob-list-pods.json")
    # (kubectl auth whoami rewrites a 403 into its own text, so these go through kubectl get)
    r = kg.kubectl("get", "pods", "--as", "carol", kubeconfig=alice)
    assert r.stderr.strip() == error_of("alice-impersonates-carol.json")
    r = kg.kubectl("get", "pods", "--as", "bob", "--as-group", "developers", kubeconfig=alice)
    assert r.stderr.strip() == error_of("alice-impersonates-bob-with-group.json")
    kg.ok("delete", "clusterrolebinding", "golden-alice-impersonate-bob")
    r = kg.kubectl("get", "pods", "-n", "default", "--as", "bob", kubeconfig=alice)
    assert r.stderr.strip() == error_of("alice-impersonates-bob-after-legacy-success.json")


CONSTRAINED_CAROL = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: golden-constrained-carol}
rules:
- {apiGroups: [authentication.k8s.io], resources: [users], resourceNames: [carol], verbs: ["impersonate:user-info"]}
- {apiGroups: [""], resources: [pods], verbs: ["impersonate-on:user-info:list"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: golden-bob-constrained-carol}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: golden-constrained-carol}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"""


def test_bob_service_account_then_constrained_impersonation(kg: Cluster) -> None:
    bob = kg.user_cert("bob")
    replay(kg, "bob-impersonates-serviceaccount.json", bob)
    kg.ok("apply", "-f", "-", input=CONSTRAINED_CAROL)
    for name in ("constrained-bob-as-carol-list-pods.json", "constrained-bob-as-carol-get-configmaps.json",
                 "constrained-bob-as-dave-list-pods.json"):
        replay(kg, name, bob)
