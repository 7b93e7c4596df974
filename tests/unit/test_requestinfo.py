"""RequestInfo resolution: cases from upstream's requestinfo_test.go plus the goldens' URLs."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from kubegate.server.requestinfo import (
    RequestInfoError,
    field_selector_exact_match,
    parse_request_info,
)


def info(method: str, url: str):
    u = urlsplit(url)
    query: dict[str, str] = {}
    for k, v in parse_qsl(u.query, keep_blank_values=True):
        query.setdefault(k, v)
    return parse_request_info(method, u.path, query)


# method, url, verb, prefix, group, version, namespace, resource, subresource, name, parts
RESOURCE_CASES = [
    ("GET", "/api/v1/namespaces", "list", "api", "", "v1", "", "namespaces", "", "", ["namespaces"]),
    ("GET", "/api/v1/namespaces/other", "get", "api", "", "v1", "other", "namespaces", "", "other",
     ["namespaces", "other"]),
    ("GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]),
    ("HEAD", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo",
     ["pods", "foo"]),
    ("GET", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("HEAD", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("PATCH", "/api/v1/namespaces/new-namespace", "patch", "api", "", "v1", "new-namespace", "namespaces", "",
     "new-namespace", ["namespaces", "new-namespace"]),
    # special verbs
    ("GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "api", "", "v1", "other", "pods", "", "foo",
     ["pods", "foo"]),
    ("GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", "proxy", "api", "", "v1", "other",
     "pods", "", "foo", ["pods", "foo", "subpath", "not", "a", "subresource"]),
    ("GET", "/api/v1/watch/pods", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/pods?watch=true", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/pods?watch=false", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/pods?watch=FALSE", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/pods?watch=", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/watch/namespaces/other/pods", "watch", "api", "", "v1", "other", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "api", "", "v1", "other", "pods", "", "", ["pods"]),
    ("GET", "/api/v1/namespaces/other/pods?watch=0", "list", "api", "", "v1", "other", "pods", "", "", ["pods"]),
    # subresources
    ("GET", "/api/v1/namespaces/other/pods/foo/status", "get", "api", "", "v1", "other", "pods", "status", "foo",
     ["pods", "foo", "status"]),
    ("GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "api", "", "v1", "other", "pods", "proxy",
     "foo", ["pods", "foo", "proxy", "subpath"]),
    ("PUT", "/api/v1/namespaces/other/finalize", "update", "api", "", "v1", "other", "namespaces", "finalize",
     "other", ["namespaces", "other", "finalize"]),
    ("PUT", "/api/v1/namespaces/other/status", "update", "api", "", "v1", "other", "namespaces", "status", "other",
     ["namespaces", "other", "status"]),
    # verbs
    ("PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "api", "", "v1", "other", "pods", "", "foo",
     ["pods", "foo"]),
    ("DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "api", "", "v1", "other", "pods", "", "foo",
     ["pods", "foo"]),
    ("POST", "/api/v1/namespaces/other/pods", "create", "api", "", "v1", "other", "pods", "", "", ["pods"]),
    ("OPTIONS", "/api/v1/namespaces/other/pods", "", "api", "", "v1", "other", "pods", "", "", ["pods"]),
    ("DELETE", "/api/v1/nodes", "deletecollection", "api", "", "v1", "", "nodes", "", "", ["nodes"]),
    ("DELETE", "/api/v1/namespaces", "deletecollection", "api", "", "v1", "", "namespaces", "", "", ["namespaces"]),
    ("DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "api", "", "v1", "other", "pods", "", "",
     ["pods"]),
    ("DELETE", "/apis/extensions/v1/namespaces/other/pods", "deletecollection", "apis", "extensions", "v1", "other",
     "pods", "", "", ["pods"]),
    ("POST", "/apis/extensions/v1/namespaces/other/pods", "create", "apis", "extensions", "v1", "other", "pods", "",
     "", ["pods"]),
    ("POST", "/apis/extensions/v1beta3/namespaces/other/pods", "create", "apis", "extensions", "v1beta3", "other",
     "pods", "", "", ["pods"]),
    # the reference's examples
    ("GET", "/api/v1/namespaces/default/pods/p1/log", "get", "api", "", "v1", "default", "pods", "log", "p1",
     ["pods", "p1", "log"]),
    ("POST", "/api/v1/namespaces/ns/serviceaccounts/sa/token", "create", "api", "", "v1", "ns", "serviceaccounts",
     "token", "sa", ["serviceaccounts", "sa", "token"]),
    ("PUT", "/apis/apps/v1/namespaces/ns/deployments/d/scale", "update", "apis", "apps", "v1", "ns", "deployments",
     "scale", "d", ["deployments", "d", "scale"]),
    ("PUT", "/apis/certificates.k8s.io/v1/certificatesigningrequests/c/approval", "update", "apis",
     "certificates.k8s.io", "v1", "", "certificatesigningrequests", "approval", "c",
     ["certificatesigningrequests", "c", "approval"]),
    ("GET", "/api/v1/namespaces/golden-errors/configmaps?watch=true", "watch", "api", "", "v1", "golden-errors",
     "configmaps", "", "", ["configmaps"]),
]


@pytest.mark.parametrize("case", RESOURCE_CASES, ids=lambda c: f"{c[0]} {c[1]}")
def test_resource_requests(case) -> None:
    method, url, verb, prefix, group, version, ns, resource, sub, name, parts = case
    ri = info(method, url)
    assert ri.is_resource_request
    assert (ri.verb, ri.api_prefix, ri.api_group, ri.api_version, ri.namespace, ri.resource, ri.subresource,
            ri.name, list(ri.parts)) == (verb, prefix, group, version, ns, resource, sub, name, parts)
    assert ri.path == urlsplit(url).path


@pytest.mark.parametrize("url", [
    "/", "", "/api", "/api/version", "/api/version/", "/apis/group/version/", "/apis/extensions/v1beta1",
    "/apis/extensions/v1beta1/", "/badprefix/version/resource", "/apis/version/resource", "/not-api/version/resource",
    "/healthz", "/version", "/openapi/v2", "/metrics", "/.well-known/openid-configuration",
])
def test_non_resource_requests(url: str) -> None:
    ri = info("GET", url)
    assert not ri.is_resource_request
    assert ri.verb == "get"
    assert ri.path == url
    assert (ri.resource, ri.namespace, ri.name, ri.api_group) == ("", "", "", "")


def test_non_resource_verb_is_lowercase_method() -> None:
    assert info("POST", "/no/such/path").verb == "post"
    assert info("HEAD", "/healthz").verb == "head"


@pytest.mark.parametrize("url", ["/api/version/resource", "/apis/group/version/resource/name/subresource",
                                 "/api/version/resource/name/subresource", "/apis/batch/v1/job",
                                 "/apis/batch/v1/job/foo", "/apis/batch/v1/job/foo/scale"])
def test_minimal_resource_paths(url: str) -> None:
    assert info("GET", url).is_resource_request


def test_watch_prefix_without_resource_is_an_error() -> None:
    with pytest.raises(RequestInfoError, match="unable to determine kind and namespace from url, /api/v1/watch"):
        info("GET", "/api/v1/watch")


# url, name, verb (upstream TestFieldSelectorParsing)
FIELD_SELECTOR_CASES = [
    ("/apis/group/version/resource", "", "list"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=name1", "name1", "list"),
    ("/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1", "name1", "watch"),
    ("/apis/group/version/resource?fieldSelector=foo=bar", "", "list"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=name1,foo", "", "list"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true", "", "watch"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false", "", "list"),
    # == works like =, != never selects a name, a path-unsafe name is not used
    ("/apis/group/version/resource?fieldSelector=metadata.name==n2", "n2", "list"),
    ("/apis/group/version/resource?fieldSelector=metadata.name!=n2", "", "list"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=a%2Fb", "", "list"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=..", "", "list"),
    # a ListOptions decoding failure discards the selector
    ("/apis/group/version/resource?fieldSelector=metadata.name=n3&limit=x", "", "list"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=n3&timeoutSeconds=1.5&watch=1", "", "watch"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=n3&timeoutSeconds=30&limit=5", "n3", "list"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=n3&labelSelector=a%3D%3D%3Db", "", "list"),
    ("/apis/group/version/resource?fieldSelector=metadata.name=n3&labelSelector=app+in+(a,b)", "n3", "list"),
]


@pytest.mark.parametrize("url,name,verb", FIELD_SELECTOR_CASES)
def test_field_selector_sets_name(url: str, name: str, verb: str) -> None:
    ri = info("GET", url)
    assert (ri.name, ri.verb) == (name, verb)


def test_field_selector_parser() -> None:
    assert field_selector_exact_match("a=1,metadata.name=x\\,y", "metadata.name") == "x,y"
    assert field_selector_exact_match("", "metadata.name") is None
    with pytest.raises(ValueError, match="invalid selector: 'metadata.name=n,foo'; can't understand 'foo'"):
        field_selector_exact_match("metadata.name=n,foo", "metadata.name")
    with pytest.raises(ValueError):
        field_selector_exact_match("metadata.name=a\\b", "metadata.name")


def test_selectors_kept_for_collection_verbs_only() -> None:
    ri = info("GET", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1")
    assert (ri.verb, ri.label_selector, ri.field_selector) == ("list", "app=web", "spec.nodeName=n1")
    ri = info("DELETE", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb")
    assert (ri.verb, ri.label_selector) == ("deletecollection", "app=web")
    ri = info("GET", "/api/v1/namespaces/ns/pods/p?labelSelector=app%3Dweb")
    assert (ri.verb, ri.label_selector) == ("get", "")


def test_delete_with_name_from_field_selector_is_not_collection() -> None:
    # only get is turned into list/watch; a DELETE's field selector does not name the object
    ri = info("DELETE", "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dp")
    assert (ri.verb, ri.name) == ("deletecollection", "")
