"""Impersonation decisions against the real authorizer chain (system:masters + RBAC), compared with
upstream v1.36's captured responses where one exists."""
from __future__ import annotations

import json
from asyncio import run
from typing import Any

import pytest
from multidict import CIMultiDict

from kubegate.api.errors import StatusError
from kubegate.authn.user import UserInfo
from kubegate.authz.privileged import PrivilegedGroups
from kubegate.authz.rbac import RBACAuthorizer
from kubegate.authz.types import Attributes
from kubegate.authz.union import UnionAuthorizer
from kubegate.server.impersonation import (
    HEADERS, Impersonator, WantedUser, split_service_account_username, validate_extra, wanted_user,
)
from kubegate.server.requestinfo import parse_request_info

from tests.fixtures import GOLDENS

ADMIN = UserInfo("kubernetes-admin", "", ("system:masters", "system:authenticated"))
ALICE = UserInfo("alice", "1002", ("developers", "system:authenticated"))
BOB = UserInfo("bob", "1003", ("system:authenticated",))


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDENS / "impersonation" / name).read_text())


class Cluster:
    """An RBAC policy plus the Impersonator over the same authorizer chain the server uses."""

    def __init__(self) -> None:
        self.rbac = RBACAuthorizer()
        self.impersonator = Impersonator(UnionAuthorizer([PrivilegedGroups(), self.rbac]))

    def grant(self, name: str, user: str, rules: list[dict[str, Any]]) -> None:
        self.rbac.upsert("ClusterRole", {"metadata": {"name": name}, "rules": rules})
        self.rbac.upsert("ClusterRoleBinding", {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}]})

    def revoke(self, name: str) -> None:
        self.rbac.delete("ClusterRoleBinding", {"metadata": {"name": name}})

    def impersonate(self, requestor: UserInfo, method: str, path: str, hdrs: dict[str, Any]) -> UserInfo:
        url, _, query = path.partition("?")
        info = parse_request_info(method, url, dict(p.split("=", 1) for p in query.split("&") if p))
        attrs = Attributes(user=requestor, verb=info.verb, namespace=info.namespace, api_group=info.api_group,
                           api_version=info.api_version, resource=info.resource, subresource=info.subresource,
                           name=info.name, resource_request=info.is_resource_request, path=info.path)
        wanted = wanted_user(multi(hdrs))
        assert wanted is not None
        return run(self.impersonator.impersonate(wanted, attrs))


def multi(hdrs: dict[str, Any]) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for k, v in hdrs.items():
        for value in v if isinstance(v, list) else [v]:
            out.add(k, value)
    return out


def denied(c: Cluster, requestor: UserInfo, name: str) -> None:
    g = golden(name)
    req, resp = g["request"], g["response"]
    with pytest.raises(StatusError) as e:
        c.impersonate(requestor, req["method"], req["path"], req["headers"])
    assert (e.value.code, e.value.status()) == (resp["status"], resp["body"])
    assert e.value.headers["X-Content-Type-Options"] == "nosniff"


def impersonated(c: Cluster, requestor: UserInfo, name: str) -> UserInfo:
    req = golden(name)["request"]
    return c.impersonate(requestor, req["method"], req["path"], req["headers"])


def review_user(name: str) -> dict[str, Any]:
    return golden(name)["response"]["body"]["status"]["userInfo"]


def as_review(u: UserInfo) -> dict[str, Any]:
    from kubegate.authn.user import user_info_json
    return user_info_json(u)


# -- the headers ---------------------------------------------------------------------------

def test_no_headers_means_no_impersonation() -> None:
    assert wanted_user(multi({"Accept": "application/json"})) is None
    # an empty Impersonate-User alone is no impersonation at all (Header.Get returns "")
    assert wanted_user(multi({"Impersonate-User": ""})) is None


def test_headers_parse_repeated_groups_and_escaped_extra_keys() -> None:
    w = wanted_user(multi({"impersonate-user": "alice", "Impersonate-Uid": "u1",
                           "Impersonate-Group": ["a", "b"], "Impersonate-Extra-Scopes": ["view", "dev"],
                           "impersonate-extra-Reason%2Fwith%2Fslash": "x"}))
    assert w == WantedUser("alice", "u1", ("a", "b"), {"scopes": ("view", "dev"), "reason/with/slash": ("x",)})


@pytest.mark.parametrize("name", ["admin-impersonate-group-only.json", "admin-uid-without-user.json"])
def test_groups_or_uid_without_user_is_400_as_upstream(name: str) -> None:
    resp = golden(name)["response"]
    with pytest.raises(StatusError) as e:
        wanted_user(multi(golden(name)["request"]["headers"]))
    assert (e.value.code, e.value.status()) == (400, resp["body"])
    assert e.value.headers["X-Content-Type-Options"] == "nosniff"


def test_400_prints_extra_and_empty_values_as_go_does() -> None:
    with pytest.raises(StatusError) as e:
        wanted_user(multi({"Impersonate-User": "", "Impersonate-Extra-B": ["2", ""], "Impersonate-Extra-A": "1",
                           "Impersonate-Group": ""}))
    assert e.value.message == (
        'requested &user.DefaultInfo{Name:"", UID:"", Groups:[]string{""}, '
        'Extra:map[string][]string{"a":[]string{"1"}, "b":[]string{"2", ""}}} without impersonating a user name')


def test_impersonation_headers_are_the_ones_cleared() -> None:
    for h in ("Impersonate-User", "impersonate-group", "IMPERSONATE-UID", "Impersonate-Extra-Scopes"):
        assert HEADERS.matches(h)
    assert not HEADERS.matches("Impersonate-Users")


# -- what the admin (system:masters) gets ------------------------------------------------------

@pytest.mark.parametrize("name", ["admin-as-alice-selfsubjectreview.json", "admin-as-node.json",
                                  "admin-as-serviceaccount.json", "admin-as-user-uid-extra.json",
                                  "admin-as-user-with-groups.json"])
def test_admin_impersonation_yields_upstreams_user(name: str) -> None:
    assert as_review(impersonated(Cluster(), ADMIN, name)) == review_user(name)


def test_admin_as_masters_group_falls_back_to_legacy_mode() -> None:
    # user-info mode refuses system:masters outright; legacy mode lets the admin do it.
    u = impersonated(Cluster(), ADMIN, "admin-as-user-in-masters-group.json")
    assert (u.name, u.groups) == ("someone", ("system:masters", "system:authenticated"))


def test_impersonated_anonymous_is_unauthenticated() -> None:
    u = impersonated(Cluster(), ADMIN, "admin-as-anonymous.json")
    assert (u.name, u.groups) == ("system:anonymous", ("system:unauthenticated",))


def test_requested_groups_replace_service_account_groups() -> None:
    u = Cluster().impersonate(ADMIN, "GET", "/api/v1/pods", {"Impersonate-User": "system:serviceaccount:ns:sa",
                                                              "Impersonate-Group": "g"})
    assert u.groups == ("g", "system:authenticated")


# -- alice, legacy impersonation and the remembered mode ----------------------------------------

def test_alice_story_matches_upstream_message_by_message() -> None:
    c = Cluster()
    # never impersonated: the user-info mode's error comes first
    denied(c, ALICE, "alice-impersonates-bob.json")
    denied(c, ALICE, "alice-impersonates-group.json")
    c.grant("golden-impersonate-bob", "alice",
            [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["bob"]}])
    assert as_review(impersonated(c, ALICE, "alice-impersonates-bob-allowed.json")) == \
        review_user("alice-impersonates-bob-allowed.json")
    # the legacy mode is now tried first for alice
    denied(c, ALICE, "alice-impersonates-carol.json")
    denied(c, ALICE, "alice-impersonates-bob-with-group.json")
    assert impersonated(c, ALICE, "alice-impersonates-bob-list-pods.json").name == "bob"
    c.revoke("golden-impersonate-bob")
    denied(c, ALICE, "alice-impersonates-bob-after-legacy-success.json")


def test_bob_never_impersonated_gets_the_serviceaccount_mode_message() -> None:
    denied(Cluster(), BOB, "bob-impersonates-serviceaccount.json")


def test_remembered_modes_are_bounded() -> None:
    c = Cluster()
    c.impersonator = Impersonator(UnionAuthorizer([PrivilegedGroups(), c.rbac]), remembered=2)
    for name in ("a", "b", "c"):
        c.impersonate(UserInfo(name, groups=("system:masters",)), "GET", "/api/v1/pods", {"Impersonate-User": "x"})
    assert list(c.impersonator._last_mode) == ["b", "c"]


# -- constrained impersonation ----------------------------------------------------------------

CAROL_RULES = [{"apiGroups": ["authentication.k8s.io"], "resources": ["users"], "verbs": ["impersonate:user-info"],
                "resourceNames": ["carol"]},
               {"apiGroups": [""], "resources": ["pods"], "verbs": ["impersonate-on:user-info:list"]}]


def test_constrained_bob_as_carol() -> None:
    c = Cluster()
    c.grant("golden-constrained-carol", "bob", CAROL_RULES)
    u = impersonated(c, BOB, "constrained-bob-as-carol-list-pods.json")
    assert (u.name, u.groups) == ("carol", ("system:authenticated",))
    denied(c, BOB, "constrained-bob-as-carol-get-configmaps.json")
    denied(c, BOB, "constrained-bob-as-dave-list-pods.json")


def test_user_info_mode_checks_groups_with_its_own_verb() -> None:
    # impersonate:user-info on carol covers neither her groups nor plain `impersonate`
    c = Cluster()
    c.grant("carol", "bob", CAROL_RULES)
    with pytest.raises(StatusError) as e:
        c.impersonate(BOB, "GET", "/api/v1/namespaces/x/pods", {"Impersonate-User": "carol",
                                                                 "Impersonate-Group": "devs"})
    assert e.value.message == ('groups.authentication.k8s.io "devs" is forbidden: User "bob" cannot '
                               'impersonate:user-info resource "groups" in API group "authentication.k8s.io" '
                               'at the cluster scope')


def test_constrained_service_account_and_arbitrary_node_modes() -> None:
    c = Cluster()
    c.grant("sa", "bob", [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["serviceaccounts"],
         "verbs": ["impersonate:serviceaccount"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["nodes"], "verbs": ["impersonate:arbitrary-node"],
         "resourceNames": ["n1"]},
        {"apiGroups": [""], "resources": ["configmaps"],
         "verbs": ["impersonate-on:serviceaccount:get", "impersonate-on:arbitrary-node:get"]}])
    sa = c.impersonate(BOB, "GET", "/api/v1/namespaces/ns/configmaps/x",
                       {"Impersonate-User": "system:serviceaccount:ns:builder"})
    assert sa.groups == ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")
    node = c.impersonate(BOB, "GET", "/api/v1/namespaces/ns/configmaps/x", {"Impersonate-User": "system:node:n1"})
    assert (node.name, node.groups) == ("system:node:n1", ("system:nodes", "system:authenticated"))
    with pytest.raises(StatusError) as e:
        c.impersonate(BOB, "GET", "/api/v1/namespaces/ns/configmaps/x", {"Impersonate-User": "system:node:n2"})
    assert e.value.message == ('nodes.authentication.k8s.io "n2" is forbidden: User "bob" cannot '
                               'impersonate:arbitrary-node resource "nodes" in API group "authentication.k8s.io" '
                               'at the cluster scope')


def test_associated_node_mode_checks_any_node_and_the_sas_extra_keys() -> None:
    c = Cluster()
    agent = UserInfo("system:serviceaccount:kube-system:agent", groups=("system:authenticated",),
                     extra={"authentication.kubernetes.io/node-name": ("n1",),
                            "authentication.kubernetes.io/pod-name": ("agent-x",)})
    c.grant("agent", agent.name, [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["nodes"], "verbs": ["impersonate:associated-node"],
         "resourceNames": ["n1"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["impersonate-on:associated-node:list"]}])
    # resourceNames [n1] does not cover the "*" that the associated-node check asks about
    with pytest.raises(StatusError) as e:
        c.impersonate(agent, "GET", "/api/v1/pods", {"Impersonate-User": "system:node:n1"})
    assert e.value.message == (
        'nodes.authentication.k8s.io "*" is forbidden: User "system:serviceaccount:kube-system:agent" cannot '
        'impersonate:associated-node resource "nodes" in API group "authentication.k8s.io" at the cluster scope')
    c.grant("agent", agent.name, [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["nodes"], "verbs": ["impersonate:associated-node"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["impersonate-on:associated-node:list"]}])
    u = c.impersonate(agent, "GET", "/api/v1/pods", {"Impersonate-User": "system:node:n1"})
    assert (u.name, u.groups) == ("system:node:n1", ("system:nodes", "system:authenticated"))
    # another node is not associated with the agent, and it has no other grant
    with pytest.raises(StatusError):
        c.impersonate(agent, "GET", "/api/v1/pods", {"Impersonate-User": "system:node:n2"})


def test_constrained_many_groups_use_one_wildcard_check() -> None:
    c = Cluster()
    c.grant("many", "bob", [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["users"], "verbs": ["impersonate:user-info"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["groups"], "verbs": ["impersonate:user-info"],
         "resourceNames": ["*"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["impersonate-on:user-info:list"]}])
    u = c.impersonate(BOB, "GET", "/api/v1/pods", {"Impersonate-User": "x", "Impersonate-Group": ["a", "b", "c", "d"]})
    assert u.groups == ("a", "b", "c", "d", "system:authenticated")
    with pytest.raises(StatusError) as e:  # three groups are checked one by one: "a" is not "*"
        c.impersonate(BOB, "GET", "/api/v1/pods", {"Impersonate-User": "x", "Impersonate-Group": ["a", "b", "c"]})
    assert e.value.message.startswith('groups.authentication.k8s.io "a" is forbidden')


def test_constrained_refuses_masters_and_empty_group() -> None:
    c = Cluster()
    c.grant("user-info", "bob", [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["users", "groups"], "verbs": ["impersonate:user-info"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["impersonate-on:user-info:list"]}])
    with pytest.raises(StatusError) as e:
        c.impersonate(BOB, "GET", "/api/v1/pods", {"Impersonate-User": "x", "Impersonate-Group": "system:masters"})
    assert e.value.message == ('groups.authentication.k8s.io "system:masters" is forbidden: User "bob" cannot '
                               'impersonate:user-info resource "groups" in API group "authentication.k8s.io" at '
                               'the cluster scope: impersonating the system:masters group is not allowed')
    with pytest.raises(StatusError) as e:
        c.impersonate(BOB, "GET", "/api/v1/pods", {"Impersonate-User": "x", "Impersonate-Group": ""})
    assert e.value.message == ('groups.authentication.k8s.io is forbidden: User "bob" cannot impersonate:user-info '
                               'resource "groups" in API group "authentication.k8s.io" at the cluster scope: '
                               'impersonating the empty string group is not allowed')
    assert c.impersonate(BOB, "GET", "/api/v1/pods", {"Impersonate-User": "x", "Impersonate-Group": "devs"}).groups \
        == ("devs", "system:authenticated")


@pytest.mark.parametrize("extra,msg", [
    ({"": ("v",)}, "impersonating the empty string key in extra is not allowed"),
    ({"scopes": ("v",)}, 'impersonating an invalid key in extra is not allowed: extra.key: Invalid value: '
                         '"scopes": must be a domain-prefixed path (such as "acme.io/foo")'),
    ({"Bad_Host/x": ("v",)}, "impersonating an invalid key in extra is not allowed: extra.key: Invalid value: "
                             "\"Bad_Host\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                             "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                             "'example.com', regex used for validation is "
                             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
    ({"acme.io/a b": ("v",)}, "impersonating an invalid key in extra is not allowed: extra.key: Invalid value: "
                              "\"a b\": Invalid path (regex used for validation is "
                              "'[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"),
    ({"acme.io/Upper": ("v",)}, 'impersonating a non-lowercase key in extra is not allowed: "acme.io/Upper"'),
    ({"acme.io/k": ("v", "")}, "impersonating the empty string value in extra is not allowed"),
    ({"acme.io/k": ("v",)}, None),
])
def test_constrained_extra_validation(extra: dict[str, tuple[str, ...]], msg: str | None) -> None:
    assert validate_extra(extra) == msg


@pytest.mark.parametrize("name,want", [
    ("system:serviceaccount:ns:sa", ("ns", "sa")), ("system:serviceaccount:ns:a.b", ("ns", "a.b")),
    ("system:serviceaccount:n.s:sa", None), ("system:serviceaccount:ns", None),
    ("system:serviceaccount:ns:sa:x", None), ("system:serviceaccount:NS:sa", None), ("alice", None),
])
def test_service_account_usernames(name: str, want: tuple[str, str] | None) -> None:
    assert split_service_account_username(name) == want


def test_legacy_messages_for_service_accounts_uids_and_extras() -> None:
    c = Cluster()
    c.grant("x", "bob", [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["x"]}])
    assert c.impersonate(BOB, "GET", "/api/v1/pods", {"Impersonate-User": "x"}).name == "x"  # legacy remembered
    cases = [
        ({"Impersonate-User": "system:serviceaccount:ns:sa"},
         'serviceaccounts "sa" is forbidden: User "bob" cannot impersonate resource "serviceaccounts" in API group "" '
         'in the namespace "ns"'),
        ({"Impersonate-User": "x", "Impersonate-Uid": "u1"},
         'uids.authentication.k8s.io "u1" is forbidden: User "bob" cannot impersonate resource "uids" in API group '
         '"authentication.k8s.io" at the cluster scope'),
        ({"Impersonate-User": "x", "Impersonate-Extra-Scopes": "v"},
         'userextras.authentication.k8s.io "v" is forbidden: User "bob" cannot impersonate resource '
         '"userextras/scopes" in API group "authentication.k8s.io" at the cluster scope'),
    ]
    for hdrs, msg in cases:
        with pytest.raises(StatusError) as e:
            c.impersonate(BOB, "GET", "/api/v1/pods", hdrs)
        assert e.value.message == msg
