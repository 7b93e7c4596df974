"""Bad input gets upstream's Status, code and message, and nothing is written (compared with goldens)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.cluster import Cluster, golden


def _replay(cluster: Cluster, name: str, ns: str, body_override: Any = None) -> tuple[int, dict[str, str], Any, dict[str, Any]]:
    g = golden(name)
    req = g["request"]
    path = req["path"].replace("golden-errors", ns)
    body = _sub(req.get("body"), ns) if body_override is None else body_override
    raw = RAW_BODIES.get(name)
    if raw is None and isinstance(body, str):
        raw = body.encode()
        body = None
    headers = {k: v for k, v in (req.get("headers") or {}).items() if isinstance(v, str)}
    status, h, resp = cluster.request(req["method"], path, body, raw=raw, headers=headers)
    return status, h, resp, g["response"]


# Bodies the goldens record parsed (so duplicate keys are lost) or elided for size.
RAW_BODIES = {
    "errors/400-strict-unknown-field.json":
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"strict"},"data":{},"data":{},"spec":{"foo":1}}',
    "errors/422-configmap-too-large.json":
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"toolarge"},"data":{"big":"'
        + b"x" * 1153024 + b'"}}',
}


def _expect_same(resp: Any, want: Any, ns: str) -> None:
    if isinstance(want, dict):
        want = _sub(want, ns)
    assert resp == want


def _sub(v: Any, ns: str) -> Any:
    if isinstance(v, str):
        return v.replace("golden-errors", ns)
    if isinstance(v, dict):
        return {k: _sub(x, ns) for k, x in v.items()}
    if isinstance(v, list):
        return [_sub(x, ns) for x in v]
    return v


@pytest.fixture(scope="module")
def ens(cluster: Cluster) -> str:
    cluster.ok("create", "namespace", "e2e-errors")
    cluster.ok("-n", "e2e-errors", "create", "configmap", "exists", "--from-literal=k=v")
    cluster.ok("-n", "e2e-errors", "create", "configmap", "stale", "--from-literal=v=1")
    return "e2e-errors"


@pytest.mark.parametrize("name", [
    "errors/400-apiversion-mismatch.json",
    "errors/400-kind-mismatch.json",
    "errors/400-malformed-json.json",
    "errors/400-name-mismatch-put.json",
    "errors/400-namespace-mismatch.json",
    "errors/400-strict-unknown-field.json",
    "errors/400-configmap-data-not-string.json",
    "errors/400-invalid-label-selector.json",
    "errors/400-unsupported-field-selector.json",
    "errors/400-invalid-limit.json",
    "errors/404-object.json",
    "errors/404-put-missing-object.json",
    "errors/404-namespace-missing.json",
    "errors/404-unknown-resource.json",
    "errors/404-unknown-version.json",
    "errors/405-post-named.json",
    "errors/405-put-collection.json",
    "errors/405-delete-version.json",
    "errors/406-accept-xml.json",
    "errors/409-already-exists.json",
    "errors/415-post-xml.json",
    "errors/422-invalid-name.json",
    "errors/422-missing-name.json",
    "errors/422-pod-multiple-causes.json",
    "errors/422-invalid-dryrun.json",
    "errors/422-invalid-fieldvalidation.json",
    "errors/422-rvmatch-without-rv.json",
    "errors/422-secret-invalid-key.json",
    "errors/422-configmap-too-large.json",
])
def test_error_matches_golden(cluster: Cluster, ens: str, name: str) -> None:
    status, _, resp, want = _replay(cluster, name, ens)
    assert status == want["status"], resp
    _expect_same(resp, want["body"], ens)


def test_name_too_long_namespace(cluster: Cluster) -> None:
    status, _, resp, want = _replay(cluster, "errors/422-name-too-long.json", "unused")
    assert status == 422
    assert resp == want["body"]


def test_unknown_group_is_plain_404(cluster: Cluster) -> None:
    status, h, body = cluster.request("GET", "/apis/widgets.example.com/v1")
    assert status == 404 and body == "404 page not found\n"
    assert h["Content-Type"] == "text/plain; charset=utf-8"


def test_body_over_3mib_is_413_and_not_written(cluster: Cluster, ens: str) -> None:
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"k": "x" * (4 << 20)}}
    status, h, resp = cluster.request("POST", f"/api/v1/namespaces/{ens}/configmaps", big)
    assert status == 413
    assert resp["message"] == "Request entity too large: limit is 3145728"
    assert cluster.request("GET", f"/api/v1/namespaces/{ens}/configmaps/huge")[0] == 404


def test_warn_unknown_and_duplicate_fields(cluster: Cluster, ens: str) -> None:
    raw = (b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"warned"},"data":{},"data":{},'
           b'"spec":{"foo":1}}')
    status, h, resp = cluster.request("POST", f"/api/v1/namespaces/{ens}/configmaps", raw=raw)
    want = golden("errors/201-warn-unknown-field.json")["response"]
    assert status == 201
    assert h.get("Warning") == ", ".join(want["headers"]["Warning"])


def test_conflict_on_stale_resource_version(cluster: Cluster, ens: str) -> None:
    _, _, cm = cluster.request("GET", f"/api/v1/namespaces/{ens}/configmaps/stale")
    old_rv = cm["metadata"]["resourceVersion"]
    cm["data"] = {"v": "2"}
    assert cluster.request("PUT", f"/api/v1/namespaces/{ens}/configmaps/stale", cm)[0] == 200
    cm["data"] = {"v": "3"}
    cm["metadata"]["resourceVersion"] = old_rv
    status, _, resp = cluster.request("PUT", f"/api/v1/namespaces/{ens}/configmaps/stale", cm)
    assert status == 409
    assert resp == _sub(golden("errors/409-conflict-stale-resourceversion.json")["response"]["body"], ens)
    _, _, now = cluster.request("GET", f"/api/v1/namespaces/{ens}/configmaps/stale")
    assert now["data"] == {"v": "2"}


def test_dry_run_is_not_stored(cluster: Cluster, ens: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"k": "v"}}
    status, _, resp = cluster.request("POST", f"/api/v1/namespaces/{ens}/configmaps?dryRun=All", body)
    assert status == 201 and resp["metadata"]["uid"] and "resourceVersion" not in resp["metadata"]
    assert cluster.request("GET", f"/api/v1/namespaces/{ens}/configmaps/dry")[0] == 404


def test_generate_name(cluster: Cluster, ens: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    status, _, resp = cluster.request("POST", f"/api/v1/namespaces/{ens}/configmaps", body)
    assert status == 201
    name = resp["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == 9


def test_anonymous_gets_403_not_404(cluster: Cluster) -> None:
    status, _, resp = cluster.request("GET", "/no/such/path", user=None)
    assert status == 403
    assert resp == golden("errors/403-anonymous-unknown-path.json")["response"]["body"]
    status, _, resp = cluster.request("GET", "/api/v1/namespaces", user=None)
    assert status == 403
    assert resp == golden("errors/403-anonymous-list.json")["response"]["body"]


def test_client_cert_from_unknown_ca_is_401(cluster: Cluster, tmp_path: Any) -> None:
    from kubegate.pki import certs
    key = certs.new_key("ecdsa")
    ca = certs.self_signed_ca("mallory-ca", key, 1)
    leaf_key = certs.new_key("ecdsa")
    leaf = certs.issue(ca, key, cn="mallory", orgs=("system:masters",), client=True, key=leaf_key)
    crt, k = tmp_path / "m.crt", tmp_path / "m.key"
    crt.write_bytes(certs.cert_pem(leaf))
    k.write_bytes(certs.key_pem(leaf_key))
    status, _, resp = cluster.request("GET", "/api/v1/namespaces", user=(str(crt), str(k)))
    assert status == 401
    assert resp == golden("errors/401-client-cert-unknown-ca.json")["response"]["body"]


def test_long_and_oversized_authorization_headers(cluster: Cluster) -> None:
    """A 200 KiB bearer token is read and refused like any wrong token; past Go's 1 MiB header
    limit the request is refused by the parser, and its bytes never reach the server log."""
    token = "kgsecret" + "x" * 200_000
    status, _, body = cluster.request("GET", "/api", user=None, headers={"Authorization": f"Bearer {token}"})
    assert (status, body["reason"]) == (401, "Unauthorized")
    status, _, _ = cluster.request("GET", "/api", user=None,
                                   headers={"Authorization": "Bearer kgsecret" + "y" * (1 << 20)})
    assert status == 400
    assert "kgsecret" not in cluster.log.read_text()
