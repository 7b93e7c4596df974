"""Service-account tokens end to end: TokenRequest (kubectl create token, curl), bearer use with curl,
kubectl and the python client, TokenReview as Vault calls it, issuer discovery, legacy tokens."""
from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from kubegate.serviceaccount.claims import Ref, legacy_claims
from kubegate.serviceaccount.keys import Signer, load_signing_key
from tests.e2e.cluster import Cluster, golden

ISSUER = "https://kubernetes.default.svc"  # the goldens' cluster
TR_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_sa(c: Cluster, namespace: str) -> None:
    """Wait for the ServiceAccount controller's `default` account."""
    for _ in range(300):
        if c.kubectl("get", "serviceaccount", "default", "-n", namespace).code == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"no default ServiceAccount in {namespace}")


@pytest.fixture(scope="module")
def sa_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("kgsa") / "data",
                ["--service-account-issuer", ISSUER, "--secure-port", str(_free_port())]).start()
    c.ok("create", "namespace", "golden-authn")
    default_sa(c, "golden-authn")
    default_sa(c, "default")
    yield c
    c.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_request(c: Cluster, ns: str, sa: str, spec: dict[str, Any] | None = None,
                  **kw: Any) -> tuple[int, dict[str, str], Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec or {}}
    return c.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", body, **kw)


def new_token(c: Cluster, ns: str, sa: str, spec: dict[str, Any] | None = None) -> str:
    status, _, body = token_request(c, ns, sa, spec)
    assert status == 201, body
    return str(body["status"]["token"])


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def header_of(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def review(c: Cluster, token: str, audiences: list[str] | None = None, **kw: Any) -> tuple[int, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences is not None:
        spec["audiences"] = audiences
    status, _, body = c.request("POST", TR_PATH, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                                  "spec": spec}, **kw)
    return status, body


def without_volatile(o: Any) -> Any:
    """Drop the fields the goldens' README calls volatile (uids, times, tokens, jti)."""
    if isinstance(o, dict):
        return {k: without_volatile(v) for k, v in o.items()
                if k not in ("uid", "creationTimestamp", "managedFields", "token", "expirationTimestamp",
                             "authentication.kubernetes.io/pod-uid")}
    if isinstance(o, list):
        return [without_volatile(v) for v in o]
    if isinstance(o, str) and o.startswith("JTI="):
        return "JTI="
    return o


def assert_golden(status: int, body: Any, path: str) -> None:
    g = golden(path)["response"]
    assert status == g["status"]
    assert without_volatile(body) == without_volatile(g["body"])


# -- TokenRequest ------------------------------------------------------------------------------

def test_token_request_default_matches_golden(sa_cluster: Cluster) -> None:
    for name in ("tokenrequest-default.json", "tokenrequest-kubectl-shape.json"):
        g = golden(f"authn/{name}")
        status, _, body = sa_cluster.request("POST", g["request"]["path"], g["request"]["body"])
        assert_golden(status, body, f"authn/{name}")
        want = g["decoded_token"]
        claims = claims_of(body["status"]["token"])
        assert list(claims) == list(want["claims"])
        assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
        assert claims["kubernetes.io"]["serviceaccount"]["uid"] == body["metadata"]["uid"]
        assert list(header_of(body["status"]["token"])) == ["alg", "kid"]


def test_token_request_audiences_and_errors_match_goldens(sa_cluster: Cluster) -> None:
    for name in ("tokenrequest-audiences-expiration.json", "tokenrequest-expiration-too-short.json",
                 "tokenrequest-missing-sa.json"):
        g = golden(f"authn/{name}")
        status, _, body = sa_cluster.request("POST", g["request"]["path"], g["request"]["body"])
        assert_golden(status, body, f"authn/{name}")
    alice = sa_cluster.user_cert("alice")
    g = golden("authn/tokenrequest-forbidden-alice.json")
    status, _, body = sa_cluster.request("POST", g["request"]["path"], g["request"]["body"], user=alice)
    assert_golden(status, body, "authn/tokenrequest-forbidden-alice.json")


def test_pod_bound_3607_token_gets_a_year_and_warnafter(sa_cluster: Cluster) -> None:
    c = sa_cluster
    c.ok("run", "bound-pod", "--image=nginx", "-n", "golden-authn", "--overrides",
         json.dumps({"spec": {"serviceAccountName": "default"}}))
    pod_uid = c.ok("get", "pod", "bound-pod", "-n", "golden-authn", "-o", "jsonpath={.metadata.uid}")
    g = golden("authn/tokenrequest-bound-pod-3607.json")
    spec = json.loads(json.dumps(g["request"]["body"]["spec"]))
    spec["boundObjectRef"]["uid"] = pod_uid
    status, _, body = token_request(c, "golden-authn", "default", spec)
    assert_golden(status, body, "authn/tokenrequest-bound-pod-3607.json")
    claims = claims_of(body["status"]["token"])
    assert claims["exp"] - claims["iat"] == 365 * 24 * 3600
    assert claims["kubernetes.io"]["warnafter"] - claims["iat"] == 3607
    assert claims["kubernetes.io"]["pod"] == {"name": "bound-pod", "uid": pod_uid}
    # the token works, with the pod extras; TokenReview says the same
    _, _, ssr = c.request("POST", SSR_PATH, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                          headers=bearer(body["status"]["token"]), user=None)
    extra = ssr["status"]["userInfo"]["extra"]
    assert extra["authentication.kubernetes.io/pod-uid"] == [pod_uid]
    status, tr = review(c, body["status"]["token"])
    assert_golden(status, tr, "authn/tokenreview-pod-bound-token.json")

    g = golden("authn/tokenrequest-bound-pod-uid-mismatch.json")
    status, _, body = c.request("POST", g["request"]["path"], g["request"]["body"])
    assert_golden(status, body, "authn/tokenrequest-bound-pod-uid-mismatch.json")
    status, _, body = token_request(c, "golden-authn", "default",
                                    {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}})
    assert (status, body["message"]) == (400, "cannot bind token to object of type /v1, Kind=ConfigMap")


def test_kubectl_create_token_then_curl(sa_cluster: Cluster, tmp_path: Path) -> None:
    c = sa_cluster
    c.ok("create", "namespace", "sa-curl")
    c.ok("create", "serviceaccount", "robot", "-n", "sa-curl")
    token = c.ok("create", "token", "robot", "-n", "sa-curl", "--duration", "20m", "--audience", ISSUER).strip()
    claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 1200 and claims["aud"] == [ISSUER]
    r = c.curl("/api/v1/namespaces/sa-curl/configmaps", "-H", f"Authorization: Bearer {token}", admin=False)
    assert r.code == 403
    assert json.loads(r.stdout)["message"] == ('configmaps is forbidden: User "system:serviceaccount:sa-curl:robot" '
                                              'cannot list resource "configmaps" in API group "" in the namespace '
                                              '"sa-curl"')
    c.ok("create", "rolebinding", "robot-view", "--clusterrole=view", "--serviceaccount=sa-curl:robot", "-n", "sa-curl")
    r = c.curl("/api/v1/namespaces/sa-curl/configmaps", "-H", f"Authorization: Bearer {token}", admin=False)
    assert r.code == 200 and json.loads(r.stdout)["kind"] == "ConfigMapList"
    # a pod-bound token from kubectl
    c.ok("run", "p1", "--image=nginx", "-n", "sa-curl", "--overrides",
         json.dumps({"spec": {"serviceAccountName": "robot"}}))
    bound = c.ok("create", "token", "robot", "-n", "sa-curl", "--bound-object-kind", "Pod",
                 "--bound-object-name", "p1").strip()
    assert claims_of(bound)["kubernetes.io"]["pod"]["name"] == "p1"
    r = c.kubectl("create", "token", "robot", "-n", "sa-curl", "--duration", "5m")
    assert r.code != 0 and "may not specify a duration less than 10 minutes" in r.stderr

    # kubectl with a kubeconfig holding the token: auth whoami
    kc = yaml.safe_load(Path(c.admin_conf).read_text())
    kc["users"] = [{"name": "robot", "user": {"token": token}}]
    kc["contexts"][0]["context"]["user"] = "robot"
    conf = tmp_path / "robot.conf"
    conf.write_text(yaml.safe_dump(kc))
    out = json.loads(c.ok("auth", "whoami", "-o", "json", kubeconfig=str(conf)))
    info = out["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:sa-curl:robot"
    assert info["groups"] == ["system:serviceaccounts", "system:serviceaccounts:sa-curl", "system:authenticated"]
    assert info["extra"] == {"authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"]}
    assert "cm" not in c.ok("get", "configmaps", "-n", "sa-curl", kubeconfig=str(conf))


def test_python_client_with_a_token(sa_cluster: Cluster) -> None:
    from kubernetes import client
    c = sa_cluster
    c.ok("create", "namespace", "sa-py")
    c.ok("create", "serviceaccount", "py", "-n", "sa-py")
    c.ok("create", "rolebinding", "py-edit", "--clusterrole=edit", "--serviceaccount=sa-py:py", "-n", "sa-py")
    cfg = client.Configuration()
    cfg.host = c.url
    cfg.ssl_ca_cert = c.ca
    cfg.api_key = {"authorization": "Bearer " + new_token(c, "sa-py", "py")}
    with client.ApiClient(cfg) as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map("sa-py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm1")))
        names = [cm.metadata.name for cm in core.list_namespaced_config_map("sa-py").items]
        assert "cm1" in names and set(names) <= {"cm1", "kube-root-ca.crt"}  # the root CA publisher's may be there
        with pytest.raises(client.ApiException) as e:
            core.list_namespaced_config_map("default")
        assert e.value.status == 403


def test_revoked_tokens_are_rejected(sa_cluster: Cluster) -> None:
    """Tokens never used before (so not in the 10 s success cache) of a deleted SA or bound Secret."""
    c = sa_cluster
    c.ok("create", "namespace", "sa-revoke")
    c.ok("create", "serviceaccount", "gone", "-n", "sa-revoke")
    c.ok("create", "secret", "generic", "anchor", "-n", "sa-revoke")
    secret_uid = c.ok("get", "secret", "anchor", "-n", "sa-revoke", "-o", "jsonpath={.metadata.uid}")
    plain = new_token(c, "sa-revoke", "gone")
    secret_bound = new_token(c, "sa-revoke", "gone", {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1",
                                                                         "name": "anchor", "uid": secret_uid}})
    c.ok("delete", "secret", "anchor", "-n", "sa-revoke")
    ssr = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    status, headers, body = c.request("POST", SSR_PATH, ssr, headers=bearer(secret_bound), user=None)
    assert (status, body) == (401, golden("authn/401-sa-token-bound-object-deleted.json")["response"]["body"])
    assert "WWW-Authenticate" not in headers
    _, tr = review(c, secret_bound)
    assert tr["status"] == {"user": {}, "error": "[invalid bearer token, service account token has been invalidated]"}
    c.ok("delete", "serviceaccount", "gone", "-n", "sa-revoke")
    status, _, body = c.request("POST", SSR_PATH, ssr, headers=bearer(plain), user=None)
    assert status == 401 and body["message"] == "Unauthorized"


def test_wrong_audience_and_forged_tokens_get_401(sa_cluster: Cluster) -> None:
    c = sa_cluster
    vault = new_token(c, "default", "default", {"audiences": ["vault", "https://example.com"]})
    g = golden("authn/401-sa-token-wrong-audience.json")
    status, _, body = c.request("POST", SSR_PATH, g["request"]["body"], headers=bearer(vault), user=None)
    assert (status, body) == (401, g["response"]["body"])
    good = new_token(c, "default", "default")
    head, payload, sig = good.split(".")
    for bad in (f"{head}.{payload}.{sig[::-1]}", good[:-20], good + "x" * 30000,
                f"{head}.{payload.replace('d', 'e', 1)}.{sig}"):
        status, _, body = c.request("GET", "/api/v1/namespaces", headers=bearer(bad), user=None)
        assert (status, body["message"]) == (401, "Unauthorized")


# -- TokenReview, as Vault's Kubernetes auth method calls it -------------------------------------

def test_token_review_like_vault(sa_cluster: Cluster) -> None:
    c = sa_cluster
    c.ok("create", "namespace", "vault")
    c.ok("create", "serviceaccount", "vault-auth", "-n", "vault")
    c.ok("create", "clusterrolebinding", "vault-tokenreview", "--clusterrole=system:auth-delegator",
         "--serviceaccount=vault:vault-auth")
    reviewer = new_token(c, "vault", "vault-auth")
    valid = new_token(c, "default", "default")
    vault_aud = new_token(c, "default", "default", {"audiences": ["vault", "https://example.com"],
                                                    "expirationSeconds": 600})
    cases = [("tokenreview-valid-sa-token.json", valid, None),
             ("tokenreview-custom-audience.json", vault_aud, ["vault"]),
             ("tokenreview-audience-mismatch.json", valid, ["other"]),
             ("tokenreview-garbage-token.json", "garbage", None), ("tokenreview-empty-token.json", "", None)]
    for name, token, audiences in cases:
        status, body = review(c, token, audiences, headers=bearer(reviewer), user=None)
        g = golden(f"authn/{name}")["response"]
        expected = json.loads(json.dumps(g["body"]).replace("https://kubernetes.default.svc", ISSUER))
        if name == "tokenreview-garbage-token.json":
            expected["spec"]["token"] = "garbage"
        assert status == g["status"], (name, body)
        assert without_volatile(body) == without_volatile(expected), name
    # Vault's exact request: curl with the reviewer JWT and a JSON body
    r = c.curl(TR_PATH, "-X", "POST", "-H", f"Authorization: Bearer {reviewer}", "-H", "Content-Type: application/json",
               "-d", json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                 "spec": {"token": valid}}), admin=False)
    assert r.code == 201 and json.loads(r.stdout)["status"]["authenticated"] is True
    bob = c.user_cert("bob")
    g = golden("authn/tokenreview-forbidden-bob.json")
    status, body = review(c, "garbage", user=bob)
    assert (status, body) == (403, g["response"]["body"])


# -- issuer discovery --------------------------------------------------------------------------

def test_issuer_discovery(sa_cluster: Cluster) -> None:
    c = sa_cluster
    for path, name in (("/.well-known/openid-configuration", "well-known-openid-configuration.anonymous.json"),
                       ("/openid/v1/jwks", "openid-v1-jwks.anonymous.json")):
        status, _, body = c.request("GET", path, user=None)
        assert (status, body) == (403, golden(f"discovery/{name}")["response"]["body"])
    g = golden("discovery/well-known-openid-configuration.json")["response"]
    status, headers, body = c.request("GET", "/.well-known/openid-configuration")
    assert status == 200 and headers["Cache-Control"] == "public, max-age=3600"
    assert headers["Content-Type"] == "application/json"
    assert body == dict(g["body"], jwks_uri=f"https://127.0.0.1:{c.port}/openid/v1/jwks")
    sa_pub = (c.data_dir / "pki" / "sa.pub").read_bytes()
    status, headers, jwks = c.request("GET", "/openid/v1/jwks", headers={"Accept": "application/jwk-set+json"})
    assert status == 200 and headers["Content-Type"] == "application/jwk-set+json"
    assert headers["Cache-Control"] == "public, max-age=3600"
    key = jwks["keys"][0]
    assert list(key) == ["use", "kty", "kid", "alg", "n", "e"]
    assert key["kid"] == header_of(new_token(c, "default", "default"))["kid"]
    r = c.curl("/openid/v1/jwks", "-H", "Accept:", "-D", "-")  # no Accept header at all
    assert r.code == 200 and "content-type: application/jwk-set+json" in r.stdout.lower()
    assert json.loads(r.stdout.split("\n\n", 1)[1]) == jwks
    from kubegate.serviceaccount.keys import jwk, public_keys_from_pem
    assert jwks == {"keys": [jwk(public_keys_from_pem(sa_pub, "sa.pub")[0])]}
    status, _, body = c.request("GET", "/openid/v1/jwks", headers={"Accept": "application/json"})
    assert (status, body) == (406, golden("discovery/openid-v1-jwks.json")["response"]["body"])
    # service accounts may read it (system:service-account-issuer-discovery binds system:serviceaccounts)
    token = new_token(c, "default", "default")
    r = c.curl("/.well-known/openid-configuration", "-H", f"Authorization: Bearer {token}", admin=False)
    assert r.code == 200 and json.loads(r.stdout)["issuer"] == ISSUER
    # and anyone, once the cluster admin binds the role to unauthenticated users
    c.ok("create", "clusterrolebinding", "oidc-reviewer", "--clusterrole=system:service-account-issuer-discovery",
         "--group=system:unauthenticated")
    status, _, body = c.request("GET", "/openid/v1/jwks", headers={"Accept": "application/jwk-set+json"}, user=None)
    assert status == 200 and body == jwks
    c.ok("delete", "clusterrolebinding", "oidc-reviewer")


# -- legacy Secret-based tokens ----------------------------------------------------------------

def test_legacy_secret_token(sa_cluster: Cluster) -> None:
    c = sa_cluster
    c.ok("create", "namespace", "golden-sa")
    default_sa(c, "golden-sa")
    sa_uid = c.ok("get", "sa", "default", "-n", "golden-sa", "-o", "jsonpath={.metadata.uid}")
    signer = Signer(load_signing_key(str(c.data_dir / "pki" / "sa.key")))
    token = signer.sign(legacy_claims("golden-sa", Ref("default", sa_uid), "legacy-token"))
    ssr = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    status, _, _ = c.request("POST", SSR_PATH, ssr, headers=bearer(token), user=None)
    assert status == 401  # no Secret holds it yet
    c.ok("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "legacy-token", "namespace": "golden-sa",
                     "annotations": {"kubernetes.io/service-account.name": "default",
                                     "kubernetes.io/service-account.uid": sa_uid}},
        "data": {"token": base64.b64encode(token.encode()).decode()}}))
    status, _, body = c.request("POST", SSR_PATH, ssr, headers=bearer(token), user=None)
    g = golden("serviceaccounts/selfsubjectreview-legacy-token.json")["response"]
    assert status == 201 and without_volatile(body) == without_volatile(g["body"])
    today = time.strftime("%Y-%m-%d", time.gmtime())
    for _ in range(50):  # the last-used label is written in the background, as upstream
        labels = json.loads(c.ok("get", "secret", "legacy-token", "-n", "golden-sa", "-o", "json"))["metadata"]
        if (labels.get("labels") or {}).get("kubernetes.io/legacy-token-last-used") == today:
            break
        time.sleep(0.1)
    else:
        pytest.fail("legacy token Secret did not get the last-used label")


# -- flags -------------------------------------------------------------------------------------

def test_max_expiration_extension_off_and_jwks_uri_flags(fresh_cluster: Cluster) -> None:
    c = fresh_cluster
    c.extra_args = ["--service-account-max-token-expiration", "2h", "--service-account-extend-token-expiration=false",
                    "--service-account-jwks-uri", "https://issuer.example/keys", "--api-audiences", "api,vault"]
    c.start()
    default_sa(c, "default")
    status, headers, body = token_request(c, "default", "default", {"expirationSeconds": 86400})
    assert status == 201 and body["spec"]["expirationSeconds"] == 7200
    assert headers["Warning"] == '299 - "requested expiration of 86400 seconds shortened to 7200 seconds"'
    claims = claims_of(body["status"]["token"])
    assert claims["aud"] == ["api", "vault"] and claims["exp"] - claims["iat"] == 7200
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"  # kubeadm's default issuer
    c.ok("run", "p", "--image=nginx", "--overrides", json.dumps({"spec": {"serviceAccountName": "default"}}))
    claims = claims_of(new_token(c, "default", "default", {"expirationSeconds": 3607, "boundObjectRef": {
        "kind": "Pod", "apiVersion": "v1", "name": "p"}}))
    assert claims["exp"] - claims["iat"] == 3607 and "warnafter" not in claims["kubernetes.io"]
    _, _, cfg = c.request("GET", "/.well-known/openid-configuration")
    assert cfg["jwks_uri"] == "https://issuer.example/keys"
    c.stop()
    bad = Cluster(c.data_dir, ["--service-account-max-token-expiration", "30m"])
    with pytest.raises(RuntimeError, match="must be between 1 hour and 2"):
        bad.start()
