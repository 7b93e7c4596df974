"""RBAC rule matching and subject resolution as upstream's tables (plugin/pkg/auth/authorizer/rbac
rbac_test.go TestAuthorizer and TestRuleMatches), plus the cases the issue names: `*/scale`,
resourceNames, RoleBinding to a ClusterRole, ServiceAccount subjects; and default-policy
reconciliation (pkg/registry/rbac/reconciliation)."""
from __future__ import annotations

from typing import Any

import pytest

from kubegate.authn.user import UserInfo
from kubegate.authz.bootstrap import default_policy
from kubegate.authz.rbac import RBACAuthorizer, rule_allows
from kubegate.authz.types import Attributes, Decision, PolicyRule
from kubegate.controllers.bootstrap import reconcile_binding, reconcile_role


def new_rule(verbs: str, groups: str, resources: str, urls: str = "", names: str = "") -> dict[str, Any]:
    """upstream newRule: comma lists ("" = one empty entry, as strings.Split)."""
    out: dict[str, Any] = {"verbs": verbs.split(","), "apiGroups": groups.split(","),
                           "resources": resources.split(","), "nonResourceURLs": urls.split(",")}
    if names:
        out["resourceNames"] = names.split(",")
    return out


def subjects(*specs: str) -> list[dict[str, str]]:
    out = []
    for spec in specs:
        kind, _, name = spec.partition(":")
        if kind == "ServiceAccount":
            ns, _, name = name.rpartition("/")
            out.append({"kind": kind, "name": name, **({"namespace": ns} if ns else {})})
        else:
            out.append({"kind": kind, "name": name, "apiGroup": "rbac.authorization.k8s.io"})
    return out


def authorizer(cluster_roles: dict[str, list[dict[str, Any]]] | None = None,
               roles: dict[tuple[str, str], list[dict[str, Any]]] | None = None,
               crbs: list[tuple[str, list[str]]] | None = None,
               rbs: list[tuple[str, str, str, list[str]]] | None = None) -> RBACAuthorizer:
    a = RBACAuthorizer()
    for name, rules in (cluster_roles or {}).items():
        a.upsert("ClusterRole", {"metadata": {"name": name}, "rules": rules})
    for (ns, name), rules in (roles or {}).items():
        a.upsert("Role", {"metadata": {"name": name, "namespace": ns}, "rules": rules})
    for i, (role, subs) in enumerate(crbs or ()):
        a.upsert("ClusterRoleBinding", {"metadata": {"name": f"crb{i}"}, "subjects": subjects(*subs),
                                        "roleRef": {"kind": "ClusterRole", "name": role}})
    for i, (ns, kind, role, subs) in enumerate(rbs or ()):
        a.upsert("RoleBinding", {"metadata": {"name": f"rb{i}", "namespace": ns}, "subjects": subjects(*subs),
                                 "roleRef": {"kind": kind, "name": role}})
    return a


def attrs(user: str, groups: str, verb: str, resource: str, subresource: str, namespace: str, group: str,
          name: str = "") -> Attributes:
    return Attributes(user=UserInfo(user, groups=tuple(g for g in groups.split(",") if g)), verb=verb,
                      namespace=namespace, api_group=group, resource=resource, subresource=subresource, name=name,
                      resource_request=True)


def path(user: str, groups: tuple[str, ...], verb: str, p: str) -> Attributes:
    return Attributes(user=UserInfo(user, groups=groups), verb=verb, path=p)


# TestAuthorizer, case by case: (authorizer, should pass, should fail)
CASES = [
    ("clusterrole admin bound in ns1",
     authorizer({"admin": [new_rule("*", "*", "*", "*")]},
                rbs=[("ns1", "ClusterRole", "admin", ["User:admin", "Group:admins"])]),
     [attrs("admin", "", "get", "Pods", "", "ns1", ""), attrs("admin", "", "watch", "Pods", "", "ns1", ""),
      attrs("admin", "group1", "watch", "Foobar", "", "ns1", ""), attrs("joe", "admins", "watch", "Foobar", "", "ns1", ""),
      attrs("joe", "group1,admins", "watch", "Foobar", "", "ns1", "")],
     [attrs("admin", "", "GET", "Pods", "", "ns2", ""), attrs("admin", "", "GET", "Nodes", "", "", ""),
      attrs("admin", "admins", "GET", "Pods", "", "ns2", ""), attrs("admin", "admins", "GET", "Nodes", "", "", "")]),
    ("non-resource URLs",
     authorizer({"non-resource-url-getter": [new_rule("get", "", "", "/apis")],
                 "non-resource-url": [new_rule("*", "", "", "/apis")],
                 "non-resource-url-prefix": [new_rule("get", "", "", "/apis/*")]},
                crbs=[("non-resource-url-getter", ["User:foo", "Group:bar"]),
                      ("non-resource-url", ["User:admin", "Group:admin"]),
                      ("non-resource-url-prefix", ["User:prefixed", "Group:prefixed"])]),
     [path("foo", (), "get", "/apis"), path("", ("bar",), "get", "/apis"), path("admin", (), "get", "/apis"),
      path("", ("admin",), "get", "/apis"), path("admin", (), "watch", "/apis"), path("", ("admin",), "watch", "/apis"),
      path("prefixed", (), "get", "/apis/v1"), path("", ("prefixed",), "get", "/apis/v1"),
      path("prefixed", (), "get", "/apis/v1/foobar"), path("", ("prefixed",), "get", "/apis/v1/foorbar")],
     [path("foo", (), "watch", "/apis"), path("", ("bar",), "watch", "/apis"), path("foo", (), "get", "/api/v1"),
      path("", ("bar",), "get", "/api/v1"), path("admin", (), "get", "/api/v1"), path("", ("admin",), "get", "/api/v1"),
      path("prefixed", (), "get", "/api/v1"), path("", ("prefixed",), "get", "/api/v1")]),
    ("a bare resource does not match its subresources",
     authorizer({"admin": [new_rule("*", "*", "pods", "*")]},
                rbs=[("ns1", "ClusterRole", "admin", ["User:admin", "Group:admins"])]),
     [attrs("admin", "", "get", "pods", "", "ns1", "")],
     [attrs("admin", "", "get", "pods", "status", "ns1", "")]),
    ("a subresource rule does not match the resource",
     authorizer({"admin": [new_rule("*", "*", "pods/status", "*")]},
                rbs=[("ns1", "ClusterRole", "admin", ["User:admin", "Group:admins"])]),
     [attrs("admin", "", "get", "pods", "status", "ns1", "")],
     [attrs("admin", "", "get", "pods", "", "ns1", "")]),
    ("*/scale matches every scale subresource, nothing else",
     authorizer({"scaler": [new_rule("*", "*", "*/scale")]},
                rbs=[("ns1", "ClusterRole", "scaler", ["User:admin"])]),
     [attrs("admin", "", "get", "deployments", "scale", "ns1", "apps"),
      attrs("admin", "", "update", "replicasets", "scale", "ns1", "apps")],
     [attrs("admin", "", "get", "deployments", "", "ns1", "apps"),
      attrs("admin", "", "get", "deployments", "status", "ns1", "apps")]),
    ("resourceNames: only the named object, never a list or a nameless create",
     authorizer(roles={("ns1", "cm"): [new_rule("get,list,create", "", "configmaps", names="app-config")]},
                rbs=[("ns1", "Role", "cm", ["User:alice"])]),
     [attrs("alice", "", "get", "configmaps", "", "ns1", "", "app-config")],
     [attrs("alice", "", "get", "configmaps", "", "ns1", "", "other"),
      attrs("alice", "", "list", "configmaps", "", "ns1", ""),
      attrs("alice", "", "create", "configmaps", "", "ns1", "")]),
    ("a Role binds only in its own namespace; a RoleBinding never grants cluster scope",
     authorizer(roles={("ns1", "r"): [new_rule("get", "", "pods")]},
                rbs=[("ns1", "Role", "r", ["User:alice"])]),
     [attrs("alice", "", "get", "pods", "", "ns1", "")],
     [attrs("alice", "", "get", "pods", "", "ns2", ""), attrs("alice", "", "get", "pods", "", "", "")]),
    ("ServiceAccount subjects: namespace from the subject or the RoleBinding; none in a CRB matches nobody",
     authorizer({"reader": [new_rule("get", "", "pods")]},
                crbs=[("reader", ["ServiceAccount:nons"])],
                rbs=[("ns1", "ClusterRole", "reader", ["ServiceAccount:local"]),
                     ("ns1", "ClusterRole", "reader", ["ServiceAccount:other/remote"])]),
     [attrs("system:serviceaccount:ns1:local", "", "get", "pods", "", "ns1", ""),
      attrs("system:serviceaccount:other:remote", "", "get", "pods", "", "ns1", "")],
     [attrs("system:serviceaccount:ns1:local", "", "get", "pods", "", "other", ""),
      attrs("system:serviceaccount:ns1:remote", "", "get", "pods", "", "ns1", ""),
      attrs("system:serviceaccount::nons", "", "get", "pods", "", "", ""),
      attrs("nons", "", "get", "pods", "", "", "")]),
    ("groups and users are distinct subject kinds",
     authorizer({"reader": [new_rule("get", "", "pods")]}, crbs=[("reader", ["Group:devs"])]),
     [attrs("anyone", "devs", "get", "pods", "", "ns1", "")],
     [attrs("devs", "", "get", "pods", "", "ns1", "")]),
]


@pytest.mark.parametrize("name,a,should_pass,should_fail", CASES, ids=[c[0] for c in CASES])
def test_authorizer_table(name: str, a: RBACAuthorizer, should_pass: list[Attributes],
                          should_fail: list[Attributes]) -> None:
    for at in should_pass:
        assert a.decide(at).decision is Decision.ALLOW, f"incorrectly restricted {at}"
    for at in should_fail:
        assert a.decide(at).decision is Decision.NO_OPINION, f"incorrectly passed {at}"


def _res(verb: str, group: str, resource: str, sub: str = "") -> Attributes:
    return Attributes(user=UserInfo(""), verb=verb, api_group=group, resource=resource, subresource=sub,
                      resource_request=True)


def _url(verb: str, p: str) -> Attributes:
    return Attributes(user=UserInfo(""), verb=verb, path=p)


# TestRuleMatches: rule -> {request: expected}
RULE_CASES = [
    ("star verb, exact match other", PolicyRule(("*",), ("group1",), ("resource1",)), {
        _res("verb1", "group1", "resource1"): True, _res("verb1", "group2", "resource1"): False,
        _res("verb1", "group1", "resource2"): False, _res("verb2", "group1", "resource1"): True}),
    ("star group, exact match other", PolicyRule(("verb1",), ("*",), ("resource1",)), {
        _res("verb1", "group1", "resource1"): True, _res("verb1", "group2", "resource1"): True,
        _res("verb1", "group1", "resource2"): False, _res("verb2", "group1", "resource1"): False}),
    ("star resource, exact match other", PolicyRule(("verb1",), ("group1",), ("*",)), {
        _res("verb1", "group1", "resource1"): True, _res("verb1", "group2", "resource1"): False,
        _res("verb1", "group1", "resource2"): True, _res("verb2", "group1", "resource1"): False}),
    ("tuple expansion", PolicyRule(("verb1", "verb2"), ("group1", "group2"), ("resource1", "resource2")), {
        _res(v, g, r): True for v in ("verb1", "verb2") for g in ("group1", "group2")
        for r in ("resource1", "resource2")}),
    ("subresource expansion", PolicyRule(("*",), ("*",), ("resource1/subresource1",)), {
        _res("verb1", "group1", "resource1", "subresource1"): True,
        _res("verb1", "group2", "resource1", "subresource2"): False,
        _res("verb1", "group1", "resource2", "subresource1"): False,
        _res("verb2", "group1", "resource1", "subresource1"): True}),
    ("star nonresource, exact match other", PolicyRule(("verb1",), non_resource_urls=("*",)), {
        _url("verb1", "/foo"): True, _url("verb1", "/foo/bar/one"): True, _url("verb2", "/foo"): False}),
    ("star nonresource subpath", PolicyRule(("verb1",), non_resource_urls=("/foo/*",)), {
        _url("verb1", "/foo"): False, _url("verb1", "/foo/bar"): True, _url("verb1", "/foo/baz/one"): True,
        _url("verb1", "/notfoo"): False, _url("verb1", "/notfoo/bar"): False}),
    ("star verb, exact nonresource", PolicyRule(("*",), non_resource_urls=("/foo", "/foo/bar/one")), {
        _url("verb1", "/foo"): True, _url("verb1", "/foo/bar"): False, _url("verb1", "/foo/bar/one"): True,
        _url("verb2", "/foo/baz/one"): False}),
]


@pytest.mark.parametrize("name,rule,expected", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule_matches(name: str, rule: PolicyRule, expected: dict[Attributes, bool]) -> None:
    for request, want in expected.items():
        assert rule_allows(request, rule) is want, request


def test_missing_role_is_reported_per_binding_in_the_registry_or_lister_wording() -> None:
    a = authorizer(rbs=[("ns1", "ClusterRole", "gone", ["User:alice"]), ("ns1", "Role", "gone-too", ["User:alice"])])
    at = attrs("alice", "", "get", "pods", "", "ns1", "")
    assert a.decide(at).reason == ('RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
                                   'role.rbac.authorization.k8s.io "gone-too" not found]')
    assert a.rules_for(at.user, "ns1", plural=True).errors == (
        'clusterroles.rbac.authorization.k8s.io "gone" not found', 'roles.rbac.authorization.k8s.io "gone-too" not found')


# --- default policy reconciliation ---

def _default(plural: str, name: str) -> dict[str, Any]:
    return next(o for p, o in default_policy() if p == plural and o["metadata"]["name"] == name)


def test_reconcile_role_adds_missing_permissions_by_coverage_and_keeps_user_additions() -> None:
    expected = _default("clusterroles", "system:basic-user")
    existing = {**expected, "rules": [{"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                                       "resources": ["selfsubjectaccessreviews"]},
                                      {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
                "metadata": {**expected["metadata"], "labels": {"kubernetes.io/bootstrapping": "mine", "x": "y"}}}
    got = reconcile_role(existing, expected)
    assert got["rules"][:2] == existing["rules"]
    # the missing permissions come back one verb/resource at a time, as upstream's Covers reports them
    assert got["rules"][2:] == [
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectrulesreviews"]},
        {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]}]
    assert got["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "mine", "x": "y"}  # existing values win
    assert got["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] == "true"
    assert reconcile_role(expected, expected) == expected


def test_reconcile_aggregated_role_leaves_rules_to_the_aggregator_but_restores_selectors() -> None:
    expected = _default("clusterroles", "admin")
    existing = {**expected, "rules": [], "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}}
    got = reconcile_role(existing, expected)
    assert got["rules"] == []
    assert got["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"a": "b"}}, *expected["aggregationRule"]["clusterRoleSelectors"]]


def test_reconcile_binding_adds_subjects_and_recreates_on_a_changed_role_ref() -> None:
    expected = _default("clusterrolebindings", "system:public-info-viewer")
    existing = {**expected, "subjects": [{"kind": "User", "name": "me", "apiGroup": "rbac.authorization.k8s.io"}]}
    got, recreate = reconcile_binding(existing, expected)
    assert not recreate and got["subjects"] == existing["subjects"] + expected["subjects"]
    moved = {**expected, "roleRef": {**expected["roleRef"], "name": "other"}}
    got, recreate = reconcile_binding(moved, expected)
    assert recreate and got == expected
