"""Escalation prevention: upstream's compaction and message (policy_compact_test.go,
CompactString), and the role/binding write checks of pkg/registry/rbac/*/policybased."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubegate.api.errors import StatusError
from kubegate.authn.user import UserInfo
from kubegate.authz.escalation import EscalationGuard, compact_rules, compact_string, escalation_message
from kubegate.authz.privileged import PrivilegedGroups
from kubegate.authz.rbac import RBACAuthorizer
from kubegate.authz.types import PolicyRule, RuleSet
from kubegate.authz.union import UnionAuthorizer

R = PolicyRule


def _sorted(rules: list[PolicyRule]) -> list[PolicyRule]:
    return sorted(rules, key=lambda r: (r.api_groups, r.resources, r.resource_names, r.verbs))


def test_compact_rules_upstream_simple_case() -> None:
    rules = [
        R(("get",), ("",), ("builds",)), R(("list",), ("",), ("builds",)), R(("update", "patch"), ("",), ("builds",)),
        R(("create",), ("extensions",), ("daemonsets",)), R(("delete",), ("extensions",), ("daemonsets",)),
        R(("patch",), ("extensions",), ("daemonsets",), ("",)),
        R(("get",), ("extensions",), ("daemonsets",), ("foo",)), R(("list",), ("extensions",), ("daemonsets",), ("foo",)),
        R(("educate",), ("",), ("dolphins",)), R((), ("",), ("pirates",)),
        R((), ("",), ("pods",)), R(("create",), ("",), ("pods",)),
    ]
    assert _sorted(compact_rules(rules)) == _sorted([
        R(("create", "delete"), ("extensions",), ("daemonsets",)),
        R(("patch",), ("extensions",), ("daemonsets",), ("",)),
        R(("get", "list"), ("extensions",), ("daemonsets",), ("foo",)),
        R(("get", "list", "update", "patch"), ("",), ("builds",)),
        R(("educate",), ("",), ("dolphins",)), R((), ("",), ("pirates",)), R(("create",), ("",), ("pods",))])


@pytest.mark.parametrize("rules", [
    [R(("get",), ("", "builds.openshift.io"), ("builds",)), R(("list",), ("", "builds.openshift.io"), ("builds",))],
    [R(("get",), ("",), ("builds", "images")), R(("list",), ("",), ("builds", "images"))],
    [R(("get",), ("",), ("builds",), ("mybuild",)), R(("list",), ("",), ("builds",), ("mybuild2",))],
    [R(("get",), ("",), ("builds",), (), ("/",)), R(("get",), ("",), ("builds",), (), ("/foo",))],
], ids=["multi-group", "multi-resource", "named-resources", "non-resource"])
def test_compact_rules_keeps_complex_rules(rules: list[PolicyRule]) -> None:
    assert _sorted(compact_rules(rules)) == _sorted(rules)


def test_compact_string() -> None:
    assert compact_string(R(("get", "list"), ("", "apps"), ("deployments",), ("a\"b",))) == \
        '{APIGroups:["" "apps"], Resources:["deployments"], ResourceNames:["a\\"b"], Verbs:["get" "list"]}'
    assert compact_string(R(("get",), non_resource_urls=("/healthz",))) == '{NonResourceURLs:["/healthz"], Verbs:["get"]}'


def test_escalation_message_exact_text() -> None:
    user = UserInfo("system:serviceaccount:rbac:privesc",
                    groups=("system:serviceaccounts", "system:serviceaccounts:rbac", "system:authenticated"))
    owned = RuleSet((R(("get", "list", "watch", "create", "update", "patch"), ("",), ("pods",)),))
    msg = escalation_message(user, owned, [R(("get", "delete"), ("",), ("pods",)), R(("create",), ("apps",), ("deployments",))])
    assert msg == ('user "system:serviceaccount:rbac:privesc" (groups=["system:serviceaccounts" '
                   '"system:serviceaccounts:rbac" "system:authenticated"]) is attempting to grant RBAC permissions '
                   'not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n'
                   '{APIGroups:["apps"], Resources:["deployments"], Verbs:["create"]}')
    assert escalation_message(user, owned, [R(("get",), ("",), ("pods",))]) is None
    with_errors = RuleSet(owned.rules, errors=('roles.rbac.authorization.k8s.io "x" not found',))
    assert escalation_message(UserInfo("u"), with_errors, [R(("delete",), ("",), ("pods",))]) == (
        'user "u" (groups=[]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}; '
        'resolution errors: [roles.rbac.authorization.k8s.io "x" not found]')


# --- the write checks ---

ALICE = UserInfo("alice", groups=("system:authenticated",))
ADMIN = UserInfo("root", groups=("system:masters",))


def _guard(*objects: tuple[str, dict[str, Any]]) -> EscalationGuard:
    rbac = RBACAuthorizer()
    for kind, obj in objects:
        rbac.upsert(kind, obj)
    return EscalationGuard(UnionAuthorizer([PrivilegedGroups(), rbac]), rbac)


def _role(name: str, rules: list[dict[str, Any]], ns: str = "dev") -> dict[str, Any]:
    return {"metadata": {"name": name, **({"namespace": ns} if ns else {})}, "rules": rules}


def _rb(name: str, kind: str, role: str, user: str = "alice", ns: str = "dev") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]}


PODS_RW = {"verbs": ["get", "list", "create"], "apiGroups": [""], "resources": ["pods"]}
PODS_DELETE = {"verbs": ["delete"], "apiGroups": [""], "resources": ["pods"]}


def _admit(g: EscalationGuard, op: str, plural: str, obj: dict[str, Any], old: dict[str, Any] | None = None,
           user: UserInfo = ALICE, ns: str | None = "dev") -> None:
    asyncio.run(g.admit(op, plural, obj, old, ns, user))


def _denied(g: EscalationGuard, *args: Any, **kw: Any) -> StatusError:
    with pytest.raises(StatusError) as e:
        _admit(g, *args, **kw)
    return e.value


def test_role_within_held_permissions_is_allowed_and_beyond_them_forbidden() -> None:
    g = _guard(("Role", _role("mine", [PODS_RW])), ("RoleBinding", _rb("mine", "Role", "mine")))
    _admit(g, "create", "roles", _role("sub", [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]))
    err = _denied(g, "create", "roles", _role("big", [PODS_RW, PODS_DELETE]))
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.message == ('roles.rbac.authorization.k8s.io "big" is forbidden: user "alice" '
                           '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently '
                           'held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')
    # held in another namespace does not count
    _denied(g, "create", "roles", _role("sub", [PODS_RW], ns="prod"), ns="prod")
    _admit(g, "create", "roles", _role("big", [PODS_RW, PODS_DELETE]), user=ADMIN)  # system:masters bypasses
    _admit(g, "delete", "roles", _role("big", [PODS_DELETE]))  # deletes are not checked


def test_escalate_verb_allows_granting_more() -> None:
    g = _guard(("Role", _role("esc", [{"verbs": ["escalate"], "apiGroups": ["rbac.authorization.k8s.io"],
                                       "resources": ["roles"]}])),
               ("RoleBinding", _rb("esc", "Role", "esc")))
    _admit(g, "create", "roles", _role("big", [PODS_DELETE]))
    _admit(g, "update", "roles", _role("big", [PODS_DELETE]), old=_role("big", []))


def test_escalate_on_a_named_role_only_covers_updates_of_that_role() -> None:
    g = _guard(("Role", _role("esc", [{"verbs": ["escalate"], "apiGroups": ["rbac.authorization.k8s.io"],
                                       "resources": ["roles"], "resourceNames": ["big"]}])),
               ("RoleBinding", _rb("esc", "Role", "esc")))
    _admit(g, "update", "roles", _role("big", [PODS_DELETE]), old=_role("big", []))
    _denied(g, "create", "roles", _role("big", [PODS_DELETE]))  # a create has no request name


def test_gc_only_updates_pass() -> None:
    g = _guard()
    old = _role("big", [PODS_DELETE])
    new = {**old, "metadata": {**old["metadata"], "finalizers": ["x"], "ownerReferences": [{"name": "o"}]}}
    _admit(g, "update", "roles", new, old=old)
    _denied(g, "update", "roles", {**new, "metadata": {**new["metadata"], "labels": {"a": "b"}}}, old=old)


def test_aggregation_rule_needs_full_authority() -> None:
    g = _guard(("ClusterRole", _role("all-pods", [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["pods"]}], ns="")),
               ("ClusterRoleBinding", {"metadata": {"name": "x"}, "roleRef": {"kind": "ClusterRole", "name": "all-pods"},
                                       "subjects": [{"kind": "User", "name": "alice"}]}))
    agg = {"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}}
    err = _denied(g, "create", "clusterroles", agg, ns=None)
    assert err.message == ('clusterroles.rbac.authorization.k8s.io "agg" is forbidden: '
                           "must have cluster-admin privileges to use the aggregationRule")
    _denied(g, "update", "clusterroles", {"metadata": {"name": "agg"}}, old=agg, ns=None)  # removing it too
    _admit(g, "create", "clusterroles", agg, ns=None, user=ADMIN)


def test_binding_needs_bind_or_the_role_permissions() -> None:
    g = _guard(("Role", _role("mine", [PODS_RW])), ("RoleBinding", _rb("mine", "Role", "mine")),
               ("ClusterRole", _role("deleter", [PODS_DELETE], ns="")),
               ("ClusterRole", _role("reader", [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}], ns="")))
    _admit(g, "create", "rolebindings", _rb("ok", "ClusterRole", "reader", user="bob"))
    err = _denied(g, "create", "rolebindings", _rb("x", "ClusterRole", "deleter", user="bob"))
    assert err.message == ('rolebindings.rbac.authorization.k8s.io "x" is forbidden: user "alice" '
                           '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently '
                           'held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')
    err = _denied(g, "create", "rolebindings", _rb("x", "ClusterRole", "missing", user="bob"))
    assert (err.code, err.message) == (404, 'clusterroles.rbac.authorization.k8s.io "missing" not found')
    err = _denied(g, "create", "clusterrolebindings",
                  {**_rb("x", "ClusterRole", "reader", user="bob"), "metadata": {"name": "x"}}, ns=None)
    assert err.message.startswith('clusterrolebindings.rbac.authorization.k8s.io "x" is forbidden: user "alice"')


def test_bind_verb_on_the_named_role_allows_binding_it() -> None:
    g = _guard(("ClusterRole", _role("deleter", [PODS_DELETE], ns="")),
               ("Role", _role("binder", [{"verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"],
                                         "resources": ["clusterroles"], "resourceNames": ["deleter"]}])),
               ("RoleBinding", _rb("binder", "Role", "binder")))
    _admit(g, "create", "rolebindings", _rb("x", "ClusterRole", "deleter", user="bob"))
    _denied(g, "create", "rolebindings", _rb("x", "ClusterRole", "deleter", user="bob", ns="prod"), ns="prod")
