"""who-can, explain-access and rolesum: computed from the RBAC index with the same matching
functions as decisions (upstream subject_locator_test.go for who-can), so they agree with it."""
from __future__ import annotations

import asyncio
from typing import Any

from kubegate.authn.user import UserInfo
from kubegate.authz.explain import (
    explain, format_explanation, format_rolesum, format_who_can, rolesum, subject_user, who_can,
)
from kubegate.authz.privileged import PrivilegedGroups
from kubegate.authz.rbac import RBACAuthorizer
from kubegate.authz.types import Attributes
from kubegate.authz.union import UnionAuthorizer
from kubegate.server.explain_api import authorizer_name, resolve_resource

G = "rbac.authorization.k8s.io"


def _rbac(*objects: tuple[str, dict[str, Any]]) -> RBACAuthorizer:
    rbac = RBACAuthorizer()
    for kind, obj in objects:
        rbac.upsert(kind, obj)
    return rbac


def _subjects(*specs: str) -> list[dict[str, str]]:
    return [{"kind": k, "name": n, "apiGroup": G} for k, _, n in (s.partition(":") for s in specs)]


def _cr(name: str, *rules: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "ClusterRole", {"metadata": {"name": name}, "rules": list(rules)}


def _role(ns: str, name: str, *rules: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "Role", {"metadata": {"name": name, "namespace": ns}, "rules": list(rules)}


def _crb(name: str, role: str, *subs: str) -> tuple[str, dict[str, Any]]:
    return "ClusterRoleBinding", {"metadata": {"name": name}, "roleRef": {"kind": "ClusterRole", "name": role},
                                  "subjects": _subjects(*subs)}


def _rb(ns: str, name: str, kind: str, role: str, *subs: str, sa: list[dict[str, str]] | None = None
        ) -> tuple[str, dict[str, Any]]:
    return "RoleBinding", {"metadata": {"name": name, "namespace": ns}, "roleRef": {"kind": kind, "name": role},
                           "subjects": _subjects(*subs) + (sa or [])}


STAR = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "nonResourceURLs": ["*"]}


def _pods(verb: str, ns: str, user: UserInfo = UserInfo("")) -> Attributes:
    return Attributes(user=user, verb=verb, namespace=ns, resource="pods", resource_request=True)


def _names(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(g["subject"]["kind"], g["subject"]["name"]) for g in doc["subjects"]]


def test_who_can_no_super_user_star_matches_star() -> None:
    rbac = _rbac(_cr("admin", STAR), _crb("admin", "admin", "User:super-admin", "Group:super-admins"),
                 _rb("ns1", "admin", "ClusterRole", "admin", "User:admin", "Group:admins"))
    masters = ("Group", "system:masters")
    assert _names(who_can(rbac, _pods("get", "ns1"))) == [
        masters, ("User", "super-admin"), ("Group", "super-admins"), ("User", "admin"), ("Group", "admins")]
    # cluster role matches star in namespace; empty namespace: only cluster bindings
    assert _names(who_can(rbac, _pods("*", "*"))) == [masters, ("User", "super-admin"), ("Group", "super-admins")]
    assert _names(who_can(rbac, _pods("*", ""))) == [masters, ("User", "super-admin"), ("Group", "super-admins")]


def test_who_can_local_roles_verbs_and_namespaces() -> None:
    rbac = _rbac(_cr("admin", STAR), _crb("admin", "admin", "User:super-admin", "Group:super-admins"),
                 _role("ns1", "admin", {"verbs": ["get"], "apiGroups": ["*"], "resources": ["pods"]}),
                 _rb("ns1", "admin", "Role", "admin", "User:admin", "Group:admins",
                     sa=[{"kind": "ServiceAccount", "name": "robot"}]))
    got = who_can(rbac, _pods("get", "ns1"))
    assert _names(got)[3:] == [("User", "admin"), ("Group", "admins"), ("ServiceAccount", "robot")]
    assert got["subjects"][5]["subject"] == {"kind": "ServiceAccount", "name": "robot", "namespace": "ns1"}
    assert got["subjects"][3] == {
        "subject": {"kind": "User", "name": "admin"}, "authorizer": "RBAC",
        "binding": {"kind": "RoleBinding", "name": "admin", "namespace": "ns1"},
        "role": {"kind": "Role", "name": "admin"},
        "rule": {"verbs": ["get"], "apiGroups": ["*"], "resources": ["pods"]}}
    assert len(who_can(rbac, _pods("create", "ns1"))["subjects"]) == 3  # verb matches correctly
    assert len(who_can(rbac, _pods("get", "ns2"))["subjects"]) == 3     # binding only works in its namespace
    all_ns = who_can(rbac, _pods("get", ""), all_namespaces=True)
    assert _names(all_ns)[3:] == [("User", "admin"), ("Group", "admins"), ("ServiceAccount", "robot")]
    assert "User/admin" in format_who_can(all_ns) and "RoleBinding/ns1/admin" in format_who_can(all_ns)


def test_who_can_reports_missing_roles() -> None:
    rbac = _rbac(_rb("ns1", "b", "ClusterRole", "gone", "User:x"))
    assert who_can(rbac, _pods("get", "ns1"))["evaluationErrors"] == ['clusterrole.rbac.authorization.k8s.io "gone" not found']


ALICE = UserInfo("alice", groups=("system:authenticated",))


def _cluster() -> RBACAuthorizer:
    return _rbac(
        _role("dev", "developer", {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
              {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app"]}),
        _rb("dev", "dev", "Role", "developer", "User:alice"),
        _cr("viewer", {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]}),
        _rb("prod", "view", "ClusterRole", "viewer", "User:alice"))


def _explained(rbac: RBACAuthorizer, attrs: Attributes) -> dict[str, Any]:
    chain = UnionAuthorizer([PrivilegedGroups(), rbac])
    result, by = asyncio.run(chain.authorize_traced(attrs))
    return explain(rbac, attrs, result, authorizer_name(by))


def test_explain_allow_names_binding_role_and_rule_as_the_decision_does() -> None:
    rbac = _cluster()
    attrs = _pods("list", "dev", ALICE)
    doc = _explained(rbac, attrs)
    assert doc["allowed"] and doc["authorizer"] == "RBAC" and doc["decision"] == "Allow"
    assert doc["reason"] == rbac.decide(attrs).reason == 'RBAC: allowed by RoleBinding "dev/dev" of Role "developer" to User "alice"'
    assert doc["match"]["rule"] == {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}
    masters = _explained(rbac, _pods("delete", "dev", UserInfo("root", groups=("system:masters",))))
    assert masters["authorizer"] == "system:masters" and "match" not in masters


def test_explain_denial_nearest_rules() -> None:
    rbac = _cluster()
    wrong_verb = _explained(rbac, _pods("delete", "dev", ALICE))
    assert not wrong_verb["allowed"] and wrong_verb["decision"] == "NoOpinion" and wrong_verb["authorizer"] == ""
    assert [m["mismatch"] for m in wrong_verb["nearMisses"]] == [["verb"]]
    assert wrong_verb["nearMisses"][0]["binding"] == {"kind": "RoleBinding", "name": "dev", "namespace": "dev"}
    wrong_ns = _explained(rbac, _pods("get", "default", ALICE))
    assert [(m["mismatch"], m["binding"]["namespace"]) for m in wrong_ns["nearMisses"]] == [(["namespace"], "dev")]
    cm = Attributes(user=ALICE, verb="get", namespace="dev", resource="configmaps", name="other", resource_request=True)
    wrong_name = _explained(rbac, cm)
    assert [m["mismatch"] for m in wrong_name["nearMisses"]] == [["resourceName"]]
    assert "wrong resourceName: RoleBinding/dev/dev -> Role/developer" in format_explanation(wrong_name)
    deploy = Attributes(user=ALICE, verb="get", namespace="dev", api_group="apps", resource="deployments",
                        resource_request=True)
    assert [m["mismatch"] for m in _explained(rbac, deploy)["nearMisses"]] == [["namespace"]]
    nothing = _explained(rbac, Attributes(user=UserInfo("bob"), verb="get", path="/metrics"))
    assert "nearMisses" not in nothing and "no RBAC rule" in format_explanation(nothing)


def test_rolesum_per_namespace() -> None:
    rbac = _cluster()
    doc = rolesum(rbac, subject_user("User", "alice"))
    assert [s["namespace"] for s in doc["scopes"]] == ["", "dev", "prod"]
    assert doc["scopes"][1]["bindings"] == [{"kind": "RoleBinding", "name": "dev", "namespace": "dev",
                                             "role": {"kind": "Role", "name": "developer"}}]
    text = format_rolesum(doc)
    assert "Namespace dev" in text and "configmaps [app]" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("pods"))
    assert row.split() == ["pods", "✔", "✔"]


def test_subject_user_and_resource_resolution() -> None:
    sa = subject_user("ServiceAccount", "system:serviceaccount:ns:robot")
    assert sa == subject_user("ServiceAccount", "ns/robot")
    assert sa.name == "system:serviceaccount:ns:robot" and "system:serviceaccounts:ns" in sa.groups
    assert subject_user("Group", "devs").groups == ("devs",)
    assert resolve_resource("deploy") == ("deployments", "apps", "")
    assert resolve_resource("deployments.apps/scale") == ("deployments", "apps", "scale")
    assert resolve_resource("pods/log") == ("pods", "", "log")
    assert resolve_resource("widgets.example.com") == ("widgets", "example.com", "")
