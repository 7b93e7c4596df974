"""/openapi/v2 in gnostic's protobuf encoding: kubectl's client-side validation of create-only kinds.

kubectl finds no PATCH operation for a review kind in OpenAPI v3, downloads /openapi/v2 as
`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, lists CRDs to rule out a custom
kind, and validates the object itself. The messages below are kubectl's own, so matching them shows kubectl read the
document as it reads upstream's.
"""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from tests.e2e.cluster import Cluster

PROTO_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

SAR_V1 = """apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: jane
  groups: [system:masters]
  resourceAttributes: {namespace: default, verb: get, resource: pods}
"""
SAR_V1BETA1 = """apiVersion: authorization.k8s.io/v1beta1
kind: SubjectAccessReview
spec:
  user: jane
  group: [system:masters]
  resourceAttributes: {namespace: default, verb: get, resource: pods}
"""
SSAR = """apiVersion: authorization.k8s.io/v1
kind: SelfSubjectAccessReview
spec:
  resourceAttributes: {namespace: default, verb: list, resource: secrets}
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_create_only_kinds_validate_on_the_client(cluster: Cluster, tmp_path: Path) -> None:
    for name, manifest in (("sar.yaml", SAR_V1), ("sar-v1beta1.yaml", SAR_V1BETA1)):
        r = cluster.kubectl("create", "-f", _write(tmp_path, name, manifest), "-v=6")
        assert (r.code, r.stdout) == (0, "subjectaccessreview.authorization.k8s.io/<unknown> created\n"), r.stderr
        assert "/openapi/v2?timeout=32s 200 OK" in r.stderr  # the protobuf document was fetched and decoded
        out = json.loads(cluster.ok("create", "-f", str(tmp_path / name), "-o", "json"))
        assert out["apiVersion"] == manifest.split("\n")[0].split(" ")[1] and out["status"]["allowed"] is True
    out = json.loads(cluster.ok("create", "-f", _write(tmp_path, "ssar.yaml", SSAR), "-o", "json"))
    assert out["kind"] == "SelfSubjectAccessReview" and out["status"]["allowed"] is True


def test_unknown_fields_are_rejected_by_kubectl(cluster: Cluster, tmp_path: Path) -> None:
    bad = _write(tmp_path, "x.yaml", SAR_V1.replace("  user: jane\n", "  user: jane\n  bogus: 1\n"))
    r = cluster.kubectl("create", "-f", bad)
    assert (r.code, r.stdout) == (1, "")
    assert r.stderr == (
        f'error: error validating "{bad}": error validating data: ValidationError(SubjectAccessReview.spec): '
        'unknown field "bogus" in io.k8s.api.authorization.v1.SubjectAccessReviewSpec; '
        "if you choose to ignore these errors, turn validation off with --validate=false\n")
    bad_beta = _write(tmp_path, "y.yaml", SAR_V1BETA1.replace("  group:", "  groups:"))
    r = cluster.kubectl("create", "-f", bad_beta)
    assert r.code == 1 and r.stderr == (
        f'error: error validating "{bad_beta}": error validating data: ValidationError(SubjectAccessReview.spec): '
        'unknown field "groups" in io.k8s.api.authorization.v1beta1.SubjectAccessReviewSpec; '
        "if you choose to ignore these errors, turn validation off with --validate=false\n")
    # it was kubectl that refused: without its validation the server drops the field (fieldValidation=Ignore)
    r = cluster.kubectl("create", "-f", bad, "--validate=false")
    assert (r.code, r.stdout) == (0, "subjectaccessreview.authorization.k8s.io/<unknown> created\n"), r.stderr


def _get(cluster: Cluster, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    ctx = ssl.create_default_context(cafile=cluster.ca)
    ctx.load_cert_chain(*cluster.admin_pair())
    req = urllib.request.Request(cluster.url + "/openapi/v2", headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_content_negotiation_and_etag(cluster: Cluster) -> None:
    code, jh, body = _get(cluster, {"Accept": "application/json"})
    assert code == 200 and jh["Content-Type"] == "application/json" and jh["Vary"] == "Accept"
    doc = json.loads(body)
    assert doc["swagger"] == "2.0" and "io.k8s.api.authorization.v1.SubjectAccessReview" in doc["definitions"]
    code, ph, proto = _get(cluster, {"Accept": PROTO_ACCEPT})
    # the deprecated "@" form is answered with the dotted media type; both carry the JSON document's ETag
    assert code == 200 and ph["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert proto[:5] == b"\x0a\x032.0"  # Document.swagger = 1
    assert ph["Etag"] == jh["Etag"] and len(ph["Etag"]) == 130 and ph["Last-Modified"].endswith(" GMT")
    code, h, again = _get(cluster, {"Accept": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"})
    assert code == 200 and again == proto
    code, h, body = _get(cluster, {"Accept": PROTO_ACCEPT, "If-None-Match": ph["Etag"]})
    assert (code, body, h["Etag"], h["Vary"]) == (304, b"", ph["Etag"], "Accept")
    code, h, body = _get(cluster, {"Accept": PROTO_ACCEPT, "If-None-Match": '"stale"'})
    assert code == 200 and body == proto
    code, h, body = _get(cluster, {"Accept": "text/html"})
    assert (code, body, h["Vary"]) == (406, b"", "Accept")


def test_crd_list_is_served_empty(cluster: Cluster) -> None:
    # kubectl lists CRDs before validating a kind it finds no PATCH operation for
    r = cluster.kubectl("get", "customresourcedefinitions")
    assert (r.code, r.stdout, r.stderr) == (0, "", "No resources found\n")
    r = cluster.kubectl("delete", "crd", "anything")
    assert r.code == 1 and "the server does not allow this method on the requested resource" in r.stderr
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    code, _, body = cluster.request("GET", path, headers={"Accept": "application/vnd.kubernetes.protobuf, */*"})
    assert code == 200 and body["kind"] == "CustomResourceDefinitionList" and body["items"] == []
    # kubegate has no schema table to encode CRDs as protobuf: protobuf alone is refused, not a 500
    code, _, body = cluster.request("GET", path, headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert (code, body["reason"]) == (406, "NotAcceptable")
    assert body["message"].endswith("Available representations: application/json, application/yaml")
